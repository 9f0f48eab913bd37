"""Copying a bundle's leading slices into a super-net's state tensors."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ._manifest import BundleError

__all__ = ["check_slices", "copy_slices", "slice_views"]


def check_slices(state: Mapping[str, torch.Tensor],
                 tensors: Mapping[str, torch.Tensor]) -> None:
    """Raise :class:`BundleError` unless every tensor names a state tensor of the same
    dtype and fits in its leading slice."""
    for k, t in tensors.items():
        if k not in state:
            raise BundleError(f"bundle tensor {k!r} names no tensor of the super-net")
        full = tuple(state[k].shape)
        if t.dim() != len(full) or any(a > b for a, b in zip(t.shape, full, strict=True)):
            raise BundleError(f"bundle tensor {k!r} has shape {tuple(t.shape)}, which does "
                              f"not fit the super-net's {full}")
        if t.dtype != state[k].dtype:
            raise BundleError(f"bundle tensor {k!r} is {t.dtype}, the super-net's "
                              f"{state[k].dtype}")


def slice_views(net: nn.Module, tensors: Mapping[str, torch.Tensor]
                ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(destination view, source) per tensor: a switch is then only copies."""
    state = net.state_dict()
    check_slices(state, tensors)
    return [(state[k][tuple(slice(0, n) for n in t.shape)], t) for k, t in tensors.items()]


def copy_slices(net: nn.Module, tensors: Mapping[str, torch.Tensor]) -> None:
    """Copy each tensor into the leading slice of ``net``'s same-named state tensor."""
    with torch.no_grad():
        for dst, src in slice_views(net, tensors):
            dst.copy_(src)
