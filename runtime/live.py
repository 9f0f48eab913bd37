"""Live replay: real inference on this CPU while co-runners compete for its cores.

The trace says, per request, whether the co-runner (a busy-looping child process, pinned
to the same core as this process) runs: load factor above 1.0 means on. Each request runs
the selector's member on an input of that member's resolution and reports the measured
latency to the selector, so every policy faces the real machine, noise included.

:func:`live_manager_replay` does the same for the hierarchical manager over member x
threads/affinity (:class:`~switchnas.runtime.knobs.ThreadsKnob`: real
``torch.set_num_threads`` and ``os.sched_setaffinity``), with several co-runners started
and stopped on a schedule and the CPUs' contention read from ``/proc/stat``
(:class:`CpuContention`); :func:`calibrate_table` measures the member x point table it
uses.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .energy import PowerModel
from .knobs import Knob
from .manager import HierarchicalManager, ModelSpec, OpTable
from .selectors import MemberInfo, make_selector
from .simulate import OpsResult, SimResult, settle_times

__all__ = ["CoRunner", "CpuContention", "calibrate_table", "live_manager_replay",
           "live_replay"]

_BUSY = "while True:\n    pass\n"


class CoRunner:
    """A busy-looping child process pinned to ``core`` (``None``: wherever the OS puts it);
    started and stopped on demand."""

    def __init__(self, core: int | None):
        self.core = core
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None

    def set(self, on: bool) -> None:
        if on and self._proc is None:
            core = self.core
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _BUSY],
                preexec_fn=(lambda: os.sched_setaffinity(0, {core}))
                if hasattr(os, "sched_setaffinity") and core is not None else None)
        elif not on and self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            self._proc = None

    def __enter__(self) -> CoRunner:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.set(False)


def live_replay(bundle: Any, load: Sequence[float] | np.ndarray, *, target_ms: float,
                policy: str, options: dict[str, Any] | None = None, core: int = 0,
                hardware: str | None = None) -> SimResult:
    """Run ``len(load)`` real requests through ``bundle`` under ``policy``.

    Pins this process (and the co-runner) to ``core`` and torch to one thread for the
    duration; restores both afterwards.
    """
    infos = [MemberInfo(m.id, m.accuracy, m.latency_on(hardware), m.energy_mj)
             for m in bundle.members]
    kw = dict(options or {})
    if policy == "oracle":
        kw.setdefault("load", [float(f) for f in load])
    sel = make_selector(policy, infos, target_ms=target_ms, **kw)
    acc = {m.id: m.accuracy for m in bundle.members}
    inputs = {m.id: torch.randn(1, 3, int(m.config["r"]), int(m.config["r"]))
              for m in bundle.members}
    threads = torch.get_num_threads()
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    ran: list[str] = []
    lat: list[float] = []
    infeasible = 0
    try:
        torch.set_num_threads(1)
        if affinity is not None:
            os.sched_setaffinity(0, {core})
        for m in bundle.members:  # warm-up
            bundle.activate(m.id)
            bundle(inputs[m.id])
        with CoRunner(core) as co:
            for f in load:
                co.set(float(f) > 1.0)
                member = sel.current
                bundle.activate(member)
                x = inputs[member]
                t = time.perf_counter_ns()
                bundle(x)
                ms = (time.perf_counter_ns() - t) / 1e6
                ran.append(member)
                lat.append(ms)
                sel.step(ms)
                infeasible += bool(getattr(sel, "infeasible", False))
    finally:
        torch.set_num_threads(threads)
        if affinity is not None:
            os.sched_setaffinity(0, affinity)
    arr = np.asarray(lat)
    settle = settle_times(load, ran)
    return SimResult(
        policy=policy, requests=len(ran), miss_rate=float(np.mean(arr > target_ms)),
        mean_accuracy=float(np.mean([acc[m] for m in ran])),
        switches=sum(a != b for a, b in zip(ran, ran[1:], strict=False)),
        settle_mean=float(np.mean(settle)) if settle else None,
        settle_max=int(max(settle)) if settle else None,
        mean_latency_ms=float(arr.mean()), infeasible_requests=infeasible, ran=ran)


# -- member x threads/affinity: the hierarchical manager live ------------------------------
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user nice system irq softirq steal (idle, iowait: 3, 4)


def _read_proc_stat() -> dict[int, tuple[int, int]]:
    """Per CPU: (busy ticks, total ticks) from ``/proc/stat`` (empty where unreadable)."""
    out: dict[int, tuple[int, int]] = {}
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        head, _, rest = line.partition(" ")
        if head.startswith("cpu") and head[3:].isdigit():
            vals = [int(v) for v in rest.split()]
            out[int(head[3:])] = (sum(vals[i] for i in _BUSY_FIELDS if i < len(vals)),
                                  sum(vals[:8]))
    return out


class CpuContention:
    """What else keeps each CPU busy, from ``/proc/stat`` and this process's CPU time.

    Over each interval of at least ``min_interval_s`` it takes, per CPU, the busy time that
    is not this process's (this process's CPU time spread evenly over the CPUs it ran on)
    as a share of the time this process left that CPU: about 1 for a CPU that a busy
    co-runner holds (whether or not this process shared it), 0 for an idle one. A point's
    contention factor is ``1 + `` the largest share among its ``settings["cpus"]`` (an
    intra-op parallel region waits for its slowest thread).

    Args:
        min_interval_s: the shortest interval it measures over (``/proc/stat`` counts in
            ticks of 10 ms).
    """

    def __init__(self, *, min_interval_s: float = 0.1):
        self.min_interval_s = float(min_interval_s)
        self.shares: dict[int, float] = {}
        self._last = (_read_proc_stat(), time.process_time(), time.perf_counter())

    @property
    def available(self) -> bool:
        """Whether ``/proc/stat`` has per-CPU lines here."""
        return bool(self._last[0])

    def update(self, own_cpus: Sequence[int]) -> bool:
        """Measure the interval since the last update if it is long enough.

        Args:
            own_cpus: the CPUs this process ran on during the interval.

        Returns:
            Whether :attr:`shares` was updated.
        """
        now = time.perf_counter()
        stat0, cpu0, t0 = self._last
        if now - t0 < self.min_interval_s or not stat0:
            return False
        stat1, cpu1 = _read_proc_stat(), time.process_time()
        own = sorted(set(own_cpus)) or sorted(stat1)
        own_ticks = (cpu1 - cpu0) * os.sysconf("SC_CLK_TCK") / len(own)
        for c, (busy1, total1) in stat1.items():
            if c not in stat0:
                continue
            busy, total = busy1 - stat0[c][0], total1 - stat0[c][1]
            mine = own_ticks if c in own else 0.0
            free = total - mine
            self.shares[c] = (min(1.0, max(0.0, (busy - mine) / free)) if free > 0.5
                              else self.shares.get(c, 0.0))
        self._last = (stat1, cpu1, now)
        return True

    def factors(self, points: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        """``{point name: 1 + max share of its CPUs}`` for points that name ``cpus``."""
        out = {}
        for p in points:
            cpus = dict(p.get("settings", {})).get("cpus")
            if cpus:
                out[str(p["name"])] = 1.0 + max(self.shares.get(int(c), 0.0) for c in cpus)
        return out


def calibrate_table(bundle: Any, knob: Knob, *, reps: int = 15, quantile: float = 0.2,
                    power_model: PowerModel | None = None) -> OpTable:
    """Measure every member at every point of ``knob`` here, unloaded, as a table.

    Rounds in turn over points and members (so drift spreads over all of them); the
    latency kept is a low quantile (other jobs only add time; the manager wants the
    unloaded latency). Energy comes from ``power_model`` (default ``generic``), labelled
    ``model:<name>``: a model, not a reading. The knob is restored afterwards.

    Args:
        bundle: a loaded bundle (members with ``config["r"]`` and ``accuracy``).
        knob: the operating points to measure (e.g. :class:`ThreadsKnob`).
        reps: requests per member and point.
        quantile: the quantile of each member's latencies at each point that is kept.
        power_model: power per point (``threads`` busy cores at the top frequency).

    Returns:
        The table, with the members' accuracies.
    """
    from .energy import get_power_model

    if not 0.0 <= quantile <= 1.0 or reps < 1:
        raise ValueError(f"need reps >= 1 and quantile in [0, 1], got {reps}, {quantile}")
    model = power_model or get_power_model("generic")
    points = knob.points()
    inputs = {m.id: torch.randn(1, 3, int(m.config["r"]), int(m.config["r"]))
              for m in bundle.members}
    times: dict[tuple[str, str], list[float]] = {}
    try:
        for rep in range(reps + 2):
            for p in points:
                knob.apply(p.name)
                for m in bundle.members:
                    bundle.activate(m.id)
                    t = time.perf_counter_ns()
                    bundle(inputs[m.id])
                    if rep >= 2:
                        times.setdefault((m.id, p.name), []).append(
                            (time.perf_counter_ns() - t) / 1e6)
    finally:
        knob.restore()
    members: dict[str, dict[str, Any]] = {}
    for m in bundle.members:
        members[m.id] = {}
        for p in points:
            lat = float(np.quantile(times[(m.id, p.name)], quantile))
            w = model.point_power_w(p.settings)
            members[m.id][p.name] = {"latency_ms": lat, "energy_mj": w * lat, "power_w": w}
    return OpTable.from_dict({
        "energy_source": model.energy_source, "members": members,
        "points": [p.to_dict() for p in points],
        "meta": {"measured": f"quantile {quantile} of {reps} interleaved requests per "
                             "member and point, unloaded", "power_model": model.to_dict()},
        "accuracy": {m.id: float(m.accuracy) for m in bundle.members}})


def live_manager_replay(bundle: Any, corunners: Sequence[int], *, table: OpTable,
                        knob: Knob, target_ms: float, policy: str,
                        options: Mapping[str, Any] | None = None,
                        cores: Sequence[int | None] | None = None,
                        contention: bool = True) -> OpsResult:
    """Run ``len(corunners)`` real requests under ``policy`` while busy co-runner processes
    start and stop: request ``i`` runs with ``corunners[i]`` of them, co-runner ``k``
    pinned to ``cores[k % len(cores)]`` (``None`` or by default: not pinned, the OS places
    it, as it would a background application).

    Policies: ``manager`` (:class:`HierarchicalManager` over member x the knob's points,
    with ``/proc/stat`` contention factors when ``contention``; ``options``: its keywords);
    ``feedback`` and ``static`` (member only, at the fixed ``options["point"]``, default
    the point fastest on average in ``table``; other options go to the selector).
    The knob is restored afterwards.

    Returns:
        An :class:`OpsResult` (energy: the table's power times observed latency, labelled
        with the table's ``energy_source``).

    Raises:
        ValueError: an unknown policy or point, a negative co-runner count.
    """
    if policy not in ("manager", "feedback", "static"):
        raise ValueError(f"unknown live policy {policy!r}; choose manager, feedback or "
                         f"static")
    if any(int(k) < 0 for k in corunners):
        raise ValueError(f"co-runner counts must be >= 0, got {sorted(set(corunners))}")
    opts = dict(options or {})
    acc = dict(table.accuracy) or {m.id: float(m.accuracy) for m in bundle.members}
    spec = ModelSpec(name="model", table=table, target_ms=target_ms, accuracy=acc)
    point_of = {str(p["name"]): p for p in table.points}
    mgr: HierarchicalManager | None = None
    sel: Any = None
    fixed = str(opts.pop("point", "")) or min(
        table.point_names, key=lambda p: sum(table.latency(m, p) for m in table.members))
    if fixed not in point_of:
        raise ValueError(f"unknown point {fixed!r}; points are {table.point_names}")
    if policy == "manager":
        mgr = HierarchicalManager([spec], **opts)
    else:
        infos = [MemberInfo(m, acc[m], table.latency(m, fixed)) for m in acc]
        sel = make_selector(policy, infos, target_ms=target_ms, **opts)
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    core_list: list[int | None] = list(cores) if cores else [None]
    runners = [CoRunner(core_list[k % len(core_list)]) for k in range(max(corunners or [0]))]
    meter = CpuContention() if policy == "manager" and contention else None
    inputs = {m.id: torch.randn(1, 3, int(m.config["r"]), int(m.config["r"]))
              for m in bundle.members}
    ran: list[str] = []
    pts: list[str] = []
    lat: list[float] = []
    energy: list[float] = []
    infeasible = 0
    applied: str | None = None
    try:
        for m in bundle.members:  # warm-up
            bundle.activate(m.id)
            bundle(inputs[m.id])
        for n_co in corunners:
            for k, r in enumerate(runners):
                r.set(k < int(n_co))
            if mgr is not None:
                member, point = mgr.decisions["model"].member, mgr.point
            else:
                member, point = sel.current, fixed
            if point != applied:
                knob.apply(point)
                applied = point
            bundle.activate(member)
            t = time.perf_counter_ns()
            bundle(inputs[member])
            ms = (time.perf_counter_ns() - t) / 1e6
            ran.append(member)
            pts.append(point)
            lat.append(ms)
            e = table.energy(member, point)
            energy.append(0.0 if e is None else e * ms / table.latency(member, point))
            if mgr is not None:
                factors = None
                if meter is not None and meter.update(point_of[point]["settings"].get(
                        "cpus", cpus)):
                    factors = meter.factors(table.points) or None
                infeasible += not mgr.step({"model": ms}, contention=factors)["model"].feasible
            else:
                sel.step(ms)
                infeasible += bool(getattr(sel, "infeasible", False))
    finally:
        for r in runners:
            r.set(False)
        knob.restore()
    arr = np.asarray(lat)
    load = np.asarray([1.0 + int(k) for k in corunners], dtype=float)
    settle = settle_times(load, ran)
    return OpsResult(
        policy=policy, model="model", requests=len(ran),
        miss_rate=float(np.mean(arr > target_ms)),
        mean_accuracy=float(np.mean([acc[m] for m in ran])),
        switches=sum(a != b for a, b in zip(ran, ran[1:], strict=False)),
        settle_mean=float(np.mean(settle)) if settle else None,
        settle_max=int(max(settle)) if settle else None,
        mean_latency_ms=float(arr.mean()), p90_latency_ms=float(np.quantile(arr, 0.9)),
        infeasible_requests=infeasible,
        point_switches=sum(a != b for a, b in zip(pts, pts[1:], strict=False)),
        energy_mj_per_request=float(np.mean(energy)), energy_total_mj=float(np.sum(energy)),
        energy_source=table.energy_source, ran=ran, points=pts)
