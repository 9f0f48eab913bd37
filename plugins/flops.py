"""``flops``: analytic cost of a sub-network (MACs, parameters, activation memory).

Nothing is timed. One forward pass with hooks on the convolution, linear and batch-norm
layers counts:

* ``macs``: multiply-accumulates of convolutions and linear layers (how OFA counts FLOPs:
  batch-norm, activations, pooling and residual additions are not counted);
* ``params``: parameters of the whole module (each shared tensor once);
* ``activation_bytes``: bytes of every hooked layer's output, summed (memory traffic of
  activations written);
* ``peak_activation_bytes``: the largest input + output of one hooked layer (a lower bound
  on the working memory of a layer-by-layer runtime).

So that the result fits the :class:`~switchnas.plugins.base.Measurement` contract,
``samples_ms`` holds one *proxy latency*, ``macs / (gmacs_per_s * 1e6)`` ms: the time a
device sustaining ``gmacs_per_s`` GMAC/s would need. It is deterministic (``rel_spread``
is 0) and only as good as MACs are at ranking sub-networks on your device; ``meta`` holds
the counts themselves (``meta["proxy"] = True`` marks the number as not measured).
"""

from __future__ import annotations

from typing import Any

from .base import Measurement
from .measure import MeasurementError, call_module, input_shapes, with_batch_size

__all__ = ["FlopsPlugin", "count_cost"]


def _nbytes(x: Any) -> int:
    import torch

    if isinstance(x, torch.Tensor):
        return x.numel() * x.element_size()
    if isinstance(x, (tuple, list)):
        return sum(_nbytes(y) for y in x)
    return 0


def count_cost(module: Any, example_input: Any) -> dict[str, int]:
    """MACs, parameters and activation bytes of one forward pass of ``module``.

    Returns:
        ``{"macs", "params", "activation_bytes", "peak_activation_bytes", "layers"}``
        (``layers``: how many hooked layers ran).
    """
    import torch
    from torch import nn

    counts = {"macs": 0, "activation_bytes": 0, "peak_activation_bytes": 0, "layers": 0}

    def hook(mod: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        out = output[0] if isinstance(output, (tuple, list)) else output
        if isinstance(mod, nn.modules.conv._ConvNd):
            k = 1
            for s in mod.kernel_size:
                k *= int(s)
            counts["macs"] += out.numel() * (mod.in_channels // mod.groups) * k
        elif isinstance(mod, nn.Linear):
            counts["macs"] += out.numel() * mod.in_features
        out_b = _nbytes(output)
        counts["activation_bytes"] += out_b
        counts["peak_activation_bytes"] = max(counts["peak_activation_bytes"],
                                              _nbytes(inputs) + out_b)
        counts["layers"] += 1

    kinds = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._BatchNorm)
    handles = []
    if isinstance(module, nn.Module):
        handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, kinds)]
    was_training = getattr(module, "training", None)
    try:
        if isinstance(module, nn.Module):
            module.eval()
        with torch.inference_mode():
            call_module(module, example_input)
    finally:
        for h in handles:
            h.remove()
        if was_training and isinstance(module, nn.Module):
            module.train()
    params = 0
    if isinstance(module, nn.Module):
        params = sum(p.numel() for p in module.parameters())  # parameters() dedupes shared
    return {**counts, "params": params}


class FlopsPlugin:
    """Analytic cost; ``samples_ms`` is a MACs-derived proxy (see the module docstring).

    Args:
        gmacs_per_s: sustained throughput assumed for the proxy latency.
        batch_size: batch size of the counted input (MACs scale with it).
    """

    name = "flops"
    #: computed, not timed: batches skip the reference and the rounds
    deterministic = True

    def __init__(self, *, gmacs_per_s: float = 1.0, batch_size: int = 1):
        if not gmacs_per_s > 0 or batch_size < 1:
            raise ValueError(f"flops plugin needs gmacs_per_s > 0 and batch_size >= 1, got "
                             f"gmacs_per_s={gmacs_per_s}, batch_size={batch_size}")
        self.gmacs_per_s = gmacs_per_s
        self.batch_size = batch_size

    def describe(self) -> dict[str, Any]:
        return {
            "plugin": self.name,
            "device": "analytic",
            "gmacs_per_s": self.gmacs_per_s,
            "batch_size": self.batch_size,
            "counts": "conv+linear MACs",
        }

    def measure(self, module: Any, example_input: Any) -> Measurement:
        x = with_batch_size(example_input, self.batch_size)
        try:
            cost = count_cost(module, x)
        except Exception as exc:
            raise MeasurementError(f"hardware plugin {self.name}: measured module raised "
                                   f"{type(exc).__name__}: {exc}") from exc
        proxy_ms = cost["macs"] / (self.gmacs_per_s * 1e6)
        return Measurement(samples_ms=(proxy_ms,),
                           meta={**cost, "proxy": True, "input_shapes": input_shapes(x)})
