"""Contract tests of switchnas.search.family.pick_family: exact members on small inputs,
the ends, the spread targets, interval separation, the accuracy tolerance, extra
objectives and every error message."""

from __future__ import annotations

import re

import numpy as np
import pytest

from switchnas.search.family import pick_family

LAT = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
ACC = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0]


@pytest.mark.parametrize("k, want", [
    (1, [8]), (2, [0, 8]), (3, [0, 4, 8]), (4, [0, 3, 5, 8]), (5, [0, 2, 4, 6, 8]),
    (9, list(range(9))), (12, list(range(9))),
])
def test_members_spread_evenly_over_the_front(k: int, want: list[int]) -> None:
    got = pick_family(LAT, ACC, k)
    assert got.tolist() == want
    assert got.dtype.kind == "i"


def test_members_nearest_to_targets_and_ties_go_to_the_faster() -> None:
    assert pick_family([1, 2, 4, 10], [1, 2, 3, 4], 3).tolist() == [0, 2, 3]   # target 5.5
    assert pick_family([1, 3, 5], [1, 2, 3], 3).tolist() == [0, 1, 2]
    assert pick_family([1, 2, 4, 5], [1, 2, 3, 4], 3).tolist() == [0, 1, 3]   # 2 and 4 tie for 3


def test_result_is_sorted_by_latency_not_by_index() -> None:
    lat = [9.0, 1.0, 5.0, 3.0]
    acc = [90.0, 10.0, 50.0, 30.0]
    assert pick_family(lat, acc, 3).tolist() == [1, 2, 0]
    assert pick_family(lat, acc, 4).tolist() == [1, 3, 2, 0]
    assert pick_family(lat, acc, 1).tolist() == [0]


def test_dominated_points_are_never_members() -> None:
    lat = [1.0, 2.0, 3.0, 4.0, 2.5]
    acc = [10.0, 5.0, 30.0, 40.0, 30.0]  # 1 is dominated by 0, 2 by 4
    assert pick_family(lat, acc, 5).tolist() == [0, 4, 3]


def test_empty_and_single_point() -> None:
    got = pick_family([], [], 3)
    assert got.tolist() == [] and len(got) == 0
    assert pick_family([2.0], [1.0], 1).tolist() == [0]
    assert pick_family([2.0], [1.0], 2).tolist() == [0]   # both ends are the same point
    assert pick_family([2.0], [1.0], 5).tolist() == [0]


# -- intervals --------------------------------------------------------------------------------
def test_overlapping_or_touching_intervals_are_one_member_too_many() -> None:
    lat, acc = [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]
    # touching intervals (hi == lo) cannot be told apart
    got = pick_family(lat, acc, 3, low_ms=[0.5, 1.5, 2.5], high_ms=[1.5, 2.5, 3.5])
    assert got.tolist() == [0, 2]
    got = pick_family(lat, acc, 3, low_ms=[0.5, 1.6, 2.5], high_ms=[1.4, 2.4, 3.5])
    assert got.tolist() == [0, 1, 2]
    # the fastest overlaps the slowest: only the slowest (the most accurate) is kept
    got = pick_family([1.0, 2.0], [1.0, 2.0], 2, low_ms=[0.0, 0.9], high_ms=[1.1, 3.0])
    assert got.tolist() == [1]
    # a middle member must be apart from every member chosen so far
    got = pick_family([1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 2.0, 3.0, 4.0, 5.0], 5,
                      low_ms=[0.9, 1.9, 2.5, 3.5, 4.9], high_ms=[1.1, 2.1, 3.5, 4.1, 5.1])
    assert got.tolist() == [0, 1, 2, 4]


def test_zero_width_intervals_behave_like_no_intervals() -> None:
    got = pick_family(LAT, ACC, 5, low_ms=LAT, high_ms=LAT)
    assert got.tolist() == [0, 2, 4, 6, 8]


@pytest.mark.parametrize("which", ["low_ms", "high_ms"])
def test_intervals_need_both_bounds(which: str) -> None:
    with pytest.raises(ValueError, match=r"^give both low_ms and high_ms, or neither$"):
        pick_family([1.0], [1.0], 1, **{which: [1.0]})


# -- tolerance --------------------------------------------------------------------------------
def test_accuracy_tolerance_keeps_points_within_noise() -> None:
    lat, acc = [1.0, 2.0, 3.0], [5.0, 4.5, 6.0]
    assert pick_family(lat, acc, 3).tolist() == [0, 2]
    assert pick_family(lat, acc, 3, accuracy_tolerance=0.5).tolist() == [0, 1, 2]   # == tol: noise
    assert pick_family(lat, acc, 3, accuracy_tolerance=0.49).tolist() == [0, 2]
    # equal latency counts as "at most as slow"
    assert pick_family([1.0, 1.0], [5.0, 3.0], 2, accuracy_tolerance=1.0).tolist() == [0]
    assert sorted(pick_family([1.0, 1.0], [5.0, 3.0], 2, accuracy_tolerance=2.0).tolist()) == [0, 1]
    # a slower, more accurate point never excludes a faster one
    assert pick_family([1.0, 2.0], [1.0, 10.0], 2, accuracy_tolerance=1.0).tolist() == [0, 1]


@pytest.mark.parametrize("tol", [-0.1, float("nan"), float("inf"), -float("inf")])
def test_bad_tolerance_is_rejected(tol: float) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(
            f"family.accuracy_tolerance must be a finite number >= 0, got {tol!r}") + "$"):
        pick_family([1.0], [1.0], 1, accuracy_tolerance=tol)


def test_zero_tolerance_is_the_plain_front() -> None:
    lat, acc = [1.0, 2.0, 3.0], [5.0, 4.99, 6.0]
    assert pick_family(lat, acc, 3, accuracy_tolerance=0.0).tolist() == [0, 2]
    assert pick_family(lat, acc, 3, accuracy_tolerance=0).tolist() == [0, 2]


# -- extra objectives ----------------------------------------------------------------------------
def test_extra_objectives_keep_points_good_on_another_target() -> None:
    lat, acc = [1.0, 2.0, 3.0], [1.0, 1.0, 3.0]
    assert pick_family(lat, acc, 3).tolist() == [0, 2]
    assert pick_family(lat, acc, 3, extra_objectives=[5.0, 0.0, 5.0]).tolist() == [0, 1, 2]
    assert pick_family(lat, acc, 3, extra_objectives=[[5.0], [0.0], [5.0]]).tolist() == [0, 1, 2]
    # the extra column is minimised: a worse extra value does not rescue the point
    assert pick_family(lat, acc, 3, extra_objectives=[0.0, 5.0, 0.0]).tolist() == [0, 2]
    # no extra columns at all: the plain front
    assert pick_family(lat, acc, 3, extra_objectives=np.zeros((3, 0))).tolist() == [0, 2]


def test_extra_objectives_with_unsigned_accuracy() -> None:
    got = pick_family([1.0, 2.0], np.array([0, 200], np.uint8), 2, extra_objectives=[0.0, 0.0])
    assert got.tolist() == [0, 1]
    got = pick_family([1.0, 2.0], ["0.7", "0.9"], 2, accuracy_tolerance=0.01)
    assert got.tolist() == [0, 1]


def test_extra_objectives_with_tolerance() -> None:
    lat, acc = [1.0, 2.0, 3.0], [5.0, 4.0, 6.0]
    assert pick_family(lat, acc, 3, accuracy_tolerance=0.5).tolist() == [0, 2]
    # point 1 is better than point 0 on the extra column: 0 no longer excludes it
    assert pick_family(lat, acc, 3, accuracy_tolerance=0.5,
                       extra_objectives=[1.0, 0.0, 1.0]).tolist() == [0, 1, 2]
    # equal extra values: "no worse" still holds, point 1 stays out
    assert pick_family(lat, acc, 3, accuracy_tolerance=0.5,
                       extra_objectives=[[1.0, 2.0], [1.0, 2.0], [0.0, 0.0]]).tolist() == [0, 2]


def test_extra_objectives_validation_messages() -> None:
    with pytest.raises(ValueError, match=r"^extra_objectives must be \(3, j\); got shape \(2, 1\)$"):
        pick_family([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], 2, extra_objectives=[[1.0], [2.0]])
    with pytest.raises(ValueError, match=r"^extra_objectives must be \(2, j\); got shape \(2, 1, 1\)$"):
        pick_family([1.0, 2.0], [1.0, 2.0], 2, extra_objectives=np.zeros((2, 1, 1)))
    with pytest.raises(ValueError, match=r"^extra_objectives must be finite \(every point measured on "
                                         r"every target\)$"):
        pick_family([1.0, 2.0], [1.0, 2.0], 2, extra_objectives=[1.0, np.nan])
    with pytest.raises(ValueError, match=r"^extra_objectives must be finite"):
        pick_family([1.0, 2.0], [1.0, 2.0], 2, extra_objectives=[[1.0], [np.inf]])


# -- other errors --------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [0, -1])
def test_k_must_be_positive(k: int) -> None:
    with pytest.raises(ValueError, match=f"^family.k must be >= 1, got {k}$"):
        pick_family([1.0], [1.0], k)


def test_length_mismatch_message() -> None:
    with pytest.raises(ValueError, match=r"^arrays differ in length: latency 2, accuracy 1, "
                                         r"intervals 2/2$"):
        pick_family([1.0, 2.0], [1.0], 1)
    with pytest.raises(ValueError, match=r"^arrays differ in length: latency 2, accuracy 2, "
                                         r"intervals 1/2$"):
        pick_family([1.0, 2.0], [1.0, 2.0], 1, low_ms=[1.0], high_ms=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"^arrays differ in length: latency 2, accuracy 2, "
                                         r"intervals 2/3$"):
        pick_family([1.0, 2.0], [1.0, 2.0], 1, low_ms=[1.0, 2.0], high_ms=[1.0, 2.0, 3.0])


# -- conversions and ties ------------------------------------------------------------------------
def test_numbers_given_as_strings_are_read_as_numbers() -> None:
    assert pick_family(["1", "2", "10"], [1.0, 2.0, 3.0], 3).tolist() == [0, 1, 2]
    # intervals as strings: 9.5 < 10.5 as numbers, not as text
    got = pick_family([2.0, 11.0], [1.0, 2.0], 2, low_ms=["1.5", "10.5"], high_ms=[9.5, 11.5])
    assert got.tolist() == [0, 1]
    got = pick_family([2.0, 11.0], [1.0, 2.0], 2, low_ms=[1.5, 10.5], high_ms=["9.5", "11.5"])
    assert got.tolist() == [0, 1]
    got = pick_family([1.0, 2.0, 3.0], [1.0, 1.0, 3.0], 3, extra_objectives=["5", "0", "5"])
    assert got.tolist() == [0, 1, 2]


def test_interval_ending_where_another_begins_overlaps() -> None:
    got = pick_family([1.0, 2.0], [1.0, 2.0], 2, low_ms=[0.5, 2.0], high_ms=[2.0, 2.5])
    assert got.tolist() == [1]
    got = pick_family([1.0, 2.0], [1.0, 2.0], 2, low_ms=[0.5, 2.0], high_ms=[1.99, 2.5])
    assert got.tolist() == [0, 1]


def test_equal_latencies_keep_their_index_order() -> None:
    # 60 points on three latencies, all within the tolerance: the slowest end is the last
    # index at the largest latency, the fastest the first at the smallest, the middle
    # target the first at latency 2
    lat = np.random.default_rng(0).permutation(np.repeat([1.0, 2.0, 3.0], 20))
    got = pick_family(lat, lat, 3, accuracy_tolerance=0.1)
    assert got.tolist() == [int(np.flatnonzero(lat == 1.0)[0]), int(np.flatnonzero(lat == 2.0)[0]),
                            int(np.flatnonzero(lat == 3.0)[-1])]
