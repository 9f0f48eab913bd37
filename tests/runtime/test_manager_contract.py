"""The hierarchical manager and its OpTable: exact messages, the JSON form, the decisions on
small hand-made tables (ties, margins, the relaxed band of the current point, contention,
the energy objective and the infeasible fallback)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from switchnas.runtime.manager import Decision, HierarchicalManager, ModelSpec, OpTable


def tbl(lat: dict[str, dict[str, float]], energy: dict[str, dict[str, float]] | None = None,
        accuracy: dict[str, float] | None = None, source: str = "rapl",
        settings: dict[str, dict[str, Any]] | None = None) -> OpTable:
    points = list(next(iter(lat.values())))
    data: dict[str, Any] = {
        "energy_source": source,
        "members": {m: {p: {"latency_ms": row[p],
                            "energy_mj": None if energy is None else energy[m][p],
                            "power_w": None} for p in points}
                    for m, row in lat.items()},
        "points": [{"name": p, "settings": (settings or {}).get(p, {})} for p in points]}
    if accuracy is not None:
        data["accuracy"] = accuracy
    return OpTable.from_dict(data)


# --------------------------------------------------------------------------- OpTable


def raw() -> dict[str, Any]:
    return {"energy_source": "model:g",
            "members": {"a": {"p": {"latency_ms": 2.0, "energy_mj": None, "power_w": 3.0},
                              "q": {"latency_ms": 1.0, "energy_mj": 5.0, "power_w": 9.0}},
                        "b": {"p": {"latency_ms": 4.0, "energy_mj": None, "power_w": None},
                              "q": {"latency_ms": 3.0, "energy_mj": 0.0, "power_w": None}}},
            "points": [{"name": "p", "settings": {"threads": 1}},
                       {"name": "q", "settings": {"threads": 2}}],
            "accuracy": {"a": 0.5, "b": 1}}


def test_optable_accessors() -> None:
    t = OpTable.from_dict(raw())
    assert t.members == ["a", "b"] and t.point_names == ["p", "q"]
    assert t.energy_source == "model:g"
    assert t.accuracy == {"a": 0.5, "b": 1.0} and type(t.accuracy["b"]) is float
    assert t.meta == {}
    assert t.latency("b", "q") == 3.0
    assert t.energy("a", "p") == 6.0  # power_w * latency_ms
    assert t.energy("a", "q") == 5.0  # energy_mj wins over power_w
    assert t.energy("b", "p") is None
    assert t.energy("b", "q") == 0.0  # a zero energy is a known energy
    assert t.settings("q") == {"threads": 2}
    s = t.settings("q")
    s["x"] = 1
    assert t.settings("q") == {"threads": 2}  # a copy


def test_optable_messages() -> None:
    t = OpTable.from_dict(raw())
    with pytest.raises(ValueError) as info:
        t.latency("c", "p")
    assert str(info.value) == "unknown member 'c'; the table has ['a', 'b']"
    with pytest.raises(ValueError) as info:
        t.energy("a", "r")
    assert str(info.value) == "unknown operating point 'r'; points are ['p', 'q']"
    with pytest.raises(ValueError) as info:
        t.settings("r")
    assert str(info.value) == "unknown operating point 'r'; points are ['p', 'q']"
    with pytest.raises(ValueError) as info:
        OpTable.from_dict([1])  # type: ignore[arg-type]
    assert str(info.value) == "an operating-point table is a JSON object, got list"
    bad = raw()
    bad["accuracy"] = {"a": 0.5}
    with pytest.raises(ValueError) as info:
        OpTable.from_dict(bad)
    assert str(info.value) == ("'accuracy' must name exactly the table's members ['a', 'b'], "
                               "got ['a']")
    bad["accuracy"] = {"a": 0.5, "b": 0.5, "c": 0.1}
    with pytest.raises(ValueError, match=r"got \['a', 'b', 'c'\]$"):
        OpTable.from_dict(bad)
    bad["energy_source"] = "x"
    with pytest.raises(ValueError, match="energy_source must be"):
        OpTable.from_dict(bad)


def test_optable_without_accuracy_and_with_meta() -> None:
    d = raw()
    del d["accuracy"]
    d["meta"] = {"how": "measured"}
    t = OpTable.from_dict(d)
    assert t.accuracy == {} and t.meta == {"how": "measured"}
    out = t.to_dict()
    assert "accuracy" not in out and out["meta"] == {"how": "measured"}
    d["accuracy"] = None
    assert OpTable.from_dict(d).accuracy == {}
    d["accuracy"] = {}
    assert OpTable.from_dict(d).accuracy == {}


def test_optable_to_dict_exact_and_round_trip(tmp_path: Path) -> None:
    t = OpTable.from_dict(raw())
    out = t.to_dict()
    assert out == {"energy_source": "model:g",
                   "members": {"a": {"p": {"latency_ms": 2.0, "energy_mj": None,
                                           "power_w": 3.0},
                                     "q": {"latency_ms": 1.0, "energy_mj": 5.0,
                                           "power_w": 9.0}},
                               "b": {"p": {"latency_ms": 4.0, "energy_mj": None,
                                           "power_w": None},
                                     "q": {"latency_ms": 3.0, "energy_mj": 0.0,
                                           "power_w": None}}},
                   "points": [{"name": "p", "settings": {"threads": 1}},
                              {"name": "q", "settings": {"threads": 2}}],
                   "accuracy": {"a": 0.5, "b": 1.0}}
    assert "meta" not in out
    path = t.write(tmp_path / "t.json")
    assert path == tmp_path / "t.json"
    assert json.loads(path.read_text()) == out
    assert OpTable.read(path) == t
    assert OpTable.read(str(path)).to_dict() == out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.json"]


def test_optable_read_messages(tmp_path: Path) -> None:
    p = tmp_path / "t.json"
    p.write_text("{oops")
    with pytest.raises(ValueError) as info:
        OpTable.read(p)
    assert str(info.value).startswith(f"operating-point table {str(p)!r} is not JSON: "
                                      "Expecting property name")
    assert info.value.__cause__ is None and info.value.__suppress_context__
    d = raw()
    d["accuracy"] = {"a": 1.0}
    p.write_text(json.dumps(d))
    with pytest.raises(ValueError) as info:
        OpTable.read(p)
    assert str(info.value) == (f"operating-point table {str(p)!r}: 'accuracy' must name "
                               "exactly the table's members ['a', 'b'], got ['a']")
    assert info.value.__cause__ is None and info.value.__suppress_context__
    p.write_text(json.dumps({"energy_source": "rapl", "members": {"a": {"p": {}}},
                             "points": [{"name": "p"}], "accuracy": 3}))
    with pytest.raises(ValueError, match=r"^operating-point table '.*t\.json': "):
        OpTable.read(p)
    p.write_text("[1, 2]")
    with pytest.raises(ValueError) as info:
        OpTable.read(p)
    assert str(info.value) == (f"operating-point table {str(p)!r}: an operating-point table "
                               "is a JSON object, got list")
    with pytest.raises(OSError):
        OpTable.read(tmp_path / "missing.json")


# --------------------------------------------------------------------------- construction


def simple(**kw: Any) -> HierarchicalManager:
    t = tbl({"a": {"p": 1.0}}, {"a": {"p": 1.0}}, {"a": 0.5})
    return HierarchicalManager([ModelSpec("x", t, 10.0)], **kw)


def test_manager_defaults() -> None:
    m = simple()
    assert m.objective == "accuracy" and m.stay == 0.25 and m.energy_tolerance == 0.0
    assert m.steps == 0 and m.point_switches == 0 and m.point == "p" and m.points == ["p"]
    assert m.models == ["x"] and m.energy_source == "rapl"
    assert m.load("x") == 1.0
    assert m.decisions == {"x": Decision(member="a", point="p", predicted_ms=1.0, load=1.0,
                                         feasible=True)}
    assert isinstance(m.stay, float) and isinstance(m.energy_tolerance, float)


def test_manager_argument_messages() -> None:
    t = tbl({"a": {"p": 1.0}}, {"a": {"p": 1.0}}, {"a": 0.5})
    spec = ModelSpec("x", t, 10.0)
    cases = [
        (([],), {}, "a manager needs at least one model"),
        (([spec, spec],), {}, "model names must be unique, got ['x', 'x']"),
        (([spec],), {"objective": "speed"}, "objective='speed'; choose 'accuracy' or 'energy'"),
        (([spec],), {"stay": -0.1}, "stay must lie in [0, 1], got -0.1"),
        (([spec],), {"stay": 1.5}, "stay must lie in [0, 1], got 1.5"),
        (([spec],), {"energy_tolerance": -0.5},
         "energy_tolerance must be a number >= 0, got -0.5"),
        (([spec],), {"energy_tolerance": float("inf")},
         "energy_tolerance must be a number >= 0, got inf"),
        (([spec],), {"selector_options": {"objective": "energy"}},
         "selector_options may not set 'objective' or 'operating_points': the manager's "
         "levels choose those"),
        (([spec],), {"selector_options": {"operating_points": []}},
         "selector_options may not set 'objective' or 'operating_points': the manager's "
         "levels choose those"),
    ]
    for args, kw, msg in cases:
        with pytest.raises(ValueError) as info:
            HierarchicalManager(*args, **kw)
        assert str(info.value) == msg
    # the ends of the ranges are fine
    HierarchicalManager([spec], stay=0.0)
    HierarchicalManager([spec], stay=1.0)
    HierarchicalManager([spec], energy_tolerance=0.0)
    HierarchicalManager([spec], objective="energy")


def test_model_spec_messages() -> None:
    t = tbl({"a": {"p": 1.0, "q": 2.0}}, {"a": {"p": 1.0, "q": 1.0}}, {"a": 0.5})
    other = tbl({"a": {"p": 1.0}}, {"a": {"p": 1.0}}, {"a": 0.5})
    with pytest.raises(ValueError) as info:
        HierarchicalManager([ModelSpec("x", t, 10.0), ModelSpec("y", other, 10.0)])
    assert str(info.value) == ("model 'y': its table's points ['p'] differ from the "
                               "device's ['p', 'q']")
    with pytest.raises(ValueError) as info:
        HierarchicalManager([ModelSpec("x", t, 10.0, accuracy={"b": 0.5})])
    assert str(info.value) == ("model 'x': accuracies for ['b'] but the table has members "
                               "['a']")
    no_acc = tbl({"a": {"p": 1.0}}, {"a": {"p": 1.0}})
    with pytest.raises(ValueError) as info:
        HierarchicalManager([ModelSpec("x", no_acc, 10.0)])
    assert str(info.value) == "model 'x': accuracies for [] but the table has members ['a']"
    no_e = tbl({"a": {"p": 1.0, "q": 2.0}}, None, {"a": 0.5})
    with pytest.raises(ValueError) as info:
        HierarchicalManager([ModelSpec("x", no_e, 10.0)])
    assert str(info.value) == ("model 'x': its table lacks the energy of some member at some "
                               "point; the device level needs every one (energy_mj or "
                               "power_w)")
    # same points in another order are fine; explicit accuracies win over the table's
    swapped = tbl({"a": {"q": 2.0, "p": 1.0}}, {"a": {"p": 1.0, "q": 1.0}}, {"a": 0.5})
    m = HierarchicalManager([ModelSpec("x", t, 10.0), ModelSpec("y", swapped, 10.0,
                                                                accuracy={"a": 0.1})])
    assert m.models == ["x", "y"] and m.points == ["p", "q"]


def test_step_messages() -> None:
    m = simple()
    with pytest.raises(ValueError) as info:
        m.step({"y": 1.0, "x": 1.0, "w": 2.0})
    assert str(info.value) == "unknown models ['w', 'y']; models are ['x']"
    with pytest.raises(ValueError) as info:
        m.step({"x": 1.0}, contention={"r": 2.0, "q": 1.0})
    assert str(info.value) == "contention for unknown points ['q', 'r']; points are ['p']"
    for f in (0.99, float("nan"), float("inf"), True, "2", 0):
        with pytest.raises(ValueError) as info:
            m.step({"x": 1.0}, contention={"p": f})
        assert str(info.value) == (f"contention factor of 'p' must be a finite number >= 1, "
                                   f"got {f!r}")
    assert m.steps == 0  # refused steps count nothing
    with pytest.raises(ValueError) as info:
        m.load("y")
    assert str(info.value) == "unknown model 'y'; models are ['x']"
    assert info.value.__cause__ is None and info.value.__suppress_context__
    m.step({"x": 1.0}, contention={"p": 1.0})
    m.step({"x": 1.0}, contention={})
    assert m.steps == 2


# --------------------------------------------------------------------------- decisions


def two_points() -> OpTable:
    # a: accurate and slow; b: fast. "eco" is slower and cheaper than "turbo".
    return tbl({"a": {"turbo": 4.0, "eco": 8.0}, "b": {"turbo": 1.0, "eco": 2.0}},
               {"a": {"turbo": 10.0, "eco": 4.0}, "b": {"turbo": 3.0, "eco": 1.0}},
               {"a": 0.9, "b": 0.6})


def test_first_decision_accuracy_then_energy() -> None:
    m = HierarchicalManager([ModelSpec("x", two_points(), 10.0)])
    d = m.decisions["x"]
    # a fits at both points (8 <= 10 * 0.9); eco uses less energy
    assert (m.point, d.member, d.predicted_ms, d.load, d.feasible) == ("eco", "a", 8.0, 1.0,
                                                                       True)
    # a tighter target: a fits only at turbo
    m = HierarchicalManager([ModelSpec("x", two_points(), 8.0)])
    assert (m.point, m.decisions["x"].member) == ("turbo", "a")


def test_energy_tolerance_prefers_the_fastest_within_it() -> None:
    m = HierarchicalManager([ModelSpec("x", two_points(), 10.0)], energy_tolerance=1.5)
    assert m.point == "turbo"  # 10 <= 4 * 2.5: within the tolerance, and faster
    m = HierarchicalManager([ModelSpec("x", two_points(), 10.0)], energy_tolerance=1.4)
    assert m.point == "eco"  # 10 > 4 * 2.4
    m = HierarchicalManager([ModelSpec("x", two_points(), 10.0)], energy_tolerance=1.5 - 1e-9)
    assert m.point == "eco"


def test_energy_objective_uses_the_floor() -> None:
    spec = ModelSpec("x", two_points(), 10.0, accuracy_floor=0.5)
    m = HierarchicalManager([spec], objective="energy")
    assert (m.point, m.decisions["x"].member) == ("eco", "b")  # 1 mJ
    spec = ModelSpec("x", two_points(), 10.0, accuracy_floor=0.9)
    m = HierarchicalManager([spec], objective="energy")
    assert (m.point, m.decisions["x"].member) == ("eco", "a")  # b is below the floor
    # the floor is inclusive
    spec = ModelSpec("x", two_points(), 10.0, accuracy_floor=0.6)
    assert HierarchicalManager([spec], objective="energy").decisions["x"].member == "b"


def test_infeasible_fallback_is_the_fastest_member_at_the_fastest_point() -> None:
    m = HierarchicalManager([ModelSpec("x", two_points(), 0.5)])
    d = m.decisions["x"]
    assert (m.point, d.member, d.predicted_ms, d.feasible) == ("turbo", "b", 1.0, False)
    # with a floor the fastest member that meets it
    spec = ModelSpec("x", two_points(), 0.5, accuracy_floor=0.8)
    d = HierarchicalManager([spec], objective="energy").decisions["x"]
    assert (d.member, d.point, d.feasible) == ("a", "turbo", False)
    # a floor nobody meets: any member
    spec = ModelSpec("x", two_points(), 0.5, accuracy_floor=0.99)
    d = HierarchicalManager([spec], objective="energy").decisions["x"]
    assert (d.member, d.point) == ("b", "turbo")


def test_without_the_margin_before_giving_up() -> None:
    # a at turbo is 9.5 ms: misses 10 * 0.9 with the margin, meets 10 without it
    t = tbl({"a": {"turbo": 9.5, "eco": 20.0}}, {"a": {"turbo": 1.0, "eco": 1.0}}, {"a": 0.9})
    m = HierarchicalManager([ModelSpec("x", t, 10.0)])
    d = m.decisions["x"]
    assert (m.point, d.member, d.feasible) == ("turbo", "a", True)
    assert d.predicted_ms == 9.5
    # exactly at the target: still feasible
    t = tbl({"a": {"turbo": 10.0}}, {"a": {"turbo": 1.0}}, {"a": 0.9})
    assert HierarchicalManager([ModelSpec("x", t, 10.0)]).decisions["x"].feasible


def test_load_moves_the_point_and_counts_switches() -> None:
    m = HierarchicalManager([ModelSpec("x", two_points(), 10.0)],
                            selector_options={"margin": 0.1})
    assert m.point == "eco"
    d = m.step({"x": 16.0})  # a at eco took twice its table latency
    assert m.steps == 1
    assert m.load("x") == 2.0
    # load 2: a fits at turbo (8 <= 9), not at eco (16)
    assert (m.point, d["x"].member, d["x"].load, d["x"].predicted_ms) == ("turbo", "a", 2.0,
                                                                          8.0)
    assert m.point_switches == 1
    m.step({"x": None})  # no request: nothing observed
    assert m.steps == 2 and m.load("x") == 2.0 and m.point_switches == 1


def test_contention_factor_scales_predictions() -> None:
    m = HierarchicalManager([ModelSpec("x", two_points(), 10.0)],
                            selector_options={"margin": 0.1})
    d = m.step({"x": 8.0}, contention={"eco": 1.5})
    # the factor applies to this reading: the load is what contention does not explain
    assert m.load("x") == pytest.approx(8.0 / (8.0 * 1.5))
    assert m.point == "eco" and d["x"].member == "a"
    assert d["x"].predicted_ms == pytest.approx(8.0)  # 8 * 2/3 * 1.5
    # no reading, more contention at eco (kept from now on): the point moves
    d = m.step({"x": None}, contention={"eco": 3.0})
    assert m.point == "turbo" and d["x"].member == "a"
    assert d["x"].predicted_ms == pytest.approx(4.0 * 2 / 3)
    assert m.point_switches == 1
    # eco keeps its factor 3 when a later call names only turbo
    d = m.step({"x": None}, contention={"turbo": 1.0})
    assert m.point == "turbo"


def test_decide_tie_within_1e12_keeps_both_candidates() -> None:
    t = tbl({"a": {"p1": 5.0, "p2": 20.0}, "b": {"p1": 4.0, "p2": 8.0}},
            {"a": {"p1": 10.0, "p2": 10.0}, "b": {"p1": 10.0, "p2": 1.0}},
            {"a": 0.9, "b": 0.9 - 1e-12})
    m = HierarchicalManager([ModelSpec("x", t, 10.0)])
    assert m.point == "p2" and m.decisions["x"].member == "b"


def test_member_at_energy_ignores_the_selector_cap() -> None:
    t = tbl({"a": {"p": 5.0}, "b": {"p": 2.0}}, {"a": {"p": 1.0}, "b": {"p": 5.0}},
            {"a": 0.9, "b": 0.5})
    m = HierarchicalManager([ModelSpec("x", t, 10.0)], objective="energy",
                            selector_options={"margin": 0.1})
    m.step({"x": 12.0})
    second = m.step({"x": 2.0})
    assert second["x"].member == "a"


def test_accuracy_objective_is_capped_by_the_selector() -> None:
    t = tbl({"a": {"p": 5.0}, "b": {"p": 2.0}}, {"a": {"p": 1.0}, "b": {"p": 5.0}},
            {"a": 0.9, "b": 0.5})
    m = HierarchicalManager([ModelSpec("x", t, 10.0)], selector_options={"margin": 0.1})
    assert m.decisions["x"].member == "a"
    d = m.step({"x": 12.0})  # load 2.4: a needs 12 ms > 9
    assert d["x"].member == "b" and d["x"].feasible
    d = m.step({"x": 2.0})  # one fast request: the selector does not climb at once
    assert d["x"].member == "b"


def test_react_to_miss_uses_the_last_sample() -> None:
    t = tbl({"a": {"p": 5.0}, "b": {"p": 1.0}}, {"a": {"p": 1.0}, "b": {"p": 1.0}},
            {"a": 0.9, "b": 0.5})
    opts = {"margin": 0.1, "window": 3}
    m = HierarchicalManager([ModelSpec("x", t, 10.0)], selector_options=opts)
    m.step({"x": 5.0})
    m.step({"x": 5.0})
    d = m.step({"x": 12.0})  # a miss: median still 1.0, but the last sample 2.4 counts
    assert m.load("x") == pytest.approx(2.4)
    assert d["x"].member == "b" and d["x"].load == pytest.approx(2.4)
    m2 = HierarchicalManager([ModelSpec("x", t, 10.0)], selector_options=opts,
                             react_to_miss=False)
    m2.step({"x": 5.0})
    m2.step({"x": 5.0})
    m2.step({"x": 12.0})
    assert m2.load("x") == pytest.approx(1.0)


@pytest.mark.filterwarnings("ignore:FeedbackSelector ignored:RuntimeWarning")
def test_invalid_readings_are_ignored() -> None:
    m = HierarchicalManager([ModelSpec("x", two_points(), 10.0)],
                            selector_options={"margin": 0.1})
    for bad in (float("nan"), -1.0, 0.0):
        m.step({"x": bad})
        assert m.load("x") == 1.0 and m.point == "eco"


def test_stay_band_keeps_the_current_point() -> None:
    # a at eco: 8 ms; load 1.15 -> 9.2 ms: within 10 * (1 - 0.25 * 0.1) = 9.75 (stay),
    # not within 9 (the full margin)
    t = two_points()
    m = HierarchicalManager([ModelSpec("x", t, 10.0)], selector_options={"margin": 0.1,
                                                                         "window": 1})
    d = m.step({"x": 9.2})
    assert m.point == "eco" and d["x"].member == "a"
    m = HierarchicalManager([ModelSpec("x", t, 10.0)], stay=1.0,
                            selector_options={"margin": 0.1, "window": 1})
    d = m.step({"x": 9.2})
    assert m.point == "turbo" and d["x"].member == "a"


def test_two_models_share_one_point() -> None:
    t = two_points()
    m = HierarchicalManager([ModelSpec("x", t, 10.0), ModelSpec("y", t, 6.0)])
    # y needs turbo for a (4 <= 5.4); at eco y gets only b (2 ms) -> accuracy 0.9 + 0.6
    assert m.point == "turbo"
    assert m.decisions["x"].member == "a" and m.decisions["y"].member == "a"
    assert m.decisions["x"].point == m.decisions["y"].point == "turbo"
    d = m.step({"x": 4.0})  # y made no request
    assert set(d) == {"x", "y"}


@pytest.mark.parametrize("confirm, points", [
    (2, ["eco", "turbo", "turbo", "eco", "eco"]),
    (3, ["eco", "turbo", "turbo", "turbo", "eco"]),
])
def test_moving_to_a_slower_point_needs_every_recent_sample(confirm: int,
                                                             points: list[str]) -> None:
    """Load 2 then 1: back to the slower point only once the last ``confirm`` samples
    (not just the median) say it fits."""
    m = HierarchicalManager([ModelSpec("x", two_points(), 10.0)],
                            selector_options={"margin": 0.1, "confirm": confirm})
    seen = [m.point]
    loads = []
    for ms in (16.0, 4.0, 4.0, 4.0):
        d = m.step({"x": ms})
        seen.append(m.point)
        loads.append(d["x"].load)
        assert d["x"].member == "a"
    assert seen == points
    assert loads == pytest.approx([2.0, 1.5, 1.0, 1.0])
    assert m.point_switches == 2


def test_a_member_exactly_at_the_budget_fits() -> None:
    t = tbl({"a": {"p": 9.0}, "b": {"p": 1.0}}, {"a": {"p": 1.0}, "b": {"p": 1.0}},
            {"a": 0.9, "b": 0.5})
    m = HierarchicalManager([ModelSpec("x", t, 10.0)], selector_options={"margin": 0.1})
    d = m.decisions["x"]
    assert (d.member, d.predicted_ms, d.feasible) == ("a", 9.0, True)  # 9 <= 10 * 0.9
