"""Fluid dynamic network for reliable distributed inference (after DATE 2024).

* :class:`FluidNet`, :class:`FluidSpace` — the super-network (one column per device) and its
  space (active columns, per-column width); design decisions in :mod:`.net`.
* :class:`NestedIncrementalTraining` — its ``Task``: nested incremental training, top-1.
* :class:`FluidServer` — distributed inference over device processes (torch.distributed
  gloo on loopback): High-Throughput / High-Accuracy modes, failure detection,
  re-dispatch, mode switch, revival.
* :class:`GroupedCNN`, :class:`PipelineServer`, :func:`static_server`,
  :func:`dynamic_server`, :func:`train_grouped` — the static and nested dynamic baselines.
"""

from .baselines import GroupedCNN
from .net import Column, FluidEnsemble, FluidNet, FluidSpace
from .serving import DeviceFailure, FluidServer, PipelineServer, dynamic_server, static_server
from .training import NestedIncrementalTraining, accuracy, train_grouped

__all__ = [
    "Column",
    "DeviceFailure",
    "FluidEnsemble",
    "FluidNet",
    "FluidServer",
    "FluidSpace",
    "GroupedCNN",
    "NestedIncrementalTraining",
    "PipelineServer",
    "accuracy",
    "dynamic_server",
    "static_server",
    "train_grouped",
]
