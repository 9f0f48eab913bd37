"""Batch-norm running statistics of a super-network: the per-member part of a bundle.

A super-network's ``bn_state()``/``load_bn_state()`` (see :class:`~.base.SuperNet`) are
these two functions over its batch-norm modules: every ``running_mean``, ``running_var``
and ``num_batches_tracked`` buffer, keyed ``"<module name>.<buffer>"``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

__all__ = ["BN_BUFFERS", "BatchNormState", "batch_norm_modules", "batch_norm_state",
           "load_batch_norm_state"]

#: The buffers of a batch-norm module that hold its running statistics.
BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def batch_norm_modules(module: nn.Module) -> list[tuple[str, nn.modules.batchnorm._BatchNorm]]:
    """``(name, module)`` of every batch-norm module inside ``module``, in order."""
    return [(n, m) for n, m in module.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def batch_norm_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of every batch-norm running statistic inside ``module``."""
    out: dict[str, torch.Tensor] = {}
    for name, m in batch_norm_modules(module):
        for b in BN_BUFFERS:
            t = getattr(m, b, None)
            if t is not None:
                out[f"{name}.{b}"] = t.detach().clone()
    return out


def load_batch_norm_state(module: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Copy the statistics of ``state`` (as :func:`batch_norm_state` names them) into
    ``module``'s batch-norm buffers, in place; keys it does not hold are left alone."""
    with torch.no_grad():
        for name, m in batch_norm_modules(module):
            for b in BN_BUFFERS:
                key = f"{name}.{b}"
                if key in state:
                    getattr(m, b).copy_(state[key])


class BatchNormState:
    """Mixin for an ``nn.Module`` super-network: ``bn_state``/``load_bn_state`` of the
    :class:`~.base.SuperNet` protocol over all its batch-norm modules."""

    def _bn_modules(self) -> list[tuple[str, nn.modules.batchnorm._BatchNorm]]:
        assert isinstance(self, nn.Module)
        return batch_norm_modules(self)

    def bn_state(self) -> dict[str, torch.Tensor]:
        """Copies of all batch-norm running statistics (the per-member part of a bundle)."""
        assert isinstance(self, nn.Module)
        return batch_norm_state(self)

    def load_bn_state(self, state: Mapping[str, torch.Tensor]) -> None:
        """Copy ``state`` (as :meth:`bn_state` names it) into the batch-norm buffers."""
        assert isinstance(self, nn.Module)
        load_batch_norm_state(self, state)
