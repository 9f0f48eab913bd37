"""An incremental channel-group network: an AlexNet-like CNN whose convolution layers
are split into channel groups that are trained one after another (after "a dynamic DNN
using incremental training and group convolution pruning", MLCAD 2019).

Design decisions (the paper leaves them open):

* **Layers.** Five convolution layers (AlexNet's count; kernels 5, 3, 3, 3, 3 by default),
  each ``conv -> batch norm -> ReLU``, a 2x2 max-pool after the layers in ``pools``; inputs
  are resized to ``resolution`` (32 by default, CIFAR-10's size).
* **Groups and connectivity.** Every layer's output channels are split into ``groups``
  equal groups (``widths`` are the totals). Group ``i`` of layer ``l`` is its own
  convolution over the concatenation of groups ``1..i`` of layer ``li - 1`` (every group of
  the first layer reads the image): old groups never read new ones, a block-lower-
  triangular connectivity. Each group has its own batch norm.
* **Classifier.** One linear head per group count: head ``k`` reads the global average of
  groups ``1..k`` of the last layer. Head ``k`` is trained with group ``k`` and frozen after.
* **Bit identity.** Group ``i`` is computed by the same operation on the same tensors
  whatever the other groups are (a fresh concatenation of its input groups, its own
  weights), and training group ``k`` leaves groups ``< k``, their batch-norm statistics
  and their heads untouched, so a sub-network's outputs are bit-identical whether later
  groups exist, are active, are trained later, or are absent (:meth:`GroupNet.extract`).
* **Search space.** :class:`~.space.GroupSpace`: ``g`` (last layer and classifier) and
  ``layer_g`` per layer, canonical when non-decreasing with depth. A layer with fewer
  groups than the next one prunes the next layer's later groups' inputs to the leading
  part of their weights; batch norm of such groups (and what reads them) is re-estimated
  by :meth:`GroupNet.recalibrate_bn`, the others keep their trained statistics.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from ..base import Config
from ..batchnorm import BatchNormState
from ..slicing import LeadingSlices
from .space import GroupSpace

__all__ = ["GroupNet", "GroupSubNet"]


class _Group(nn.Module):
    """One channel group of one layer: conv over its input groups, BN, ReLU, max-pool."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, pool: bool):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2,
                              bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.pool = pool

    def forward(self, inputs: Sequence[torch.Tensor], in_channels: int) -> torch.Tensor:
        # a fresh concatenation, whole or sliced weights made contiguous: the same
        # operation on the same tensors whatever else the network holds
        x = inputs[0] if len(inputs) == 1 else torch.cat(list(inputs), 1)
        w = self.conv.weight
        if w.shape[1] != in_channels:
            w = w[:, :in_channels].contiguous()
        y = F.relu(self.bn(F.conv2d(x, w, None, 1, self.conv.padding)))
        return F.max_pool2d(y, 2) if self.pool else y


def _run(layers: Sequence[Sequence[_Group]], heads: Sequence[nn.Module],
         counts: Sequence[int], channels: Sequence[int], x: torch.Tensor) -> torch.Tensor:
    """The forward pass of a sub-network with ``counts[l]`` active groups per layer;
    ``channels[l]`` is each group's width."""
    feats = [x]
    for li, (groups, n) in enumerate(zip(layers, counts, strict=True)):
        out = []
        for i in range(n):
            if li == 0:
                out.append(groups[i](feats, x.shape[1]))
            else:
                k = min(i + 1, len(feats))
                out.append(groups[i](feats[:k], k * channels[li - 1]))
        feats = out
    pooled = [F.adaptive_avg_pool2d(t, 1).flatten(1) for t in feats]
    z = pooled[0] if len(pooled) == 1 else torch.cat(pooled, 1)
    return heads[counts[-1] - 1](z)


def _group_lists(layers: nn.ModuleList) -> list[list[_Group]]:
    return [[cast(_Group, g) for g in cast(nn.ModuleList, layer)] for layer in layers]


def _resize(x: torch.Tensor, r: int) -> torch.Tensor:
    if x.shape[-1] != r or x.shape[-2] != r:
        x = F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False)
    return x


class GroupSubNet(nn.Module):
    """A standalone sub-network: only its groups' weights (sliced to what they read),
    batch norms and its head, computing exactly what the activated :class:`GroupNet` does."""

    def __init__(self, *, layers: list[list[_Group]], head: nn.Module, counts: list[int],
                 channels: list[int], resolution: int):
        super().__init__()
        self.layers = nn.ModuleList(nn.ModuleList(g) for g in layers)
        self.head = head
        self.counts, self.channels, self.resolution = list(counts), list(channels), resolution

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        heads: list[nn.Module] = [nn.Identity()] * (self.counts[-1] - 1) + [self.head]
        return _run(_group_lists(self.layers), heads, self.counts, self.channels,
                    _resize(x, self.resolution))


class GroupNet(LeadingSlices, BatchNormState, nn.Module):
    """The incremental channel-group super-network (a ``SuperNet``; see the module doc).

    Args:
        n_classes: classifier outputs.
        groups: channel groups per layer (``G``).
        widths: output channels of each convolution layer with all groups (each a
            multiple of ``groups``).
        kernels: kernel size of each layer (odd).
        pools: indices of the layers followed by a 2x2 max-pool.
        in_channels: image channels.
        resolution: input size the network runs at (inputs of other sizes are resized).
        space: a reduced design space (``GroupSpace.to_dict()``) instead of the full one.

    Raises:
        ValueError: a bad argument, named with what is allowed.
    """

    def __init__(self, *, n_classes: int = 10, groups: int = 4,
                 widths: Sequence[int] = (64, 128, 192, 192, 128),
                 kernels: Sequence[int] = (5, 3, 3, 3, 3), pools: Sequence[int] = (0, 1, 4),
                 in_channels: int = 3, resolution: int = 32,
                 space: dict[str, Any] | None = None):
        super().__init__()
        _check_args(n_classes=n_classes, groups=groups, widths=widths, kernels=kernels,
                    pools=pools, in_channels=in_channels, resolution=resolution)
        self._kwargs: dict[str, Any] = dict(
            n_classes=n_classes, groups=groups, widths=list(widths), kernels=list(kernels),
            pools=list(pools), in_channels=in_channels, resolution=resolution, space=space)
        self.groups, self.resolution, self.in_channels = groups, resolution, in_channels
        self.channels = [w // groups for w in widths]
        layers = []
        for li, (c, k) in enumerate(zip(self.channels, kernels, strict=True)):
            layers.append(nn.ModuleList(
                _Group(in_channels if li == 0 else (i + 1) * self.channels[li - 1], c, k,
                       li in pools) for i in range(groups)))
        self.layers = nn.ModuleList(layers)
        self.heads = nn.ModuleList(nn.Linear((k + 1) * self.channels[-1], n_classes)
                                   for k in range(groups))
        full = GroupSpace.build(groups=groups, layers=len(widths))
        self.space: GroupSpace = (cast(GroupSpace, GroupSpace.from_dict(space)) if space
                                  else full)
        if self.space.to_dict()["dimensions"].keys() != full.to_dict()["dimensions"].keys() or \
                self.space.genome_length != full.genome_length:
            raise ValueError(f"groupnet: space {space!r:.200} does not fit {len(widths)} layers")
        for name, dims in self.space.dimensions.items():
            for i, ch in enumerate(dims):
                bad = [c for c in ch if c not in range(1, groups + 1)]
                if bad:
                    raise ValueError(f"groupnet: space {name}[{i}] has choices {bad} outside "
                                     f"1..{groups}")
        self.active: Config = self.space.largest()

    # -- SuperNet protocol ---------------------------------------------------------------
    def spec(self) -> dict[str, Any]:
        """``{"name", "kwargs", "target"}`` (see ``SuperNet.spec``)."""
        from switchnas.runtime import supernet_name

        cls = type(self)
        return {"name": supernet_name(cls), "kwargs": copy.deepcopy(self._kwargs),
                "target": f"{cls.__module__}:{cls.__qualname__}"}

    def activate(self, config: Mapping[str, Any]) -> None:
        """Make ``config`` the active sub-network (validated; raises ``ValueError``)."""
        self.active = self.space.validate(config)

    def counts(self, config: Mapping[str, Any] | None = None) -> list[int]:
        """Active groups of every layer of ``config`` (default: the active one)."""
        cfg = self.active if config is None else self.space.validate(config)
        return self.space.effective(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _run(_group_lists(self.layers), list(self.heads), self.counts(), self.channels,
                    _resize(x, self.resolution))

    def extract(self, config: Mapping[str, Any]) -> GroupSubNet:
        """A standalone copy of ``config``: its groups' weights sliced to what they read,
        later groups absent; outputs bit-identical to the activated super-net's."""
        counts = self.counts(config)
        layers: list[list[_Group]] = []
        for li, n in enumerate(counts):
            out = []
            for i in range(n):
                src = _group_lists(self.layers)[li][i]
                reads = (self.in_channels if li == 0
                         else min(i + 1, counts[li - 1]) * self.channels[li - 1])
                g = _Group(reads, self.channels[li], src.conv.kernel_size[0], src.pool)
                with torch.no_grad():
                    g.conv.weight.copy_(src.conv.weight[:, :reads])
                g.bn.load_state_dict(src.bn.state_dict())
                out.append(g)
            layers.append(out)
        head = copy.deepcopy(self.heads[counts[-1] - 1])
        sub = GroupSubNet(layers=layers, head=head, counts=counts, channels=self.channels,
                          resolution=self.resolution)
        p = next(self.parameters())
        return sub.to(device=p.device, dtype=p.dtype).train(self.training)

    def example_input(self, config: Mapping[str, Any], batch: int = 1) -> torch.Tensor:
        self.space.validate(config)
        return torch.randn(batch, self.in_channels, self.resolution, self.resolution)

    def pruned_groups(self, config: Mapping[str, Any]) -> list[tuple[int, int]]:
        """``(layer, group)`` (0-based) of the active groups whose input differs from the
        one they were trained on: groups reading a pruned previous layer, and every group
        that reads one of those. Their batch-norm statistics need re-estimating."""
        counts = self.counts(config)
        out: list[tuple[int, int]] = []
        prev: set[int] = set()
        for li, n in enumerate(counts):
            now = set()
            for i in range(n):
                if li > 0 and (i + 1 > counts[li - 1] or any(j in prev for j in range(i + 1))):
                    now.add(i)
            out += [(li, i) for i in sorted(now)]
            prev = now
        return out

    @torch.no_grad()
    def recalibrate_bn(self, config: Mapping[str, Any], batches: Iterable[torch.Tensor]) -> None:
        """Activate ``config`` and re-estimate (cumulative average over ``batches``) the
        batch-norm statistics of its pruned groups (:meth:`pruned_groups`); every other
        group keeps its trained statistics, so a uniform config is left bit-identical.

        Raises:
            ValueError: there are pruned groups and ``batches`` is empty.
        """
        self.activate(config)
        pruned = self.pruned_groups(config)
        if not pruned:
            return
        was_training = self.training
        groups = _group_lists(self.layers)
        bns = [groups[li][i].bn for li, i in pruned]
        momenta = [m.momentum for m in bns]
        self.eval()
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
            m.train()
        seen = 0
        try:
            for x in batches:
                self(x)
                seen += 1
        finally:
            for m, mom in zip(bns, momenta, strict=True):
                m.momentum = mom
            self.train(was_training)
        if seen == 0:
            raise ValueError("recalibrate_bn got no batches")

    # -- weights -------------------------------------------------------------------------
    def group_parameters(self, k: int) -> list[nn.Parameter]:
        """The parameters that group ``k`` (1-based) adds: its convolution and batch norm
        in every layer, and the head for ``k`` groups.

        Raises:
            ValueError: ``k`` is not in ``1..groups``.
        """
        if not 1 <= k <= self.groups:
            raise ValueError(f"group {k} does not exist; choose 1..{self.groups}")
        params = [p for layer in _group_lists(self.layers) for p in layer[k - 1].parameters()]
        return params + list(self.heads[k - 1].parameters())

    def group_modules(self, k: int) -> list[nn.Module]:
        """The modules of group ``k`` (1-based): its group of every layer and its head."""
        return [layer[k - 1] for layer in _group_lists(self.layers)] + [self.heads[k - 1]]

    def load_weights(self, path: str | Path) -> None:
        """Load a switchnas ``supernet.safetensors`` (the train stage's artifact).

        Raises:
            FileNotFoundError: no such file.
        """
        from safetensors.torch import load_file

        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"supernet weights file {str(p)!r} does not exist")
        self.load_state_dict(load_file(str(p)))

    # -- weight slices (bundles) ---------------------------------------------------------
    def used_extents(self, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        """Shape of the leading slice of each state tensor that ``config`` reads: its
        groups' convolutions (input channels cut to the groups they read), batch norms
        and its head. Later groups' tensors are absent. Works on the ``meta`` device."""
        counts = self.counts(config)
        state = self.state_dict(keep_vars=True)
        out: dict[str, tuple[int, ...]] = {}
        for li, n in enumerate(counts):
            for i in range(n):
                prefix = f"layers.{li}.{i}."
                reads = (self.in_channels if li == 0
                         else min(i + 1, counts[li - 1]) * self.channels[li - 1])
                for k, t in state.items():
                    if k.startswith(prefix):
                        shape = tuple(t.shape)
                        out[k] = (shape[0], reads, *shape[2:]) if k.endswith("conv.weight") \
                            else shape
        h = f"heads.{counts[-1] - 1}."
        out.update({k: tuple(t.shape) for k, t in state.items() if k.startswith(h)})
        return out


def _check_args(*, n_classes: int, groups: int, widths: Sequence[int], kernels: Sequence[int],
                pools: Sequence[int], in_channels: int, resolution: int) -> None:
    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if not is_int(n_classes) or n_classes < 2:
        raise ValueError(f"groupnet: n_classes={n_classes!r} must be an int >= 2")
    if not is_int(groups) or not 1 <= groups <= 16:
        raise ValueError(f"groupnet: groups={groups!r} must be an int in 1..16")
    if not widths or len(widths) > 16:
        raise ValueError(f"groupnet: widths={list(widths)!r} must list 1..16 layers")
    bad = [w for w in widths if not is_int(w) or w < groups or w % groups or w > 4096]
    if bad:
        raise ValueError(f"groupnet: widths {bad} must be multiples of groups={groups} "
                         "(at most 4096)")
    if len(kernels) != len(widths) or any(not is_int(k) or k < 1 or k % 2 == 0 or k > 11
                                          for k in kernels):
        raise ValueError(f"groupnet: kernels={list(kernels)!r} must be {len(widths)} odd ints "
                         "in 1..11 (one per layer of widths)")
    if any(not is_int(p) or not 0 <= p < len(widths) for p in pools) or \
            len(set(pools)) != len(pools):
        raise ValueError(f"groupnet: pools={list(pools)!r} must be distinct layer indices "
                         f"in 0..{len(widths) - 1}")
    if not is_int(in_channels) or not 1 <= in_channels <= 16:
        raise ValueError(f"groupnet: in_channels={in_channels!r} must be an int in 1..16")
    if not is_int(resolution) or not 2 ** len(pools) <= resolution <= 1024:
        raise ValueError(f"groupnet: resolution={resolution!r} must be an int in "
                         f"{2 ** len(pools)}..1024 ({len(pools)} max-pools halve it)")
