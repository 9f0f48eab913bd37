"""Contract tests of switchnas.search.loop: option validation and its messages, the random
first rounds, evaluate's answers (extras, failures, shapes), callbacks, LoopResult, and the
exact hypervolume gains and greedy batch choice on hand-computed inputs."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from switchnas.search.archive import SearchResult
from switchnas.search.loop import (
    LoopResult,
    _choose,
    _GreedyGains,
    _propose,
    hypervolume_improvement,
    run_loop,
)
from switchnas.search.strategies import RandomSearch
from switchnas.search.surrogate import CANDIDATES
from switchnas.supernets.space import ChoiceSpace, Dimension


def _space(width: int = 4, positions: int = 4) -> ChoiceSpace:
    return ChoiceSpace("lc", [Dimension("x", [list(range(width))] * positions)])


def _obj(configs: list[dict[str, Any]]) -> np.ndarray:
    g = np.asarray([c["x"] for c in configs], float)
    return np.stack([g.sum(axis=1), -(g ** 2).sum(axis=1)], axis=1)


def _run(space: ChoiceSpace | None = None, evaluate=_obj, **kw: Any):
    space = space or _space()
    opts: dict[str, Any] = dict(budget=4, batch_size=2, encode=space.one_hot_genomes)
    opts.update(kw)
    return run_loop(space, evaluate, **opts)


# -- option validation ------------------------------------------------------------------------
@pytest.mark.parametrize("name, value", [
    ("budget", 0), ("budget", True), ("budget", 2.0), ("budget", "3"),
    ("batch_size", 0), ("batch_size", -1), ("batch_size", False), ("batch_size", 1.5),
    ("patience", 0), ("patience", None),
])
def test_integer_options_are_checked(name: str, value: Any) -> None:
    kw = {name: value}
    least = 1
    with pytest.raises(ValueError, match="^" + re.escape(f"{name}={value!r}: must be an integer >= {least}") + "$"):
        _run(**kw)


def test_integer_options_accept_numpy_integers_and_one() -> None:
    res = _run(budget=np.int64(2), batch_size=np.int32(1), patience=1)
    assert res.evaluations == 2 and len(res.rounds) == 2


@pytest.mark.parametrize("kappa, tol", [(-0.1, 0.0), (0.0, -1e-9), (float("nan"), 1e-4),
                                        (0.5, float("nan"))])
def test_kappa_and_tol_must_be_non_negative(kappa: float, tol: float) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(
            f"kappa={kappa!r}, tol={tol!r}: both must be >= 0") + "$"):
        _run(kappa=kappa, tol=tol)


def test_zero_kappa_and_tol_are_valid() -> None:
    res = _run(kappa=0.0, tol=0.0)
    assert res.evaluations == 4 and res.stopped == "budget"


@pytest.mark.parametrize("models", [("ridge", "lasso"), (), "ridge", ["nope"]])
def test_models_are_checked(models: Any) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(
            f"models={models!r}: choose one or more of {list(CANDIDATES)}") + "$"):
        _run(models=models)


# -- the random first rounds -------------------------------------------------------------------
def test_first_round_measures_largest_and_smallest_first() -> None:
    space = _space()
    res = _run(space, budget=4, batch_size=2)
    assert res.configs[0] == space.largest()
    assert res.configs[1] == space.smallest()
    assert res.evaluations == 4
    assert res.stopped == "budget"
    assert [r["round"] for r in res.rounds] == [0, 1]
    assert [r["new"] for r in res.rounds] == [2, 2]
    assert [r["measured"] for r in res.rounds] == [2, 4]
    for r in res.rounds:
        assert set(r) == {"round", "seconds_choose", "measured", "new", "seconds_evaluate"}
    assert len({tuple(g) for g in res.genomes.tolist()}) == 4
    assert res.objectives.shape == (4, 2)
    assert res.genomes.shape == (4, 4)
    assert res.violation is None
    assert res.attrs == [{}, {}, {}, {}]


def test_initial_configs_are_measured_first_in_order() -> None:
    space = _space()
    init = [{"x": [1, 2, 3, 0]}, {"x": [0, 0, 1, 1]}, {"x": [2, 2, 2, 2]}]
    res = _run(space, budget=3, batch_size=3, initial=init)
    assert res.configs == init
    assert len(res.rounds) == 1


def test_initial_number_of_random_sub_networks() -> None:
    # initial=3 with batch 2: the random phase measures 2 then 1 (what is left of 3)
    res = _run(budget=3, batch_size=2, initial=3)
    assert [r["new"] for r in res.rounds] == [2, 1]


def test_default_initial_round_is_sixteen_or_twice_the_batch() -> None:
    # budget 16, batch 2: all 8 rounds are random (no surrogate, no "gain")
    res = _run(budget=16, batch_size=2)
    assert len(res.rounds) == 8 and all("gain" not in r for r in res.rounds)
    # batch 9: 2 * 9 = 18 random sub-networks in batches of 9
    res = _run(budget=18, batch_size=9)
    assert [r["new"] for r in res.rounds] == [9, 9]
    assert all("gain" not in r for r in res.rounds)


def test_after_the_initial_round_surrogates_choose() -> None:
    space = _space()
    res = _run(space, budget=18, batch_size=2, models=("ridge",),
               strategy=RandomSearch(population=40, generations=1))
    assert [("gain" in r) for r in res.rounds] == [False] * 8 + [True]
    last = res.rounds[-1]
    assert last["models"] == ["ridge", "ridge"]
    assert set(last) == {"round", "seconds_choose", "measured", "new", "seconds_evaluate",
                         "models", "gain"}
    assert last["measured"] == 18 and last["new"] == 2
    assert isinstance(last["gain"], float) and last["gain"] >= 0.0


def test_a_small_space_is_exhausted() -> None:
    space = _space(width=2, positions=2)  # 4 sub-networks
    res = _run(space, budget=10, batch_size=3)
    assert res.stopped == "exhausted"
    assert res.evaluations == 4 and len(res.configs) == 4


def test_progress_bar_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    _run(progress=True)
    assert "loop:" in capsys.readouterr().err
    _run(progress=False)
    assert "loop:" not in capsys.readouterr().err


# -- evaluate's answers ---------------------------------------------------------------------------
def test_extras_are_kept_as_attrs() -> None:
    def evaluate(configs):
        return _obj(configs), [{"i": sum(c["x"])} for c in configs]

    res = _run(evaluate=evaluate)
    assert res.attrs == [{"i": sum(c["x"])} for c in res.configs]


def test_one_objective_may_come_as_a_vector() -> None:
    res = _run(evaluate=lambda cs: _obj(cs)[:, 0])
    assert res.objectives.shape == (4, 1)


def test_non_finite_rows_are_failed_not_kept_and_not_retried() -> None:
    calls: list[int] = []

    def evaluate(configs):
        calls.append(len(configs))
        y = _obj(configs)
        if len(calls) == 1:
            y[0, 1] = np.nan
        return y

    res = _run(evaluate=evaluate, budget=4, batch_size=2)
    assert res.evaluations == 4 and len(res.objectives) == 4
    assert np.isfinite(res.objectives).all()
    assert res.rounds[0]["new"] == 1 and res.rounds[0]["measured"] == 1
    assert calls == [2, 2, 1]
    # the largest sub-network (first in the first batch) failed: it is never measured again
    assert _space().largest() not in res.configs
    assert _space().smallest() in res.configs


def test_three_failed_batches_in_a_row_raise() -> None:
    with pytest.raises(RuntimeError, match=r"^evaluate returned non-finite objectives for every "
                                           r"sub-network of three batches in a row$"):
        _run(evaluate=lambda cs: np.full((len(cs), 2), np.nan), budget=10)


def test_two_failed_batches_then_a_good_one_continue() -> None:
    calls: list[int] = []

    def evaluate(configs):
        calls.append(1)
        y = _obj(configs)
        if len(calls) in (1, 2, 4, 5):
            y[:] = np.inf
        return y

    res = _run(evaluate=evaluate, budget=4, batch_size=2)
    assert res.evaluations == 4
    assert len(calls) == 6  # fail, fail, good, fail, fail, good


@pytest.mark.parametrize("answer, message", [
    (lambda cs: (_obj(cs), [{}] * len(cs), 1),
     r"^evaluate returned a tuple of 3 items; return objectives, or \(objectives, extras\)$"),
    (lambda cs: (_obj(cs), [{}]), r"^evaluate's extras must be a list of 2 dicts \(one per config\); got list$"),
    (lambda cs: (_obj(cs), "ab"), r"^evaluate's extras must be a list of 2 dicts \(one per config\); got str$"),
    (lambda cs: (_obj(cs), [{}, 1]), r"^evaluate's extras must be a list of 2 dicts \(one per config\); got list$"),
    (lambda cs: (_obj(cs), None), r"^evaluate's extras must be a list of 2 dicts \(one per config\); got NoneType$"),
    (lambda cs: [["a", "b"]] * len(cs), r"^evaluate must return numbers \(n, m\); got "),
    (lambda cs: _obj(cs)[:1], r"^evaluate returned objectives of shape \(1, 2\) for 2 configs; expected \(2, m\)$"),
    (lambda cs: np.zeros((len(cs), 2, 1)),
     r"^evaluate returned objectives of shape \(2, 2, 1\) for 2 configs; expected \(2, m\)$"),
])
def test_bad_answers_raise(answer, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _run(evaluate=answer)


def test_objective_count_is_fixed_by_the_first_batch() -> None:
    calls: list[int] = []

    def evaluate(configs):
        calls.append(1)
        y = _obj(configs)
        return y if len(calls) == 1 else np.hstack([y, y])

    with pytest.raises(ValueError, match=r"^evaluate returned objectives of shape \(2, 4\) for 2 "
                                         r"configs; expected \(2, 2\)$"):
        _run(evaluate=evaluate)
    calls.clear()

    def vector_later(configs):
        calls.append(1)
        y = _obj(configs)
        return y if len(calls) == 1 else y[:, 0]

    with pytest.raises(ValueError, match=r"^evaluate returned objectives of shape \(2,\) for 2 "
                                         r"configs; expected \(2, 2\)$"):
        _run(evaluate=vector_later)


def test_evaluate_exceptions_propagate() -> None:
    def evaluate(configs):
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        _run(evaluate=evaluate)


# -- callback -----------------------------------------------------------------------------------
def test_callback_sees_completed_rows_and_stops() -> None:
    seen: list[tuple[int, list[list[float]]]] = []

    def evaluate(configs):
        y = _obj(configs)
        y[1] = np.nan
        return y

    def cb(configs, objectives):
        seen.append((len(configs), np.asarray(objectives).tolist()))
        return len(seen) == 2

    res = _run(evaluate=evaluate, budget=10, batch_size=2, callback=cb)
    assert res.stopped == "callback"
    assert [s[0] for s in seen] == [1, 1]
    assert all(np.isfinite(s[1]).all() for s in seen)
    assert res.evaluations == 2 and len(res.rounds) == 2


def test_callback_returning_none_does_not_stop() -> None:
    res = _run(callback=lambda c, o: None)
    assert res.stopped == "budget" and res.evaluations == 4


def test_constraints_give_a_violation_per_row() -> None:
    res = _run(constraints=lambda o: np.maximum(o[:, 0] - 6.0, 0.0))
    assert res.violation is not None
    assert res.violation.tolist() == np.maximum(res.objectives[:, 0] - 6.0, 0.0).tolist()
    assert res.feasible.tolist() == (res.violation == 0).tolist()


# -- LoopResult ---------------------------------------------------------------------------------
def test_loop_result_front_and_feasible() -> None:
    obj = np.array([[3.0, 1.0], [1.0, 3.0], [2.0, 2.0], [2.5, 2.5], [0.5, 0.5]])
    r = LoopResult([{}] * 5, obj, np.zeros((5, 1), np.int64), [{}] * 5, 5)
    assert r.feasible.tolist() == [True] * 5
    assert r.front().tolist() == [4]
    assert r.stopped == "budget" and r.rounds == [] and r.violation is None
    r = LoopResult([{}] * 5, obj, np.zeros((5, 1), np.int64), [{}] * 5, 5,
                   violation=np.array([0.0, 0.0, 0.0, 0.0, 1.0]))
    assert r.feasible.tolist() == [True, True, True, True, False]
    assert r.front().tolist() == [1, 2, 0]
    r = LoopResult([], np.zeros((2, 2)), np.zeros((2, 1)), [], 0, violation=np.ones(2))
    f = r.front()
    assert f.tolist() == [] and f.dtype == np.int64


# -- hypervolume gains ------------------------------------------------------------------------------
def test_hypervolume_improvement_one_objective() -> None:
    assert hypervolume_improvement([[3.0]], [[1.0], [4.0], [2.5]], [5.0]).tolist() == [2.0, 0.0, 0.5]
    # a held point beyond the reference holds nothing
    assert hypervolume_improvement([[6.0]], [[1.0], [4.0], [2.5], [7.0]], [5.0]).tolist() == \
        [4.0, 1.0, 2.5, 0.0]
    assert hypervolume_improvement(np.zeros((0, 1)), [[1.0]], [5.0]).tolist() == [4.0]


def test_hypervolume_improvement_two_objectives_exact() -> None:
    F = [[1.0, 3.0], [3.0, 1.0]]
    C = [[2.0, 2.0], [0.0, 0.0], [5.0, 0.0], [3.0, 1.0], [2.0, 0.5], [4.0, 0.0]]
    want = [1.0, 11.0, 0.0, 0.0, 3.0, 0.0]
    assert hypervolume_improvement(F, C, [4.0, 4.0]).tolist() == want
    # dominated, repeated and out-of-reference held points change nothing
    more = F + [[3.0, 3.0], [1.0, 3.0], [5.0, 0.0], [4.0, 1.0]]
    assert hypervolume_improvement(more, C, np.array([4.0, 4.0])).tolist() == want
    assert hypervolume_improvement(np.zeros((0, 2)), C, [4.0, 4.0]).tolist() == \
        [4.0, 16.0, 0.0, 3.0, 7.0, 0.0]


def test_hypervolume_improvement_three_objectives_estimate() -> None:
    held = np.array([[0.5, 0.5, 0.5]])
    cands = np.array([[0.2, 0.2, 0.2], [0.9, 0.9, 0.9], [1.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
    g = hypervolume_improvement(held, cands, np.ones(3), rng=np.random.default_rng(1))
    assert g[0] == pytest.approx(0.8 ** 3 - 0.5 ** 3, abs=0.02)
    assert g[1] == pytest.approx(0.001, abs=0.003)
    assert g[2] == 0.0 and g[3] == 0.0
    # the default rng is seeded: the same answer twice
    a = hypervolume_improvement(held, cands, np.ones(3))
    assert np.array_equal(a, hypervolume_improvement(held, cands, np.ones(3)))
    # no held point: the candidate's whole box
    g = hypervolume_improvement(np.zeros((0, 3)), cands[:1], np.ones(3))
    assert g[0] == pytest.approx(0.8 ** 3, rel=0.05)
    many = np.tile(cands[:1], (300, 1))  # more than one chunk of 256
    g = hypervolume_improvement(held, many, np.ones(3), rng=np.random.default_rng(1))
    assert g.shape == (300,) and np.all(g == g[0])


def test_greedy_gains_base_is_the_held_volume() -> None:
    g = _GreedyGains(np.zeros((1, 3)), np.array([[0.5, 0.5, 0.5]]), np.full(3, 1.1),
                     np.random.default_rng(0))
    assert g.base == pytest.approx(1.1 ** 3, rel=1e-6)
    g = _GreedyGains(np.full((1, 3), 0.6), np.array([[0.1, 0.1, 0.1]]), np.full(3, 1.1),
                     np.random.default_rng(0))
    assert g.base == pytest.approx(0.5 ** 3, rel=0.1)
    two = _GreedyGains(np.zeros((1, 2)), np.array([[0.5, 0.5]]), np.full(2, 1.1),
                       np.random.default_rng(0))
    assert two.exact and two.base == 1.0


# -- the greedy batch --------------------------------------------------------------------------------
MEAS = np.array([[0.0, 1.0], [1.0, 0.0]])


def test_choose_first_pick_and_relative_gain() -> None:
    mean = np.array([[0.5, 0.5], [0.9, 0.9]])
    std = np.array([[0.0, 0.0], [1.0, 1.0]])
    # held hypervolume with reference 1.1: 0.21; A adds 0.25
    picks, gain = _choose(MEAS, mean, std, 1, kappa=0.0, rng=np.random.default_rng(0))
    assert picks == [0] and gain == pytest.approx(0.25 / 0.21)
    # optimism: B is judged at 0.9 - 0.5 = 0.4 and adds 0.36
    picks, gain = _choose(MEAS, mean, std, 1, kappa=0.5, rng=np.random.default_rng(0))
    assert picks == [1] and gain == pytest.approx(0.36 / 0.21)


def test_choose_counts_picks_at_their_mean_then_spreads_over_the_front() -> None:
    mean = np.array([[0.5, 0.5], [0.4, 0.6], [2.0, 2.0], [0.0, 1.0], [1.5, -0.5]])
    picks, gain = _choose(MEAS, mean, np.zeros((5, 2)), 5, kappa=0.0, rng=np.random.default_rng(0))
    assert picks == [0, 1, 4, 3]
    assert gain == pytest.approx(0.25 / 0.21)
    picks, _ = _choose(MEAS, mean, np.zeros((5, 2)), 3, kappa=0.0, rng=np.random.default_rng(0))
    assert picks == [0, 1, 4]
    picks, gain = _choose(MEAS, mean[2:], np.zeros((3, 2)), 1, kappa=0.0, rng=np.random.default_rng(0))
    assert picks == [2] and gain == 0.0


def test_choose_scales_objectives_by_the_measured_range() -> None:
    mean = np.array([[0.5, 0.5], [0.4, 0.6]])
    a, ga = _choose(MEAS, mean, np.zeros((2, 2)), 2, kappa=0.0, rng=np.random.default_rng(0))
    b, gb = _choose(MEAS * [10.0, 1000.0] + [5.0, -3.0], mean * [10.0, 1000.0] + [5.0, -3.0],
                    np.zeros((2, 2)), 2, kappa=0.0, rng=np.random.default_rng(0))
    assert a == b and ga == pytest.approx(gb)
    # a constant objective is not divided by zero
    flat = np.array([[0.0, 1.0], [1.0, 1.0]])
    picks, gain = _choose(flat, np.array([[0.5, 0.0]]), np.zeros((1, 2)), 1, kappa=0.0,
                          rng=np.random.default_rng(0))
    assert picks == [0] and np.isfinite(gain) and gain > 0


# -- proposals -----------------------------------------------------------------------------------
class _Fixed:
    def __init__(self, genomes: np.ndarray, objectives: np.ndarray, violation: np.ndarray):
        self.res = SearchResult(genomes, objectives, violation, len(genomes))

    def run(self, space, score, *, seed=0, budget=None, callback=None, constraints=None,
            progress=False, initial=None) -> SearchResult:
        return self.res


class _Sur:
    def __init__(self, fn):
        self.fn = fn

    def predict(self, X):
        return self.fn(np.asarray(X))

    def predict_std(self, X):
        return np.zeros((len(X), 2))


def test_propose_with_no_feasible_measured_row_returns_the_predicted_front_at_gain_one() -> None:
    space = _space(positions=3)
    G = np.array([[0, 0, 0], [3, 3, 3]], np.int64)
    Y = np.array([[0.0, 0.0], [9.0, -27.0]])
    cand = np.array([[1, 0, 0], [0, 1, 0], [2, 2, 2], [1, 1, 0]], np.int64)
    inner = _Fixed(cand, np.zeros((4, 2)), np.zeros(4))

    def predict(X):
        g = X.reshape(len(X), 3, 4).argmax(axis=2).astype(float)
        return np.stack([g.sum(axis=1), -g.max(axis=1)], axis=1)

    out, gain = _propose(space, _Sur(predict), space.one_hot_genomes, inner, G, Y,  # type: ignore[arg-type]
                         np.zeros((0, 3), np.int64), set(), 1, kappa=0.5, seed=0,
                         rng=np.random.default_rng(0),
                         constraints=lambda o: (o[:, 0] < 1.0) + (o[:, 0] > 6.0) * 1.0)
    assert gain == 1.0
    # predicted (1,-1) (1,-1) (6,-2) (2,-1): ranks 0 0 0 1, the first 3 * k in rank order
    assert out.tolist() == [[1, 0, 0], [0, 1, 0], [2, 2, 2]]


# -- rounds after the random phase -----------------------------------------------------------------
def test_fewer_than_four_rows_stay_random_one_at_a_time() -> None:
    res = _run(budget=4, batch_size=2, initial=2)
    assert [r["new"] for r in res.rounds] == [2, 1, 1]
    assert all("gain" not in r for r in res.rounds)


@pytest.mark.parametrize("patience, evaluations", [(1, 4), (2, 6), (3, 8)])
def test_converges_after_patience_quiet_rounds(patience: int, evaluations: int) -> None:
    res = _run(budget=40, batch_size=2, initial=4, tol=1e9, patience=patience,
               models=("ridge",), strategy=RandomSearch(population=20, generations=1))
    assert res.stopped == "converged"
    assert res.evaluations == evaluations
    # the round that found convergence measured nothing and is not in the history
    assert len(res.rounds) == 2 + (patience - 1)
    assert all(r["gain"] < 1e9 for r in res.rounds[2:])


def test_zero_tol_never_converges() -> None:
    res = _run(budget=8, batch_size=2, initial=4, tol=0.0, patience=1,
               models=("ridge",), strategy=RandomSearch(population=20, generations=1))
    assert res.stopped == "budget" and res.evaluations == 8


@pytest.mark.parametrize("cons", [
    lambda o: np.zeros(len(o) + 1),
    lambda o: -np.ones(len(o)),
    lambda o: np.full(len(o), np.nan),
])
def test_bad_constraint_output_is_an_error(cons) -> None:
    with pytest.raises(ValueError, match=r"^constraints must return one finite violation >= 0 per "
                                         r"row \(4 rows\); got shape \(\d+,\)$"):
        _run(constraints=cons)


def test_extras_may_be_any_mappings_and_are_copied() -> None:
    from types import MappingProxyType

    shared = {"a": 1}

    def evaluate(configs):
        return _obj(configs), [MappingProxyType(shared) for _ in configs]

    res = _run(evaluate=evaluate)
    assert res.attrs == [{"a": 1}] * 4
    assert all(type(a) is dict for a in res.attrs)
    res.attrs[0]["a"] = 2
    assert shared == {"a": 1} and res.attrs[1] == {"a": 1}
    with pytest.raises(ValueError, match=r"got tuple$"):
        _run(evaluate=lambda cs: (_obj(cs), tuple({} for _ in cs[:1])))


def test_with_a_study_every_measurement_is_a_trial(tmp_path) -> None:
    from switchnas.search.study import open_study

    space = _space()

    def evaluate(configs):
        return _obj(configs), [{"n": i} for i in range(len(configs))]

    with open_study(tmp_path / "s.db", "s", space, ["minimize", "minimize"], worker="w1") as st:
        res = run_loop(space, evaluate, budget=4, batch_size=2, encode=space.one_hot_genomes,
                       study=st)
        assert res.evaluations == 4 and res.stopped == "budget"
        assert len(res.configs) == 4 and res.objectives.shape == (4, 2)
        assert [a["n"] for a in res.attrs] == [0, 1, 0, 1]
        assert all(a["worker"] == "w1" for a in res.attrs)
        assert [a["trial_number"] for a in res.attrs] == [0, 1, 2, 3]
        assert res.configs[0] == space.largest() and res.configs[1] == space.smallest()
        # the same call again: the study already holds the budget
        again = run_loop(space, evaluate, budget=4, batch_size=2, encode=space.one_hot_genomes,
                         study=st)
        assert again.evaluations == 0 and again.rounds == [] and len(again.configs) == 4


def test_a_study_with_the_wrong_number_of_objectives_fails_the_batch(tmp_path) -> None:
    from switchnas.search.study import open_study

    space = _space()
    with open_study(tmp_path / "s.db", "s", space, ["minimize"]) as st:
        with pytest.raises(ValueError, match=r"^evaluate returned objectives of shape \(2, 2\) for 2 "
                                             r"configs; expected \(2, 1\)$"):
            run_loop(space, _obj, budget=4, batch_size=2, encode=space.one_hot_genomes, study=st)
        assert st.counts().get("COMPLETE", 0) == 0
        assert st.running() == []


# -- more exact cases -------------------------------------------------------------------------------
def test_choose_spreads_by_distance_to_what_is_held() -> None:
    # neither candidate gains anything: (1, 0) is a held point, (-0.5, 1.2) lies beyond the
    # reference; the one farther from every held point comes first
    mean = np.array([[1.0, 0.0], [-0.5, 1.2]])
    picks, gain = _choose(MEAS, mean, np.zeros((2, 2)), 2, kappa=0.0, rng=np.random.default_rng(0))
    assert picks == [1, 0] and gain == 0.0


def test_choose_with_three_objectives() -> None:
    meas = np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    mean = np.array([[0.2, 0.2, 0.2], [0.25, 0.25, 0.25], [2.0, 2.0, 2.0]])
    picks, gain = _choose(meas, mean, np.zeros((3, 3)), 2, kappa=0.0, rng=np.random.default_rng(0))
    assert picks[0] == 0 and len(picks) == 2
    assert gain > 0


def test_hypervolume_improvement_three_objectives_two_held_points() -> None:
    held = np.array([[0.5, 0.5, 0.5], [0.2, 0.8, 0.8]])
    g = hypervolume_improvement(held, np.zeros((1, 3)), np.ones(3), rng=np.random.default_rng(3))
    # 1 - (0.125 + 0.032 - 0.02)
    assert g[0] == pytest.approx(0.863, abs=0.02)


def test_exactly_three_failed_batches_raise() -> None:
    calls: list[int] = []

    def evaluate(configs):
        calls.append(1)
        y = _obj(configs)
        if len(calls) <= 3:
            y[:] = np.nan
        return y

    with pytest.raises(RuntimeError, match="three batches in a row"):
        _run(evaluate=evaluate, budget=10)
    assert len(calls) == 3


def test_failed_rows_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def evaluate(configs):
        calls.append(1)
        y = _obj(configs)
        if len(calls) == 1:
            y[0] = np.nan
        return y

    with caplog.at_level("WARNING", logger="switchnas.search.loop"):
        _run(evaluate=evaluate, budget=2, batch_size=2, initial=2)
    assert "loop: 1 of 2 evaluations returned non-finite objectives; they are not retried in " \
           "this run" in caplog.text


def test_violation_is_float_even_for_boolean_constraints() -> None:
    res = _run(constraints=lambda o: o[:, 0] > 6.0)
    assert res.violation is not None and res.violation.dtype == np.float64


class _Recording(_Fixed):
    def run(self, space, score, *, seed=0, budget=None, callback=None, constraints=None,
            progress=False, initial=None) -> SearchResult:
        self.initial = None if initial is None else np.asarray(initial).copy()
        return self.res


def _predict3(X):
    g = X.reshape(len(X), 3, 4).argmax(axis=2).astype(float)
    return np.stack([g.sum(axis=1), -g.max(axis=1)], axis=1)


def test_propose_starts_the_inner_search_from_the_feasible_front() -> None:
    space = _space(positions=3)
    G = np.array([[0, 0, 0], [3, 3, 3], [0, 0, 1], [2, 0, 0]], np.int64)
    Y = _predict3(space.one_hot_genomes(G))  # (0,0) (9,-3) (1,-1) (2,-2)
    cand = np.array([[1, 0, 0]], np.int64)
    cons = lambda o: (o[:, 0] > 8.0) * 1.0  # noqa: E731 - row 1 violates
    inner = _Recording(cand, np.zeros((1, 2)), np.zeros(1))
    _propose(space, _Sur(_predict3), space.one_hot_genomes, inner, G, Y,  # type: ignore[arg-type]
             np.zeros((0, 3), np.int64), set(), 1, kappa=0.0, seed=0,
             rng=np.random.default_rng(0), constraints=cons)
    assert inner.initial.tolist() == [[0, 0, 0], [0, 0, 1], [2, 0, 0]]
    # nothing feasible measured: the front of every measured row
    inner = _Recording(cand, np.zeros((1, 2)), np.zeros(1))
    _propose(space, _Sur(_predict3), space.one_hot_genomes, inner, G, Y,  # type: ignore[arg-type]
             np.zeros((0, 3), np.int64), set(), 1, kappa=0.0, seed=0,
             rng=np.random.default_rng(0), constraints=lambda o: np.ones(len(o)))
    assert inner.initial.tolist() == [[0, 0, 0], [3, 3, 3], [0, 0, 1], [2, 0, 0]]


def test_propose_counts_pending_predictions_as_held() -> None:
    space = _space(positions=3)
    G = np.array([[0, 0, 0], [3, 3, 3]], np.int64)
    Y = _predict3(space.one_hot_genomes(G))  # (0, 0), (9, -3)
    # candidates predicted (3, -3) and (2, -2); (3, -3) gains more unless a pending
    # sub-network is predicted at (3, -3) already
    cand = np.array([[3, 0, 0], [2, 0, 0]], np.int64)
    inner = _Fixed(cand, np.zeros((2, 2)), np.zeros(2))
    args = (space, _Sur(_predict3), space.one_hot_genomes, inner, G, Y)
    out, _ = _propose(*args, np.zeros((0, 3), np.int64), set(), 1, kappa=0.0, seed=0,  # type: ignore[arg-type]
                      rng=np.random.default_rng(0), constraints=lambda o: np.zeros(len(o)))
    assert out[0].tolist() == [3, 0, 0]
    pending = np.array([[0, 3, 0]], np.int64)  # predicted (3, -3)
    out, _ = _propose(*args, pending, set(), 1, kappa=0.0, seed=0,  # type: ignore[arg-type]
                      rng=np.random.default_rng(0), constraints=lambda o: np.zeros(len(o)))
    assert out[0].tolist() == [2, 0, 0]
