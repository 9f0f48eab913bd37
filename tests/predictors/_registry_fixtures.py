"""Shared by the predictor tests: cheap settings per registry entry and synthetic data."""

from __future__ import annotations

import numpy as np

from switchnas.predictors.models import AdditiveBlockModel, OneHotRidge

# the registry's own settings, cut down where a fit would take seconds
FAST = {"hat_mlp": {"steps": 30, "hidden": 16},
        "mlp": {"regressor__mlpregressor__max_iter": 30,
                "regressor__mlpregressor__hidden_layer_sizes": (8,)},
        "ensemble": {"members": [OneHotRidge(), AdditiveBlockModel()]}}


def synthetic_data(n: int = 40, d: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Integer block choices and a positive additive target with known structure."""
    rng = np.random.default_rng(seed)
    X = rng.integers(1, 4, (n, d)).astype(float)
    return X, 2.0 + X @ rng.uniform(0.2, 1.0, d)
