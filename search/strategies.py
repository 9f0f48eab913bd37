"""Search strategies over genomes: propose candidates, score them in batches.

A candidate is a genome (see :class:`~switchnas.supernets.space.ChoiceSpace`): one
``int64`` choice index per position, so a population is an ``(n, P)`` array and a whole
generation (variation, canonicalisation, de-duplication, encoding, scoring, selection)
runs in numpy. A scorer maps genomes to objectives ``(n, m)``, every objective
minimised (pass accuracy as ``-accuracy``); ``m`` may be 1, 2 or more.

* :class:`EvolutionSearch` (the default): NSGA-II in numpy, with fast non-dominated
  sorting, crowding distance and constraint domination.
* :class:`RandomSearch`: uniform candidates, the baseline.
* :class:`OptunaSearch`: an Optuna sampler (NSGA-II, TPE, random) asked for a batch at
  a time and told the batch's scores.

Every strategy scores at most ``budget`` distinct candidates (exactly that many when the
space has them), calls ``callback`` after every scored batch (``True`` stops the run)
and ranks candidates by constraint domination when given ``constraints``: a feasible
candidate (violation 0) beats an infeasible one, infeasible ones compare by violation.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

import numpy as np

from switchnas.supernets.space import ChoiceSpace

from .archive import Archive, Callback, Constraints, GenomeScorer, SearchResult
from .pareto import rank_and_crowding

__all__ = ["Callback", "Constraints", "EvolutionSearch", "GenomeScorer", "OptunaSearch",
           "RandomSearch", "SearchResult", "SearchStrategy", "upper_bounds"]

#: Consecutive batches without a new candidate after which a search stops (the space,
#: or the part of it the search can still reach, is exhausted).
_STALL = 25
_MAX_POPULATION = 10_000_000
_MAX_BUDGET = 10**12


@runtime_checkable
class SearchStrategy(Protocol):
    """Finds the Pareto front of a space under a batched scorer."""

    def run(self, space: ChoiceSpace, score: GenomeScorer, *, seed: int = 0,
            budget: int | None = None, callback: Callback | None = None,
            constraints: Constraints | None = None, progress: bool = False,
            initial: np.ndarray | None = None) -> SearchResult:
        """Score candidates of ``space`` in batches; return all of them.

        Args:
            space: the search space (its genome methods).
            score: genomes ``(n, P)`` -> objectives ``(n, m)``, all minimised.
            seed: seeds the strategy's random numbers (same seed, same result).
            budget: the most candidates to score; ``None``: the strategy's own.
            callback: called after every scored batch with its genomes and objectives;
                returning ``True`` stops the search.
            constraints: objectives -> violation ``(n,)`` (``>= 0``, 0 = feasible);
                ``None``: every candidate is feasible.
            progress: show a progress bar.
            initial: genomes to score first (made canonical; they count in the budget).

        Returns:
            Every scored candidate.

        Raises:
            ValueError: a bad ``budget`` or ``initial``, or a scorer or constraints
                function that returns the wrong shape or non-finite values.
        """
        ...


def upper_bounds(bounds: Sequence[float | None]) -> Constraints:
    """Constraints ``objective[j] <= bounds[j]`` (``None``: no bound on objective ``j``);
    the violation is the sum of each excess divided by ``max(|bound|, 1e-9)``.

    For (latency, -accuracy): ``upper_bounds([max_latency_ms, -min_accuracy])``.
    """
    cols = [(j, float(b)) for j, b in enumerate(bounds) if b is not None]
    for j, b in cols:
        if not np.isfinite(b):
            raise ValueError(f"bound {j} is {b}; bounds must be finite numbers or None")

    def violation(objectives: np.ndarray) -> np.ndarray:
        obj = np.asarray(objectives, dtype=np.float64)
        if obj.ndim != 2 or obj.shape[1] != len(bounds):
            raise ValueError(f"upper_bounds({list(bounds)}) expects objectives of shape "
                             f"(n, {len(bounds)}), got {obj.shape}")
        v = np.zeros(len(obj))
        for j, b in cols:
            v += np.maximum(0.0, obj[:, j] - b) / max(abs(b), 1e-9)
        return v

    return violation


# -- options ----------------------------------------------------------------------------
_Init = TypeVar("_Init", bound=Callable[..., None])


def _checked_options(init: _Init) -> _Init:
    """Keyword options only; an unknown one is a ``TypeError`` naming it and the allowed
    ones (with a "did you mean"). The signature stays visible to ``inspect``."""
    allowed = [p.name for p in list(inspect.signature(init).parameters.values())[1:]]

    @functools.wraps(init)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        what = type(self).__name__
        if args:
            raise TypeError(f"{what} takes keyword options only; allowed: {allowed}")
        for key in kwargs:
            if key not in allowed:
                hint = difflib.get_close_matches(key, allowed, n=1)
                raise TypeError(f"{what}: unknown option {key!r}"
                                + (f" (did you mean {hint[0]!r}?)" if hint else "")
                                + f"; allowed options are {allowed}")
        init(self, **kwargs)

    return cast(_Init, wrapper)


def _integer(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not (
            lo <= value <= hi):
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value < lo:
            raise ValueError(f"search.{name} must be >= {lo}, got {value}")
        raise ValueError(f"search.{name}={value!r}: must be an integer from {lo} to {hi}")
    return int(value)


def _probability(name: str, value: Any, *, nullable: bool = False) -> float | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not (
            0 <= float(value) <= 1):
        raise ValueError(f"search.{name}={value!r}: must be a probability in [0, 1]"
                         + (" or null" if nullable else ""))
    return float(value)


class _Strategy:
    """Options every strategy has: the batch size, the default budget."""

    population: int
    generations: int
    budget: int | None

    def _set_budget_options(self, population: Any, generations: Any, budget: Any) -> None:
        self.population = _integer("population", population, 2, _MAX_POPULATION)
        self.generations = _integer("generations", generations, 1, _MAX_BUDGET)
        self.budget = None if budget is None else _integer("budget", budget, 1, _MAX_BUDGET)

    def _limit(self, budget: int | None) -> int:
        if budget is not None:
            return _integer("budget", budget, 1, _MAX_BUDGET)
        if self.budget is not None:
            return self.budget
        return self.population * self.generations

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({opts})"


def _start(space: ChoiceSpace, initial: np.ndarray | None) -> np.ndarray:
    """The first candidates: ``initial`` (made canonical), the largest, the smallest."""
    extremes = space.to_genomes([space.largest(), space.smallest()])
    if initial is None:
        return extremes
    try:
        init = space.canonical_genomes(initial)
    except ValueError as exc:
        raise ValueError(f"initial: {exc}") from exc
    return np.concatenate([init, extremes])


def _bernoulli_positions(rng: np.random.Generator, n: int, p: float) -> np.ndarray:
    """The positions among ``range(n)`` that independent coins of probability ``p`` pick,
    drawn as geometric gaps (cost ~ ``n * p``, not ``n``)."""
    if p <= 0 or n == 0:
        return np.zeros(0, dtype=np.int64)
    out: list[np.ndarray] = []
    start = -1
    while True:
        k = int(n * p + 5 * np.sqrt(n * p) + 10)
        pos = start + np.cumsum(rng.geometric(p, size=k))
        out.append(pos[pos < n])
        if pos[-1] >= n:
            return np.concatenate(out)
        start = int(pos[-1])


def _better(rank: np.ndarray, crowd: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether ``a`` wins a binary tournament against ``b`` (lower rank, then more crowding
    distance)."""
    return (rank[a] < rank[b]) | ((rank[a] == rank[b]) & (crowd[a] >= crowd[b]))


# -- strategies -------------------------------------------------------------------------
class EvolutionSearch(_Strategy):
    """NSGA-II on integer genomes, in numpy.

    Each generation makes ``population`` children: parents by binary tournament
    (constraint-dominated rank, then crowding distance) or uniformly at random, uniform
    crossover (with probability ``crossover_prob``), per-position mutation to a different
    choice (probability ``mutation_prob``, default ``1 / P``); children are made canonical,
    those scored before are dropped, and parents and children compete for the next
    population by rank and crowding distance.

    Args:
        population: individuals kept per generation (and children made per generation).
        generations: with ``budget=None``, the budget is ``population * generations``.
        budget: the most candidates scored (``None``: see ``generations``); the search
            runs until it is spent, the callback stops it, or no new candidate appears
            in 25 consecutive generations.
        mutation_prob: per-position mutation probability; ``None``: ``1 / P``.
        crossover_prob: probability that a child mixes two parents (else it copies one).
        selection: ``"tournament"`` or ``"random"`` parent selection.

    Raises:
        TypeError: an unknown option (named, with the allowed ones).
        ValueError: an option out of range.
    """

    @_checked_options
    def __init__(self, *, population: int = 256, generations: int = 60,
                 budget: int | None = None, mutation_prob: float | None = None,
                 crossover_prob: float = 0.9, selection: str = "tournament") -> None:
        self._set_budget_options(population, generations, budget)
        self.mutation_prob = _probability("mutation_prob", mutation_prob, nullable=True)
        self.crossover_prob = float(_probability("crossover_prob", crossover_prob) or 0.0)
        if selection not in ("tournament", "random"):
            raise ValueError(f"search.selection={selection!r}: choose 'tournament' or 'random'")
        self.selection = selection

    def run(self, space: ChoiceSpace, score: GenomeScorer, *, seed: int = 0,
            budget: int | None = None, callback: Callback | None = None,
            constraints: Constraints | None = None, progress: bool = False,
            initial: np.ndarray | None = None) -> SearchResult:
        """See :meth:`SearchStrategy.run`."""
        rng = np.random.default_rng(seed)
        arc = Archive(space, score, constraints, callback, self._limit(budget), progress,
                       "search")
        N, cards = self.population, space.cardinalities()
        P = len(cards)
        pm = self.mutation_prob if self.mutation_prob is not None else 1.0 / max(P, 1)
        mutable = cards > 1
        high = np.maximum(cards, 2)

        start = _start(space, initial)
        pop = arc.new(np.concatenate([start, space.sample_genomes(rng, 2 * N)]),
                      limit=max(N, len(start)))
        obj, viol = arc.evaluate(pop, 0) if len(pop) else (np.zeros((0, 0)), np.zeros(0))
        rank, crowd = rank_and_crowding(obj, viol)
        gen, stall = 0, 0
        while arc.remaining > 0 and stall < _STALL and len(pop):
            gen += 1
            n = len(pop)
            if self.selection == "tournament":
                a, b = rng.integers(n, size=(2, 2 * N))
                parents = np.where(_better(rank, crowd, a, b), a, b)
            else:
                parents = rng.integers(n, size=2 * N)
            kids = pop[parents[:N]]
            bits = np.unpackbits(np.frombuffer(rng.bytes((N * P + 7) // 8), dtype=np.uint8))
            mix = bits[:N * P].reshape(N, P).view(bool)  # fair coins: which parent
            mix &= (rng.random(N) < self.crossover_prob)[:, None]
            np.copyto(kids, pop[parents[N:]], where=mix)
            flat = _bernoulli_positions(rng, N * P, pm)
            rows, cols = np.divmod(flat[mutable[flat % P]], P)
            # a mutated position takes one of its other choices, uniformly
            kids[rows, cols] = (kids[rows, cols] + rng.integers(1, high[cols])) % cards[cols]
            kids = arc.new(space.canonical_genomes(kids))
            if not len(kids):
                stall += 1
                continue
            stall = 0
            k_obj, k_viol = arc.evaluate(kids, gen)
            pop = np.concatenate([pop, kids])
            obj, viol = np.concatenate([obj, k_obj]), np.concatenate([viol, k_viol])
            rank, crowd = rank_and_crowding(obj, viol, until=N)
            # lower rank first, then larger crowding distance: key in [rank, rank + 0.5]
            key = rank + 0.5 / (1.0 + crowd)
            keep = np.argpartition(key, N - 1)[:N] if len(key) > N else np.arange(len(key))
            pop, obj, viol, rank, crowd = pop[keep], obj[keep], viol[keep], rank[keep], crowd[keep]
        return arc.result()


class RandomSearch(_Strategy):
    """Uniform random candidates (the largest and smallest first), scored ``population``
    at a time.

    Args:
        population: candidates per scored batch.
        generations: with ``budget=None``, the budget is ``population * generations``.
        budget: the most candidates scored (``None``: see ``generations``).

    Raises:
        TypeError: an unknown option (named, with the allowed ones).
        ValueError: an option out of range.
    """

    @_checked_options
    def __init__(self, *, population: int = 2000, generations: int = 1,
                 budget: int | None = None) -> None:
        self._set_budget_options(population, generations, budget)

    def run(self, space: ChoiceSpace, score: GenomeScorer, *, seed: int = 0,
            budget: int | None = None, callback: Callback | None = None,
            constraints: Constraints | None = None, progress: bool = False,
            initial: np.ndarray | None = None) -> SearchResult:
        """See :meth:`SearchStrategy.run`."""
        rng = np.random.default_rng(seed)
        arc = Archive(space, score, constraints, callback, self._limit(budget), progress,
                       "search (random)")
        start = _start(space, initial)
        gen, stall = 0, 0
        while arc.remaining > 0 and stall < _STALL:
            want = min(self.population, arc.remaining)
            batch = arc.new(np.concatenate([start, space.sample_genomes(rng, 2 * want)]),
                            limit=max(want, len(start)))
            start = start[:0]
            if not len(batch):
                stall += 1
                continue
            stall = 0
            arc.evaluate(batch, gen)
            gen += 1
        return arc.result()


class OptunaSearch(_Strategy):
    """An Optuna sampler proposing ``population`` candidates at a time (one trial each,
    a categorical parameter per genome position), told the batch's scores.

    The first batch (the largest and smallest sub-networks, then uniform samples) is
    scored by this class and enqueued, since Optuna needs the number of objectives
    before it asks; candidates Optuna proposes again are told their earlier scores
    without spending budget. The study lives in memory: it proposes candidates here;
    real measurements go to the persistent study.

    Args:
        sampler: ``"nsga2"``, ``"tpe"`` or ``"random"``.
        population: trials per batch (NSGA-II's population size).
        generations: with ``budget=None``, the budget is ``population * generations``.
        budget: the most candidates scored (``None``: see ``generations``).

    Raises:
        TypeError: an unknown option (named, with the allowed ones).
        ValueError: an option out of range or an unknown sampler.
    """

    @_checked_options
    def __init__(self, *, sampler: str = "nsga2", population: int = 64,
                 generations: int = 10, budget: int | None = None) -> None:
        self._set_budget_options(population, generations, budget)
        if sampler not in ("nsga2", "tpe", "random"):
            raise ValueError(f"search.sampler={sampler!r}; choose from ['nsga2', 'tpe', "
                             "'random']")
        self.sampler = sampler

    def run(self, space: ChoiceSpace, score: GenomeScorer, *, seed: int = 0,
            budget: int | None = None, callback: Callback | None = None,
            constraints: Constraints | None = None, progress: bool = False,
            initial: np.ndarray | None = None) -> SearchResult:
        """See :meth:`SearchStrategy.run`."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        rng = np.random.default_rng(seed)
        arc = Archive(space, score, constraints, callback, self._limit(budget), progress,
                       f"search (optuna {self.sampler})")
        names = [f"{n}_{i}" for n, ch in space.dimensions.items() for i in range(len(ch))]
        dists: dict[str, optuna.distributions.BaseDistribution] = {
            nm: optuna.distributions.CategoricalDistribution(list(range(int(c))))
            for nm, c in zip(names, space.cardinalities(), strict=True)}

        start = _start(space, initial)
        first = arc.new(np.concatenate([start, space.sample_genomes(rng, 2 * self.population)]),
                        limit=max(self.population, len(start)))
        if not len(first):
            return arc.result()
        obj, viol = arc.evaluate(first, 0)
        assert arc.m is not None
        samplers = {
            "nsga2": lambda: optuna.samplers.NSGAIISampler(population_size=self.population,
                                                           seed=seed),
            "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
            "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        }
        study = optuna.create_study(directions=["minimize"] * arc.m,
                                    sampler=samplers[self.sampler]())

        def tell(trial: optuna.trial.Trial, o: np.ndarray, v: float) -> None:
            if constraints is not None:
                trial.set_constraint("violation", float(v))
            study.tell(trial, [float(x) for x in o])

        for row, o, v in zip(first, obj, viol, strict=True):
            study.enqueue_trial(dict(zip(names, row.tolist(), strict=True)))
            tell(study.ask(dists), o, float(v))

        gen, stall = 0, 0
        while arc.remaining > 0 and stall < _STALL:
            gen += 1
            trials = [study.ask(dists) for _ in range(min(self.population, arc.remaining))]
            raw = np.asarray([[t.params[nm] for nm in names] for t in trials], dtype=np.int64)
            g = space.canonical_genomes(raw.reshape(len(trials), len(names)))
            fresh = arc.new(g)
            stall = 0 if len(fresh) else stall + 1
            if len(fresh):
                arc.evaluate(fresh, gen)
            rows = arc.lookup(g)
            all_obj = np.concatenate(arc.objectives)
            all_viol = np.concatenate(arc.violation)
            for t, r in zip(trials, rows, strict=True):
                tell(t, all_obj[r], float(all_viol[r]))
        return arc.result()
