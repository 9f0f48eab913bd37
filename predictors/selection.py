"""Choosing a predictor by cross-validation.

:func:`select_predictor` scores each named candidate from
:data:`~switchnas.predictors.models.REGISTRY` with the same K folds, keeps the best by
one metric and refits it on all the data. The default metric is MAPE when every target is
positive (latency, energy: relative error is what a latency budget cares about) and RMSE
otherwise; pass ``metric`` to choose (``"rmse"`` for accuracy in percent points,
``"kendall"``/``"spearman"`` when only the ranking matters).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold
from threadpoolctl import threadpool_limits

from .metrics import regression_report
from .models import REGISTRY, make_predictor

__all__ = ["DEFAULT_CANDIDATES", "select_encoding_and_predictor", "select_predictor"]

#: Cheap enough to cross-validate in seconds on a few hundred rows.
DEFAULT_CANDIDATES: tuple[str, ...] = ("ridge", "additive", "gbm", "mlp")
_HIGHER_IS_BETTER = {"spearman", "kendall", "within10"}
_METRICS = {"mape", "rmse", "spearman", "kendall", "within10"}


def select_predictor(X: ArrayLike, y: ArrayLike, *, candidates: Sequence[str] | None = None,
                     cv: int = 5, seed: int = 0, log_target: bool = False,
                     metric: str = "auto") -> tuple[Any, dict[str, Any]]:
    """Cross-validate ``candidates``, refit the best on all of ``X, y``.

    Args:
        X: features ``(n, d)``; ``n >= 4``.
        y: targets ``(n,)``.
        candidates: names in the predictor registry (default :data:`DEFAULT_CANDIDATES`).
        cv: folds; at most ``n // 2`` are used so each fold has two test rows.
        seed: shuffles the folds.
        log_target: fit every candidate on ``log(y)`` (needs ``y > 0``); predictions are
            back-transformed.
        metric: ``"auto"`` (MAPE if all ``y > 0``, else RMSE), or one of ``mape``,
            ``rmse``, ``spearman``, ``kendall``, ``within10``. Folds' scores are
            averaged; rank metrics are computed per fold.

    Returns:
        ``(fitted estimator, report)`` with report ``{"chosen": name, "metric": m,
        "cv": {name: {metric: mean over folds}}, "folds": k}``.
    """
    Xa = np.asarray(X, dtype=float)
    ya = np.asarray(y, dtype=float).ravel()
    if Xa.ndim != 2 or Xa.shape[0] != ya.size:
        raise ValueError(f"X must be (n, d) with n = len(y); got X {Xa.shape}, y {ya.shape}")
    n = ya.size
    if n < 4:
        raise ValueError(f"select_predictor needs at least 4 rows, got {n}")
    names = list(candidates) if candidates is not None else list(DEFAULT_CANDIDATES)
    unknown = [c for c in names if c not in REGISTRY]
    if unknown or not names:
        raise ValueError(f"unknown predictor(s) {unknown}; registered: {sorted(REGISTRY)}")
    positive = bool(np.all(ya > 0))
    if log_target and not positive:
        raise ValueError("log_target=True needs every target > 0")
    m = ("mape" if positive else "rmse") if metric == "auto" else metric
    if m not in _METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose 'auto' or one of {sorted(_METRICS)}")

    k = max(2, min(int(cv), n // 2))
    # Small fits run many times faster on one BLAS thread than on a contended pool.
    with threadpool_limits(limits=1), warnings.catch_warnings():
        # an MLP stopped at max_iter is still a valid candidate; CV judges it
        warnings.simplefilter("ignore", ConvergenceWarning)
        return _select(Xa, ya, names, k, seed, log_target, m)


def _select(Xa: np.ndarray, ya: np.ndarray, names: list[str], k: int, seed: int,
            log_target: bool, m: str) -> tuple[Any, dict[str, Any]]:
    folds = list(KFold(n_splits=k, shuffle=True, random_state=seed).split(Xa))
    scores: dict[str, dict[str, float]] = {}
    for name in names:
        per_fold = []
        for tr, te in folds:
            est = _build(name, log_target).fit(Xa[tr], ya[tr])
            per_fold.append(regression_report(ya[te], est.predict(Xa[te])))
        scores[name] = {key: float(np.nanmean([r[key] for r in per_fold]))
                        if not all(np.isnan(r[key]) for r in per_fold) else float("nan")
                        for key in per_fold[0] if key != "n"}

    def badness(name: str) -> float:
        v = scores[name][m]
        if np.isnan(v):
            return np.inf
        return -v if m in _HIGHER_IS_BETTER else v

    chosen = min(names, key=badness)
    best = clone(_build(chosen, log_target)).fit(Xa, ya)
    return best, {"chosen": chosen, "metric": m, "cv": scores, "folds": k}


def _build(name: str, log_target: bool) -> Any:
    est = make_predictor(name)
    if log_target:
        return TransformedTargetRegressor(regressor=est, func=np.log, inverse_func=np.exp,
                                          check_inverse=False)
    return est


def select_encoding_and_predictor(
        encodings: Mapping[str, ArrayLike], y: ArrayLike, *,
        candidates: Sequence[str] | None = None, cv: int = 5, seed: int = 0,
        log_target: bool = False, metric: str = "auto") -> tuple[Any, dict[str, Any]]:
    """:func:`select_predictor` over several encodings of the same rows (same folds).

    Args:
        encodings: ``{name: X}``, each ``X`` with one row per target.
        (others as in :func:`select_predictor`)

    Returns:
        ``(fitted estimator, report)``; the report adds ``"encoding"`` (the chosen name)
        and ``"by_encoding"`` (each encoding's own report).
    """
    if not encodings:
        raise ValueError("encodings is empty; pass {name: X}")
    reports: dict[str, dict[str, Any]] = {}
    fitted: dict[str, Any] = {}
    for name, X in encodings.items():
        fitted[name], reports[name] = select_predictor(
            X, y, candidates=candidates, cv=cv, seed=seed, log_target=log_target,
            metric=metric)
    m = next(iter(reports.values()))["metric"]
    sign = -1.0 if m in _HIGHER_IS_BETTER else 1.0

    def badness(name: str) -> float:
        v = reports[name]["cv"][reports[name]["chosen"]][m]
        return np.inf if np.isnan(v) else sign * v

    best = min(reports, key=badness)
    return fitted[best], {**reports[best], "encoding": best, "by_encoding": reports}
