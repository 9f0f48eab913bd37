"""Contract of :mod:`switchnas.predictors.models`: the registry, defaults observed
through behaviour, and exact results on small hand-computed inputs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression

from switchnas.predictors.mlp import HatMLP
from switchnas.predictors.models import (
    REGISTRY,
    AdditiveBlockModel,
    Ensemble,
    LUTSum,
    OneHotRidge,
    ResidualBoosted,
    make_predictor,
    register,
)


# -- registry ------------------------------------------------------------------------------
def test_registry_names_and_factories() -> None:
    assert {"ridge", "additive", "gbm", "mlp", "hat_mlp", "lut", "ensemble",
            "additive_gbm"} <= set(REGISTRY)
    assert isinstance(REGISTRY["ridge"](), OneHotRidge)
    assert isinstance(REGISTRY["additive"](), AdditiveBlockModel)
    assert isinstance(REGISTRY["hat_mlp"](), HatMLP)
    assert isinstance(REGISTRY["lut"](), LUTSum)
    assert isinstance(REGISTRY["ensemble"](), Ensemble)
    assert isinstance(REGISTRY["additive_gbm"](), ResidualBoosted)
    gbm = REGISTRY["gbm"]()
    assert isinstance(gbm, GradientBoostingRegressor)
    p = gbm.get_params()
    assert (p["n_estimators"], p["max_depth"], p["learning_rate"], p["subsample"],
            p["random_state"]) == (200, 3, 0.05, 0.8, 0)
    mlp = REGISTRY["mlp"]().get_params()
    assert mlp["regressor__mlpregressor__hidden_layer_sizes"] == (64, 64)
    assert mlp["regressor__mlpregressor__solver"] == "lbfgs"
    assert mlp["regressor__mlpregressor__alpha"] == 1e-2
    assert mlp["regressor__mlpregressor__max_iter"] == 400
    assert mlp["regressor__mlpregressor__random_state"] == 0
    assert type(mlp["transformer"]).__name__ == "StandardScaler"
    assert [s[0] for s in mlp["regressor"].steps] == ["standardscaler", "mlpregressor"]


def test_register_rejects_duplicates_and_adds_new() -> None:
    with pytest.raises(ValueError, match=r"^predictor 'ridge' is already registered$"):
        register("ridge")(lambda: None)
    name = "_contract_test_model"
    try:
        fn = register(name)(LUTSum)
        assert fn is LUTSum and REGISTRY[name] is LUTSum
        assert isinstance(make_predictor(name), LUTSum)
    finally:
        REGISTRY.pop(name, None)


def test_make_predictor() -> None:
    with pytest.raises(ValueError, match=r"^unknown predictor 'nope'; registered: \['"):
        make_predictor("nope")
    with pytest.raises(ValueError, match=r"'additive', 'additive_gbm'"):
        make_predictor("nope")
    a, b = make_predictor("lut"), make_predictor("lut")
    assert a is not b and a.get_params() == {"columns": None, "calibrate": True}
    c = make_predictor("lut", calibrate=False, columns=[1])
    assert c.calibrate is False and c.columns == [1]


# -- OneHotRidge ---------------------------------------------------------------------------
def test_onehot_ridge_defaults() -> None:
    m = OneHotRidge()
    assert tuple(m.alphas) == (1e-3, 1e-2, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
    assert m.max_levels == 8


def _ridge_data():
    rng = np.random.default_rng(0)
    n = 60
    cat = rng.choice([3, 5, 7], n).astype(float)       # 3 levels: one-hot
    binary = rng.choice([0.0, 4.0], n)                 # 2 levels: kept raw
    numeric = rng.normal(10.0, 2.0, n)                 # many levels: standardised
    const = np.full(n, 7.0)                            # constant: scale 1
    eight = rng.permutation(np.arange(n) % 8).astype(float)  # 8 levels: one-hot
    nine = rng.permutation(np.arange(n) % 9).astype(float)   # 9 levels: numeric
    X = np.column_stack([cat, binary, numeric, const, eight, nine])
    y = (cat == 5) * 2.0 + binary + 0.5 * numeric + nine * 0.1
    return X, y


def test_onehot_ridge_expansion() -> None:
    X, y = _ridge_data()
    m = OneHotRidge().fit(X, y)
    assert m.n_features_in_ == 6
    assert [lv is None for lv in m.levels_] == [False, True, True, True, False, True]
    assert m.levels_[0].tolist() == [3.0, 5.0, 7.0]
    assert m.levels_[4].tolist() == list(range(8))
    # one-hot 3 + binary 1 + numeric 1 + constant 1 + one-hot 8 + numeric 1
    assert m.model_.coef_.shape == (15,)
    assert m.mean_[1] == 0.0 and m.scale_[1] == 1.0
    assert m.mean_[2] == pytest.approx(X[:, 2].mean())
    assert m.scale_[2] == pytest.approx(X[:, 2].std())
    assert m.mean_[3] == 0.0 and m.scale_[3] == 1.0  # constant: counts as binary
    assert m.scale_[5] == pytest.approx(X[:, 5].std())
    assert m.model_.alpha_ in m.alphas
    assert np.abs(m.predict(X) - y).max() < 0.1
    small = OneHotRidge(max_levels=2).fit(X, y)
    assert all(lv is None for lv in small.levels_)
    assert small.model_.coef_.shape == (6,)
    nine = OneHotRidge(max_levels=9).fit(X, y)
    assert nine.levels_[5] is not None and nine.model_.coef_.shape == (23,)


def test_onehot_ridge_unseen_level_and_alphas() -> None:
    X = np.array([[1.0], [2.0], [3.0], [1.0], [2.0], [3.0]])
    y = np.array([1.0, 2.0, 4.0, 1.0, 2.0, 4.0])
    m = OneHotRidge(alphas=(1e-9,)).fit(X, y)
    assert m.model_.alpha_ == 1e-9
    np.testing.assert_allclose(m.predict([[1.0], [2.0], [3.0]]), [1.0, 2.0, 4.0], atol=1e-6)
    # an unseen level encodes as all zeros: the intercept only
    assert m.predict([[9.0]])[0] == pytest.approx(m.model_.intercept_)
    assert m.model_.intercept_ == pytest.approx(7.0 / 3.0, abs=1e-6)
    big = OneHotRidge(alphas=[1e9]).fit(X, y)
    np.testing.assert_allclose(big.predict(X), np.full(6, 7 / 3), atol=1e-5)
    with pytest.raises(NotFittedError):
        OneHotRidge().predict(X)


def test_onehot_ridge_numeric_column_standardised() -> None:
    X = np.arange(20.0)[:, None] * 3.0 + 100.0
    y = 2.0 * X[:, 0] - 50.0
    m = OneHotRidge(alphas=(1e-8,)).fit(X, y)
    assert m.levels_ == [None]
    np.testing.assert_allclose(m.predict(X), y, rtol=1e-6)
    np.testing.assert_allclose(m.predict([[400.0]]), [750.0], rtol=1e-6)


# -- AdditiveBlockModel --------------------------------------------------------------------
def test_additive_defaults() -> None:
    m = AdditiveBlockModel()
    assert tuple(m.alphas) == (0.0, 1e-4, 1e-3, 1e-2, 1e-1)
    assert (m.relative, m.positive, m.cv) == (True, True, 5)


def test_additive_recovers_exact_costs() -> None:
    rng = np.random.default_rng(1)
    X = rng.uniform(1.0, 100.0, (40, 3))
    X[:, 2] *= 1e6
    y = 2.0 + X @ np.array([3.0, 0.5, 2e-6])
    m = AdditiveBlockModel().fit(X, y)
    assert m.alpha_ == 0.0
    np.testing.assert_allclose(m.coef_, [3.0, 0.5, 2e-6], rtol=1e-6)
    assert m.intercept_ == pytest.approx(2.0, abs=1e-5)
    np.testing.assert_allclose(m.predict(X), y, rtol=1e-8)
    assert m.n_features_in_ == 3
    np.testing.assert_allclose(m.scale_, np.abs(X).max(axis=0))


def test_additive_nonnegative_and_weighted_intercept() -> None:
    X = np.array([[3.0], [2.0], [1.0]])
    y = np.array([1.0, 2.0, 4.0])
    # the best slope is negative; clipped to 0 the intercept is the weighted mean of y
    rel = AdditiveBlockModel().fit(X, y)
    assert rel.coef_.tolist() == [0.0]
    assert rel.intercept_ == pytest.approx(3.0 / 1.75)  # weights 1/|y|
    absolute = AdditiveBlockModel(relative=False).fit(X, y)
    assert absolute.coef_.tolist() == [0.0]
    assert absolute.intercept_ == pytest.approx(7.0 / 3.0)
    free = AdditiveBlockModel(positive=False, relative=False, alphas=(0.0,)).fit(X, y)
    assert free.coef_[0] == pytest.approx(-1.5)
    assert free.intercept_ == pytest.approx(7.0 / 3.0 + 3.0)
    free_rel = AdditiveBlockModel(positive=False, alphas=(0.0,)).fit(X, y)
    # weighted least squares, weights 4, 2, 1 (1/y scaled): slope -21/14
    w = np.array([1.0, 0.5, 0.25])
    xm, ym = (w * X[:, 0]).sum() / w.sum(), (w * y).sum() / w.sum()
    slope = (w * (X[:, 0] - xm) * (y - ym)).sum() / (w * (X[:, 0] - xm) ** 2).sum()
    assert free_rel.coef_[0] == pytest.approx(slope)
    assert free_rel.intercept_ == pytest.approx(ym - xm * slope)


def test_additive_ridge_penalty_by_hand() -> None:
    X = np.array([[1.0], [2.0], [3.0], [4.0]])
    y = np.array([2.0, 4.0, 6.0, 8.0])
    m = AdditiveBlockModel(alphas=(0.5,), relative=False, positive=False).fit(X, y)
    assert m.alpha_ == 0.5
    # scaled x = x / 4, centred: a = [-.375, -.125, .125, .375], b = [-3, -1, 1, 3]
    cs = 2.5 / (0.3125 + 0.5 * 4)
    assert m.coef_[0] == pytest.approx(cs / 4)
    assert m.intercept_ == pytest.approx(5.0 - 0.625 * cs)
    pos = AdditiveBlockModel(alphas=(0.5,), relative=False).fit(X, y)
    assert pos.coef_[0] == pytest.approx(cs / 4)


def test_additive_alpha_choice() -> None:
    rng = np.random.default_rng(2)
    X = rng.uniform(1.0, 10.0, (12, 2))
    y = 1.0 + X @ np.array([2.0, 1.0])
    assert AdditiveBlockModel(alphas=(0.1, 0.0)).fit(X, y).alpha_ == 0.0
    assert AdditiveBlockModel(alphas=(0.1, 0.0), relative=False).fit(X, y).alpha_ == 0.0
    # one fold or fewer: no search, the first alpha
    assert AdditiveBlockModel(alphas=(0.1, 0.0), cv=1).fit(X, y).alpha_ == 0.1
    x1 = np.array([[1.0], [2.0], [3.0], [4.0]])
    y1 = 2.0 * x1[:, 0] + 1.0
    assert AdditiveBlockModel(alphas=(0.1, 0.0)).fit(x1[:3], y1[:3]).alpha_ == 0.1
    assert AdditiveBlockModel(alphas=(0.1, 0.0)).fit(x1, y1).alpha_ == 0.0
    assert AdditiveBlockModel(alphas=[0.1]).fit(X, y).alpha_ == 0.1
    assert isinstance(AdditiveBlockModel(alphas=(0, 1)).fit(X, y).alpha_, float)


def test_additive_alpha_choice_depends_on_relative() -> None:
    """Noisy small targets next to large ones: the relative and the absolute CV error
    pick different penalties (pinned)."""
    rng = np.random.default_rng(0)
    X = rng.uniform(0.0, 1.0, (30, 4))
    y = X @ np.array([1.0, 0.0, 3.0, 0.5]) + rng.normal(0, 0.3, 30)
    y = np.abs(y) + 0.05
    alphas = (0.0, 1e-3, 1e-2, 1e-1, 1.0)
    rel = AdditiveBlockModel(alphas=alphas).fit(X, y).alpha_
    ab = AdditiveBlockModel(alphas=alphas, relative=False).fit(X, y).alpha_
    assert (rel, ab) == (REL_ALPHA, ABS_ALPHA)


REL_ALPHA, ABS_ALPHA = 0.01, 0.001


def test_additive_zero_column_and_not_fitted() -> None:
    X = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0]])
    y = np.array([3.0, 5.0, 7.0, 9.0])
    m = AdditiveBlockModel().fit(X, y)
    assert m.scale_.tolist() == [4.0, 1.0]
    assert np.isfinite(m.coef_).all()
    assert m.coef_[0] == pytest.approx(2.0) and m.intercept_ == pytest.approx(1.0)
    with pytest.raises(NotFittedError):
        AdditiveBlockModel().predict(X)


def test_additive_zero_target_is_floored() -> None:
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0.0, 1.0, 2.0, 3.0])
    m = AdditiveBlockModel().fit(X, y)
    assert np.isfinite(m.coef_).all()
    assert m.coef_[0] == pytest.approx(1.0) and m.intercept_ == pytest.approx(0.0, abs=1e-9)


# -- LUTSum --------------------------------------------------------------------------------
def test_lutsum() -> None:
    X = np.array([[1.0, 2.0, 100.0], [2.0, 3.0, 0.0], [4.0, 1.0, 5.0]])
    s = X[:, :2].sum(1)
    y = 2.0 * s + 1.0
    m = LUTSum(columns=[0, 1]).fit(X, y)
    assert (m.a_, m.b_) == (pytest.approx(2.0), pytest.approx(1.0))
    assert m.n_features_in_ == 3
    np.testing.assert_allclose(m.predict(X), y)
    allc = LUTSum().fit(X, 3.0 * X.sum(1))
    assert allc.a_ == pytest.approx(3.0) and allc.b_ == pytest.approx(0.0, abs=1e-9)
    raw = LUTSum(calibrate=False).fit(X, y)
    assert (raw.a_, raw.b_) == (1.0, 0.0)
    np.testing.assert_allclose(raw.predict(X), X.sum(1))
    one = LUTSum().fit(X[:1], [6.0])  # one row: a scale only
    assert (one.a_, one.b_) == (6.0 / 103.0, 0.0)
    same = LUTSum(columns=[0]).fit(np.array([[2.0, 1.0], [2.0, 5.0]]), [3.0, 5.0])
    assert (same.a_, same.b_) == (2.0, 0.0)  # no spread: mean ratio
    zero = LUTSum(columns=[0]).fit(np.array([[0.0], [0.0]]), [3.0, 5.0])
    assert (zero.a_, zero.b_) == (1.0, 0.0)
    assert isinstance(m.a_, float) and isinstance(m.b_, float)
    with pytest.raises(NotFittedError):
        LUTSum().predict(X)


# -- Ensemble ------------------------------------------------------------------------------
def test_ensemble_mean_and_spread() -> None:
    X = np.array([[1.0, 5.0], [2.0, 2.0], [4.0, 0.0]])
    y = np.array([1.0, 2.0, 3.0])
    members = [LUTSum(columns=[0], calibrate=False), LUTSum(columns=[1], calibrate=False)]
    m = Ensemble(members=members).fit(X, y)
    assert len(m.members_) == 2 and m.n_features_in_ == 2
    assert m.members_[0] is not members[0]
    assert not hasattr(members[0], "a_")
    np.testing.assert_allclose(m.predict(X), [3.0, 2.0, 2.0])
    mean, std = m.predict(X, return_std=True)
    np.testing.assert_allclose(mean, [3.0, 2.0, 2.0])
    np.testing.assert_allclose(std, [2.0, 0.0, 2.0])
    with pytest.raises(ValueError, match=r"^Ensemble needs at least one member$"):
        Ensemble(members=[]).fit(X, y)
    with pytest.raises(NotFittedError):
        Ensemble().predict(X)


def test_ensemble_defaults_and_bootstrap(monkeypatch: pytest.MonkeyPatch) -> None:
    import switchnas.predictors.models as models

    # the default members are ridge, models._gbm() and models._mlp(); cheap stand-ins
    monkeypatch.setattr(models, "_gbm", lambda: DummyRegressor(strategy="median"))
    monkeypatch.setattr(models, "_mlp", lambda: LinearRegression())
    e = Ensemble()
    assert (e.members, e.bootstrap, e.seed) == (None, False, 0)
    rng = np.random.default_rng(0)
    X = rng.integers(0, 3, (40, 3)).astype(float)
    y = X @ np.array([1.0, 2.0, 0.5]) + rng.normal(0, 0.1, 40)
    m = Ensemble().fit(X, y)
    assert [type(x).__name__ for x in m.members_] == ["OneHotRidge", "DummyRegressor",
                                                       "LinearRegression"]
    assert m.members_[1].strategy == "median"
    members = [LinearRegression()]
    plain = Ensemble(members=members).fit(X, y)
    boot = Ensemble(members=members, bootstrap=True).fit(X, y)
    boot0 = Ensemble(members=members, bootstrap=True, seed=0).fit(X, y)
    boot1 = Ensemble(members=members, bootstrap=True, seed=1).fit(X, y)
    np.testing.assert_allclose(plain.members_[0].coef_, LinearRegression().fit(X, y).coef_)
    idx = np.random.default_rng(0).integers(0, 40, 40)
    np.testing.assert_allclose(boot.members_[0].coef_,
                               LinearRegression().fit(X[idx], y[idx]).coef_)
    np.testing.assert_array_equal(boot.members_[0].coef_, boot0.members_[0].coef_)
    assert not np.allclose(boot0.members_[0].coef_, boot1.members_[0].coef_)
    two = Ensemble(members=[LinearRegression(), LinearRegression()], bootstrap=True).fit(X, y)
    assert not np.allclose(two.members_[0].coef_, two.members_[1].coef_)


# -- ResidualBoosted -----------------------------------------------------------------------
def test_residual_boosted_rejects_nonpositive() -> None:
    X = np.array([[1.0], [2.0]])
    with pytest.raises(ValueError, match=r"^ResidualBoosted needs targets > 0 \(it corrects "
                                         r"in log space\)$"):
        ResidualBoosted().fit(X, [1.0, 0.0])
    with pytest.raises(ValueError, match="needs targets > 0"):
        ResidualBoosted().fit(X, [1.0, -2.0])
    with pytest.raises(NotFittedError):
        ResidualBoosted().predict(X)


def test_residual_boosted_defaults() -> None:
    r = ResidualBoosted()
    assert r.base is None and r.booster is None
    X = np.arange(1.0, 21.0)[:, None]
    y = 2.0 * X[:, 0] + 1.0
    r.fit(X, y)
    assert isinstance(r.base_, AdditiveBlockModel) and r.n_features_in_ == 1
    p = r.booster_.get_params()
    assert isinstance(r.booster_, GradientBoostingRegressor)
    assert (p["n_estimators"], p["max_depth"], p["learning_rate"], p["subsample"],
            p["random_state"]) == (100, 2, 0.05, 0.8, 0)
    np.testing.assert_allclose(r.predict(X), y, rtol=1e-3)


def test_residual_boosted_by_hand() -> None:
    X = np.array([[1.0], [2.0], [4.0]])
    y = np.array([2.0, 2.0, 16.0])
    base = LUTSum(calibrate=False)
    m = ResidualBoosted(base=base, booster=DummyRegressor()).fit(X, y)
    assert m.base_ is not base and not hasattr(base, "a_")
    # the correction is the mean log ratio log(y / x) = (log 2 + 0 + log 4) / 3
    g = (np.log(2.0) + 0.0 + np.log(4.0)) / 3
    np.testing.assert_allclose(m.predict(X), X[:, 0] * np.exp(g))
    # a base prediction of 0 is floored at 1e-12 when predicting
    np.testing.assert_allclose(m.predict([[0.0]]), [1e-12 * np.exp(g)])
    # ... and at 1e-9 * max(y) when fitting
    z = ResidualBoosted(base=base, booster=DummyRegressor()).fit(
        np.array([[0.0], [1.0]]), np.array([4.0, 2.0]))
    g2 = (np.log(4.0 / (1e-9 * 4.0)) + np.log(2.0)) / 2
    assert z.booster_.constant_[0][0] == pytest.approx(g2)


# -- input conversion and remaining details -------------------------------------------------
@pytest.mark.parametrize("make", [AdditiveBlockModel, LUTSum, OneHotRidge,
                                  lambda: Ensemble(members=[LUTSum(), AdditiveBlockModel()]),
                                  ResidualBoosted])
def test_numbers_given_as_strings_are_converted(make) -> None:
    """``X`` and ``y`` go through ``check_X_y(dtype=float64, y_numeric=True)``: numbers in
    object arrays (e.g. read from a CSV as text) fit and predict like floats."""
    Xf = np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 5.0], [4.0, 4.0], [5.0, 1.0]])
    yf = np.array([3.0, 3.5, 8.0, 8.5, 6.5])
    Xs = np.array([[str(v) for v in row] for row in Xf], dtype=object)
    ys = np.array([str(v) for v in yf], dtype=object)
    a = make().fit(Xs, ys)
    b = make().fit(Xf, yf)
    np.testing.assert_allclose(a.predict(Xs), b.predict(Xf))
    np.testing.assert_allclose(b.predict(Xs), b.predict(Xf))


def test_additive_penalty_relative_to_scaled_features() -> None:
    """Features are divided by their largest |value| (also when below 1) before the ridge
    penalty applies, so the fit does not depend on the features' units."""
    x = np.array([[0.1], [0.2], [0.3], [0.4]])
    y = np.array([2.0, 4.0, 6.0, 8.0])
    m = AdditiveBlockModel(alphas=(0.5,), relative=False, positive=False).fit(x, y)
    assert m.scale_.tolist() == [0.4]
    cs = 2.5 / (0.3125 + 0.5 * 4)  # as in test_additive_ridge_penalty_by_hand
    assert m.coef_[0] == pytest.approx(cs / 0.4)
    big = AdditiveBlockModel(alphas=(0.5,), relative=False, positive=False).fit(x * 1000, y)
    np.testing.assert_allclose(big.predict(x * 1000), m.predict(x))


def test_additive_absolute_cv_error_when_not_relative() -> None:
    """relative=False chooses alpha by the held-out folds' squared absolute error (folds:
    a permutation from default_rng(0) split in min(cv, n // 2))."""
    alphas = (0.0, 1e-3, 1e-2, 1e-1, 1.0)
    rng = np.random.default_rng(1)
    X = rng.uniform(0, 1, (30, 4))
    y = np.abs(X @ np.array([1.0, 0.0, 3.0, 0.5]) + rng.normal(0, 0.3, 30)) + 0.05

    def choose(relative_error: bool) -> float:
        folds = np.array_split(np.random.default_rng(0).permutation(30), 5)
        errs = []
        for a in alphas:
            e = 0.0
            for f in folds:
                tr = np.setdiff1d(np.arange(30), f)
                r = AdditiveBlockModel(alphas=(a,), relative=False).fit(
                    X[tr], y[tr]).predict(X[f]) - y[f]
                e += float(np.sum((r / np.abs(y[f])) ** 2 if relative_error else r ** 2))
            errs.append(e)
        return alphas[int(np.argmin(errs))]

    assert choose(False) != choose(True)  # the data tells the two errors apart
    assert AdditiveBlockModel(alphas=alphas, relative=False).fit(X, y).alpha_ == choose(False)
