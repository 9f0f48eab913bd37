"""MyBoardPlugin: a template; as shipped it times eager PyTorch on the local CPU."""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from typing import Any

from switchnas.plugins.base import Measurement
from switchnas.plugins.batch import BatchPolicy, BatchResult, Timer, measure_workloads
from switchnas.plugins.measure import (
    MeasurementError,
    TimingPolicy,
    call_module,
    measure_samples,
    with_batch_size,
)


class MyBoardPlugin:
    """Latency of a module on MyBoard (as shipped: eager PyTorch on the local CPU).

    Args:
        threads: intra-op threads while measuring.
        batch_size: batch size of the measured input.
        warmup, min_repeats, max_repeats, max_seconds: the timing policy of ``measure``
            (see ``switchnas.plugins.measure.TimingPolicy``); batches follow the
            ``BatchPolicy`` they are given.
    """

    name = "myboard"

    def __init__(self, *, threads: int = 1, batch_size: int = 1, warmup: int = 2,
                 min_repeats: int = 5, max_repeats: int = 20, max_seconds: float = 1.0):
        self.threads = threads
        self.batch_size = batch_size
        self.policy = TimingPolicy(warmup=warmup, min_repeats=min_repeats,
                                   max_repeats=max_repeats, max_seconds=max_seconds)

    def describe(self) -> dict[str, Any]:
        import torch  # heavy imports inside methods

        return {
            "plugin": self.name,
            "device": platform.processor() or platform.machine(),
            "runtime": "torch-eager",
            "threads": self.threads,
            "batch_size": self.batch_size,
            "torch": torch.__version__.split("+")[0],
        }

    # -- replace these two for your device ----------------------------------------------
    def _prepare(self, module: Any, inputs: tuple[Any, ...]) -> Any:
        """Whatever must happen once before timing: export (``torch.onnx.export``,
        ``torch.export``), compile for the device, copy to the board. Errors raised here
        are reported as a failed measurement naming the module."""
        return module

    def _run_once(self, prepared: Any, inputs: tuple[Any, ...]) -> float:
        """One timed run; returns its latency in ms."""
        t0 = time.perf_counter()
        call_module(prepared, inputs)
        return (time.perf_counter() - t0) * 1e3

    # -------------------------------------------------------------------------------------
    def prepare(self, module: Any, example_input: Any) -> Timer:
        """Eval mode, batch size and ``_prepare`` applied; returns one timed run.

        Raises:
            MeasurementError: ``_prepare`` failed.
        """
        import torch

        x = with_batch_size(example_input, self.batch_size)
        inputs = x if isinstance(x, tuple) else (x,)
        if isinstance(module, torch.nn.Module):
            module.eval()  # inference latency; batch-norm statistics stay untouched
        try:
            with torch.no_grad():
                prepared = self._prepare(module, inputs)
        except Exception as exc:
            raise MeasurementError(f"hardware plugin {self.name}: cannot prepare "
                                   f"{type(module).__name__}: {exc}") from exc

        def timer() -> float:
            with torch.inference_mode():
                return self._run_once(prepared, inputs)

        return timer

    def _pin_threads(self) -> None:  # runs on the measuring thread
        import torch

        torch.set_num_threads(self.threads)

    def measure(self, module: Any, example_input: Any) -> Measurement:
        """One module alone (single-module users)."""
        import torch

        was_training = bool(getattr(module, "training", False))
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return measure_samples(self.prepare(module, example_input), self.policy,
                                   name=self.name, worker_init=self._pin_threads)
        finally:
            torch.set_num_threads(previous_threads)
            if was_training:
                module.train()

    def measure_batch(self, workloads: Sequence[tuple[Any, Any]], *,
                      reference: tuple[Any, Any] | None = None,
                      policy: BatchPolicy | None = None, progress: bool = False
                      ) -> BatchResult:
        """Many modules together, each paired in time with a reference (what ``switchnas
        profile`` and ``validate`` call): the shared protocol does the rest."""
        import torch

        previous_threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return measure_workloads(self.prepare, workloads, reference=reference,
                                     policy=policy, name=self.name, progress=progress,
                                     worker_init=self._pin_threads)
        finally:
            torch.set_num_threads(previous_threads)
