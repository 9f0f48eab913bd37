"""What the three OFA spaces share: a ``SuperNet`` wrapper around an ``ofa`` network.

Each space module (``mbv3``, ``resnet50``, ``proxyless``) defines its :class:`ChoiceSpace`
subclass and a subclass of :class:`OFASuperNet` that builds its ``ofa`` network and maps
a config to ``set_active_subnet`` arguments. Everything else (resolution handling,
extraction, BN recalibration and statistics, checkpoints) lives here once.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..base import Config
from ..batchnorm import BatchNormState
from ..slicing import LeadingSlices
from ..space import ChoiceSpace

__all__ = ["OFASuperNet", "load_ofa_checkpoint"]


class _Resized(nn.Module):
    """Resizes its input to the sub-network's resolution, then runs the network.

    The bundle and the extracted module share this behaviour, so feeding either any
    image size gives the same outputs.
    """

    def __init__(self, body: nn.Module, resolution: int):
        super().__init__()
        self.body = body
        self.resolution = int(resolution)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.resolution or x.shape[-2] != self.resolution:
            x = F.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear",
                              align_corners=False)
        return self.body(x)


class OFASuperNet(LeadingSlices, BatchNormState, nn.Module):
    """Base class: ``self.net`` is the ``ofa`` dynamic network, ``self.space`` its space."""

    space: ChoiceSpace

    net: Any  # the ofa package's (untyped) dynamic network

    def __init__(self, net: nn.Module, space: ChoiceSpace, kwargs: dict[str, Any]):
        super().__init__()
        self.net = net
        self.space = space
        self._kwargs = dict(kwargs)
        self.active: Config = space.largest()
        self.activate(self.active)

    # -- subclasses ----------------------------------------------------------------------
    def _subnet_args(self, config: Config) -> dict[str, Any]:
        """Arguments of ``self.net.set_active_subnet`` for ``config``."""
        raise NotImplementedError

    # -- SuperNet protocol ---------------------------------------------------------------
    def spec(self) -> dict[str, Any]:
        """``{"name", "kwargs", "target"}``: the registered name bundles use (``None`` for
        an unregistered subclass), the constructor arguments, and the import path (for
        ``trust_target`` users only; bundles never store it under a registered name)."""
        from switchnas.runtime import supernet_name

        cls = type(self)
        return {"name": supernet_name(cls), "kwargs": copy.deepcopy(self._kwargs),
                "target": f"{cls.__module__}:{cls.__qualname__}"}

    def activate(self, config: Mapping[str, Any]) -> None:
        cfg = self.space.validate(config)
        self.net.set_active_subnet(**self._subnet_args(cfg))
        self.active = cfg

    def resolution(self, config: Mapping[str, Any] | None = None) -> int:
        return int((config or self.active)["r"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.resolution()
        if x.shape[-1] != r or x.shape[-2] != r:
            x = F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False)
        return self.net(x)

    def extract(self, config: Mapping[str, Any]) -> nn.Module:
        previous = self.active
        self.activate(config)
        try:
            body = self.net.get_active_subnet(preserve_weight=True)
        finally:
            self.activate(previous)
        wrapper = _Resized(body, self.resolution(self.space.validate(config)))
        return wrapper.train(self.training)

    def example_input(self, config: Mapping[str, Any], batch: int = 1) -> torch.Tensor:
        r = self.resolution(self.space.validate(config))
        return torch.randn(batch, 3, r, r)

    @torch.no_grad()
    def recalibrate_bn(self, config: Mapping[str, Any], batches: Iterable[torch.Tensor]) -> None:
        """Cumulative-average BN statistics of ``config`` over ``batches`` (OFA's recipe)."""
        self.activate(config)
        was_training = self.training
        bns = self._bn_modules()
        momenta = [m.momentum for _, m in bns]
        for _, m in bns:
            m.reset_running_stats()
            m.momentum = None
        self.train()
        seen = 0
        for x in batches:
            self(x)
            seen += 1
        for (_, m), mom in zip(bns, momenta, strict=True):
            m.momentum = mom
        self.train(was_training)
        if seen == 0:
            raise ValueError("recalibrate_bn got no batches")

    def load_weights(self, path: str | Path) -> None:
        """Load an official OFA checkpoint (``{"state_dict": ...}``) or a plain state dict."""
        self.net.load_state_dict(load_ofa_checkpoint(path))

    def clone_weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.state_dict().items()}

    def __deepcopy__(self, memo: dict[int, Any]) -> OFASuperNet:  # pragma: no cover - torch
        new = type(self)(**self._kwargs)
        new.load_state_dict(copy.deepcopy(self.state_dict(), memo))
        new.activate(self.active)
        return new

    # -- weight slices (bundles) ---------------------------------------------------------
    @torch.no_grad()
    def used_extents(self, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        """Shape of the leading slice of each state tensor that ``config`` reads.

        Found by running ``config`` once (eval mode, batch 1) and recording, through a
        ``TorchFunctionMode``, every parameter or buffer that an op uses: a tensor passed
        whole counts whole; ``t[:a, :b]`` counts ``(a, b, ...)``; any other index (a centre
        crop ``t[..., 1:6, 1:6]``, an integer, a step) counts its dimension whole, so the
        extent never underestimates. Tensors the sub-network never touches (blocks beyond
        its depth, kernel-transform matrices of unused kernel sizes) are absent.
        """
        from torch.overrides import TorchFunctionMode

        tensors = {id(t): (n, t) for n, t in self.state_dict(keep_vars=True).items()}
        used: dict[str, list[int]] = {}
        meta = {"size", "dim", "numel", "stride", "is_contiguous", "data_ptr", "__get__",
                "element_size", "type", "__len__"}

        def mark(name: str, shape: tuple[int, ...]) -> None:
            prev = used.get(name)
            used[name] = list(shape) if prev is None else [max(a, b) for a, b in
                                                           zip(prev, shape, strict=True)]

        def extent(t: torch.Tensor, index: Any) -> tuple[int, ...]:
            idx = index if isinstance(index, tuple) else (index,)
            full = tuple(t.shape)
            if any(i is Ellipsis or i is None for i in idx) or len(idx) > t.dim():
                return full
            out = list(full)
            for d, i in enumerate(idx):
                if (isinstance(i, slice) and i.step in (None, 1) and i.start in (None, 0)
                        and isinstance(i.stop, (int, type(None)))):
                    out[d] = full[d] if i.stop is None else min(max(int(i.stop), 0), full[d])
            return tuple(out)

        class _Recorder(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
                kwargs = kwargs or {}
                name = getattr(func, "__name__", "")
                if name == "__getitem__" and id(args[0]) in tensors:
                    n, t = tensors[id(args[0])]
                    mark(n, extent(t, args[1]))
                elif name not in meta:
                    for a in (*args, *kwargs.values()):
                        for x in (a if isinstance(a, (list, tuple)) else (a,)):
                            if isinstance(x, torch.Tensor) and id(x) in tensors:
                                n, t = tensors[id(x)]
                                mark(n, tuple(t.shape))
                return func(*args, **kwargs)

        previous, was_training = self.active, self.training
        self.activate(config)
        self.eval()
        try:
            x = self.example_input(config, batch=1)
            with _Recorder():
                self(x)
        finally:
            self.activate(previous)
            self.train(was_training)
        return {n: tuple(s) for n, s in used.items()}


def load_ofa_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint in the format of OFA's released files (a dict whose
    ``state_dict`` entry holds the tensors) or a plain state dict, without pickle code
    execution (``weights_only=True``), or a switchnas ``supernet.safetensors``."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"supernet weights file {str(p)!r} does not exist")
    if p.suffix == ".safetensors":  # a switchnas train artifact
        from safetensors.torch import load_file

        state = load_file(str(p))
        return {k[len("net."):]: v for k, v in state.items() if k.startswith("net.")} or state
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same message
        raise ValueError(f"cannot read supernet weights {str(p)!r}: {exc}") from exc
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{str(p)!r} holds no state dict of tensors (expected OFA's "
                         "{'state_dict': {...}} format)")
    return obj
