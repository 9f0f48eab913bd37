"""Constraints steer the search itself, not only the final filter.

A strategy that ranks its candidates ignoring the violation (or an Optuna study never told
the constraint) still returns a feasible front, because :meth:`SearchResult.front` filters
by feasibility; what it loses is the candidates it spends its budget on. These tests
measure that inside the run: the share of feasible candidates among those scored.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from switchnas.search.pareto import nondominated_mask
from switchnas.search.strategies import (
    EvolutionSearch,
    OptunaSearch,
    RandomSearch,
    SearchResult,
    SearchStrategy,
    upper_bounds,
)
from switchnas.supernets.ofa.mbv3 import MobileNetV3Space

STEERING: dict[str, Callable[..., SearchStrategy]] = {
    "evolution": lambda **kw: EvolutionSearch(population=64, **kw),
    "nsga2": lambda **kw: OptunaSearch(sampler="nsga2", population=32, **kw),
}
EVERY: dict[str, Callable[..., SearchStrategy]] = {
    **STEERING,
    "random": lambda **kw: RandomSearch(population=64, **kw),
    "optuna-random": lambda **kw: OptunaSearch(sampler="random", population=32, **kw),
}


@pytest.fixture(scope="module")
def space() -> MobileNetV3Space:
    return MobileNetV3Space.build([3, 5, 7], [3, 4, 6], [2, 3, 4], [32, 40])


def _scorer(space: MobileNetV3Space) -> Callable[[np.ndarray], np.ndarray]:
    """Latency grows with the encoding's sum; accuracy saturates with it."""
    def score(g: np.ndarray) -> np.ndarray:
        s = space.encode_genomes(g).sum(1)
        return np.stack([1.0 + s, -100 * (1 - np.exp(-s / 10))], axis=1)

    return score


def _band(objectives: np.ndarray) -> np.ndarray:
    """Feasible: latency within 0.3 of 10 (about 0.3 % of uniform samples)."""
    return np.maximum(0.0, np.abs(objectives[:, 0] - 10.0) - 0.3)


def _check_result(res: SearchResult, constraints: Callable[[np.ndarray], np.ndarray]) -> None:
    """The violation is the constraint's, and the front is the non-dominated feasible set."""
    np.testing.assert_allclose(res.violation, constraints(res.objectives))
    front = res.front()
    assert (res.violation[front] == 0).all()
    feas = np.flatnonzero(res.feasible)
    if len(feas):
        nd = feas[nondominated_mask(res.objectives[feas])]
        assert {tuple(r) for r in res.objectives[front]} == {tuple(r) for r in res.objectives[nd]}
    else:
        assert len(front) == 0


@pytest.mark.parametrize(("name", "seed"), [("evolution", 0), ("evolution", 1), ("nsga2", 0)])
def test_a_narrow_band_is_searched_into(space: MobileNetV3Space, name: str, seed: int) -> None:
    """Constraint domination moves the population into a narrow feasible band: many times
    the feasible candidates that the same strategy finds without being told."""
    score = _scorer(space)
    told = STEERING[name](budget=400).run(space, score, seed=seed, constraints=_band)
    blind = STEERING[name](budget=400).run(space, score, seed=seed)
    _check_result(told, _band)
    n_told, n_blind = int(told.feasible.sum()), int((_band(blind.objectives) == 0).sum())
    assert n_told >= 15, (n_told, n_blind)
    assert n_told >= 3 * max(n_blind, 1), (n_told, n_blind)


@pytest.mark.parametrize("name", sorted(STEERING))
def test_under_a_latency_bound_most_later_candidates_are_feasible(
        space: MobileNetV3Space, name: str) -> None:
    """``max_latency_ms`` at the 10th percentile of uniform samples: after the first half
    of the budget, most of what a steering strategy scores meets it (uniform sampling: 10 %)."""
    score = _scorer(space)
    uniform = score(space.sample_genomes(np.random.default_rng(123), 4000))[:, 0]
    limit = float(np.quantile(uniform, 0.10))
    bound = upper_bounds([limit, None])
    res = STEERING[name](budget=400).run(space, score, seed=3, constraints=bound)
    _check_result(res, bound)
    late = res.feasible[200:]
    assert late.mean() >= 0.5, late.mean()
    assert len(res.front()) >= 3


@pytest.mark.parametrize("name", sorted(EVERY))
def test_every_strategy_reports_the_constraint_it_was_given(space: MobileNetV3Space,
                                                           name: str) -> None:
    """Violation, feasibility and front follow the constraint, for every strategy; a
    feasible region no candidate reaches gives an empty front, never an infeasible one."""
    score = _scorer(space)
    uniform = score(space.sample_genomes(np.random.default_rng(7), 2000))
    lat_limit = float(np.quantile(uniform[:, 0], 0.5))
    acc_floor = float(np.quantile(-uniform[:, 1], 0.2))
    bound = upper_bounds([lat_limit, -acc_floor])
    res = EVERY[name](budget=200).run(space, score, seed=0, constraints=bound)
    _check_result(res, bound)
    feasible = (res.objectives[:, 0] <= lat_limit) & (-res.objectives[:, 1] >= acc_floor)
    assert np.array_equal(res.feasible, feasible)
    assert res.feasible.any()
    none = EVERY[name](budget=64).run(space, score, seed=0,
                                      constraints=upper_bounds([0.5, None]))
    assert len(none.front()) == 0 and (none.violation > 0).all()
