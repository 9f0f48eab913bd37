"""The Fluid dynamic network (after Xun et al., "Fluid Dynamic DNNs for reliable and
adaptive distributed inference", DATE 2024): ``D`` sub-networks, one per device, that each
classify alone and whose union combines.

Decisions the paper leaves open, as implemented here:

* **Split.** The network is ``D`` independent *columns* (``devices``), each a small CNN
  ``conv3x3 -> ReLU -> maxpool -> conv3x3 -> ReLU -> maxpool -> conv3x3 -> ReLU -> global
  average -> linear`` with ``channels`` output channels per convolution at full width.
  The union has ``D * channels`` channels per layer (the static baseline of
  :mod:`.baselines` has exactly these channels, densely connected).
* **Connectivity.** None between columns (block-diagonal): a column never reads another's
  activations, so a device needs nothing from the others and keeps serving when they fail.
  Within a column the width is elastic (``widths``, fractions of its channels; a
  narrower column uses the leading channels of every layer, as slimmable networks do).
* **Combination.** The union's output is the mean of the active columns' logits.
* **Schedule.** Nested incremental training (:mod:`.training`): column 1 is trained alone;
  column ``k`` is then trained with columns ``1..k-1`` frozen, on the mean over every subset
  ``S`` of ``{1..k}`` that contains ``k`` of the cross-entropy of ``S``'s combined output
  (so column ``k`` works alone *and* complements the earlier ones). Earlier columns never
  change: what a surviving subset computes is bit-identical before and after later columns
  were trained or loaded.
* **No normalisation layers**, so a column's output depends on nothing but its weights and
  its width (``recalibrate_bn`` has nothing to do; ``bn_state`` is empty).

Search space (:class:`FluidSpace`): ``on`` (one 0/1 per column: is it active) and ``w``
(one width per column). The width of an inactive column is canonically its smallest
choice, and a config with no active column means column 1 alone.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..base import Config
from ..space import ChoiceSpace, Dimension

__all__ = ["FEATURES", "Column", "FluidEnsemble", "FluidNet", "FluidSpace", "check_cnn_args",
           "pool_features"]


def check_cnn_args(*, n_classes: int, channels: Sequence[int], resolution: int) -> None:
    """Raise ``ValueError`` naming a bad network argument."""
    if int(n_classes) < 2:
        raise ValueError(f"n_classes={n_classes} must be >= 2")
    if len(channels) != 3 or any(int(c) < 1 for c in channels):
        raise ValueError(f"channels={list(channels)} must be 3 positive channel counts "
                         "(one per convolution)")
    if int(resolution) < 4:
        raise ValueError(f"resolution={resolution} must be >= 4")


class FluidSpace(ChoiceSpace):
    """``on``: per column 0 or 1; ``w``: per column a width fraction."""

    @classmethod
    def build(cls, devices: int, widths: Sequence[float], name: str = "fluid") -> FluidSpace:
        return cls(name, [Dimension("on", [[0, 1]] * devices),
                          Dimension("w", [[float(w) for w in widths]] * devices)])

    def canonical(self, config: Config) -> Config:
        """No active column means the first column that may be on; an inactive column's
        width is its smallest choice."""
        cfg = {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in config.items()}
        on, w = cfg["on"], cfg["w"]
        if not any(on):
            first = next((i for i, c in enumerate(self.dimension("on").choices) if 1 in c), 0)
            on[first] = 1
        for i, choices in enumerate(self.dimension("w").choices):
            if not on[i]:
                w[i] = choices[0]
        return cfg

    def canonical_genomes(self, genomes: Any) -> np.ndarray:
        g = self.check_genomes(genomes).copy()
        on_choices = self.dimension("on").choices
        if any(c != (0, 1) for c in on_choices):  # a restricted space: the row-wise rule
            return super().canonical_genomes(g)
        on, w = self.positions("on"), self.positions("w")
        block = g[:, on]
        block[block.sum(axis=1) == 0, 0] = 1
        g[:, on] = block
        widths = g[:, w]
        widths[block == 0] = 0
        g[:, w] = widths
        return g


#: the last convolution's map is average-pooled to POOL x POOL and flattened (channel-major,
#: so a channel's FEATURES features are contiguous and a narrower width is a prefix)
POOL = 2
FEATURES = POOL * POOL


def pool_features(x: torch.Tensor) -> torch.Tensor:
    return F.adaptive_avg_pool2d(x, POOL).flatten(1)


def _width(c: int, w: float) -> int:
    return max(1, int(round(c * w)))


class Column(nn.Module):
    """One sub-network: three 3x3 convolutions and a linear classifier, width-elastic."""

    def __init__(self, *, in_channels: int, channels: Sequence[int], n_classes: int):
        super().__init__()
        chans = [int(in_channels), *[int(c) for c in channels]]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in
                                   zip(chans[:-1], chans[1:], strict=True))
        self.head = nn.Linear(chans[-1] * FEATURES, n_classes)

    @property
    def conv_layers(self) -> list[nn.Conv2d]:
        """The convolutions, typed."""
        return [cast(nn.Conv2d, c) for c in self.convs]

    def forward(self, x: torch.Tensor, width: float = 1.0) -> torch.Tensor:
        """Logits of this column at ``width`` (fraction of its channels)."""
        c_in = x.shape[1]
        for i, conv in enumerate(self.conv_layers):
            c_out = _width(conv.out_channels, width)
            weight = conv.weight[:c_out, :c_in].contiguous()
            bias = conv.bias[:c_out].contiguous() if conv.bias is not None else None
            x = F.relu(F.group_norm(F.conv2d(x, weight, bias, padding=1), 1))
            x = F.max_pool2d(x, 2) if i < len(self.convs) - 1 else pool_features(x)
            c_in = c_out
        return F.linear(x, self.head.weight[:, :c_in * FEATURES].contiguous(), self.head.bias)

    @torch.no_grad()
    def sliced(self, width: float) -> Column:
        """A standalone copy holding only the channels of ``width``."""
        chans = [_width(c.out_channels, width) for c in self.conv_layers]
        out = Column(in_channels=self.conv_layers[0].in_channels, channels=chans,
                     n_classes=self.head.out_features)
        c_in = self.conv_layers[0].in_channels
        for src, dst, c in zip(self.conv_layers, out.conv_layers, chans, strict=True):
            dst.weight.copy_(src.weight[:c, :c_in])
            cast(torch.Tensor, dst.bias).copy_(cast(torch.Tensor, src.bias)[:c])
            c_in = c
        out.head.weight.copy_(self.head.weight[:, :c_in * FEATURES])
        out.head.bias.copy_(self.head.bias)
        return out


def _resize(x: torch.Tensor, r: int) -> torch.Tensor:
    if x.shape[-1] != r or x.shape[-2] != r:
        x = F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False)
    return x


class FluidEnsemble(nn.Module):
    """A standalone Fluid sub-network: the mean of its columns' logits."""

    def __init__(self, columns: Sequence[nn.Module], resolution: int):
        super().__init__()
        self.columns = nn.ModuleList(columns)
        self.resolution = int(resolution)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _resize(x, self.resolution)
        outs = [c(x) for c in self.columns]
        return torch.stack(outs).mean(dim=0)


class FluidNet(nn.Module):
    """The Fluid super-network: ``devices`` columns, any non-empty subset active.

    Args:
        n_classes: classes of the task.
        devices: number of columns (devices), 2 or more.
        channels: output channels of the three convolutions of one column at full width.
        widths: width fractions a column may run at (in (0, 1]).
        resolution: input resolution (inputs of another size are resized bilinearly).
        in_channels: input channels.
        space: a (reduced) space as a dict (``FluidSpace.to_dict()``); default the full one.

    Raises:
        ValueError: a bad argument, named.
    """

    space: FluidSpace

    def __init__(self, *, n_classes: int = 10, devices: int = 2,
                 channels: Sequence[int] = (16, 32, 64),
                 widths: Sequence[float] = (0.25, 0.5, 0.75, 1.0),
                 resolution: int = 32, in_channels: int = 3,
                 space: dict[str, Any] | None = None):
        super().__init__()
        check_cnn_args(n_classes=n_classes, channels=channels, resolution=resolution)
        if int(devices) < 2:
            raise ValueError(f"devices={devices} must be >= 2 (one column per device)")
        if not widths or any(not 0 < float(w) <= 1 for w in widths):
            raise ValueError(f"widths={list(widths)} must be fractions in (0, 1]")
        self._kwargs: dict[str, Any] = dict(
            n_classes=int(n_classes), devices=int(devices), channels=[int(c) for c in channels],
            widths=sorted({float(w) for w in widths}), resolution=int(resolution),
            in_channels=int(in_channels), space=space)
        self.devices, self.resolution = int(devices), int(resolution)
        self.columns = nn.ModuleList(
            Column(in_channels=in_channels, channels=channels, n_classes=n_classes)
            for _ in range(self.devices))
        full = FluidSpace.build(self.devices, self._kwargs["widths"])
        sp = FluidSpace.from_dict(space) if space else full
        if not isinstance(sp, FluidSpace) or sp.dimension("on").length != self.devices:
            raise ValueError(f"space {space!r:.200} does not fit {self.devices} devices")
        self.space = sp
        self.active: Config = sp.largest()

    # -- SuperNet protocol ---------------------------------------------------------------
    def spec(self) -> dict[str, Any]:
        """``{"name", "kwargs", "target"}`` (see ``SuperNet.spec``)."""
        from switchnas.runtime import supernet_name

        cls = type(self)
        return {"name": supernet_name(cls), "kwargs": copy.deepcopy(self._kwargs),
                "target": f"{cls.__module__}:{cls.__qualname__}"}

    def activate(self, config: Mapping[str, Any]) -> None:
        self.active = self.space.validate(config)

    @staticmethod
    def members(config: Mapping[str, Any]) -> list[tuple[int, float]]:
        """``(column index, width)`` of each active column of ``config``."""
        return [(i, float(w)) for i, (on, w) in enumerate(zip(config["on"], config["w"],
                                                              strict=True)) if on]

    def column(self, index: int) -> Column:
        """Column ``index`` (the sub-network of device ``index``)."""
        return cast(Column, self.columns[index])

    def column_logits(self, x: torch.Tensor, column: int, width: float = 1.0) -> torch.Tensor:
        """Logits of one column alone (what its device computes)."""
        return self.column(column)(_resize(x, self.resolution), width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _resize(x, self.resolution)
        outs = [self.column(i)(x, w) for i, w in self.members(self.active)]
        return torch.stack(outs).mean(dim=0)

    def extract(self, config: Mapping[str, Any]) -> nn.Module:
        cfg = self.space.validate(config)
        cols = [self.column(i).sliced(w) for i, w in self.members(cfg)]
        return FluidEnsemble(cols, self.resolution).train(self.training)

    def example_input(self, config: Mapping[str, Any], batch: int = 1) -> torch.Tensor:
        self.space.validate(config)
        return torch.randn(batch, self._kwargs["in_channels"], self.resolution, self.resolution)

    def recalibrate_bn(self, config: Mapping[str, Any], batches: Iterable[torch.Tensor]) -> None:
        """Activate ``config``; there are no batch-norm statistics to re-estimate."""
        self.activate(config)

    def bn_state(self) -> dict[str, torch.Tensor]:
        return {}

    def load_bn_state(self, state: Mapping[str, torch.Tensor]) -> None:
        if state:
            raise ValueError(f"FluidNet has no batch-norm statistics; got {sorted(state)[:5]}")

    def load_weights(self, path: str | Path) -> None:
        """Load a ``supernet.safetensors`` of a train stage (``supernet.weights``)."""
        from safetensors.torch import load_file

        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"supernet weights file {str(p)!r} does not exist")
        self.load_state_dict(load_file(str(p)))

    def __deepcopy__(self, memo: dict[int, Any]) -> FluidNet:
        new = type(self)(**self._kwargs)
        new.load_state_dict(copy.deepcopy(self.state_dict(), memo))
        new.activate(self.active)
        return new
