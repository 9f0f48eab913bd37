"""Units of the search loop, in-process and fast: the greedy hypervolume gains, the
proposal step with a stub inner search, the loop's determinism and timings, and the
surrogates' bootstrap ensemble."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from switchnas.search.archive import SearchResult
from switchnas.search.loop import _GreedyGains, _propose, hypervolume_improvement, run_loop
from switchnas.search.surrogate import ObjectiveSurrogates
from switchnas.supernets.space import ChoiceSpace, Dimension


def _space() -> ChoiceSpace:
    # 6 positions of 4 choices: 4096 sub-networks, the identity as canonical form
    return ChoiceSpace("units", [Dimension("x", [[0, 1, 2, 3]] * 6)])


def _evaluate(space: ChoiceSpace) -> Any:
    def evaluate(configs: list[dict[str, Any]]) -> np.ndarray:
        g = space.to_genomes(configs).astype(float)
        return np.stack([g.sum(axis=1), -(g ** 2).sum(axis=1)], axis=1)
    return evaluate


class _Fixed:
    """An inner search that returns fixed candidates (and never calls the scorer)."""

    def __init__(self, genomes: np.ndarray, objectives: np.ndarray, violation: np.ndarray):
        self.res = SearchResult(genomes, objectives, violation, len(genomes))

    def run(self, space: ChoiceSpace, score: Any, *, seed: int = 0, budget: int | None = None,
            callback: Any = None, constraints: Any = None, progress: bool = False,
            initial: np.ndarray | None = None) -> SearchResult:
        return self.res


def _propose_with(inner: _Fixed, k: int) -> tuple[np.ndarray, float]:
    space = _space()
    G = np.array([[0] * 6, [3] * 6], dtype=np.int64)
    Y = np.array([[0.0, 0.0], [18.0, -54.0]])
    return _propose(space, None, space.one_hot_genomes, inner, G, Y,  # type: ignore[arg-type]
                    np.zeros((0, 6), np.int64), set(), k, kappa=0.5, seed=0,
                    rng=np.random.default_rng(0),
                    constraints=lambda o: np.zeros(len(o)))


# -- greedy gains ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_greedy_gains_estimate_the_hypervolume_improvement(seed: int) -> None:
    """Three objectives: the Monte Carlo gains are in units of volume, so they agree with
    the exact improvement (0.8^3 - 0.5^3 for a cube in front of a held cube)."""
    held = np.array([[0.5, 0.5, 0.5]])
    cands = np.array([[0.2, 0.2, 0.2], [0.9, 0.9, 0.9]])
    ref = np.ones(3)
    gains = _GreedyGains(held, cands, ref, np.random.default_rng(seed))(held)
    assert gains[0] == pytest.approx(0.8 ** 3 - 0.5 ** 3, abs=0.03)
    assert gains[1] == pytest.approx(0.1 ** 3, abs=0.01)
    exact = hypervolume_improvement(held, cands, ref, rng=np.random.default_rng(seed))
    assert np.allclose(gains, exact, atol=0.03)


@pytest.mark.parametrize("seed", range(5))
def test_a_candidate_at_a_held_point_gains_nothing(seed: int) -> None:
    """A candidate equal to a held point adds no volume, also when the sample points land
    on the held point's faces: at 2**53 floats are 2 apart, so most coordinates of the
    samples equal the held point's exactly (a point on a face is dominated, as in
    ``hypervolume_improvement``)."""
    big = 2.0 ** 53
    held = np.full((1, 3), big)
    gains = _GreedyGains(held, held.copy(), np.full(3, big + 8), np.random.default_rng(seed))
    assert gains(held).tolist() == [0.0]


# -- proposals ------------------------------------------------------------------------------
def test_propose_with_an_inner_search_that_finds_nothing() -> None:
    """No candidate from the inner search: nothing to propose, and no gain."""
    inner = _Fixed(np.zeros((0, 6), np.int64), np.zeros((0, 2)), np.zeros(0))
    cand, gain = _propose_with(inner, k=2)
    assert cand.shape == (0, 6) and gain == 0.0


def test_propose_orders_infeasible_candidates_by_violation_stably() -> None:
    """Nothing predicted feasible: the ``3 k`` least violating candidates, ties in the
    order the inner search found them (40 candidates, violations 1, 2, 1, 2, ...)."""
    space = _space()
    genomes = space.sample_genomes(np.random.default_rng(1), 200)
    genomes = genomes[np.unique(genomes, axis=0, return_index=True)[1]][:40]
    genomes = genomes[~np.isin(genomes.sum(axis=1), [0, 18])]  # not the measured ones
    n = len(genomes)
    assert n >= 30
    viol = np.tile([1.0, 2.0], n)[:n]
    inner = _Fixed(genomes, np.zeros((n, 2)), viol)
    cand, gain = _propose_with(inner, k=3)
    assert gain == 1.0
    assert cand.tolist() == genomes[0:18:2].tolist()


# -- the loop -------------------------------------------------------------------------------
def test_the_random_round_depends_on_the_seed_only() -> None:
    """Same seed, same sub-networks (the first round is random); the round's timings are
    durations within the call."""
    space = _space()
    runs = []
    for seed in (3, 3, 4):
        t = time.perf_counter()
        res = run_loop(space, _evaluate(space), budget=8, batch_size=8, initial=8,
                       encode=space.one_hot_genomes, seed=seed)
        elapsed = time.perf_counter() - t
        assert len(res.rounds) == 1 and res.evaluations == 8
        for key in ("seconds_choose", "seconds_evaluate"):
            assert 0.0 <= res.rounds[0][key] <= elapsed
        runs.append(res.genomes.tolist())
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


# -- surrogates -----------------------------------------------------------------------------
def test_surrogates_default_to_eight_bootstrap_refits() -> None:
    """``n_bootstrap`` defaults to 8: a chosen ridge gets 8 refits (a boosted model 8 // 3,
    at least 2)."""
    rng = np.random.default_rng(0)
    X = rng.random((12, 3))
    Y = np.stack([X.sum(axis=1), X[:, 0]], axis=1)
    sur = ObjectiveSurrogates(candidates=("ridge",)).fit(X, Y)
    assert [len(e) for e in sur.ensembles_] == [8, 8]
    assert sur.get_params()["n_bootstrap"] == 8
