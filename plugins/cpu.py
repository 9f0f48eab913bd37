"""``cpu``: PyTorch eager inference on the CPU, with the thread count pinned."""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from functools import lru_cache
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

__all__ = ["CPUPlugin", "cpu_model"]


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
    """

    name = "cpu"

    def __init__(self, *, threads: int = 1, batch_size: int = 1, warmup: int = 3,
                 min_repeats: int = 5, max_repeats: int = 30, max_seconds: float = 2.0,
                 tol: float = 0.01, window: int = 5, outlier_mad: float = 5.0,
                 sample_timeout_s: float = 10.0, max_timeouts: int = 2):
        if threads < 1 or batch_size < 1:
            raise ValueError(f"cpu plugin needs threads >= 1 and batch_size >= 1, "
                             f"got threads={threads}, batch_size={batch_size}")
        self.threads = threads
        self.batch_size = batch_size
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

        def init() -> None:
            torch.set_num_threads(self.threads)

        torch.set_num_threads(self.threads)
        try:
            result = measure_workloads(self.prepare, workloads, reference=reference,
                                       policy=policy, name=self.name, progress=progress,
                                       worker_init=init)
        finally:
            torch.set_num_threads(previous_threads)
        result.protocol["threads"] = self.threads
        return result

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
        finally:
            torch.set_num_threads(previous_threads)
            if was_training and isinstance(module, torch.nn.Module):
                module.train()
        m.meta.update(threads_observed=observed[0] if observed else None,
                      input_shapes=input_shapes(x))
        return m
