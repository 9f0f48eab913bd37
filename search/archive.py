"""One search run's scored candidates, and what a run returns.

:class:`Archive` is the bookkeeping every strategy shares: it de-duplicates candidates
(by their canonical genome's bytes), enforces the budget, scores batches, checks the
scorer's and the constraints' output, keeps the history and calls the callback.
:class:`SearchResult` is what :meth:`SearchStrategy.run
<switchnas.search.strategies.SearchStrategy.run>` returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from switchnas.plugins.progress import progress_bar
from switchnas.supernets.base import Config
from switchnas.supernets.space import ChoiceSpace

from .pareto import nondominated_mask

__all__ = ["Archive", "Callback", "Constraints", "GenomeScorer", "SearchResult",
           "distinct_rows"]

#: Genomes ``(n, P)`` -> objectives ``(n, m)``, every objective minimised.
GenomeScorer = Callable[[np.ndarray], np.ndarray]
#: Objectives ``(n, m)`` -> violation ``(n,)``, ``>= 0``; 0 is feasible.
Constraints = Callable[[np.ndarray], np.ndarray]
#: Called with each scored batch's genomes and objectives; ``True`` stops the search.
Callback = Callable[[np.ndarray, np.ndarray], bool | None]


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


class Archive:
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
            self._front = distinct_rows(pts[nondominated_mask(pts)])
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


def distinct_rows(pts: np.ndarray) -> np.ndarray:
    """The distinct rows of ``pts`` in lexicographic order (what ``np.unique(axis=0)``
    gives, without its structured-view sort: this runs every generation)."""
    if len(pts) < 2:
        return pts
    s = pts[np.lexsort(pts.T[::-1])]
    return s[np.r_[True, np.any(s[1:] != s[:-1], axis=1)]]
