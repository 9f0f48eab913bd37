"""Contract tests of switchnas.search.pareto: exact values on small hand-computed inputs,
error messages, the ``until`` cut-off and crowding against a reference implementation."""

from __future__ import annotations

import itertools
import re
import warnings

import numpy as np
import pytest

from switchnas.search.pareto import (
    crowding_distance,
    crowding_distances,
    hypervolume,
    nondominated_mask,
    nondominated_ranks,
    pareto_mask,
    rank_and_crowding,
)


def _brute_ranks(obj: np.ndarray) -> np.ndarray:
    ranks = np.full(len(obj), -1)
    r = 0
    while (ranks < 0).any():
        left = np.flatnonzero(ranks < 0)
        o = obj[left]
        new = [i for i in left
               if not np.any(np.all(o <= obj[i], axis=1) & np.any(o < obj[i], axis=1))]
        ranks[new] = r
        r += 1
    return ranks


def _brute_crowding(obj: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Per front and objective: (next - previous) / span, boundaries +inf (distinct values)."""
    n, m = obj.shape
    dist = np.zeros(n)
    for r in np.unique(ranks):
        rows = np.flatnonzero(ranks == r)
        for j in range(m):
            srt = rows[np.argsort(obj[rows, j], kind="stable")]
            v = obj[srt, j]
            span = v.max() - v.min()
            for k, i in enumerate(srt):
                if k == 0 or k == len(srt) - 1:
                    dist[i] += np.inf
                elif span > 0:
                    dist[i] += (v[k + 1] - v[k - 1]) / span
    return dist


# -- input validation ----------------------------------------------------------------------
@pytest.mark.parametrize("fn", [nondominated_ranks, nondominated_mask, crowding_distance])
def test_non_finite_objectives_are_rejected_with_the_documented_message(fn) -> None:
    for bad in ([[np.nan, 0.0]], [[0.0, np.inf]], [[1.0], [-np.inf]]):
        with pytest.raises(ValueError, match=r"^objectives must be finite; got NaN or infinite values$"):
            fn(np.array(bad))


def test_crowding_distances_rejects_nan_with_message() -> None:
    with pytest.raises(ValueError, match="got NaN or infinite"):
        crowding_distances([[np.nan, 0.0]], [0])


@pytest.mark.parametrize("shape", [(3,), (2, 2, 2)])
def test_objectives_must_be_two_dimensional(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"^objectives must be a 2-D array \(n, m\), got shape "
                                         + re.escape(str(shape)) + "$"):
        nondominated_ranks(np.zeros(shape))


def test_empty_inputs() -> None:
    e = np.zeros((0, 2))
    r = nondominated_ranks(e)
    assert r.shape == (0,) and r.dtype == np.int64
    assert nondominated_mask(e).shape == (0,)
    assert crowding_distance(e).shape == (0,)
    d = crowding_distances(e, [])
    assert d.shape == (0,)
    assert pareto_mask(np.zeros(0), np.zeros(0)).tolist() == []
    assert hypervolume(e, [1.0, 1.0]) == 0.0
    assert nondominated_ranks(np.zeros((0, 3))).tolist() == []


def test_ranks_length_mismatch_message() -> None:
    with pytest.raises(ValueError, match=r"^ranks has 2 entries for 3 rows$"):
        crowding_distances(np.zeros((3, 2)), [0, 0])


# -- pareto_mask ---------------------------------------------------------------------------
def test_pareto_mask_keeps_first_of_equal_points_and_drops_dominated() -> None:
    lat = np.array([2.0, 1.0, 1.0, 3.0, 0.5])
    acc = np.array([70.0, 60.0, 60.0, 80.0, 10.0])
    assert pareto_mask(lat, acc).tolist() == [True, True, False, True, True]
    # the second of two equal points is dropped even when it comes first in latency order
    assert pareto_mask(np.array([1.0, 1.0, 1.0]), np.array([5.0, 6.0, 6.0])).tolist() == \
        [False, True, False]
    # equal latency, lower accuracy: dominated
    assert pareto_mask(np.array([1.0, 1.0]), np.array([6.0, 5.0])).tolist() == [True, False]
    assert pareto_mask(np.array([1.0]), np.array([0.0])).tolist() == [True]


def test_pareto_mask_matches_definition() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        n = int(rng.integers(1, 40))
        lat = rng.integers(0, 5, n).astype(float)
        acc = rng.integers(0, 5, n).astype(float)
        want = []
        for i in range(n):
            dom = any((lat[j] <= lat[i] and acc[j] >= acc[i] and (lat[j] < lat[i] or acc[j] > acc[i]))
                      or (j < i and lat[j] == lat[i] and acc[j] == acc[i]) for j in range(n))
            want.append(not dom)
        assert pareto_mask(lat, acc).tolist() == want


# -- ranks ---------------------------------------------------------------------------------
def test_single_objective_ranks_are_dense_value_ranks() -> None:
    r = nondominated_ranks(np.array([[3.0], [1.0], [3.0], [2.0]]))
    assert r.tolist() == [2, 0, 2, 1]
    assert r.dtype == np.int64


def test_two_objective_exact_ranks_with_ties() -> None:
    obj = np.array([[1, 3], [2, 2], [3, 1], [3, 3], [1, 3], [2, 3], [4, 4]], float)
    assert nondominated_ranks(obj).tolist() == [0, 0, 0, 2, 0, 1, 3]
    assert nondominated_mask(obj).tolist() == [True, True, True, False, True, False, False]
    # equal f0, different f1: the larger f1 is dominated
    assert nondominated_ranks(np.array([[1.0, 2.0], [1.0, 1.0]])).tolist() == [1, 0]
    assert nondominated_mask(np.array([[1.0, 2.0], [1.0, 1.0]])).tolist() == [False, True]


def test_three_objective_exact_ranks() -> None:
    obj = np.array([[0, 0, 1], [0, 1, 0], [1, 1, 1], [1, 1, 1], [2, 2, 2], [0, 0, 1]], float)
    assert nondominated_ranks(obj).tolist() == [0, 0, 1, 1, 2, 0]
    assert nondominated_mask(obj).tolist() == [True, True, False, False, False, True]


def _layers(fronts: int, size: int) -> np.ndarray:
    """``fronts`` anti-diagonal fronts of ``size`` points each (front k shifted by k*size)."""
    return np.array([[i + k * size, size - 1 - i + k * size]
                     for k in range(fronts) for i in range(size)], dtype=float)


@pytest.mark.parametrize("size", [5, 16, 20, 40])
def test_large_fronts_are_peeled_exactly(size: int) -> None:
    obj = _layers(3, size)
    rng = np.random.default_rng(size)
    perm = rng.permutation(len(obj))
    obj = obj[perm]
    want = _brute_ranks(obj)
    assert sorted(np.bincount(want).tolist()) == [size] * 3
    assert nondominated_ranks(obj).tolist() == want.tolist()
    assert nondominated_mask(obj).tolist() == (want == 0).tolist()


@pytest.mark.parametrize("until, want_max", [(1, 1), (19, 1), (20, 1), (21, 2), (40, 2), (41, 3), (60, 3)])
def test_until_stops_two_objective_peeling(until: int, want_max: int) -> None:
    obj = _layers(4, 20)  # four fronts of 20 rows: peeled (>= 16 rows each)
    full = _brute_ranks(obj)
    got = nondominated_ranks(obj, until=until)
    assert got.tolist() == np.minimum(full, want_max).tolist()


def test_until_counts_duplicate_rows() -> None:
    # front 0: 16 distinct points, the first one twice -> 17 rows; until=17 stops after it
    f0 = [[float(i), float(15 - i)] for i in range(16)]
    obj = np.array(f0 + [f0[0]] + [[x + 20, y + 20] for x, y in f0] + [[x + 40, y + 40] for x, y in f0])
    full = _brute_ranks(obj)
    assert nondominated_ranks(obj, until=17).tolist() == np.minimum(full, 1).tolist()
    assert nondominated_ranks(obj, until=18).tolist() == np.minimum(full, 2).tolist()
    assert nondominated_ranks(obj, until=None).tolist() == full.tolist()


@pytest.mark.parametrize("until, cut", [(1, 1), (2, 1), (3, 2), (4, 2), (5, 3), (7, 4), (100, 4)])
def test_until_stops_many_objective_ranking(until: int, cut: int) -> None:
    # 3 objectives, four fronts of two rows each (plus equal rows counting separately)
    obj = np.array([[k, k, k + 1] for k in range(4)] + [[k, k + 1, k] for k in range(4)], float)
    full = _brute_ranks(obj)
    assert full.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    assert nondominated_ranks(obj, until=until).tolist() == np.minimum(full, cut).tolist()


def test_ranks_match_definition_random() -> None:
    rng = np.random.default_rng(11)
    for m in (2, 3, 4):
        for trial in range(12):
            n = int(rng.integers(1, 90))
            obj = (rng.integers(0, 4, size=(n, m)).astype(float) if trial % 2
                   else rng.normal(size=(n, m)))
            assert nondominated_ranks(obj).tolist() == _brute_ranks(obj).tolist()


# -- crowding --------------------------------------------------------------------------------
def test_crowding_exact_values_single_front() -> None:
    obj = np.array([[0.0, 10.0], [1.0, 6.0], [4.0, 2.0], [10.0, 0.0]])
    cd = crowding_distance(obj)
    assert np.isinf(cd[0]) and np.isinf(cd[3])
    # row 1: (4-0)/10 + (10-2)/10 = 1.2 ; row 2: (10-1)/10 + (6-0)/10 = 1.5
    assert cd[1] == pytest.approx(1.2)
    assert cd[2] == pytest.approx(1.5)


def test_crowding_zero_span_objective_adds_nothing() -> None:
    d = crowding_distances([[1, 5], [2, 5], [3, 5]], [0, 0, 0])
    assert np.isinf(d[0]) and np.isinf(d[2])
    assert d[1] == 1.0


def test_crowding_small_fronts_are_all_infinite_and_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            d = crowding_distances([[0.0], [5.0], [10.0]], [0, 1, 2])
            assert np.isinf(d).all()
            d = crowding_distances([[0.0, 1.0], [1.0, 0.0], [7.0, 7.0]], [0, 0, 1])
            assert np.isinf(d).all()
            d = crowding_distances([[2.0, 2.0], [2.0, 2.0], [2.0, 2.0]], [0, 0, 0])
            assert np.isinf(d[[0, 2]]).sum() >= 2 and d.tolist().count(0.0) == 1


def test_crowding_several_fronts_exact() -> None:
    obj = np.array([[0.0, 4.0], [2.0, 2.0], [4.0, 0.0],      # front 0
                    [1.0, 9.0], [3.0, 5.0], [5.0, 4.0], [9.0, 1.0]])  # front 1
    ranks = np.array([0, 0, 0, 1, 1, 1, 1])
    d = crowding_distances(obj, ranks)
    assert np.isinf(d[[0, 2, 3, 6]]).all()
    assert d[1] == pytest.approx(2.0)           # 4/4 + 4/4
    assert d[4] == pytest.approx(4 / 8 + 5 / 8)  # f0 neighbours 1 and 5 (span 8); f1 4 and 9 (span 8)
    assert d[5] == pytest.approx(6 / 8 + 4 / 8)  # f0 neighbours 3 and 9; f1 1 and 5
    # ranks given as a column and in any order of fronts give the same answer
    perm = np.array([6, 2, 4, 0, 5, 1, 3])
    d2 = crowding_distances(obj[perm], ranks[perm].reshape(-1, 1))
    assert d2.tolist() == d[perm].tolist()


def test_crowding_matches_reference_on_random_fronts() -> None:
    rng = np.random.default_rng(5)
    for trial in range(25):
        n = int(rng.integers(1, 40))
        m = int(rng.integers(1, 4))
        # distinct values per column, so the order of neighbours is unambiguous
        obj = np.stack([rng.permutation(n * 3)[:n].astype(float) for _ in range(m)], axis=1)
        ranks = rng.integers(0, 4, n) if trial % 2 else _brute_ranks(obj)
        got = crowding_distances(obj, ranks)
        want = _brute_crowding(obj, np.asarray(ranks))
        assert got.shape == (n,)
        assert np.array_equal(np.isinf(got), np.isinf(want))
        fin = np.isfinite(want)
        assert np.allclose(got[fin], want[fin])


def test_crowding_large_n_uses_wide_ranks() -> None:
    # more than 2**15 rows: rank values beyond int16 must not wrap
    n = 2**15 + 4
    obj = np.arange(n, dtype=float).reshape(-1, 1)
    ranks = np.zeros(n, dtype=np.int64)
    ranks[-3:] = 70000
    d = crowding_distances(obj, ranks)
    assert np.isinf(d[[0, n - 4, n - 3, n - 1]]).all()
    assert d[1] == pytest.approx(2 / (n - 4))
    assert d[n - 2] == pytest.approx(1.0)


# -- hypervolume -------------------------------------------------------------------------------
def test_hypervolume_exact() -> None:
    obj = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    # reference (4, 4): 1*3 + 1*2 + 1*1... computed as staircase: widths 1,1,1 heights 1,2,3
    assert hypervolume(obj, [4.0, 4.0]) == pytest.approx(6.0)
    # dominated and duplicate rows add nothing
    more = np.vstack([obj, [[3.0, 3.0], [2.0, 2.0]]])
    assert hypervolume(more, np.array([4.0, 4.0])) == pytest.approx(6.0)
    # rows not strictly better than the reference add nothing
    assert hypervolume(np.array([[4.0, 0.0], [0.0, 4.0]]), [4.0, 4.0]) == 0.0
    assert hypervolume(np.array([[0.0, 0.0]]), [2.0, 3.0]) == pytest.approx(6.0)
    assert isinstance(hypervolume(obj, [4.0, 4.0]), float)


def test_hypervolume_matches_grid_count() -> None:
    rng = np.random.default_rng(8)
    for _ in range(20):
        n = int(rng.integers(1, 12))
        obj = rng.integers(0, 8, size=(n, 2)).astype(float)
        ref = np.array([6.0, 7.0])
        cells = sum(1 for x, y in itertools.product(range(6), range(7))
                    if np.any((obj[:, 0] <= x) & (obj[:, 1] <= y)))
        assert hypervolume(obj, ref) == pytest.approx(float(cells))


@pytest.mark.parametrize("obj, ref", [
    (np.zeros((2, 3)), [1.0, 1.0]),
    (np.zeros((2, 2)), [1.0, 1.0, 1.0]),
    (np.zeros((2, 2)), [1.0, np.inf]),
    (np.zeros((2, 2)), [np.nan, 1.0]),
])
def test_hypervolume_rejects_bad_shapes(obj, ref) -> None:
    with pytest.raises(ValueError, match=r"^hypervolume needs \(n, 2\) objectives and a finite "
                                         r"2-point reference; got \(2, \d\) and \["):
        hypervolume(obj, ref)


# -- rank_and_crowding ---------------------------------------------------------------------------
def test_rank_and_crowding_feasible_then_infeasible_by_violation() -> None:
    obj = np.array([[0.0, 4.0], [2.0, 2.0], [4.0, 0.0], [3.0, 3.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    viol = np.array([0.0, 0.0, 0.0, 0.0, 2.0, 0.5, 2.0])
    rank, crowd = rank_and_crowding(obj, viol)
    assert rank.tolist() == [0, 0, 0, 1, 3, 2, 3]
    assert rank.dtype == np.int64
    assert np.isinf(crowd[[0, 2, 3]]).all()
    assert crowd[1] == pytest.approx(2.0)
    assert crowd[4:].tolist() == [0.0, 0.0, 0.0]


def test_rank_and_crowding_all_infeasible_and_all_feasible() -> None:
    obj = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    rank, crowd = rank_and_crowding(obj, np.array([3.0, 1.0, 3.0]))
    assert rank.tolist() == [1, 0, 1]
    assert crowd.tolist() == [0.0, 0.0, 0.0]
    rank, crowd = rank_and_crowding(obj, np.zeros(3))
    assert rank.tolist() == [0, 1, 2]
    assert np.isinf(crowd).all()


def test_rank_and_crowding_until_passes_through() -> None:
    obj = np.array([[k, k, k + 1] for k in range(4)] + [[k, k + 1, k] for k in range(4)], float)
    viol = np.zeros(8)
    viol[-1] = 1.0
    rank, _ = rank_and_crowding(obj, viol, until=3)
    # feasible fronts 0 and 1 hold 4 rows >= 3: the other feasible rows share rank 2, the
    # infeasible row comes after them
    assert rank.tolist() == [0, 1, 2, 2, 0, 1, 2, 3]


# -- conversions and edge cases ------------------------------------------------------------------
def test_inputs_are_converted_to_floats() -> None:
    # numbers given as strings are read as numbers, not compared as text
    obj = [["1", "10"], ["2", "9"], ["10", "1"], ["3", "10"]]
    assert nondominated_ranks(obj).tolist() == [0, 0, 0, 1]
    assert nondominated_mask(obj).tolist() == [True, True, True, False]
    d = crowding_distance([["0"], ["1"], ["4"]])
    assert d[1] == pytest.approx(4 / 4)
    assert hypervolume([["1", "1"]], ["2", "3"]) == pytest.approx(2.0)
    assert pareto_mask(["1", "2"], ["10", "9"]).tolist() == [True, False]
    assert pareto_mask([1.0, 2.0], ["9", "10"]).tolist() == [True, True]


def test_reference_of_any_shape_with_two_numbers() -> None:
    obj = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    assert hypervolume(obj, [[4.0, 4.0]]) == pytest.approx(6.0)
    assert hypervolume(obj, np.array([[4.0], [4.0]])) == pytest.approx(6.0)


def test_rank_dtypes() -> None:
    for m in (1, 2, 3, 4):
        obj = np.random.default_rng(m).integers(0, 3, size=(30, m)).astype(float)
        assert nondominated_ranks(obj).dtype == np.int64
        assert nondominated_ranks(obj, until=3).dtype == np.int64


def test_a_point_level_with_an_earlier_one_on_f1_is_dominated_in_large_fronts() -> None:
    # a 20-point anti-diagonal front (peeled) plus points that tie one member's f1 (or f0)
    # with a larger f0 (or f1): dominated, so not in the front
    front = [[float(i), float(19 - i)] for i in range(20)]
    extra = [[5.5, 14.0], [7.0, 12.5], [19.5, 0.0], [0.0, 19.5]]
    obj = np.array(front + extra)
    want = _brute_ranks(obj)
    assert want[20:].tolist() == [1, 1, 1, 1]
    assert nondominated_ranks(obj).tolist() == want.tolist()
    assert nondominated_mask(obj).tolist() == (want == 0).tolist()


def test_crowding_with_a_span_below_one() -> None:
    d = crowding_distance(np.array([[0.0], [0.1], [0.5]]))
    assert d[1] == pytest.approx(1.0)
    d = crowding_distance(np.array([[0.0, 0.4], [0.1, 0.1], [0.5, 0.0]]))
    assert d[1] == pytest.approx(1.0 + 0.4 / 0.4)


def test_crowding_front_labels_need_not_be_small() -> None:
    obj = np.arange(6, dtype=float).reshape(-1, 1)
    small = crowding_distances(obj, np.array([0, 1, 0, 1, 0, 1]))
    for big in (65536, 2**15, -(2**15) - 1, 2**40):
        got = crowding_distances(obj, np.array([0, big, 0, big, 0, big]))
        assert got.tolist() == small.tolist()
    assert small.tolist()[2:4] == [1.0, 1.0]
    # labels that are equal modulo 2**16 are still different fronts
    for a, b in ((-25536, 40000), (0, 65536), (1, -65535), (-(2**15), 2**15)):
        got = crowding_distances(obj, np.array([a, b, a, b, a, b]))
        assert got.tolist() == small.tolist()
