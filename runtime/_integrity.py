"""What a bundle must hold, and the fingerprint that proves its members compute what
they computed at export.

* :func:`plan_layout`: the exact name, shape and dtype of every tensor a bundle stores for
  its members, computed from the super-net class alone (on the ``meta`` device at load
  time, so nothing is allocated before the file is known to fit).
* :func:`probe_input`, :func:`fingerprint`, :func:`compare_fingerprints`: each member runs
  once on a fixed probe input (the member's ``example_input`` at batch
  :data:`PROBE_BATCH`, drawn under ``torch.manual_seed(PROBE_SEED)`` in a forked RNG);
  a few numbers of its output are recorded at export and compared at load.

Recorded numbers: the output's shape and dtype, its sum, sum of absolute values, sum of
squares, and the sums of :data:`N_CHUNKS` contiguous chunks of the flattened output
(single elements for outputs of up to 64 elements).

Tolerance (the loader's constant, never read from a bundle): each number must agree
within :data:`RTOL` of its scale (the sums against the sum of absolute values, each chunk
against a chunk's mean absolute sum plus the output's root mean square). Verification
runs on the CPU, before the weights move to ``device``; float32 differences between CPUs,
thread counts or GPU kernels are around 1e-6 to 1e-4 of that scale, while an edited
member config, other weights or another class count change it by far more. Integer
outputs (token ids) must agree exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

__all__ = ["PROBE_BATCH", "PROBE_SEED", "RTOL", "compare_fingerprints", "fingerprint",
           "plan_layout", "probe_input"]

PROBE_SEED = 0
PROBE_BATCH = 2
RTOL = 1e-3
N_CHUNKS = 64
BN_SUFFIXES = (".running_mean", ".running_var", ".num_batches_tracked")

Shape = tuple[int, ...]


def plan_layout(net: Any, configs: Sequence[Mapping[str, Any]], *, sliced: bool
                ) -> tuple[dict[str, Shape], list[dict[str, Shape]], dict[str, torch.dtype]]:
    """The tensors a bundle of ``configs`` holds.

    Args:
        net: the super-net (real or on the ``meta`` device; then call this inside
            ``torch.device("meta")`` so that probe inputs are made there too).
        configs: the members' validated configs.
        sliced: ``True`` for the ``"slices"`` layout (``net.used_extents``: the union of
            the leading slices the members read), ``False`` for ``"full"`` (every state
            tensor whole).

    Returns:
        ``(shared, bn, dtypes)``: shape per shared tensor name, per member the shape of
        each batch-norm statistic it reads, and every state tensor's dtype.
    """
    state = net.state_dict()
    bn_keys = set(net.bn_state())

    def is_bn(k: str) -> bool:
        return k in bn_keys or k.endswith(BN_SUFFIXES)

    dtypes = {k: t.dtype for k, t in state.items()}
    if not sliced:
        shared = {k: tuple(t.shape) for k, t in state.items() if not is_bn(k)}
        full_bn = {k: tuple(state[k].shape) for k in bn_keys if k in state}
        return shared, [dict(full_bn) for _ in configs], dtypes
    union: dict[str, Shape] = {}
    bn: list[dict[str, Shape]] = []
    for cfg in configs:
        ext = {k: tuple(int(n) for n in s) for k, s in net.used_extents(cfg).items()}
        for k, s in ext.items():
            union[k] = s if k not in union else tuple(
                max(a, b) for a, b in zip(union[k], s, strict=True))
        bn.append({k: s for k, s in ext.items() if k in bn_keys})
    return {k: s for k, s in union.items() if not is_bn(k)}, bn, dtypes


def probe_input(net: Any, config: Mapping[str, Any]) -> torch.Tensor:
    """The member's fixed probe input: its ``example_input`` at batch :data:`PROBE_BATCH`
    drawn with seed :data:`PROBE_SEED` (the global RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(PROBE_SEED)
        return net.example_input(config, batch=PROBE_BATCH)


def probe_summary(x: torch.Tensor) -> dict[str, Any]:
    d = x.detach().to("cpu", torch.float64)
    return {"seed": PROBE_SEED, "batch": PROBE_BATCH, "shape": list(x.shape),
            "dtype": str(x.dtype).removeprefix("torch."), "sum": float(d.sum()),
            "sq_sum": float((d * d).sum())}


def fingerprint(x: torch.Tensor, y: Any) -> dict[str, Any]:
    """Numbers recorded for one member: its probe ``x`` and its output ``y``.

    Raises:
        ValueError: ``y`` is not a tensor, is empty or not finite.
    """
    if not isinstance(y, torch.Tensor) or y.numel() == 0:
        raise ValueError(f"the member's output is {type(y).__name__}, not a non-empty tensor")
    d = y.detach().to("cpu", torch.float64).reshape(-1)
    if not bool(torch.isfinite(d).all()):
        raise ValueError("the member's output on the probe input is not finite")
    return {"probe": probe_summary(x),
            "output": {"shape": list(y.shape), "dtype": str(y.dtype).removeprefix("torch."),
                       "sum": float(d.sum()), "abs_sum": float(d.abs().sum()),
                       "sq_sum": float((d * d).sum()),
                       "chunks": [float(c.sum()) for c in d.tensor_split(min(N_CHUNKS,
                                                                             d.numel()))]}}


def compare_fingerprints(want: Mapping[str, Any], got: Mapping[str, Any]) -> str | None:
    """``None`` when ``got`` matches ``want`` (see the module docstring), else why not."""
    wp, gp = want["probe"], got["probe"]
    if (wp["shape"], wp["dtype"]) != (gp["shape"], gp["dtype"]):
        return (f"its probe input has shape {gp['shape']} {gp['dtype']}, at export "
                f"{wp['shape']} {wp['dtype']} (was its config changed?)")
    if any(
            abs(gp[k] - wp[k]) > 1e-6 * (abs(wp["sq_sum"]) + 1.0) for k in ("sum", "sq_sum")):
        return ("its probe input differs from the one at export (another torch version or "
                "example_input?); pass verify=False to skip the check")
    w, g = want["output"], got["output"]
    if w["shape"] != g["shape"] or w["dtype"] != g["dtype"]:
        return (f"its output on the probe input has shape {g['shape']} {g['dtype']}, at "
                f"export {w['shape']} {w['dtype']}")
    if len(w["chunks"]) != len(g["chunks"]):
        return "its fingerprint has another number of chunks than the format's"
    exact = not w["dtype"].startswith(("float", "bfloat", "complex"))
    n = max(1, math.prod(w["shape"]))
    rms = math.sqrt(max(w["sq_sum"], 0.0) / n)
    tol_sum = 0.0 if exact else RTOL * abs(w["abs_sum"]) + 1e-9
    checks = [("sum", w["sum"], g["sum"], tol_sum),
              ("sum of |y|", w["abs_sum"], g["abs_sum"], tol_sum),
              ("sum of squares", w["sq_sum"], g["sq_sum"],
               0.0 if exact else 2 * RTOL * abs(w["sq_sum"]) + 1e-9)]
    k = len(w["chunks"])
    tol_chunk = 0.0 if exact else RTOL * (abs(w["abs_sum"]) / max(k, 1) + rms) + 1e-9
    checks += [(f"the sum of chunk {i} of {k}", a, b, tol_chunk)
               for i, (a, b) in enumerate(zip(w["chunks"], g["chunks"], strict=True))]
    for what, a, b, tol in checks:
        if not abs(b - a) <= tol:
            return (f"its output on the probe input differs from export: {what} is {b:.6g}, "
                    f"was {a:.6g} (tolerance {tol:.3g})")
    return None
