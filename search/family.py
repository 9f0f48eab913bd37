"""Families: K members of a measured Pareto front spread over its latency range."""

from __future__ import annotations

import numpy as np

from .pareto import pareto_mask

__all__ = ["pick_family"]


def pick_family(latency_ms: np.ndarray, accuracy: np.ndarray, k: int) -> np.ndarray:
    """Indices of up to ``k`` Pareto points, fastest to slowest: the fastest, the most
    accurate, and those nearest to evenly spaced latency targets in between."""
    if k < 1:
        raise ValueError(f"family.k must be >= 1, got {k}")
    lat, acc = np.asarray(latency_ms, float), np.asarray(accuracy, float)
    front = np.flatnonzero(pareto_mask(lat, acc))
    front = front[np.argsort(lat[front])]
    if len(front) <= k:
        return front
    targets = np.linspace(lat[front[0]], lat[front[-1]], k)
    chosen: list[int] = []
    for t in targets:
        free = [i for i in front if i not in chosen]
        chosen.append(int(min(free, key=lambda i: abs(lat[i] - t))))
    return np.asarray(sorted(chosen, key=lambda i: lat[i]), dtype=int)
