"""Live replays without networks or co-runner processes: a fake bundle whose requests take
exact, fake times (the module's clock is replaced), a knob that records what it applies and
a contention meter that reports what the test says. No co-runner is ever started (load
<= 1.0, zero co-runners), so every outcome is exact."""

from __future__ import annotations

import os
import time
import types
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import torch

import switchnas.runtime.live as live
from switchnas.runtime.knobs import OperatingPoint
from switchnas.runtime.manager import OpTable

CPU = sorted(os.sched_getaffinity(0))[0]


class FakeClock:
    """``perf_counter_ns`` that only the fake bundle advances."""

    def __init__(self) -> None:
        self.ns = 0

    def perf_counter_ns(self) -> int:
        return self.ns


class FakeMember:
    def __init__(self, mid: str, accuracy: float, latency_ms: float) -> None:
        self.id, self.accuracy, self.latency_ms = mid, accuracy, latency_ms
        self.energy_mj: float | None = None
        self.config = {"r": 4}

    def latency_on(self, hardware: str | None) -> float:
        return self.latency_ms


class FakeBundle:
    """Each call takes ``took_ms[member]`` (times the knob's current ``slow`` factor) on the
    fake clock."""

    def __init__(self, clock: FakeClock, members: list[FakeMember],
                 took_ms: Mapping[str, float], knob: FakeKnob | None = None) -> None:
        self.members, self.clock, self.took_ms, self.knob = members, clock, took_ms, knob
        self.active = members[0].id
        self.calls: list[str] = []

    def activate(self, mid: str) -> None:
        self.active = mid

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape == (1, 3, 4, 4)
        self.calls.append(self.active)
        slow = 1.0 if self.knob is None or self.knob.applied is None else \
            self.knob.slow[self.knob.applied]
        self.clock.ns += round(self.took_ms[self.active] * slow * 1e6)
        return x


class FakeKnob:
    name = "fake"

    def __init__(self, slow: Mapping[str, float]) -> None:
        self.slow = dict(slow)
        self.applied: str | None = None
        self.log: list[str] = []

    def points(self) -> list[OperatingPoint]:
        return [OperatingPoint(p, {"cpus": [CPU]}) for p in self.slow]

    def current(self) -> OperatingPoint:
        return OperatingPoint(self.applied or "none")

    def apply(self, point: OperatingPoint | str) -> None:
        self.applied = point if isinstance(point, str) else point.name
        self.log.append(self.applied)

    def restore(self) -> None:
        self.applied = None
        self.log.append("restore")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    c = FakeClock()
    fake_time = types.SimpleNamespace(perf_counter_ns=c.perf_counter_ns,
                                      perf_counter=time.perf_counter,
                                      process_time=time.process_time, sleep=time.sleep)
    monkeypatch.setattr(live, "time", fake_time)
    return c


def test_live_replay_oracle_gets_the_load(clock: FakeClock) -> None:
    """The oracle is given the trace: the accurate member where the load leaves room."""
    members = [FakeMember("fast", 0.5, 1.0), FakeMember("slow", 0.9, 10.0)]
    bundle = FakeBundle(clock, members, {"fast": 1.0, "slow": 10.0})
    threads, affinity = torch.get_num_threads(), os.sched_getaffinity(0)
    res = live.live_replay(bundle, [1.0, 0.1, 1.0, 0.1], target_ms=5.0, policy="oracle",
                           core=CPU)
    assert res.ran == ["fast", "slow", "fast", "slow"]
    assert res.miss_rate == 0.5 and res.mean_latency_ms == pytest.approx(5.5)
    assert res.switches == 3 and res.mean_accuracy == pytest.approx(0.7)
    assert torch.get_num_threads() == threads and os.sched_getaffinity(0) == affinity


def point_table(energy: Mapping[str, float]) -> OpTable:
    """Two members, two points of equal latency; energy per point as given."""
    return OpTable.from_dict({
        "energy_source": "model:test",
        "members": {m: {p: {"latency_ms": lat, "energy_mj": e * lat, "power_w": None}
                        for p, e in energy.items()}
                    for m, lat in (("a", 1.0), ("b", 2.0))},
        "points": [{"name": p, "settings": {"cpus": [CPU]}} for p in energy],
        "accuracy": {"a": 0.5, "b": 0.9}})


class FakeMeter:
    """Contention the test dictates: ``factor`` at point ``busy`` from the first update."""

    made: list[FakeMeter] = []

    def __init__(self, busy: str, factor: float) -> None:
        self.busy, self.factor = busy, factor
        self.updates: list[list[int]] = []
        FakeMeter.made.append(self)

    def update(self, own_cpus: Sequence[int]) -> bool:
        self.updates.append(list(own_cpus))
        return True

    def factors(self, points: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        return {self.busy: self.factor}


def test_live_manager_replay_manager_runs_and_reports(clock: FakeClock,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Without contention the manager stays at the cheaper point; every request's latency,
    energy and point come back exactly."""
    monkeypatch.setattr(live, "CpuContention", lambda: pytest.fail("no meter asked for"))
    table = point_table({"cheap": 1.0, "dear": 3.0})
    knob = FakeKnob({"cheap": 1.0, "dear": 1.0})
    members = [FakeMember("a", 0.5, 1.0), FakeMember("b", 0.9, 2.0)]
    bundle = FakeBundle(clock, members, {"a": 1.0, "b": 2.0}, knob)
    res = live.live_manager_replay(bundle, [0, 0, 0], table=table, knob=knob,
                                   target_ms=100.0, policy="manager", contention=False)
    assert res.ran == ["b"] * 3 and res.points == ["cheap"] * 3
    assert res.point_switches == 0 and res.infeasible_requests == 0
    assert res.mean_latency_ms == pytest.approx(2.0)
    assert res.p90_latency_ms == pytest.approx(2.0)
    assert res.energy_mj_per_request == pytest.approx(2.0)
    assert res.energy_total_mj == pytest.approx(6.0)
    assert knob.log == ["cheap", "restore"]
    assert res.requests == 3 and res.miss_rate == 0.0
    assert res.energy_source == "model:test"


def test_live_manager_replay_feeds_contention_to_the_manager(
        clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``contention`` the manager gets the meter's factors: the cheap point, busy
    (energy times the factor), loses to the dear one from the second request on; each
    point switch is counted."""
    FakeMeter.made.clear()
    monkeypatch.setattr(live, "CpuContention", lambda: FakeMeter("cheap", 10.0))
    table = point_table({"cheap": 1.0, "dear": 3.0})
    knob = FakeKnob({"cheap": 1.0, "dear": 1.0})
    members = [FakeMember("a", 0.5, 1.0), FakeMember("b", 0.9, 2.0)]
    bundle = FakeBundle(clock, members, {"a": 1.0, "b": 2.0}, knob)
    res = live.live_manager_replay(bundle, [0, 0, 0], table=table, knob=knob,
                                   target_ms=100.0, policy="manager")
    assert len(FakeMeter.made) == 1 and FakeMeter.made[0].updates == [[CPU], [CPU], [CPU]]
    assert res.points == ["cheap", "dear", "dear"] and res.point_switches == 1
    assert res.ran == ["b"] * 3 and res.infeasible_requests == 0
    assert knob.log == ["cheap", "dear", "restore"]
    # latencies are equal at both points: energy 2 mJ at "cheap", 6 mJ at "dear"
    assert res.energy_total_mj == pytest.approx(2.0 + 6.0 + 6.0)


def test_live_manager_replay_counts_infeasible_requests(clock: FakeClock) -> None:
    """A target no member meets: every manager decision is infeasible."""
    table = point_table({"cheap": 1.0, "dear": 3.0})
    knob = FakeKnob({"cheap": 1.0, "dear": 1.0})
    members = [FakeMember("a", 0.5, 1.0), FakeMember("b", 0.9, 2.0)]
    bundle = FakeBundle(clock, members, {"a": 1.0, "b": 2.0}, knob)
    res = live.live_manager_replay(bundle, [0, 0], table=table, knob=knob, target_ms=0.5,
                                   policy="manager", contention=False)
    assert res.infeasible_requests == 2 and res.miss_rate == 1.0
    assert res.ran[1:] == ["a"]
