"""Contract tests of ``switchnas.runtime.simulate``: exact traces, CSV parsing, replay
bookkeeping with and without noise, settle times, the operating-point replay, the table
formatting and the CLI's output and JSON."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from switchnas.runtime import BundleError
from switchnas.runtime import simulate as sim
from switchnas.runtime.manager import ModelSpec, OpTable
from switchnas.runtime.selectors import MemberInfo

MEMBERS = [MemberInfo("a", 0.6, 2.0), MemberInfo("b", 0.8, 4.0)]


class _Fixed:
    """A selector that always runs ``current`` and records what it sees."""

    def __init__(self, current: str, infeasible: bool | None = None):
        self.current = current
        self.seen: list[float] = []
        if infeasible is not None:
            self.infeasible = infeasible

    def step(self, latency_ms: float) -> None:
        self.seen.append(latency_ms)


class _Script:
    """A selector that runs the members of ``plan`` in order."""

    def __init__(self, plan: list[str]):
        self.plan = plan
        self.i = 0

    @property
    def current(self) -> str:
        return self.plan[self.i]

    def step(self, latency_ms: float) -> None:
        self.i += 1


# -- traces ------------------------------------------------------------------------------------
def test_step_trace_exact() -> None:
    assert sim.step_trace(9).tolist() == [1, 1, 1, 2, 2, 2, 1, 1, 1]
    assert sim.step_trace(10).tolist() == [1, 1, 1, 2, 2, 2, 1, 1, 1, 1]
    assert sim.step_trace(5, low=0.5, high=3.0).tolist() == [0.5, 3.0, 3.0, 0.5, 0.5]
    assert sim.step_trace(3).dtype == float


def test_ramp_trace_exact() -> None:
    assert sim.ramp_trace(6).tolist() == [1.0, 1.5, 2.0, 2.0, 1.5, 1.0]
    assert np.allclose(sim.ramp_trace(7, low=2.0, high=5.0),
                       [2.0, 3.5, 5.0, 5.0, 4.0, 3.0, 2.0])


def test_periodic_trace_exact() -> None:
    assert sim.periodic_trace(8, period=4).tolist() == [1, 1, 2, 2, 1, 1, 2, 2]
    assert sim.periodic_trace(8, period=4, duty=0.25, low=0.5, high=4.0).tolist() == \
        [0.5, 0.5, 0.5, 4.0, 0.5, 0.5, 0.5, 4.0]
    t = sim.periodic_trace(130)  # period 60, duty 0.5 by default
    assert t[:30].tolist() == [1.0] * 30 and t[30:60].tolist() == [2.0] * 30
    assert t[60:90].tolist() == [1.0] * 30 and t[120:].tolist() == [1.0] * 10
    assert t.dtype == float


def _walk(n: int, low: float, high: float, sigma: float, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    lo, hi = math.log(low), math.log(high)
    x, out = lo, []
    for _ in range(n):
        x += rng.normal(0.0, sigma)
        if x < lo:
            x = lo + (lo - x)
        if x > hi:
            x = hi - (x - hi)
        out.append(math.exp(min(max(x, lo), hi)))
    return out


def test_random_walk_reflects_into_the_band() -> None:
    got = sim.random_walk_trace(200, low=1.5, high=3.0, sigma=0.3, seed=4)
    assert np.allclose(got, _walk(200, 1.5, 3.0, 0.3, 4))
    assert got.min() >= 1.5 and got.max() <= 3.0
    # defaults: low 1, high 2, sigma 0.05, seed 0
    assert np.array_equal(sim.random_walk_trace(100),
                          sim.random_walk_trace(100, low=1.0, high=2.0, sigma=0.05, seed=0))
    assert np.allclose(sim.random_walk_trace(100), _walk(100, 1.0, 2.0, 0.05, 0))
    assert np.allclose(sim.random_walk_trace(300, sigma=0.4), _walk(300, 1.0, 2.0, 0.4, 0))
    wild = sim.random_walk_trace(60, low=1.5, high=2.5, sigma=5.0, seed=1)  # overshoots
    assert np.allclose(wild, _walk(60, 1.5, 2.5, 5.0, 1))
    assert wild.min() >= 1.5 and wild.max() <= 2.5
    assert np.sum(np.isclose(wild, 1.5)) > 10  # clamped after a double overshoot


def test_make_trace_passes_every_option() -> None:
    assert np.allclose(sim.make_trace("random_walk", 100, sigma=0.5),
                       sim.random_walk_trace(100, sigma=0.5))
    assert np.allclose(sim.make_trace("random_walk", 100, low=1.2, high=1.9, seed=3),
                       sim.random_walk_trace(100, low=1.2, high=1.9, seed=3))
    assert sim.make_trace("periodic", 8, period=4, duty=0.25, low=0.5, high=3.0).tolist() \
        == sim.periodic_trace(8, period=4, duty=0.25, low=0.5, high=3.0).tolist()
    assert sim.make_trace("step", 6, low=0.5, high=4.0, sigma=9.0, seed=2).tolist() == \
        [0.5, 0.5, 4.0, 4.0, 0.5, 0.5]
    assert len(sim.make_trace("ramp")) == 600  # default n
    assert sim.make_trace("step", 3).tolist() == [1.0, 2.0, 1.0]


def test_make_trace_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^unknown trace 'sine'; choose from \['periodic', "
                       r"'ramp', 'random_walk', 'step'\] or csv:PATH$"):
        sim.make_trace("sine", 10)
    with pytest.raises(ValueError, match=r"^a trace needs at least 3 requests, got n=2$"):
        sim.make_trace("step", 2)
    p = tmp_path / "t.csv"
    p.write_text("1.5\n2.5\n")
    assert sim.make_trace(f"csv:{p}", 2).tolist() == [1.5, 2.5]  # n does not apply


def test_read_csv_trace(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("time, LOAD \n0,1.5\n\n1,2.5\n")
    assert sim.read_csv_trace(p).tolist() == [1.5, 2.5]
    p.write_text("time,other\n3.0,9\n4.0,9\n")
    assert sim.read_csv_trace(p).tolist() == [3.0, 4.0]  # no load column: the first
    p.write_text("1.25,7\n2\n")
    assert sim.read_csv_trace(str(p)).tolist() == [1.25, 2.0]  # no header
    p.write_text("")
    with pytest.raises(ValueError, match=rf"^trace file {str(p)!r} is empty$"):
        sim.read_csv_trace(p)
    p.write_text("load\n1.0\nabc\n")
    with pytest.raises(ValueError, match=rf"^trace file {str(p)!r}: cannot read load "
                       r"factors \(could not convert"):
        sim.read_csv_trace(p)
    p.write_text("a,load\n1,2\n3\n")
    with pytest.raises(ValueError, match=r": cannot read load factors \(list index"):
        sim.read_csv_trace(p)
    for body in ("load\n", "load\n1.0\n0\n", "load\n-1\n", "load\nnan\n", "load\ninf\n"):
        p.write_text(body)
        with pytest.raises(ValueError, match=rf"^trace file {str(p)!r}: load factors must "
                           r"be positive numbers$"):
            sim.read_csv_trace(p)


# -- replay ------------------------------------------------------------------------------------
def test_replay_without_noise() -> None:
    sel = _Script(["a", "a", "b", "b", "a"])
    res = sim.replay(MEMBERS, [1.0, 2.0, 2.0, 1.0, 1.0], sel, target_ms=4.0, noise=0.0,
                     policy="p")
    # latencies 2, 4, 8, 4, 2: one above the target (4.0 is not a miss)
    assert res.policy == "p" and res.requests == 5
    assert res.miss_rate == pytest.approx(0.2)
    assert res.mean_latency_ms == pytest.approx(4.0)
    assert res.mean_accuracy == pytest.approx((0.6 * 3 + 0.8 * 2) / 5)
    assert res.switches == 2 and res.ran == ["a", "a", "b", "b", "a"]
    # load changes at 1 (1 -> 2) and 3 (2 -> 1): switches at 2 (1 after) and 4 (1 after)
    assert res.settle_mean == pytest.approx(1.0) and res.settle_max == 1
    assert res.infeasible_requests == 0
    assert set(res.row()) == {"policy", "requests", "miss_rate", "mean_accuracy",
                              "switches", "settle_mean", "settle_max", "mean_latency_ms",
                              "infeasible_requests"}
    assert sim.replay(MEMBERS, [1.0] * 3, _Fixed("a"), target_ms=1.0,
                      noise=0.0).policy == ""


def test_replay_without_load_changes_has_no_settle_time() -> None:
    res = sim.replay(MEMBERS, [1.0, 1.0, 1.0], _Fixed("a"), target_ms=10.0, noise=0.0)
    assert res.settle_mean is None and res.settle_max is None
    assert res.switches == 0 and res.miss_rate == 0.0


def test_replay_noise_is_log_normal_and_seeded() -> None:
    load = [1.0, 2.0, 1.5, 1.0]
    sel = _Fixed("b")
    sim.replay(MEMBERS, load, sel, target_ms=5.0, noise=0.2, seed=5)
    f = np.exp(np.random.default_rng(5).normal(0.0, 0.2, 4))
    assert np.allclose(sel.seen, 4.0 * np.array(load) * f)
    default = _Fixed("b")
    res = sim.replay(MEMBERS, load, default, target_ms=5.0)
    f = np.exp(np.random.default_rng(0).normal(0.0, 0.03, 4))
    assert np.allclose(default.seen, 4.0 * np.array(load) * f)
    assert res.mean_latency_ms == pytest.approx(float(np.mean(default.seen)))


def test_replay_counts_infeasible_requests() -> None:
    res = sim.replay(MEMBERS, [1.0] * 4, _Fixed("a", infeasible=True), target_ms=9.0,
                     noise=0.0)
    assert res.infeasible_requests == 4
    res = sim.replay(MEMBERS, [1.0] * 4, _Fixed("a", infeasible=False), target_ms=9.0,
                     noise=0.0)
    assert res.infeasible_requests == 0


def test_settle_times_contract() -> None:
    # a change of exactly the threshold is no change; 12.5 % is one with the default 10 %
    assert sim.settle_times([1.0, 1.5, 1.5], ["a", "a", "b"], threshold=0.5) == []
    assert sim.settle_times([1.0, 1.125, 1.125, 1.125], ["a", "a", "b", "b"]) == [1]
    assert sim.settle_times([1.0, 1.0625, 1.0625], ["a", "b", "a"]) == []
    # a switch on the request of the change itself does not count; the last one does
    assert sim.settle_times([1, 2, 2, 2, 2], ["a", "b", "b", "a", "a"]) == [2]
    assert sim.settle_times([1, 2, 2, 2, 2], ["a", "b", "c", "b", "a"]) == [3]
    assert sim.settle_times([1, 2, 2, 1, 1], ["a", "a", "b", "b", "b"]) == [1, 0]
    assert sim.settle_times([2, 1, 1], ["a", "a", "a"]) == [0]


def test_compare_runs_each_policy_with_its_options() -> None:
    load = sim.step_trace(30)
    res = sim.compare(MEMBERS, load, target_ms=5.0, noise=0.0)
    assert [r.policy for r in res] == ["feedback", "step", "static", "oracle"]
    assert all(r.requests == 30 for r in res)
    static = sim.compare(MEMBERS, load, target_ms=5.0, policies=["static"], noise=0.0,
                         options={"static": {"member": "a"}})
    assert static[0].ran == ["a"] * 30
    oracle = sim.compare(MEMBERS, load, target_ms=5.0, policies=["oracle"], noise=0.0)[0]
    # the oracle knows the load: b (4 ms) while load 1, a (2 ms) while load 2
    assert oracle.ran == ["b"] * 10 + ["a"] * 10 + ["b"] * 10 and oracle.miss_rate == 0.0
    a = sim.compare(MEMBERS, load, target_ms=5.0, policies=["static"], seed=1)
    b = sim.compare(MEMBERS, load, target_ms=5.0, policies=["static"], seed=1, noise=0.03)
    c = sim.compare(MEMBERS, load, target_ms=5.0, policies=["static"], seed=2)
    assert a[0].mean_latency_ms == b[0].mean_latency_ms != c[0].mean_latency_ms


# -- operating-point replay --------------------------------------------------------------------
def _table(lat: dict[str, tuple[float, float]], acc: dict[str, float] | None = None,
           energy: bool = True) -> OpTable:
    """Points lo (1 GHz) and hi (2 GHz); ``lat[m] = (at lo, at hi)``; energy 1 mJ/ms at hi,
    0.5 mJ/ms at lo (or unknown)."""
    members = {m: {"lo": {"latency_ms": lo, "energy_mj": 0.5 * lo if energy else None,
                          "power_w": None},
                   "hi": {"latency_ms": hi, "energy_mj": 1.0 * hi if energy else None,
                          "power_w": None}}
               for m, (lo, hi) in lat.items()}
    data: dict[str, Any] = {"energy_source": "model:t", "members": members,
                            "points": [{"name": "lo", "settings": {"freq_khz": 1_000_000}},
                                       {"name": "hi", "settings": {"freq_khz": 2_000_000}}]}
    if acc is not None:
        data["accuracy"] = acc
    return OpTable.from_dict(data)


T = _table({"s": (4.0, 2.0), "l": (16.0, 8.0)}, {"s": 0.5, "l": 0.9})


def test_replay_ops_fixed_member_and_point() -> None:
    spec = ModelSpec(name="x", table=T, target_ms=10.0)
    perf = sim.replay_ops([spec], [1.0, 1.5, 1.0], policy="performance", noise=0.0)[0]
    assert perf.ran == ["l"] * 3 and perf.points == ["hi"] * 3
    assert perf.mean_latency_ms == pytest.approx(8.0 * 3.5 / 3)
    assert perf.energy_total_mj == pytest.approx(8.0 * 3.5)
    assert perf.energy_mj_per_request == pytest.approx(8.0 * 3.5 / 3)
    assert perf.miss_rate == pytest.approx(1 / 3)  # 12 ms > 10
    assert perf.p90_latency_ms == pytest.approx(float(np.quantile([8.0, 12.0, 8.0], 0.9)))
    assert perf.model == "x" and perf.policy == "performance" and perf.requests == 3
    assert perf.mean_accuracy == pytest.approx(0.9) and perf.energy_source == "model:t"
    assert perf.point_switches == 0 and perf.switches == 0
    assert set(perf.row()) == {"policy", "requests", "miss_rate", "mean_accuracy", "switches",
                               "settle_mean", "settle_max", "mean_latency_ms",
                               "infeasible_requests", "model", "point_switches",
                               "energy_mj_per_request", "energy_total_mj", "energy_source",
                               "p90_latency_ms"}
    save = sim.replay_ops([spec], [1.0] * 3, policy="powersave", noise=0.0)[0]
    assert save.points == ["lo"] * 3 and save.ran == ["l"] * 3
    assert save.energy_total_mj == pytest.approx(3 * 8.0)
    # no member meets a 1 ms target: the fastest one runs
    tight = ModelSpec(name="x", table=T, target_ms=1.0)
    assert sim.replay_ops([tight], [1.0] * 2, policy="performance",
                          noise=0.0)[0].ran == ["s", "s"]
    # the target is met exactly (8.0 <= 8.0): l is chosen
    edge = ModelSpec(name="x", table=T, target_ms=8.0)
    assert sim.replay_ops([edge], [1.0] * 2, policy="performance",
                          noise=0.0)[0].ran == ["l", "l"]
    fixed = sim.replay_ops([spec], [1.0] * 2, policy="performance", noise=0.0,
                           options={"members": {"x": "s"}})[0]
    assert fixed.ran == ["s", "s"] and fixed.mean_latency_ms == pytest.approx(2.0)


def test_fixed_member_prefers_the_faster_of_equally_accurate_members() -> None:
    t = _table({"p": (12.0, 6.0), "q": (8.0, 4.0), "r": (40.0, 20.0)},
               {"p": 0.7, "q": 0.7, "r": 0.9})
    spec = ModelSpec(name="x", table=t, target_ms=10.0)
    assert sim.replay_ops([spec], [1.0], policy="performance", noise=0.0)[0].ran == ["q"]
    # the fastest point is the one with the least total latency, whatever its name/order
    spec = ModelSpec(name="x", table=t, target_ms=10.0)
    res = sim.replay_ops([spec], [1.0] * 2, policy="static", noise=0.0)[0]
    assert res.points == ["hi", "hi"]
    res = sim.replay_ops([spec], [1.0] * 2, policy="static", noise=0.0,
                         options={"point": "lo"})[0]
    assert res.points == ["lo", "lo"]


def test_unknown_energy_counts_as_zero() -> None:
    t = _table({"s": (4.0, 2.0)}, {"s": 0.5}, energy=False)
    res = sim.replay_ops([ModelSpec(name="x", table=t, target_ms=5.0)], [1.0] * 2,
                         policy="performance", noise=0.0)[0]
    assert res.energy_total_mj == 0.0 and res.energy_mj_per_request == 0.0


def test_ondemand_sees_utilisation_over_the_period() -> None:
    spec = ModelSpec(name="x", table=_table({"s": (8.0, 4.0)}, {"s": 0.5}), target_ms=10.0)
    # default period = the target, 10 ms: 4/10 < 0.5 steps down, then 8/10 is no change
    res = sim.replay_ops([spec], [1.0] * 4, policy="ondemand", noise=0.0)[0]
    assert res.points == ["hi", "lo", "lo", "lo"] and res.point_switches == 1
    res = sim.replay_ops([spec], [1.0] * 4, policy="ondemand", noise=0.0, period_ms=5.0)[0]
    assert res.points == ["hi"] * 4  # 4/5 = 0.8 is not below 0.5
    res = sim.replay_ops([spec], [1.0] * 4, policy="ondemand", noise=0.0, period_ms=20.0,
                         options={"governor": {"down_threshold": 0.1, "up_threshold": 0.3}})[0]
    assert res.points == ["hi", "hi", "hi", "hi"]  # 4/20 = 0.2 lies between the thresholds


def test_feedback_at_a_fixed_point_and_infeasible_counts() -> None:
    spec = ModelSpec(name="x", table=T, target_ms=1.0)
    res = sim.replay_ops([spec], [1.0] * 5, policy="feedback", noise=0.0)[0]
    assert res.points == ["hi"] * 5 and res.miss_rate == 1.0
    assert res.infeasible_requests > 0
    ok = sim.replay_ops([ModelSpec(name="x", table=T, target_ms=100.0)], [1.0] * 5,
                        policy="static", noise=0.0)[0]
    assert ok.infeasible_requests == 0


def test_processor_sharing_and_noise_per_model() -> None:
    a = ModelSpec(name="a", table=T, target_ms=100.0)
    b = ModelSpec(name="b", table=T, target_ms=100.0)
    opts = {"members": {"a": "l", "b": "s"}}
    load = {"a": [1.0, 2.0, 1.0], "b": [1.0, 1.0, 3.0]}
    shared = sim.replay_ops([a, b], load, policy="performance", noise=0.0, options=opts)
    # a: 8, 16, 8; b: 2, 2, 6 -> shared a: 10, 18, 14; b: 4, 4, 12
    assert shared[0].mean_latency_ms == pytest.approx(42 / 3)
    assert shared[1].mean_latency_ms == pytest.approx(20 / 3)
    alone = sim.replay_ops([a, b], load, policy="performance", noise=0.0, options=opts,
                           share=False)
    assert alone[0].mean_latency_ms == pytest.approx(32 / 3)
    assert alone[1].mean_latency_ms == pytest.approx(10 / 3)
    noisy = sim.replay_ops([a, b], load, policy="performance", noise=0.1, seed=7,
                           options=opts, share=False)
    rng = np.random.default_rng(7)
    fa = np.exp(rng.normal(0.0, 0.1, 3))
    fb = np.exp(rng.normal(0.0, 0.1, 3))
    assert noisy[0].mean_latency_ms == pytest.approx(float(np.mean(8.0 * np.array(
        load["a"]) * fa)))
    assert noisy[1].energy_total_mj == pytest.approx(float(np.sum(2.0 * np.array(
        load["b"]) * fb)))
    dflt = sim.replay_ops([a], [1.0] * 3, policy="performance", share=False)[0]
    f0 = np.exp(np.random.default_rng(0).normal(0.0, 0.03, 3))
    assert dflt.mean_latency_ms == pytest.approx(float(np.mean(8.0 * f0)))


def test_replay_ops_errors() -> None:
    spec = ModelSpec(name="a", table=T, target_ms=10.0)
    with pytest.raises(ValueError, match=r"^unknown policy 'oracle' for operating-point "
                       r"tables; choose from \['manager', 'feedback', 'static', "
                       r"'performance', 'powersave', 'ondemand', 'schedutil'\]$"):
        sim.replay_ops([spec], [1.0], policy="oracle")
    b = ModelSpec(name="b", table=T, target_ms=10.0)
    with pytest.raises(ValueError, match=r"^every model's trace must have the same length, "
                       r"got \{'a': 2, 'b': 3\}$"):
        sim.replay_ops([spec, b], {"a": [1.0] * 2, "b": [1.0] * 3}, policy="manager")
    bare = ModelSpec(name="c", table=_table({"s": (4.0, 2.0)}), target_ms=10.0)
    with pytest.raises(ValueError, match=r"^model 'c': no accuracy for every member \(give "
                       r"ModelSpec\.accuracy or a table with 'accuracy'\)$"):
        sim.replay_ops([bare], [1.0], policy="static")
    given = ModelSpec(name="c", table=bare.table, target_ms=10.0, accuracy={"s": 0.4})
    assert sim.replay_ops([given], [1.0], policy="static",
                          noise=0.0)[0].mean_accuracy == pytest.approx(0.4)
    with pytest.raises(ValueError, match=r"^unknown options \['bogus', 'zz'\] for policy "
                       r"'powersave'; allowed: members, governor$"):
        sim.replay_ops([spec], [1.0], policy="powersave", options={"zz": 1, "bogus": 2})


def test_compare_ops_order_and_options() -> None:
    a = ModelSpec(name="a", table=T, target_ms=10.0)
    b = ModelSpec(name="b", table=T, target_ms=12.0)
    res = sim.compare_ops([a, b], [1.0] * 4, noise=0.0)
    assert [(r.policy, r.model) for r in res] == [
        ("manager", "a"), ("manager", "b"), ("feedback", "a"), ("feedback", "b"),
        ("schedutil", "a"), ("schedutil", "b")]
    res = sim.compare_ops([a], [1.0] * 2, policies=["performance"], noise=0.0,
                          options={"performance": {"members": {"a": "s"}}})
    assert res[0].ran == ["s", "s"]
    res = sim.compare_ops([a], [1.0] * 3, policies=["ondemand"], noise=0.0, period_ms=16.0,
                          share=False)
    assert res[0].points == ["hi", "hi", "hi"]  # 8/16 is not below 0.5


# -- bundle members, table, CLI ----------------------------------------------------------------
def _manifest() -> dict[str, Any]:
    return {"members": [
        {"id": "m0", "accuracy": 0.5, "latency_ms": 2.0, "latency": {"cpu": 3.0}},
        {"id": "m1", "accuracy": 0.7, "latency_ms": 6.0, "latency": {"cpu": 9.0},
         "energy_mj": 1.5}]}


def test_members_from_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sim, "read_manifest", lambda path: _manifest())
    got = sim.members_from_bundle("b")
    assert [(m.id, m.accuracy, m.latency_ms, m.energy_mj) for m in got] == [
        ("m0", 0.5, 2.0, None), ("m1", 0.7, 6.0, 1.5)]
    got = sim.members_from_bundle("b", "cpu")
    assert [m.latency_ms for m in got] == [3.0, 9.0]
    with pytest.raises(BundleError, match=r"^member 'm0' has no latency for hardware 'gpu'; "
                       r"it has \['cpu'\]$"):
        sim.members_from_bundle("b", "gpu")


def test_format_table() -> None:
    r = sim.SimResult(policy="fb", requests=3, miss_rate=0.123456, mean_accuracy=0.5,
                      switches=2, settle_mean=None, settle_max=None, mean_latency_ms=10.0)
    text = sim.format_table([r])
    assert text.split("\n") == [
        "policy  miss_rate  mean_accuracy  switches  settle_mean  settle_max  "
        "mean_latency_ms",
        "------  ---------  -------------  --------  -----------  ----------  "
        "---------------",
        "fb      0.1235     0.5            2         -            -           10" + " " * 13]
    o = sim.replay_ops([ModelSpec(name="x", table=T, target_ms=10.0)], [1.0] * 2,
                       policy="performance", noise=0.0)
    lines = sim.format_table(o).split("\n")
    assert lines[0].split() == ["policy", "model", "miss_rate", "mean_accuracy", "switches",
                                "point_switches", "mean_latency_ms", "p90_latency_ms",
                                "energy_mj_per_request", "energy_total_mj", "energy_source"]
    assert lines[2].split() == ["performance", "x", "0", "0.9", "0", "0", "8", "8", "8",
                                "16", "model:t"]
    assert sim.format_table([]).split("\n")[0].split()[0] == "policy"
    wide = sim.SimResult(policy="feedback", requests=3, miss_rate=0.5, mean_accuracy=0.5,
                         switches=2, settle_mean=1.5, settle_max=2, mean_latency_ms=1.0)
    head, rule, row = sim.format_table([wide]).split("\n")
    assert head.startswith("policy    miss_rate  ")  # left-aligned in the column's width
    assert rule.startswith("--------  ---------  ")
    assert row.startswith("feedback  0.5        0.5            2         1.5          2  ")


def test_policies_and_number_parsers() -> None:
    assert sim._policies(None, "a,b") == ["a", "b"]
    assert sim._policies(" x , ,y,", "a") == ["x", "y"]
    with pytest.raises(ValueError, match=r"^--policy ', ' names no policy; give a "
                       r"comma-separated list, e\.g\. a,b$"):
        sim._policies(", ", "a,b")
    parse = sim._number(float, low=0.0, high=5.0, low_open=True, what="a thing")
    assert parse("5") == 5.0 and parse("0.5") == 0.5 and parse.__name__ == "a thing"
    for bad in ("0", "5.5", "-1", "nan", "inf", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match=rf"^{bad!r} is not a thing$"):
            parse(bad)
    closed = sim._number(int, low=3, what="n")
    assert closed("3") == 3 and closed("10000000000") == 10**10
    with pytest.raises(argparse.ArgumentTypeError):
        closed("2")
    with pytest.raises(argparse.ArgumentTypeError):
        closed("3.5")


def test_cli_bundle_output_and_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sim, "read_manifest", lambda path: _manifest())
    out = tmp_path / "r.json"
    assert sim.main(["--bundle", "b", "--trace", "step", "--n", "9", "--policy", "static",
                     "--noise", "0", "--json", str(out)]) == 0
    text = capsys.readouterr().out.split("\n")
    # default target: 1.1 x the median latency (4 ms)
    assert text[0] == ("simulated trace step: 9 requests, load 1.00-2.00; target 4.4 ms; "
                       "2 members (2-6 ms)")
    assert text[1].split()[0] == "policy" and text[3].split()[0] == "static"
    data = json.loads(out.read_text())
    assert set(data) == {"target_ms", "trace", "results"}
    assert data["trace"] == "step" and data["target_ms"] == pytest.approx(4.4)
    assert [r["policy"] for r in data["results"]] == ["static"]
    assert data["results"][0]["requests"] == 9
    assert sim.main(["--bundle", "b", "--hardware", "cpu", "--n", "6", "--high", "3",
                     "--target-ms", "12.5", "--policy", "static"]) == 0
    text = capsys.readouterr().out.split("\n")
    assert text[0] == ("simulated trace step: 6 requests, load 1.00-3.00; target 12.5 ms; "
                       "2 members (3-9 ms)")
    # default policies, n 600, seed 0
    assert sim.main(["--bundle", "b"]) == 0
    text = capsys.readouterr().out.split("\n")
    assert text[0].startswith("simulated trace step: 600 requests")
    assert [ln.split()[0] for ln in text[3:7]] == ["feedback", "step", "static", "oracle"]
    assert sim.main(["--bundle", "b", "--trace", "nope"]) == 2
    assert capsys.readouterr().err.startswith("switchnas simulate: error: unknown trace")


def test_cli_ops_output_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    T.write(tmp_path / "cam.json")
    T.write(tmp_path / "sub.json")
    out = tmp_path / "r.json"
    assert sim.main(["--ops", str(tmp_path / "cam.json"), "--ops", str(tmp_path / "sub.json"),
                     "--target-ms", "12.5", "--n", "6", "--policy", "performance",
                     "--noise", "0", "--json", str(out)]) == 0
    text = capsys.readouterr().out.split("\n")
    assert text[0] == ("simulated trace step: 6 requests, load 1.00-2.00; 2 model(s) on one "
                       "device, targets [12.5, 12.5] ms; 2 operating points; energy: model:t")
    data = json.loads(out.read_text())
    assert set(data) == {"trace", "energy_source", "targets_ms", "results"}
    assert data["trace"] == "step" and data["energy_source"] == "model:t"
    assert data["targets_ms"] == {"cam": 12.5, "sub": 12.5}
    assert [(r["policy"], r["model"]) for r in data["results"]] == [
        ("performance", "cam"), ("performance", "sub")]
    # the same stem twice: the models are numbered; default target 1.1 x median at the
    # fastest point (2 and 8 ms -> 5.5)
    other = tmp_path / "x"
    other.mkdir()
    T.write(other / "cam.json")
    assert sim.main(["--ops", str(tmp_path / "cam.json"), "--ops", str(other / "cam.json"),
                     "--n", "3", "--policy", "static", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["targets_ms"] == {"model0": pytest.approx(5.5), "model1": pytest.approx(5.5)}
    assert "targets [5.5, 5.5] ms" in capsys.readouterr().out
    # accuracies from a bundle
    monkeypatch.setattr(sim, "read_manifest", lambda path: {"members": [
        {"id": "s", "accuracy": 0.1, "latency_ms": 1.0, "latency": {}},
        {"id": "l", "accuracy": 0.2, "latency_ms": 1.0, "latency": {}}]})
    assert sim.main(["--ops", str(tmp_path / "cam.json"), "--bundle", "b", "--n", "3",
                     "--policy", "performance", "--target-ms", "100", "--json",
                     str(out)]) == 0
    assert json.loads(out.read_text())["results"][0]["mean_accuracy"] == pytest.approx(0.2)
    capsys.readouterr()
    assert sim.main(["--ops", str(tmp_path / "cam.json"), "--live"]) == 2
    assert capsys.readouterr().err == ("switchnas simulate: error: --live and --ops do not "
                                       "combine (use switchnas.runtime.live)\n")
    _table({"s": (4.0, 2.0)}).write(tmp_path / "bare.json")
    assert sim.main(["--ops", str(tmp_path / "bare.json")]) == 2
    assert capsys.readouterr().err == (
        f"switchnas simulate: error: {tmp_path / 'bare.json'}: members ['s'] need accuracies "
        "(from --bundle or the table's 'accuracy'); have []\n")


def test_cli_ops_passes_objective_and_floor(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake(specs: Any, load: Any, **kw: Any) -> list[Any]:
        seen.update(kw, specs=specs, load=load)
        return []

    monkeypatch.setattr(sim, "compare_ops", fake)
    T.write(tmp_path / "cam.json")
    assert sim.main(["--ops", str(tmp_path / "cam.json"), "--objective", "energy",
                     "--accuracy-floor", "0.7", "--period-ms", "7", "--n", "5",
                     "--seed", "3", "--noise", "0.2", "--trace", "ramp", "--high", "3"]) == 0
    assert seen["options"] == {"manager": {"objective": "energy"}}
    assert seen["policies"] == ["manager", "feedback", "schedutil"]
    assert seen["period_ms"] == 7.0 and seen["seed"] == 3 and seen["noise"] == 0.2
    assert seen["specs"][0].accuracy_floor == 0.7 and seen["specs"][0].name == "cam"
    assert seen["specs"][0].accuracy == {"s": 0.5, "l": 0.9}
    assert np.allclose(seen["load"], sim.ramp_trace(5, high=3.0))
    assert sim.main(["--ops", str(tmp_path / "cam.json"), "--n", "5"]) == 0
    assert seen["options"] == {"manager": {"objective": "accuracy"}}
    assert seen["specs"][0].accuracy_floor is None and seen["period_ms"] is None


def test_cli_help_documents_every_option(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "2000")
    with pytest.raises(SystemExit) as exc:
        sim.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    text = " ".join(out.split())
    assert out.startswith("usage: switchnas simulate ")
    assert ("Replay load traces against a bundle's latency tables and compare selector "
            "policies.") in text
    for phrase in (
        "--bundle BUNDLE bundle folder (its manifest is read); with --ops: the members' "
        "accuracies, unless the table carries them",
        "--ops TABLE.json a member x operating-point table; once per model sharing the device "
        "(policies: manager,feedback,static,performance,powersave,ondemand,schedutil)",
        "--objective {accuracy,energy} with --ops: the manager's objective",
        "--accuracy-floor ACCURACY_FLOOR with --ops: the least accuracy the manager may choose",
        "--period-ms PERIOD_MS with --ops: request period (default: the target)",
        "--trace TRACE one of ['periodic', 'ramp', 'random_walk', 'step'] or csv:PATH "
        "(default: step)",
        "--target-ms TARGET_MS latency target (default: 1.1x the median member's latency)",
        "--policy POLICY comma-separated selector policies (default feedback,step,static,"
        "oracle; with --ops manager,feedback,schedutil)",
        "--n N requests in a generated trace",
        "--high HIGH peak load factor",
        "--noise NOISE log-normal latency noise sigma",
        "--seed SEED",
        "--hardware HARDWARE latency table to use (a hardware key)",
        "--json JSON also write the results to this file",
        "--live run real inference on this CPU (load > 1: a co-runner competes for the same "
        "core) instead of replaying the latency tables",
        "--core CORE core for --live",
    ):
        assert phrase in text, phrase


@pytest.mark.parametrize(("flag", "value", "what"), [
    ("--n", "2", "an integer in [3, 10000000]"),
    ("--n", "10000001", "an integer in [3, 10000000]"),
    ("--high", "0", "a positive load factor (at most 1e6)"),
    ("--high", "1000001", "a positive load factor (at most 1e6)"),
    ("--noise", "10.5", "a noise sigma in [0, 10]"),
    ("--seed", "9223372036854775808", "a non-negative integer"),
    ("--core", "65536", "a core number >= 0"),
    ("--target-ms", "0", "a positive number of ms"),
    ("--period-ms", "0", "a positive number of ms"),
    ("--accuracy-floor", "x", "a number"),
])
def test_cli_number_bounds(flag: str, value: str, what: str,
                           capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        sim.main(["--bundle", "b", flag, value])
    assert exc.value.code == 2
    assert f"argument {flag}: {value!r} is not {what}" in capsys.readouterr().err


def test_cli_number_bounds_are_inclusive(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake(args: argparse.Namespace) -> int:
        seen.update(vars(args))
        return 0

    monkeypatch.setattr(sim, "_main_ops", fake)
    assert sim.main(["--ops", "t.json", "--n", "3", "--high", "1e6", "--noise", "10",
                     "--seed", str(2**63 - 1), "--core", "65535", "--accuracy-floor", "-5",
                     "--period-ms", "0.5"]) == 0
    assert (seen["n"], seen["high"], seen["noise"], seen["seed"], seen["core"]) == \
        (3, 1e6, 10.0, 2**63 - 1, 65535)
    assert seen["accuracy_floor"] == -5.0 and seen["period_ms"] == 0.5
    assert sim.main(["--ops", "t.json", "--high", "0.5"]) == 0
    assert seen["high"] == 0.5
    assert sim.main(["--ops", "t.json", "--n", "10000000", "--noise", "0", "--seed", "0",
                     "--core", "0"]) == 0
    assert (seen["n"], seen["noise"], seen["seed"], seen["core"]) == (10_000_000, 0.0, 0, 0)
    assert sim.main(["--ops", "t.json"]) == 0
    assert (seen["n"], seen["high"], seen["noise"], seen["seed"], seen["core"]) == \
        (600, 2.0, 0.03, 0, 0)
    assert seen["trace"] == "step" and seen["objective"] == "accuracy"
    assert seen["bundle"] is None and seen["hardware"] is None and seen["json"] is None
    assert seen["live"] is False and seen["policy"] is None and seen["target_ms"] is None
    assert seen["ops"] == ["t.json"]


def test_cli_live_replays_each_policy_on_the_bundle(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import switchnas.runtime._bundle as bundle_mod
    import switchnas.runtime.live as live_mod

    monkeypatch.setattr(sim, "read_manifest", lambda path: _manifest())
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(bundle_mod, "load", lambda path: ("bundle", path))

    def fake_live(bundle: Any, load: Any, **kw: Any) -> sim.SimResult:
        calls.append(dict(kw, bundle=bundle, n=len(load)))
        return sim.SimResult(policy=kw["policy"], requests=len(load), miss_rate=0.0,
                             mean_accuracy=0.5, switches=0, settle_mean=None,
                             settle_max=None, mean_latency_ms=1.0)

    monkeypatch.setattr(live_mod, "live_replay", fake_live)
    assert sim.main(["--bundle", "bdir", "--live", "--policy", "static,feedback", "--core",
                     "3", "--hardware", "cpu", "--target-ms", "5", "--n", "7"]) == 0
    assert calls == [
        {"target_ms": 5.0, "policy": "static", "core": 3, "hardware": "cpu",
         "bundle": ("bundle", "bdir"), "n": 7},
        {"target_ms": 5.0, "policy": "feedback", "core": 3, "hardware": "cpu",
         "bundle": ("bundle", "bdir"), "n": 7}]
    out = capsys.readouterr().out.split("\n")
    assert out[0].startswith("live trace step: 7 requests, load 1.00-2.00; target 5 ms")
    assert [ln.split()[0] for ln in out[3:5]] == ["static", "feedback"]


def test_manager_infeasible_requests_are_counted() -> None:
    easy = sim.replay_ops([ModelSpec(name="x", table=T, target_ms=100.0)], [1.0] * 4,
                          policy="manager", noise=0.0)[0]
    assert easy.infeasible_requests == 0
    hard = sim.replay_ops([ModelSpec(name="x", table=T, target_ms=1.0)], [1.0] * 4,
                          policy="manager", noise=0.0)[0]
    assert hard.infeasible_requests == 4 and hard.miss_rate == 1.0


def test_cli_needs_a_bundle_or_tables(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        sim.main(["--trace", "step"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.rstrip().endswith(
        "switchnas simulate: error: give --bundle (a bundle's latency tables) or --ops "
        "(operating-point tables)")


def test_fastest_point_is_by_latency_not_by_name() -> None:
    members = {"s": {"a_fast": {"latency_ms": 2.0, "energy_mj": 2.0, "power_w": None},
                     "z_slow": {"latency_ms": 4.0, "energy_mj": 1.0, "power_w": None}},
               "l": {"a_fast": {"latency_ms": 8.0, "energy_mj": 8.0, "power_w": None},
                     "z_slow": {"latency_ms": 16.0, "energy_mj": 4.0, "power_w": None}}}
    for order in (["z_slow", "a_fast"], ["a_fast", "z_slow"]):
        freqs = {"a_fast": 2_000_000, "z_slow": 1_000_000}
        t = OpTable.from_dict({"energy_source": "rapl", "members": members,
                               "points": [{"name": p, "settings": {"freq_khz": freqs[p]}}
                                          for p in order],
                               "accuracy": {"s": 0.5, "l": 0.9}})
        spec = ModelSpec(name="x", table=t, target_ms=10.0)
        assert sim._fastest_point_of(t) == "a_fast"
        res = sim.replay_ops([spec], [1.0] * 2, policy="static", noise=0.0)[0]
        assert res.points == ["a_fast", "a_fast"] and res.ran == ["l", "l"]
    # a table whose fastest point sorts last by name
    swapped = {m: {"a_slow": row["z_slow"], "z_fast": row["a_fast"]}
               for m, row in members.items()}
    t = OpTable.from_dict({"energy_source": "rapl", "members": swapped,
                           "points": [{"name": "a_slow", "settings": {"freq_khz": 1_000_000}},
                                      {"name": "z_fast", "settings": {"freq_khz": 2_000_000}}],
                           "accuracy": {"s": 0.5, "l": 0.9}})
    assert sim._fastest_point_of(t) == "z_fast"
    res = sim.replay_ops([ModelSpec(name="x", table=t, target_ms=10.0)], [1.0] * 2,
                         policy="feedback", noise=0.0)[0]
    assert res.points == ["z_fast", "z_fast"]


def test_compare_ops_passes_period_and_share() -> None:
    a = ModelSpec(name="a", table=T, target_ms=10.0)
    b = ModelSpec(name="b", table=T, target_ms=10.0)
    opts = {"performance": {"members": {"a": "l", "b": "s"}}}
    shared = sim.compare_ops([a, b], [1.0] * 2, policies=["performance"], noise=0.0,
                             options=opts)
    assert [r.mean_latency_ms for r in shared] == [pytest.approx(10.0), pytest.approx(4.0)]
    alone = sim.compare_ops([a, b], [1.0] * 2, policies=["performance"], noise=0.0,
                            options=opts, share=False)
    assert [r.mean_latency_ms for r in alone] == [pytest.approx(8.0), pytest.approx(2.0)]
    # ondemand over a 20 ms period: 8/20 = 0.4 < 0.5 steps down; over the default 10 ms
    # period (the target) 0.8 stays
    slow = sim.compare_ops([a], [1.0] * 3, policies=["ondemand"], noise=0.0, period_ms=20.0)
    assert slow[0].points == ["hi", "lo", "lo"]
    dflt = sim.compare_ops([a], [1.0] * 3, policies=["ondemand"], noise=0.0)
    assert dflt[0].points == ["hi", "hi", "hi"]


def test_replay_ops_passes_selector_options_and_reports_settle_times() -> None:
    spec = ModelSpec(name="x", table=T, target_ms=100.0)
    res = sim.replay_ops([spec], [1.0] * 3, policy="static", noise=0.0,
                         options={"member": "s"})[0]
    assert res.ran == ["s", "s", "s"]
    res = sim.replay_ops([spec], [1.0] * 3, policy="static", noise=0.0,
                         options={"member": "s", "point": "lo"})[0]
    assert res.ran == ["s"] * 3 and res.points == ["lo"] * 3
    step = sim.replay_ops([spec], [1.0, 1.0, 2.0, 2.0, 1.0], policy="performance",
                          noise=0.0)[0]
    assert step.settle_mean == 0.0 and step.settle_max == 0  # two changes, no switch
    flat = sim.replay_ops([spec], [1.0] * 3, policy="performance", noise=0.0)[0]
    assert flat.settle_mean is None and flat.settle_max is None
    fb = sim.replay_ops([ModelSpec(name="x", table=T, target_ms=12.0)],
                        [1.0, 1.0, 2.0, 2.0, 2.0, 2.0], policy="feedback", noise=0.0,
                        options={"window": 1, "margin": 0.1})[0]
    # l (8 ms) until the load doubles, then s: the switch is 1 request after the change
    assert fb.ran == ["l", "l", "l", "s", "s", "s"]
    assert fb.settle_mean == 1.0 and fb.settle_max == 1 and fb.switches == 1


def test_step_trace_of_integer_bounds_is_float() -> None:
    assert sim.step_trace(6, low=1, high=2.5).tolist() == [1.0, 1.0, 2.5, 2.5, 1.0, 1.0]


def test_compare_default_seed_is_zero() -> None:
    load = sim.step_trace(30)
    dflt = sim.compare(MEMBERS, load, target_ms=5.0, policies=["static"])[0]
    zero = sim.compare(MEMBERS, load, target_ms=5.0, policies=["static"], seed=0)[0]
    one = sim.compare(MEMBERS, load, target_ms=5.0, policies=["static"], seed=1)[0]
    assert dflt.mean_latency_ms == zero.mean_latency_ms != one.mean_latency_ms


def test_cli_passes_seed_to_the_trace_and_hardware_to_ops(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sim, "read_manifest", lambda path: _manifest())
    seen: dict[str, Any] = {}

    def fake(members: Any, load: Any, **kw: Any) -> list[Any]:
        seen["load"] = load
        return []

    monkeypatch.setattr(sim, "compare", fake)
    assert sim.main(["--bundle", "b", "--trace", "random_walk", "--seed", "5", "--n",
                     "50"]) == 0
    assert np.allclose(seen["load"], sim.random_walk_trace(50, seed=5))
    T.write(tmp_path / "cam.json")
    capsys.readouterr()
    assert sim.main(["--ops", str(tmp_path / "cam.json"), "--bundle", "b", "--hardware",
                     "gpu", "--n", "3"]) == 2
    assert "member 'm0' has no latency for hardware 'gpu'" in capsys.readouterr().err
