from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import cross_val_score

from switchnas.predictors.models import (
    REGISTRY,
    AdditiveBlockModel,
    Ensemble,
    HatMLP,
    LUTSum,
    OneHotRidge,
    ResidualBoosted,
    make_predictor,
    register,
)

from ._registry_fixtures import FAST, synthetic_data

_data = synthetic_data


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registered_estimators_follow_the_sklearn_contract(name: str) -> None:
    est = make_predictor(name, **FAST.get(name, {}))
    params = est.get_params(deep=False)
    twin = clone(est)
    assert twin is not est and twin.get_params(deep=False).keys() == params.keys()
    X, y = _data()
    before = set(vars(est))
    assert est.fit(X, y) is est
    learned = {k for k in set(vars(est)) - before if not k.startswith("_")}  # private: sklearn's
    assert learned and all(k.endswith("_") for k in learned), learned
    assert est.predict(X).shape == (len(y),)
    assert np.all(np.isfinite(est.predict(X)))
    scores = cross_val_score(clone(est), X, y, cv=3, scoring="neg_mean_absolute_error")
    assert scores.shape == (3,) and np.all(np.isfinite(scores))


def test_registry_refuses_duplicates_and_unknown_names() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register("ridge")(OneHotRidge)
    with pytest.raises(ValueError, match="unknown predictor 'nope'"):
        make_predictor("nope")


def test_additive_recovers_nonnegative_costs_from_few_rows() -> None:
    rng = np.random.default_rng(1)
    X = rng.uniform(0, 10, (12, 4))
    y = 1.5 + X @ np.array([0.5, 0.0, 2.0, 0.1])
    m = AdditiveBlockModel(alphas=(0.0,)).fit(X, y)
    assert np.all(m.coef_ >= 0)
    np.testing.assert_allclose(m.coef_, [0.5, 0.0, 2.0, 0.1], atol=1e-6)
    assert m.intercept_ == pytest.approx(1.5, abs=1e-6)
    # a negative true cost cannot be fitted: the constraint holds
    y_neg = 5.0 + X @ np.array([0.5, -1.0, 2.0, 0.1])
    assert np.all(AdditiveBlockModel().fit(X, y_neg).coef_ >= 0)


def test_onehot_ridge_encodes_categories_and_unseen_levels() -> None:
    X = np.array([[3, 0.1], [5, 0.2], [7, 0.3], [3, 0.4], [5, 0.5], [7, 0.6]] * 3)
    y = np.where(X[:, 0] == 5, 10.0, 1.0)  # non-monotone in the category: needs one-hot
    m = OneHotRidge(alphas=(1e-6,), max_levels=3).fit(X, y)
    assert m.levels_[0] is not None and m.levels_[1] is None
    np.testing.assert_allclose(m.predict(X), y, atol=0.05)
    assert np.isfinite(m.predict(np.array([[9.0, 0.3]]))).all()


def test_lut_sum_reproduces_and_calibrates() -> None:
    rng = np.random.default_rng(2)
    F = rng.uniform(0, 2, (20, 5))
    assert np.allclose(LUTSum(calibrate=False).fit(F, F.sum(1)).predict(F), F.sum(1))
    m = LUTSum(columns=[0, 1, 2]).fit(F, 1.3 * F[:, :3].sum(1) + 0.7)
    assert (m.a_, m.b_) == pytest.approx((1.3, 0.7))


def test_ensemble_spread() -> None:
    X, y = _data()
    same = Ensemble(members=[OneHotRidge(), OneHotRidge()]).fit(X, y)
    mean, std = same.predict(X, return_std=True)
    assert np.allclose(std, 0) and mean.shape == y.shape
    boot = Ensemble(members=[AdditiveBlockModel()] * 4, bootstrap=True, seed=3).fit(X, y + 0.3 *
                                                                                 np.sin(X[:, 0]))
    assert boot.predict(X, return_std=True)[1].max() > 0
    with pytest.raises(ValueError, match="at least one"):
        Ensemble(members=[]).fit(X, y)


def test_residual_boosted_needs_positive_targets() -> None:
    X, y = _data()
    with pytest.raises(ValueError, match="> 0"):
        ResidualBoosted().fit(X, -y)


def test_hat_mlp_learns_and_checks_scales() -> None:
    X, y = _data(n=64, d=3)
    m = HatMLP(hidden=32, n_hidden=2, lr=1e-2, steps=300, batch_size=32).fit(X, y)
    baseline = np.mean(np.abs(y - y.mean()))
    assert np.mean(np.abs(m.predict(X) - y)) < 0.3 * baseline
    assert np.array_equal(HatMLP(hidden=8, steps=5, seed=1).fit(X, y).predict(X),
                          HatMLP(hidden=8, steps=5, seed=1).fit(X, y).predict(X))
    with pytest.raises(ValueError, match="feature_scale has 2 entries"):
        HatMLP(feature_scale=[1.0, 2.0], steps=1).fit(X, y)
