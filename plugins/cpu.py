"""``cpu``: PyTorch eager inference on the CPU, with the thread count pinned; energy per
inference from Linux RAPL (powercap) where it is readable (``energy=True``); operating
points over threads, affinity and (where writable) cpufreq (:mod:`switchnas.runtime.knobs`).

``RAPLReader`` lives in :mod:`switchnas.runtime.energy` and is re-exported here."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from switchnas.runtime.energy import POWERCAP_ROOT, RAPLReader, energy_per_call
from switchnas.runtime.knobs import (
    CPUFREQ_ROOT,
    CombinedKnob,
    CpufreqKnob,
    Knob,
    KnobUnavailable,
    OperatingPoint,
    ThreadsKnob,
)

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
        cpufreq_root: the cpufreq folder of :meth:`operating_points` (a fake tree in tests).
        placement: which CPUs the threads of a point run on: ``"first"`` (the first ``k``
            allowed), ``"windows"`` (every run of ``k`` neighbouring CPUs) or ``"all"``
            (see :class:`~switchnas.runtime.knobs.ThreadsKnob`).

    Operating points (:meth:`operating_points`, :meth:`set_operating_point`) switch threads,
    CPU affinity and, where cpufreq is writable, the frequency; :meth:`describe` names the
    active one.
    """

    name = "cpu"

    def __init__(self, *, threads: int = 1, batch_size: int = 1, warmup: int = 3,
                 min_repeats: int = 5, max_repeats: int = 30, max_seconds: float = 2.0,
                 tol: float = 0.01, window: int = 5, outlier_mad: float = 5.0,
                 sample_timeout_s: float = 10.0, max_timeouts: int = 2, energy: bool = False,
                 energy_seconds: float = 0.5, powercap_root: str = POWERCAP_ROOT,
                 cpufreq_root: str = CPUFREQ_ROOT, placement: str = "first"):
        if placement not in ("first", "windows", "all"):
            raise ValueError(f"cpu plugin: placement must be 'first', 'windows' or 'all', "
                             f"got {placement!r}")
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
        self.cpufreq_root = cpufreq_root
        self.placement = placement
        self._threads0 = threads
        self._knob: Knob | None = None
        self.knob_notes: list[str] = []
        self.operating_point: str | None = None
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
        if self.operating_point is not None:  # likewise absent until a point is set
            desc["operating_point"] = self.operating_point
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
        energy, info = energy_per_call(run, self._meter, seconds=self.energy_seconds)
        if energy is not None:
            info["energy_scope"] = ("CPU packages (RAPL): idle power and other processes "
                                    "included")
        return energy, info

    # -- operating points (threads/affinity; DVFS where cpufreq is writable) -----------------

    def knob(self) -> Knob:
        """The knob behind :meth:`operating_points`, built on first use: threads and affinity
        (:class:`~switchnas.runtime.knobs.ThreadsKnob`), combined with the CPU frequency
        (:class:`~switchnas.runtime.knobs.CpufreqKnob` under ``cpufreq_root``) where this
        process may set it; :attr:`knob_notes` says why a knob was left out."""
        if self._knob is None:
            knobs: list[Knob] = [ThreadsKnob(placement=self.placement)]
            try:
                knobs.append(CpufreqKnob(root=self.cpufreq_root))
            except KnobUnavailable as exc:
                self.knob_notes.append(str(exc))
            self._knob = knobs[0] if len(knobs) == 1 else CombinedKnob(knobs)
        return self._knob

    def operating_points(self) -> list[OperatingPoint]:
        """Every operating point :meth:`set_operating_point` accepts (see :meth:`knob`)."""
        return self.knob().points()

    def set_operating_point(self, name: str) -> None:
        """Switch to the operating point ``name``: threads (this plugin's measurements then
        use its thread count), this process's CPU affinity, and the CPU frequency where the
        knob has it. :meth:`describe` then names the point.

        Raises:
            ValueError: an unknown name (the message lists the allowed ones).
        """
        knob = self.knob()
        knob.apply(name)  # raises ValueError listing the names when unknown
        point = next(p for p in knob.points() if p.name == name)
        self.threads = int(point.settings.get("threads", self.threads))
        self.operating_point = point.name

    def restore_operating_point(self) -> None:
        """Back to the state before the first :meth:`set_operating_point` (threads as
        constructed, affinity and frequency as found)."""
        if self._knob is not None:
            self._knob.restore()
        self.threads = self._threads0
        self.operating_point = None

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
