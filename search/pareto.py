"""Pareto fronts, non-dominated sorting, crowding and hypervolume, in numpy.

Objectives are ``(n, m)`` arrays, every column minimised (pass ``-accuracy``);
:func:`pareto_mask` keeps the older ``(latency, accuracy)`` form.

Two objectives, the common case, get an ``O(n log n)`` sweep; more objectives an
``O(m n^2)`` vectorised comparison.
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np

__all__ = ["crowding_distance", "crowding_distances", "hypervolume", "nondominated_mask",
           "nondominated_ranks", "pareto_mask", "rank_and_crowding"]


def _objectives(objectives: np.ndarray) -> np.ndarray:
    obj = np.asarray(objectives, dtype=np.float64)
    if obj.ndim != 2:
        raise ValueError(f"objectives must be a 2-D array (n, m), got shape {obj.shape}")
    if obj.size and not np.isfinite(obj).all():
        raise ValueError("objectives must be finite; got NaN or infinite values")
    return obj


def pareto_mask(latency: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Boolean mask of the points no other point dominates (lower latency, higher accuracy
    are better; of points with equal objectives only the first is kept)."""
    obj = np.stack([np.asarray(latency, float), -np.asarray(accuracy, float)], axis=1)
    n = len(obj)
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    order = np.lexsort((np.arange(n), obj[:, 1], obj[:, 0]))  # latency, -accuracy, index
    f1 = obj[order, 1]
    prev_best = np.concatenate([[np.inf], np.minimum.accumulate(f1)[:-1]])
    mask[order[f1 < prev_best]] = True
    return mask


def nondominated_ranks(objectives: np.ndarray, *, until: int | None = None) -> np.ndarray:
    """Front index (0 = non-dominated) of each row of an ``(n, m)`` array, all minimised.

    Rows with equal objectives share a front. ``O(n log n)`` for ``m <= 2``.

    Args:
        objectives: ``(n, m)`` finite values.
        until: the fronts found may stop once they hold at least this many rows (what
            a selection of ``until`` rows needs); the rows left then all get the next
            front index. ``None``: rank every row.

    Raises:
        ValueError: not a 2-D array, or non-finite values.
    """
    obj = _objectives(objectives)
    n, m = obj.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if m == 1:
        return np.unique(obj[:, 0], return_inverse=True)[1].astype(np.int64).reshape(n)
    if m == 2:
        return _ranks_2d(obj, until)
    return _ranks_nd(obj, until)


def _sorted_distinct(obj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row order by (f0, f1) and, in that order, the group of equal rows each belongs to."""
    order = np.argsort(obj[:, 0])
    f0 = obj[order, 0]
    if (f0[1:] == f0[:-1]).any():  # ties in f0: order them by f1 too
        order = np.lexsort((obj[:, 1], obj[:, 0]))
    s = obj[order]
    new = np.empty(len(s), dtype=bool)
    new[0] = True
    new[1:] = np.any(s[1:] != s[:-1], axis=1)
    return order, np.cumsum(new) - 1


def _starts(sorted_ids: np.ndarray) -> np.ndarray:
    """Where each run of equal values of a sorted array begins."""
    out = np.empty(len(sorted_ids), dtype=bool)
    out[:1] = True
    np.not_equal(sorted_ids[1:], sorted_ids[:-1], out=out[1:])
    return out


def _shifted_min(v: np.ndarray) -> np.ndarray:
    """``out[i] = min(v[:i])`` (``+inf`` for ``i = 0``)."""
    out = np.empty(len(v))
    out[:1] = np.inf
    np.minimum.accumulate(v[:-1], out=out[1:])
    return out


#: Peeling a front costs O(n) numpy work; below this many rows per front the sweep wins.
_PEEL_MIN = 16


def _ranks_2d(obj: np.ndarray, until: int | None) -> np.ndarray:
    """Distinct points in (f0, f1) order: an earlier point dominates a later one iff its
    f1 is not larger. Fronts are peeled (a point is in the front iff its f1 is below every
    earlier remaining point's) while they are large; the rest is one sweep in which a
    point joins the first front whose smallest f1 so far is larger than its own."""
    order, group = _sorted_distinct(obj)
    f1 = obj[order, 1]
    u = f1[_starts(group)]  # one f1 per distinct point, in (f0, f1) order
    weight = np.bincount(group)  # rows per distinct point
    ranks = np.empty(len(u), dtype=np.int64)
    left = np.arange(len(u))
    r = filled = 0
    while left.size:
        if until is not None and filled >= until:
            ranks[left] = r
            break
        v = u[left]
        front = v < _shifted_min(v)
        if front.sum() < _PEEL_MIN:
            ranks[left] = r + _sweep(v.tolist())
            break
        ranks[left[front]] = r
        filled += int(weight[left[front]].sum())
        left = left[~front]
        r += 1
    out = np.empty(len(obj), dtype=np.int64)
    out[order] = ranks[group]
    return out


def _sweep(f1: list[float]) -> np.ndarray:
    last: list[float] = []  # per front, the smallest f1 of its members so far
    ranks: list[int] = []
    find, append = bisect_right, ranks.append
    for v in f1:
        k = find(last, v)
        if k == len(last):
            last.append(v)
        else:
            last[k] = v
        append(k)
    return np.asarray(ranks, dtype=np.int64)


def _mask_2d(obj: np.ndarray) -> np.ndarray:
    """Non-dominated rows of two objectives: in (f0, f1) order, distinct points whose f1
    is below every earlier distinct point's (equal rows share the verdict)."""
    order, group = _sorted_distinct(obj)
    f1 = obj[order, 1]
    u = f1[_starts(group)]
    mask = np.empty(len(obj), dtype=bool)
    mask[order] = (u < _shifted_min(u))[group]
    return mask


def _ranks_nd(obj: np.ndarray, until: int | None = None) -> np.ndarray:
    n = len(obj)
    le = np.all(obj[:, None, :] <= obj[None, :, :], axis=2)
    lt = np.any(obj[:, None, :] < obj[None, :, :], axis=2)
    dominates = le & lt  # dominates[i, j]: i dominates j
    count = dominates.sum(axis=0)
    ranks = np.full(n, -1, dtype=np.int64)
    current = np.flatnonzero(count == 0)
    r = 0
    while current.size:
        if until is not None and int((ranks >= 0).sum()) >= until:
            ranks[ranks < 0] = r
            break
        ranks[current] = r
        count = count - dominates[current].sum(axis=0)
        count[ranks >= 0] = -1
        current = np.flatnonzero(count == 0)
        r += 1
    return ranks


def nondominated_mask(objectives: np.ndarray) -> np.ndarray:
    """Rows that no other row dominates (all objectives minimised; equal rows all kept).

    Raises:
        ValueError: not a 2-D array, or non-finite values.
    """
    obj = _objectives(objectives)
    if len(obj) and obj.shape[1] == 2:
        return _mask_2d(obj)
    return nondominated_ranks(obj) == 0


def crowding_distance(objectives: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance within one front (boundary points get ``+inf``)."""
    obj = _objectives(objectives)
    return crowding_distances(obj, np.zeros(len(obj), dtype=np.int64))


def crowding_distances(objectives: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of every row within its own front (``ranks``), all fronts
    at once: per objective, the gap between a row's neighbours in its front divided by
    the front's span; fronts' boundary rows (and fronts of one or two rows) get ``+inf``.

    Raises:
        ValueError: shapes do not match, or non-finite objectives.
    """
    obj = _objectives(objectives)
    ranks = np.asarray(ranks).reshape(-1)
    n, m = obj.shape
    if len(ranks) != n:
        raise ValueError(f"ranks has {len(ranks)} entries for {n} rows")
    dist = np.zeros(n)
    if n == 0:
        return dist
    fits = ranks.min() >= -(2**15) and ranks.max() < 2**15  # front labels may be any ints
    small = ranks.astype(np.int16 if fits else np.int64)  # stable int16 sort: radix
    for j in range(m):
        order = np.argsort(obj[:, j])
        order = order[np.argsort(small[order], kind="stable")]
        r, v = ranks[order], obj[order, j]
        first = _starts(r)
        last = np.empty(n, dtype=bool)
        last[:-1], last[-1] = first[1:], True
        starts = np.flatnonzero(first)
        span = (np.maximum.reduceat(v, starts) - np.minimum.reduceat(v, starts))
        span_row = np.repeat(span, np.diff(np.append(starts, n)))
        inner = ~(first | last)
        gap = np.zeros(n)
        gap[1:-1] = v[2:] - v[:-2]
        with np.errstate(divide="ignore", invalid="ignore"):
            contrib = np.where(inner & (span_row > 0), gap / span_row, 0.0)
        contrib[first | last] = np.inf
        dist[order] += contrib
    return dist


def hypervolume(objectives: np.ndarray, reference: np.ndarray) -> float:
    """Area (two objectives, both minimised) dominated by the rows and bounded by
    ``reference``; rows not strictly better than the reference in both add nothing.

    Raises:
        ValueError: not two objectives, or ``reference`` is not two finite numbers.
    """
    obj = _objectives(objectives)
    ref = np.asarray(reference, dtype=np.float64).reshape(-1)
    if obj.shape[1] != 2 or ref.shape != (2,) or not np.isfinite(ref).all():
        raise ValueError(f"hypervolume needs (n, 2) objectives and a finite 2-point reference;"
                         f" got {obj.shape} and {ref.tolist()}")
    obj = obj[np.all(obj < ref, axis=1)]
    if not len(obj):
        return 0.0
    front = obj[nondominated_mask(obj)]
    front = np.unique(front, axis=0)  # sorted by f0 ascending, so f1 descends
    f0, f1 = front[:, 0], front[:, 1]
    widths = np.diff(np.append(f0, ref[0]))
    return float(np.sum(widths * (ref[1] - f1)))


def rank_and_crowding(obj: np.ndarray, viol: np.ndarray, until: int | None = None
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
