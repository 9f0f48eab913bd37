"""Extension points for search spaces and weight-sharing super-networks.

A *config* is a plain JSON-serialisable ``dict`` naming one sub-network, e.g. for
OFA-MobileNetV3 ``{"ks": [..20 ints..], "e": [..20..], "d": [..5..], "r": 32}``.

* :class:`SearchSpace` describes which configs exist (named dimensions with their
  choices, per position where the space is per-layer).
* :class:`SuperNet` owns a search space and the shared weights; it is an
  ``nn.Module`` whose ``forward`` runs the active sub-network.
* :class:`Task` trains a super-network and scores sub-networks (accuracy, BLEU ...):
  everything data-dependent about one family of super-networks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

Config = dict[str, Any]

__all__ = ["Config", "SearchSpace", "SuperNet", "Task", "check_protocol"]


@runtime_checkable
class SearchSpace(Protocol):
    """Named dimensions with their choices.

    ``dimensions`` maps a dimension name to a tuple of per-position choice tuples; a
    scalar dimension has exactly one position and its config value is a scalar.
    """

    name: str

    @property
    def dimensions(self) -> Mapping[str, tuple[tuple[Any, ...], ...]]: ...

    def sample(self, rng: np.random.Generator) -> Config:
        """Return one config drawn uniformly per position, already canonical."""
        ...

    def validate(self, config: Mapping[str, Any]) -> Config:
        """Return the canonical copy of ``config``; raise ``ValueError`` naming the bad
        key/value and the allowed choices if it is not in the space."""
        ...

    def encode(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Return a float array ``(len(configs), n_features)`` of fixed width."""
        ...

    def restrict(self, allowed: Mapping[str, Any]) -> SearchSpace:
        """Return a sub-space keeping, per dimension (and position), only ``allowed``."""
        ...

    def to_dict(self) -> dict[str, Any]: ...


@runtime_checkable
class SuperNet(Protocol):
    """A weight-sharing super-network (also an ``nn.Module``)."""

    space: SearchSpace

    def activate(self, config: Mapping[str, Any]) -> None:
        """Make ``config`` the active sub-network, in place (no copy of weights)."""
        ...

    def extract(self, config: Mapping[str, Any]) -> nn.Module:
        """Return a standalone module computing what the activated super-net computes."""
        ...

    def example_input(self, config: Mapping[str, Any], batch: int = 1) -> torch.Tensor:
        """A random input of the shape the sub-network ``config`` expects."""
        ...

    def recalibrate_bn(self, config: Mapping[str, Any], batches: Iterable[torch.Tensor]) -> None:
        """Re-estimate batch-norm statistics of ``config`` (activated) from ``batches``."""
        ...

    def bn_state(self) -> dict[str, torch.Tensor]:
        """Copies of all batch-norm running statistics (the per-member part of a bundle)."""
        ...

    def load_bn_state(self, state: Mapping[str, torch.Tensor]) -> None: ...

    def spec(self) -> dict[str, Any]:
        """``{"name": ..., "kwargs": {...}}`` that rebuilds this super-net (untrained):
        ``name`` is the name its class is registered under (entry-point group
        ``switchnas.supernets``, or ``switchnas.runtime.register_supernet``; ``None`` if
        unregistered) and ``kwargs`` plain JSON values accepted by ``__init__``. Bundles
        store exactly these two; an optional ``"target"`` (``"module:Class"``) is only
        for code that chooses to import it (``load(..., trust_target=True)``)."""
        ...

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Task(Protocol):
    """Trains one family of super-networks and scores its sub-networks."""

    metric: str  #: name of the score, e.g. ``"top1"`` or ``"bleu"`` (higher is better)

    def train(self, net: Any, data: Any, *, seed: int = 0) -> dict[str, Any]:
        """Train ``net`` in place on ``data``; return a JSON-able log."""
        ...

    def evaluate(self, net: Any, configs: Sequence[Mapping[str, Any]], data: Any) -> np.ndarray:
        """Score each config on held-out data (after BN recalibration where relevant)."""
        ...


def check_protocol(obj: object, protocol: type, what: str) -> None:
    """Raise ``TypeError`` naming every method of ``protocol`` that ``obj`` lacks."""
    names = [
        n
        for n in dir(protocol)
        if not n.startswith("_") and n not in {"space", "name", "metric"}
    ]
    missing = [n for n in names if not hasattr(obj, n)]
    not_callable = [
        n
        for n in names
        if hasattr(obj, n)
        and callable(getattr(protocol, n, None))
        and not isinstance(getattr(protocol, n), property)
        and not callable(getattr(obj, n))
    ]
    if missing or not_callable:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if not_callable:
            parts.append("not callable: " + ", ".join(not_callable))
        raise TypeError(f"{what} {type(obj).__name__} does not implement {protocol.__name__}: "
                        + "; ".join(parts))
