"""The search loop with three objectives and constraints: no infeasible point on the front,
and proposals that respect the surrogates' predicted feasibility."""

from __future__ import annotations

import numpy as np
import pytest

from switchnas.search.loop import LoopResult, run_loop
from switchnas.search.pareto import nondominated_mask
from switchnas.search.strategies import EvolutionSearch, upper_bounds
from switchnas.supernets.space import ChoiceSpace, Dimension

SPACE = ChoiceSpace("toy3", [Dimension("w", [[1, 2, 3]] * 6), Dimension("k", [[3, 5, 7]]),
                             Dimension("r", [[96, 112, 128]], scalar=True)])
_rng = np.random.default_rng(11)
_COST = np.cumsum(_rng.uniform(0.2, 1.0, (8, 3)), axis=1)
_GAIN = np.cumsum(_rng.uniform(0.0, 1.0, (8, 3)) * _rng.uniform(0.3, 1.5, (8, 1)), axis=1)
# a second target whose cost ranks the choices differently (another piece of hardware)
_COST2 = np.cumsum(_rng.uniform(0.1, 1.0, (8, 3))[:, ::-1], axis=1) + _rng.uniform(0, 1, (8, 1))
EVERY = np.stack(np.meshgrid(*[np.arange(3)] * 8, indexing="ij"), -1).reshape(-1, 8)


def objectives(genomes: np.ndarray) -> np.ndarray:
    """(cost on target 1, -gain, cost on target 2), all minimised and additive."""
    g = np.asarray(genomes)
    rows = np.arange(8)
    return np.stack([_COST[rows, g].sum(axis=1), -_GAIN[rows, g].sum(axis=1),
                     _COST2[rows, g].sum(axis=1)], axis=1)


def evaluate(configs: list[dict]) -> np.ndarray:
    return objectives(SPACE.to_genomes(configs))


ALL = objectives(EVERY)
#: the second target's cost at most its 35th percentile: about 65 % of the space violates
LIMIT = float(np.quantile(ALL[:, 2], 0.35))
CONSTRAINTS = upper_bounds([None, None, LIMIT])


def test_front_holds_only_feasible_points_and_proposals_respect_predictions() -> None:
    random_infeasible = float(np.mean(ALL[:, 2] > LIMIT))
    assert 0.5 < random_infeasible < 0.8
    res = run_loop(SPACE, evaluate, budget=60, batch_size=10, initial=20,
                   encode=SPACE.one_hot_genomes, models=("ridge",),
                   strategy=EvolutionSearch(population=48, generations=12), seed=0,
                   constraints=CONSTRAINTS)
    assert isinstance(res, LoopResult) and res.objectives.shape == (60, 3)
    assert res.violation is not None and res.violation.shape == (60,)
    assert np.array_equal(res.feasible, res.objectives[:, 2] <= LIMIT)
    front = res.front()
    assert len(front) >= 3
    assert np.all(res.objectives[front, 2] <= LIMIT), "an infeasible point is on the front"
    # the front is exactly the non-dominated set of the feasible rows
    feas = np.flatnonzero(res.feasible)
    want = set(feas[nondominated_mask(res.objectives[feas])].tolist())
    assert set(front.tolist()) == want
    # after the random first round the surrogates (exact here: additive) keep proposals
    # feasible; random search would measure about 65 % infeasible sub-networks
    later = res.objectives[20:]
    assert float(np.mean(later[:, 2] > LIMIT)) <= 0.25 * random_infeasible
    # and the feasible front is good: most of its points are on the exact feasible front
    ok = ALL[ALL[:, 2] <= LIMIT]
    exact = {tuple(np.round(r, 9)) for r in ok[nondominated_mask(ok)]}
    hits = sum(tuple(np.round(r, 9)) in exact for r in res.objectives[front])
    assert hits >= 0.5 * len(front)


def test_without_constraints_every_row_is_feasible() -> None:
    res = run_loop(SPACE, evaluate, budget=30, batch_size=10, initial=10,
                   encode=SPACE.one_hot_genomes, models=("ridge",),
                   strategy=EvolutionSearch(population=32, generations=5), seed=0)
    assert res.violation is None and res.feasible.all()
    assert set(res.front().tolist()) == set(np.flatnonzero(nondominated_mask(res.objectives)))
    # an infeasible point that would dominate is kept out of the front
    bound = float(np.min(res.objectives[:, 0])) + 1e-9
    only = LoopResult(configs=res.configs, objectives=res.objectives, genomes=res.genomes,
                      attrs=res.attrs, evaluations=res.evaluations,
                      violation=upper_bounds([None, None, None])(res.objectives)
                      + (res.objectives[:, 0] <= bound))
    assert np.argmin(res.objectives[:, 0]) not in only.front()


def test_a_constraint_nothing_meets_still_measures_and_has_an_empty_front() -> None:
    res = run_loop(SPACE, evaluate, budget=30, batch_size=10, initial=10,
                   encode=SPACE.one_hot_genomes, models=("ridge",),
                   strategy=EvolutionSearch(population=32, generations=5), seed=0,
                   constraints=upper_bounds([None, None, float(ALL[:, 2].min()) - 1.0]))
    assert len(res.objectives) == 30 and not res.feasible.any() and len(res.front()) == 0


def test_constraints_of_the_wrong_shape_are_an_error() -> None:
    with pytest.raises(ValueError, match="one finite violation"):
        run_loop(SPACE, evaluate, budget=30, batch_size=10, initial=10,
                 encode=SPACE.one_hot_genomes, models=("ridge",),
                 strategy=EvolutionSearch(population=16, generations=2),
                 constraints=lambda y: np.zeros(1))


def test_a_family_pareto_good_on_two_targets() -> None:
    from switchnas.search.family import pick_family

    rng = np.random.default_rng(3)
    lat = rng.uniform(1, 10, 200)
    acc = 50 + 5 * np.log(lat) + rng.normal(0, 1, 200)
    other = rng.uniform(1, 10, 200)  # latency on a second target, unrelated to the first
    obj = np.column_stack([lat, -acc, other])
    for tol in (0.0, 0.5):
        idx = pick_family(lat, acc, 4, accuracy_tolerance=tol, extra_objectives=other[:, None])
        assert 1 <= len(idx) <= 4 and np.all(np.diff(lat[idx]) > 0)
        for i in idx:  # nothing at most as slow on both targets is more accurate (by > tol)
            beats = (lat <= lat[i]) & (other <= other[i]) & (acc > acc[i] + tol)
            assert not beats.any()
        if tol == 0:
            dominated = [np.any(np.all(obj <= obj[i], 1) & np.any(obj < obj[i], 1)) for i in idx]
            assert not any(dominated)
    # the plain two-objective family ignores the second target: some member is worse there
    plain = pick_family(lat, acc, 4)
    both = pick_family(lat, acc, 4, extra_objectives=other[:, None])
    assert set(plain.tolist()) != set(both.tolist())
    with pytest.raises(ValueError, match="extra_objectives"):
        pick_family(lat, acc, 4, extra_objectives=np.ones((3, 1)))
