"""The machine's conditions around a measurement: frequency, load, steal, threads, affinity.

Latency depends on more than the sub-network: the CPU frequency governor and the current
frequency, co-running load, and on a virtual machine the time the hypervisor *steals*.
:func:`snapshot` reads what the operating system tells about them (Linux ``/proc`` and
``/sys``; on other systems, or where a file is unreadable, that entry is simply missing:
it never fails) and :func:`during` summarises two snapshots taken around a batch.

The volatile values (frequency, load, steal) belong to a batch's record
(:attr:`switchnas.plugins.batch.BatchResult.conditions`), never to a plugin's
``describe()``, which keys datasets and must be stable.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["during", "governors", "snapshot"]


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _affinity() -> list[int] | None:
    getter = getattr(os, "sched_getaffinity", None)
    if getter is None:
        return None
    try:
        return sorted(getter(0))
    except OSError:
        return None


def _loadavg(root: Path) -> list[float] | None:
    text = _read(root / "proc" / "loadavg")
    if not text:
        return None
    try:
        return [float(v) for v in text.split()[:3]]
    except ValueError:
        return None


def _cpu_jiffies(root: Path) -> dict[str, int] | None:
    """The aggregate ``cpu`` line of ``/proc/stat``: total, idle (+iowait) and steal."""
    text = _read(root / "proc" / "stat")
    if not text:
        return None
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu":
            try:
                vals = [int(v) for v in parts[1:]]
            except ValueError:
                return None
            # user nice system idle iowait irq softirq steal guest guest_nice; guest time
            # is already counted in user/nice, so it is left out of the total.
            fields = vals[:8] + [0] * (8 - len(vals[:8]))
            return {"total": sum(fields), "idle": fields[3] + fields[4], "steal": fields[7]}
    return None


def _cpufreq(root: Path, cpus: Iterable[int]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for cpu in cpus:
        d = root / "sys" / "devices" / "system" / "cpu" / f"cpu{cpu}" / "cpufreq"
        entry: dict[str, Any] = {}
        governor = _read(d / "scaling_governor")
        if governor:
            entry["governor"] = governor
        freq = _read(d / "scaling_cur_freq")
        if freq and freq.isdigit():
            entry["cur_khz"] = int(freq)
        if entry:
            out[str(cpu)] = entry
    return out


def snapshot(root: str | os.PathLike[str] = "/", *, cpus: Iterable[int] | None = None
             ) -> dict[str, Any]:
    """The machine's conditions now, as plain JSON values.

    Args:
        root: the folder holding ``proc/`` and ``sys/`` (``"/"``; tests point it at a
            fake tree).
        cpus: the CPUs whose frequency is read; default: those this process may run on
            (``os.sched_getaffinity(0)``), or all of ``os.cpu_count()``.

    Returns:
        A dict with ``monotonic`` (seconds, for intervals), ``time`` (Unix time),
        ``cpu_count``, and where readable: ``affinity`` (CPU ids), ``torch_threads``
        (only if torch is already imported), ``loadavg`` ([1, 5, 15] minutes),
        ``cpu_jiffies`` (``total``/``idle``/``steal`` from ``/proc/stat``) and ``cpufreq``
        (``{cpu: {"governor", "cur_khz"}}``). Unreadable entries are left out.
    """
    base = Path(root)
    affinity = _affinity()
    count = os.cpu_count()
    snap: dict[str, Any] = {"monotonic": time.monotonic(), "time": time.time(),
                            "cpu_count": count}
    if affinity is not None:
        snap["affinity"] = affinity
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_num_threads"):
        snap["torch_threads"] = int(torch.get_num_threads())
    load = _loadavg(base)
    if load is not None:
        snap["loadavg"] = load
    jiffies = _cpu_jiffies(base)
    if jiffies is not None:
        snap["cpu_jiffies"] = jiffies
    which = list(cpus) if cpus is not None else (affinity or list(range(count or 0)))
    freq = _cpufreq(base, which)
    if freq:
        snap["cpufreq"] = freq
    return snap


def governors(snap: Mapping[str, Any]) -> list[str]:
    """The distinct frequency governors in a snapshot (sorted; empty if unreadable)."""
    return sorted({e["governor"] for e in snap.get("cpufreq", {}).values() if "governor" in e})


def _mean_khz(snap: Mapping[str, Any]) -> float | None:
    vals = [e["cur_khz"] for e in snap.get("cpufreq", {}).values() if "cur_khz" in e]
    return sum(vals) / len(vals) if vals else None


def during(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """What happened between two snapshots.

    Args:
        before: :func:`snapshot` at the start.
        after: :func:`snapshot` at the end.

    Returns:
        ``seconds``; ``steal_pct`` and ``busy_pct`` (share of all CPUs' time stolen by the
        hypervisor / not idle over the interval, from ``/proc/stat``); ``load1`` (the larger
        1-minute load average of the two snapshots), ``cpu_count``; ``freq_khz_before`` /
        ``freq_khz_after`` (mean current frequency) and ``governors``; and ``overloaded``:
        ``True`` when ``load1`` exceeds the CPU count. Values that could not be read are
        ``None`` (``overloaded`` is then ``False``).
    """
    out: dict[str, Any] = {"seconds": round(float(after.get("monotonic", 0.0))
                                            - float(before.get("monotonic", 0.0)), 3)}
    j0, j1 = before.get("cpu_jiffies"), after.get("cpu_jiffies")
    steal = busy = None
    if j0 and j1:
        total = j1["total"] - j0["total"]
        if total > 0:
            steal = round(100.0 * (j1["steal"] - j0["steal"]) / total, 2)
            busy = round(100.0 * (1.0 - (j1["idle"] - j0["idle"]) / total), 2)
    out["steal_pct"] = steal
    out["busy_pct"] = busy
    loads = [s["loadavg"][0] for s in (before, after) if s.get("loadavg")]
    load1 = max(loads) if loads else None
    count = after.get("cpu_count") or before.get("cpu_count")
    out["load1"] = load1
    out["cpu_count"] = count
    out["freq_khz_before"] = _mean_khz(before)
    out["freq_khz_after"] = _mean_khz(after)
    out["governors"] = governors(before) or governors(after)
    out["overloaded"] = bool(load1 is not None and count and load1 > count)
    return out
