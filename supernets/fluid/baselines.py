"""Baselines of the Fluid network, built from the same layers: a static network and an
ordinary (nested, not fluid) dynamic network, both of the union's size.

:class:`GroupedCNN` has the Fluid union's layers (three 3x3 convolutions, ``groups *
channels`` channels each, a linear classifier) with the channels of every layer split into
``groups`` groups. Connectivity:

* ``"dense"`` (the **static** network): every channel reads every channel of the layer
  before. Distributed, it is split layer-wise (:meth:`GroupedCNN.layer_ranges`,
  :meth:`GroupedCNN.run_layers`): a pipeline that stops when any device dies.
* ``"nested"`` (the **dynamic** network, incremental as in the channel-group DyDNN): group
  ``g`` reads groups ``1..g`` of the layer before, never later ones; sub-network ``k`` is
  groups ``1..k`` and its logits are group 1..k's share of the classifier. Distributed, device
  ``j`` holds group ``j`` and needs every layer's activations of groups ``< j``
  (:meth:`GroupedCNN.run_group`): losing device 1 stops everything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from .net import FEATURES, check_cnn_args
from .net import pool_features as _pool_features

__all__ = ["CONNECTIVITY", "GroupedCNN"]

CONNECTIVITY = ("dense", "nested")


class GroupedCNN(nn.Module):
    """Three convolutions and a classifier, channels in ``groups`` groups.

    Args:
        n_classes: classes.
        groups: number of channel groups (devices).
        channels: channels of one group per convolution (the union has ``groups`` times).
        connectivity: ``"dense"`` or ``"nested"`` (see the module docstring).
        resolution: input resolution (other sizes are resized bilinearly).
        in_channels: input channels.

    Raises:
        ValueError: a bad argument, named.
    """

    def __init__(self, *, n_classes: int = 10, groups: int = 2,
                 channels: Sequence[int] = (16, 32, 64), connectivity: str = "dense",
                 resolution: int = 32, in_channels: int = 3):
        super().__init__()
        check_cnn_args(n_classes=n_classes, channels=channels, resolution=resolution)
        if connectivity not in CONNECTIVITY:
            raise ValueError(f"connectivity={connectivity!r}; choose from {list(CONNECTIVITY)}")
        if int(groups) < 1:
            raise ValueError(f"groups={groups} must be >= 1")
        self.groups, self.connectivity = int(groups), connectivity
        self.resolution, self.in_channels = int(resolution), int(in_channels)
        self.group_channels = [int(c) for c in channels]
        chans = [in_channels, *[self.groups * c for c in self.group_channels]]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1)
                                   for a, b in zip(chans[:-1], chans[1:], strict=True))
        self.head = nn.Linear(chans[-1] * FEATURES, n_classes)
        for i in range(len(self.convs)):
            self.register_buffer(f"mask{i}", self._mask(i), persistent=False)

    def _mask(self, layer: int) -> torch.Tensor:
        conv = self.conv_layers[layer]
        m = torch.ones(conv.out_channels, conv.in_channels, 1, 1)
        if self.connectivity == "nested" and layer > 0:
            c_out, c_in = self.group_channels[layer], self.group_channels[layer - 1]
            for g in range(self.groups):
                m[g * c_out:(g + 1) * c_out, (g + 1) * c_in:] = 0
        return m

    @property
    def conv_layers(self) -> list[nn.Conv2d]:
        """The convolutions, typed."""
        return [cast(nn.Conv2d, c) for c in self.convs]

    def _norm_groups(self, k: int) -> int:
        """Layer normalisation over all channels (dense) or over each group's (nested, so
        that a group's device normalises what it computes alone)."""
        return 1 if self.connectivity == "dense" else k

    def _weight(self, layer: int) -> torch.Tensor:
        conv = self.conv_layers[layer]
        return conv.weight * getattr(self, f"mask{layer}")

    # -- whole network -------------------------------------------------------------------
    def forward(self, x: torch.Tensor, k: int | None = None) -> torch.Tensor:
        """Logits of the whole network, or (nested) of sub-network ``k`` (groups 1..k)."""
        k = self.groups if k is None else int(k)
        if not 1 <= k <= self.groups or (k < self.groups and self.connectivity == "dense"):
            raise ValueError(f"k={k}: a {self.connectivity} network of {self.groups} groups "
                             f"has sub-networks {list(range(1, self.groups + 1)) if self.connectivity == 'nested' else [self.groups]}")
        x = _resize(x, self.resolution)
        c_in = x.shape[1]
        for i, conv in enumerate(self.conv_layers):
            c_out = k * self.group_channels[i]
            x = F.relu(F.group_norm(F.conv2d(x, self._weight(i)[:c_out, :c_in], _bias(conv)[:c_out],
                                            padding=1), self._norm_groups(k)))
            x = F.max_pool2d(x, 2) if i < len(self.convs) - 1 else _pool_features(x)
            c_in = c_out
        return F.linear(x, self.head.weight[:, :c_in * FEATURES], self.head.bias)

    def group_parameters_mask(self, group: int) -> dict[str, torch.Tensor]:
        """Per parameter, a 0/1 tensor of the entries group ``group`` (0-based) owns: its
        output channels of every convolution, its classifier columns (and, for group 0,
        the classifier's bias). Incremental training updates only these."""
        out: dict[str, torch.Tensor] = {}
        for i, conv in enumerate(self.conv_layers):
            c = self.group_channels[i]
            m = torch.zeros_like(conv.weight)
            m[group * c:(group + 1) * c] = 1
            b = torch.zeros_like(_bias(conv))
            b[group * c:(group + 1) * c] = 1
            out[f"convs.{i}.weight"], out[f"convs.{i}.bias"] = m, b
        c = self.group_channels[-1] * FEATURES
        hw = torch.zeros_like(self.head.weight)
        hw[:, group * c:(group + 1) * c] = 1
        out["head.weight"] = hw
        out["head.bias"] = torch.full_like(self.head.bias, 1.0 if group == 0 else 0.0)
        return out

    # -- layer-wise split (static) -------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return len(self.convs) + 1

    def layer_ranges(self, devices: int) -> list[tuple[int, int]]:
        """Contiguous ``[start, stop)`` layer ranges for ``devices`` pipeline stages (the
        classifier rides with the last convolution)."""
        n = len(self.convs)
        if not 1 <= devices <= n:
            raise ValueError(f"devices={devices}: a layer-wise split has 1 to {n} stages")
        bounds = [round(i * n / devices) for i in range(devices + 1)]
        if devices == 2:  # the first convolution is the cheapest: give stage 1 two
            bounds = [0, 2, n]
        ranges = [(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        ranges[-1] = (ranges[-1][0], self.n_layers)
        return ranges

    def run_layers(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Layers ``start..stop-1`` of the whole network on ``x`` (the input of ``start``)."""
        if start == 0:
            x = _resize(x, self.resolution)
        for i in range(start, stop):
            if i == len(self.convs):
                x = F.linear(x, self.head.weight, self.head.bias)
                continue
            x = F.relu(F.group_norm(F.conv2d(x, self._weight(i), self.conv_layers[i].bias, padding=1),
                                    self._norm_groups(self.groups)))
            x = F.max_pool2d(x, 2) if i < len(self.convs) - 1 else _pool_features(x)
        return x

    # -- group-wise split (nested) ------------------------------------------------------
    def run_group(self, group: int, x: torch.Tensor, previous: Sequence[torch.Tensor],
                  logits: torch.Tensor | None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Group ``group`` (0-based) of a nested network, as its device runs it.

        Args:
            group: the group.
            x: the input image batch.
            previous: per convolution, the activations of groups ``< group`` (empty for
                group 0).
            logits: the classifier's share of groups ``< group`` (``None`` for group 0).

        Returns:
            ``(per convolution the activations of groups <= group, logits of sub-network
            group + 1)``.
        """
        if self.connectivity != "nested":
            raise ValueError("run_group needs a nested network")
        x = _resize(x, self.resolution)
        acts: list[torch.Tensor] = []
        inp = x
        for i, conv in enumerate(self.conv_layers):
            c = self.group_channels[i]
            c_in = inp.shape[1]
            rows = slice(group * c, (group + 1) * c)
            own = F.relu(F.group_norm(F.conv2d(inp, self._weight(i)[rows, :c_in], _bias(conv)[rows],
                                              padding=1), 1))
            own = F.max_pool2d(own, 2) if i < len(self.convs) - 1 else _pool_features(own)
            full = torch.cat([previous[i], own], dim=1) if group > 0 else own
            acts.append(full)
            inp = full
        c = self.group_channels[-1] * FEATURES
        share = F.linear(acts[-1][:, group * c:], self.head.weight[:, group * c:(group + 1) * c])
        out = share + (self.head.bias if logits is None else logits)
        return acts, out

    def spec(self) -> dict[str, Any]:
        return {"n_classes": self.head.out_features, "groups": self.groups,
                "channels": list(self.group_channels), "connectivity": self.connectivity,
                "resolution": self.resolution, "in_channels": self.in_channels}


def _resize(x: torch.Tensor, r: int) -> torch.Tensor:
    if x.shape[-1] != r or x.shape[-2] != r:
        x = F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False)
    return x


def _bias(conv: nn.Conv2d) -> torch.Tensor:
    return cast(torch.Tensor, conv.bias)  # every convolution here has one
