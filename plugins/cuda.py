"""``cuda``: latency on an NVIDIA GPU with CUDA events; energy from NVML where reported.

Energy needs ``pynvml`` (the ``nvidia-ml-py`` package) and a driver that implements
``nvmlDeviceGetTotalEnergyConsumption`` (Volta and newer); otherwise ``energy_mj`` is
``None`` and ``meta["energy_unavailable"]`` says why.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from switchnas.runtime.energy import NvmlEnergyReader, energy_per_call

from .base import Measurement
from .batch import BatchPolicy, BatchResult, Timer, measure_workloads
from .measure import (
    MeasurementError,
    TimingPolicy,
    call_module,
    input_shapes,
    measure_samples,
    with_batch_size,
)

__all__ = ["CUDAPlugin"]


def _require_cuda(index: int) -> None:
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("cuda hardware plugin: no CUDA device (torch.cuda.is_available() "
                           f"is False; torch {torch.__version__}, built for CUDA "
                           f"{torch.version.cuda})")
    n = torch.cuda.device_count()
    if not 0 <= index < n:
        raise ValueError(f"cuda hardware plugin: device={index} does not exist; "
                         f"choose from {list(range(n))}")


class CUDAPlugin:
    """Latency of ``module(example_input)`` on one CUDA device, timed with CUDA events.

    The module is copied to the device (the caller's module is left where it is), put in
    eval mode and run under ``torch.inference_mode()``. With ``energy=True`` a separate
    phase runs the module back to back for ``energy_seconds`` and divides the NVML energy
    counter's increase by the number of runs (energy per inference under sustained load).

    Args:
        device: CUDA device index.
        batch_size: batch size of the measured input.
        energy: read energy from NVML where available.
        energy_seconds: length of the energy phase.
        warmup, min_repeats, max_repeats, max_seconds, tol, window, outlier_mad,
        sample_timeout_s, max_timeouts: the timing policy, see
            :class:`switchnas.plugins.measure.TimingPolicy`.

    Raises:
        RuntimeError: at construction, when there is no CUDA device.
    """

    name = "cuda"

    def __init__(self, *, device: int = 0, batch_size: int = 1, energy: bool = True,
                 energy_seconds: float = 0.5, warmup: int = 10, min_repeats: int = 10,
                 max_repeats: int = 100, max_seconds: float = 2.0, tol: float = 0.01,
                 window: int = 10, outlier_mad: float = 5.0, sample_timeout_s: float = 10.0,
                 max_timeouts: int = 2):
        if batch_size < 1 or energy_seconds < 0:
            raise ValueError(f"cuda plugin needs batch_size >= 1 and energy_seconds >= 0, got "
                             f"batch_size={batch_size}, energy_seconds={energy_seconds}")
        _require_cuda(device)
        self.device = device
        self.batch_size = batch_size
        self.energy = energy
        self.energy_seconds = energy_seconds
        self.policy = TimingPolicy(
            warmup=warmup, min_repeats=min_repeats, max_repeats=max_repeats,
            max_seconds=max_seconds, tol=tol, window=window, outlier_mad=outlier_mad,
            sample_timeout_s=sample_timeout_s, max_timeouts=max_timeouts)
        self._energy: NvmlEnergyReader | None = None

    def describe(self) -> dict[str, Any]:
        import torch

        props = torch.cuda.get_device_properties(self.device)
        return {
            "plugin": self.name,
            "device": props.name,
            "compute_capability": f"{props.major}.{props.minor}",
            "batch_size": self.batch_size,
            "torch": torch.__version__.split("+")[0],
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
        }

    def _to_device(self, module: Any, example_input: Any) -> tuple[Any, Any, Any]:
        """A copy of ``module`` on the device in eval mode and the input there: (model, xs, x)."""
        import torch

        _require_cuda(self.device)
        dev = torch.device("cuda", self.device)
        x = with_batch_size(example_input, self.batch_size)
        try:
            model = copy.deepcopy(module)
            if isinstance(model, torch.nn.Module):
                model = model.to(dev).eval()
            xs = tuple(t.to(dev) for t in x) if isinstance(x, tuple) else x.to(dev)
        except Exception as exc:
            raise MeasurementError(f"hardware plugin {self.name}: cannot move the module or "
                                   f"its input to {dev}: {exc}") from exc
        return model, xs, x

    @staticmethod
    def _timer(model: Any, xs: Any) -> Timer:
        import torch

        def timer() -> float:
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            with torch.inference_mode():
                start.record()
                call_module(model, xs)
                end.record()
            end.synchronize()
            return float(start.elapsed_time(end))

        return timer

    def prepare(self, module: Any, example_input: Any) -> Timer:
        """Copy ``module`` (eval mode) and its input (batch size applied) to the device;
        returns one run timed with CUDA events. The caller's module is not touched.

        Raises:
            MeasurementError: the module or input cannot be moved to the device.
        """
        model, xs, _ = self._to_device(module, example_input)
        return self._timer(model, xs)

    def measure(self, module: Any, example_input: Any) -> Measurement:
        import torch

        model, xs, x = self._to_device(module, example_input)
        dev = torch.device("cuda", self.device)

        def init() -> None:
            torch.cuda.set_device(dev)

        m = measure_samples(self._timer(model, xs), self.policy, name=self.name,
                            worker_init=init)
        m.meta["input_shapes"] = input_shapes(x)
        if not self.energy:
            return m
        energy, info = self._measure_energy(model, xs, dev)
        m.meta.update(info)
        return Measurement(samples_ms=m.samples_ms, energy_mj=energy, meta=m.meta)

    def measure_batch(self, workloads: Sequence[tuple[Any, Any]], *,
                      reference: tuple[Any, Any] | None = None,
                      policy: BatchPolicy | None = None, progress: bool = False
                      ) -> BatchResult:
        """Measure ``(module, example_input)`` pairs together, interleaved with a reference
        (see :func:`switchnas.plugins.batch.measure_workloads`); with ``energy=True`` each
        kept row then gets an energy phase of its own.

        Raises:
            ValueError: ``policy.isolation == "process"`` (CUDA cannot run in a forked
                child of a process that initialised it).
        """
        import torch

        if policy is not None and policy.isolation == "process":
            raise ValueError("cuda plugin: isolation='process' is not supported (CUDA cannot "
                             "be used in a forked worker); use isolation='thread'")
        dev = torch.device("cuda", self.device)
        # One entry per prepare() call, in order: the workloads first, then the reference.
        on_device: list[tuple[Any, Any] | None] = []

        def prepare(module: Any, example_input: Any) -> Timer:
            on_device.append(None)
            model, xs, _ = self._to_device(module, example_input)
            on_device[-1] = (model, xs)
            return self._timer(model, xs)

        def init() -> None:
            torch.cuda.set_device(dev)

        result = measure_workloads(prepare, workloads, reference=reference, policy=policy,
                                   name=self.name, progress=progress, worker_init=init)
        if self.energy:
            for i, m in enumerate(result.measurements):
                placed = on_device[i] if i < len(on_device) else None
                if m is None or placed is None:
                    continue
                model, xs = placed
                energy, info = self._measure_energy(model, xs, dev)
                result.measurements[i] = Measurement(samples_ms=m.samples_ms, energy_mj=energy,
                                                     meta={**m.meta, **info})
        return result

    def _measure_energy(self, model: Any, xs: Any, dev: Any) -> tuple[float | None, dict]:
        import torch

        if self._energy is None:
            uuid = getattr(torch.cuda.get_device_properties(self.device), "uuid", None)
            self._energy = NvmlEnergyReader(index=self.device,
                                            uuid=None if uuid is None else str(uuid))
        runs = 0

        def run() -> None:
            nonlocal runs
            call_module(model, xs)
            runs += 1
            if runs % 10 == 0:  # keep the launch queue short
                torch.cuda.synchronize()

        with torch.cuda.device(dev), torch.inference_mode():
            return energy_per_call(run, self._energy, seconds=self.energy_seconds,
                                   sync=torch.cuda.synchronize)
