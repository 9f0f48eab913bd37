import pytest
import torch

from switchnas.plugins.cuda import CUDAPlugin

from .suite import HardwarePluginTestSuite

HAS_CUDA = torch.cuda.is_available()


@pytest.mark.skipif(HAS_CUDA, reason="a CUDA device is present")
def test_no_gpu_gives_a_clear_error():
    with pytest.raises(RuntimeError, match="no CUDA device"):
        CUDAPlugin()


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device")
class TestCUDAPlugin(HardwarePluginTestSuite):
    @pytest.fixture
    def plugin(self):
        return CUDAPlugin(warmup=2, min_repeats=3, max_repeats=10, max_seconds=1.0,
                          energy_seconds=0.2)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device")
def test_energy_is_reported_or_explained(mbv3_small):
    net, cfg = mbv3_small
    m = CUDAPlugin(max_seconds=0.5, energy_seconds=0.3).measure(net.extract(cfg),
                                                                net.example_input(cfg))
    assert m.median_ms > 0
    assert (m.energy_mj is not None and m.energy_mj > 0) or m.meta["energy_unavailable"]


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device")
def test_bad_device_index():
    with pytest.raises(ValueError, match="device=99"):
        CUDAPlugin(device=99)
