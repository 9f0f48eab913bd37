import pytest
import torch

from switchnas.plugins.measure import MeasurementError
from switchnas.plugins.onnxruntime import OnnxRuntimePlugin

from .suite import HardwarePluginTestSuite

CHEAP = dict(warmup=1, min_repeats=3, max_repeats=5, max_seconds=0.5, window=2)


class TestOnnxRuntimePlugin(HardwarePluginTestSuite):
    @pytest.fixture
    def plugin(self):
        return OnnxRuntimePlugin(**CHEAP)


def test_describe_records_runtime():
    d = OnnxRuntimePlugin(threads=2).describe()
    assert d["plugin"] == "onnxruntime" and d["threads"] == 2
    assert d["provider"] == "CPUExecutionProvider" and d["exporter"] == "legacy"


def test_unexportable_call_fails_clearly():
    class NumpyInside(torch.nn.Module):
        def forward(self, x):
            return torch.from_numpy(x.numpy() * 2)

    with pytest.raises(MeasurementError, match="cannot export"):
        OnnxRuntimePlugin(**CHEAP).measure(NumpyInside(), object())


def test_bad_options_name_the_value():
    with pytest.raises(ValueError, match="exporter='tvm'"):
        OnnxRuntimePlugin(exporter="tvm")
    with pytest.raises(ValueError, match="optimization='max'"):
        OnnxRuntimePlugin(optimization="max")


def test_measures_an_ofa_mbv3_subnet(mbv3_small):
    net, cfg = mbv3_small
    m = OnnxRuntimePlugin(**CHEAP).measure(net.extract(cfg), net.example_input(cfg))
    assert m.median_ms > 0 and m.meta["export_s"] >= 0
