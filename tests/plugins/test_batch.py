"""The batch protocol: interleaved reference pairing, adaptive rounds, faults, isolation."""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from typing import Any

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from switchnas.plugins.base import Measurement
from switchnas.plugins.batch import (
    BatchPolicy,
    BatchResult,
    measure_batch,
    measure_interleaved,
    measure_workloads,
)
from switchnas.plugins.cpu import CPUPlugin
from switchnas.plugins.flops import FlopsPlugin
from switchnas.plugins.measure import (
    MeasurementError,
    MeasurementWarning,
    TimingPolicy,
    measure_samples,
)
from switchnas.plugins.testing import RaisingModule

FAST = dict(rounds=4, max_rounds=4, runs_per_visit=2, warmup_runs=1, max_seconds=30.0)


class Drift:
    """Synthetic workloads sharing one machine whose speed drifts by +-40 % (a sine over
    ``period`` calls: the clock is the number of calls made, so runs are deterministic)."""

    def __init__(self, seed: int = 0, period: int = 200, amp: float = 0.4, noise: float = 0.005):
        self.calls = 0
        self.rng = np.random.default_rng(seed)
        self.period, self.amp, self.noise = period, amp, noise

    def timer(self, true_ms: float):
        def run() -> float:
            self.calls += 1
            slow = 1 + self.amp * math.sin(2 * math.pi * self.calls / self.period)
            return float(true_ms * slow * (1 + self.noise * self.rng.standard_normal()))
        return run


class MeasureOnly:
    """A user plugin with only ``measure()``, timing the callable it is given."""

    name = "measure-only"

    def __init__(self, **timing: Any):
        self.policy = TimingPolicy(**timing)

    def describe(self) -> dict[str, Any]:
        return {"plugin": self.name, "device": "synthetic", "batch_size": 1}

    def measure(self, module: Any, example_input: Any) -> Measurement:
        return measure_samples(module, self.policy, name=self.name)


def true_costs(n: int = 12) -> np.ndarray:
    return (1.03 ** np.arange(n))[np.random.default_rng(1).permutation(n)]


def constant(ms: float):
    return lambda: ms


# -- the protocol ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_pairing_recovers_the_ranking_under_shared_drift(seed: int) -> None:
    true = true_costs()
    d = Drift(seed)
    # few rounds, so that a plain median over them cannot average the drift away
    pol = BatchPolicy(seed=seed, rounds=8, max_rounds=24, runs_per_visit=3, warmup_runs=1)
    res = measure_interleaved([d.timer(t) for t in true], None, pol)
    est = [m.median_ms for m in res.measurements]
    assert kendalltau(est, true)[0] > 0.9
    # The same visits without the reference (their raw values) cannot rank them: it is the
    # pairing in time that cancels the drift.
    raw = [np.median(m.meta["raw_ms"]) for m in res.measurements]
    assert kendalltau(raw, true)[0] < 0.7
    # Timing each workload alone (the default loop over measure()) cannot either.
    d2 = Drift(seed)
    plugin = MeasureOnly(warmup=1, min_repeats=20, max_repeats=20, window=2)
    alone = measure_batch(plugin, [(d2.timer(t), None) for t in true])
    assert alone.protocol["name"] == "independent"
    assert kendalltau([m.median_ms for m in alone.measurements], true)[0] < 0.6
    # The drift is recorded, and the noise floor says the profile is repeatable.
    levels = [v for _, v in res.reference_ms]
    assert max(levels) / min(levels) > 1.5
    assert res.repeatability["kendall"] > 0.9 and res.repeatability["noise_floor"] < 0.01


def test_rows_carry_estimate_interval_and_record() -> None:
    timers = [constant(1.0), constant(2.0), constant(4.0)]
    res = measure_interleaved(timers, constant(2.0), BatchPolicy(**FAST))
    assert [m.median_ms for m in res.measurements] == pytest.approx([1.0, 2.0, 4.0])
    for m in res.measurements:
        meta = m.meta
        assert meta["ci_low_ms"] <= m.median_ms <= meta["ci_high_ms"]
        assert meta["n_rounds"] == 4 == len(m.samples_ms) == len(meta["ratios"])
        assert meta["reference_level_ms"] == 2.0 and meta["protocol"] == "interleaved-reference"
        assert len(meta["raw_ms"]) == 4
    assert res.protocol["name"] == "interleaved-reference" and res.protocol["rounds"] == 4
    assert res.protocol["reference"] == "given"
    # one before each round, one after every reference_every rows and one at the end
    every = BatchPolicy(**FAST).reference_every
    assert len(res.reference_ms) == 4 * (1 + math.ceil(3 / every))
    assert all(t2 >= t1 for (t1, _), (t2, _) in zip(res.reference_ms, res.reference_ms[1:], strict=False))
    assert res.failures == [None, None, None]
    assert set(res.warnings) == {"raised", "hung", "invalid", "absurd", "zero"}
    assert not any(res.warnings.values())
    back = BatchResult.from_dict(json.loads(json.dumps(res.to_dict())))
    assert [m.median_ms for m in back.measurements] == [m.median_ms for m in res.measurements]
    assert back.protocol == json.loads(json.dumps(res.protocol))


def test_reference_defaults_to_the_median_row_of_a_first_pass() -> None:
    res = measure_interleaved([constant(3.0), constant(1.0), constant(2.0)], None,
                              BatchPolicy(**FAST))
    assert res.protocol["reference"].startswith("workload 2 ")
    assert res.measurements[2].meta["ratios"] == [1.0] * 4


def test_split_half_is_perfect_for_noiseless_timers() -> None:
    res = measure_interleaved([constant(v) for v in (1.0, 1.5, 2.0, 3.0)], constant(2.0),
                              BatchPolicy(**FAST))
    rep = res.repeatability
    assert rep["kendall"] == pytest.approx(1.0)
    assert rep["rel_error"] == 0.0 and rep["noise_floor"] == 0.0


def test_noisy_row_gets_more_rounds_than_quiet_ones() -> None:
    rng = np.random.default_rng(0)

    def noisy() -> float:
        return float(2.0 * (1 + 0.2 * rng.uniform(-1, 1)))

    pol = BatchPolicy(rounds=4, max_rounds=12, runs_per_visit=1, warmup_runs=0, ci_rel=0.02)
    res = measure_interleaved([constant(1.0), noisy, constant(3.0)], constant(2.0), pol)
    rounds = [m.meta["n_rounds"] for m in res.measurements]
    assert rounds[0] == rounds[2] == 4 and rounds[1] == 12
    assert res.protocol["n_rounds"] == 12 and res.protocol["stop_reason"] == "max_rounds"
    assert res.measurements[1].meta["ci_rel"] > 0.02


def test_adaptive_rounds_stop_at_the_time_budget() -> None:
    rng = np.random.default_rng(0)

    def slow_noisy() -> float:
        time.sleep(0.002)
        return float(rng.uniform(1, 3))

    pol = BatchPolicy(rounds=2, max_rounds=1000, runs_per_visit=1, warmup_runs=0,
                      max_seconds=0.3)
    res = measure_interleaved([slow_noisy, constant(1.0)], constant(2.0), pol)
    assert res.protocol["stop_reason"] == "max_seconds"
    assert 2 <= res.protocol["n_rounds"] < 1000


# -- faults ---------------------------------------------------------------------------------
def faulty(bad: Any, at: int = 3, good: float = 1.0):
    """A timer returning ``good`` except on call ``at``, where it returns ``bad`` (or calls
    it, if callable)."""
    calls = []

    def run() -> Any:
        calls.append(1)
        if len(calls) == at:
            return bad() if callable(bad) else bad
        return good
    return run


def divide_by_zero() -> float:
    return 1 / 0


@pytest.mark.parametrize("bad,kind", [
    (divide_by_zero, "raised"), (float("nan"), "invalid"), (float("inf"), "invalid"),
    (-1.0, "invalid"), (0.0, "zero"), (1e300, "absurd"), ("fast", "invalid"), (None, "invalid"),
])
def test_each_fault_loses_one_sample_with_a_counted_warning(bad: Any, kind: str) -> None:
    with pytest.warns(MeasurementWarning, match=f"{kind}: 1") as record:
        res = measure_interleaved([faulty(bad), constant(2.0)], constant(1.0),
                                  BatchPolicy(**FAST))
    assert len([w for w in record if issubclass(w.category, MeasurementWarning)]) == 1
    assert res.warnings[kind] == 1 and sum(res.warnings.values()) == 1
    assert res.failures == [None, None]
    assert res.measurements[0].median_ms == pytest.approx(1.0)


def test_hung_run_is_abandoned_and_counted() -> None:
    release = threading.Event()
    try:
        with pytest.warns(MeasurementWarning, match="hung: 1"):
            res = measure_interleaved(
                [faulty(lambda: release.wait(5) and 1.0), constant(2.0)], constant(1.0),
                BatchPolicy(**FAST, sample_timeout_s=0.1))
    finally:
        release.set()
    assert res.warnings["hung"] == 1 and res.failures == [None, None]
    assert res.measurements[0].median_ms == pytest.approx(1.0)


def test_rows_that_always_fail_are_dropped_with_their_reason() -> None:
    release = threading.Event()
    try:
        with pytest.warns(MeasurementWarning, match="2 of 4 rows dropped"):
            res = measure_interleaved(
                [constant(1.0), divide_by_zero, lambda: release.wait(5) and 1.0,
                 constant(3.0)],
                constant(2.0), BatchPolicy(**FAST, sample_timeout_s=0.05, max_failures=2))
    finally:
        release.set()
    assert res.measurements[1] is None and "ZeroDivisionError" in res.failures[1]
    assert res.measurements[2] is None and "hung" in res.failures[2]
    assert res.warnings["raised"] == 3 and res.warnings["hung"] == 3  # max_failures + 1
    assert [res.measurements[i].median_ms for i in (0, 3)] == pytest.approx([1.0, 3.0])
    json.dumps(res.to_dict())


def test_a_failing_reference_fails_the_batch_clearly() -> None:
    with pytest.raises(MeasurementError, match="reference workload failed.*ZeroDivision"):
        measure_interleaved([constant(1.0)], divide_by_zero, BatchPolicy(**FAST))


def test_worker_init_failure_is_reported() -> None:
    def init() -> None:
        raise OSError("no such core")

    with pytest.raises(MeasurementError, match="worker_init raised OSError: no such core"):
        measure_interleaved([constant(1.0)], constant(1.0), BatchPolicy(**FAST),
                            worker_init=init)


@pytest.mark.parametrize("bad", [
    dict(rounds=0), dict(rounds=8, max_rounds=4), dict(runs_per_visit=0), dict(warmup_runs=-1),
    dict(ci_rel=float("nan")), dict(max_seconds=0), dict(sample_timeout_s=-1),
    dict(max_failures=-1), dict(max_ms=float("inf")), dict(isolation="gpu"), dict(seed=-1),
    dict(rounds=2.5), dict(max_failures=True),
])
def test_bad_policy_names_field_and_value(bad: dict) -> None:
    key = next(k for k in bad if k != "rounds") if len(bad) > 1 else next(iter(bad))
    with pytest.raises(ValueError, match=f"{key}={bad[key]!r}".replace("(", r"\(")):
        BatchPolicy(**bad)


def test_policy_to_dict_round_trips() -> None:
    pol = BatchPolicy(rounds=3, isolation="process")
    assert BatchPolicy(**pol.to_dict()) == pol


# -- the default loop and deterministic plugins --------------------------------------------
def test_default_loop_survives_hanging_and_raising_measure() -> None:
    release = threading.Event()

    class Flaky(MeasureOnly):
        def measure(self, module: Any, example_input: Any) -> Measurement:
            if module == "hang":
                release.wait(10)
            if module == "raise":
                return 1 / 0  # type: ignore[return-value]
            if module == "zero":
                return Measurement(samples_ms=(0.0,))
            if module == "huge":
                return Measurement(samples_ms=(1e300,))
            if module == "junk":
                return "1 ms"  # type: ignore[return-value]
            return Measurement(samples_ms=(float(module),) * 4)

    work = [(1.0, None), ("hang", None), ("raise", None), (2.0, None), ("zero", None),
            ("huge", None), ("junk", None)]
    try:
        with pytest.warns(MeasurementWarning, match="5 of 7 rows dropped") as record:
            res = measure_batch(Flaky(), work, policy=BatchPolicy(sample_timeout_s=0.02))
    finally:
        release.set()
    assert len([w for w in record if issubclass(w.category, MeasurementWarning)]) == 1
    assert res.protocol["name"] == "independent"
    assert [m is not None for m in res.measurements] == [True, False, False, True, False,
                                                          False, False]
    assert "hung" in res.failures[1] and "ZeroDivisionError" in res.failures[2]
    assert res.warnings == {"raised": 1, "hung": 1, "invalid": 1, "absurd": 1, "zero": 1}
    assert res.measurements[3].median_ms == 2.0


def test_measurement_refuses_nan_energy() -> None:
    with pytest.raises(ValueError, match="energy_mj"):
        Measurement(samples_ms=(1.0,), energy_mj=float("nan"))


def test_deterministic_plugin_skips_the_protocol() -> None:
    plugin = FlopsPlugin()
    work = [(torch.nn.Linear(8, 8), torch.randn(1, 8)), (torch.nn.Linear(8, 64), torch.randn(1, 8))]
    res = measure_batch(plugin, work, policy=BatchPolicy(**FAST))
    assert res.protocol["name"] == "deterministic" and res.reference_ms == []
    assert [m.median_ms for m in res.measurements] == [plugin.measure(*w).median_ms for w in work]
    assert res.repeatability["noise_floor"] == 0.0


# -- the timing plugins ---------------------------------------------------------------------
def linear_stack(depth: int) -> torch.nn.Module:
    return torch.nn.Sequential(*[torch.nn.Linear(256, 256) for _ in range(depth)])


def test_cpu_plugin_batch_orders_modules_by_cost() -> None:
    work = [(linear_stack(d), torch.randn(1, 256)) for d in (16, 1, 4)]
    work[0][0].train()
    work[1][0].eval()
    threads = torch.get_num_threads()
    res = measure_batch(CPUPlugin(), work, policy=BatchPolicy(rounds=4, max_rounds=6,
                                                              max_seconds=20))
    est = [m.median_ms for m in res.measurements]
    assert est[1] < est[2] < est[0]
    assert res.protocol["name"] == "interleaved-reference" and res.protocol["threads"] == 1
    assert work[0][0].training and not work[1][0].training
    assert torch.get_num_threads() == threads


def test_cpu_plugin_pins_threads_and_inference_mode_on_the_measuring_thread() -> None:
    seen = []

    def fn(x: torch.Tensor) -> torch.Tensor:
        seen.append((torch.get_num_threads(), torch.is_inference_mode_enabled(), x.shape[0]))
        return x

    want = 1 if torch.get_num_threads() != 1 else 2
    measure_batch(CPUPlugin(threads=want, batch_size=3), [(fn, torch.randn(1, 4))],
                  policy=BatchPolicy(**FAST))
    assert seen and set(seen) == {(want, True, 3)}


def test_cpu_plugin_batch_drops_a_raising_module_only() -> None:
    x = torch.randn(1, 3, 8, 8)
    work = [(torch.nn.Conv2d(3, 4, 1), x), (RaisingModule(), x), (torch.nn.Conv2d(3, 8, 3), x)]
    with pytest.warns(MeasurementWarning, match="1 of 3 rows dropped"):
        res = measure_batch(CPUPlugin(), work, reference=work[0], policy=BatchPolicy(**FAST))
    assert res.measurements[1] is None and "boom" in res.failures[1]
    assert res.measurements[0] is not None and res.measurements[2] is not None


def test_onnxruntime_plugin_batch_orders_modules_by_cost() -> None:
    from switchnas.plugins.onnxruntime import OnnxRuntimePlugin

    work = [(linear_stack(d), torch.randn(1, 256)) for d in (12, 1)]
    res = measure_batch(OnnxRuntimePlugin(), work, policy=BatchPolicy(**FAST))
    assert res.measurements[1].median_ms < res.measurements[0].median_ms
    assert res.protocol["name"] == "interleaved-reference"


def test_preparation_failure_drops_the_row_not_the_batch() -> None:
    def prepare(module: Any, x: Any):
        if module == "broken":
            raise RuntimeError("cannot export")
        return constant(float(module))

    with pytest.warns(MeasurementWarning, match="1 of 3 rows dropped.*cannot export"):
        res = measure_workloads(prepare, [(1.0, None), ("broken", None), (3.0, None)],
                                reference=("broken", None), policy=BatchPolicy(**FAST))
    assert res.measurements[1] is None and "cannot export" in res.failures[1]
    assert [res.measurements[i].median_ms for i in (0, 2)] == pytest.approx([1.0, 3.0])
    assert res.protocol["reference"].startswith("the given reference failed to prepare")
    assert res.warnings["raised"] == 1


# -- process isolation ----------------------------------------------------------------------
needs_fork = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux only")


def sleeper(ms: float):
    def run() -> float:
        t0 = time.perf_counter()
        time.sleep(ms / 1e3)
        return (time.perf_counter() - t0) * 1e3
    return run


@needs_fork
def test_process_isolation_measures_in_a_pinned_worker() -> None:
    parent = os.getpid()
    pids = []

    def where() -> float:
        pids.append(os.getpid())
        return sleeper(1.0)()

    pol = BatchPolicy(**{**FAST, "isolation": "process"})
    res = measure_interleaved([where, sleeper(2.0), sleeper(6.0)], sleeper(3.0), pol)
    assert not pids, "the timers ran in the parent process"
    assert parent == os.getpid()
    est = [m.median_ms for m in res.measurements]
    assert est[0] < est[1] < est[2]
    assert res.protocol["isolation_core"] in os.sched_getaffinity(0)


@needs_fork
def test_process_isolation_survives_a_hung_timer_and_kills_a_stuck_worker() -> None:
    pol = BatchPolicy(**{**FAST, "isolation": "process", "sample_timeout_s": 0.1,
                         "max_failures": 1, "warmup_runs": 0, "runs_per_visit": 1})
    with pytest.warns(MeasurementWarning, match="hung"):
        res = measure_interleaved([sleeper(1.0), lambda: time.sleep(60) or 1.0],
                                  sleeper(1.0), pol)
    assert res.measurements[0] is not None and "hung" in res.failures[1]

    parent = os.getpid()

    def freeze() -> float:
        if os.getpid() != parent:  # only ever in the worker
            os.kill(os.getpid(), signal.SIGSTOP)
        return 1.0

    t0 = time.monotonic()
    with pytest.raises(MeasurementError, match="no sign of life"):
        measure_interleaved([sleeper(1.0), freeze], sleeper(1.0), pol)
    assert time.monotonic() - t0 < 30


@needs_fork
def test_cpu_plugin_batch_in_a_worker_process() -> None:
    work = [(linear_stack(d), torch.randn(1, 256)) for d in (8, 1)]
    res = measure_batch(CPUPlugin(), work, policy=BatchPolicy(**{**FAST, "isolation": "process"}))
    assert res.measurements[1].median_ms < res.measurements[0].median_ms


def test_rescaled_puts_a_batch_in_another_batchs_units() -> None:
    res = measure_interleaved([constant(1.0), constant(4.0)], constant(2.0), BatchPolicy(**FAST))
    same = res.rescaled(3.0)  # the reference measured 3 ms in the other batch
    assert [m.median_ms for m in same.measurements] == pytest.approx([1.5, 6.0])
    m = same.measurements[1]
    assert m.meta["ci_low_ms"] <= m.median_ms <= m.meta["ci_high_ms"]
    assert same.protocol["reference_level_ms"] == 3.0
    assert same.protocol["measured_reference_level_ms"] == pytest.approx(2.0)
    assert res.rescaled(float("nan")) is res
