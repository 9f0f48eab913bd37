"""``onnxruntime``: export the sub-network to ONNX, time it with ONNX Runtime on the CPU.

``onnx`` and ``onnxruntime`` are imported when a plugin is constructed, not when this
module is imported.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Sequence
from typing import Any

from .base import Measurement
from .batch import BatchPolicy, BatchResult, Timer, measure_workloads
from .cpu import cpu_model
from .measure import (
    MeasurementError,
    TimingPolicy,
    input_shapes,
    measure_samples,
    with_batch_size,
)

__all__ = ["OnnxRuntimePlugin"]

_OPT_LEVELS = ("disable", "basic", "extended", "all")


class OnnxRuntimePlugin:
    """Latency of a module exported to ONNX and run by ONNX Runtime's CPU provider.

    Each ``measure`` exports ``module`` (traced at ``example_input``'s shapes, eval mode)
    to a temporary file, opens an ``InferenceSession`` with ``intra_op_num_threads``
    pinned to ``threads`` (one inter-op thread, sequential execution), and times
    ``session.run``. Export and session creation are not timed (``meta`` records them).

    Args:
        threads: intra-op threads of the session.
        batch_size: batch size of the measured input.
        opset: ONNX opset of the export.
        exporter: ``"legacy"`` (TorchScript-based, ``dynamo=False``), ``"dynamo"`` (needs
            ``onnxscript``) or ``"auto"`` (dynamo where ``onnxscript`` is installed).
        optimization: ONNX Runtime graph optimization level, one of
            ``disable``, ``basic``, ``extended``, ``all``.
        warmup, min_repeats, max_repeats, max_seconds, tol, window, outlier_mad,
        sample_timeout_s, max_timeouts: the timing policy, see
            :class:`switchnas.plugins.measure.TimingPolicy`.
    """

    name = "onnxruntime"

    def __init__(self, *, threads: int = 1, batch_size: int = 1, opset: int = 17,
                 exporter: str = "legacy", optimization: str = "all", warmup: int = 3,
                 min_repeats: int = 5, max_repeats: int = 30, max_seconds: float = 2.0,
                 tol: float = 0.01, window: int = 5, outlier_mad: float = 5.0,
                 sample_timeout_s: float = 10.0, max_timeouts: int = 2):
        if threads < 1 or batch_size < 1:
            raise ValueError(f"onnxruntime plugin needs threads >= 1 and batch_size >= 1, "
                             f"got threads={threads}, batch_size={batch_size}")
        if exporter not in ("legacy", "dynamo", "auto"):
            raise ValueError(f"onnxruntime plugin: exporter={exporter!r}; "
                             "choose from ['legacy', 'dynamo', 'auto']")
        if optimization not in _OPT_LEVELS:
            raise ValueError(f"onnxruntime plugin: optimization={optimization!r}; "
                             f"choose from {list(_OPT_LEVELS)}")
        for mod in ("onnx", "onnxruntime"):
            if importlib.util.find_spec(mod) is None:
                raise ImportError(f"the onnxruntime hardware plugin needs the {mod!r} package "
                                  f"(pip install {mod})")
        if exporter == "dynamo" and importlib.util.find_spec("onnxscript") is None:
            raise ImportError("exporter='dynamo' needs the 'onnxscript' package; "
                              "install it or use exporter='legacy'")
        self.threads = threads
        self.batch_size = batch_size
        self.opset = opset
        self.exporter = exporter
        self.optimization = optimization
        self.policy = TimingPolicy(
            warmup=warmup, min_repeats=min_repeats, max_repeats=max_repeats,
            max_seconds=max_seconds, tol=tol, window=window, outlier_mad=outlier_mad,
            sample_timeout_s=sample_timeout_s, max_timeouts=max_timeouts)

    @property
    def _dynamo(self) -> bool:
        if self.exporter == "auto":
            return importlib.util.find_spec("onnxscript") is not None
        return self.exporter == "dynamo"

    def describe(self) -> dict[str, Any]:
        import onnxruntime as ort
        import torch

        return {
            "plugin": self.name,
            "device": cpu_model(),
            "machine": platform.machine(),
            "threads": self.threads,
            "batch_size": self.batch_size,
            "onnxruntime": ort.__version__,
            "torch": torch.__version__.split("+")[0],
            "provider": "CPUExecutionProvider",
            "opset": self.opset,
            "exporter": "dynamo" if self._dynamo else "legacy",
            "optimization": self.optimization,
        }

    def _export(self, module: Any, inputs: tuple[Any, ...], path: str) -> None:
        import torch

        if not isinstance(module, torch.nn.Module):
            fn = module

            class _Wrapped(torch.nn.Module):
                def forward(self, *xs: Any) -> Any:
                    return fn(*xs)

            module = _Wrapped()
        names = [f"input{i}" for i in range(len(inputs))]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notices
            torch.onnx.export(module, inputs, path, input_names=names,
                              opset_version=self.opset, dynamo=self._dynamo,
                              do_constant_folding=True)

    def _session(self, module: Any, inputs: tuple[Any, ...]) -> tuple[Any, float]:
        """Export ``module`` and open an ONNX Runtime session on it; (session, export s)."""
        import onnxruntime as ort
        import torch

        was_training = getattr(module, "training", None)
        if isinstance(module, torch.nn.Module):
            module.eval()
        with tempfile.TemporaryDirectory(prefix="switchnas-onnx-") as tmp:
            path = os.path.join(tmp, "model.onnx")
            t0 = time.perf_counter()
            try:
                with torch.inference_mode(False), torch.no_grad():
                    self._export(module, inputs, path)
            except Exception as exc:
                raise MeasurementError(
                    f"hardware plugin {self.name}: cannot export {type(module).__name__} to "
                    f"ONNX: {type(exc).__name__}: {exc}") from exc
            finally:
                if was_training and isinstance(module, torch.nn.Module):
                    module.train()
            export_s = time.perf_counter() - t0
            so = ort.SessionOptions()
            so.intra_op_num_threads = self.threads
            so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            so.graph_optimization_level = {
                "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
                "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
            }[self.optimization]
            try:
                sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            except Exception as exc:
                raise MeasurementError(f"hardware plugin {self.name}: ONNX Runtime cannot load "
                                       f"the exported model: {exc}") from exc
        return sess, export_s

    def prepare(self, module: Any, example_input: Any) -> Timer:
        """Export ``module`` at ``example_input``'s shapes (batch size applied), open the
        session; returns one timed ``session.run``. The module's training mode is kept.

        Raises:
            MeasurementError: the export or the session failed.
        """
        x = with_batch_size(example_input, self.batch_size)
        inputs = x if isinstance(x, tuple) else (x,)
        sess, _ = self._session(module, inputs)
        feeds = {i.name: t.detach().cpu().numpy()
                 for i, t in zip(sess.get_inputs(), inputs, strict=True)}

        def timer() -> float:
            t = time.perf_counter()
            sess.run(None, feeds)
            return (time.perf_counter() - t) * 1e3

        return timer

    def measure(self, module: Any, example_input: Any) -> Measurement:
        x = with_batch_size(example_input, self.batch_size)
        inputs = x if isinstance(x, tuple) else (x,)
        sess, export_s = self._session(module, inputs)
        feeds = {i.name: t.detach().cpu().numpy()
                 for i, t in zip(sess.get_inputs(), inputs, strict=True)}

        def sample() -> float:
            t = time.perf_counter()
            sess.run(None, feeds)
            return (time.perf_counter() - t) * 1e3

        m = measure_samples(sample, self.policy, name=self.name)
        m.meta.update(export_s=round(export_s, 4), input_shapes=input_shapes(x))
        return m

    def measure_batch(self, workloads: Sequence[tuple[Any, Any]], *,
                      reference: tuple[Any, Any] | None = None,
                      policy: BatchPolicy | None = None, progress: bool = False
                      ) -> BatchResult:
        """Export every workload, then time the sessions together, interleaved with a
        reference (see :func:`switchnas.plugins.batch.measure_workloads`)."""
        result = measure_workloads(self.prepare, workloads, reference=reference,
                                   policy=policy, name=self.name, progress=progress)
        result.protocol["threads"] = self.threads
        return result
