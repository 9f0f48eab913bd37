"""Numerical accuracy of every registered predictor on targets with known structure.

Each registry entry is fitted on a target it can represent (an additive cost, a summed
lookup table, an additive cost times an interaction) and must predict held-out rows
within a bound set by what it can represent. A new registry entry without a case here
fails :func:`test_every_registered_predictor_has_an_accuracy_case`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from switchnas.predictors.models import (
    REGISTRY,
    AdditiveBlockModel,
    OneHotRidge,
    make_predictor,
)

D = 6
_W = np.random.default_rng(99).uniform(0.2, 1.0, D)


def _blocks(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 4, (n, D)).astype(float)


def additive(X: np.ndarray) -> np.ndarray:
    """Per-block costs that add up, plus a fixed overhead."""
    return 2.0 + X @ _W


def lut_sum(X: np.ndarray) -> np.ndarray:
    """A summed lookup table, off by a scale and an offset (what calibration absorbs)."""
    return 1.3 * X.sum(axis=1) + 0.7


def interacting(X: np.ndarray) -> np.ndarray:
    """An additive cost times what the additive model cannot express: +35 % when blocks
    0 and 1 are both at their largest, -18 % when block 2 is at its smallest."""
    return additive(X) * np.exp(0.3 * (X[:, 0] == 3) * (X[:, 1] == 3) - 0.2 * (X[:, 2] == 1))


@dataclass
class Case:
    target: Callable[[np.ndarray], np.ndarray]
    max_mape: float  #: held-out mean absolute percentage error, in %
    params: dict[str, Any] = field(default_factory=dict)


CASES: dict[str, Case] = {
    "ridge": Case(additive, 0.05),
    "additive": Case(additive, 0.01),
    "lut": Case(lut_sum, 0.01),
    "gbm": Case(additive, 3.0),
    "mlp": Case(additive, 1.0, {"regressor__mlpregressor__max_iter": 200,
                                "regressor__mlpregressor__hidden_layer_sizes": (16,)}),
    "hat_mlp": Case(additive, 2.0, {"steps": 300, "hidden": 32, "n_hidden": 2, "lr": 1e-2,
                                    "batch_size": 32}),
    "ensemble": Case(additive, 0.05, {"members": [OneHotRidge(), AdditiveBlockModel()]}),
    "additive_gbm": Case(interacting, 3.0),
}


def _mape(model: Any, target: Callable[[np.ndarray], np.ndarray]) -> float:
    X, Xt = _blocks(300, 0), _blocks(300, 1)
    pred = model.fit(X, target(X)).predict(Xt)
    yt = target(Xt)
    return float(np.mean(np.abs(pred - yt) / yt) * 100)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """torch's thread pool on a shared 2-core machine costs more than it gains here."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_every_registered_predictor_has_an_accuracy_case() -> None:
    assert set(CASES) == set(REGISTRY)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", sorted(CASES))
def test_held_out_accuracy_on_a_known_target(name: str) -> None:
    case = CASES[name]
    mape = _mape(make_predictor(name, **case.params), case.target)
    assert mape <= case.max_mape, f"{name}: held-out MAPE {mape:.3f} % > {case.max_mape} %"


def test_the_residual_correction_improves_on_its_base() -> None:
    """On an additive cost with interactions, the boosted correction must cut the
    additive base model's error by more than half (a correction applied with the wrong
    sign roughly doubles it instead)."""
    base = _mape(make_predictor("additive"), interacting)
    boosted = _mape(make_predictor("additive_gbm"), interacting)
    assert base > 5.0  # the interactions are there to be learned
    assert boosted < 0.5 * base, (boosted, base)


def test_the_lookup_table_calibration_is_recovered() -> None:
    m = make_predictor("lut").fit(_blocks(50, 2), lut_sum(_blocks(50, 2)))
    assert (m.a_, m.b_) == pytest.approx((1.3, 0.7))


def test_the_additive_model_fits_targets_that_include_zero_without_warnings() -> None:
    import warnings

    rng = np.random.default_rng(0)
    X = rng.integers(0, 2, size=(40, 6)).astype(float)
    y = X @ np.array([1.0, 2.0, 0.5, 0.0, 3.0, 1.5])  # rows of zeros give y == 0
    assert (y == 0).any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = AdditiveBlockModel(relative=True).fit(X, y)
    nz = y != 0
    assert np.allclose(model.predict(X)[nz], y[nz], rtol=0.05)
