"""Contract tests of switchnas.search.surrogate: validation messages, which candidates
are cross-validated, the CV score itself, the chosen models and the bootstrap ensembles."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import KFold
from threadpoolctl import threadpool_limits

from switchnas.predictors.models import OneHotRidge
from switchnas.search.surrogate import (
    CANDIDATES,
    MIN_ROWS_BOOSTED,
    ObjectiveSurrogates,
    RidgeBoost,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """Histogram boosting's OpenMP threads spin on a busy machine: one thread is faster."""
    with threadpool_limits(1):
        yield


def _data(n: int, seed: int = 0, d: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 3, size=(n, d)).astype(float)
    y = 1.0 + X @ np.arange(1, d + 1) + 0.1 * rng.normal(size=n)
    return X, y


def test_constants() -> None:
    assert CANDIDATES == ("ridge", "ridge_log", "gbm", "ridge_gbm", "ridge_gbm_log")
    assert MIN_ROWS_BOOSTED == 40


def test_defaults() -> None:
    s = ObjectiveSurrogates()
    assert s.candidates == CANDIDATES
    assert (s.cv, s.n_bootstrap, s.seed, s.chosen) == (4, 8, 0, None)
    rb = RidgeBoost()
    assert (rb.max_iter, rb.learning_rate) == (50, 0.1)


# -- validation ----------------------------------------------------------------------------
def test_shape_errors() -> None:
    X, y = _data(10)
    with pytest.raises(ValueError, match=r"^need X \(n, d\) and Y \(n, m\) with n >= 4; got \(3, 3\) and \(3, 1\)$"):
        ObjectiveSurrogates().fit(X[:3], y[:3])
    with pytest.raises(ValueError, match=r"^need X \(n, d\) and Y \(n, m\) with n >= 4; got \(10, 3\) and \(9, 1\)$"):
        ObjectiveSurrogates().fit(X, y[:9])
    with pytest.raises(ValueError, match=r"^need X \(n, d\) and Y \(n, m\) with n >= 4; got \(10, 3\) and \(10, 1, 1\)$"):
        ObjectiveSurrogates().fit(X, y[:, None, None])
    # exactly four rows is enough
    s = ObjectiveSurrogates(candidates=("ridge",)).fit(X[:4], y[:4])
    assert s.predict(X[:4]).shape == (4, 1)


def test_unknown_candidates() -> None:
    X, y = _data(10)
    with pytest.raises(ValueError, match=re.escape(
            f"unknown surrogate(s) ['lasso']; choose from {list(CANDIDATES)}")):
        ObjectiveSurrogates(candidates=("ridge", "lasso")).fit(X, y)
    with pytest.raises(ValueError, match=r"^unknown surrogate\(s\) \[\]; choose from \["):
        ObjectiveSurrogates(candidates=()).fit(X, y)


def test_chosen_needs_one_name_per_objective() -> None:
    X, y = _data(10)
    Y = np.stack([y, -y], axis=1)
    with pytest.raises(ValueError, match=r"^chosen=\['gbm'\]: need one name per objective \(2\)$"):
        ObjectiveSurrogates(chosen=["gbm"]).fit(X, Y)
    with pytest.raises(ValueError, match=re.escape(
            f"unknown surrogate 'nope'; choose from {list(CANDIDATES)}")):
        ObjectiveSurrogates(chosen=["nope"]).fit(X, y)


def test_not_fitted() -> None:
    X, _ = _data(5)
    with pytest.raises(NotFittedError):
        ObjectiveSurrogates().predict(X)
    with pytest.raises(NotFittedError):
        ObjectiveSurrogates().predict_std(X)
    with pytest.raises(NotFittedError):
        RidgeBoost().predict(X)


# -- chosen ----------------------------------------------------------------------------------
def test_chosen_is_used_without_cross_validation() -> None:
    X, y = _data(12)
    Y = np.stack([y, y], axis=1)
    s = ObjectiveSurrogates(chosen=["ridge_log", "ridge"], n_bootstrap=2).fit(X, Y)
    assert s.chosen_ == ["ridge_log", "ridge"]
    assert s.cv_rmse_ == [{}, {}]
    assert isinstance(s.models_[0], TransformedTargetRegressor)
    assert isinstance(s.models_[1], OneHotRidge)
    assert s.n_features_in_ == 3


def test_chosen_log_model_falls_back_to_ridge_for_non_positive_objectives() -> None:
    X, y = _data(12)
    for shift in (0.0, -100.0):
        yy = y - y.min() + shift  # the minimum is 0 (or negative): no log
        s = ObjectiveSurrogates(chosen=["ridge_gbm_log"], n_bootstrap=2).fit(X, yy)
        assert s.chosen_ == ["ridge"]
    s = ObjectiveSurrogates(chosen=["ridge_gbm_log"], n_bootstrap=2).fit(X, y - y.min() + 0.5)
    assert s.chosen_ == ["ridge_gbm_log"]
    s = ObjectiveSurrogates(chosen=["ridge_gbm"], n_bootstrap=2).fit(X, y - 100)
    assert s.chosen_ == ["ridge_gbm"]


def test_gbm_parameters() -> None:
    for n, leaf in [(10, 3), (79, 3), (80, 4), (420, 20)]:
        X, y = _data(n)
        s = ObjectiveSurrogates(chosen=["gbm"], n_bootstrap=0).fit(X, y)
        m = s.models_[0]
        assert isinstance(m, HistGradientBoostingRegressor)
        p = m.get_params()
        assert (p["max_iter"], p["learning_rate"], p["max_leaf_nodes"], p["min_samples_leaf"],
                p["early_stopping"], p["random_state"]) == (100, 0.1, 15, leaf, False, 0)
        # the bootstrap refits are built for the full number of rows too
        assert [e.get_params()["min_samples_leaf"] for e in s.ensembles_[0]] == [leaf, leaf]


def test_ridge_boost_is_ridge_plus_boosted_residuals() -> None:
    X, y = _data(60, seed=3)
    y = y + 2.0 * (X[:, 0] == X[:, 1])  # an interaction the ridge cannot fit
    rb = RidgeBoost(max_iter=7, learning_rate=0.3).fit(X, y)
    assert rb.n_features_in_ == 3
    b = rb.booster_.get_params()
    assert (b["max_iter"], b["learning_rate"], b["max_leaf_nodes"], b["min_samples_leaf"]) == (7, 0.3, 15, 3)
    ridge = OneHotRidge().fit(X, y)
    assert np.allclose(rb.ridge_.predict(X), ridge.predict(X))
    resid = HistGradientBoostingRegressor(max_iter=7, learning_rate=0.3, max_leaf_nodes=15,
                                          min_samples_leaf=3, early_stopping=False,
                                          random_state=0).fit(X, y - ridge.predict(X))
    assert np.allclose(rb.predict(X), ridge.predict(X) + resid.predict(X))
    # the boosting reduces the training error of the ridge
    assert np.mean((rb.predict(X) - y) ** 2) < np.mean((ridge.predict(X) - y) ** 2)


def test_ridge_boost_defaults_reach_the_booster() -> None:
    X, y = _data(50, seed=4)
    rb = RidgeBoost().fit(X, y)
    b = rb.booster_.get_params()
    assert (b["max_iter"], b["learning_rate"]) == (50, 0.1)


# -- selection ---------------------------------------------------------------------------------
def _cv_rmse(name_model, X: np.ndarray, y: np.ndarray, k: int, seed: int) -> float:
    err = []
    for tr, te in KFold(n_splits=k, shuffle=True, random_state=seed).split(X):
        pred = name_model().fit(X[tr], y[tr]).predict(X[te])
        err.append(np.mean((pred - y[te]) ** 2))
    return float(np.sqrt(np.mean(err)))


def _ridge_log() -> TransformedTargetRegressor:
    return TransformedTargetRegressor(regressor=OneHotRidge(), func=np.log, inverse_func=np.exp,
                                      check_inverse=False)


@pytest.mark.parametrize("n, cv, k, seed", [(20, 4, 4, 0), (20, 10, 5, 1), (12, 4, 3, 0),
                                            (8, 4, 2, 2), (20, 1, 2, 0)])
def test_cv_rmse_is_the_k_fold_rmse(n: int, cv: int, k: int, seed: int) -> None:
    X, y = _data(n, seed=seed)
    s = ObjectiveSurrogates(candidates=("ridge", "ridge_log"), cv=cv, seed=seed,
                            n_bootstrap=2).fit(X, y)
    scores = s.cv_rmse_[0]
    assert set(scores) == {"ridge", "ridge_log"}
    assert scores["ridge"] == pytest.approx(_cv_rmse(OneHotRidge, X, y, k, seed), rel=1e-9)
    assert scores["ridge_log"] == pytest.approx(_cv_rmse(_ridge_log, X, y, k, seed), rel=1e-9)
    assert s.chosen_ == [min(scores, key=scores.__getitem__)]


def test_selection_picks_the_smallest_rmse() -> None:
    rng = np.random.default_rng(0)
    X = rng.integers(0, 4, size=(60, 3)).astype(float)
    y_mult = np.exp(0.8 * X[:, 0] + 0.6 * X[:, 1])          # multiplicative: log wins
    s = ObjectiveSurrogates(candidates=("ridge", "ridge_log"), n_bootstrap=2).fit(X, y_mult)
    assert s.chosen_ == ["ridge_log"]
    assert s.cv_rmse_[0]["ridge_log"] < s.cv_rmse_[0]["ridge"]
    y_add = 5.0 + X @ np.array([1.0, 2.0, 3.0])            # additive, exact: ridge is best
    s = ObjectiveSurrogates(candidates=("ridge_log", "ridge"), n_bootstrap=2).fit(X, y_add)
    assert s.chosen_ == ["ridge"]


def test_boosted_candidates_need_enough_rows() -> None:
    X, y = _data(MIN_ROWS_BOOSTED - 1)
    s = ObjectiveSurrogates(candidates=("ridge", "gbm"), n_bootstrap=2).fit(X, y)
    assert s.chosen_ == ["ridge"] and s.cv_rmse_ == [{}]
    X, y = _data(MIN_ROWS_BOOSTED)
    s = ObjectiveSurrogates(candidates=("ridge", "gbm"), n_bootstrap=2).fit(X, y)
    assert set(s.cv_rmse_[0]) == {"ridge", "gbm"}


def test_log_candidates_need_positive_objectives() -> None:
    X, y = _data(20)
    s = ObjectiveSurrogates(candidates=("ridge", "ridge_log"), n_bootstrap=2).fit(X, -y)
    assert s.chosen_ == ["ridge"] and s.cv_rmse_ == [{}]
    s = ObjectiveSurrogates(candidates=("ridge", "ridge_log"), n_bootstrap=2).fit(X, y - y.min())
    assert s.chosen_ == ["ridge"] and s.cv_rmse_ == [{}]


def test_fallbacks_when_every_candidate_is_filtered() -> None:
    X, y = _data(10)
    # only boosted candidates and few rows: they are used anyway (no CV)
    s = ObjectiveSurrogates(candidates=("gbm",), n_bootstrap=2).fit(X, y)
    assert s.chosen_ == ["gbm"] and s.cv_rmse_ == [{}]
    s = ObjectiveSurrogates(candidates=("gbm", "ridge_gbm"), n_bootstrap=2).fit(X, y)
    assert set(s.cv_rmse_[0]) == {"gbm", "ridge_gbm"}
    # only log candidates and a non-positive objective: plain ridge
    s = ObjectiveSurrogates(candidates=("ridge_log",), n_bootstrap=2).fit(X, -y)
    assert s.chosen_ == ["ridge"] and isinstance(s.models_[0], OneHotRidge)
    s = ObjectiveSurrogates(candidates=("ridge_log", "ridge_gbm_log"), n_bootstrap=2).fit(X, -y)
    assert s.chosen_ == ["ridge"]


def test_each_objective_is_chosen_separately() -> None:
    X, y = _data(20)
    Y = np.stack([y, -y], axis=1)
    s = ObjectiveSurrogates(candidates=("ridge", "ridge_log"), n_bootstrap=2).fit(X, Y)
    assert len(s.chosen_) == 2 and s.chosen_[1] == "ridge"
    assert set(s.cv_rmse_[0]) == {"ridge", "ridge_log"} and s.cv_rmse_[1] == {}
    assert s.predict(X).shape == (20, 2)
    assert s.predict_std(X).shape == (20, 2)


# -- predictions and ensembles ---------------------------------------------------------------------
def test_predict_is_the_model_fitted_on_every_row() -> None:
    X, y = _data(16)
    Y = np.stack([y, 2 * y + 1], axis=1)
    s = ObjectiveSurrogates(chosen=["ridge", "ridge_log"], n_bootstrap=3).fit(X, Y)
    want0 = OneHotRidge().fit(X, Y[:, 0]).predict(X)
    want1 = _ridge_log().fit(X, Y[:, 1]).predict(X)
    got = s.predict(X)
    assert got.shape == (16, 2)
    assert np.allclose(got[:, 0], want0) and np.allclose(got[:, 1], want1)


@pytest.mark.parametrize("name, n_bootstrap, members", [
    ("ridge", 8, 8), ("ridge", 5, 5), ("ridge", 1, 2), ("ridge", 0, 2), ("ridge_log", 3, 3),
    ("gbm", 8, 2), ("gbm", 9, 3), ("ridge_gbm", 12, 4), ("ridge_gbm_log", 6, 2),
])
def test_ensemble_sizes(name: str, n_bootstrap: int, members: int) -> None:
    X, y = _data(12)
    s = ObjectiveSurrogates(chosen=[name], n_bootstrap=n_bootstrap).fit(X, y)
    assert len(s.ensembles_) == 1
    assert len(s.ensembles_[0]) == members


def test_predict_std_is_the_spread_of_seeded_bootstrap_refits() -> None:
    X, y = _data(16, seed=2)
    Y = np.stack([y, y ** 2], axis=1)
    s = ObjectiveSurrogates(chosen=["ridge", "ridge"], n_bootstrap=3, seed=7).fit(X, Y)
    rng = np.random.default_rng(7)
    want = []
    for j in range(2):
        preds = []
        for _ in range(3):
            idx = rng.integers(0, 16, 16)
            preds.append(OneHotRidge().fit(X[idx], Y[idx, j]).predict(X))
        want.append(np.std(preds, axis=0))
    got = s.predict_std(X)
    assert got.shape == (16, 2)
    assert np.allclose(got, np.stack(want, axis=1))
    assert (got > 0).all()
    # the same seed gives the same spread, another seed another one
    again = ObjectiveSurrogates(chosen=["ridge", "ridge"], n_bootstrap=3, seed=7).fit(X, Y)
    assert np.array_equal(again.predict_std(X), got)
    other = ObjectiveSurrogates(chosen=["ridge", "ridge"], n_bootstrap=3, seed=8).fit(X, Y)
    assert not np.allclose(other.predict_std(X), got)


def test_one_dimensional_y_is_one_objective() -> None:
    X, y = _data(10)
    s = ObjectiveSurrogates(chosen=["ridge"], n_bootstrap=2).fit(X.tolist(), y.tolist())
    assert s.predict(X).shape == (10, 1)
    assert s.predict_std(X).shape == (10, 1)


def test_gbm_cv_uses_the_training_fold_size_and_ensembles_the_full_size() -> None:
    X, y = _data(100, seed=5)
    s = ObjectiveSurrogates(candidates=("ridge", "gbm"), n_bootstrap=0).fit(X, y)

    def fold_gbm() -> HistGradientBoostingRegressor:
        # 4 folds of 100 rows: 75 training rows -> min_samples_leaf 3 (the full 100: 5)
        return HistGradientBoostingRegressor(max_iter=100, learning_rate=0.1, max_leaf_nodes=15,
                                             min_samples_leaf=3, early_stopping=False,
                                             random_state=0)

    assert s.cv_rmse_[0]["gbm"] == pytest.approx(_cv_rmse(fold_gbm, X, y, 4, 0), rel=1e-9)


def test_log_models_predict_the_exp_of_a_fit_on_the_log() -> None:
    X, y = _data(45, seed=6)
    y = np.exp(y / 10)
    s = ObjectiveSurrogates(chosen=["ridge_gbm_log", "ridge_log"], n_bootstrap=2).fit(
        X, np.stack([y, y], axis=1))
    rb = RidgeBoost().fit(X, np.log(y))
    assert np.allclose(s.predict(X)[:, 0], np.exp(rb.predict(X)))
    ridge = OneHotRidge().fit(X, np.log(y))
    assert np.allclose(s.predict(X)[:, 1], np.exp(ridge.predict(X)))
    assert s.models_[0].func is np.log and s.models_[0].inverse_func is np.exp
    assert s.models_[0].check_inverse is False and s.models_[1].check_inverse is False


# -- conversions and fallbacks -----------------------------------------------------------------------
def test_numbers_given_as_strings_are_converted() -> None:
    X, y = _data(12)
    Xs = X.astype(str)
    s = ObjectiveSurrogates(chosen=["ridge"], n_bootstrap=2).fit(Xs, y.astype(str))
    ref = ObjectiveSurrogates(chosen=["ridge"], n_bootstrap=2).fit(X, y)
    assert np.allclose(s.predict(Xs), ref.predict(X))
    assert np.allclose(s.predict_std(Xs), ref.predict_std(X))
    assert s.predict(Xs).dtype == np.float64
    rb = RidgeBoost(max_iter=5).fit(Xs, np.array([str(v) for v in y], dtype=object))
    ref_rb = RidgeBoost(max_iter=5).fit(X, y)
    assert np.allclose(rb.predict(Xs), ref_rb.predict(X))


def test_boosted_only_candidates_with_non_positive_objective() -> None:
    X, y = _data(10)
    s = ObjectiveSurrogates(candidates=("gbm",), n_bootstrap=2).fit(X, -y)
    assert s.chosen_ == ["gbm"]


def test_no_finite_cv_score_takes_the_first_candidate() -> None:
    # values near 1e200: every squared error overflows, every RMSE is inf
    X, _ = _data(40)
    y = 1e200 * (1 + np.random.default_rng(0).random(40))
    s = ObjectiveSurrogates(candidates=("ridge_log", "ridge"), n_bootstrap=2).fit(X, y)
    assert s.cv_rmse_ == [{"ridge_log": np.inf, "ridge": np.inf}]
    assert s.chosen_ == ["ridge_log"]
    s = ObjectiveSurrogates(candidates=("ridge", "ridge_log"), n_bootstrap=2).fit(X, y)
    assert s.chosen_ == ["ridge"]


def test_objectives_given_as_strings_are_selected_on_as_numbers() -> None:
    X, y = _data(20)
    s = ObjectiveSurrogates(candidates=("ridge", "ridge_log"), n_bootstrap=2).fit(X, y.astype(str))
    ref = ObjectiveSurrogates(candidates=("ridge", "ridge_log"), n_bootstrap=2).fit(X, y)
    assert s.chosen_ == ref.chosen_ and s.cv_rmse_ == ref.cv_rmse_
