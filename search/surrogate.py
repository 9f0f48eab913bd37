"""Surrogates of real objectives for the search loop: one regressor per objective, chosen
by cross-validation, with a bootstrap ensemble of it for the uncertainty.

The candidates cover additive objectives (one-hot ridge on the encoding, and on the log of
a positive objective such as latency, which is multiplicative) and objectives that are not
additive (histogram gradient boosting, and boosting on the ridge's residuals); K-fold RMSE
picks one per objective. The chosen model fitted on every row gives the means the inner
search ranks by; refits on bootstrap resamples give a spread that is large where the
measurements say little (the loop explores there).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_array, check_is_fitted, check_X_y

from switchnas.predictors.models import OneHotRidge

__all__ = ["CANDIDATES", "ObjectiveSurrogates", "RidgeBoost"]

#: Regressors :class:`ObjectiveSurrogates` chooses among (the ``_log`` ones fit the log of
#: an objective whose values are all positive, such as latency).
CANDIDATES: tuple[str, ...] = ("ridge", "ridge_log", "gbm", "ridge_gbm", "ridge_gbm_log")
_BOOSTED = ("gbm", "ridge_gbm", "ridge_gbm_log")
_LOG = ("ridge_log", "ridge_gbm_log")
#: Fewer rows than this: boosted candidates are not cross-validated (too few to beat a
#: ridge, and the folds' noise would decide).
MIN_ROWS_BOOSTED = 40


def _gbm(n: int) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(max_iter=100, learning_rate=0.1, max_leaf_nodes=15,
                                         min_samples_leaf=max(3, min(20, n // 20)),
                                         early_stopping=False, random_state=0)


class RidgeBoost(RegressorMixin, BaseEstimator):
    """One-hot ridge plus gradient boosting on its residuals: additive where the data is,
    interactions where the ridge leaves a pattern.

    Args:
        max_iter: boosting iterations on the residuals.
        learning_rate: the boosting's shrinkage.
    """

    def __init__(self, *, max_iter: int = 50, learning_rate: float = 0.1):
        self.max_iter = max_iter
        self.learning_rate = learning_rate

    def fit(self, X: ArrayLike, y: ArrayLike) -> RidgeBoost:
        Xa, ya = check_X_y(X, y, dtype=np.float64, y_numeric=True)
        self.n_features_in_ = Xa.shape[1]
        self.ridge_ = OneHotRidge().fit(Xa, ya)
        booster = _gbm(len(ya)).set_params(max_iter=self.max_iter,
                                            learning_rate=self.learning_rate)
        self.booster_ = booster.fit(Xa, ya - self.ridge_.predict(Xa))
        return self

    def predict(self, X: ArrayLike) -> np.ndarray:
        check_is_fitted(self, "booster_")
        Xa = check_array(X, dtype=np.float64)
        return np.asarray(self.ridge_.predict(Xa) + self.booster_.predict(Xa))


def _build(name: str, n: int) -> Any:
    if name == "ridge":
        return OneHotRidge()
    if name == "ridge_log":
        return TransformedTargetRegressor(regressor=OneHotRidge(), func=np.log,
                                          inverse_func=np.exp, check_inverse=False)
    if name == "gbm":
        return _gbm(n)
    if name == "ridge_gbm":
        return RidgeBoost()
    if name == "ridge_gbm_log":
        return TransformedTargetRegressor(regressor=RidgeBoost(), func=np.log,
                                          inverse_func=np.exp, check_inverse=False)
    raise ValueError(f"unknown surrogate {name!r}; choose from {list(CANDIDATES)}")


class ObjectiveSurrogates(RegressorMixin, BaseEstimator):
    """One regressor per objective (column of ``Y``), chosen by K-fold RMSE, and a
    bootstrap ensemble of it.

    Args:
        candidates: names from :data:`CANDIDATES`.
        cv: folds of the cross-validation (fewer when there are few rows).
        n_bootstrap: bootstrap refits of each chosen ridge (boosted models get a third).
        seed: seeds the folds and the resamples.
        chosen: per objective, a name to use without cross-validating (``None``: choose);
            the loop passes the previous choice between re-selections.

    Attributes:
        chosen_: the regressor chosen per objective.
        cv_rmse_: per objective, each candidate's cross-validated RMSE (empty when
            ``chosen`` was given).
    """

    def __init__(self, *, candidates: Sequence[str] = CANDIDATES, cv: int = 4,
                 n_bootstrap: int = 8, seed: int = 0,
                 chosen: Sequence[str] | None = None):
        self.candidates = candidates
        self.cv = cv
        self.n_bootstrap = n_bootstrap
        self.seed = seed
        self.chosen = chosen

    def fit(self, X: ArrayLike, Y: ArrayLike) -> ObjectiveSurrogates:
        """Fit on features ``X`` ``(n, d)`` and objectives ``Y`` ``(n, m)``; ``n >= 4``.

        Raises:
            ValueError: shapes that do not match, too few rows, an unknown candidate.
        """
        Xa = check_array(X, dtype=np.float64)
        Ya = np.asarray(Y, dtype=np.float64)
        Ya = Ya[:, None] if Ya.ndim == 1 else Ya
        if Ya.ndim != 2 or len(Ya) != len(Xa) or len(Xa) < 4:
            raise ValueError(f"need X (n, d) and Y (n, m) with n >= 4; got {Xa.shape} and "
                             f"{Ya.shape}")
        bad = [c for c in self.candidates if c not in CANDIDATES]
        if bad or not self.candidates:
            raise ValueError(f"unknown surrogate(s) {bad}; choose from {list(CANDIDATES)}")
        if self.chosen is not None and len(self.chosen) != Ya.shape[1]:
            raise ValueError(f"chosen={list(self.chosen)}: need one name per objective "
                             f"({Ya.shape[1]})")
        rng = np.random.default_rng(self.seed)
        self.n_features_in_ = Xa.shape[1]
        self.chosen_: list[str] = []
        self.cv_rmse_: list[dict[str, float]] = []
        self.models_: list[Any] = []
        self.ensembles_: list[list[Any]] = []
        n = len(Ya)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ill-conditioned ridges on few rows are fine
            for j in range(Ya.shape[1]):
                y = Ya[:, j]
                scores: dict[str, float] = {}
                if self.chosen is not None:
                    name = self.chosen[j]
                    if name in _LOG and not np.all(y > 0):
                        name = "ridge"
                else:
                    name, scores = self._select(Xa, y)
                self.chosen_.append(name)
                self.cv_rmse_.append(scores)
                self.models_.append(_build(name, n).fit(Xa, y))
                b = self.n_bootstrap // 3 if name in _BOOSTED else self.n_bootstrap
                members = []
                for _ in range(max(2, b)):
                    idx = rng.integers(0, n, n)
                    members.append(_build(name, n).fit(Xa[idx], y[idx]))
                self.ensembles_.append(members)
        return self

    def _select(self, X: np.ndarray, y: np.ndarray) -> tuple[str, dict[str, float]]:
        positive = bool(np.all(y > 0))
        names = [c for c in self.candidates
                 if (c not in _LOG or positive)
                 and (c not in _BOOSTED or len(y) >= MIN_ROWS_BOOSTED)] or [
                     c for c in self.candidates if c not in _LOG or positive] or ["ridge"]
        if len(names) == 1:
            return names[0], {}
        k = max(2, min(int(self.cv), len(y) // 4))
        folds = list(KFold(n_splits=k, shuffle=True, random_state=self.seed).split(X))
        scores: dict[str, float] = {}
        for name in names:
            err = []
            for tr, te in folds:
                pred = clone(_build(name, len(tr))).fit(X[tr], y[tr]).predict(X[te])
                err.append(np.mean((np.asarray(pred) - y[te]) ** 2))
            scores[name] = float(np.sqrt(np.mean(err)))
        finite = {k_: v for k_, v in scores.items() if np.isfinite(v)}
        return (min(finite, key=finite.__getitem__) if finite else names[0]), scores

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Means ``(n, m)``: each objective's chosen model fitted on every row."""
        check_is_fitted(self, "models_")
        Xa = check_array(X, dtype=np.float64)
        return np.stack([np.asarray(m.predict(Xa), float) for m in self.models_], axis=1)

    def predict_std(self, X: ArrayLike) -> np.ndarray:
        """Spread ``(n, m)``: the standard deviation of the bootstrap refits."""
        check_is_fitted(self, "ensembles_")
        Xa = check_array(X, dtype=np.float64)
        return np.stack([np.std([np.asarray(m.predict(Xa), float) for m in ens], axis=0)
                         for ens in self.ensembles_], axis=1)
