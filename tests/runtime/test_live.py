from __future__ import annotations

from pathlib import Path

import switchnas.runtime as rt
from switchnas.runtime.live import CoRunner, live_replay


def test_co_runner_starts_and_stops() -> None:
    with CoRunner(core=0) as co:
        co.set(True)
        proc = co._proc
        assert co.running and proc is not None and proc.poll() is None
    assert not co.running and proc.poll() is not None


def test_live_replay_runs_real_requests(bundle_dir: Path) -> None:
    bundle = rt.load(bundle_dir, switch="inplace")
    load = [1.0, 1.0, 2.0, 2.0, 1.0, 1.0]
    r = live_replay(bundle, load, target_ms=1000.0, policy="feedback")
    assert r.requests == 6 and r.miss_rate == 0.0
    assert set(r.ran) <= set(bundle.ids) and r.mean_latency_ms > 0
