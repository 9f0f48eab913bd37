from __future__ import annotations

from pathlib import Path

import pytest

import switchnas.runtime as rt
from switchnas.runtime.live import CoRunner, live_replay


def test_co_runner_starts_and_stops() -> None:
    with CoRunner(core=0) as co:
        co.set(True)
        proc = co._proc
        assert co.running and proc is not None and proc.poll() is None
    assert not co.running and proc.poll() is not None


def test_live_replay_runs_real_requests(bundle_dir: Path) -> None:
    """Two targets whose outcome no timing noise can change: one every member meets by
    orders of magnitude (the most accurate member runs throughout, nothing misses) and
    one no member can meet (every request misses, the fastest member runs from the
    second request on, and the selector says it is infeasible)."""
    bundle = rt.load(bundle_dir, switch="inplace")
    by_accuracy = sorted(bundle.members, key=lambda m: m.accuracy)
    fastest = min(bundle.members, key=lambda m: m.latency_ms).id
    assert fastest != by_accuracy[-1].id  # the two cases ask for different members
    load = [1.0, 1.0, 2.0, 2.0, 1.0, 1.0]
    easy = live_replay(bundle, load, target_ms=1000.0, policy="feedback")
    assert easy.requests == 6 and easy.miss_rate == 0.0
    assert easy.ran == [by_accuracy[-1].id] * 6 and easy.switches == 0
    assert easy.infeasible_requests == 0 and 0 < easy.mean_latency_ms < 1000.0
    assert easy.mean_accuracy == pytest.approx(by_accuracy[-1].accuracy)
    hard = live_replay(bundle, load, target_ms=1e-6, policy="feedback")
    assert hard.requests == 6 and hard.miss_rate == 1.0
    assert hard.ran[1:] == [fastest] * 5 and hard.infeasible_requests == 6
    assert hard.mean_latency_ms > 1e-6
