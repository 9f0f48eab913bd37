"""The hierarchical manager on synthetic member x operating-point tables (no networks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchnas.runtime.governors import frequencies_of, make_governor
from switchnas.runtime.manager import HierarchicalManager, ModelSpec, OpTable

FREQS = [600, 900, 1200, 1500, 1800]  # MHz


def make_table(base_ms: list[float], acc: list[float], *, freqs: list[int] = FREQS,
               static_w: float = 0.2) -> OpTable:
    """Latency ~ 1/f from ``base_ms`` at the highest frequency; power static + ~f^3."""
    f_max = max(freqs)
    points = [{"name": f"f{f}", "settings": {"freq_khz": f * 1000, "threads": 1}}
              for f in freqs]
    members = {f"m{i}": {f"f{f}": {"latency_ms": b * f_max / f, "energy_mj": None,
                                   "power_w": static_w + (f / f_max) ** 3}
                         for f in freqs} for i, b in enumerate(base_ms)}
    return OpTable.from_dict({"energy_source": "model:test", "members": members,
                              "points": points,
                              "accuracy": {f"m{i}": a for i, a in enumerate(acc)}})


TABLE = make_table([2.0, 3.0, 4.0, 6.0], [0.60, 0.70, 0.75, 0.80])


def run(mgr: HierarchicalManager, loads: dict[str, float], n: int,
        tables: dict[str, OpTable] | None = None) -> list[dict[str, Any]]:
    """Feed noise-free observations ``table[member][point] * load`` for ``n`` requests."""
    out = []
    for _ in range(n):
        obs = {}
        for name, d in mgr.decisions.items():
            t = (tables or {}).get(name, TABLE)
            obs[name] = t.latency(d.member, d.point) * loads[name]
        out.append(mgr.step(obs))
    return out


def test_table_round_trip_and_errors(tmp_path: Path) -> None:
    path = TABLE.write(tmp_path / "sub" / "t.json")
    again = OpTable.read(path)
    assert again == TABLE and again.accuracy["m3"] == 0.80
    assert TABLE.energy("m0", "f1800") == pytest.approx(1.2 * 2.0)  # power_w * latency_ms
    assert TABLE.settings("f600") == {"freq_khz": 600000, "threads": 1}
    assert [p.name for p in tmp_path.joinpath("sub").iterdir()] == ["t.json"]  # no temp left
    with pytest.raises(ValueError, match="unknown member 'zz'"):
        TABLE.latency("zz", "f600")
    with pytest.raises(ValueError, match="unknown operating point 'f1'"):
        TABLE.latency("m0", "f1")
    bad = TABLE.to_dict()
    bad["accuracy"] = {"m0": 0.5}
    with pytest.raises(ValueError, match="'accuracy' must name exactly"):
        OpTable.from_dict(bad)
    (tmp_path / "x.json").write_text("{nope")
    with pytest.raises(ValueError, match="is not JSON"):
        OpTable.read(tmp_path / "x.json")
    bad = TABLE.to_dict()
    bad["members"]["m0"]["f600"]["latency_ms"] = -1.0
    (tmp_path / "y.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="y.json.*latency_ms"):
        OpTable.read(tmp_path / "y.json")


def test_constructor_errors() -> None:
    spec = ModelSpec(name="a", table=TABLE, target_ms=10.0)
    with pytest.raises(ValueError, match="at least one model"):
        HierarchicalManager([])
    with pytest.raises(ValueError, match="unique"):
        HierarchicalManager([spec, spec])
    with pytest.raises(ValueError, match="objective='speed'"):
        HierarchicalManager([spec], objective="speed")
    other = make_table([2.0], [0.5], freqs=[600, 1800])
    with pytest.raises(ValueError, match="differ from the device's"):
        HierarchicalManager([spec, ModelSpec(name="b", table=other, target_ms=5.0)])
    no_energy = TABLE.to_dict()
    for row in no_energy["members"].values():
        row["f600"]["power_w"] = None
    with pytest.raises(ValueError, match="lacks the energy"):
        HierarchicalManager([ModelSpec(name="a", table=OpTable.from_dict(no_energy),
                                       target_ms=10.0)])
    with pytest.raises(ValueError, match="accuracies for"):
        HierarchicalManager([ModelSpec(name="a", table=TABLE, target_ms=10.0,
                                       accuracy={"m0": 0.1})])
    mgr = HierarchicalManager([spec])
    with pytest.raises(ValueError, match=r"unknown models \['b'\]"):
        mgr.step({"b": 1.0})
    with pytest.raises(ValueError, match="contention factor of 'f600'"):
        mgr.step({"a": 1.0}, contention={"f600": 0.5})
    with pytest.raises(ValueError, match="contention for unknown points"):
        mgr.step({"a": 1.0}, contention={"f1": 1.5})


@settings(max_examples=40, deadline=None)
@given(load=st.floats(0.5, 4.0), target=st.floats(2.5, 40.0),
       objective=st.sampled_from(["accuracy", "energy"]))
def test_never_misses_when_a_feasible_point_exists(load: float, target: float,
                                                   objective: str) -> None:
    """Constant load, exact observations: once the estimate has settled, the chosen member
    and point meet the target whenever any allowed member at any point does."""
    floor = 0.65 if objective == "energy" else None
    mgr = HierarchicalManager([ModelSpec(name="a", table=TABLE, target_ms=target,
                                         accuracy_floor=floor)],
                              objective=objective, selector_options={"margin": 0.05})
    allowed = [m for m in TABLE.members if floor is None or TABLE.accuracy[m] >= floor]
    feasible = any(TABLE.latency(m, p) * load <= target
                   for m in allowed for p in TABLE.point_names)
    for decisions in run(mgr, {"a": load}, 12)[4:]:
        d = decisions["a"]
        assert d.load == pytest.approx(load)
        if feasible:
            assert TABLE.latency(d.member, d.point) * load <= target
            assert d.feasible
        else:  # the fastest allowed member at the fastest point
            assert (d.member, d.point) == (allowed[0], "f1800") and not d.feasible


def test_accuracy_first_then_least_energy_point() -> None:
    """Light constant load: the most accurate member, at the slowest frequency that still
    meets the target (the least energy here), which is below the highest one."""
    mgr = HierarchicalManager([ModelSpec(name="a", table=TABLE, target_ms=12.0)],
                              selector_options={"margin": 0.05})
    d = run(mgr, {"a": 1.0}, 10)[-1]["a"]
    assert d.member == "m3"
    fits = [p for p in TABLE.point_names if TABLE.latency("m3", p) <= 12.0 * 0.95]
    assert d.point == min(fits, key=lambda p: TABLE.energy("m3", p) or 0.0) == "f1200"


def test_less_energy_than_the_performance_governor_on_a_light_load() -> None:
    from switchnas.runtime import simulate as sim

    spec = ModelSpec(name="a", table=TABLE, target_ms=12.0)
    res = {r.policy: r for r in sim.compare_ops([spec], [1.0] * 200,
                                                policies=["manager", "performance"],
                                                noise=0.02)}
    man, perf = res["manager"], res["performance"]
    assert man.energy_mj_per_request < 0.8 * perf.energy_mj_per_request
    assert man.miss_rate == 0.0 and perf.miss_rate == 0.0
    assert man.mean_accuracy == pytest.approx(perf.mean_accuracy)
    assert man.energy_source == "model:test"


def test_reacts_to_a_load_step() -> None:
    """When the load doubles the device speeds up (and the member drops only if needed);
    when it drops back the device slows down again."""
    mgr = HierarchicalManager([ModelSpec(name="a", table=TABLE, target_ms=12.0)],
                              selector_options={"margin": 0.05})
    calm = run(mgr, {"a": 1.0}, 10)[-1]["a"]
    busy = run(mgr, {"a": 1.8}, 10)
    assert all(TABLE.latency(d["a"].member, d["a"].point) * 1.8 <= 12.0 for d in busy[3:])
    f = {p: int(p[1:]) for p in TABLE.point_names}
    assert f[busy[-1]["a"].point] > f[calm.point]
    again = run(mgr, {"a": 1.0}, 10)[-1]["a"]
    assert (again.member, again.point) == (calm.member, calm.point)
    assert mgr.point_switches >= 2


def test_two_models_one_point_for_both() -> None:
    """A tight target for one model raises the point for both; the other model keeps its
    own (looser) target with the most accurate member that fits at that point."""
    tight = ModelSpec(name="tight", table=TABLE, target_ms=5.0)
    loose = ModelSpec(name="loose", table=TABLE, target_ms=20.0)
    opts = {"margin": 0.05}
    alone = run(HierarchicalManager([loose], selector_options=opts), {"loose": 1.0}, 8)
    both = HierarchicalManager([tight, loose], selector_options=opts)
    d = run(both, {"tight": 1.0, "loose": 1.0}, 8)[-1]
    assert d["tight"].point == d["loose"].point == both.point
    for name, target in (("tight", 5.0), ("loose", 20.0)):
        assert TABLE.latency(d[name].member, d[name].point) <= target
    f = {p: int(p[1:]) for p in TABLE.point_names}
    assert f[both.point] > f[alone[-1]["loose"].point]
    assert d["loose"].member == "m3"
    # the point is the least-energy one that serves both
    fits = [p for p in TABLE.point_names
            if TABLE.latency(d["tight"].member, p) <= 5.0 * 0.95
            and TABLE.latency("m3", p) <= 20.0 * 0.95]
    total = {p: (TABLE.energy(d["tight"].member, p) or 0) + (TABLE.energy("m3", p) or 0)
             for p in fits}
    assert both.point == min(total, key=lambda p: total[p])


def test_energy_objective_trades_accuracy_down_to_the_floor() -> None:
    spec = ModelSpec(name="a", table=TABLE, target_ms=12.0, accuracy_floor=0.7)
    acc = run(HierarchicalManager([spec], selector_options={"margin": 0.05}), {"a": 1.0}, 8)
    en = run(HierarchicalManager([spec], objective="energy",
                                 selector_options={"margin": 0.05}), {"a": 1.0}, 8)
    a, e = acc[-1]["a"], en[-1]["a"]
    assert TABLE.accuracy[e.member] >= 0.7
    assert TABLE.accuracy[e.member] < TABLE.accuracy[a.member]
    assert (TABLE.energy(e.member, e.point) or 0) < (TABLE.energy(a.member, a.point) or 0)


def test_contention_moves_the_device_off_a_busy_point() -> None:
    """Two points as fast as each other unloaded; a co-runner on one of them (contention
    factor 2) sends the manager to the other, with the load estimate unchanged."""
    points = [{"name": "t1-cpu0", "settings": {"threads": 1, "cpus": [0]}},
              {"name": "t1-cpu1", "settings": {"threads": 1, "cpus": [1]}}]
    members = {"m0": {p["name"]: {"latency_ms": 2.0, "energy_mj": 1.0, "power_w": None}
                      for p in points},
               "m1": {p["name"]: {"latency_ms": 4.0, "energy_mj": 2.0, "power_w": None}
                      for p in points}}
    t = OpTable.from_dict({"energy_source": "model:test", "members": members,
                           "points": points, "accuracy": {"m0": 0.6, "m1": 0.8}})
    mgr = HierarchicalManager([ModelSpec(name="a", table=t, target_ms=5.0)],
                              selector_options={"margin": 0.05})
    first = mgr.point
    busy = {first: 2.0}
    for _ in range(6):
        d = mgr.decisions["a"]
        mgr.step({"a": t.latency(d.member, d.point) * busy.get(d.point, 1.0)},
                 contention=busy if _ else None)
    d = mgr.decisions["a"]
    assert d.point != first and d.member == "m1" and d.feasible
    assert mgr.load("a") == pytest.approx(1.0, rel=0.3)


def test_governors_run_the_same_table() -> None:
    gov = make_governor("schedutil", frequencies_of(TABLE.points))
    assert gov.current == "f1800"
    assert gov.step(0.5) == "f1200"


def test_a_missed_deadline_is_acted_on_at_once() -> None:
    """After a load rise the first request misses; with ``react_to_miss`` the next one is
    already back within the target, without it the median needs one more sample."""
    def misses(react: bool) -> int:
        mgr = HierarchicalManager([ModelSpec(name="a", table=TABLE, target_ms=12.0)],
                                  react_to_miss=react, selector_options={"margin": 0.05})
        run(mgr, {"a": 1.0}, 10)
        out = 0
        for _ in range(6):
            d = mgr.decisions["a"]
            ms = TABLE.latency(d.member, d.point) * 1.8
            out += ms > 12.0
            mgr.step({"a": ms})
        return out

    assert misses(True) == 1
    assert misses(False) == 2


def test_selector_options_may_not_choose_what_the_levels_choose() -> None:
    spec = ModelSpec(name="a", table=TABLE, target_ms=10.0)
    for key in ("objective", "operating_points"):
        with pytest.raises(ValueError) as info:
            HierarchicalManager([spec], selector_options={key: "energy"})
        assert str(info.value) == ("selector_options may not set 'objective' or "
                                   "'operating_points': the manager's levels choose those")


@settings(max_examples=25, deadline=None)
@given(load=st.floats(0.5, 4.0), contention=st.floats(1.0, 3.0),
       target=st.floats(3.0, 40.0))
def test_decisions_predict_table_times_load_times_contention(load: float, contention: float,
                                                             target: float) -> None:
    """``predicted_ms`` is the member's table latency at the point times the model's load
    estimate times the point's contention factor, and ``feasible`` compares it with the
    target."""
    mgr = HierarchicalManager([ModelSpec(name="a", table=TABLE, target_ms=target)],
                              selector_options={"margin": 0.05})
    first = mgr.decisions["a"]
    assert first.load == 1.0
    assert first.predicted_ms == pytest.approx(TABLE.latency(first.member, first.point))
    mgr.step({}, contention={p: contention for p in mgr.points})
    for _ in range(4):
        d = mgr.decisions["a"]
        ms = TABLE.latency(d.member, d.point) * load * contention
        d = mgr.step({"a": ms})["a"]
        assert d.load == pytest.approx(mgr.load("a"))
        want = TABLE.latency(d.member, d.point) * d.load * contention
        assert d.predicted_ms == pytest.approx(want)
        assert d.feasible == (d.predicted_ms <= target)
