from __future__ import annotations

import numpy as np
import pytest

from switchnas.predictors.selection import select_predictor


def _linear(n: int, d: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 3, (n, d)).astype(float)
    y = 5.0 + X @ rng.uniform(0.5, 2.0, d) + 0.01 * rng.standard_normal(n)
    return X, y


def test_chooses_and_refits() -> None:
    X, y = _linear(80)
    est, rep = select_predictor(X, y, candidates=["ridge", "gbm"], cv=3)
    assert rep["chosen"] == "ridge"  # the target is linear: boosting must lose
    assert rep["metric"] == "mape" and rep["folds"] == 3
    assert set(rep["cv"]) == {"ridge", "gbm"}
    assert rep["cv"]["ridge"]["mape"] < rep["cv"]["gbm"]["mape"]
    assert np.mean(np.abs(est.predict(X) - y) / y) < 0.01


def test_few_rows_and_defaults() -> None:
    X, y = _linear(12)
    est, rep = select_predictor(X, y)
    assert rep["folds"] == 5 and est.predict(X).shape == (12,)
    X, y = _linear(8)
    _, rep = select_predictor(X, y, cv=10)
    assert rep["folds"] == 4  # at most n // 2


def test_log_target_and_metric_choice() -> None:
    X, y = _linear(40)
    est, rep = select_predictor(X, y, candidates=["ridge"], log_target=True, metric="kendall")
    assert rep["metric"] == "kendall"
    assert np.all(est.predict(X) > 0)
    _, rep = select_predictor(X, y - 100.0, candidates=["ridge"])
    assert rep["metric"] == "rmse"  # non-positive targets: MAPE is meaningless


def test_bad_arguments() -> None:
    X, y = _linear(20)
    with pytest.raises(ValueError, match="unknown predictor"):
        select_predictor(X, y, candidates=["nope"])
    with pytest.raises(ValueError, match="unknown metric"):
        select_predictor(X, y, metric="r2")
    with pytest.raises(ValueError, match="log_target"):
        select_predictor(X, -y, log_target=True)
    with pytest.raises(ValueError, match="at least 4"):
        select_predictor(X[:3], y[:3])


def test_log_target_wraps_the_named_predictor() -> None:
    """``log_target`` fits the chosen candidate itself on ``log(y)``, not a default."""
    from sklearn.compose import TransformedTargetRegressor

    from switchnas.predictors.models import LUTSum, OneHotRidge

    X, y = _linear(20)
    est, _ = select_predictor(X, y, candidates=["ridge"], log_target=True)
    assert isinstance(est, TransformedTargetRegressor)
    assert isinstance(est.regressor, OneHotRidge) and isinstance(est.regressor_, OneHotRidge)
    est, _ = select_predictor(X, y, candidates=["lut"], log_target=True)
    assert isinstance(est.regressor_, LUTSum)
