import pytest
import torch

from switchnas.plugins.cpu import CPUPlugin
from switchnas.plugins.registry import load_plugin

from .suite import HardwarePluginTestSuite

CHEAP = dict(warmup=1, min_repeats=3, max_repeats=5, max_seconds=0.5, window=2)


class TestCPUPlugin(HardwarePluginTestSuite):
    @pytest.fixture
    def plugin(self):
        return CPUPlugin(**CHEAP)


def test_threads_are_pinned_during_measurement_and_restored():
    before = torch.get_num_threads()
    want = 1 if before != 1 else 2
    m = CPUPlugin(threads=want, **CHEAP).measure(torch.nn.Linear(4, 4), torch.randn(1, 4))
    assert m.meta["threads_observed"] == want
    assert torch.get_num_threads() == before


def test_batch_size_sets_the_input_batch():
    seen = []

    def fn(x):
        seen.append(x.shape[0])
        return x

    m = CPUPlugin(batch_size=3, **CHEAP).measure(fn, torch.randn(1, 4))
    assert set(seen) == {3} and m.meta["input_shapes"] == [[3, 4]]


def test_runs_under_inference_mode():
    modes = []

    def fn(x):
        modes.append(torch.is_inference_mode_enabled())
        return x

    CPUPlugin(**CHEAP).measure(fn, torch.randn(1, 4))
    assert modes and all(modes)


def test_describe_names_the_target():
    d = CPUPlugin(threads=2, batch_size=4).describe()
    assert d["plugin"] == "cpu" and d["threads"] == 2 and d["batch_size"] == 4
    assert d["device"] and d["torch"] == torch.__version__.split("+")[0]


def test_bad_arguments():
    with pytest.raises(ValueError, match="threads"):
        CPUPlugin(threads=0)
    with pytest.raises(ValueError, match="max_repeats"):
        CPUPlugin(min_repeats=10, max_repeats=5)


def test_builtin_config_is_cheap_and_loads():
    p = load_plugin("cpu")
    assert isinstance(p, CPUPlugin)
    # at most about a second per sub-network, so a 60-network profile stays around a minute
    assert p.policy.max_seconds <= 1.0 and p.policy.max_repeats <= 60


def test_measures_an_ofa_mbv3_subnet(mbv3_small):
    net, cfg = mbv3_small
    m = CPUPlugin(**CHEAP).measure(net.extract(cfg), net.example_input(cfg))
    assert m.median_ms > 0 and m.meta["input_shapes"] == [[1, 3, 32, 32]]


def test_hung_run_is_dropped_and_the_measurement_goes_on():
    import threading

    from switchnas.plugins.measure import MeasurementWarning

    release, calls = threading.Event(), []

    def hangs_once(x):
        calls.append(1)
        if len(calls) == 3:
            release.wait(5)
        return x

    plugin = CPUPlugin(**{**CHEAP, "sample_timeout_s": 0.2})
    try:
        with pytest.warns(MeasurementWarning, match="hung for more than 0.2 s"):
            m = plugin.measure(hangs_once, torch.randn(1, 4))
    finally:
        release.set()
    assert m.meta["timeouts"] == 1 and len(m.samples_ms) >= 1


def test_describe_holds_no_volatile_conditions():
    d = CPUPlugin().describe()
    text = str(d).lower()
    assert not any(word in text for word in ("khz", "load", "steal", "affinity"))
    assert d == CPUPlugin().describe()


def test_prepare_gives_a_timer_in_ms():
    module = torch.nn.Linear(4, 4).train()
    timer = CPUPlugin(batch_size=2).prepare(module, torch.randn(1, 4))
    assert not module.training  # prepare sets eval mode; measure_batch restores it
    ms = timer()
    assert isinstance(ms, float) and ms > 0
