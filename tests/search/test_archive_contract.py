"""Contract tests of switchnas.search.archive: de-duplication, budget, scorer and
constraint checks with their messages, history records, the callback and SearchResult."""

from __future__ import annotations

import re

import numpy as np
import pytest

from switchnas.search.archive import Archive, SearchResult, distinct_rows
from switchnas.supernets.space import ChoiceSpace, Dimension


def _space(width: int = 4, positions: int = 2) -> ChoiceSpace:
    return ChoiceSpace("t", [Dimension("k", [list(range(width))] * positions)])


def _sum_score(g: np.ndarray) -> np.ndarray:
    g = np.asarray(g, float)
    return np.stack([g.sum(axis=1), -g[:, 0]], axis=1)


def _arc(score=_sum_score, constraints=None, callback=None, limit=10, space=None,
         progress=False, desc="search") -> Archive:
    return Archive(space or _space(), score, constraints, callback, limit, progress, desc)


G = np.array([[0, 1], [1, 0], [0, 1], [2, 2], [1, 0], [3, 3]], dtype=np.int64)


# -- keys ----------------------------------------------------------------------------------
@pytest.mark.parametrize("width, itemsize", [(2, 1), (256, 1), (257, 8)])
def test_key_width_follows_the_largest_dimension(width: int, itemsize: int) -> None:
    arc = _arc(space=_space(width, 3))
    keys = arc.keys(np.zeros((2, 3), np.int64))
    assert len(keys) == 2 and all(isinstance(k, bytes) for k in keys)
    assert len(keys[0]) == 3 * itemsize


def test_keys_tell_rows_apart() -> None:
    arc = _arc()
    keys = arc.keys(G)
    assert keys[0] == keys[2] and keys[1] == keys[4]
    assert len(set(keys)) == 4
    assert keys[0] != keys[1]  # same values, different positions


# -- new / budget ----------------------------------------------------------------------------
def test_new_drops_repeats_and_scored_rows_and_respects_limits() -> None:
    arc = _arc(limit=10)
    assert arc.remaining == 10
    assert arc.new(G).tolist() == [[0, 1], [1, 0], [2, 2], [3, 3]]
    assert arc.new(G, limit=2).tolist() == [[0, 1], [1, 0]]
    assert arc.new(G, limit=0).shape == (0, 2)
    assert arc.new(G, limit=-1).shape == (0, 2)
    arc.evaluate(np.array([[1, 0], [2, 2]]), 0)
    assert arc.remaining == 8
    assert arc.new(G).tolist() == [[0, 1], [3, 3]]
    assert arc.new(G[:2]).tolist() == [[0, 1]]
    assert arc.new(np.array([[1, 0]])).shape == (0, 2)


def test_new_is_capped_by_the_remaining_budget() -> None:
    arc = _arc(limit=3)
    arc.evaluate(np.array([[0, 0]]), 0)
    assert arc.remaining == 2
    assert arc.new(G).tolist() == [[0, 1], [1, 0]]
    assert arc.new(G, limit=5).tolist() == [[0, 1], [1, 0]]
    assert arc.new(G, limit=1).tolist() == [[0, 1]]
    arc.evaluate(np.array([[0, 1], [1, 0]]), 1)
    assert arc.remaining == 0
    assert arc.new(G).shape == (0, 2)


def test_lookup() -> None:
    arc = _arc()
    arc.evaluate(np.array([[1, 0], [2, 2]]), 0)
    arc.evaluate(np.array([[3, 3]]), 1)
    got = arc.lookup(np.array([[2, 2], [0, 0], [3, 3], [1, 0]]))
    assert got.tolist() == [1, -1, 2, 0]
    assert got.dtype == np.int64


# -- evaluate ---------------------------------------------------------------------------------
def test_evaluate_returns_objectives_and_zero_violation() -> None:
    arc = _arc()
    obj, viol = arc.evaluate(np.array([[1, 2], [3, 0]]), 7)
    assert obj.tolist() == [[3.0, -1.0], [3.0, -3.0]]
    assert obj.dtype == np.float64
    assert viol.tolist() == [0.0, 0.0]
    assert arc.m == 2 and arc.evaluations == 2
    assert arc.history == [{"generation": 7, "evaluated": 2, "new": 2, "front": 1,
                            "best": [3.0, -3.0]}]


def test_one_dimensional_scores_are_one_objective() -> None:
    arc = _arc(score=lambda g: np.asarray(g, float).sum(axis=1))
    obj, _ = arc.evaluate(np.array([[1, 2], [0, 0]]), 0)
    assert obj.shape == (2, 1)
    assert arc.m == 1
    assert arc.history[-1]["best"] == [0.0]
    assert arc.history[-1]["front"] == 1


def test_scorer_shape_errors() -> None:
    arc = _arc(score=lambda g: np.zeros((len(g) + 1, 2)))
    with pytest.raises(ValueError, match=r"^the scorer returned shape \(3, 2\) for 2 genomes; expected \(n, m\)$"):
        arc.evaluate(np.array([[1, 2], [3, 0]]), 0)
    arc = _arc(score=lambda g: np.zeros((len(g), 2, 1)))
    with pytest.raises(ValueError, match=r"^the scorer returned shape \(1, 2, 1\) for 1 genomes"):
        arc.evaluate(np.array([[1, 2]]), 0)
    # the number of objectives is fixed by the first batch
    m = iter([2, 3])
    arc = _arc(score=lambda g: np.zeros((len(g), next(m))))
    arc.evaluate(np.array([[1, 2]]), 0)
    with pytest.raises(ValueError, match=r"^the scorer returned shape \(1, 3\) for 1 genomes; expected \(n, 2\)$"):
        arc.evaluate(np.array([[0, 2]]), 1)


def test_scorer_non_finite_error_counts_rows() -> None:
    def score(g: np.ndarray) -> np.ndarray:
        out = np.zeros((len(g), 2))
        out[0] = [np.nan, np.inf]
        out[2, 1] = -np.inf
        return out

    arc = _arc(score=score)
    with pytest.raises(ValueError, match=r"^the scorer returned non-finite objectives for 2 of 3 genomes$"):
        arc.evaluate(np.array([[1, 2], [3, 0], [0, 0]]), 0)
    assert arc.evaluations == 0 and arc.history == []


def test_constraints_violation_is_recorded_and_steers_history() -> None:
    arc = _arc(constraints=lambda o: np.maximum(o[:, 0] - 3.0, 0.0))
    obj, viol = arc.evaluate(np.array([[3, 3], [2, 2]]), 0)
    assert viol.tolist() == [3.0, 1.0]
    assert arc.history[-1] == {"generation": 0, "evaluated": 2, "new": 2, "front": 0, "best": None}
    obj, viol = arc.evaluate(np.array([[0, 1], [1, 0], [0, 0]]), 1)
    assert viol.tolist() == [0.0, 0.0, 0.0]
    # feasible: (1,0) (1,-1) (0,0): front {(1,-1), (0,0)}; best (0, -1)
    assert arc.history[-1] == {"generation": 1, "evaluated": 5, "new": 3, "front": 2,
                               "best": [0.0, -1.0]}
    res = arc.result()
    assert res.violation.tolist() == [3.0, 1.0, 0.0, 0.0, 0.0]
    assert res.feasible.tolist() == [False, False, True, True, True]


def test_best_and_front_accumulate_over_batches() -> None:
    arc = _arc()
    arc.evaluate(np.array([[3, 3]]), 0)                    # (6, -3)
    arc.evaluate(np.array([[0, 0]]), 1)                    # (0, 0)
    arc.evaluate(np.array([[3, 0], [3, 3]][:1]), 2)        # (3, -3) dominates (6, -3)
    arc.evaluate(np.array([[1, 1]]), 3)                    # (2, -1)
    fronts = [h["front"] for h in arc.history]
    bests = [h["best"] for h in arc.history]
    assert fronts == [1, 2, 2, 3]
    assert bests == [[6.0, -3.0], [0.0, -3.0], [0.0, -3.0], [0.0, -3.0]]
    assert [h["evaluated"] for h in arc.history] == [1, 2, 3, 4]
    assert [h["generation"] for h in arc.history] == [0, 1, 2, 3]
    assert all(isinstance(x, float) for x in bests[0])


def test_equal_objective_rows_count_once_in_the_front() -> None:
    arc = _arc(score=lambda g: np.zeros((len(g), 2)))
    arc.evaluate(np.array([[0, 0], [1, 1], [2, 2]]), 0)
    assert arc.history[-1]["front"] == 1


@pytest.mark.parametrize("viol, shown", [
    (lambda o: -np.ones(len(o)), r"got \(2,\) \(min -1.0\)"),
    (lambda o: np.ones(len(o) + 1), r"got \(3,\) \(min 1.0\)"),
    (lambda o: np.array([0.0, np.nan]), r"got \(2,\) \(min nan\)"),
    (lambda o: np.zeros(0), r"got \(0,\) \(min n/a\)"),
])
def test_constraint_output_is_checked(viol, shown: str) -> None:
    arc = _arc(constraints=viol)
    with pytest.raises(ValueError, match=r"^constraints must return a finite violation >= 0 per "
                                         r"candidate, shape \(2,\); " + shown + "$"):
        arc.evaluate(np.array([[1, 2], [3, 0]]), 0)


def test_constraints_column_vector_is_accepted_and_not_called_for_empty_batches() -> None:
    calls = []

    def cons(o: np.ndarray) -> np.ndarray:
        calls.append(len(o))
        return np.zeros((len(o), 1))

    arc = _arc(constraints=cons)
    obj, viol = arc.evaluate(np.zeros((0, 2), np.int64), 0)
    assert calls == [] and viol.shape == (0,)
    obj, viol = arc.evaluate(np.array([[1, 1]]), 1)
    assert calls == [1] and viol.tolist() == [0.0]


def test_callback_true_stops_and_sees_each_batch() -> None:
    seen = []

    def cb(g: np.ndarray, o: np.ndarray):
        seen.append((g.tolist(), o.tolist()))
        return len(seen) >= 2

    arc = _arc(callback=cb, limit=10)
    arc.evaluate(np.array([[1, 0]]), 0)
    assert not arc.stopped and arc.remaining == 9
    arc.evaluate(np.array([[0, 1]]), 1)
    assert seen == [([[1, 0]], [[1.0, -1.0]]), ([[0, 1]], [[1.0, 0.0]])]
    assert arc.stopped and arc.remaining == 0
    assert arc.new(G).shape == (0, 2)


def test_callback_none_or_false_does_not_stop() -> None:
    arc = _arc(callback=lambda g, o: None)
    arc.evaluate(np.array([[1, 0]]), 0)
    assert not arc.stopped
    arc = _arc(callback=lambda g, o: False)
    arc.evaluate(np.array([[1, 0]]), 0)
    assert not arc.stopped and arc.remaining == 9


# -- result -------------------------------------------------------------------------------------
def test_result_concatenates_in_scoring_order() -> None:
    arc = _arc()
    arc.evaluate(np.array([[1, 0], [2, 2]]), 0)
    arc.evaluate(np.array([[3, 3]]), 1)
    res = arc.result()
    assert isinstance(res, SearchResult)
    assert res.genomes.tolist() == [[1, 0], [2, 2], [3, 3]]
    assert res.objectives.tolist() == [[1.0, -1.0], [4.0, -2.0], [6.0, -3.0]]
    assert res.violation.tolist() == [0.0, 0.0, 0.0]
    assert res.evaluations == 3
    assert res.history == arc.history and len(res.history) == 2
    assert res.configs(_space()) == [{"k": [1, 0]}, {"k": [2, 2]}, {"k": [3, 3]}]


def test_empty_result_shapes() -> None:
    res = _arc(space=_space(4, 3)).result()
    assert res.genomes.shape == (0, 3) and res.genomes.dtype == np.int64
    assert res.objectives.shape == (0, 0)
    assert res.violation.shape == (0,)
    assert res.evaluations == 0 and res.history == []
    assert res.front().tolist() == []


def test_progress_lines_only_when_enabled(capsys: pytest.CaptureFixture[str]) -> None:
    arc = _arc(limit=2, progress=True, desc="my-search")
    arc.evaluate(np.array([[1, 0], [2, 2]]), 0)
    arc.result()
    err = capsys.readouterr().err
    assert re.search(r"my-search: 2/2", err)
    arc = _arc(limit=2, progress=False, desc="quiet-search")
    arc.evaluate(np.array([[1, 0], [2, 2]]), 0)
    arc.result()
    captured = capsys.readouterr()
    assert "quiet-search" not in captured.err + captured.out


def test_search_result_front_sorted_feasible_first_of_equal() -> None:
    obj = np.array([[3.0, 1.0], [1.0, 3.0], [2.0, 2.0], [1.0, 3.0], [0.5, 0.5], [2.5, 2.5]])
    viol = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    res = SearchResult(np.zeros((6, 1), np.int64), obj, viol, 6)
    assert res.front().tolist() == [1, 2, 0]
    assert res.history == []
    assert res.feasible.tolist() == [True, True, True, True, False, True]
    res2 = SearchResult(np.zeros((2, 1), np.int64), obj[:2], np.ones(2), 2)
    assert res2.front().tolist() == []
    # equal rows: the first scored is kept even when it is not the first by index order
    obj3 = np.array([[1.0, 1.0], [0.0, 5.0], [1.0, 1.0]])
    res3 = SearchResult(np.zeros((3, 1), np.int64), obj3, np.array([1.0, 0.0, 0.0]), 3)
    assert res3.front().tolist() == [1, 2]


def test_distinct_rows() -> None:
    pts = np.array([[2.0, 1.0], [1.0, 5.0], [2.0, 1.0], [1.0, 2.0], [2.0, 0.0]])
    assert distinct_rows(pts).tolist() == [[1.0, 2.0], [1.0, 5.0], [2.0, 0.0], [2.0, 1.0]]
    one = np.array([[3.0, 4.0]])
    assert distinct_rows(one).tolist() == [[3.0, 4.0]]
    assert distinct_rows(np.zeros((0, 2))).shape == (0, 2)
    rng = np.random.default_rng(0)
    for _ in range(10):
        p = rng.integers(0, 3, size=(int(rng.integers(2, 30)), 3)).astype(float)
        assert distinct_rows(p).tolist() == np.unique(p, axis=0).tolist()


# -- dtypes, ties and small inputs ------------------------------------------------------------------
def test_integer_scores_and_violations_become_floats() -> None:
    arc = _arc(score=lambda g: np.asarray(g, np.int64) * 2,
               constraints=lambda o: (o[:, 0] > 2).astype(np.int64))
    obj, viol = arc.evaluate(np.array([[1, 2], [3, 0]]), 0)
    assert obj.dtype == np.float64 and viol.dtype == np.float64
    assert viol.tolist() == [0.0, 1.0]
    res = arc.result()
    assert res.objectives.dtype == np.float64 and res.violation.dtype == np.float64
    arc = _arc(score=lambda g: [["1", "2"]] * len(g), constraints=lambda o: [False] * len(o))
    obj, viol = arc.evaluate(np.array([[1, 2]]), 0)
    assert obj.tolist() == [[1.0, 2.0]] and viol.dtype == np.float64


def test_non_finite_count_is_of_rows() -> None:
    def score(g: np.ndarray) -> np.ndarray:
        out = np.zeros((len(g), 2))
        out[0] = np.nan
        return out

    with pytest.raises(ValueError, match=r"non-finite objectives for 1 of 3 genomes$"):
        _arc(score=score).evaluate(np.array([[1, 2], [3, 0], [0, 0]]), 0)


def test_a_space_without_positions() -> None:
    arc = _arc(space=ChoiceSpace("e", []), limit=3)
    assert arc.remaining == 3 and arc.stopped is False
    assert _arc().stopped is False


def test_lookup_of_nothing_is_an_empty_int_array() -> None:
    got = _arc().lookup(np.zeros((0, 2), np.int64))
    assert got.shape == (0,) and got.dtype == np.int64


def test_distinct_rows_of_two() -> None:
    assert distinct_rows(np.array([[1.0, 1.0], [1.0, 1.0]])).tolist() == [[1.0, 1.0]]
    assert distinct_rows(np.array([[2.0, 0.0], [1.0, 0.0]])).tolist() == [[1.0, 0.0], [2.0, 0.0]]


def test_front_ties_on_the_first_objective_keep_scoring_order() -> None:
    f0 = np.random.default_rng(0).integers(0, 3, 100).astype(float)
    obj = np.stack([f0, np.arange(100.0), -np.arange(100.0)], axis=1)  # all non-dominated
    res = SearchResult(np.zeros((100, 1), np.int64), obj, np.zeros(100), 100)
    assert res.front().tolist() == np.argsort(f0, kind="stable").tolist()
