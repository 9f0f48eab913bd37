"""``HardwarePluginTestSuite``: the tests every hardware plugin should pass.

Subclass it in your plugin's tests and override the ``plugin`` fixture::

    import pytest
    from switchnas.plugins.testing import HardwarePluginTestSuite

    class TestMyBoard(HardwarePluginTestSuite):
        @pytest.fixture
        def plugin(self):
            return MyBoardPlugin(repeats=3)

Override ``module`` and ``example_input`` too if your plugin only measures some kinds
of network, and set ``runs_module = False`` if it never calls the module (a lookup table),
``supports_tuple_input = False`` if it takes one tensor only. The batch path
(:func:`switchnas.plugins.batch.measure_batch`: the plugin's own ``measure_batch``, or the
default loop over ``measure()``) is tested with ``batch_policy``, a short policy you may
override. The tests never assert on wall-clock time. Importing this module needs ``pytest`` and ``torch``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import torch
from torch import nn

from .base import HardwarePlugin, Measurement, describe_key
from .batch import BatchPolicy, measure_batch
from .registry import validate_plugin

__all__ = ["HardwarePluginTestSuite", "RaisingModule", "TwoInputModule", "tiny_convnet"]


def tiny_convnet() -> nn.Module:
    """A small conv net (about 1 ms per run on a CPU core)."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )


class RaisingModule(nn.Module):
    """Raises ``RuntimeError("boom: ...")`` on every call."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom: this module always fails")


class TwoInputModule(nn.Module):
    """``forward(a, b)``: checks that tuple inputs are unpacked as ``module(*x)``."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.lin(a) + b


class HardwarePluginTestSuite:
    """Shared tests for :class:`~switchnas.plugins.base.HardwarePlugin` implementations."""

    #: the plugin calls the module it measures (``False`` for lookup tables, predictors)
    runs_module: bool = True
    #: the plugin accepts a tuple of tensors as ``example_input``
    supports_tuple_input: bool = True
    #: the policy of the batch-path test (short: 2 rounds of 1 warm-up + 2 timed runs)
    batch_policy: BatchPolicy = BatchPolicy(rounds=2, max_rounds=2, runs_per_visit=2,
                                            warmup_runs=1, max_seconds=60.0)

    @pytest.fixture
    def plugin(self) -> HardwarePlugin:
        raise NotImplementedError("override the `plugin` fixture in your test class")

    @pytest.fixture
    def module(self) -> Any:
        return tiny_convnet().eval()

    @pytest.fixture
    def example_input(self) -> Any:
        return torch.randn(1, 3, 16, 16)

    # -- the contract -------------------------------------------------------------------
    def test_validate_plugin(self, plugin: HardwarePlugin) -> None:
        assert validate_plugin(plugin) is plugin
        assert isinstance(plugin.name, str) and plugin.name

    def test_describe_is_json_and_stable(self, plugin: HardwarePlugin) -> None:
        d1, d2 = plugin.describe(), plugin.describe()
        assert isinstance(d1, dict)
        assert json.loads(json.dumps(d1)) == d1, "describe() must be plain JSON values"
        assert d1 == d2 and describe_key(d1) == describe_key(d2)
        assert "device" in d1, "describe() must name the device"
        assert "batch_size" in d1, "describe() must record the batch size"

    def test_measure_returns_finite_positive_samples(
        self, plugin: HardwarePlugin, module: Any, example_input: Any
    ) -> None:
        m = plugin.measure(module, example_input)
        assert isinstance(m, Measurement)
        assert len(m.samples_ms) >= 1
        assert all(math.isfinite(s) and s > 0 for s in m.samples_ms)
        assert m.p10_ms <= m.median_ms <= m.p90_ms
        assert m.rel_spread >= 0
        assert m.energy_mj is None or (math.isfinite(m.energy_mj) and m.energy_mj >= 0)
        json.dumps(m.summary(), default=str)

    def test_measure_keeps_module_state(
        self, plugin: HardwarePlugin, module: Any, example_input: Any
    ) -> None:
        if not isinstance(module, nn.Module):
            pytest.skip("module is not an nn.Module")
        module.train()
        threads = torch.get_num_threads()
        before = {k: v.clone() for k, v in module.state_dict().items()}
        plugin.measure(module, example_input)
        assert module.training, "measure() must restore the module's training mode"
        assert torch.get_num_threads() == threads, "measure() must restore torch's threads"
        after = module.state_dict()
        for k, v in before.items():
            assert torch.equal(v, after[k].to(v.device)), f"measure() changed {k}"
        module.eval()

    def test_tuple_input_is_unpacked(self, plugin: HardwarePlugin) -> None:
        if not (self.runs_module and self.supports_tuple_input):
            pytest.skip("plugin does not run arbitrary modules with tuple inputs")
        m = plugin.measure(TwoInputModule().eval(), (torch.randn(1, 8), torch.randn(1, 8)))
        assert m.median_ms > 0

    def test_raising_module_gives_clear_error(
        self, plugin: HardwarePlugin, example_input: Any
    ) -> None:
        if not self.runs_module:
            pytest.skip("plugin does not run the module")
        # The error must carry the module's own message, not a bare "measurement failed".
        with pytest.raises(Exception, match="boom"):
            plugin.measure(RaisingModule().eval(), example_input)

    def test_batch_path_measures_every_workload(
        self, plugin: HardwarePlugin, module: Any, example_input: Any
    ) -> None:
        res = measure_batch(plugin, [(module, example_input), (module, example_input)],
                            policy=self.batch_policy)
        assert len(res.measurements) == 2 and res.failures == [None, None]
        for m in res.measurements:
            assert isinstance(m, Measurement)
            assert all(math.isfinite(s) and s > 0 for s in m.samples_ms)
        assert res.protocol.get("name") in ("interleaved-reference", "independent",
                                            "deterministic")
        assert not any(res.warnings.values()), f"samples were dropped: {res.warnings}"
        json.dumps(res.to_dict())
