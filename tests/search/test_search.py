"""Pareto fronts, strategies on a known scorer, constraints, families, the SQLite study."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from switchnas.search.family import pick_family
from switchnas.search.pareto import (
    crowding_distance,
    crowding_distances,
    hypervolume,
    nondominated_mask,
    nondominated_ranks,
    pareto_mask,
)
from switchnas.search.strategies import (
    EvolutionSearch,
    OptunaSearch,
    RandomSearch,
    SearchResult,
    SearchStrategy,
    upper_bounds,
)
from switchnas.search.study import record_measurements
from switchnas.supernets.ofa.mbv3 import MobileNetV3Space
from switchnas.supernets.space import ChoiceSpace, Dimension


# -- Pareto fronts -----------------------------------------------------------------------
def test_pareto_mask_simple() -> None:
    lat = np.array([1.0, 2.0, 3.0, 2.5, 1.0])
    acc = np.array([50.0, 60.0, 70.0, 55.0, 40.0])
    assert pareto_mask(lat, acc).tolist() == [True, True, True, False, False]
    # equal points: only the first is kept
    assert pareto_mask(np.array([1.0, 1.0]), np.array([5.0, 5.0])).tolist() == [True, False]


def test_ranks_and_crowding() -> None:
    obj = np.array([[1, 3], [2, 2], [3, 1], [3, 3]], float)
    assert nondominated_ranks(obj).tolist() == [0, 0, 0, 1]
    cd = crowding_distance(obj[:3])
    assert np.isinf(cd[0]) and np.isinf(cd[2]) and np.isfinite(cd[1])


def _brute_ranks(obj: np.ndarray) -> np.ndarray:
    """Peel fronts by the definition of dominance."""
    ranks = np.full(len(obj), -1)
    r = 0
    while (ranks < 0).any():
        left = np.flatnonzero(ranks < 0)
        for i in left:
            o = obj[left]
            dominated = np.any(np.all(o <= obj[i], axis=1) & np.any(o < obj[i], axis=1))
            if not dominated:
                ranks[i] = r
        r += 1
    return ranks


@pytest.mark.parametrize("m", [1, 2, 3])
def test_nondominated_ranks_match_the_definition(m: int) -> None:
    rng = np.random.default_rng(m)
    for trial in range(30):
        n = int(rng.integers(1, 120))
        # few distinct values: many ties and duplicate rows; or continuous values
        obj = (rng.integers(0, 6, size=(n, m)).astype(float) if trial % 2
               else rng.normal(size=(n, m)))
        want = _brute_ranks(obj)
        assert nondominated_ranks(obj).tolist() == want.tolist()
        assert nondominated_mask(obj).tolist() == (want == 0).tolist()
        until = int(rng.integers(1, n + 1))
        got = nondominated_ranks(obj, until=until)
        last = got.max()
        assert (got[got < last] == want[got < last]).all()  # the fronts it found are exact
        assert (want[got == last] >= last).all()
        assert (got < last).sum() >= until or (got == want).all()


def test_crowding_distances_per_front() -> None:
    rng = np.random.default_rng(0)
    obj = rng.normal(size=(200, 2))
    ranks = nondominated_ranks(obj)
    cd = crowding_distances(obj, ranks)
    for r in np.unique(ranks):
        members = np.flatnonzero(ranks == r)
        np.testing.assert_allclose(cd[members], crowding_distance(obj[members]))
    with pytest.raises(ValueError, match="ranks has 3 entries for 200 rows"):
        crowding_distances(obj, ranks[:3])


def test_hypervolume() -> None:
    obj = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [2.5, 2.5], [5.0, 0.0]])
    # staircase of (1,3), (2,2), (3,1) against (4, 4); (2.5, 2.5) is dominated and
    # (5, 0) is outside the reference box
    assert hypervolume(obj, [4.0, 4.0]) == pytest.approx(1 * 1 + 1 * 2 + 1 * 3)
    assert hypervolume(obj[:0], [4.0, 4.0]) == 0.0
    with pytest.raises(ValueError, match="hypervolume needs"):
        hypervolume(np.zeros((2, 3)), [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="finite"):
        nondominated_ranks(np.array([[np.nan, 1.0]]))


# -- strategies --------------------------------------------------------------------------
STRATEGIES: dict[str, Callable[..., SearchStrategy]] = {
    "evolution": lambda **kw: EvolutionSearch(**{"population": 64, **kw}),
    "random": lambda **kw: RandomSearch(**{"population": 64, **kw}),
    "optuna": lambda **kw: OptunaSearch(**{"population": 32, **kw}),
}


@pytest.fixture
def space() -> MobileNetV3Space:
    return MobileNetV3Space.build([3, 5, 7], [3, 4, 6], [2, 3, 4], [32, 40])


def _mbv3_scorer(space: MobileNetV3Space) -> Callable[[np.ndarray], np.ndarray]:
    """A known trade-off: latency grows with the encoding's sum, accuracy saturates."""
    def score(g: np.ndarray) -> np.ndarray:
        X = space.encode_genomes(g)
        s = X.sum(1)
        acc = 100 * (1 - np.exp(-s / 10)) - 0.5 * X[:, :20].sum(1) % 1
        return np.stack([1.0 + s, -acc], axis=1)

    return score


class Additive:
    """8 positions x 4 choices, both objectives additive over positions: the exact front
    comes from enumerating all 65,536 genomes."""

    P, C = 8, 4

    def __init__(self, m: int = 2) -> None:
        rng = np.random.default_rng(0)
        self.space = ChoiceSpace("additive", [Dimension("x", [list(range(self.C))] * self.P)])
        cost = np.sort(rng.uniform(1, 10, size=(self.P, self.C)), axis=1)
        gain = np.cumsum(rng.uniform(0, 5, size=(self.P, self.C)), axis=1)
        gain *= rng.uniform(0.5, 1.5, size=(self.P, 1))
        extra = rng.uniform(0, 3, size=(self.P, self.C))
        self.tables = [cost, -gain, extra][:m]
        self.all = np.array(list(itertools.product(range(self.C), repeat=self.P)))

    def __call__(self, g: np.ndarray) -> np.ndarray:
        i = np.arange(self.P)
        return np.stack([t[i, g].sum(axis=1) for t in self.tables], axis=1)


def _relative_hypervolume(res: SearchResult, problem: Additive) -> float:
    every = problem(problem.all)
    ref = every.max(axis=0) + 1
    return hypervolume(res.objectives[res.front()], ref) / hypervolume(every, ref)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_evolution_finds_the_exact_front_of_an_additive_problem(seed: int) -> None:
    problem = Additive()
    evo = EvolutionSearch(population=100, budget=2000).run(problem.space, problem, seed=seed)
    assert evo.evaluations == 2000  # about 3 % of the space
    assert _relative_hypervolume(evo, problem) >= 0.99
    rnd = RandomSearch(population=500, budget=2000).run(problem.space, problem, seed=seed)
    assert _relative_hypervolume(rnd, problem) < 0.97  # the problem is not trivial


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_strategies_return_a_valid_front(space: MobileNetV3Space, name: str) -> None:
    res = STRATEGIES[name](budget=300).run(space, _mbv3_scorer(space), seed=0)
    assert isinstance(STRATEGIES[name](), SearchStrategy)
    front = res.front()
    assert len(front) >= 3
    obj = res.objectives[front]
    assert np.all(np.diff(obj[:, 0]) >= 0) and np.all(np.diff(obj[:, 1]) < 0)
    assert res.genomes.dtype == np.int64 and res.genomes.shape == (300, space.genome_length)
    assert np.array_equal(space.canonical_genomes(res.genomes), res.genomes)
    assert len({row.tobytes() for row in res.genomes}) == 300  # no candidate twice
    configs = res.configs(space)
    assert [space.validate(c) for c in configs] == configs
    assert res.history and res.history[-1]["evaluated"] == 300
    assert sum(h["new"] for h in res.history) == 300


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@pytest.mark.parametrize("budget", [1, 37, 250])
def test_budget_is_respected_exactly(space: MobileNetV3Space, name: str, budget: int) -> None:
    calls: list[int] = []
    score = _mbv3_scorer(space)

    def counting(g: np.ndarray) -> np.ndarray:
        calls.append(len(g))
        return score(g)

    res = STRATEGIES[name]().run(space, counting, seed=1, budget=budget)
    assert res.evaluations == len(res.genomes) == sum(calls) == budget


def test_budget_defaults_and_small_spaces() -> None:
    problem = Additive()
    assert EvolutionSearch(population=10, generations=7).run(
        problem.space, problem).evaluations == 70
    assert EvolutionSearch(population=10, generations=7, budget=33).run(
        problem.space, problem).evaluations == 33
    tiny = ChoiceSpace("tiny", [Dimension("x", [[0, 1]] * 3)])  # 8 genomes in all

    def score(g: np.ndarray) -> np.ndarray:
        return np.stack([g.sum(1), -(g * [1, 2, 4]).sum(1)], axis=1).astype(float)

    for name, make in STRATEGIES.items():
        res = make(budget=100).run(tiny, score, seed=0)
        assert res.evaluations == 8, name  # the whole space, each genome once, then stop


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_callback_sees_every_batch_and_can_stop(space: MobileNetV3Space, name: str) -> None:
    seen: list[tuple[int, int]] = []

    def callback(genomes: np.ndarray, objectives: np.ndarray) -> bool:
        assert genomes.shape[1] == space.genome_length and objectives.shape == (len(genomes), 2)
        seen.append((len(genomes), len(seen)))
        return len(seen) == 3

    res = STRATEGIES[name](budget=10_000).run(space, _mbv3_scorer(space), seed=0,
                                              callback=callback)
    assert len(seen) == 3
    assert res.evaluations == sum(n for n, _ in seen) < 10_000


@pytest.mark.parametrize(("make", "bad", "allowed"), [
    (EvolutionSearch, "mutaton_prob", "mutation_prob"),
    (RandomSearch, "populaton", "population"),
    (OptunaSearch, "max_latency_ms", "sampler"),
])
def test_a_misspelt_option_is_an_error(make: Callable[..., object], bad: str,
                                       allowed: str) -> None:
    with pytest.raises(TypeError, match=rf"unknown option '{bad}'.*allowed options are .*'{allowed}'"):
        make(**{bad: 0.9})
    with pytest.raises(TypeError, match="keyword options only"):
        make(64)


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(population=1), "search.population must be >= 2"),
    (dict(population=10**9), "search.population=1000000000: must be an integer"),
    (dict(generations=0), "search.generations must be >= 1"),
    (dict(budget=0), "search.budget must be >= 1"),
    (dict(mutation_prob=2.0), "search.mutation_prob=2.0: must be a probability"),
    (dict(crossover_prob=None), "search.crossover_prob=None: must be a probability"),
    (dict(selection="roulette"), "search.selection='roulette'"),
])
def test_option_values_are_checked(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        EvolutionSearch(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sampler"):
        OptunaSearch(sampler="cmaes-nope")
    with pytest.raises(ValueError, match="budget"):
        RandomSearch().run(ChoiceSpace("t", [Dimension("x", [[0, 1]])]),
                           lambda g: g.astype(float), budget=-3)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_constraints_are_honoured(space: MobileNetV3Space, name: str) -> None:
    score = _mbv3_scorer(space)
    limit = 12.0
    res = STRATEGIES[name](budget=400).run(space, score, seed=0,
                                           constraints=upper_bounds([limit, None]))
    front = res.front()
    assert len(front) >= 2
    assert (res.objectives[front, 0] <= limit).all()
    assert np.array_equal(res.feasible, res.objectives[:, 0] <= limit)
    assert (res.violation[~res.feasible] > 0).all()
    # the feasible front is the non-dominated set of the feasible rows
    feas = np.flatnonzero(res.feasible)
    assert set(front) <= set(feas[nondominated_mask(res.objectives[feas])])
    nothing = STRATEGIES[name](budget=100).run(space, score, seed=0,
                                               constraints=upper_bounds([0.5, None]))
    assert len(nothing.front()) == 0 and not nothing.feasible.any()


def test_constraint_domination_steers_evolution(space: MobileNetV3Space) -> None:
    """A narrow feasible band of latencies: constraint domination moves the population
    into it, so the search finds far more feasible candidates than the same search
    without constraints does."""
    score = _mbv3_scorer(space)

    def band(objectives: np.ndarray) -> np.ndarray:
        return np.maximum(0.0, np.abs(objectives[:, 0] - 10.0) - 0.3)

    con = EvolutionSearch(population=64, budget=1000).run(space, score, constraints=band)
    free = EvolutionSearch(population=64, budget=1000).run(space, score)
    assert con.feasible.sum() > 3 * max(int((band(free.objectives) == 0).sum()), 1)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_three_objectives(name: str) -> None:
    problem = Additive(m=3)
    res = STRATEGIES[name](budget=600).run(problem.space, problem, seed=0)
    assert res.objectives.shape == (600, 3)
    front = res.front()
    assert len(front) >= 5
    assert set(front) <= set(np.flatnonzero(nondominated_mask(res.objectives)))
    assert _brute_ranks(res.objectives[front]).max() == 0
    assert len(res.history[-1]["best"]) == 3


def test_same_seed_same_result_and_initial_genomes_first(space: MobileNetV3Space) -> None:
    score = _mbv3_scorer(space)
    a = EvolutionSearch(population=32, budget=200).run(space, score, seed=5)
    b = EvolutionSearch(population=32, budget=200).run(space, score, seed=5)
    c = EvolutionSearch(population=32, budget=200).run(space, score, seed=6)
    assert np.array_equal(a.genomes, b.genomes) and not np.array_equal(a.genomes, c.genomes)
    init = space.sample_genomes(np.random.default_rng(9), 5)
    for make in STRATEGIES.values():
        res = make(budget=50).run(space, score, initial=init)
        assert np.array_equal(res.genomes[:5], init)
        big = space.to_genomes([space.largest(), space.smallest()])
        assert np.array_equal(res.genomes[5:7], big)


def test_a_bad_scorer_or_constraint_is_named(space: MobileNetV3Space) -> None:
    s = EvolutionSearch(population=8, budget=40)
    with pytest.raises(ValueError, match="the scorer returned shape"):
        s.run(space, lambda g: np.zeros((len(g) + 1, 2)))
    with pytest.raises(ValueError, match="non-finite"):
        s.run(space, lambda g: np.full((len(g), 2), np.nan))
    with pytest.raises(ValueError, match="constraints must return"):
        s.run(space, _mbv3_scorer(space), constraints=lambda o: -np.ones(len(o)))
    with pytest.raises(ValueError, match="initial"):
        s.run(space, _mbv3_scorer(space), initial=np.zeros((1, 3), dtype=int))
    with pytest.raises(ValueError, match=r"expects objectives of shape \(n, 3\)"):
        upper_bounds([1.0, None, 2.0])(np.zeros((2, 2)))


def test_evolution_beats_random_at_equal_budget(space: MobileNetV3Space) -> None:
    score = _mbv3_scorer(space)
    evo = EvolutionSearch(population=32, budget=480).run(space, score)
    rnd = RandomSearch(population=480).run(space, score)
    assert evo.evaluations == rnd.evaluations == 480
    ref = np.array([50.0, 0.0])
    assert hypervolume(evo.objectives, ref) > hypervolume(rnd.objectives, ref)


def test_pick_family_spreads_over_latency() -> None:
    lat = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], float)
    acc = np.array([10, 20, 30, 40, 50, 60, 70, 80, 90, 95], float)
    idx = pick_family(lat, acc, 4)
    assert idx.tolist() == [0, 3, 6, 9]
    assert pick_family(lat[:2], acc[:2], 4).tolist() == [0, 1]
    with pytest.raises(ValueError, match="family.k"):
        pick_family(lat, acc, 0)


def test_pick_family_members_are_distinguishable_and_span_the_front() -> None:
    lat = np.array([1.0, 1.05, 1.1, 2.0, 2.05, 3.0, 3.02])
    acc = np.array([50, 51, 52, 60, 61, 70, 71], float)
    half = 0.04  # +-40 us intervals: 1.0/1.05 overlap, 1.0/1.1 do not
    idx = pick_family(lat, acc, 7, low_ms=lat - half, high_ms=lat + half)
    chosen = idx.tolist()
    assert chosen[0] == 0 and chosen[-1] == 6  # fastest and most accurate: the widest range
    lo, hi = lat[idx] - half, lat[idx] + half
    assert np.all(hi[:-1] < lo[1:])  # no two members' intervals overlap
    assert len(chosen) < 7  # look-alikes are not padded in
    # without intervals every front point is a candidate
    assert len(pick_family(lat, acc, 7)) == 7
    # a front that is all within the noise collapses to its most accurate point
    flat = pick_family(lat[:2], acc[:2], 3, low_ms=lat[:2] - 1, high_ms=lat[:2] + 1)
    assert flat.tolist() == [1]
    with pytest.raises(ValueError, match="both"):
        pick_family(lat, acc, 3, low_ms=lat)


def test_study_records_and_resumes(tmp_path: Path, space: MobileNetV3Space) -> None:
    import optuna

    rows = [{"config": space.largest(), "latency_ms": 3.0, "accuracy": 90.0},
            {"config": space.smallest(), "latency_ms": 1.0, "accuracy": 80.0}]
    db = tmp_path / "study.db"
    assert record_measurements(db, "v", space, rows) == 2
    assert record_measurements(db, "v", space, rows[:1]) == 2  # resumed, no duplicate
    study = optuna.load_study(study_name="v", storage=f"sqlite:///{db}")
    assert sorted(t.values[0] for t in study.best_trials) == [1.0, 3.0]


def test_accuracy_tolerance_keeps_points_within_the_noise() -> None:
    lat = np.array([1.0, 2.0, 3.0, 4.0])
    acc = np.array([90.0, 90.3, 92.0, 91.8])
    # plain Pareto: 4.0 ms is dominated by 3.0 ms
    assert pick_family(lat, acc, 4).tolist() == [0, 1, 2]
    # within 0.5 points, 4.0 ms is not worse than 3.0 ms: the family may span to it
    assert pick_family(lat, acc, 4, accuracy_tolerance=0.5).tolist() == [0, 1, 2, 3]
    # a point beaten by more than the tolerance by a faster one stays out
    assert 0 not in pick_family(np.array([2.0, 1.0]), np.array([80.0, 90.0]), 2,
                                accuracy_tolerance=0.5).tolist()
    with pytest.raises(ValueError, match="accuracy_tolerance"):
        pick_family(lat, acc, 2, accuracy_tolerance=-1)


# -- options and generations ---------------------------------------------------------------
def test_checked_options_names_the_allowed_options() -> None:
    """The decorator itself (applied here, at test time): known keyword options pass,
    an unknown one or a positional one is a TypeError listing the allowed options."""
    from switchnas.search.strategies import _checked_options

    class Opt:
        @_checked_options
        def __init__(self, *, alpha: int = 1, beta: int = 2) -> None:
            self.alpha, self.beta = alpha, beta

    assert Opt(beta=3).beta == 3 and Opt().alpha == 1
    with pytest.raises(TypeError, match=re.escape(
            "Opt: unknown option 'alpah' (did you mean 'alpha'?); allowed options are "
            "['alpha', 'beta']")):
        Opt(alpah=1)
    with pytest.raises(TypeError, match=re.escape(
            "Opt takes keyword options only; allowed: ['alpha', 'beta']")):
        Opt(1)


def _grid_space() -> ChoiceSpace:
    return ChoiceSpace("grid", [Dimension("x", [[0, 1, 2, 3]] * 6)])  # 4096 sub-networks


def _grid_score(g: np.ndarray) -> np.ndarray:
    g = np.asarray(g, float)
    return np.stack([g.sum(axis=1), -(g ** 2).sum(axis=1)], axis=1)


@pytest.mark.parametrize("population", [4, 8, 20])
def test_evolution_scores_a_full_first_population(population: int) -> None:
    """The first generation is a whole population (the extremes, then random samples),
    in a space far larger than it."""
    res = EvolutionSearch(population=population, budget=2 * population).run(
        _grid_space(), _grid_score, seed=0)
    assert res.history[0]["generation"] == 0
    assert res.history[0]["new"] == population


def test_evolution_ranks_only_the_fronts_selection_needs(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """After the first generation, parents and children are ranked only until the
    fronts hold a population (``until=population``): the rest need no exact rank."""
    from switchnas.search import strategies

    calls: list[int | None] = []
    real = strategies.rank_and_crowding

    def spy(obj: np.ndarray, viol: np.ndarray, until: int | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
        calls.append(until)
        return real(obj, viol, until=until)

    monkeypatch.setattr(strategies, "rank_and_crowding", spy)
    EvolutionSearch(population=8, budget=40).run(_grid_space(), _grid_score, seed=0)
    assert len(calls) >= 2
    assert calls[0] is None and set(calls[1:]) == {8}
