"""MyBoardPlugin: a template; as shipped it times eager PyTorch on the local CPU."""

from __future__ import annotations

import platform
import time
from typing import Any

from switchnas.plugins.base import Measurement
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
        warmup, min_repeats, max_repeats, max_seconds: the timing policy
            (see ``switchnas.plugins.measure.TimingPolicy``).
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
    def measure(self, module: Any, example_input: Any) -> Measurement:
        import torch

        x = with_batch_size(example_input, self.batch_size)
        inputs = x if isinstance(x, tuple) else (x,)
        was_training = bool(getattr(module, "training", False))
        previous_threads = torch.get_num_threads()

        def pin_threads() -> None:  # runs on the measuring thread
            torch.set_num_threads(self.threads)

        def sample() -> float:
            with torch.inference_mode():
                return self._run_once(prepared, inputs)

        module.eval()  # inference latency; batch-norm statistics stay untouched
        torch.set_num_threads(self.threads)
        try:
            try:
                with torch.no_grad():
                    prepared = self._prepare(module, inputs)
            except Exception as exc:
                raise MeasurementError(f"hardware plugin {self.name}: cannot prepare "
                                       f"{type(module).__name__}: {exc}") from exc
            return measure_samples(sample, self.policy, name=self.name,
                                   worker_init=pin_threads)
        finally:
            torch.set_num_threads(previous_threads)
            module.train(was_training)
