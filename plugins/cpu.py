"""``cpu``: PyTorch eager inference on the CPU, with the thread count pinned; energy per
inference from Linux RAPL (powercap) where it is readable (``energy=True``)."""

from __future__ import annotations

import platform
import re
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from .base import Measurement
from .batch import BatchPolicy, BatchResult, Timer, measure_workloads
from .conditions import governors, snapshot
from .measure import (
    TimingPolicy,
    call_module,
    input_shapes,
    measure_samples,
    with_batch_size,
)

__all__ = ["CPUPlugin", "RAPLReader", "cpu_model"]

#: Where Linux exposes RAPL energy counters.
POWERCAP_ROOT = "/sys/class/powercap"


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, ``platform`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "Processor") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


class RAPLReader:
    """The energy counters of the CPU packages under Linux powercap (RAPL).

    Reads ``<root>/intel-rapl:<N>/energy_uj`` of every top-level zone (sub-zones such as
    ``intel-rapl:0:0`` are inside their package; a ``psys`` zone overlaps the packages and
    is left out). A counter wraps at its ``max_energy_range_uj``; :meth:`delta_uj` undoes
    one wrap between two readings. Since Linux 5.10 ``energy_uj`` is readable by root
    only, and most VMs expose no RAPL at all: then :attr:`reason` says why.

    Args:
        root: the powercap folder (a fake tree in tests).
    """

    def __init__(self, root: str | Path = POWERCAP_ROOT):
        self.root = Path(root)
        self.zones: list[Path] = []
        self.ranges: list[int] = []
        self.reason: str | None = None
        try:
            found = sorted(p for p in self.root.glob("intel-rapl:*")
                           if re.fullmatch(r"intel-rapl:\d+", p.name))
            zones = [p for p in found if _zone_name(p) != "psys"]
            for z in zones:
                self.ranges.append(int(_read_text(z / "max_energy_range_uj")))
                int(_read_text(z / "energy_uj"))
            self.zones = zones
        except (OSError, ValueError) as exc:
            self.zones, self.ranges = [], []
            self.reason = (f"RAPL energy counters under {self.root} are not readable "
                           f"({type(exc).__name__}: {exc}); since Linux 5.10 energy_uj is "
                           "readable by root only")
            return
        if not self.zones:
            self.reason = (f"no RAPL package zones (intel-rapl:<N>) under {self.root}: this "
                           "machine or VM does not expose RAPL")

    @property
    def available(self) -> bool:
        """Whether the counters can be read."""
        return bool(self.zones)

    def read_uj(self) -> list[int]:
        """The raw counter of every package zone (µJ)."""
        return [int(_read_text(z / "energy_uj")) for z in self.zones]

    def delta_uj(self, before: Sequence[int], after: Sequence[int]) -> int:
        """Energy between two :meth:`read_uj` readings (µJ), summed over the packages;
        a counter that went down wrapped once at its ``max_energy_range_uj``."""
        total = 0
        for b, a, top in zip(before, after, self.ranges, strict=True):
            total += a - b if a >= b else a + top - b
        return total


def _read_text(path: Path) -> str:
    return path.read_text(encoding="ascii").strip()


def _zone_name(zone: Path) -> str:
    try:
        return _read_text(zone / "name")
    except OSError:
        return ""


class CPUPlugin:
    """Latency of ``module(example_input)`` in PyTorch eager mode on the CPU.

    The module runs in eval mode under ``torch.inference_mode()`` with
    ``torch.set_num_threads(threads)`` pinned for the measurement (and restored after).
    The leading dimension of each input tensor is set to ``batch_size``. ``measure`` times
    one module alone (the timing policy below); ``measure_batch`` times many together
    with the interleaved-reference protocol of :mod:`switchnas.plugins.batch`.

    Args:
        threads: intra-op threads.
        batch_size: batch size of the measured input.
        warmup, min_repeats, max_repeats, max_seconds, tol, window, outlier_mad,
        sample_timeout_s, max_timeouts: the timing policy, see
            :class:`switchnas.plugins.measure.TimingPolicy`.
        energy: also measure energy per inference from RAPL: after the timing, the module
            runs back to back for ``energy_seconds`` and the packages' energy counters'
            increase is divided by the runs. It is the whole packages' energy (idle power
            and other processes included). Where RAPL is unreadable ``energy_mj`` is
            ``None`` and ``meta["energy_unavailable"]`` says why.
        energy_seconds: length of the energy phase.
        powercap_root: the powercap folder (:class:`RAPLReader`).
    """

    name = "cpu"

    def __init__(self, *, threads: int = 1, batch_size: int = 1, warmup: int = 3,
                 min_repeats: int = 5, max_repeats: int = 30, max_seconds: float = 2.0,
                 tol: float = 0.01, window: int = 5, outlier_mad: float = 5.0,
                 sample_timeout_s: float = 10.0, max_timeouts: int = 2, energy: bool = False,
                 energy_seconds: float = 0.5, powercap_root: str = POWERCAP_ROOT):
        if threads < 1 or batch_size < 1 or not energy_seconds >= 0:
            raise ValueError(f"cpu plugin needs threads >= 1, batch_size >= 1 and "
                             f"energy_seconds >= 0, got threads={threads}, "
                             f"batch_size={batch_size}, energy_seconds={energy_seconds}")
        self.threads = threads
        self.batch_size = batch_size
        self.energy = bool(energy)
        self.energy_seconds = energy_seconds
        self.powercap_root = powercap_root
        self._meter: RAPLReader | None = None
        self.policy = TimingPolicy(
            warmup=warmup, min_repeats=min_repeats, max_repeats=max_repeats,
            max_seconds=max_seconds, tol=tol, window=window, outlier_mad=outlier_mad,
            sample_timeout_s=sample_timeout_s, max_timeouts=max_timeouts)

    def describe(self) -> dict[str, Any]:
        """The target: CPU model, threads, batch size, torch version and, where Linux tells,
        the frequency governor (stable; volatile conditions go into a batch's record)."""
        import torch

        desc: dict[str, Any] = {
            "plugin": self.name,
            "device": cpu_model(),
            "machine": platform.machine(),
            "threads": self.threads,
            "batch_size": self.batch_size,
            "torch": torch.__version__.split("+")[0],
            "backend": "torch-eager",
        }
        govs = governors(snapshot())
        if govs:  # left out where unreadable, so keys stay as they were on such machines
            desc["governor"] = ",".join(govs)
        if self.energy:  # absent when off: the description of a plain cpu is unchanged
            desc["energy"] = "rapl-package"
        return desc

    def prepare(self, module: Any, example_input: Any) -> Timer:
        """Eval mode and the batch size applied; returns one timed run of the module.

        The module is left in eval mode (``measure_batch`` restores training mode). Run the
        timer on a thread whose torch threads are pinned (``measure_batch`` does).
        """
        import torch

        x = with_batch_size(example_input, self.batch_size)
        if isinstance(module, torch.nn.Module):
            module.eval()

        def timer() -> float:
            with torch.inference_mode():
                t0 = time.perf_counter()
                call_module(module, x)
                return (time.perf_counter() - t0) * 1e3

        return timer

    def measure_batch(self, workloads: Sequence[tuple[Any, Any]], *,
                      reference: tuple[Any, Any] | None = None,
                      policy: BatchPolicy | None = None, progress: bool = False
                      ) -> BatchResult:
        """Measure ``(module, example_input)`` pairs together, interleaved with a reference
        (see :func:`switchnas.plugins.batch.measure_workloads`); threads pinned on the
        measuring thread and restored after."""
        import torch

        previous_threads = torch.get_num_threads()
        # one entry per prepare() call, in order: the workloads first, then the reference
        timers: list[Timer | None] = []

        def prepare(module: Any, example_input: Any) -> Timer:
            timers.append(None)
            timer = self.prepare(module, example_input)
            timers[-1] = timer
            return timer

        def init() -> None:
            torch.set_num_threads(self.threads)

        torch.set_num_threads(self.threads)
        try:
            result = measure_workloads(prepare, workloads, reference=reference,
                                       policy=policy, name=self.name, progress=progress,
                                       worker_init=init)
            if self.energy:
                for i, m in enumerate(result.measurements):
                    timer = timers[i] if i < len(timers) else None
                    if m is None or timer is None:
                        continue
                    energy, info = self._measure_energy(timer)
                    result.measurements[i] = Measurement(samples_ms=m.samples_ms,
                                                         energy_mj=energy,
                                                         meta={**m.meta, **info})
        finally:
            torch.set_num_threads(previous_threads)
        result.protocol["threads"] = self.threads
        return result

    def _measure_energy(self, run: Callable[[], Any]) -> tuple[float | None, dict[str, Any]]:
        """Energy per call of ``run`` (mJ) over ``energy_seconds`` of calls, and notes."""
        if self._meter is None:
            self._meter = RAPLReader(self.powercap_root)
        meter = self._meter
        if not meter.available:
            return None, {"energy_unavailable": meter.reason}
        runs = 0
        e0, t0 = meter.read_uj(), time.perf_counter()
        while runs == 0 or time.perf_counter() - t0 < self.energy_seconds:
            run()
            runs += 1
        e1, t1 = meter.read_uj(), time.perf_counter()
        delta = meter.delta_uj(e0, e1)
        if delta <= 0:
            return None, {"energy_unavailable": "RAPL counters did not advance in "
                          f"{t1 - t0:.3f} s (raise energy_seconds)", "energy_runs": runs}
        return delta / 1e3 / runs, {
            "energy_runs": runs, "energy_s": round(t1 - t0, 4),
            "avg_power_w": round(delta / 1e6 / max(t1 - t0, 1e-9), 3),
            "energy_scope": "CPU packages (RAPL): idle power and other processes included"}

    def measure(self, module: Any, example_input: Any) -> Measurement:
        import torch

        x = with_batch_size(example_input, self.batch_size)
        was_training = getattr(module, "training", None)
        if isinstance(module, torch.nn.Module):
            module.eval()
        previous_threads = torch.get_num_threads()
        observed: list[int] = []

        def init() -> None:
            # OpenMP thread counts are per calling thread: pin them on the worker too.
            torch.set_num_threads(self.threads)
            observed.append(torch.get_num_threads())

        def sample() -> float:
            with torch.inference_mode():
                t0 = time.perf_counter()
                call_module(module, x)
                return (time.perf_counter() - t0) * 1e3

        torch.set_num_threads(self.threads)
        try:
            m = measure_samples(sample, self.policy, name=self.name, worker_init=init)
            if self.energy:
                energy, info = self._measure_energy(sample)
                m = Measurement(samples_ms=m.samples_ms, energy_mj=energy,
                                meta={**m.meta, **info})
        finally:
            torch.set_num_threads(previous_threads)
            if was_training and isinstance(module, torch.nn.Module):
                module.train()
        m.meta.update(threads_observed=observed[0] if observed else None,
                      input_shapes=input_shapes(x))
        return m
