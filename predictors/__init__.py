"""Latency and accuracy predictors: encodings, estimators, model selection, metrics and
datasets of measurements.

Every estimator follows the scikit-learn contract; :func:`select_predictor` picks one by
cross-validation from :data:`REGISTRY`.
"""

from __future__ import annotations

from .dataset import MeasurementDataset
from .metrics import regression_report
from .models import (
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
from .selection import select_encoding_and_predictor, select_predictor

__all__ = [
    "REGISTRY",
    "AdditiveBlockModel",
    "Ensemble",
    "HatMLP",
    "LUTSum",
    "MeasurementDataset",
    "OneHotRidge",
    "ResidualBoosted",
    "make_predictor",
    "regression_report",
    "register",
    "select_encoding_and_predictor",
    "select_predictor",
]
