"""Live replay: real inference on this CPU while a co-runner competes for its core.

The trace says, per request, whether the co-runner (a busy-looping child process, pinned
to the same core as this process) runs: load factor above 1.0 means on. Each request runs
the selector's member on an input of that member's resolution and reports the measured
latency to the selector, so every policy faces the real machine, noise included.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .selectors import MemberInfo, make_selector
from .simulate import SimResult, settle_times

__all__ = ["CoRunner", "live_replay"]

_BUSY = "while True:\n    pass\n"


class CoRunner:
    """A busy-looping child process pinned to ``core``; started and stopped on demand."""

    def __init__(self, core: int):
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
                if hasattr(os, "sched_setaffinity") else None)
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
