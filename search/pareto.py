"""Pareto fronts for (latency: lower is better, accuracy: higher is better)."""

from __future__ import annotations

import numpy as np

__all__ = ["crowding_distance", "nondominated_ranks", "pareto_mask"]


def _as_min(latency: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    return np.stack([np.asarray(latency, float), -np.asarray(accuracy, float)], axis=1)


def pareto_mask(latency: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Boolean mask of the points no other point dominates (ties keep the first)."""
    obj = _as_min(latency, accuracy)
    n = len(obj)
    order = np.lexsort((obj[:, 1], obj[:, 0]))  # by latency, then by -accuracy
    mask = np.zeros(n, dtype=bool)
    best = np.inf
    for i in order:
        if obj[i, 1] < best:
            mask[i] = True
            best = obj[i, 1]
    return mask


def nondominated_ranks(objectives: np.ndarray) -> np.ndarray:
    """Front index (0 = non-dominated) of each row of a (n, m) array, all minimised."""
    obj = np.asarray(objectives, float)
    n = len(obj)
    le = np.all(obj[:, None, :] <= obj[None, :, :], axis=2)
    lt = np.any(obj[:, None, :] < obj[None, :, :], axis=2)
    dominates = le & lt  # dominates[i, j]: i dominates j
    count = dominates.sum(axis=0)
    ranks = np.full(n, -1)
    current = np.flatnonzero(count == 0)
    r = 0
    while current.size:
        ranks[current] = r
        count = count - dominates[current].sum(axis=0)
        count[ranks >= 0] = -1
        current = np.flatnonzero(count == 0)
        r += 1
    return ranks


def crowding_distance(objectives: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance within one front (boundary points get +inf)."""
    obj = np.asarray(objectives, float)
    n, m = obj.shape
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(obj[:, j])
        span = obj[order[-1], j] - obj[order[0], j]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span > 0:
            dist[order[1:-1]] += (obj[order[2:], j] - obj[order[:-2], j]) / span
    return dist
