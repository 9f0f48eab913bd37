"""Unit properties of the estimators in :mod:`switchnas.predictors.models` and of the
HAT MLP's state loader: the weighted least-squares solve, the cross-validated choice of
alpha, the one-hot ridge's treatment of binary columns, and input/argument checks."""

from __future__ import annotations

import numpy as np
import pytest

from switchnas.predictors.mlp import _net_from_arrays
from switchnas.predictors.models import AdditiveBlockModel, OneHotRidge, ResidualBoosted


def _data(seed: int, n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Positive targets below 1 (milliseconds-like), not exactly linear in ``X``."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, (n, 3))
    y = X @ np.array([1.0, 0.5, 0.2]) + 0.05 + 0.1 * rng.standard_normal(n)
    return X, np.abs(y) * 0.5 + 0.01


@pytest.mark.parametrize("relative", [True, False])
def test_unconstrained_fit_is_weighted_least_squares(relative: bool) -> None:
    """With ``positive=False`` and no penalty, the fit is the least-squares solution of
    ``y ~ b + X w`` with row weights ``1 / |y|`` (relative) or 1 (absolute)."""
    X, y = _data(3)
    m = AdditiveBlockModel(alphas=(0.0,), relative=relative, positive=False).fit(X, y)
    w = 1.0 / np.abs(y) if relative else np.ones_like(y)
    A = np.hstack([np.ones((len(y), 1)), X]) * np.sqrt(w)[:, None]
    sol = np.linalg.lstsq(A, y * np.sqrt(w), rcond=None)[0]
    np.testing.assert_allclose(m.intercept_, sol[0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(m.coef_, sol[1:], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(m.predict(X), sol[0] + X @ sol[1:], rtol=1e-9)


def test_relative_and_absolute_fits_differ_where_targets_differ_in_scale() -> None:
    """Relative weighting lowers the weighted error it optimises, absolute the plain one."""
    X, y = _data(5)
    rel = AdditiveBlockModel(alphas=(0.0,), relative=True, positive=False).fit(X, y)
    ab = AdditiveBlockModel(alphas=(0.0,), relative=False, positive=False).fit(X, y)
    r_rel, r_ab = rel.predict(X) - y, ab.predict(X) - y
    assert np.sum(r_rel ** 2 / y) < np.sum(r_ab ** 2 / y)
    assert np.sum(r_ab ** 2) < np.sum(r_rel ** 2)


def _cv_choice(m: AdditiveBlockModel, X: np.ndarray, y: np.ndarray) -> float:
    """The alpha with the least summed squared relative fold error, folds split from
    ``default_rng(0).permutation(n)`` (the documented, reproducible recipe)."""
    Xs = X / m.scale_
    k = min(int(m.cv), len(y) // 2)
    folds = np.array_split(np.random.default_rng(0).permutation(len(y)), k)
    errs = []
    for a in m.alphas:
        e = 0.0
        for f in folds:
            tr = np.setdiff1d(np.arange(len(y)), f)
            c, b0 = m._solve(Xs[tr], y[tr], a)
            e += float(np.sum(((Xs[f] @ c + b0 - y[f]) / np.abs(y[f])) ** 2))
        errs.append(e)
    return float(m.alphas[int(np.argmin(errs))])


def test_cv_picks_the_alpha_with_least_relative_fold_error() -> None:
    """Over many data sets (targets < 1, so a floor on |y| would change the weights) the
    chosen alpha is the argmin of the relative cross-validation error."""
    alphas = (0.0, 1e-3, 1e-2, 1e-1, 1.0)
    chosen = set()
    for seed in range(25):
        X, y = _data(seed)
        m = AdditiveBlockModel(alphas=alphas, cv=3).fit(X, y)
        assert m.alpha_ == _cv_choice(m, X, y), seed
        chosen.add(m.alpha_)
    assert len(chosen) > 1  # the data sets do discriminate between alphas


def test_onehot_ridge_keeps_binary_columns_raw() -> None:
    """Binary columns are neither centred nor scaled; numeric ones are standardised."""
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.integers(0, 2, 40), rng.uniform(0, 10, 40)]).astype(float)
    X[0, 0], X[1, 0] = 0.0, 1.0  # both levels present
    y = 2.0 * X[:, 0] + X[:, 1]
    m = OneHotRidge().fit(X, y)
    assert m.levels_[0] is None and m.levels_[1] is None
    assert m.mean_[0] == 0.0 and m.scale_[0] == 1.0
    assert m.mean_[1] == pytest.approx(X[:, 1].mean())
    assert m.scale_[1] == pytest.approx(X[:, 1].std())
    np.testing.assert_array_equal(m._expand(X)[:, 0], X[:, 0])


def test_residual_boosted_refuses_non_positive_targets_with_its_reason() -> None:
    X, y = _data(0)
    with pytest.raises(ValueError, match=r"needs targets > 0 \(it corrects in log space\)"):
        ResidualBoosted().fit(X, np.concatenate([y[:-1], [0.0]]))


def test_residual_boosted_predict_converts_input_to_float() -> None:
    """Like every estimator here, ``predict`` takes anything ``float64`` accepts (numeric
    strings included) and gives the same numbers as for the floats."""
    X, y = _data(1, n=30)
    m = ResidualBoosted().fit(X, y)
    as_text = np.array([[repr(float(v)) for v in row] for row in X[:5]])
    np.testing.assert_array_equal(m.predict(as_text), m.predict(X[:5]))


def test_hat_mlp_state_of_wrong_widths_is_refused_with_the_widths() -> None:
    """A state whose layers map 3 features to 2 outputs (or the wrong input width) is
    refused, naming the widths and the feature count."""
    w0, b0 = np.ones((4, 3)), np.zeros(4)
    w1, b1 = np.ones((2, 4)), np.zeros(2)
    with pytest.raises(ValueError, match=r"layer widths \[3, 4, 2\] do not map 3 features "
                                         r"to 1 output"):
        _net_from_arrays([w0, b0, w1, b1], 3)
    w1, b1 = np.ones((1, 4)), np.zeros(1)
    with pytest.raises(ValueError, match=r"layer widths \[3, 4, 1\] do not map 5 features"):
        _net_from_arrays([w0, b0, w1, b1], 5)
    assert _net_from_arrays([w0, b0, w1, b1], 3) is not None
