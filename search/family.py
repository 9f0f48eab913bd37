"""Families: K members of a measured Pareto front spread over its latency range."""

from __future__ import annotations

import numpy as np

from .pareto import nondominated_mask, pareto_mask

__all__ = ["pick_family"]


def pick_family(latency_ms: np.ndarray, accuracy: np.ndarray, k: int, *,
                low_ms: np.ndarray | None = None,
                high_ms: np.ndarray | None = None,
                accuracy_tolerance: float = 0.0,
                extra_objectives: np.ndarray | None = None) -> np.ndarray:
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
        accuracy_tolerance: accuracy differences up to this are noise: a point is left
            out only if a point at most as slow is more accurate by more than this
            (0: the plain Pareto front). Scores measured on a finite test split differ by
            chance, and a plain front then keeps only the few lucky points.
        extra_objectives: ``(n, j)`` more minimised columns (latency or energy on other
            targets): the candidates are then the points non-dominated over (latency,
            -accuracy, extra ...), so every member is Pareto-good on all the targets
            together; with a tolerance, a point is left out only if another point is at
            most as slow, no worse on every extra column and more accurate by more than
            the tolerance. The members are still spread over the (first) latency.

    Returns:
        Point indices sorted by latency (at most ``k``).

    Raises:
        ValueError: ``k < 1``, mismatched array lengths, or non-finite extra objectives.
    """
    if k < 1:
        raise ValueError(f"family.k must be >= 1, got {k}")
    if not (accuracy_tolerance >= 0 and np.isfinite(accuracy_tolerance)):
        raise ValueError(f"family.accuracy_tolerance must be a finite number >= 0, got "
                         f"{accuracy_tolerance!r}")
    lat, acc = np.asarray(latency_ms, float), np.asarray(accuracy, float)
    if (low_ms is None) != (high_ms is None):
        raise ValueError("give both low_ms and high_ms, or neither")
    lo = lat if low_ms is None else np.asarray(low_ms, float)
    hi = lat if high_ms is None else np.asarray(high_ms, float)
    if not (len(lat) == len(acc) == len(lo) == len(hi)):
        raise ValueError(f"arrays differ in length: latency {len(lat)}, accuracy {len(acc)}, "
                         f"intervals {len(lo)}/{len(hi)}")
    extra = None
    if extra_objectives is not None:
        extra = np.asarray(extra_objectives, float)
        if extra.ndim == 1:
            extra = extra[:, None]
        if extra.ndim != 2 or len(extra) != len(lat):
            raise ValueError(f"extra_objectives must be ({len(lat)}, j); got shape "
                             f"{extra.shape}")
        if not np.isfinite(extra).all():
            raise ValueError("extra_objectives must be finite (every point measured on "
                             "every target)")
        if not extra.shape[1]:
            extra = None
    if accuracy_tolerance > 0:
        slower_or_equal = lat[None, :] <= lat[:, None]  # [i, j]: j is at most as slow as i
        if extra is not None:  # ... and no worse on every other column
            slower_or_equal &= np.all(extra[None, :, :] <= extra[:, None, :], axis=2)
        better = acc[None, :] > acc[:, None] + accuracy_tolerance
        front = np.flatnonzero(~np.any(slower_or_equal & better, axis=1))
    elif extra is not None:
        front = np.flatnonzero(nondominated_mask(np.column_stack([lat, -acc, extra])))
    else:
        front = np.flatnonzero(pareto_mask(lat, acc))
    front = front[np.argsort(lat[front], kind="stable")]
    if len(front) == 0:
        return front

    def apart(i: int, chosen: list[int]) -> bool:
        if low_ms is None:
            return i not in chosen
        return all(hi[i] < lo[j] or hi[j] < lo[i] for j in chosen)

    chosen = [int(front[-1])]  # the slowest point of the front: its most accurate
    if k >= 2 and apart(int(front[0]), chosen):
        chosen.append(int(front[0]))
    for t in np.linspace(lat[front[0]], lat[front[-1]], k)[1:-1]:
        free = [int(i) for i in front if apart(int(i), chosen)]
        if not free:
            break
        chosen.append(min(free, key=lambda i: abs(lat[i] - t)))
    return np.asarray(sorted(chosen, key=lambda i: lat[i]), dtype=int)
