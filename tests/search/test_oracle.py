"""The search benchmark's oracle (``benchmarks/oracle.py``): its scores equal the fitted
models on ``mbv3_one_hot``, its exact front equals brute force on a reduced space, and no
sampled sub-network dominates the front of the full space."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.oracle import (
    FULL_RESOLUTION,
    PIXEL_PENALTY_PP,
    MobileNetV3Oracle,
    build_oracle,
    build_space,
    exact_front,
    hypervolume_2d,
    pareto_indices,
)
from switchnas.predictors.encodings import mbv3_one_hot

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _need_data() -> None:
    if not (SHARED_DATA / "ofa_mbv3_imagenet").is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA} (see ../shared/data/README.md)")


@pytest.fixture(scope="module")
def oracle() -> MobileNetV3Oracle:
    _need_data()
    return build_oracle("additive", data_dir=SHARED_DATA)


def _reduced(oracle: MobileNetV3Oracle) -> MobileNetV3Oracle:
    """Two free stages (373,248 raw genomes): stage 0 ks {3,7} x e {3,6}, stage 1 ks
    {3,5,7}; depth free in both; the other stages fixed; r in {160, 224}."""
    ks = [[3, 7]] * 4 + [[3, 5, 7]] * 4 + [[5]] * 12
    e = [[3, 6]] * 4 + [[6]] * 4 + [[4]] * 12
    space = build_space((160, 224)).restrict(
        {"ks": ks, "e": e, "d": [[2, 3, 4], [2, 3, 4], [3], [2], [4]]})
    return oracle.on_space(space)  # type: ignore[arg-type]


def _brute_force(oracle: MobileNetV3Oracle) -> tuple[np.ndarray, np.ndarray]:
    """The front of every raw genome of the oracle's space, and the worst objectives."""
    cards = oracle.space.cardinalities()
    total = int(np.prod(cards))
    front = np.zeros((0, 2))
    worst = np.full(2, -np.inf)
    for start in range(0, total, 50_000):
        idx = np.arange(start, min(total, start + 50_000))
        g = np.stack(np.unravel_index(idx, tuple(cards)), axis=1).astype(np.int64)
        obj = oracle(g)
        worst = np.maximum(worst, obj.max(axis=0))
        pts = np.vstack([front, obj])
        front = pts[pareto_indices(pts)]
    return front, worst


# -- hypervolume and fronts (no data needed) ----------------------------------------------
def test_hypervolume_2d_by_hand() -> None:
    pts = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    assert hypervolume_2d(pts, [4.0, 4.0]) == pytest.approx(3 * 1 + 2 * 1 + 1 * 1)
    # dominated points, duplicates and points beyond the reference add nothing
    more = np.vstack([pts, [[2.5, 2.5], [2.0, 2.0], [5.0, 0.0], [0.0, 4.0]]])
    assert hypervolume_2d(more, [4.0, 4.0]) == pytest.approx(6.0)
    assert hypervolume_2d(np.zeros((0, 2)), [1.0, 1.0]) == 0.0


def test_pareto_indices_one_per_point_sorted() -> None:
    pts = np.array([[2.0, 1.0], [1.0, 2.0], [1.0, 2.0], [1.0, 3.0], [3.0, 3.0], [0.5, 5.0]])
    idx = pareto_indices(pts)
    assert pts[idx].tolist() == [[0.5, 5.0], [1.0, 2.0], [2.0, 1.0]]
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        pareto_indices(np.zeros((3, 3)))


def test_unknown_kind_and_missing_data_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'linear'.*additive.*boosted"):
        build_oracle("linear")
    with pytest.raises(FileNotFoundError, match="shared/data"):
        build_oracle("additive", data_dir=tmp_path)


# -- the oracle ---------------------------------------------------------------------------
@pytest.mark.refdata
def test_features_equal_mbv3_one_hot(oracle: MobileNetV3Oracle) -> None:
    space = oracle.space
    rng = np.random.default_rng(0)
    raw = rng.integers(0, space.cardinalities(), size=(300, space.genome_length))
    for g in (space.sample_genomes(rng, 300), raw):
        want = mbv3_one_hot(space.from_genomes(g), resolutions=oracle.latency_resolutions)
        np.testing.assert_array_equal(oracle.features(g), want)


@pytest.mark.refdata
def test_scores_are_the_fitted_models(oracle: MobileNetV3Oracle) -> None:
    space = oracle.space
    g = space.sample_genomes(np.random.default_rng(1), 200)
    configs = space.from_genomes(g)
    r = np.array([c["r"] for c in configs])
    X = mbv3_one_hot(configs, resolutions=oracle.latency_resolutions)
    top1 = oracle.accuracy_model.predict(mbv3_one_hot(configs)[:, :-1])
    top1 -= PIXEL_PENALTY_PP * (FULL_RESOLUTION - r)
    lat = np.exp(oracle.latency_model.predict(X))
    np.testing.assert_allclose(oracle.top1(g), top1, rtol=1e-10)
    np.testing.assert_allclose(oracle.latency_ms(g), lat, rtol=1e-10)
    np.testing.assert_allclose(oracle(g), np.stack([lat, -top1], axis=1), rtol=1e-10)
    np.testing.assert_allclose(oracle.evaluate(configs), oracle(g), rtol=1e-12)


@pytest.mark.refdata
def test_resolution_costs_accuracy_and_saves_latency(oracle: MobileNetV3Oracle) -> None:
    space = oracle.space
    g = space.sample_genomes(np.random.default_rng(2), 50)
    r_pos = space.genome_length - 1
    lo, hi = g.copy(), g.copy()
    lo[:, r_pos], hi[:, r_pos] = 0, len(space.dimensions["r"][0]) - 1  # r=160, r=224
    np.testing.assert_allclose(oracle.top1(hi) - oracle.top1(lo),
                               PIXEL_PENALTY_PP * (FULL_RESOLUTION - 160), rtol=1e-9)
    assert (oracle.latency_ms(lo) < oracle.latency_ms(hi)).all()


@pytest.mark.refdata
def test_oracle_follows_the_measurements(oracle: MobileNetV3Oracle) -> None:
    assert oracle.info["accuracy_r2_train"] > 0.9
    assert oracle.info["log_latency_r2_train"] > 0.95


@pytest.mark.refdata
def test_wrong_genomes_are_refused(oracle: MobileNetV3Oracle) -> None:
    P = oracle.space.genome_length
    with pytest.raises(ValueError, match=f"\\(n, {P}\\)"):
        oracle(np.zeros((2, P - 1), np.int64))
    bad = np.zeros((2, P), np.int64)
    bad[1, 0] = 3
    with pytest.raises(ValueError, match="allows 0..2"):
        oracle(bad)


# -- the exact front ----------------------------------------------------------------------
@pytest.mark.refdata
def test_exact_front_equals_brute_force_on_a_reduced_space(oracle: MobileNetV3Oracle) -> None:
    small = _reduced(oracle)
    front = exact_front(small)
    brute, worst = _brute_force(small)
    assert len(front.objectives) == len(brute) > 5
    np.testing.assert_allclose(front.objectives, brute, rtol=1e-9)
    np.testing.assert_allclose(front.worst, worst, rtol=1e-9)
    ref = front.reference()
    assert hypervolume_2d(brute, ref) == pytest.approx(front.hypervolume(), rel=1e-12)
    np.testing.assert_array_equal(small.space.canonical_genomes(front.genomes), front.genomes)


@pytest.mark.refdata
def test_samples_never_dominate_the_exact_front(oracle: MobileNetV3Oracle) -> None:
    front = exact_front(oracle)
    space = oracle.space
    f = front.objectives
    assert (np.diff(f[:, 0]) > 0).all() and (np.diff(f[:, 1]) < 0).all()
    np.testing.assert_allclose(oracle(front.genomes), f)
    rng = np.random.default_rng(3)
    # uniform samples, and mutations of front members (the hardest neighbours to beat)
    near = np.repeat(front.genomes, 10, axis=0)
    flip = rng.random(near.shape) < 0.05
    near[flip] = rng.integers(0, space.cardinalities(), size=near.shape)[flip]
    for g in (space.sample_genomes(rng, 20_000), space.canonical_genomes(near)):
        obj = oracle(g)
        assert (obj <= front.worst + 1e-9).all()
        # no sample strictly better than a front point in both objectives (nor equal in
        # one and better in the other)
        for chunk in np.array_split(obj, 10):
            le = (chunk[:, None, :] <= f[None, :, :] + 1e-12).all(axis=2)
            lt = (chunk[:, None, :] < f[None, :, :] - 1e-9).any(axis=2)
            assert not (le & lt).any()
        both = np.vstack([f, obj])
        ref = front.reference()
        assert hypervolume_2d(both, ref) == pytest.approx(front.hypervolume(), rel=1e-12)


@pytest.mark.refdata
@pytest.mark.slow
def test_boosted_oracle_is_not_additive() -> None:
    _need_data()
    additive = build_oracle("additive", data_dir=SHARED_DATA)
    boosted = build_oracle("boosted", data_dir=SHARED_DATA)
    space = additive.space
    rng = np.random.default_rng(4)
    a, b = space.sample_genomes(rng, 200), space.sample_genomes(rng, 200)
    # swap stage 0 (blocks 0-3 and its depth) between a and b: an additive oracle's sums
    # of log latency and of top-1 do not change
    stage0 = np.r_[0:4, 20:24, 40]
    c, d = a.copy(), b.copy()
    c[:, stage0], d[:, stage0] = b[:, stage0], a[:, stage0]

    def log_terms(o: MobileNetV3Oracle, g: np.ndarray) -> np.ndarray:
        return np.stack([np.log(o.latency_ms(g)), o.top1(g)], axis=1)

    for o, additive_kind in ((additive, True), (boosted, False)):
        gap = np.abs(log_terms(o, a) + log_terms(o, b) - log_terms(o, c) - log_terms(o, d))
        assert bool(gap.max() < 1e-9) == additive_kind
    with pytest.raises(ValueError, match="no exact front"):
        exact_front(boosted)
    assert np.corrcoef(boosted.top1(a), additive.top1(a))[0, 1] > 0.9


# -- the benchmark's helpers --------------------------------------------------------------
def test_curve_counts_the_first_k_rows_only() -> None:
    from benchmarks.search import curve, first_reaching

    obj = np.array([[3.0, 3.0], [1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [3.5, 3.5]])
    grid = np.array([1, 2, 3, 4, 5, 9])
    hv = curve(obj, grid, np.array([4.0, 4.0]), 6.0)
    np.testing.assert_allclose(hv, 100 * np.array([1, 3, 5, 6, 6, 6]) / 6.0)
    assert first_reaching(grid, hv, 80.0, used=5) == 3
    assert first_reaching(grid, hv, 100.0, used=5) == 4
    assert first_reaching(grid, hv, 100.0, used=3) is None


@pytest.mark.refdata
def test_numpy_nsga2_baseline_beats_random(oracle: MobileNetV3Oracle) -> None:
    from benchmarks.search import numpy_nsga2

    front = exact_front(oracle)
    scored, last = numpy_nsga2(oracle.space, oracle, population=64, generations=30, seed=0)
    assert scored == 64 * 31
    rand = oracle(oracle.space.sample_genomes(np.random.default_rng(0), scored))
    ref = front.reference()
    hv = hypervolume_2d(last, ref) / front.hypervolume()
    assert hv > 0.93
    assert hv > hypervolume_2d(rand, ref) / front.hypervolume() + 0.05
