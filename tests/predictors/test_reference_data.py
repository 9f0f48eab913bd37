"""Small, fast checks of the predictors on other projects' measurements (the full
comparison is ``benchmarks/predictors.py``)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from switchnas.predictors.encodings import (
    HAT_FEATURES,
    hat_operator_features,
    mbv3_configs_from_table,
    mbv3_operator_features,
)
from switchnas.predictors.metrics import regression_report
from switchnas.predictors.models import AdditiveBlockModel

pytestmark = pytest.mark.refdata


def _read(path: Path) -> dict[str, list[str]]:
    with path.open() as f:
        rows = list(csv.DictReader(f))
    return {k: [r[k] for r in rows] for k in rows[0]}


def test_additive_on_hat_work_terms_from_100_rows(shared_data: Path) -> None:
    cols = _read(shared_data / "hat_latency" / "wmt14enfr_gpu_titanxp_all.csv")
    X = hat_operator_features(np.array([[float(v) for v in cols[c]] for c in HAT_FEATURES]).T)
    y = np.array(cols["latency_mean_encoder"], float) + np.array(cols["latency_mean_decoder"],
                                                                 float)
    perm = np.random.default_rng(0).permutation(len(y))
    m = AdditiveBlockModel().fit(X[perm[:100]], y[perm[:100]])
    # HAT's own MLP on 1600 rows: about 2.2 % on this file
    assert regression_report(y[perm[1800:]], m.predict(X[perm[1800:]]))["mape"] < 2.5


def test_additive_on_gpu_latency_from_50_rows(shared_data: Path) -> None:
    cols = _read(shared_data / "ofa_mbv3_gpu_latency" / "help_ofa_mbv3_latency.csv")
    X = mbv3_operator_features(mbv3_configs_from_table(cols), level="network")
    y = np.array(cols["lat_ms_titan_rtx_64"], float)
    perm = np.random.default_rng(0).permutation(len(y))
    m = AdditiveBlockModel().fit(X[perm[:50]], y[perm[:50]])
    r = regression_report(y[perm[-1000:]], m.predict(X[perm[-1000:]]))
    assert r["mape"] < 3.0 and r["within10"] > 0.95
