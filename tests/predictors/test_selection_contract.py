"""Contract of :mod:`switchnas.predictors.selection`: argument checks and their
messages, the fold count, the metric's direction, NaN handling, and the report."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import pytest
from sklearn.compose import TransformedTargetRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold

from switchnas.predictors.metrics import regression_report
from switchnas.predictors.models import REGISTRY, LUTSum
from switchnas.predictors.selection import (
    DEFAULT_CANDIDATES,
    select_encoding_and_predictor,
    select_predictor,
)


class Neg(LUTSum):
    """Ranks backwards: ``-sum``."""

    def predict(self, X):
        return -super().predict(X)


class Const(LUTSum):
    """A constant prediction (no ranking: NaN rank correlations)."""

    def predict(self, X):
        return np.full(len(np.asarray(X)), 5.0)


class Warns(LUTSum):
    def fit(self, X, y):
        warnings.warn("not converged", ConvergenceWarning, stacklevel=1)
        return super().fit(X, y)


@pytest.fixture
def fakes() -> Iterator[None]:
    added = {"_sum": lambda: LUTSum(calibrate=False), "_neg": lambda: Neg(calibrate=False),
             "_const": lambda: Const(), "_warns": lambda: Warns(),
             "_cal": lambda: LUTSum()}
    REGISTRY.update(added)
    try:
        yield
    finally:
        for k in added:
            REGISTRY.pop(k, None)


def _data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(1.0, 10.0, (n, 2))
    return X, X.sum(1) * (1 + rng.normal(0, 0.05, n))


def test_default_candidates() -> None:
    assert DEFAULT_CANDIDATES == ("ridge", "additive", "gbm", "mlp")


def test_argument_checks(fakes: None) -> None:
    X, y = _data()
    with pytest.raises(ValueError, match=r"^X must be \(n, d\) with n = len\(y\); got X "
                                         r"\(12,\), y \(12,\)$"):
        select_predictor(X[:, 0], y)
    with pytest.raises(ValueError, match=r"got X \(12, 2\), y \(11,\)$"):
        select_predictor(X, y[:11])
    with pytest.raises(ValueError, match=r"^select_predictor needs at least 4 rows, got 3$"):
        select_predictor(X[:3], y[:3], candidates=["_sum"])
    assert select_predictor(X[:4], y[:4], candidates=["_sum"])[1]["folds"] == 2
    with pytest.raises(ValueError, match=r"^unknown predictor\(s\) \['nope'\]; registered: "
                                         r"\['_cal', "):
        select_predictor(X, y, candidates=["_sum", "nope"])
    with pytest.raises(ValueError, match=r"^unknown predictor\(s\) \[\]; registered: "):
        select_predictor(X, y, candidates=[])
    with pytest.raises(ValueError, match=r"^log_target=True needs every target > 0$"):
        select_predictor(X, np.where(np.arange(12) == 3, 0.0, y), candidates=["_sum"],
                         log_target=True)
    with pytest.raises(ValueError, match=r"^unknown metric 'mae'; choose 'auto' or one of "
                                         r"\['kendall', 'mape', 'rmse', 'spearman', "
                                         r"'within10'\]$"):
        select_predictor(X, y, candidates=["_sum"], metric="mae")


def test_auto_metric_and_folds(fakes: None) -> None:
    X, y = _data()
    _, rep = select_predictor(X, y, candidates=["_sum"])
    assert set(rep) == {"chosen", "metric", "cv", "folds"}
    assert rep["metric"] == "mape" and rep["folds"] == 5 and rep["chosen"] == "_sum"
    assert set(rep["cv"]["_sum"]) == {"mape", "rmse", "within10", "spearman", "kendall"}
    assert select_predictor(X, y - 8.0, candidates=["_sum"])[1]["metric"] == "rmse"
    zero = y.copy()
    zero[0] = 0.0
    assert select_predictor(X, zero, candidates=["_sum"])[1]["metric"] == "rmse"
    assert select_predictor(X, y, candidates=["_sum"], cv=1)[1]["folds"] == 2
    assert select_predictor(X, y, candidates=["_sum"], cv=3)[1]["folds"] == 3
    assert select_predictor(X[:9], y[:9], candidates=["_sum"], cv=10)[1]["folds"] == 4
    assert select_predictor(X, y, candidates=["_sum"], cv=6)[1]["folds"] == 6
    for m in ("rmse", "spearman", "kendall", "within10", "mape"):
        assert select_predictor(X, y, candidates=["_sum"], metric=m)[1]["metric"] == m
    assert select_predictor(X, y, candidates=["_sum"], metric="auto")[1]["metric"] == "mape"


def test_scores_are_fold_means(fakes: None) -> None:
    X, y = _data()
    _, rep = select_predictor(X, y, candidates=["_cal"], cv=3, seed=4)
    per = []
    for tr, te in KFold(n_splits=3, shuffle=True, random_state=4).split(X):
        est = LUTSum().fit(X[tr], y[tr])
        per.append(regression_report(y[te], est.predict(X[te])))
    for key in ("mape", "rmse", "within10", "spearman", "kendall"):
        assert rep["cv"]["_cal"][key] == pytest.approx(np.mean([r[key] for r in per]))
    other = select_predictor(X, y, candidates=["_cal"], cv=3, seed=5)[1]
    assert other["cv"]["_cal"]["rmse"] != rep["cv"]["_cal"]["rmse"]
    assert select_predictor(X, y, candidates=["_cal"], cv=3)[1]["cv"] == select_predictor(
        X, y, candidates=["_cal"], cv=3, seed=0)[1]["cv"]


def test_choice_direction_and_nan(fakes: None) -> None:
    X, y = _data()
    for metric in ("rmse", "mape"):
        assert select_predictor(X, y, candidates=["_neg", "_sum"],
                                metric=metric)[1]["chosen"] == "_sum"
    for metric in ("kendall", "spearman", "within10"):
        assert select_predictor(X, y, candidates=["_neg", "_sum"],
                                metric=metric)[1]["chosen"] == "_sum"
        assert select_predictor(X, y, candidates=["_sum", "_neg"],
                                metric=metric)[1]["chosen"] == "_sum"
    # a constant predictor has NaN rank scores: never chosen on them, reported as NaN
    best, rep = select_predictor(X, y, candidates=["_const", "_neg"], metric="kendall")
    assert np.isnan(rep["cv"]["_const"]["kendall"])
    assert rep["chosen"] == "_neg" and isinstance(best, Neg)
    best, rep = select_predictor(X, y, candidates=["_neg", "_const"], metric="rmse")
    assert rep["chosen"] == "_const"  # 5 everywhere is closer than -sum
    # ties go to the first name
    assert select_predictor(X, y, candidates=["_const"], metric="kendall")[1]["chosen"] == \
        "_const"


def test_refit_on_everything_and_log_target(fakes: None) -> None:
    X, y = _data()
    best, rep = select_predictor(X, y, candidates=["_cal"])
    ref = LUTSum().fit(X, y)
    assert isinstance(best, LUTSum) and (best.a_, best.b_) == (ref.a_, ref.b_)
    logged, rep = select_predictor(X, y, candidates=["_cal"], log_target=True)
    assert isinstance(logged, TransformedTargetRegressor)
    assert logged.func is np.log and logged.inverse_func is np.exp
    inner = LUTSum().fit(X, np.log(y))
    np.testing.assert_allclose(logged.predict(X), np.exp(inner.predict(X)))
    plain = select_predictor(X, y, candidates=["_cal"])[1]
    assert rep["cv"] != plain["cv"]


def test_convergence_warnings_are_silenced(fakes: None) -> None:
    X, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert select_predictor(X, y, candidates=["_warns"])[1]["chosen"] == "_warns"


def test_select_encoding(fakes: None) -> None:
    X, y = _data()
    rng = np.random.default_rng(1)
    noise = rng.uniform(1.0, 10.0, (12, 2))
    with pytest.raises(ValueError, match=r"^encodings is empty; pass \{name: X\}$"):
        select_encoding_and_predictor({}, y)
    for metric in ("rmse", "kendall"):
        for order in (("noise", "good"), ("good", "noise")):
            encs = {"good": X, "noise": noise}
            encs = {k: encs[k] for k in order}
            model, rep = select_encoding_and_predictor(encs, y, candidates=["_cal"],
                                                       metric=metric, cv=3, seed=2)
            assert rep["encoding"] == "good"
            assert list(rep["by_encoding"]) == list(order)
            assert rep["by_encoding"]["good"]["folds"] == 3
            assert {k: rep[k] for k in ("chosen", "metric", "cv", "folds")} == \
                rep["by_encoding"]["good"]
            np.testing.assert_allclose(model.predict(X), LUTSum().fit(X, y).predict(X))
    # NaN scores lose: a constant encoding gives constant predictions
    flat = np.ones_like(X)
    for order in (("flat", "good"), ("good", "flat")):
        encs = {"flat": flat, "good": X}
        _, rep = select_encoding_and_predictor({k: encs[k] for k in order}, y,
                                               candidates=["_cal"], metric="kendall")
        assert rep["encoding"] == "good"
        assert np.isnan(rep["by_encoding"]["flat"]["cv"]["_cal"]["kendall"])
    _, rep = select_encoding_and_predictor({"a": X, "b": X}, y, candidates=["_cal"],
                                           log_target=True)
    assert rep["metric"] == "mape" and rep["encoding"] == "a"


def test_small_positive_targets_use_mape_and_strings_are_numbers(fakes: None) -> None:
    X, y = _data()
    small = y / 100.0  # all in (0, 1): still positive
    assert select_predictor(X, small, candidates=["_sum"])[1]["metric"] == "mape"
    as_text = [str(v) for v in y]
    a = select_predictor(X, as_text, candidates=["_cal"])[1]
    assert a == select_predictor(X, y, candidates=["_cal"])[1]


def test_all_nan_scores_without_warnings(fakes: None) -> None:
    X, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, rep = select_predictor(X, y, candidates=["_const"], metric="kendall")
    assert np.isnan(rep["cv"]["_const"]["kendall"])
    assert np.isnan(rep["cv"]["_const"]["spearman"])


def test_select_encoding_defaults(fakes: None) -> None:
    X, y = _data()
    _, rep = select_encoding_and_predictor({"a": X}, y, candidates=["_cal"])
    assert rep["folds"] == 5 and rep["metric"] == "mape"
    assert rep["by_encoding"]["a"] == select_predictor(X, y, candidates=["_cal"])[1]
    assert rep["cv"] == select_predictor(X, y, candidates=["_cal"], cv=5, seed=0)[1]["cv"]
