"""Live manager: real inference, real co-runners, real thread/affinity changes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch

import switchnas.runtime as rt
from switchnas.runtime.knobs import ThreadsKnob
from switchnas.runtime.live import (
    CoRunner,
    CpuContention,
    calibrate_table,
    live_manager_replay,
)

linux_only = pytest.mark.skipif(not os.path.exists("/proc/stat")
                                or not hasattr(os, "sched_setaffinity"),
                                reason="needs /proc/stat and CPU affinity")


@linux_only
def test_cpu_contention_sees_a_busy_co_runner() -> None:
    meter = CpuContention(min_interval_s=0.3)
    assert meter.available
    assert not meter.update([])  # too soon: nothing measured
    cpu = sorted(os.sched_getaffinity(0))[0]
    with CoRunner(core=cpu) as co:
        co.set(True)
        meter = CpuContention(min_interval_s=0.3)
        time.sleep(0.5)  # this process idles: the CPU's busy time is someone else's
        assert meter.update([])
    assert meter.shares[cpu] >= 0.8
    points = [{"name": "a", "settings": {"cpus": [cpu]}}, {"name": "b", "settings": {}}]
    f = meter.factors(points)
    assert set(f) == {"a"} and f["a"] == pytest.approx(1.0 + meter.shares[cpu])


def test_calibrate_table(bundle_dir: Path) -> None:
    bundle = rt.load(bundle_dir, switch="inplace")
    threads = torch.get_num_threads()
    table = calibrate_table(bundle, ThreadsKnob(threads=[1]), reps=2)
    assert torch.get_num_threads() == threads  # the knob was restored
    assert table.members == [m.id for m in bundle.members]
    assert table.point_names == ["t1-cpu" + str(sorted(os.sched_getaffinity(0))[0])]
    assert table.energy_source == "model:generic"
    p = table.point_names[0]
    for m in bundle.members:
        assert table.latency(m.id, p) > 0 and table.accuracy[m.id] == m.accuracy
        assert table.energy(m.id, p) == pytest.approx(
            table.entries[m.id][p]["power_w"] * table.latency(m.id, p))  # type: ignore[operator]
    with pytest.raises(ValueError, match="quantile"):
        calibrate_table(bundle, ThreadsKnob(threads=[1]), quantile=2.0)


@pytest.mark.slow  # five live runs, each starting a co-runner process: ~20 s under load
def test_live_manager_replay(bundle_dir: Path) -> None:
    """A target every member meets by orders of magnitude (the most accurate member
    throughout, no miss) and one none can meet (every request misses, the fastest member
    runs from the second request on)."""
    bundle = rt.load(bundle_dir, switch="inplace")
    knob = ThreadsKnob()
    table = calibrate_table(bundle, knob, reps=1)
    best = max(bundle.members, key=lambda m: m.accuracy).id
    schedule = [0, 1, 1, 0]
    affinity = os.sched_getaffinity(0)
    for policy in ("manager", "feedback"):
        easy = live_manager_replay(bundle, schedule, table=table, knob=knob,
                                   target_ms=1000.0, policy=policy)
        assert easy.requests == 4 and easy.miss_rate == 0.0 and easy.ran == [best] * 4
        assert easy.energy_source == "model:generic" and easy.energy_mj_per_request > 0
        hard = live_manager_replay(bundle, schedule, table=table, knob=knob, target_ms=1e-6,
                                   policy=policy)
        fastest = {min(table.members, key=lambda m: table.latency(m, p)) for p in hard.points}
        assert hard.miss_rate == 1.0 and set(hard.ran[1:]) <= fastest
        assert hard.infeasible_requests == 4
    assert os.sched_getaffinity(0) == affinity  # restored
    fixed = live_manager_replay(bundle, [0, 0], table=table, knob=knob, target_ms=1000.0,
                                policy="static", options={"member": bundle.members[0].id,
                                                          "point": table.point_names[0]})
    assert fixed.ran == [bundle.members[0].id] * 2
    assert fixed.points == [table.point_names[0]] * 2
    with pytest.raises(ValueError, match="unknown live policy 'oracle'"):
        live_manager_replay(bundle, [0], table=table, knob=knob, target_ms=1.0,
                            policy="oracle")
    with pytest.raises(ValueError, match="co-runner counts must be >= 0"):
        live_manager_replay(bundle, [-1], table=table, knob=knob, target_ms=1.0,
                            policy="manager")
    with pytest.raises(ValueError, match="unknown point 'x'"):
        live_manager_replay(bundle, [0], table=table, knob=knob, target_ms=1.0,
                            policy="feedback", options={"point": "x"})
