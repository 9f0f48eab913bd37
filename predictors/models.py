"""Latency and accuracy predictors with the scikit-learn estimator contract, and their
registry.

Every estimator takes its parameters as keyword arguments stored unchanged, learns
attributes ending in ``_`` in ``fit`` and returns ``self`` from it, so ``clone``,
``cross_val_score`` and pipelines work. :data:`REGISTRY` maps a short name to a factory
of a ready-to-fit estimator; :func:`select_predictor` cross-validates names from it.

* :class:`OneHotRidge` - ridge on a one-hot expansion of categorical columns (DyNAS-T's
  recipe); alpha by generalised cross-validation.
* :class:`AdditiveBlockModel` - non-negative least squares over operator features
  (per-block MACs, memory traffic, counts): latency as a sum of per-operator costs.
  Few parameters, all with a physical sign, so it fits from a few dozen measurements.
* :class:`LUTSum` - the sum of per-operator table latencies, calibrated ``a * sum + b``.
* :class:`Ensemble` - mean of members, ``predict(X, return_std=True)`` gives their spread.
* :class:`~switchnas.predictors.mlp.HatMLP` - HAT's MLP recipe.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import nnls
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import RidgeCV
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_array, check_is_fitted, check_X_y

from .mlp import HatMLP

__all__ = ["AdditiveBlockModel", "Ensemble", "HatMLP", "LUTSum", "OneHotRidge", "REGISTRY",
           "ResidualBoosted",
           "make_predictor", "register"]

Factory = Callable[[], Any]
REGISTRY: dict[str, Factory] = {}


def register(name: str) -> Callable[[Factory], Factory]:
    """Decorator: add a zero-argument factory of an estimator under ``name``."""
    def deco(fn: Factory) -> Factory:
        if name in REGISTRY:
            raise ValueError(f"predictor {name!r} is already registered")
        REGISTRY[name] = fn
        return fn
    return deco


def make_predictor(name: str, **params: Any) -> Any:
    """A fresh estimator registered as ``name``, with ``params`` set on it."""
    if name not in REGISTRY:
        raise ValueError(f"unknown predictor {name!r}; registered: {sorted(REGISTRY)}")
    est = REGISTRY[name]()
    return est.set_params(**params) if params else est


class OneHotRidge(RegressorMixin, BaseEstimator):
    """Ridge regression on a one-hot expansion of the categorical columns of ``X``.

    A column with at most ``max_levels`` distinct training values (and more than two) is
    one-hot encoded (a value unseen in training encodes as all zeros); binary columns
    stay as they are; other columns are standardised and kept numeric.

    Args:
        alphas: candidate ridge penalties, chosen by generalised cross-validation.
        max_levels: the most distinct values a column may have to count as categorical.
    """

    def __init__(self, *, alphas: Sequence[float] = (1e-3, 1e-2, 0.1, 0.3, 1.0, 3.0, 10.0,
                                                      30.0, 100.0),
                 max_levels: int = 8):
        self.alphas = alphas
        self.max_levels = max_levels

    def _expand(self, X: np.ndarray) -> np.ndarray:
        parts = []
        for j, levels in enumerate(self.levels_):
            col = X[:, j]
            if levels is None:
                parts.append(((col - self.mean_[j]) / self.scale_[j])[:, None])
            else:
                parts.append((col[:, None] == levels[None, :]).astype(float))
        return np.hstack(parts) if parts else np.zeros((X.shape[0], 0))

    def fit(self, X: ArrayLike, y: ArrayLike) -> OneHotRidge:
        Xa, ya = check_X_y(X, y, dtype=np.float64, y_numeric=True)
        self.n_features_in_ = Xa.shape[1]
        uniques = [np.unique(Xa[:, j]) for j in range(Xa.shape[1])]
        self.levels_: list[np.ndarray | None] = [
            u if 2 < u.size <= self.max_levels else None for u in uniques]
        binary = np.array([u.size <= 2 for u in uniques], dtype=bool)
        sd = Xa.std(axis=0)
        # binary columns keep their raw 0/1 meaning; numeric ones are standardised
        self.mean_ = np.where(binary, 0.0, Xa.mean(axis=0))
        self.scale_ = np.where(binary | (sd == 0), 1.0, sd)
        self.model_ = RidgeCV(alphas=list(self.alphas)).fit(self._expand(Xa), ya)
        return self

    def predict(self, X: ArrayLike) -> np.ndarray:
        check_is_fitted(self, "model_")
        return self.model_.predict(self._expand(check_array(X, dtype=np.float64)))


class AdditiveBlockModel(RegressorMixin, BaseEstimator):
    """``y = b + sum_j w_j * x_j`` with ``w >= 0``: per-operator costs add up.

    Meant for operator features (MACs, memory traffic, operator counts per block or per
    stage, see :mod:`switchnas.predictors.encodings`), where every coefficient is a
    time per unit of work and must not be negative. The intercept is free. A ridge
    penalty ``alpha`` (relative to the scaled features) is picked from ``alphas`` by
    ``cv``-fold cross-validation.

    Args:
        alphas: candidate penalties; one value means no search.
        relative: weight each row's squared error by ``1 / |y|`` (the fit minimises
            ``sum(r**2 / |y|)``, between absolute and squared relative error), and choose
            alpha by the squared relative error of the held-out folds (what MAPE measures)
            rather than their absolute error.
        positive: constrain coefficients to be non-negative.
        cv: folds for choosing alpha (fewer when there are few rows).
    """

    def __init__(self, *, alphas: Sequence[float] = (0.0, 1e-4, 1e-3, 1e-2, 1e-1),
                 relative: bool = True, positive: bool = True, cv: int = 5):
        self.alphas = alphas
        self.relative = relative
        self.positive = positive
        self.cv = cv

    def _solve(self, X: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
        w_row = 1.0 / np.maximum(np.abs(y), 1e-12) if self.relative else np.ones_like(y)
        w_row = w_row / w_row.mean()
        sw = np.sqrt(w_row)
        xm = (w_row[:, None] * X).sum(0) / w_row.sum()
        ym = float((w_row * y).sum() / w_row.sum())
        A = (X - xm) * sw[:, None]
        b = (y - ym) * sw
        if alpha > 0:
            A = np.vstack([A, np.sqrt(alpha * len(y)) * np.eye(X.shape[1])])
            b = np.concatenate([b, np.zeros(X.shape[1])])
        if self.positive:
            coef, _ = nnls(A, b, maxiter=50 * max(A.shape[1], 1))
        else:
            coef = np.linalg.lstsq(A, b, rcond=None)[0]
        return coef, ym - float(xm @ coef)

    def fit(self, X: ArrayLike, y: ArrayLike) -> AdditiveBlockModel:
        Xa, ya = check_X_y(X, y, dtype=np.float64, y_numeric=True)
        self.n_features_in_ = Xa.shape[1]
        scale = np.abs(Xa).max(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        Xs = Xa / self.scale_
        alphas = list(self.alphas)
        k = min(int(self.cv), len(ya) // 2)
        if len(alphas) > 1 and k >= 2:
            folds = np.array_split(np.random.default_rng(0).permutation(len(ya)), k)
            errs = []
            for a in alphas:
                e = 0.0
                for f in folds:
                    tr = np.setdiff1d(np.arange(len(ya)), f)
                    c, b0 = self._solve(Xs[tr], ya[tr], a)
                    r = (Xs[f] @ c + b0 - ya[f])
                    # squared relative error, 1/|y| floored (a target may be 0); the fit's
                    # own rows weigh 1/|y| on the squared error (see ``relative``)
                    e += float(np.sum((r / np.maximum(np.abs(ya[f]), 1e-12)) ** 2
                                      if self.relative else r ** 2))
                errs.append(e)
            self.alpha_ = float(alphas[int(np.argmin(errs))])
        else:
            self.alpha_ = float(alphas[0])
        c, self.intercept_ = self._solve(Xs, ya, self.alpha_)
        self.coef_ = c / self.scale_
        return self

    def predict(self, X: ArrayLike) -> np.ndarray:
        check_is_fitted(self, "coef_")
        return check_array(X, dtype=np.float64) @ self.coef_ + self.intercept_


class LUTSum(RegressorMixin, BaseEstimator):
    """``a * sum(X[:, columns]) + b``: a lookup-table sum with a fitted calibration.

    The features are per-operator latencies read from a table; their sum is what OFA
    predicts, and the calibration absorbs the gap between summed operators and a whole
    network (fusion, launch overheads) on the measured target.

    Args:
        columns: which columns are table latencies (all when ``None``).
        calibrate: fit ``a`` and ``b`` by least squares; ``False`` means ``a=1, b=0``.
    """

    def __init__(self, *, columns: Sequence[int] | None = None, calibrate: bool = True):
        self.columns = columns
        self.calibrate = calibrate

    def _sum(self, X: np.ndarray) -> np.ndarray:
        cols = list(self.columns) if self.columns is not None else slice(None)
        return X[:, cols].sum(axis=1)

    def fit(self, X: ArrayLike, y: ArrayLike) -> LUTSum:
        Xa, ya = check_X_y(X, y, dtype=np.float64, y_numeric=True)
        self.n_features_in_ = Xa.shape[1]
        s = self._sum(Xa)
        if self.calibrate and len(ya) >= 2 and np.ptp(s) > 0:
            self.a_, self.b_ = (float(v) for v in np.polyfit(s, ya, 1))
        elif self.calibrate and len(ya) >= 1 and s.mean() != 0:
            self.a_, self.b_ = float(ya.mean() / s.mean()), 0.0
        else:
            self.a_, self.b_ = 1.0, 0.0
        return self

    def predict(self, X: ArrayLike) -> np.ndarray:
        check_is_fitted(self, "a_")
        return self.a_ * self._sum(check_array(X, dtype=np.float64)) + self.b_


class Ensemble(RegressorMixin, BaseEstimator):
    """The mean of several estimators; their spread is the uncertainty.

    Args:
        members: estimators to clone and fit; ``None``: one-hot ridge, boosting and the
            small MLP (complementary errors: on measured top-1 the mean of the three ranks
            better than any of them).
        bootstrap: fit each member on a bootstrap resample (more spread, honest on
            points far from the data).
        seed: seeds the resamples.
    """

    def __init__(self, *, members: Sequence[Any] | None = None, bootstrap: bool = False,
                 seed: int = 0):
        self.members = members
        self.bootstrap = bootstrap
        self.seed = seed

    def fit(self, X: ArrayLike, y: ArrayLike) -> Ensemble:
        Xa, ya = check_X_y(X, y, dtype=np.float64, y_numeric=True)
        self.n_features_in_ = Xa.shape[1]
        members = (list(self.members) if self.members is not None
                   else [OneHotRidge(), _gbm(), _mlp()])
        if not members:
            raise ValueError("Ensemble needs at least one member")
        rng = np.random.default_rng(self.seed)
        self.members_ = []
        for m in members:
            idx = rng.integers(0, len(ya), len(ya)) if self.bootstrap else slice(None)
            self.members_.append(clone(m).fit(Xa[idx], ya[idx]))
        return self

    def predict(self, X: ArrayLike, return_std: bool = False) -> Any:
        check_is_fitted(self, "members_")
        Xa = check_array(X, dtype=np.float64)
        preds = np.stack([m.predict(Xa) for m in self.members_])
        mean = preds.mean(axis=0)
        return (mean, preds.std(axis=0)) if return_std else mean


def _gbm() -> GradientBoostingRegressor:
    return GradientBoostingRegressor(n_estimators=200, max_depth=3, learning_rate=0.05,
                                     subsample=0.8, random_state=0)


@register("ridge")
def _ridge() -> OneHotRidge:
    return OneHotRidge()


@register("additive")
def _additive() -> AdditiveBlockModel:
    return AdditiveBlockModel()


@register("gbm")
def _gbm_factory() -> GradientBoostingRegressor:
    return _gbm()


@register("mlp")
def _mlp() -> TransformedTargetRegressor:
    """A small MLP fitted with L-BFGS (quick and stable on a few hundred rows)."""
    net = make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(64, 64),
                                                       solver="lbfgs", alpha=1e-2,
                                                       max_iter=400, random_state=0))
    return TransformedTargetRegressor(regressor=net, transformer=StandardScaler())


@register("hat_mlp")
def _hat_mlp() -> HatMLP:
    return HatMLP()


@register("lut")
def _lut() -> LUTSum:
    return LUTSum()


@register("ensemble")
def _ensemble() -> Ensemble:
    return Ensemble()


class ResidualBoosted(RegressorMixin, BaseEstimator):
    """A physical base model times a learned correction: ``base(X) * exp(g(X))``.

    ``g`` (a shallow boosted tree ensemble by default) fits ``log(y / base(X))`` on the
    training rows, so it learns what the additive cost model misses (interactions,
    saturation) while the base keeps extrapolation sane. Needs ``y > 0``.

    Args:
        base: the first-stage estimator (default :class:`AdditiveBlockModel`).
        booster: the correction estimator (default: 100 depth-2 trees, learning rate 0.05).
    """

    def __init__(self, *, base: Any = None, booster: Any = None):
        self.base = base
        self.booster = booster

    def fit(self, X: ArrayLike, y: ArrayLike) -> ResidualBoosted:
        Xa, ya = check_X_y(X, y, dtype=np.float64, y_numeric=True)
        if np.any(ya <= 0):
            raise ValueError("ResidualBoosted needs targets > 0 (it corrects in log space)")
        self.n_features_in_ = Xa.shape[1]
        self.base_ = clone(self.base if self.base is not None else AdditiveBlockModel())
        self.base_.fit(Xa, ya)
        first = np.maximum(self.base_.predict(Xa), 1e-9 * ya.max())
        booster = self.booster if self.booster is not None else GradientBoostingRegressor(
            n_estimators=100, max_depth=2, learning_rate=0.05, subsample=0.8, random_state=0)
        self.booster_ = clone(booster).fit(Xa, np.log(ya / first))
        return self

    def predict(self, X: ArrayLike) -> np.ndarray:
        check_is_fitted(self, "booster_")
        Xa = check_array(X, dtype=np.float64)
        first = np.maximum(self.base_.predict(Xa), 1e-12)
        return first * np.exp(self.booster_.predict(Xa))


@register("additive_gbm")
def _additive_gbm() -> ResidualBoosted:
    return ResidualBoosted()
