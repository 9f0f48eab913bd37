"""The timing loop that every latency plugin shares.

:func:`measure_samples` runs a *sample function* (one timed run of a sub-network, returning
its latency in ms) again and again:

1. ``warmup`` untimed runs (their results are discarded);
2. timed runs until the running median is stable (its relative change over the last
   ``window`` samples is below ``tol``, checked once ``min_repeats`` samples are in), or
   ``max_repeats`` samples, or ``max_seconds`` of wall-clock time, whichever comes first;
3. outlier rejection: samples farther than ``outlier_mad`` scaled MADs from the median are
   dropped (and listed in ``meta["outliers_ms"]``).

Every run happens on a watchdog-guarded worker thread. A run that takes longer than
``sample_timeout_s`` is abandoned: that sample is dropped with a :class:`MeasurementWarning`
and the loop goes on with a fresh worker (a Python thread cannot be killed, so the hung one
is left to finish in the background; ``meta["timeouts"]`` says it happened). More than
``max_timeouts`` hung runs fail the measurement. A sample that is not a finite number
``>= 0`` is dropped with a warning too. An exception raised by the measured module fails
the measurement at once with a :class:`MeasurementError` that names the plugin and the
cause: a module that raises once raises every time.

Thread-local state (``torch.inference_mode``, per-thread OpenMP thread counts) must be set
up on the worker: pass ``worker_init`` and do per-run context inside the sample function.
"""

from __future__ import annotations

import math
import numbers
import queue
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .base import Measurement

__all__ = [
    "MeasurementError",
    "MeasurementWarning",
    "TimingPolicy",
    "call_module",
    "measure_samples",
    "with_batch_size",
]

SampleFn = Callable[[], Any]


class MeasurementError(RuntimeError):
    """A measurement failed as a whole (the module raised, or every run hung/was invalid)."""


class MeasurementWarning(UserWarning):
    """One sample was dropped (hung or not a valid latency); the measurement goes on."""


@dataclass(frozen=True)
class TimingPolicy:
    """How long and how carefully to time one sub-network.

    Args:
        warmup: untimed runs before the first sample.
        min_repeats: samples always taken (unless ``max_seconds`` runs out first).
        max_repeats: hard cap on timed samples.
        max_seconds: hard cap on wall-clock time for warm-up plus samples; at least one
            valid sample is always taken.
        tol: the median is *stable* when it moved by less than ``tol`` (relative) over the
            last ``window`` samples.
        window: see ``tol``.
        outlier_mad: samples beyond ``median ± outlier_mad * 1.4826 * MAD`` are rejected
            (the scaled MAD is floored at 2% of the median); ``0`` keeps every sample.
        sample_timeout_s: a run taking longer than this is abandoned (sample dropped).
        max_timeouts: more abandoned runs than this fail the measurement.
    """

    warmup: int = 3
    min_repeats: int = 5
    max_repeats: int = 30
    max_seconds: float = 2.0
    tol: float = 0.01
    window: int = 5
    outlier_mad: float = 5.0
    sample_timeout_s: float = 10.0
    max_timeouts: int = 2

    def __post_init__(self) -> None:
        checks = {
            "warmup": self.warmup >= 0,
            "min_repeats": self.min_repeats >= 1,
            "max_repeats": self.max_repeats >= self.min_repeats,
            "max_seconds": self.max_seconds > 0,
            "tol": self.tol >= 0,
            "window": self.window >= 1,
            "outlier_mad": self.outlier_mad >= 0,
            "sample_timeout_s": self.sample_timeout_s > 0,
            "max_timeouts": self.max_timeouts >= 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                f"invalid timing policy {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)}: "
                "need warmup >= 0, 1 <= min_repeats <= max_repeats, max_seconds > 0, tol >= 0, "
                "window >= 1, outlier_mad >= 0, sample_timeout_s > 0, max_timeouts >= 0"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Timeout(Exception):
    pass


class _Worker:
    """One daemon thread that runs sample functions handed to it, one at a time."""

    def __init__(self, init: Callable[[], None] | None):
        self._jobs: queue.Queue[SampleFn | None] = queue.Queue()
        self._results: queue.Queue[tuple[bool, Any]] = queue.Queue()
        self._init = init
        self._thread = threading.Thread(target=self._loop, name="switchnas-measure", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        if self._init is not None:
            try:
                self._init()
            except BaseException as exc:  # noqa: BLE001 - reported to the caller
                self._results.put((False, exc))
                return
        while True:
            fn = self._jobs.get()
            if fn is None:
                return
            try:
                self._results.put((True, fn()))
            except BaseException as exc:  # noqa: BLE001 - reported to the caller
                self._results.put((False, exc))

    def run(self, fn: SampleFn, timeout: float) -> Any:
        self._jobs.put(fn)
        try:
            ok, value = self._results.get(timeout=timeout)
        except queue.Empty:
            raise _Timeout from None
        if not ok:
            raise value
        return value

    def close(self) -> None:
        self._jobs.put(None)


def _as_latency(value: Any) -> float | None:
    """``value`` as a finite float >= 0, or ``None`` if it is not a valid latency."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "fiu":
            value = value.item()
        else:
            return None
    f = float(value)
    return f if math.isfinite(f) and f >= 0 else None


def measure_samples(
    sample: SampleFn,
    policy: TimingPolicy | None = None,
    *,
    name: str = "plugin",
    worker_init: Callable[[], None] | None = None,
) -> Measurement:
    """Time ``sample`` under ``policy`` and return the kept samples with their record.

    Args:
        sample: one timed run; returns its latency in ms.
        policy: the timing policy (defaults of :class:`TimingPolicy` if ``None``).
        name: the plugin's name, used in warnings and errors.
        worker_init: called once on each worker thread before its first run (thread
            counts, thread-local modes).

    Returns:
        A :class:`Measurement` whose ``meta`` holds ``n_runs``, ``warmup``, ``stop_reason``
        (``"stable"``, ``"max_repeats"`` or ``"max_seconds"``), ``outliers_ms``,
        ``n_invalid``, ``timeouts``, ``elapsed_s`` and the ``policy``.

    Raises:
        MeasurementError: the sample function raised, or no valid sample could be taken.
    """
    pol = policy or TimingPolicy()
    worker = _Worker(worker_init)
    timeouts = 0
    invalid: list[str] = []
    kept: list[float] = []
    start = time.perf_counter()

    def run_once(phase: str) -> float | None:
        nonlocal worker, timeouts
        try:
            value = worker.run(sample, pol.sample_timeout_s)
        except _Timeout:
            timeouts += 1
            worker = _Worker(worker_init)  # the hung thread is abandoned, not reused
            if timeouts > pol.max_timeouts:
                raise MeasurementError(
                    f"hardware plugin {name}: {timeouts} runs hung for more than "
                    f"{pol.sample_timeout_s} s each (max_timeouts={pol.max_timeouts}); "
                    "giving up on this module") from None
            warnings.warn(
                f"hardware plugin {name}: a {phase} run hung for more than "
                f"{pol.sample_timeout_s} s; sample dropped", MeasurementWarning, stacklevel=3)
            return None
        except Exception as exc:
            raise MeasurementError(
                f"hardware plugin {name}: measured module raised {type(exc).__name__}: {exc}"
            ) from exc
        lat = _as_latency(value)
        if lat is None and phase == "timed":
            invalid.append(repr(value))
            warnings.warn(
                f"hardware plugin {name}: invalid latency {value!r} (need a finite number "
                ">= 0 ms); sample dropped", MeasurementWarning, stacklevel=3)
        return lat

    try:
        for _ in range(pol.warmup):
            run_once("warm-up")
            if time.perf_counter() - start > pol.max_seconds:
                break
        stop_reason = "max_repeats"
        attempts = 0
        # Invalid and hung runs count as attempts, so a plugin that never returns a
        # valid number still ends at max_repeats instead of looping forever.
        while attempts < pol.max_repeats:
            attempts += 1
            lat = run_once("timed")
            if lat is not None:
                kept.append(lat)
            if len(kept) >= max(pol.min_repeats, pol.window + 1) and _stable(kept, pol):
                stop_reason = "stable"
                break
            if kept and time.perf_counter() - start > pol.max_seconds:
                stop_reason = "max_seconds"
                break
    finally:
        worker.close()

    if not kept:
        raise MeasurementError(
            f"hardware plugin {name}: no valid latency sample in {attempts} runs "
            f"({len(invalid)} invalid: {invalid[:3]}, {timeouts} hung)")
    samples, outliers = _reject_outliers(kept, pol.outlier_mad)
    meta = {
        "n_runs": attempts,
        "warmup": pol.warmup,
        "stop_reason": stop_reason,
        "outliers_ms": outliers,
        "n_invalid": len(invalid),
        "timeouts": timeouts,
        "elapsed_s": round(time.perf_counter() - start, 6),
        "policy": pol.to_dict(),
    }
    return Measurement(samples_ms=tuple(samples), meta=meta)


def _stable(samples: list[float], pol: TimingPolicy) -> bool:
    now = float(np.median(samples))
    before = float(np.median(samples[: -pol.window]))
    return now == 0.0 or abs(now - before) / now < pol.tol


def _reject_outliers(samples: list[float], k: float) -> tuple[list[float], list[float]]:
    arr = np.asarray(samples, dtype=float)
    if k <= 0 or arr.size < 3:
        return list(samples), []
    med = float(np.median(arr))
    # The MAD is floored at 2% of the median: on a quiet machine it can be tiny, and
    # ordinary jitter of a few percent is noise to keep, not an outlier.
    mad = max(1.4826 * float(np.median(np.abs(arr - med))), 0.02 * med)
    if mad == 0.0:
        return list(samples), []
    keep = np.abs(arr - med) <= k * mad
    return [float(x) for x in arr[keep]], [float(x) for x in arr[~keep]]


def with_batch_size(example_input: Any, batch_size: int) -> Any:
    """``example_input`` (a tensor or tuple of tensors) with its leading dimension set to
    ``batch_size``, repeating the first item; non-tensors pass through unchanged."""
    import torch

    def fix(x: Any) -> Any:
        if not isinstance(x, torch.Tensor) or x.dim() == 0 or x.shape[0] == batch_size:
            return x
        first = x[:1]
        return first.expand(batch_size, *x.shape[1:]).contiguous()

    if isinstance(example_input, tuple):
        return tuple(fix(x) for x in example_input)
    return fix(example_input)


def call_module(module: Any, example_input: Any) -> Any:
    """``module(*x)`` for a tuple input, ``module(x)`` otherwise."""
    if isinstance(example_input, tuple):
        return module(*example_input)
    return module(example_input)


def input_shapes(example_input: Any) -> list[list[int]]:
    """Shapes of the tensors in ``example_input`` (for ``meta``)."""
    xs = example_input if isinstance(example_input, tuple) else (example_input,)
    return [list(x.shape) for x in xs if hasattr(x, "shape")]
