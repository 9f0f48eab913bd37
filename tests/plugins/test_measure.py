import threading
import time

import numpy as np
import pytest
import torch

from switchnas.plugins.measure import (
    MeasurementError,
    MeasurementWarning,
    TimingPolicy,
    measure_samples,
    with_batch_size,
)

FAST = dict(warmup=1, min_repeats=3, max_repeats=10, max_seconds=5.0, window=2)


def constant(value):
    return lambda: value


def sequence(values):
    it = iter(values)
    return lambda: next(it)


def test_stable_samples_stop_early():
    m = measure_samples(constant(2.0), TimingPolicy(**FAST))
    assert m.meta["stop_reason"] == "stable"
    assert len(m.samples_ms) == 3 and m.median_ms == 2.0 and m.rel_spread == 0.0


def test_unstable_samples_run_to_max_repeats():
    rng = np.random.default_rng(0)
    m = measure_samples(lambda: float(rng.uniform(1, 10)), TimingPolicy(**{**FAST, "tol": 0.0}))
    assert m.meta["stop_reason"] == "max_repeats"
    assert m.meta["n_runs"] == 10


def test_max_seconds_caps_the_loop():
    def slow():
        time.sleep(0.02)
        return float(np.random.default_rng().uniform(1, 10))

    pol = TimingPolicy(warmup=0, min_repeats=5, max_repeats=1000, max_seconds=0.1, tol=0.0)
    m = measure_samples(slow, pol)
    assert m.meta["stop_reason"] == "max_seconds"
    assert 1 <= len(m.samples_ms) < 1000


def test_outliers_rejected_and_recorded():
    values = [1.0, 1.01, 0.99, 1.0, 50.0, 1.02, 0.98, 1.0, 1.0, 1.0]
    m = measure_samples(sequence([1.0] + values), TimingPolicy(**{**FAST, "tol": 0.0}))
    assert m.meta["outliers_ms"] == [50.0]
    assert max(m.samples_ms) < 2


def test_outlier_rejection_can_be_disabled():
    values = [1.0, 1.0, 1.0, 50.0, 1.0]
    pol = TimingPolicy(warmup=0, min_repeats=5, max_repeats=5, outlier_mad=0, window=1, tol=0)
    m = measure_samples(sequence(values), pol)
    assert 50.0 in m.samples_ms and m.meta["outliers_ms"] == []


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "fast", None, True])
def test_invalid_latency_dropped_with_warning(bad):
    values = [1.0, bad, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    with pytest.warns(MeasurementWarning, match="invalid latency"):
        m = measure_samples(sequence(values), TimingPolicy(**FAST))
    assert m.meta["n_invalid"] == 1
    assert all(s == 1.0 for s in m.samples_ms)


def test_only_invalid_latencies_fail_clearly():
    with pytest.warns(MeasurementWarning), pytest.raises(MeasurementError, match="no valid"):
        measure_samples(constant(-3.0), TimingPolicy(**FAST), name="broken")


def test_raising_sample_fails_the_measurement_with_its_cause():
    def boom():
        raise ValueError("device unplugged")

    with pytest.raises(MeasurementError, match="broken.*ValueError: device unplugged"):
        measure_samples(boom, TimingPolicy(**FAST), name="broken")


def test_hung_sample_is_dropped_with_warning():
    release = threading.Event()
    calls = []

    def sometimes_hangs():
        calls.append(1)
        if len(calls) == 3:  # the second timed run hangs until released
            release.wait(5)
        return 1.0

    pol = TimingPolicy(**{**FAST, "sample_timeout_s": 0.2})
    try:
        with pytest.warns(MeasurementWarning, match="hung"):
            m = measure_samples(sometimes_hangs, pol, name="flaky")
    finally:
        release.set()
    assert m.meta["timeouts"] == 1
    assert m.median_ms == 1.0


def test_repeatedly_hung_samples_fail_the_run():
    release = threading.Event()
    pol = TimingPolicy(**{**FAST, "sample_timeout_s": 0.05, "max_timeouts": 1})
    try:
        with pytest.warns(MeasurementWarning), pytest.raises(MeasurementError, match="hung"):
            measure_samples(lambda: release.wait(5) and 1.0, pol, name="stuck")
    finally:
        release.set()


def test_worker_init_runs_on_the_measuring_thread():
    seen = {}

    def init():
        seen["init"] = threading.get_ident()

    def sample():
        seen["sample"] = threading.get_ident()
        return 1.0

    measure_samples(sample, TimingPolicy(**FAST), worker_init=init)
    assert seen["init"] == seen["sample"] != threading.get_ident()


@pytest.mark.parametrize("bad", [dict(min_repeats=0), dict(max_repeats=2, min_repeats=3),
                                 dict(max_seconds=0), dict(tol=-1), dict(sample_timeout_s=0)])
def test_bad_policy_names_the_value(bad):
    key = next(iter(bad))
    with pytest.raises(ValueError, match=key):
        TimingPolicy(**bad)


def test_with_batch_size():
    x = torch.randn(1, 3, 4, 4)
    assert with_batch_size(x, 4).shape == (4, 3, 4, 4)
    assert with_batch_size(x, 1) is x
    a, b = with_batch_size((x, torch.randn(2, 5)), 3)
    assert a.shape[0] == 3 and b.shape == (3, 5)
