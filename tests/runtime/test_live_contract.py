"""Live replays pinned down exactly without networks, co-runner processes or real time: a
fake bundle advances a fake clock by the time each request takes, co-runners are recorded
instead of started, and ``/proc/stat`` and the process clock are the test's."""

from __future__ import annotations

import os
import time
import types
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import torch

import switchnas.runtime.live as live
from switchnas.runtime.energy import PowerModel
from switchnas.runtime.knobs import OperatingPoint
from switchnas.runtime.manager import OpTable
from switchnas.runtime.simulate import OpsResult, SimResult

from .test_live_units import FakeKnob

CPU = sorted(os.sched_getaffinity(0))[0]


class Clock:
    def __init__(self) -> None:
        self.ns = 0
        self.t = 1000.0
        self.cpu = 5.0

    def perf_counter_ns(self) -> int:
        return self.ns

    def perf_counter(self) -> float:
        return self.t

    def process_time(self) -> float:
        return self.cpu


class Member:
    def __init__(self, mid: str, accuracy: float, latency_ms: float, r: int = 4) -> None:
        self.id, self.accuracy, self.latency_ms = mid, accuracy, latency_ms
        self.energy_mj: float | None = None
        self.config = {"r": r}
        self.asked: list[Any] = []

    def latency_on(self, hardware: str | None) -> float:
        self.asked.append(hardware)
        return self.latency_ms


class Bundle:
    """Request time: ``took[member]`` ms, times the load of the co-runners running (1 +
    their number) when ``co_slow``, times the knob's factor of its applied point."""

    def __init__(self, clock: Clock, members: list[Member], took: Mapping[str, float],
                 knob: Any = None, co_slow: bool = False) -> None:
        self.members, self.clock, self.took, self.knob = members, clock, dict(took), knob
        self.co_slow = co_slow
        self.active = members[0].id
        self.calls: list[tuple[str, tuple[int, ...]]] = []
        self.env: list[tuple[int, set[int]]] = []

    def activate(self, mid: str) -> None:
        self.active = mid

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((self.active, tuple(x.shape)))
        self.env.append((torch.get_num_threads(), os.sched_getaffinity(0)))
        slow = 1.0
        if self.knob is not None and self.knob.applied is not None:
            slow *= self.knob.slow[self.knob.applied]
        if self.co_slow:
            slow *= 1 + sum(r.on for r in Runner.made)
        self.clock.ns += round(self.took[self.active] * slow * 1e6)
        return x


class Knob(FakeKnob):
    """test_live_units' knob whose points pin ``cpus`` and one thread."""

    def __init__(self, slow: Mapping[str, float], cpus: Sequence[int] = (CPU,)) -> None:
        super().__init__(slow)
        self.cpus = list(cpus)

    def points(self) -> list[OperatingPoint]:
        return [OperatingPoint(p, {"cpus": self.cpus, "threads": 1}) for p in self.slow]


class Runner:
    """Stands in for :class:`live.CoRunner`: records what it is told."""

    made: list[Runner] = []

    def __init__(self, core: int | None) -> None:
        self.core = core
        self.on = False
        self.log: list[bool] = []
        Runner.made.append(self)

    def set(self, on: bool) -> None:
        self.on = bool(on)
        self.log.append(self.on)

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.set(False)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(live, "time", types.SimpleNamespace(
        perf_counter_ns=c.perf_counter_ns, perf_counter=c.perf_counter,
        process_time=c.process_time))
    Runner.made.clear()
    monkeypatch.setattr(live, "CoRunner", Runner)
    return c


# --------------------------------------------------------------------------- CoRunner


def test_co_runner_real_process_lifecycle() -> None:
    co = live.CoRunner(None)
    assert co.core is None and not co.running
    co.set(False)  # off while off: nothing
    assert not co.running
    with co:
        co.set(True)
        assert co.running
        proc = co._proc
        co.set(True)  # on while on: the same process
        assert co._proc is proc
    assert not co.running and proc is not None and proc.returncode is not None
    pinned = live.CoRunner(CPU)
    assert pinned.core == CPU
    with pinned:
        pinned.set(True)
        assert pinned._proc is not None
        pid = pinned._proc.pid
        assert os.sched_getaffinity(pid) == {CPU}
        assert pinned._proc.args[1:] == ["-c", "while True:\n    pass\n"]
        assert pinned._proc.poll() is None  # still busy
    assert not pinned.running


# --------------------------------------------------------------------------- live_replay


def test_live_replay_feedback_exact(clock: Clock) -> None:
    members = [Member("fast", 0.5, 1.0), Member("slow", 0.9, 4.0, r=6)]
    bundle = Bundle(clock, members, {"fast": 1.0, "slow": 4.0}, co_slow=True)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    aff = os.sched_getaffinity(0)
    try:
        res = live.live_replay(bundle, [1.0, 1.0, 1.5, 1.5], target_ms=5.0, policy="static",
                               core=CPU, hardware="hw")
        threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert isinstance(res, SimResult) and not isinstance(res, OpsResult)
    assert members[0].asked == ["hw"]
    # warm-up: each member once, on an input of its own resolution
    assert bundle.calls[:2] == [("fast", (1, 3, 4, 4)), ("slow", (1, 3, 6, 6))]
    assert bundle.calls[2:] == [("slow", (1, 3, 6, 6))] * 4
    # one co-runner, pinned to the core, on for load > 1.0 only
    assert len(Runner.made) == 1 and Runner.made[0].core == CPU
    assert Runner.made[0].log == [False, False, True, True, False]
    assert res.policy == "static" and res.requests == 4 and res.ran == ["slow"] * 4
    assert res.miss_rate == 0.5  # 4, 4, 8, 8 ms against 5 ms
    assert res.mean_latency_ms == 6.0
    assert res.mean_accuracy == pytest.approx(0.9)
    assert res.switches == 0 and res.infeasible_requests == 0
    assert res.settle_mean == 0.0 and res.settle_max == 0
    assert isinstance(res.settle_max, int)
    assert threads == 2 and os.sched_getaffinity(0) == aff
    # one thread, pinned to the core, for the warm-up and every request
    assert bundle.env == [(1, {CPU})] * 6


def test_live_replay_without_a_load_change_has_no_settle(clock: Clock) -> None:
    members = [Member("a", 0.5, 1.0)]
    bundle = Bundle(clock, members, {"a": 2.0})
    res = live.live_replay(bundle, [0.5, 0.5, 0.5], target_ms=2.0, policy="static", core=CPU)
    assert res.settle_mean is None and res.settle_max is None
    assert res.miss_rate == 0.0  # 2.0 is not above 2.0
    assert res.mean_latency_ms == pytest.approx(2.0)
    assert Runner.made[0].log == [False, False, False, False]


def test_live_replay_counts_switches_and_infeasible(clock: Clock) -> None:
    members = [Member("fast", 0.5, 1.0), Member("slow", 0.9, 10.0)]
    bundle = Bundle(clock, members, {"fast": 1.0, "slow": 10.0})
    res = live.live_replay(bundle, [1.0, 0.1, 1.0, 0.1], target_ms=5.0, policy="oracle",
                           core=CPU, options={"load": [1.0, 0.1, 1.0, 0.1]})
    assert res.ran == ["fast", "slow", "fast", "slow"] and res.switches == 3
    assert res.settle_max == 0 and res.settle_mean == 0.0  # each change settles at once
    assert res.mean_accuracy == pytest.approx(0.7)
    # a target nobody meets: the feedback selector says so on every request
    res = live.live_replay(bundle, [1.0, 1.0], target_ms=0.5, policy="feedback", core=CPU)
    assert res.infeasible_requests == 2 and res.ran == ["fast", "fast"]
    assert res.miss_rate == 1.0


def test_live_replay_restores_after_an_error(clock: Clock) -> None:
    members = [Member("a", 0.5, 1.0)]
    bundle = Bundle(clock, members, {"a": 1.0})

    def boom(x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom")

    torch.set_num_threads(1)
    aff = os.sched_getaffinity(0)
    bundle.__class__ = type("Broken", (Bundle,), {"__call__": lambda self, x: boom(x)})
    with pytest.raises(RuntimeError, match="boom"):
        live.live_replay(bundle, [1.0], target_ms=2.0, policy="static", core=CPU)
    assert os.sched_getaffinity(0) == aff


# --------------------------------------------------------------------------- /proc/stat


def test_read_proc_stat_parses_cpu_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    text = ("cpu  100 100 100 100 100 100 100 100 100 100\n"
            "cpu0 1 2 3 4 5 6 7 8 9 10\n"
            "cpu12 10 0 0 90 0 0 0 0\n"
            "cpu3 1 2 3 4 5\n"
            "cpux 1 1 1\n"
            "intr 5 5 5\n")

    class P:
        def __init__(self, path: str) -> None:
            assert path == "/proc/stat"

        def read_text(self) -> str:
            return text

    monkeypatch.setattr(live, "Path", P)
    # busy = user nice system irq softirq steal; total = the first eight fields
    assert live._read_proc_stat() == {0: (1 + 2 + 3 + 6 + 7 + 8, 36), 12: (10, 100),
                                      3: (6, 15)}


def test_read_proc_stat_unreadable_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    class P:
        def __init__(self, path: str) -> None:
            pass

        def read_text(self) -> str:
            raise PermissionError("no")

    monkeypatch.setattr(live, "Path", P)
    assert live._read_proc_stat() == {}
    assert live.CpuContention().available is False


def test_read_proc_stat_here_has_this_cpu() -> None:
    stat = live._read_proc_stat()
    if not stat:
        pytest.skip("no /proc/stat")
    busy, total = stat[CPU]
    assert 0 <= busy <= total


# --------------------------------------------------------------------------- CpuContention


class Stat:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, clock: Clock, clk: int = 100) -> None:
        self.now: dict[int, tuple[int, int]] = {}
        self.reads = 0
        monkeypatch.setattr(live, "_read_proc_stat", self.read)
        monkeypatch.setattr(live.os, "sysconf", lambda name: clk if name == "SC_CLK_TCK"
                            else pytest.fail(name))

    def read(self) -> dict[int, tuple[int, int]]:
        self.reads += 1
        return dict(self.now)


def test_contention_shares_exact(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    stat = Stat(monkeypatch, clock)
    stat.now = {0: (0, 0), 1: (0, 0), 2: (0, 0), 3: (0, 0)}
    clock.t = 0.0
    meter = live.CpuContention()
    assert meter.min_interval_s == 0.1 and meter.shares == {} and meter.available
    # too soon: nothing read, nothing changed
    clock.t += 0.05
    assert meter.update([0]) is False and stat.reads == 1
    clock.t += 0.05  # exactly the minimum interval: measured
    clock.cpu += 0.5  # 50 ticks of this process's time, on CPUs 0 and 1: 25 each
    stat.now = {4: (7, 7), 0: (75, 100), 1: (25, 100), 2: (40, 100), 3: (100, 100)}
    assert meter.update([1, 0, 1]) is True
    # CPU 0: (75 - 25) / (100 - 25); CPU 1: 0; others: busy / total; CPU 4 new: skipped
    assert meter.shares == pytest.approx({0: 2 / 3, 1: 0.0, 2: 0.4, 3: 1.0})
    assert 4 not in meter.shares
    f = meter.factors([{"name": "p01", "settings": {"cpus": [0, 1]}},
                       {"name": "p2", "settings": {"cpus": ["2"]}},
                       {"name": "p9", "settings": {"cpus": [9]}},
                       {"name": "none", "settings": {"cpus": []}},
                       {"name": "threads", "settings": {"threads": 2}},
                       {"name": "bare"}])
    assert f == pytest.approx({"p01": 1 + 2 / 3, "p2": 1.4, "p9": 1.0})


def test_contention_clamps_and_keeps_old_shares(clock: Clock,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    stat = Stat(monkeypatch, clock)
    stat.now = {0: (0, 0), 1: (0, 0), 2: (0, 0)}
    meter = live.CpuContention(min_interval_s=0)
    assert meter.min_interval_s == 0.0 and isinstance(meter.min_interval_s, float)
    clock.cpu += 1.0  # 100 ticks, all on CPU 0
    # CPU 0: this process used more than the busy time counted: share 0, not negative
    # CPU 1: free == 1 tick (> 0.5): measured, busy 1 of 1 -> 1.0
    # CPU 2: no tick moved: keeps its old share (none yet: 0.0)
    stat.now = {0: (50, 200), 1: (1, 1), 2: (0, 0)}
    assert meter.update([0])
    assert meter.shares == {0: 0.0, 1: 1.0, 2: 0.0}
    clock.cpu += 0.0
    stat.now = {0: (250, 300), 1: (1, 1), 2: (0, 0)}
    assert meter.update([0])
    # CPU 0: 200 busy of 100 ticks -> clamped to 1; CPU 1 no tick: keeps 1.0
    assert meter.shares == {0: 1.0, 1: 1.0, 2: 0.0}
    assert meter.factors([{"name": "p", "settings": {"cpus": [2, 1]}}]) == {"p": 2.0}


def test_contention_without_own_cpus_spreads_over_all(clock: Clock,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    stat = Stat(monkeypatch, clock)
    stat.now = {0: (0, 0), 1: (0, 0)}
    meter = live.CpuContention(min_interval_s=0)
    clock.cpu += 1.0  # 100 ticks over CPUs 0 and 1: 50 each
    stat.now = {0: (75, 100), 1: (50, 100)}
    assert meter.update([])
    assert meter.shares == pytest.approx({0: 0.5, 1: 0.0})


def test_contention_half_a_tick_free_is_not_measured(clock: Clock,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    stat = Stat(monkeypatch, clock, clk=101)
    stat.now = {0: (0, 0), 1: (0, 0)}
    meter = live.CpuContention(min_interval_s=0)
    meter.shares = {0: 0.25}
    clock.cpu += 0.5  # 50.5 ticks on CPU 0
    stat.now = {0: (51, 51), 1: (0, 0)}
    assert meter.update([0])
    assert meter.shares == {0: 0.25, 1: 0.0}  # free == 0.5 exactly: the old share is kept
    clock.cpu += 0.5
    stat.now = {0: (102, 103), 1: (0, 0)}  # free 1.5 > 0.5: (51 - 50.5) / 1.5
    assert meter.update([0])
    assert meter.shares[0] == pytest.approx(1 / 3)


def test_contention_without_proc_stat_never_updates(clock: Clock,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    stat = Stat(monkeypatch, clock)
    stat.now = {}
    meter = live.CpuContention(min_interval_s=0)
    clock.t += 10
    assert meter.available is False
    assert meter.update([0]) is False and stat.reads == 1
    assert meter.factors([{"name": "p", "settings": {"cpus": [0]}}]) == {"p": 1.0}


def test_contention_interval_restarts_at_each_update(clock: Clock,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    stat = Stat(monkeypatch, clock)
    stat.now = {0: (0, 0)}
    meter = live.CpuContention(min_interval_s=1.0)
    clock.t += 1.0
    stat.now = {0: (10, 100)}
    assert meter.update([1])
    assert meter.shares == {0: pytest.approx(0.1)}
    clock.t += 0.5
    assert not meter.update([1])
    clock.t += 0.5
    stat.now = {0: (110, 200)}
    assert meter.update([1])
    assert meter.shares == {0: pytest.approx(1.0)}  # measured since the last update only


# --------------------------------------------------------------------------- calibrate_table


def test_calibrate_table_exact(clock: Clock) -> None:
    knob = Knob({"p1": 1.0, "p2": 2.0})
    members = [Member("a", 0.5, 1.0), Member("b", 0.75, 3.0)]
    bundle = Bundle(clock, members, {"a": 1.0, "b": 3.0}, knob=knob)
    model = PowerModel("m", ((1000000, 1000000),), 1.0)
    table = live.calibrate_table(bundle, knob, reps=3, quantile=0.5, power_model=model)
    assert isinstance(table, OpTable)
    # 3 counted rounds after 2 unmeasured ones, each over every point then every member
    assert knob.log == ["p1", "p2"] * 5 + ["restore"]
    assert [c[0] for c in bundle.calls] == ["a", "b"] * 10
    w = model.point_power_w({"cpus": [CPU], "threads": 1})
    assert table.latency("a", "p1") == pytest.approx(1.0)
    assert table.latency("b", "p2") == pytest.approx(6.0)
    assert table.energy("b", "p2") == pytest.approx(w * 6.0)
    assert table.entries["a"]["p2"]["power_w"] == pytest.approx(w)
    assert table.energy_source == "model:m"
    assert table.accuracy == {"a": 0.5, "b": 0.75}
    assert table.point_names == ["p1", "p2"]
    d = table.to_dict()
    assert d["meta"] == {"measured": "quantile 0.5 of 3 interleaved requests per member and "
                                     "point, unloaded", "power_model": model.to_dict()}


def test_calibrate_table_keeps_the_quantile(clock: Clock) -> None:
    knob = Knob({"p": 1.0})
    members = [Member("a", 0.5, 1.0)]
    times = iter([100.0, 100.0, 5.0, 1.0, 3.0, 2.0, 4.0])  # 2 warm rounds, then 5

    class Timed(Bundle):
        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            self.clock.ns += round(next(times) * 1e6)
            return x

    bundle = Timed(clock, members, {"a": 1.0}, knob=knob)
    table = live.calibrate_table(bundle, knob, reps=5, quantile=0.25)
    assert table.latency("a", "p") == pytest.approx(2.0)
    assert table.energy_source == "model:generic"  # the default power model
    times2 = iter([100.0, 100.0] + [1.0, 2.0, 3.0, 4.0, 5.0] * 3)
    bundle2 = Timed(clock, members, {"a": 1.0}, knob=knob)
    times = times2
    assert live.calibrate_table(bundle2, knob, reps=5, quantile=1.0).latency(
        "a", "p") == pytest.approx(5.0)
    times = iter([100.0, 100.0] + [3.0, 2.0, 3.0, 4.0, 5.0])
    assert live.calibrate_table(Timed(clock, members, {"a": 1.0}, knob=knob), knob, reps=5,
                                quantile=0.0).latency("a", "p") == pytest.approx(2.0)
    times = iter([100.0, 100.0] + [1.0] * 15)
    assert live.calibrate_table(Timed(clock, members, {"a": 1.0}, knob=knob),
                                knob).to_dict()["meta"]["measured"].startswith(
        "quantile 0.2 of 15 interleaved")


@pytest.mark.parametrize("reps, q", [(0, 0.2), (1, -0.01), (1, 1.01)])
def test_calibrate_table_refuses(clock: Clock, reps: int, q: float) -> None:
    knob = Knob({"p": 1.0})
    bundle = Bundle(clock, [Member("a", 0.5, 1.0)], {"a": 1.0}, knob=knob)
    with pytest.raises(ValueError) as info:
        live.calibrate_table(bundle, knob, reps=reps, quantile=q)
    assert str(info.value) == (f"need reps >= 1 and quantile in [0, 1], got {reps}, {q}")
    assert knob.log == []


def test_calibrate_table_restores_after_an_error(clock: Clock) -> None:
    knob = Knob({"p": 1.0})

    class Broken(Bundle):
        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        live.calibrate_table(Broken(clock, [Member("a", 0.5, 1.0)], {"a": 1.0}, knob=knob),
                             knob, reps=1)
    assert knob.log == ["p", "restore"]


# --------------------------------------------------------------------------- live_manager_replay


def table2(lat: Mapping[str, Mapping[str, float]], energy: Mapping[str, float] | None = None,
           accuracy: Mapping[str, float] | None = None,
           cpus: Mapping[str, list[int]] | None = None) -> OpTable:
    points = list(next(iter(lat.values())))
    data: dict[str, Any] = {
        "energy_source": "model:t",
        "members": {m: {p: {"latency_ms": row[p],
                            "energy_mj": None if energy is None else energy[p] * row[p],
                            "power_w": None}
                        for p in points} for m, row in lat.items()},
        "points": [{"name": p, "settings": {"cpus": (cpus or {}).get(p, [CPU])}}
                   for p in points]}
    if accuracy is not None:
        data["accuracy"] = dict(accuracy)
    return OpTable.from_dict(data)


def test_live_manager_replay_checks_its_arguments(clock: Clock) -> None:
    t = table2({"a": {"p": 1.0}}, accuracy={"a": 0.5})
    knob = Knob({"p": 1.0})
    bundle = Bundle(clock, [Member("a", 0.5, 1.0)], {"a": 1.0}, knob=knob)
    with pytest.raises(ValueError) as info:
        live.live_manager_replay(bundle, [0], table=t, knob=knob, target_ms=5,
                                 policy="oracle")
    assert str(info.value) == ("unknown live policy 'oracle'; choose manager, feedback or "
                               "static")
    with pytest.raises(ValueError) as info:
        live.live_manager_replay(bundle, [1, -1, -1, 0], table=t, knob=knob, target_ms=5,
                                 policy="static")
    assert str(info.value) == "co-runner counts must be >= 0, got [-1, 0, 1]"
    with pytest.raises(ValueError) as info:
        live.live_manager_replay(bundle, [0], table=t, knob=knob, target_ms=5,
                                 policy="static", options={"point": "q"})
    assert str(info.value) == "unknown point 'q'; points are ['p']"
    assert knob.log == [] and Runner.made == []


def test_live_manager_replay_static_default_point_and_energy(clock: Clock) -> None:
    # p2 is fastest on average (sum 3 + 3 < 2 + 6); energy per ms: p1 1, p2 2
    t = table2({"a": {"p1": 2.0, "p2": 3.0}, "b": {"p1": 6.0, "p2": 3.0}},
               energy={"p1": 1.0, "p2": 2.0}, accuracy={"a": 0.5, "b": 0.9})
    knob = Knob({"p1": 1.0, "p2": 1.0})
    members = [Member("a", 0.1, 1.0), Member("b", 0.2, 1.0)]
    bundle = Bundle(clock, members, {"a": 3.0, "b": 6.0}, knob=knob, co_slow=True)
    res = live.live_manager_replay(bundle, [0, 2, 2, 0], table=t, knob=knob,
                                   target_ms=10.0, policy="static", cores=[CPU, None])
    assert isinstance(res, OpsResult)
    assert res.policy == "static" and res.model == "model" and res.requests == 4
    assert res.points == ["p2"] * 4 and res.point_switches == 0
    assert knob.log == ["p2", "restore"]  # applied once, restored at the end
    # the table's accuracies win over the members'; static: the most accurate in time
    assert res.ran == ["b"] * 4 and res.mean_accuracy == pytest.approx(0.9)
    # two co-runners, cores in turn; on while the count says so, off at the end
    assert [r.core for r in Runner.made] == [CPU, None]
    assert [r.log for r in Runner.made] == [[False, True, True, False, False],
                                            [False, True, True, False, False]]
    # latency 6, 18, 18, 6 ms; energy scales with it: 6 * 6 / 3 = 12 mJ at 6 ms
    assert res.mean_latency_ms == 12.0  # ns / 1e6, exactly
    assert res.miss_rate == 0.5
    assert res.energy_total_mj == pytest.approx(12 + 36 + 36 + 12)
    assert res.energy_mj_per_request == pytest.approx(24.0)
    assert res.p90_latency_ms == 18.0
    assert res.energy_source == "model:t"
    assert res.switches == 0 and res.settle_max == 0 and isinstance(res.settle_max, int)
    assert res.settle_mean == 0.0
    assert res.infeasible_requests == 0


def test_live_manager_replay_fixed_point_option_and_unknown_energy(clock: Clock) -> None:
    t = table2({"a": {"p1": 2.0, "p2": 1.0}}, energy=None)
    knob = Knob({"p1": 1.0, "p2": 1.0})
    members = [Member("a", 0.7, 1.0)]
    bundle = Bundle(clock, members, {"a": 2.0}, knob=knob)
    res = live.live_manager_replay(bundle, [0, 0], table=t, knob=knob, target_ms=1.5,
                                   policy="feedback", options={"point": "p1"})
    assert res.points == ["p1", "p1"] and knob.log == ["p1", "restore"]
    assert res.energy_total_mj == 0.0 and res.energy_mj_per_request == 0.0
    assert res.mean_accuracy == pytest.approx(0.7)  # from the members: no table accuracy
    assert res.infeasible_requests == 2 and res.miss_rate == 1.0
    assert res.settle_mean is None and res.settle_max is None
    assert Runner.made == []


def test_live_manager_replay_manager_switches_points_under_load(clock: Clock) -> None:
    """Two co-runners at request 2: the observed slowdown makes the manager move."""
    t = table2({"a": {"slow": 4.0, "fast": 1.0}}, energy={"slow": 1.0, "fast": 5.0},
               accuracy={"a": 0.5})
    knob = Knob({"slow": 4.0, "fast": 1.0})
    bundle = Bundle(clock, [Member("a", 0.5, 1.0)], {"a": 1.0}, knob=knob, co_slow=True)
    res = live.live_manager_replay(bundle, [0, 0, 2, 2, 2, 2, 2, 2, 0, 0], table=t,
                                   knob=knob, target_ms=6.0, policy="manager",
                                   contention=False,
                                   options={"selector_options": {"margin": 0.0}})
    assert res.points[:3] == ["slow"] * 3
    assert "fast" in res.points
    assert res.point_switches == sum(a != b for a, b in zip(res.points, res.points[1:], strict=False))
    assert knob.log[0] == "slow" and knob.log[-1] == "restore"
    assert knob.log[:-1] == [p for i, p in enumerate(res.points)
                             if i == 0 or p != res.points[i - 1]]
    assert res.settle_max is not None and isinstance(res.settle_max, int)
    assert Runner.made[0].log[-1] is False and Runner.made[1].log[-1] is False


def test_live_manager_replay_meter_gets_the_point_cpus(clock: Clock,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[int]] = []
    tables: list[Any] = []

    class Meter:
        def update(self, own: Sequence[int]) -> bool:
            seen.append(list(own))
            return len(seen) % 2 == 1

        def factors(self, points: Sequence[Mapping[str, Any]]) -> dict[str, float]:
            tables.append([p["name"] for p in points])
            return {}

    monkeypatch.setattr(live, "CpuContention", Meter)
    t = table2({"a": {"p": 1.0}}, energy={"p": 1.0}, accuracy={"a": 0.5},
               cpus={"p": [CPU, CPU + 7]})
    knob = Knob({"p": 1.0})
    bundle = Bundle(clock, [Member("a", 0.5, 1.0)], {"a": 1.0}, knob=knob)
    res = live.live_manager_replay(bundle, [0, 0, 0], table=t, knob=knob, target_ms=5,
                                   policy="manager")
    assert seen == [[CPU, CPU + 7]] * 3 and tables == [["p"], ["p"]]
    assert res.ran == ["a"] * 3 and res.infeasible_requests == 0
    # no meter for the other policies, nor with contention=False
    monkeypatch.setattr(live, "CpuContention", lambda: pytest.fail("no meter"))
    live.live_manager_replay(bundle, [0], table=t, knob=knob, target_ms=5, policy="static")
    live.live_manager_replay(bundle, [0], table=t, knob=knob, target_ms=5, policy="manager",
                             contention=False)


def test_live_manager_replay_restores_after_an_error(clock: Clock) -> None:
    t = table2({"a": {"p": 1.0}}, accuracy={"a": 0.5})
    knob = Knob({"p": 1.0})

    class Broken(Bundle):
        n = 0

        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            Broken.n += 1
            if Broken.n > 1:
                raise RuntimeError("boom")
            return x

    with pytest.raises(RuntimeError, match="boom"):
        live.live_manager_replay(Broken(clock, [Member("a", 0.5, 1.0)], {"a": 1.0}), [1],
                                 table=t, knob=knob, target_ms=5, policy="static")
    assert knob.log == ["p", "restore"]
    assert Runner.made[0].log == [True, False]


def test_time_module_is_the_real_one_by_default() -> None:
    assert live.time is time


def test_live_replay_default_core_is_zero(clock: Clock) -> None:
    if 0 not in os.sched_getaffinity(0):
        pytest.skip("CPU 0 is not ours")
    bundle = Bundle(clock, [Member("a", 0.5, 1.0)], {"a": 1.0})
    live.live_replay(bundle, [2.0], target_ms=2.0, policy="static")
    assert {frozenset(a) for _, a in bundle.env} == {frozenset({0})}
    assert Runner.made[0].core == 0 and Runner.made[0].log == [True, False]


def test_live_manager_replay_load_is_one_plus_the_co_runners(clock: Clock) -> None:
    """10 -> 11 co-runners is a load change of 12/11 (< 10 %): nothing to settle."""
    t = table2({"a": {"p": 1.0}}, accuracy={"a": 0.5})
    knob = Knob({"p": 1.0})
    bundle = Bundle(clock, [Member("a", 0.5, 1.0)], {"a": 1.0}, knob=knob)
    res = live.live_manager_replay(bundle, [10, 11, 11], table=t, knob=knob, target_ms=5,
                                   policy="static")
    assert res.settle_mean is None and res.settle_max is None
    assert len(Runner.made) == 11
    assert [r.log for r in Runner.made[9:]] == [[True, True, True, False],
                                               [False, True, True, False]]
    res = live.live_manager_replay(bundle, [0, 1], table=t, knob=knob, target_ms=5,
                                   policy="static")
    assert res.settle_max == 0 and res.settle_mean == 0.0


def test_live_manager_replay_manager_without_table_accuracy(
        clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Accuracies from the bundle's members; a point without ``cpus`` is measured on the
    CPUs this process may use."""
    seen: list[list[int]] = []

    class Meter:
        def update(self, own: Sequence[int]) -> bool:
            seen.append(list(own))
            return False

        def factors(self, points: Sequence[Mapping[str, Any]]) -> dict[str, float]:
            raise AssertionError("no factors without an update")

    monkeypatch.setattr(live, "CpuContention", Meter)
    t = OpTable.from_dict({
        "energy_source": "rapl",
        "members": {"a": {"p": {"latency_ms": 1.0, "energy_mj": 1.0}},
                    "b": {"p": {"latency_ms": 3.0, "energy_mj": 2.0}}},
        "points": [{"name": "p", "settings": {"threads": 1}}]})
    knob = Knob({"p": 1.0})
    members = [Member("a", 0.25, 1.0), Member("b", 0.75, 3.0)]
    bundle = Bundle(clock, members, {"a": 1.0, "b": 3.0}, knob=knob)
    res = live.live_manager_replay(bundle, [0, 0], table=t, knob=knob, target_ms=10,
                                   policy="manager")
    assert res.ran == ["b", "b"] and res.mean_accuracy == pytest.approx(0.75)
    assert seen == [sorted(os.sched_getaffinity(0))] * 2
    assert res.energy_total_mj == pytest.approx(4.0)
