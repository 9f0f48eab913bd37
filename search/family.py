"""Families: K members of a measured Pareto front spread over its latency range."""

from __future__ import annotations

import numpy as np

from .pareto import pareto_mask

__all__ = ["pick_family"]


def pick_family(latency_ms: np.ndarray, accuracy: np.ndarray, k: int, *,
                low_ms: np.ndarray | None = None,
                high_ms: np.ndarray | None = None) -> np.ndarray:
    """Indices of up to ``k`` Pareto points, fastest to slowest, spanning the widest
    latency range the front offers.

    The front's fastest and most accurate points are the ends; the others are those
    nearest to evenly spaced latency targets in between. With measurement intervals
    (``low_ms``/``high_ms``, e.g. 95 % intervals) no two members' intervals overlap: two
    members the measurement cannot tell apart are one member too many, and the family
    is smaller than ``k`` rather than padded with look-alikes.

    Args:
        latency_ms: measured latency per point.
        accuracy: score per point (higher is better).
        k: members wanted, >= 1.
        low_ms, high_ms: per-point interval of the latency (both or neither).

    Returns:
        Point indices sorted by latency (at most ``k``).

    Raises:
        ValueError: ``k < 1``, or mismatched array lengths.
    """
    if k < 1:
        raise ValueError(f"family.k must be >= 1, got {k}")
    lat, acc = np.asarray(latency_ms, float), np.asarray(accuracy, float)
    if (low_ms is None) != (high_ms is None):
        raise ValueError("give both low_ms and high_ms, or neither")
    lo = lat if low_ms is None else np.asarray(low_ms, float)
    hi = lat if high_ms is None else np.asarray(high_ms, float)
    if not (len(lat) == len(acc) == len(lo) == len(hi)):
        raise ValueError(f"arrays differ in length: latency {len(lat)}, accuracy {len(acc)}, "
                         f"intervals {len(lo)}/{len(hi)}")
    front = np.flatnonzero(pareto_mask(lat, acc))
    front = front[np.argsort(lat[front], kind="stable")]
    if len(front) == 0:
        return front

    def apart(i: int, chosen: list[int]) -> bool:
        if low_ms is None:
            return i not in chosen
        return all(hi[i] < lo[j] or hi[j] < lo[i] for j in chosen)

    chosen = [int(front[-1])]  # the most accurate point of the front
    if k >= 2 and apart(int(front[0]), chosen):
        chosen.append(int(front[0]))
    for t in np.linspace(lat[front[0]], lat[front[-1]], k)[1:-1]:
        free = [int(i) for i in front if apart(int(i), chosen)]
        if not free:
            break
        chosen.append(min(free, key=lambda i: abs(lat[i] - t)))
    return np.asarray(sorted(chosen, key=lambda i: lat[i]), dtype=int)
