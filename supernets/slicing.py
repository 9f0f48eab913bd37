"""The weights a set of sub-networks reads, as leading slices of the super-net's tensors.

A super-network whose sub-networks read the leading part of each tensor (the first
channels, the first groups) says which with ``used_extents(config) -> {name: shape}``;
:class:`LeadingSlices` then gives ``used_weight_slices(configs)``, the copies a bundle
stores in its ``"slices"`` layout and ``switchnas.runtime`` copies back into a freshly
built super-net.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["LeadingSlices", "union_of_extents"]


def union_of_extents(extents: Iterable[Mapping[str, tuple[int, ...]]]) -> dict[str, tuple[int, ...]]:
    """Per tensor name, the element-wise largest extent over ``extents``."""
    union: dict[str, tuple[int, ...]] = {}
    for ext in extents:
        for n, s in ext.items():
            union[n] = tuple(s) if n not in union else tuple(
                max(a, b) for a, b in zip(union[n], s, strict=True))
    return union


class LeadingSlices:
    """Mixin for an ``nn.Module`` super-network that defines ``used_extents``."""

    def used_extents(self, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    def used_weight_slices(self, configs: Iterable[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        """Copies of the leading slices of every state tensor that any of ``configs``
        reads (the union of :meth:`used_extents`); untouched tensors are left out."""
        assert isinstance(self, nn.Module)
        union = union_of_extents(self.used_extents(cfg) for cfg in configs)
        state = self.state_dict()
        return {n: state[n][tuple(slice(0, k) for k in s)].detach().clone()
                for n, s in union.items()}
