"""Scores of a predictor against measured values: error and ranking metrics.

Latency predictors are judged by relative error (MAPE, the share within +-10 %),
accuracy predictors by absolute error and by how well they rank sub-networks (a
search only needs the order right), so :func:`regression_report` gives all of them.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

__all__ = ["regression_report", "mape", "rmse"]


def _pair(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(y_pred, dtype=float).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} values but y_pred has {p.size}")
    if t.size == 0:
        raise ValueError("cannot score an empty prediction")
    return t, p


def mape(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute percentage error in percent (``y_true`` must be non-zero)."""
    t, p = _pair(y_true, y_pred)
    if np.any(t == 0):
        raise ValueError("MAPE is undefined where y_true is 0")
    return float(np.mean(np.abs(p - t) / np.abs(t)) * 100.0)


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    t, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def _rank_corr(fn, t: np.ndarray, p: np.ndarray) -> float:  # type: ignore[no-untyped-def]
    # A constant array has no ranking: say so with NaN rather than a warning.
    if t.size < 2 or np.ptp(t) == 0 or np.ptp(p) == 0:
        return math.nan
    return float(fn(t, p)[0])


def regression_report(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """Error and ranking scores of ``y_pred`` against ``y_true``.

    Returns:
        ``mape`` (percent; NaN if any ``y_true`` is 0), ``rmse`` (units of y),
        ``within10`` (share of predictions with ``|err| / |y| <= 10 %``), ``spearman``
        and ``kendall`` (NaN when either side is constant) and ``n``.
    """
    t, p = _pair(y_true, y_pred)
    nonzero = bool(np.all(t != 0))
    rel = np.abs(p - t) / np.abs(t) if nonzero else None
    return {
        "mape": float(np.mean(rel) * 100.0) if rel is not None else math.nan,
        "rmse": rmse(t, p),
        "within10": float(np.mean(rel <= 0.10 + 1e-12)) if rel is not None else math.nan,
        "spearman": _rank_corr(stats.spearmanr, t, p),
        "kendall": _rank_corr(stats.kendalltau, t, p),
        "n": float(t.size),
    }
