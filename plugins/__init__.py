"""Hardware plugins: measure (or predict) sub-network latency and energy on one target.

Built-ins (``conf/hardware/*.yaml``): ``cpu``, ``onnxruntime``, ``cuda``, ``lut``,
``flops``. Third-party packages register through the entry-point group
``switchnas.hardware`` (see :mod:`switchnas.plugins.registry`). Plugin modules import
their heavy dependencies (onnxruntime, CUDA, NVML) only when used.
"""

from __future__ import annotations

from .base import HardwarePlugin, Measurement, describe_key
from .measure import MeasurementError, MeasurementWarning, TimingPolicy, measure_samples
from .registry import (
    available_plugins,
    entry_point_plugins,
    hydra_searchpath_entries,
    load_plugin,
    validate_plugin,
)

__all__ = [
    "HardwarePlugin",
    "Measurement",
    "MeasurementError",
    "MeasurementWarning",
    "TimingPolicy",
    "available_plugins",
    "describe_key",
    "entry_point_plugins",
    "hydra_searchpath_entries",
    "load_plugin",
    "measure_samples",
    "validate_plugin",
]
