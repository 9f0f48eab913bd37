"""Stage ``demo``: load the bundle with ``switchnas.runtime.load`` and replay a load
trace through its selector, printing the switches; then the family table.

Every request runs the active member through the bundle. What the selector observes is
that member's latency **on the run's hardware plugin** (the hardware the family was
chosen for) multiplied by the trace's load factor (a co-running process slowing the
device down): a timing plugin (``cpu``, ``onnxruntime``, ``cuda``) times one run of the
member its own way; a deterministic plugin (``lut``, ``flops``) gives its computed value.
The target is set from the same plugin, so target and observations are in one unit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import torch

from ..context import ConfigError, Context
from . import export
from ._util import say, workload

__all__ = ["member_observer", "run"]


def run(ctx: Context) -> dict[str, Any]:
    art = export.run(ctx)
    from switchnas.runtime import load  # the device-side API: torch, numpy, safetensors

    bundle = load(art.path)
    members = sorted(bundle.members, key=lambda m: m.latency_ms)
    dcfg = ctx.cfg.runtime_demo
    target = dcfg.target_ms
    plugin = ctx.plugin
    work = _member_workloads(ctx, bundle)
    now: dict[str, float] = {}
    if target is None:
        # the slowest member fits at no load, not under the trace's peak; measured now, as
        # one batch through the plugin's protocol, since the machine's level drifts
        now = _measure_members(ctx, bundle, work)
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
    threads = int(plugin.describe().get("threads", torch.get_num_threads()))
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        observe, how = member_observer(plugin, work)
        inputs = {m.id: ctx.supernet.example_input(m.config, 1) for m in members}
        with torch.inference_mode():
            for m in members:
                bundle.activate(m.id)
                for _ in range(3):
                    bundle(inputs[m.id])
                    observe(m.id)
            bundle.activate(current)
            for i in range(requests):
                factor = float(load_trace[min(i * len(load_trace) // max(requests, 1),
                                              len(load_trace) - 1)])
                bundle(inputs[current])  # the request, served by the bundle
                observed = observe(current) * factor
                nxt = selector.step(observed)
                if nxt != current:
                    t1 = time.perf_counter()
                    bundle.activate(nxt)
                    sw_ms = (time.perf_counter() - t1) * 1e3
                    switches.append({"request": i, "from": current, "to": nxt, "load": factor,
                                     "observed_ms": observed, "switch_ms": sw_ms})
                    lines.append(f"  request {i:3d}: load x{factor:.1f}, observed "
                                 f"{observed:7.2f} ms, switch {current} -> {nxt} "
                                 f"({sw_ms:.3f} ms)")
                    current = nxt
    finally:
        torch.set_num_threads(previous_threads)
    text = [f"\nruntime demo: target {float(target):.2f} ms, {requests} requests, "
            f"{len(switches)} switches",
            f"  observed latency: {how}, times the trace's load factor"]
    if now:
        text.append(f"  members on {plugin.name} now (ms): " + ", ".join(
            f"{k} {v:.3f}" for k, v in sorted(now.items(), key=lambda kv: kv[1])))
    text.append("\n".join(lines) if lines else "  (no switch needed)")
    say("\n".join(text))
    return {"target_ms": float(target), "switches": switches, "members_now_ms": now,
            "observed": how}


def member_observer(plugin: Any, work: Mapping[str, tuple[Any, Any]]
                    ) -> tuple[Callable[[str], float], str]:
    """How the demo observes a member's latency on ``plugin``, and that said in words.

    Args:
        plugin: the run's hardware plugin.
        work: each member's ``(module, example_input)``, as the plugin measured it.

    Returns:
        ``(observe, how)``: ``observe(member_id)`` returns the member's latency in ms now;
        a deterministic plugin's value is computed once per member (it does not change),
        a plugin with ``prepare`` times one run with its own timer, any other plugin
        runs its ``measure()``.
    """
    if getattr(plugin, "deterministic", False):
        values = {mid: float(plugin.measure(mod, x).median_ms) for mid, (mod, x) in work.items()}
        return values.__getitem__, (f"the {plugin.name} plugin's computed latency of the "
                                    "active member (deterministic, not timed)")
    if callable(getattr(plugin, "prepare", None)):
        timers = {mid: plugin.prepare(mod, x) for mid, (mod, x) in work.items()}
        return (lambda mid: float(timers[mid]()),
                f"one run of the active member timed by the {plugin.name} plugin")
    return (lambda mid: float(plugin.measure(*work[mid]).median_ms),
            f"the {plugin.name} plugin's measure() of the active member")


def _member_workloads(ctx: Context, bundle: Any) -> dict[str, tuple[Any, Any]]:
    """Each member's workload as the plugin measured it in the search: the super-net's
    own latency workload where it has one (HAT: encoder + decoder steps), else the
    bundle's member extracted on an example input."""
    if hasattr(ctx.supernet, "latency_workload"):
        return {m.id: workload(ctx.supernet, m.config) for m in bundle.members}
    return {m.id: (bundle.extract(m.id), ctx.supernet.example_input(m.config, 1))
            for m in bundle.members}


def _measure_members(ctx: Context, bundle: Any, work: Mapping[str, tuple[Any, Any]]
                     ) -> dict[str, float]:
    """Each member's latency on the run's plugin now (one interleaved batch)."""
    from switchnas.plugins.batch import measure_batch
    from switchnas.plugins.measure import MeasurementError

    from ._measure import batch_policy

    ids = [m.id for m in bundle.members]
    res = measure_batch(ctx.plugin, [work[i] for i in ids], policy=batch_policy(ctx, 3),
                        progress=False)
    out = {i: r.median_ms for i, r in zip(ids, res.measurements, strict=True) if r is not None}
    if not out:
        raise MeasurementError(f"demo: no bundle member could be measured: {res.failures[:3]}")
    return out
