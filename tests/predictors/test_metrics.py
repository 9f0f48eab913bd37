from __future__ import annotations

import math

import numpy as np
import pytest

from switchnas.predictors.metrics import regression_report


def test_perfect_prediction() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    r = regression_report(y, y)
    assert r == {"mape": 0.0, "rmse": 0.0, "within10": 1.0, "spearman": 1.0, "kendall": 1.0,
                 "n": 4.0}


def test_known_values() -> None:
    y = np.array([10.0, 20.0, 40.0, 80.0])
    p = np.array([11.0, 18.0, 48.0, 80.0])  # rel err 10%, 10%, 20%, 0%
    r = regression_report(y, p)
    assert r["mape"] == pytest.approx(10.0)
    assert r["within10"] == pytest.approx(0.75)
    assert r["rmse"] == pytest.approx(math.sqrt((1 + 4 + 64) / 4))
    assert r["spearman"] == pytest.approx(1.0)
    r2 = regression_report(y, p[::-1])
    assert r2["kendall"] < 0


def test_degenerate_inputs() -> None:
    r = regression_report([1.0, 2.0], [3.0, 3.0])
    assert math.isnan(r["spearman"]) and math.isnan(r["kendall"])
    assert math.isnan(regression_report([0.0, 1.0], [0.0, 1.0])["mape"])
    with pytest.raises(ValueError, match="2 values"):
        regression_report([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="empty"):
        regression_report([], [])
