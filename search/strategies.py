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
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

import numpy as np

from switchnas.plugins.progress import progress_bar
from switchnas.supernets.base import Config
from switchnas.supernets.space import ChoiceSpace

from .pareto import crowding_distances, nondominated_mask, nondominated_ranks

__all__ = ["Callback", "Constraints", "EvolutionSearch", "GenomeScorer", "OptunaSearch",
           "RandomSearch", "SearchResult", "SearchStrategy", "upper_bounds"]

#: Genomes ``(n, P)`` -> objectives ``(n, m)``, every objective minimised.
GenomeScorer = Callable[[np.ndarray], np.ndarray]
#: Objectives ``(n, m)`` -> violation ``(n,)``, ``>= 0``; 0 is feasible.
Constraints = Callable[[np.ndarray], np.ndarray]
#: Called with each scored batch's genomes and objectives; ``True`` stops the search.
Callback = Callable[[np.ndarray, np.ndarray], bool | None]

#: Consecutive batches without a new candidate after which a search stops (the space,
#: or the part of it the search can still reach, is exhausted).
_STALL = 25
_MAX_POPULATION = 10_000_000
_MAX_BUDGET = 10**12


@dataclass
class SearchResult:
    """Every candidate a search scored, in the order it scored them.

    Attributes:
        genomes: ``(n, P)`` ``int64`` canonical genomes, all distinct.
        objectives: ``(n, m)`` objectives, all minimised.
        violation: ``(n,)`` total constraint violation, 0 where feasible.
        evaluations: ``n``, the candidates scored.
        history: one dict per batch: ``generation``, ``evaluated`` (so far), ``new``
            (scored in this batch), ``front`` (feasible non-dominated rows so far) and
            ``best`` (the smallest feasible value of each objective so far, or null).
    """

    genomes: np.ndarray
    objectives: np.ndarray
    violation: np.ndarray
    evaluations: int
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def feasible(self) -> np.ndarray:
        """Boolean mask of the rows that meet every constraint."""
        return np.asarray(self.violation == 0)

    def front(self) -> np.ndarray:
        """Indices of the feasible non-dominated rows, sorted by objective 0 (of rows
        with equal objectives, the first scored). Empty when no row is feasible."""
        idx = np.flatnonzero(self.feasible)
        if not idx.size:
            return idx
        sel = idx[nondominated_mask(self.objectives[idx])]
        _, first = np.unique(self.objectives[sel], axis=0, return_index=True)
        sel = np.sort(sel[first])
        return sel[np.argsort(self.objectives[sel, 0], kind="stable")]

    def configs(self, space: ChoiceSpace) -> list[Config]:
        """The configs of all rows (``space.from_genomes(self.genomes)``)."""
        return space.from_genomes(self.genomes)


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


# -- one run's bookkeeping --------------------------------------------------------------
class _Archive:
    """Scored candidates of one run: de-duplication, budget, scoring, callback."""

    def __init__(self, space: ChoiceSpace, score: GenomeScorer,
                 constraints: Constraints | None, callback: Callback | None, limit: int,
                 progress: bool, desc: str):
        self.space, self.score_fn, self.constraints = space, score, constraints
        self.callback, self.limit = callback, limit
        cards = space.cardinalities()
        self._dtype = np.uint8 if cards.max(initial=1) <= 256 else np.int64
        self.index: dict[bytes, int] = {}
        self.genomes: list[np.ndarray] = []
        self.objectives: list[np.ndarray] = []
        self.violation: list[np.ndarray] = []
        self.history: list[dict[str, Any]] = []
        self.evaluations = 0
        self.stopped = False
        self.m: int | None = None
        self._best: np.ndarray | None = None
        self._front: np.ndarray | None = None  # objectives of the feasible front so far
        self._bar = progress_bar(total=limit, desc=desc, enabled=progress)

    @property
    def remaining(self) -> int:
        return 0 if self.stopped else self.limit - self.evaluations

    def keys(self, genomes: np.ndarray) -> list[bytes]:
        g = np.ascontiguousarray(genomes, dtype=self._dtype)
        rows = g.view(np.dtype((np.void, g.shape[1] * g.itemsize))).ravel()
        return cast(list[bytes], rows.tolist())

    def new(self, genomes: np.ndarray, limit: int | None = None) -> np.ndarray:
        """Rows of ``genomes`` (canonical) not scored before and not repeated, at most
        ``limit`` (default: the remaining budget)."""
        room = self.remaining if limit is None else min(limit, self.remaining)
        if room <= 0:
            return genomes[:0]
        keys, index = self.keys(genomes), self.index
        first: dict[bytes, int] = {}  # first occurrence of each key not scored before
        for i in [i for i, k in enumerate(keys) if k not in index]:
            first.setdefault(keys[i], i)
        keep = list(first.values())[:room]
        return genomes[np.asarray(keep, dtype=np.int64)]

    def evaluate(self, genomes: np.ndarray, generation: int) -> tuple[np.ndarray, np.ndarray]:
        """Score new distinct genomes; returns their objectives and violation."""
        n = len(genomes)
        obj = np.asarray(self.score_fn(genomes), dtype=np.float64)
        if obj.ndim == 1:
            obj = obj[:, None]
        if obj.ndim != 2 or obj.shape[0] != n or (self.m is not None and obj.shape[1] != self.m):
            want = f"(n, {self.m})" if self.m else "(n, m)"
            raise ValueError(f"the scorer returned shape {obj.shape} for {n} genomes; "
                             f"expected {want}")
        if not np.isfinite(obj).all():
            raise ValueError(f"the scorer returned non-finite objectives for "
                             f"{int((~np.isfinite(obj)).any(axis=1).sum())} of {n} genomes")
        self.m = obj.shape[1]
        viol = np.zeros(n)
        if self.constraints is not None and n:
            viol = np.asarray(self.constraints(obj), dtype=np.float64).reshape(-1)
            if viol.shape != (n,) or not np.isfinite(viol).all() or (viol < 0).any():
                raise ValueError("constraints must return a finite violation >= 0 per "
                                 f"candidate, shape ({n},); got {viol.shape} "
                                 f"(min {viol.min() if viol.size else 'n/a'})")
        start = self.evaluations
        for i, k in enumerate(self.keys(genomes)):
            self.index[k] = start + i
        self.genomes.append(genomes)
        self.objectives.append(obj)
        self.violation.append(viol)
        self.evaluations += n
        self._bar.update(n)
        self._record(generation, obj, viol)
        if self.callback is not None and self.callback(genomes, obj):
            self.stopped = True
        return obj, viol

    def _record(self, generation: int, obj: np.ndarray, viol: np.ndarray) -> None:
        feas = obj[viol == 0]
        if len(feas):
            best = feas.min(axis=0)
            self._best = best if self._best is None else np.minimum(self._best, best)
            pts = feas if self._front is None else np.vstack([self._front, feas])
            self._front = _distinct_rows(pts[nondominated_mask(pts)])
        front = 0 if self._front is None else len(self._front)
        self.history.append({
            "generation": generation, "evaluated": self.evaluations, "new": len(obj),
            "front": front,
            "best": None if self._best is None else [float(x) for x in self._best]})

    def lookup(self, genomes: np.ndarray) -> np.ndarray:
        """Row index of each genome among the scored ones (-1 if not scored)."""
        return np.asarray([self.index.get(k, -1) for k in self.keys(genomes)], dtype=np.int64)

    def result(self) -> SearchResult:
        self._bar.close()
        P = self.space.genome_length
        g = np.concatenate(self.genomes) if self.genomes else np.zeros((0, P), np.int64)
        o = np.concatenate(self.objectives) if self.objectives else np.zeros((0, self.m or 0))
        v = np.concatenate(self.violation) if self.violation else np.zeros(0)
        return SearchResult(g, o, v, self.evaluations, self.history)


def _distinct_rows(pts: np.ndarray) -> np.ndarray:
    """The distinct rows of ``pts`` in lexicographic order (what ``np.unique(axis=0)``
    gives, without its structured-view sort: this runs every generation)."""
    if len(pts) < 2:
        return pts
    s = pts[np.lexsort(pts.T[::-1])]
    return s[np.r_[True, np.any(s[1:] != s[:-1], axis=1)]]


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


def _rank_and_crowding(obj: np.ndarray, viol: np.ndarray, until: int | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Constraint-dominated fronts: feasible rows by non-dominated rank (the fronts that
    hold the first ``until`` rows; the rest share the next rank), then infeasible rows by
    increasing violation; crowding distance within feasible fronts (0 for infeasible)."""
    n = len(obj)
    feas = viol == 0
    rank = np.zeros(n, dtype=np.int64)
    crowd = np.zeros(n)
    base = 0
    if feas.any():
        rank[feas] = nondominated_ranks(obj[feas], until=until)
        crowd[feas] = crowding_distances(obj[feas], rank[feas])
        base = int(rank[feas].max()) + 1
    if (~feas).any():
        rank[~feas] = base + np.unique(viol[~feas], return_inverse=True)[1].reshape(-1)
    return rank, crowd


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
        arc = _Archive(space, score, constraints, callback, self._limit(budget), progress,
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
        rank, crowd = _rank_and_crowding(obj, viol)
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
            rank, crowd = _rank_and_crowding(obj, viol, until=N)
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
        arc = _Archive(space, score, constraints, callback, self._limit(budget), progress,
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
        arc = _Archive(space, score, constraints, callback, self._limit(budget), progress,
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
