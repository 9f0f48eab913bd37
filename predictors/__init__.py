"""Latency and accuracy predictors: encodings, estimators, model selection, metrics and
datasets of measurements.

Every estimator follows the scikit-learn contract; :func:`select_predictor` picks one by
cross-validation from :data:`REGISTRY`. :func:`fit_predictor` also picks the encoding and
returns a :class:`FittedPredictor`, which carries that encoding's name and encodes configs
or genomes itself (``predict_configs``/``predict_genomes``).
"""

from __future__ import annotations

from .dataset import MeasurementDataset
from .fitted import FittedPredictor, config_encodings, fit_predictor, genome_encodings
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
    "FittedPredictor",
    "HatMLP",
    "LUTSum",
    "MeasurementDataset",
    "OneHotRidge",
    "ResidualBoosted",
    "config_encodings",
    "fit_predictor",
    "genome_encodings",
    "make_predictor",
    "regression_report",
    "register",
    "select_encoding_and_predictor",
    "select_predictor",
]
