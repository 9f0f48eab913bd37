"""The hardware-plugin extension point.

A plugin measures the latency (and energy, where the hardware tells) of one
sub-network on one target. Datasets of measurements are keyed by ``describe()``, so
numbers from different machines, thread counts or library versions never mix.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["HardwarePlugin", "Measurement", "describe_key"]


@dataclass(frozen=True)
class Measurement:
    """Latency samples of one sub-network (ms) and their summary."""

    samples_ms: tuple[float, ...]
    energy_mj: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        arr = np.asarray(self.samples_ms, dtype=float)
        if arr.size == 0:
            raise ValueError("a Measurement needs at least one latency sample")
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError(f"latency samples must be finite and >= 0 ms, got {list(arr)}")
        e = self.energy_mj
        if e is not None and (isinstance(e, bool) or not isinstance(e, (int, float, np.number))
                              or not np.isfinite(e) or e < 0):
            raise ValueError(f"energy_mj must be None or a finite number >= 0 mJ, got {e!r}")

    @property
    def median_ms(self) -> float:
        return float(np.median(self.samples_ms))

    @property
    def p10_ms(self) -> float:
        return float(np.percentile(self.samples_ms, 10))

    @property
    def p90_ms(self) -> float:
        return float(np.percentile(self.samples_ms, 90))

    @property
    def rel_spread(self) -> float:
        """(p90 - p10) / median: the noise floor of this measurement."""
        m = self.median_ms
        return (self.p90_ms - self.p10_ms) / m if m > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d["samples_ms"] = list(self.samples_ms)
        d.update(median_ms=self.median_ms, p10_ms=self.p10_ms, p90_ms=self.p90_ms,
                 rel_spread=self.rel_spread)
        return d


@runtime_checkable
class HardwarePlugin(Protocol):
    """Measures sub-networks on one hardware target.

    Optional parts (checked where used, not required by :func:`validate_plugin`):

    * ``measure_batch(workloads, *, reference=None, policy=None, progress=False)
      -> BatchResult``: measure ``(module, example_input)`` pairs together. Timing plugins
      implement it by preparing a :data:`~switchnas.plugins.batch.Timer` per workload
      (a public ``prepare(module, example_input) -> Timer``) and calling
      :func:`~switchnas.plugins.batch.measure_workloads` (the interleaved-reference
      protocol). Without it, :func:`~switchnas.plugins.batch.measure_batch` loops over
      ``measure()`` under a watchdog.
    * ``deterministic = True``: the plugin computes rather than times (lookup tables,
      analytic cost); batches then skip the reference and the rounds.
    * ``operating_points() -> list[OperatingPoint]`` / ``set_operating_point(name)`` (and
      ``restore_operating_point()``): hardware knobs such as threads, affinity, DVFS
      (:mod:`switchnas.runtime.knobs`); ``describe()`` then names the active point, and
      :func:`~switchnas.plugins.operating_points.measure_operating_points` measures
      member x operating point.
    """

    name: str

    def describe(self) -> dict[str, Any]:
        """JSON-able description of the target (device, threads, library versions,
        batch size ...). Two measurements are comparable iff their descriptions are equal."""
        ...

    def measure(self, module: Any, example_input: Any) -> Measurement:
        """Measure ``module(example_input)``; raise on a failed measurement."""
        ...


def describe_key(description: dict[str, Any]) -> str:
    """A short stable hash of a plugin description (for dataset keys and file names)."""
    import hashlib
    import json

    blob = json.dumps(description, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
