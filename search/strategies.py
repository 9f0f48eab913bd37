"""Search strategies: propose candidates, score them in batches against the predictors.

A strategy never calls a predictor per candidate: ``score(configs)`` takes a list and
returns ``(latency_ms, accuracy)`` arrays, one vectorised call per generation. Optuna's
samplers are one strategy among others (:class:`OptunaSearch`).

Constraints (``max_latency_ms``, ``min_accuracy``) use constraint domination: a feasible
candidate beats an infeasible one, infeasible ones compare by total violation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from tqdm.auto import tqdm

from switchnas.supernets.base import Config
from switchnas.supernets.space import ChoiceSpace

from .pareto import crowding_distance, nondominated_ranks, pareto_mask

__all__ = ["EvolutionSearch", "InfeasibleConstraintError", "OptunaSearch", "RandomSearch",
           "SearchResult", "SearchStrategy"]

Scorer = Callable[[list[Config]], tuple[np.ndarray, np.ndarray]]


class InfeasibleConstraintError(ValueError):
    """No candidate meets the constraints."""


@dataclass
class SearchResult:
    """Every scored candidate; ``front`` indexes the feasible predicted Pareto front."""

    configs: list[Config]
    latency_ms: np.ndarray
    accuracy: np.ndarray
    feasible: np.ndarray
    evaluations: int
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def front(self) -> np.ndarray:
        idx = np.flatnonzero(self.feasible)
        mask = pareto_mask(self.latency_ms[idx], self.accuracy[idx])
        sel = idx[mask]
        return sel[np.argsort(self.latency_ms[sel])]


@runtime_checkable
class SearchStrategy(Protocol):
    """Finds the predicted Pareto front of a space under a scorer."""

    def run(self, space: ChoiceSpace, score: Scorer, *, seed: int = 0,
            progress: bool = True) -> SearchResult:
        """Score candidates in batches with ``score``; return all of them."""
        ...


class _Base:
    def __init__(self, *, population: int = 128, generations: int = 40,
                 max_latency_ms: float | None = None, min_accuracy: float | None = None,
                 name: str | None = None, **_: Any):
        if population < 2:
            raise ValueError(f"search.population must be >= 2, got {population}")
        if generations < 1:
            raise ValueError(f"search.generations must be >= 1, got {generations}")
        if max_latency_ms is not None and max_latency_ms <= 0:
            raise ValueError(f"search.max_latency_ms must be > 0, got {max_latency_ms}")
        self.population, self.generations = int(population), int(generations)
        self.max_latency_ms, self.min_accuracy = max_latency_ms, min_accuracy

    def violation(self, lat: np.ndarray, acc: np.ndarray) -> np.ndarray:
        v = np.zeros(len(lat))
        if self.max_latency_ms is not None:
            v += np.maximum(0.0, lat - self.max_latency_ms) / self.max_latency_ms
        if self.min_accuracy is not None:
            v += np.maximum(0.0, self.min_accuracy - acc) / max(abs(self.min_accuracy), 1e-9)
        return v

    def _result(self, configs: list[Config], lat: np.ndarray, acc: np.ndarray,
                history: list[dict[str, float]]) -> SearchResult:
        feasible = self.violation(lat, acc) == 0
        if not feasible.any():
            raise InfeasibleConstraintError(
                "no candidate meets the constraints "
                f"(max_latency_ms={self.max_latency_ms}, min_accuracy={self.min_accuracy}): "
                f"predicted latency ranges {lat.min():.3g}-{lat.max():.3g} ms and accuracy "
                f"{acc.min():.3g}-{acc.max():.3g} over {len(configs)} candidates"
            )
        return SearchResult(configs, lat, acc, feasible, len(configs), history)


def _dedupe(configs: list[Config], seen: set[str]) -> list[Config]:
    out = []
    for c in configs:
        k = json.dumps(c, sort_keys=True)
        if k not in seen:
            seen.add(k)
            out.append(c)
    return out


def _mutate(space: ChoiceSpace, cfg: Config, p: float, rng: np.random.Generator) -> Config:
    out: Config = {}
    for name, choices in space.dimensions.items():
        scalar = space.dimension(name).scalar
        vals = [cfg[name]] if scalar else list(cfg[name])
        for i, ch in enumerate(choices):
            if rng.random() < p:
                vals[i] = ch[int(rng.integers(len(ch)))]
        out[name] = vals[0] if scalar else vals
    return space.canonical(out)


def _crossover(space: ChoiceSpace, a: Config, b: Config, rng: np.random.Generator) -> Config:
    out: Config = {}
    for name in space.dimensions:
        if space.dimension(name).scalar:
            out[name] = a[name] if rng.random() < 0.5 else b[name]
        else:
            out[name] = [x if rng.random() < 0.5 else y for x, y in zip(a[name], b[name],
                                                                          strict=True)]
    return space.canonical(out)


class EvolutionSearch(_Base):
    """NSGA-II (non-dominated sorting + crowding, constraint domination) in numpy."""

    def __init__(self, *, mutation_prob: float = 0.1, **kw: Any):
        super().__init__(**kw)
        if not 0 <= mutation_prob <= 1:
            raise ValueError(f"search.mutation_prob must be in [0, 1], got {mutation_prob}")
        self.mutation_prob = float(mutation_prob)

    def _select(self, lat: np.ndarray, acc: np.ndarray, k: int) -> np.ndarray:
        viol = self.violation(lat, acc)
        obj = np.stack([lat, -acc], axis=1)
        feas = np.flatnonzero(viol == 0)
        chosen: list[int] = []
        if feas.size:
            ranks = nondominated_ranks(obj[feas])
            for r in range(ranks.max() + 1):
                members = feas[ranks == r]
                if len(chosen) + len(members) <= k:
                    chosen += members.tolist()
                else:
                    cd = crowding_distance(obj[members])
                    chosen += members[np.argsort(-cd)][: k - len(chosen)].tolist()
                    break
        if len(chosen) < k:
            infeas = np.flatnonzero(viol > 0)
            chosen += infeas[np.argsort(viol[infeas])][: k - len(chosen)].tolist()
        return np.asarray(chosen, dtype=int)

    def run(self, space: ChoiceSpace, score: Scorer, *, seed: int = 0,
            progress: bool = True) -> SearchResult:
        rng = np.random.default_rng(seed)
        seen: set[str] = set()
        pop = _dedupe([space.largest(), space.smallest()]
                      + [space.sample(rng) for _ in range(self.population * 2)], seen)
        pop = pop[: self.population]
        lat, acc = score(pop)
        archive, a_lat, a_acc = list(pop), list(lat), list(acc)
        history = []
        for g in tqdm(range(self.generations), desc="search", disable=not progress, leave=False):
            parents = rng.integers(len(pop), size=(self.population, 2))
            kids = [_mutate(space, _crossover(space, pop[i], pop[j], rng), self.mutation_prob, rng)
                    for i, j in parents]
            kids = _dedupe(kids, seen)
            if kids:
                k_lat, k_acc = score(kids)
                archive += kids
                a_lat += list(k_lat)
                a_acc += list(k_acc)
                pop, lat, acc = pop + kids, np.concatenate([lat, k_lat]), np.concatenate([acc, k_acc])
            keep = self._select(lat, acc, self.population)
            pop, lat, acc = [pop[i] for i in keep], lat[keep], acc[keep]
            history.append({"generation": g, "evaluated": len(archive),
                            "best_accuracy": float(acc.max()), "fastest_ms": float(lat.min())})
        return self._result(archive, np.asarray(a_lat), np.asarray(a_acc), history)


class RandomSearch(_Base):
    """``population`` x ``generations`` uniform samples."""

    def run(self, space: ChoiceSpace, score: Scorer, *, seed: int = 0,
            progress: bool = True) -> SearchResult:
        rng = np.random.default_rng(seed)
        seen: set[str] = set()
        configs = _dedupe([space.largest(), space.smallest()]
                          + [space.sample(rng) for _ in range(self.population * self.generations)],
                          seen)
        lat, acc = score(configs)
        return self._result(configs, np.asarray(lat), np.asarray(acc), [])


class OptunaSearch(_Base):
    """An Optuna sampler (NSGA-II by default) asked for a generation at a time, scored
    in one batch, told the results. The study lives in memory: it is a proposal engine
    here; real measurements go to the run's SQLite study in the ``validate`` stage."""

    def __init__(self, *, sampler: str = "nsga2", **kw: Any):
        super().__init__(**kw)
        if sampler not in ("nsga2", "tpe", "random"):
            raise ValueError(f"search.sampler={sampler!r}; choose from ['nsga2', 'tpe', 'random']")
        self.sampler = sampler

    def run(self, space: ChoiceSpace, score: Scorer, *, seed: int = 0,
            progress: bool = True) -> SearchResult:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)

        def constraints(trial: optuna.trial.FrozenTrial) -> Sequence[float]:
            return [float(trial.user_attrs.get("violation", 0.0))]

        # Optuna >= 5 takes constraints through Trial.set_constraint; older ones need a func.
        modern = hasattr(optuna.trial.Trial, "set_constraint")
        ckw: dict[str, Any] = {} if modern else {"constraints_func": constraints}
        samplers = {
            "nsga2": lambda: optuna.samplers.NSGAIISampler(
                population_size=self.population, seed=seed, **ckw),
            "tpe": lambda: optuna.samplers.TPESampler(seed=seed, **ckw),
            "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        }
        study = optuna.create_study(directions=["minimize", "maximize"],
                                    sampler=samplers[self.sampler]())
        configs: list[Config] = []
        lats: list[float] = []
        accs: list[float] = []
        history = []
        for g in tqdm(range(self.generations), desc="search (optuna)", disable=not progress,
                      leave=False):
            trials = [study.ask() for _ in range(self.population)]
            batch = [space.canonical(_suggest(space, t)) for t in trials]
            lat, acc = score(batch)
            viol = self.violation(np.asarray(lat), np.asarray(acc))
            for t, la, ac, v in zip(trials, lat, acc, viol, strict=True):
                t.set_user_attr("violation", float(v))
                if modern:
                    t.set_constraint("violation", float(v))
                study.tell(t, [float(la), float(ac)])
            configs += batch
            lats += list(lat)
            accs += list(acc)
            history.append({"generation": g, "evaluated": len(configs),
                            "best_accuracy": float(max(accs)), "fastest_ms": float(min(lats))})
        return self._result(configs, np.asarray(lats), np.asarray(accs), history)


def _suggest(space: ChoiceSpace, trial: Any) -> Config:
    cfg: Config = {}
    for name, choices in space.dimensions.items():
        vals = [trial.suggest_categorical(f"{name}_{i}", list(ch)) for i, ch in enumerate(choices)]
        cfg[name] = vals[0] if space.dimension(name).scalar else vals
    return cfg
