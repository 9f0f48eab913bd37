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


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device")
def test_batch_orders_modules_and_reports_energy():
    from switchnas.plugins.batch import BatchPolicy, measure_batch

    def stack(depth):
        return torch.nn.Sequential(*[torch.nn.Linear(2048, 2048) for _ in range(depth)])

    work = [(stack(d), torch.randn(64, 2048)) for d in (24, 1)]
    plugin = CUDAPlugin(batch_size=64, energy_seconds=0.2)
    res = measure_batch(plugin, work, policy=BatchPolicy(rounds=4, max_rounds=4))
    assert res.measurements[1].median_ms < res.measurements[0].median_ms
    assert next(work[0][0].parameters()).device.type == "cpu"  # the caller's module stays
    for m in res.measurements:
        assert (m.energy_mj is not None and m.energy_mj > 0) or m.meta["energy_unavailable"]
    with pytest.raises(ValueError, match="isolation='process'"):
        plugin.measure_batch(work, policy=BatchPolicy(isolation="process"))
