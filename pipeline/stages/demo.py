"""Stage ``demo``: load the bundle with ``switchnas.runtime.load`` and replay a load
trace through its selector, printing the switches; then the family table.

The trace multiplies each measured inference time by a load factor (a co-running
process slowing the device down), which is what the selector observes.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from ..context import ConfigError, Context
from . import export

__all__ = ["run"]


def run(ctx: Context) -> dict[str, Any]:
    art = export.run(ctx)
    from switchnas.runtime import load  # the device-side API: torch, numpy, safetensors

    bundle = load(art.path)
    members = sorted(bundle.members, key=lambda m: m.latency_ms)
    dcfg = ctx.cfg.runtime_demo
    target = dcfg.target_ms
    now: dict[str, float] = {}
    if target is None:
        # the slowest member fits at no load, not under the trace's peak; measured now, as
        # one batch through the plugin's protocol, since the machine's level drifts
        now = _measure_members(ctx, bundle)
        target = 1.25 * max(now.values())
    if float(target) <= 0:
        raise ConfigError(f"runtime_demo.target_ms={target}: must be > 0")
    load_trace = list(dcfg.load)
    requests = int(dcfg.requests)
    selector = bundle.selector(target_ms=float(target))
    current = selector.current
    bundle.activate(current)
    switches = []
    lines = []
    # Run as the latencies were measured: the plugin's thread count, warm caches.
    threads = int(ctx.plugin.describe().get("threads", torch.get_num_threads()))
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    with torch.inference_mode():
        for m in members:
            bundle.activate(m.id)
            for _ in range(3):
                bundle(ctx.supernet.example_input(m.config, 1))
        bundle.activate(current)
        for i in range(requests):
            factor = float(load_trace[min(i * len(load_trace) // max(requests, 1),
                                          len(load_trace) - 1)])
            cfg = next(m.config for m in members if m.id == current)
            x = ctx.supernet.example_input(cfg, 1)
            t0 = time.perf_counter()
            bundle(x)
            observed = (time.perf_counter() - t0) * 1e3 * factor
            nxt = selector.step(observed)
            if nxt != current:
                t1 = time.perf_counter()
                bundle.activate(nxt)
                sw_ms = (time.perf_counter() - t1) * 1e3
                switches.append({"request": i, "from": current, "to": nxt, "load": factor,
                                 "observed_ms": observed, "switch_ms": sw_ms})
                lines.append(f"  request {i:3d}: load x{factor:.1f}, observed {observed:7.2f} ms,"
                             f" switch {current} -> {nxt} ({sw_ms:.3f} ms)")
                current = nxt
    torch.set_num_threads(previous_threads)
    print(f"\nruntime demo: target {float(target):.2f} ms, {requests} requests, "
          f"{len(switches)} switches")
    if now:
        print("  members measured now (ms): " + ", ".join(
            f"{k} {v:.3f}" for k, v in sorted(now.items(), key=lambda kv: kv[1])))
    print("\n".join(lines) if lines else "  (no switch needed)")
    return {"target_ms": float(target), "switches": switches, "members_now_ms": now}


def _measure_members(ctx: Context, bundle: Any) -> dict[str, float]:
    """Each member's latency on the run's plugin now (one interleaved batch)."""
    from switchnas.plugins.batch import measure_batch
    from switchnas.plugins.measure import MeasurementError

    from ._measure import batch_policy

    work = [(bundle.extract(m.id), ctx.supernet.example_input(m.config, 1))
            for m in bundle.members]
    res = measure_batch(ctx.plugin, work, policy=batch_policy(ctx, 3), progress=False)
    out = {m.id: r.median_ms for m, r in zip(bundle.members, res.measurements, strict=True)
           if r is not None}
    if not out:
        raise MeasurementError(f"demo: no bundle member could be measured: {res.failures[:3]}")
    return out
