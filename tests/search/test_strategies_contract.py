"""Contract tests of switchnas.search.strategies: option checking and its messages,
upper_bounds, budgets and defaults, the first candidates, stalling on exhausted spaces,
and what mutation and crossover may produce."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from switchnas.search.strategies import (
    EvolutionSearch,
    OptunaSearch,
    RandomSearch,
    SearchStrategy,
    upper_bounds,
)
from switchnas.supernets.space import ChoiceSpace, Dimension

ALLOWED_EVO = ["population", "generations", "budget", "mutation_prob", "crossover_prob",
               "selection"]


def _space(width: int = 4, positions: int = 3) -> ChoiceSpace:
    return ChoiceSpace("s", [Dimension("x", [list(range(width))] * positions)])


def _score(g: np.ndarray) -> np.ndarray:
    g = np.asarray(g, float)
    return np.stack([g.sum(axis=1), -(g ** 2).sum(axis=1)], axis=1)


# -- upper_bounds -------------------------------------------------------------------------------
def test_upper_bounds_exact_violation() -> None:
    v = upper_bounds([10.0, None, -2.0])
    obj = np.array([[10.0, 99.0, -2.0], [12.0, 0.0, -1.0], [5.0, 0.0, -3.0], [15.0, 0.0, 0.0]])
    # excess / |bound|: row 1: 2/10 + 1/2; row 3: 5/10 + 2/2
    assert v(obj).tolist() == pytest.approx([0.0, 0.7, 0.0, 1.5])
    assert v(obj.tolist()).shape == (4,)


def test_upper_bounds_zero_bound_divides_by_a_tiny_number() -> None:
    v = upper_bounds([0.0])
    assert v(np.array([[1e-9], [0.0], [-1.0]])).tolist() == pytest.approx([1.0, 0.0, 0.0])
    assert upper_bounds([None, None])(np.ones((2, 2))).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_upper_bounds_rejects_non_finite_bounds(bad: float) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(
            f"bound 1 is {float(bad)}; bounds must be finite numbers or None") + "$"):
        upper_bounds([1.0, bad])


def test_upper_bounds_checks_the_shape() -> None:
    v = upper_bounds([1.0, None])
    with pytest.raises(ValueError, match=r"^upper_bounds\(\[1\.0, None\]\) expects objectives of "
                                         r"shape \(n, 2\), got \(3, 3\)$"):
        v(np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"got \(3,\)$"):
        v(np.zeros(3))


# -- options ------------------------------------------------------------------------------------
def test_defaults_and_repr() -> None:
    e = EvolutionSearch()
    assert (e.population, e.generations, e.budget, e.mutation_prob, e.crossover_prob,
            e.selection) == (256, 60, None, None, 0.9, "tournament")
    assert repr(e) == ("EvolutionSearch(population=256, generations=60, budget=None, "
                       "mutation_prob=None, crossover_prob=0.9, selection='tournament')")
    r = RandomSearch()
    assert (r.population, r.generations, r.budget) == (2000, 1, None)
    assert repr(RandomSearch(population=5, generations=3)) == \
        "RandomSearch(population=5, generations=3, budget=None)"
    o = OptunaSearch()
    assert (o.sampler, o.population, o.generations, o.budget) == ("nsga2", 64, 10, None)
    for s in (e, r, o):
        assert isinstance(s, SearchStrategy)


def test_keyword_options_only_and_unknown_ones_are_named() -> None:
    with pytest.raises(TypeError, match="^" + re.escape(
            f"EvolutionSearch takes keyword options only; allowed: {ALLOWED_EVO}") + "$"):
        EvolutionSearch(3)  # type: ignore[misc]
    with pytest.raises(TypeError, match="^" + re.escape(
            "EvolutionSearch: unknown option 'populaton' (did you mean 'population'?); "
            f"allowed options are {ALLOWED_EVO}") + "$"):
        EvolutionSearch(populaton=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="^" + re.escape(
            f"EvolutionSearch: unknown option 'zzz'; allowed options are {ALLOWED_EVO}") + "$"):
        EvolutionSearch(zzz=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="^" + re.escape(
            "RandomSearch: unknown option 'sampler'; allowed options are "
            "['population', 'generations', 'budget']") + "$"):
        RandomSearch(sampler="tpe")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"^OptunaSearch: unknown option 'budgett' \(did you mean 'budget'\?\)"):
        OptunaSearch(budgett=3)  # type: ignore[call-arg]


@pytest.mark.parametrize("cls, kw, message", [
    (EvolutionSearch, {"population": 1}, "search.population must be >= 2, got 1"),
    (EvolutionSearch, {"population": 10_000_001},
     "search.population=10000001: must be an integer from 2 to 10000000"),
    (RandomSearch, {"population": True}, "search.population=True: must be an integer from 2 to 10000000"),
    (RandomSearch, {"population": 2.0}, "search.population=2.0: must be an integer from 2 to 10000000"),
    (RandomSearch, {"generations": 0}, "search.generations must be >= 1, got 0"),
    (RandomSearch, {"generations": 10**12 + 1},
     f"search.generations={10**12 + 1}: must be an integer from 1 to {10**12}"),
    (OptunaSearch, {"budget": 0}, "search.budget must be >= 1, got 0"),
    (OptunaSearch, {"budget": "5"}, "search.budget='5': must be an integer from 1 to 1000000000000"),
    (EvolutionSearch, {"mutation_prob": 1.5}, "search.mutation_prob=1.5: must be a probability in [0, 1] or null"),
    (EvolutionSearch, {"mutation_prob": True}, "search.mutation_prob=True: must be a probability in [0, 1] or null"),
    (EvolutionSearch, {"crossover_prob": -0.1}, "search.crossover_prob=-0.1: must be a probability in [0, 1]"),
    (EvolutionSearch, {"crossover_prob": None}, "search.crossover_prob=None: must be a probability in [0, 1]"),
    (EvolutionSearch, {"crossover_prob": "0.5"}, "search.crossover_prob='0.5': must be a probability in [0, 1]"),
    (EvolutionSearch, {"selection": "roulette"}, "search.selection='roulette': choose 'tournament' or 'random'"),
    (OptunaSearch, {"sampler": "cmaes"}, "search.sampler='cmaes'; choose from ['nsga2', 'tpe', 'random']"),
])
def test_option_values_are_checked(cls: Any, kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        cls(**kw)


def test_option_boundaries_are_accepted() -> None:
    e = EvolutionSearch(population=2, generations=1, budget=1, mutation_prob=0, crossover_prob=1)
    assert (e.population, e.generations, e.budget, e.mutation_prob, e.crossover_prob) == (2, 1, 1, 0.0, 1.0)
    assert isinstance(e.mutation_prob, float) and isinstance(e.crossover_prob, float)
    e = EvolutionSearch(population=np.int64(10_000_000), mutation_prob=np.float32(1.0), crossover_prob=0)
    assert e.population == 10_000_000 and type(e.population) is int
    assert e.mutation_prob == 1.0 and e.crossover_prob == 0.0
    assert RandomSearch(generations=10**12).generations == 10**12


def test_run_budget_is_checked() -> None:
    with pytest.raises(ValueError, match=r"^search.budget must be >= 1, got 0$"):
        RandomSearch().run(_space(), _score, budget=0)
    with pytest.raises(ValueError, match=r"^search.budget=2.5: must be an integer from 1 to "):
        EvolutionSearch().run(_space(), _score, budget=2.5)  # type: ignore[arg-type]


# -- budgets ------------------------------------------------------------------------------------
def test_default_budget_is_population_times_generations() -> None:
    res = RandomSearch(population=5, generations=3).run(_space(8, 4), _score)
    assert res.evaluations == 15
    assert [h["new"] for h in res.history] == [5, 5, 5]
    assert [h["generation"] for h in res.history] == [0, 1, 2]
    assert [h["evaluated"] for h in res.history] == [5, 10, 15]
    res = RandomSearch(population=5, generations=3, budget=7).run(_space(8, 4), _score)
    assert res.evaluations == 7 and [h["new"] for h in res.history] == [5, 2]
    # a run's budget wins over the strategy's
    res = RandomSearch(population=5, budget=7).run(_space(8, 4), _score, budget=3)
    assert res.evaluations == 3
    res = EvolutionSearch(population=4, generations=3).run(_space(8, 4), _score)
    assert res.evaluations == 12
    res = EvolutionSearch(population=4, generations=3, budget=9).run(_space(8, 4), _score)
    assert res.evaluations == 9


def test_random_search_first_candidates_are_initial_then_extremes() -> None:
    space = _space(5, 3)
    init = np.array([[1, 2, 3], [0, 4, 1]])
    res = RandomSearch(population=3).run(space, _score, initial=init, budget=6)
    assert res.genomes[:4].tolist() == [[1, 2, 3], [0, 4, 1], [4, 4, 4], [0, 0, 0]]
    # the first batch holds all of the start even when it is larger than the population
    assert res.history[0]["new"] == 4
    res = RandomSearch(population=3).run(space, _score, budget=6)
    assert res.genomes[:2].tolist() == [[4, 4, 4], [0, 0, 0]]
    assert res.history[0]["new"] == 3


def test_evolution_first_candidates_are_initial_then_extremes() -> None:
    space = _space(5, 3)
    init = np.array([[1, 2, 3]])
    res = EvolutionSearch(population=2).run(space, _score, initial=init, budget=5)
    assert res.genomes[:3].tolist() == [[1, 2, 3], [4, 4, 4], [0, 0, 0]]
    assert res.history[0]["new"] == 3
    res = EvolutionSearch(population=4).run(space, _score, budget=8)
    assert res.genomes[:2].tolist() == [[4, 4, 4], [0, 0, 0]] and res.history[0]["new"] == 4


@pytest.mark.parametrize("cls", [RandomSearch, EvolutionSearch])
def test_bad_initial_genomes_are_named(cls: Any) -> None:
    with pytest.raises(ValueError, match=r"^initial: "):
        cls(population=2).run(_space(), _score, initial=np.array([[9, 9, 9]]), budget=4)


# -- exhausting a space ------------------------------------------------------------------------------
def test_random_search_stops_after_25_empty_batches() -> None:
    space = ChoiceSpace("t", [Dimension("k", [list(range(20))] * 2)])  # 400 genomes
    res = RandomSearch(population=2, budget=400).run(space, lambda g: np.asarray(g, float), seed=0)
    assert res.evaluations == 389
    assert len({tuple(g) for g in res.genomes.tolist()}) == 389


@pytest.mark.parametrize("cls", [RandomSearch, EvolutionSearch])
def test_a_small_space_is_scored_completely_and_once(cls: Any) -> None:
    space = _space(2, 3)  # 8 genomes
    res = cls(population=4).run(space, _score, budget=100, seed=1)
    assert res.evaluations == 8
    assert sorted(map(tuple, res.genomes.tolist())) == sorted(
        (a, b, c) for a in (0, 1) for b in (0, 1) for c in (0, 1))


def test_evolution_without_variation_stalls_after_the_first_population() -> None:
    calls: list[int] = []

    def cb(g: np.ndarray, o: np.ndarray) -> None:
        calls.append(len(g))

    res = EvolutionSearch(population=4, mutation_prob=0.0, crossover_prob=0.0).run(
        _space(6, 4), _score, budget=100, callback=cb)
    assert res.evaluations == 4 and calls == [4] and len(res.history) == 1


def test_mutation_always_changes_a_position_to_another_choice() -> None:
    # binary positions, every position mutated, no crossover: a child of the all-ones
    # parent is all zeros and the other way round, both scored already: nothing new
    res = EvolutionSearch(population=2, mutation_prob=1.0, crossover_prob=0.0).run(
        _space(2, 5), _score, budget=50)
    assert res.evaluations == 2
    # three choices: a child of (2,2,2,2) has no 2, a child of (0,0,0,0) has no 0
    batches: list[np.ndarray] = []
    EvolutionSearch(population=2, mutation_prob=1.0, crossover_prob=0.0).run(
        _space(3, 4), _score, budget=6, callback=lambda g, o: batches.append(g.copy()) and None)
    assert batches[0].tolist() == [[2, 2, 2, 2], [0, 0, 0, 0]]
    for kid in np.concatenate(batches[1:]):
        assert (2 not in kid) or (0 not in kid)


def test_positions_with_one_choice_never_mutate() -> None:
    space = ChoiceSpace("s", [Dimension("a", [[7]]), Dimension("x", [[0, 1, 2, 3]] * 3)])
    res = EvolutionSearch(population=4, mutation_prob=1.0).run(space, _score, budget=30, seed=2)
    assert (res.genomes[:, 0] == 0).all()
    assert res.evaluations == 30


def test_crossover_alone_mixes_parents() -> None:
    # no mutation: children only combine the parents' positions; from all-0 and all-3 the
    # reachable genomes are 0/3 mixtures
    res = EvolutionSearch(population=2, mutation_prob=0.0, crossover_prob=1.0).run(
        _space(4, 3), _score, budget=100, seed=0)
    assert res.evaluations == 8
    assert set(np.unique(res.genomes).tolist()) == {0, 3}


@pytest.mark.parametrize("selection", ["tournament", "random"])
def test_same_seed_same_result(selection: str) -> None:
    s = EvolutionSearch(population=6, selection=selection)
    a = s.run(_space(5, 4), _score, budget=40, seed=3)
    b = s.run(_space(5, 4), _score, budget=40, seed=3)
    c = s.run(_space(5, 4), _score, budget=40, seed=4)
    assert a.genomes.tolist() == b.genomes.tolist()
    assert a.genomes.tolist() != c.genomes.tolist()
    assert a.evaluations == 40


def test_evolution_finds_the_exact_front_of_a_small_space() -> None:
    space = _space(4, 3)  # 64 genomes
    res = EvolutionSearch(population=8).run(space, _score, budget=64, seed=0)
    full = space.to_genomes([{"x": [a, b, c]} for a in range(4) for b in range(4) for c in range(4)])
    obj = _score(full)
    best = {tuple(o) for o in obj[[i for i in range(64) if not any(
        (obj[j] <= obj[i]).all() and (obj[j] < obj[i]).any() for j in range(64))]].tolist()}
    got = {tuple(res.objectives[i]) for i in res.front()}
    assert got == best


def test_constraints_steer_and_are_reported() -> None:
    cons = upper_bounds([4.0, None])
    for s in (RandomSearch(population=8), EvolutionSearch(population=8)):
        res = s.run(_space(4, 3), _score, budget=40, constraints=cons, seed=0)
        assert res.violation.tolist() == cons(res.objectives).tolist()
        assert all(res.objectives[i, 0] <= 4.0 for i in res.front())


def test_optuna_random_sampler_small_run() -> None:
    res = OptunaSearch(sampler="random", population=4).run(_space(4, 3), _score, budget=10, seed=0)
    assert res.evaluations == 10
    assert res.genomes[:2].tolist() == [[3, 3, 3], [0, 0, 0]]
    assert res.history[0]["new"] == 4
    assert len({tuple(g) for g in res.genomes.tolist()}) == 10


# -- internals with exact answers ----------------------------------------------------------------
def test_bernoulli_positions() -> None:
    from switchnas.search.strategies import _bernoulli_positions

    rng = np.random.default_rng(0)
    assert _bernoulli_positions(rng, 50, 1.0).tolist() == list(range(50))
    assert _bernoulli_positions(rng, 50, 0.0).tolist() == []
    assert _bernoulli_positions(rng, 0, 0.5).tolist() == []
    assert _bernoulli_positions(rng, 50, 0.0).dtype == np.int64
    for n, p in [(100_000, 0.1), (1000, 0.5), (37, 0.9), (5, 0.01)]:
        pos = _bernoulli_positions(np.random.default_rng(1), n, p)
        assert (np.diff(pos) > 0).all() and (pos >= 0).all() and (pos < n).all()
        if n * p >= 100:
            assert abs(len(pos) - n * p) < 5 * np.sqrt(n * p * (1 - p))
    # the gaps' draws may run out before n: the positions still reach the end
    pos = _bernoulli_positions(np.random.default_rng(2), 10_000, 0.9)
    assert pos[-1] >= 9_990 and abs(len(pos) - 9000) < 200


def test_binary_tournament() -> None:
    from switchnas.search.strategies import _better

    rank = np.array([0, 1, 0, 0])
    crowd = np.array([1.0, 5.0, 1.0, np.inf])
    a = np.array([0, 1, 0, 0, 2])
    b = np.array([1, 0, 2, 3, 0])
    assert _better(rank, crowd, a, b).tolist() == [True, False, True, False, True]


def _zdt(g: np.ndarray) -> np.ndarray:
    g = np.asarray(g, float) / 7
    f1 = g[:, 0]
    h = 1 + 9 * g[:, 1:].mean(axis=1)
    return np.stack([f1, h * (1 - np.sqrt(f1 / h))], axis=1)


@pytest.mark.parametrize("seed", range(3))
def test_evolution_beats_random_on_a_zdt_problem(seed: int) -> None:
    """NSGA-II with the default options drives the distance term down: its front holds
    clearly more hypervolume than random search's with the same budget."""
    from switchnas.search.pareto import hypervolume

    space = ChoiceSpace("z", [Dimension("x", [list(range(8))] * 10)])
    e = EvolutionSearch(population=20).run(space, _zdt, budget=300, seed=seed)
    r = RandomSearch(population=20).run(space, _zdt, budget=300, seed=seed)
    assert e.evaluations == r.evaluations == 300
    he = hypervolume(e.objectives[e.front()], [1.1, 11.0])
    hr = hypervolume(r.objectives[r.front()], [1.1, 11.0])
    assert he > hr + 0.4
    assert he > 11.5


def test_history_generations_count_up(capsys: pytest.CaptureFixture[str]) -> None:
    res = EvolutionSearch(population=4).run(_space(6, 4), _score, budget=20, seed=0)
    gens = [h["generation"] for h in res.history]
    assert gens[0] == 0 and all(isinstance(g, int) for g in gens)
    assert all(b > a for a, b in zip(gens, gens[1:], strict=False))
    res = OptunaSearch(sampler="random", population=4).run(_space(4, 3), _score, budget=10, seed=0)
    assert [h["generation"] for h in res.history] == [0, 1, 2]
    # no progress output unless asked
    assert "search" not in capsys.readouterr().err
