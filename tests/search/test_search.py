"""Pareto fronts, strategies on a known scorer, constraints, families, the SQLite study."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from switchnas.search.family import pick_family
from switchnas.search.pareto import crowding_distance, nondominated_ranks, pareto_mask
from switchnas.search.strategies import (
    EvolutionSearch,
    InfeasibleConstraintError,
    OptunaSearch,
    RandomSearch,
)
from switchnas.search.study import record_measurements
from switchnas.supernets.ofa.mbv3 import MobileNetV3Space


def test_pareto_mask_simple() -> None:
    lat = np.array([1.0, 2.0, 3.0, 2.5, 1.0])
    acc = np.array([50.0, 60.0, 70.0, 55.0, 40.0])
    assert pareto_mask(lat, acc).tolist() == [True, True, True, False, False]


def test_ranks_and_crowding() -> None:
    obj = np.array([[1, 3], [2, 2], [3, 1], [3, 3]], float)
    assert nondominated_ranks(obj).tolist() == [0, 0, 0, 1]
    cd = crowding_distance(obj[:3])
    assert np.isinf(cd[0]) and np.isinf(cd[2]) and np.isfinite(cd[1])


@pytest.fixture
def space() -> MobileNetV3Space:
    return MobileNetV3Space.build([3, 5, 7], [3, 4, 6], [2, 3, 4], [32, 40])


def _scorer(space: MobileNetV3Space):  # type: ignore[no-untyped-def]
    """A known trade-off: latency grows with the encoding's sum, accuracy saturates."""
    def score(configs):  # type: ignore[no-untyped-def]
        X = space.encode(configs)
        s = X.sum(1)
        return 1.0 + s, 100 * (1 - np.exp(-s / 10)) - 0.5 * X[:, :20].sum(1) % 1

    return score


@pytest.mark.parametrize("strategy", [
    EvolutionSearch(population=32, generations=10),
    OptunaSearch(population=16, generations=3),
    RandomSearch(population=200),
])
def test_strategies_return_a_front(space: MobileNetV3Space, strategy) -> None:  # type: ignore[no-untyped-def]
    res = strategy.run(space, _scorer(space), seed=0, progress=False)
    front = res.front
    assert len(front) >= 3
    lat, acc = res.latency_ms[front], res.accuracy[front]
    assert np.all(np.diff(lat) >= 0) and np.all(np.diff(acc) > 0)
    for i in front:
        space.validate(res.configs[i])


def test_evolution_beats_random_at_equal_budget(space: MobileNetV3Space) -> None:
    score = _scorer(space)
    evo = EvolutionSearch(population=32, generations=15).run(space, score, progress=False)
    rnd = RandomSearch(population=evo.evaluations, generations=1).run(space, score,
                                                                       progress=False)
    assert abs(rnd.evaluations - evo.evaluations) <= 2

    def hypervolume(r) -> float:  # type: ignore[no-untyped-def]
        """Area dominated by the front, reference point (max latency, 0 accuracy)."""
        f = r.front
        lat, acc = r.latency_ms[f], r.accuracy[f]
        edges = np.append(lat[1:], 50.0)
        return float(np.sum((edges - lat) * acc))

    assert hypervolume(evo) > hypervolume(rnd)


def test_constraints(space: MobileNetV3Space) -> None:
    score = _scorer(space)
    res = EvolutionSearch(population=32, generations=5, max_latency_ms=10.0).run(
        space, score, progress=False)
    assert np.all(res.latency_ms[res.front] <= 10.0)
    with pytest.raises(InfeasibleConstraintError, match="max_latency_ms=0.5"):
        EvolutionSearch(population=8, generations=2, max_latency_ms=0.5).run(
            space, score, progress=False)
    with pytest.raises(ValueError, match="population"):
        EvolutionSearch(population=1)
    with pytest.raises(ValueError, match="mutation_prob"):
        EvolutionSearch(mutation_prob=2.0)
    with pytest.raises(ValueError, match="sampler"):
        OptunaSearch(sampler="cmaes-nope")


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
