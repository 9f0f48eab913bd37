"""Hardware plugins: measure (or predict) sub-network latency and energy on one target.

Built-ins (``conf/hardware/*.yaml``): ``cpu``, ``onnxruntime``, ``cuda``, ``lut``,
``flops``. Third-party packages register through the entry-point group
``switchnas.hardware`` (see :mod:`switchnas.plugins.registry`). Plugin modules import
their heavy dependencies (onnxruntime, CUDA, NVML) only when used.
"""

from __future__ import annotations

from .base import HardwarePlugin, Measurement, describe_key
from .batch import (
    BatchPolicy,
    BatchResult,
    Timer,
    measure_batch,
    measure_interleaved,
    measure_workloads,
)
from .measure import MeasurementError, MeasurementWarning, TimingPolicy, measure_samples
from .registry import (
    available_plugins,
    entry_point_plugins,
    hydra_searchpath_entries,
    load_plugin,
    validate_plugin,
)

__all__ = [
    "BatchPolicy",
    "BatchResult",
    "HardwarePlugin",
    "Measurement",
    "MeasurementError",
    "MeasurementWarning",
    "Timer",
    "TimingPolicy",
    "available_plugins",
    "describe_key",
    "entry_point_plugins",
    "hydra_searchpath_entries",
    "load_plugin",
    "measure_batch",
    "measure_interleaved",
    "measure_samples",
    "measure_workloads",
    "validate_plugin",
]
