"""Contract tests of ``switchnas.runtime.selectors``: the registry and its messages, the
filter of invalid readings and its warnings, and exact decisions of every built-in policy
on small hand-computed inputs."""

from __future__ import annotations

import math
import warnings
from typing import Any

import pytest

from switchnas.runtime import selectors as S
from switchnas.runtime.selectors import (
    FeedbackSelector,
    MemberInfo,
    OracleSelector,
    StaticSelector,
    StepSelector,
    make_selector,
)

A = MemberInfo("a", 0.5, 5.0, energy_mj=1.0)
B = MemberInfo("b", 0.7, 10.0, energy_mj=2.0)
C = MemberInfo("c", 0.9, 20.0, energy_mj=4.0)
ABC = [C, A, B]  # not in latency order on purpose


@pytest.fixture()
def registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A private copy of the registry, entry points not loaded yet."""
    reg = dict(S._REGISTRY)
    monkeypatch.setattr(S, "_REGISTRY", reg)
    monkeypatch.setattr(S, "_entry_points_loaded", False)
    return reg


# -- registry ----------------------------------------------------------------------------------
def test_member_info_defaults() -> None:
    m = MemberInfo("x", 0.5, 3.0)
    assert m.energy_mj is None and (m.id, m.accuracy, m.latency_ms) == ("x", 0.5, 3.0)
    with pytest.raises(AttributeError):
        m.id = "y"  # type: ignore[misc]


def test_builtins_are_registered() -> None:
    assert {"feedback", "oracle", "static", "step"} <= set(S.available_selectors())
    assert S.available_selectors() == sorted(S.available_selectors())
    assert S.get_selector("feedback") is FeedbackSelector
    assert S.get_selector("static") is StaticSelector
    assert S.get_selector("step") is StepSelector
    assert S.get_selector("oracle") is OracleSelector
    assert S.ENTRY_POINT_GROUP == "switchnas.selectors"


def test_unknown_policy_message(registry: dict[str, Any],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata as md
    monkeypatch.setattr(md, "entry_points", lambda group: [])
    with pytest.raises(ValueError, match=r"^unknown selector policy 'nope'; available: "
                       r"\[(.*)\]$") as err:
        S.get_selector("nope")
    assert str(err.value).endswith(repr(sorted(registry)))


def test_register_checks_the_factory(registry: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match=r"^selector 'x': 5 is not callable$"):
        S.register_selector("x")(5)  # type: ignore[arg-type]

    class NoStep:
        current = "a"

    class Nothing:
        pass

    with pytest.raises(TypeError, match=r"^selector 'x' \(test_register_checks_the_factory"
                       r"\.<locals>\.NoStep\) does not implement Selector: missing step$"):
        S.register_selector("x")(NoStep)
    with pytest.raises(TypeError, match=r"does not implement Selector: missing step, "
                       r"current$"):
        S.register_selector("x")(Nothing)
    assert "x" not in registry

    class Mine(StaticSelector):
        pass

    assert S.register_selector("mine")(Mine) is Mine
    assert registry["mine"] is Mine
    sel = make_selector("mine", ABC, target_ms=12, member="a")
    assert isinstance(sel, Mine) and sel.current == "a"


def test_make_selector_checks_what_a_factory_returns(registry: dict[str, Any]) -> None:
    S.register_selector("bad")(lambda members, *, target_ms: 42)
    with pytest.raises(TypeError, match=r"^selector 'bad' returned int, which does not "
                       r"implement Selector: missing step, current$"):
        make_selector("bad", ABC, target_ms=10)

    class Half:
        def __init__(self, *a: Any, **k: Any):
            self.current = "a"

    registry["half"] = Half
    with pytest.raises(TypeError, match=r"^selector 'half' returned Half, which does not "
                       r"implement Selector: missing step$"):
        make_selector("half", ABC, target_ms=10)


class _EP:
    def __init__(self, name: str, obj: Any):
        self.name, self.obj, self.loads = name, obj, 0

    def load(self) -> Any:
        self.loads += 1
        return self.obj


def test_entry_points_load_once_and_never_override(registry: dict[str, Any],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata as md

    class Ext(StaticSelector):
        pass

    ours = _EP("ext", Ext)
    clash = _EP("static", Ext)
    calls: list[str] = []

    def eps(group: str) -> list[_EP]:
        calls.append(group)
        return [ours, clash]

    monkeypatch.setattr(md, "entry_points", eps)
    assert S.get_selector("static") is StaticSelector  # registered: no entry point read
    assert calls == []
    assert S.get_selector("ext") is Ext
    assert calls == ["switchnas.selectors"]
    assert registry["static"] is StaticSelector and clash.loads == 0
    assert "ext" in S.available_selectors()
    with pytest.raises(ValueError, match="unknown selector policy"):
        S.get_selector("other")
    assert calls == ["switchnas.selectors"] and ours.loads == 1  # loaded once


def test_entry_point_that_is_not_a_selector(registry: dict[str, Any],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata as md
    monkeypatch.setattr(md, "entry_points", lambda group: [_EP("junk", 7)])
    with pytest.raises(TypeError, match=r"^selector 'junk': 7 is not callable$"):
        S.available_selectors()


# -- the base: members, target, readings -------------------------------------------------------
def test_base_validation_and_order() -> None:
    with pytest.raises(ValueError, match=r"^a selector needs at least one member$"):
        StaticSelector([], target_ms=10)
    for bad in (0, -1.0, math.nan, math.inf, "10", None):
        with pytest.raises(ValueError, match=rf"^target_ms must be a positive number, got "
                           rf"{bad!r}$".replace("(", r"\(").replace(")", r"\)")):
            StaticSelector(ABC, target_ms=bad)  # type: ignore[arg-type]
    tie = MemberInfo("t", 0.95, 5.0)
    sel = StaticSelector([A, tie, C, B], target_ms=1e-3)
    assert [m.id for m in sel.members] == ["t", "a", "b", "c"]  # equal latency: accurate first
    assert sel.target_ms == 1e-3 and type(StaticSelector(ABC, target_ms=7).target_ms) is float
    assert sel.current == "t"  # nothing meets the target: the fastest
    assert sel.steps == 0 and sel.invalid_readings == 0


def test_invalid_readings_are_counted_and_warned_1_10_100() -> None:
    sel = StaticSelector(ABC, target_ms=12)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        assert sel.step(None) == "b" and sel.invalid_readings == 0
        for bad in (math.nan, math.inf, 0, -3.0, "12", True):
            sel.step(bad)
        assert sel.invalid_readings == 6 and sel.steps == 7
        assert sel.step(4) == "b" and sel.step(4.5) == "b" and sel.invalid_readings == 6
        for _ in range(94):
            sel.step(math.nan)
    assert sel.invalid_readings == 100 and sel.steps == 103
    msgs = [str(w.message) for w in rec]
    assert [w.category for w in rec] == [RuntimeWarning] * 3
    assert msgs == [
        "StaticSelector ignored the latency reading nan (a positive finite number of ms is "
        "expected); 1 ignored so far",
        "StaticSelector ignored the latency reading nan (a positive finite number of ms is "
        "expected); 10 ignored so far",
        "StaticSelector ignored the latency reading nan (a positive finite number of ms is "
        "expected); 100 ignored so far"]


def test_invalid_reading_warning_quotes_40_characters() -> None:
    sel = StepSelector(ABC, target_ms=12)
    with pytest.warns(RuntimeWarning) as rec:
        sel.step("x" * 60)  # type: ignore[arg-type]
    assert str(rec[0].message) == (f"StepSelector ignored the latency reading "
                                   f"{repr('x' * 60)[:40]} (a positive finite number of ms "
                                   "is expected); 1 ignored so far")


def test_ten_invalid_readings_give_two_warnings() -> None:
    sel = FeedbackSelector(ABC, target_ms=12)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        for _ in range(10):
            assert sel.step(float("nan")) == "b"
    assert len(rec) == 2 and "10 ignored so far" in str(rec[1].message)
    assert str(rec[0].message).startswith("FeedbackSelector ignored the latency reading nan")
    assert sel.slowdown == 1.0


# -- static ------------------------------------------------------------------------------------
def test_static_selector_contract() -> None:
    assert StaticSelector(ABC, target_ms=20).current == "c"  # 20 <= 20
    assert StaticSelector(ABC, target_ms=19.9).current == "b"
    assert StaticSelector(ABC, target_ms=1).current == "a"
    sel = StaticSelector(ABC, target_ms=1, member="c")
    assert sel.current == "c" and sel.step(1000.0) == "c" and sel.step(None) == "c"
    with pytest.raises(ValueError, match=r"^unknown member 'z'; members are \['a', 'b', "
                       r"'c'\]$"):
        StaticSelector(ABC, target_ms=1, member="z")
    same = [MemberInfo("p", 0.8, 6.0), MemberInfo("q", 0.8, 4.0)]
    assert StaticSelector(same, target_ms=10).current == "q"  # equally accurate: faster


# -- feedback ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kw,msg", [
    ({"margin": 1.0}, "margin must be 'auto' or lie in [0, 1); got 1.0"),
    ({"margin": -0.1}, "margin must be 'auto' or lie in [0, 1); got -0.1"),
    ({"margin": "big"}, "margin must be 'auto' or lie in [0, 1); got 'big'"),
    ({"hysteresis": 1.0}, "hysteresis and min_margin must lie in [0, 1); got 1.0, 0.02"),
    ({"hysteresis": -0.5}, "hysteresis and min_margin must lie in [0, 1); got -0.5, 0.02"),
    ({"min_margin": 1.0}, "hysteresis and min_margin must lie in [0, 1); got 0.0, 1.0"),
    ({"min_margin": -0.1}, "hysteresis and min_margin must lie in [0, 1); got 0.0, -0.1"),
    ({"stay": 1.5}, "stay must lie in [0, 1]; got 1.5"),
    ({"stay": -0.5}, "stay must lie in [0, 1]; got -0.5"),
    ({"estimator": "mean"}, "estimator='mean'; choose 'median' or 'ewma'"),
    ({"objective": "speed"}, "objective='speed'; choose 'accuracy' or 'energy'"),
    ({"window": 0}, "window and confirm must be >= 1 and alpha in (0, 1]; got 0, 2, 0.5"),
    ({"confirm": 0}, "window and confirm must be >= 1 and alpha in (0, 1]; got 3, 0, 0.5"),
    ({"alpha": 0.0}, "window and confirm must be >= 1 and alpha in (0, 1]; got 3, 2, 0.0"),
    ({"alpha": 1.5}, "window and confirm must be >= 1 and alpha in (0, 1]; got 3, 2, 1.5"),
    ({"operating_points": [{"latency_scale": 1.0}]},
     "operating point {'latency_scale': 1.0, 'energy_scale': 1.0} has no 'name'"),
])
def test_feedback_option_messages(kw: dict[str, Any], msg: str) -> None:
    import re
    with pytest.raises(ValueError, match="^" + re.escape(msg) + "$"):
        FeedbackSelector(ABC, target_ms=12, **kw)


def test_feedback_option_bounds_are_inclusive() -> None:
    for kw in ({"margin": 0.0}, {"margin": 0.99}, {"margin": 0}, {"hysteresis": 0.0},
               {"min_margin": 0.0}, {"stay": 0.0}, {"stay": 1.0}, {"window": 1},
               {"confirm": 1}, {"alpha": 1.0}, {"estimator": "ewma"},
               {"objective": "energy"}):
        FeedbackSelector(ABC, target_ms=12, **kw)
    with pytest.raises(ValueError, match=r"^objective='energy' needs every member's "
                       r"energy_mj$"):
        FeedbackSelector([A, MemberInfo("n", 0.9, 6.0)], target_ms=12, objective="energy")


def test_feedback_defaults() -> None:
    sel = FeedbackSelector(ABC, target_ms=12)
    assert sel.auto_margin and sel.margin == 0.1 and sel.min_margin == 0.02
    assert sel.hysteresis == 0.0 and sel.stay == 0.25
    assert sel.estimator == "median" and sel.alpha == 0.5
    assert sel.accuracy_floor is None and sel.objective == "accuracy"
    assert sel.operating_point == "nominal" and sel.slowdown == 1.0
    assert sel.infeasible is False
    fixed = FeedbackSelector(ABC, target_ms=12, margin=0.3)
    assert not fixed.auto_margin and fixed.margin == 0.3


def test_feedback_initial_choice_uses_the_margin() -> None:
    # budget target * (1 - 0.1): 20 fits 22.3 (20.07) but not 22.2 (19.98)
    assert FeedbackSelector(ABC, target_ms=22.3).current == "c"
    assert FeedbackSelector(ABC, target_ms=22.2).current == "b"
    assert FeedbackSelector(ABC, target_ms=40, margin=0.5).current == "c"  # 20 <= 20
    assert FeedbackSelector(ABC, target_ms=39.9, margin=0.5).current == "b"
    sel = FeedbackSelector(ABC, target_ms=2)
    assert sel.current == "a" and sel.infeasible is True


def test_feedback_median_estimate() -> None:
    sel = FeedbackSelector([MemberInfo("a", 0.9, 5.0, 10.0)], target_ms=100, window=4,
                           margin=0.1)
    sel.step(5.0)
    sel.step(15.0)
    assert sel.slowdown == 2.0  # median of [1, 3]
    sel.step(50.0)
    assert sel.slowdown == 3.0  # median of [1, 3, 10]
    sel.step(10.0)
    assert sel.slowdown == 2.5  # median of [1, 2, 3, 10]
    sel.step(10.0)
    assert sel.slowdown == 2.5  # window 4: [3, 10, 2, 2] -> (2 + 3) / 2
    sel.step(None)
    assert sel.slowdown == 2.5
    three = FeedbackSelector([MemberInfo("a", 0.9, 5.0)], target_ms=100)  # window 3
    for obs in (5.0, 50.0, 10.0, 15.0):
        three.step(obs)
    assert three.slowdown == 3.0  # [10, 2, 3] -> 3


def test_feedback_ewma_estimate() -> None:
    sel = FeedbackSelector([MemberInfo("a", 0.9, 5.0)], target_ms=100, estimator="ewma")
    sel.step(15.0)  # sample 3: 1 + 0.5 * 2
    assert sel.slowdown == 2.0
    sel.step(5.0)  # sample 1: 2 + 0.5 * -1
    assert sel.slowdown == 1.5
    a = FeedbackSelector([MemberInfo("a", 0.9, 5.0)], target_ms=100, estimator="ewma",
                         alpha=0.25)
    a.step(25.0)
    assert a.slowdown == 2.0  # 1 + 0.25 * 4


def test_feedback_stay_band() -> None:
    two = [MemberInfo("a", 0.5, 5.0), MemberInfo("b", 0.7, 10.0)]
    # slowdown 2: b predicts 20 ms = the target; stay=0 keeps it, the default 0.25 does not
    sel = FeedbackSelector(two, target_ms=20, margin=0.5, stay=0.0, window=1)
    assert sel.current == "b"
    assert sel.step(20.0) == "b" and sel.infeasible is False
    sel = FeedbackSelector(two, target_ms=20, margin=0.5, window=1)
    assert sel.step(20.0) == "a"  # 20 > 20 * (1 - 0.125); a: 10 <= 10
    # default stay: kept while within target * (1 - margin / 4)
    sel = FeedbackSelector(two, target_ms=20, margin=0.4, window=1)
    assert sel.current == "b"  # 10 <= 12
    assert sel.step(18.0) == "b"  # 18 <= 20 * 0.9
    sel = FeedbackSelector(two, target_ms=20, margin=0.4, window=1)
    assert sel.step(18.2) == "a"


def test_feedback_moves_up_only_within_the_strict_budget() -> None:
    two = [MemberInfo("a", 0.5, 5.0), MemberInfo("b", 0.7, 10.0)]
    sel = FeedbackSelector(two, target_ms=20, margin=0.5, window=1, confirm=1)
    assert sel.current == "b"
    assert sel.step(20.0) == "a"  # slowdown 2: b 20 > 10
    assert sel.step(2.5) == "b"  # slowdown 0.5: b 5 <= 10
    sel = FeedbackSelector(two, target_ms=20, margin=0.5, window=1, confirm=1)
    sel.step(20.0)
    assert sel.step(3.0) == "b"  # b: 6 <= 10
    sel = FeedbackSelector(two, target_ms=20, margin=0.5, window=1, confirm=1,
                           hysteresis=0.5)
    sel.step(20.0)
    assert sel.step(3.0) == "a"  # b: 6 > 10 * 0.5
    assert sel.step(2.5) == "b"  # b: 5 <= 5
    # confirm=2 (default): the previous sample (2.0) still says b does not fit
    sel = FeedbackSelector(two, target_ms=20, margin=0.5, window=1)
    assert sel.step(20.0) == "a"
    assert sel.step(2.5) == "a"
    assert sel.step(2.5) == "b"


def test_feedback_told_which_member_ran() -> None:
    sel = FeedbackSelector(ABC, target_ms=30, margin=0.1, window=1)
    assert sel.current == "c"
    # a ran and took 10 ms: slowdown 2, c predicts 40 ms, b 20 <= 27
    assert sel.step(10.0, ran="a") == "b"
    assert sel.slowdown == 2.0
    with pytest.raises(ValueError, match=r"^unknown member 'zz'; members are"):
        sel.step(1.0, ran="zz")
    same = FeedbackSelector(ABC, target_ms=30, margin=0.1, window=1)
    assert same.step(20.0, ran="c") == "c" and same.slowdown == 1.0


def test_feedback_accuracy_floor() -> None:
    sel = FeedbackSelector(ABC, target_ms=12, accuracy_floor=0.7)
    assert sel.current == "b"
    sel = FeedbackSelector(ABC, target_ms=8, accuracy_floor=0.7)
    assert sel.current == "b" and sel.infeasible is True  # the fastest allowed
    sel = FeedbackSelector(ABC, target_ms=8, accuracy_floor=0.5)
    assert sel.current == "a" and sel.infeasible is False  # 0.5 >= 0.5
    sel = FeedbackSelector(ABC, target_ms=12, accuracy_floor=0.95)
    assert sel.current == "b"  # above every member: latency decides


def test_feedback_energy_objective_and_points() -> None:
    ops = [{"name": "hi", "energy_scale": 1.0}, {"name": "eco", "energy_scale": 0.5}]
    sel = FeedbackSelector([MemberInfo("a", 0.9, 5.0, 10.0)], target_ms=100,
                           operating_points=ops)
    assert sel.current == "a" and sel.operating_point == "eco"
    ops = [{"name": "fast", "latency_scale": 0.5, "energy_scale": 2.0},
           {"name": "slow", "latency_scale": 1.0, "energy_scale": 1.0}]
    sel = FeedbackSelector(ABC, target_ms=22, objective="energy", operating_points=ops)
    assert (sel.current, sel.operating_point) == ("a", "slow")  # least energy: a at 1 mJ
    sel = FeedbackSelector(ABC, target_ms=22, objective="energy", operating_points=ops,
                           accuracy_floor=0.8)
    assert (sel.current, sel.operating_point) == ("c", "fast")  # c slow (20) > 19.8
    sel = FeedbackSelector(ABC, target_ms=22, operating_points=ops)
    assert (sel.current, sel.operating_point) == ("c", "fast")
    # same energy: the more accurate
    eq = [MemberInfo("p", 0.6, 5.0, 1.0), MemberInfo("q", 0.8, 6.0, 1.0)]
    assert FeedbackSelector(eq, target_ms=100, objective="energy").current == "q"
    # latency scale divides the samples: observed 10 at "fast" (2.5 predicted) is 4x
    sel = FeedbackSelector([A], target_ms=100, operating_points=[
        {"name": "fast", "latency_scale": 0.5}], window=1)
    sel.step(10.0)
    assert sel.slowdown == 4.0


def test_feedback_auto_margin_from_successive_differences() -> None:
    one = [MemberInfo("a", 0.9, 5.0)]
    sel = FeedbackSelector(one, target_ms=100)
    for k in range(5):
        sel.step(5.0 * math.exp(0.1 * (k % 2)))
    assert sel.margin == 0.1  # fewer than 6 samples
    sel.step(5.0)
    # diffs all 0.1: 2 * 1.4826 * 0.1 / sqrt(2)
    assert sel.margin == pytest.approx(2 * 1.4826 * 0.1 / math.sqrt(2))
    big = FeedbackSelector(one, target_ms=100)
    for k in range(6):
        big.step(5.0 * math.exp(1.0 * (k % 2)))
    assert big.margin == 0.5
    flat = FeedbackSelector(one, target_ms=100, min_margin=0.05)
    for _ in range(6):
        flat.step(5.0)
    assert flat.margin == 0.05
    # 21 logs: the last 20 differences (10 of 0, 10 of 0.2) decide, not one older 0
    diffs = [0.0] + [0.2, 0.0] * 10
    logs = [0.0]
    for d in diffs:
        logs.append(logs[-1] + d)
    win = FeedbackSelector(one, target_ms=100)
    for x in logs:
        win.step(5.0 * math.exp(x))
    assert win.margin == pytest.approx(2 * 1.4826 * 0.2 / math.sqrt(2))
    fixed = FeedbackSelector(one, target_ms=100, margin=0.3)
    for k in range(8):
        fixed.step(5.0 * math.exp(0.5 * (k % 2)))
    assert fixed.margin == 0.3


# -- step --------------------------------------------------------------------------------------
def test_step_selector_defaults_and_validation() -> None:
    with pytest.raises(ValueError, match=r"^window must be >= 1, got 0$"):
        StepSelector(ABC, target_ms=12, window=0)
    sel = StepSelector(ABC, target_ms=12)
    assert sel.window == 20 and sel.guard == 40 and sel.accuracy_floor is None
    assert sel.current == "b"  # most accurate meeting 12 unloaded
    assert StepSelector(ABC, target_ms=12, window=3, guard=1).guard == 1
    assert StepSelector(ABC, target_ms=12, window=3).guard == 6
    assert StepSelector(ABC, target_ms=12, start="c").current == "c"
    for _ in range(19):
        assert sel.step(13.0) == "b"
    assert sel.step(13.0) == "a"  # the 20th reading: mean 13 > 12


def test_step_selector_levels() -> None:
    sel = StepSelector(ABC, target_ms=12, window=2, start="b")
    assert sel.step(12.0) == "b" and sel.step(12.0) == "b"  # mean == target: stays
    assert sel.step(13.0) == "a"  # window [12, 13]: 12.5 > 12
    assert sel.step(1.0) == "a"  # after a switch the window starts again
    assert sel.step(1.0) == "a"  # guard 4: t=5, left b at t=3


def test_step_selector_climbs_when_scaled_mean_fits() -> None:
    sel = StepSelector(ABC, target_ms=12, window=1, start="a")
    assert sel.step(6.0) == "b"  # 6 * 10 / 5 = 12 <= 12
    sel = StepSelector(ABC, target_ms=12, window=1, start="a")
    assert sel.step(6.5) == "a"  # 13 > 12
    top = StepSelector(ABC, target_ms=100, window=1, start="c")
    assert top.step(1.0) == "c"  # already at the top
    bottom = StepSelector(ABC, target_ms=1, window=1, start="a")
    assert bottom.step(50.0) == "a"  # already at the bottom


def test_step_selector_accuracy_floor() -> None:
    # the floor only pushes up a level whose accuracy is strictly below it
    sel = StepSelector(ABC, target_ms=12, window=1, accuracy_floor=0.7, start="b")
    assert sel.step(10.0) == "b"
    sel = StepSelector(ABC, target_ms=12, window=1, accuracy_floor=0.7, start="a")
    assert sel.step(11.0) == "b"  # 0.5 < 0.7 although 22 > 12
    sel = StepSelector(ABC, target_ms=12, window=1, accuracy_floor=0.5, start="a")
    assert sel.step(11.0) == "a"


def test_step_selector_guard() -> None:
    sel = StepSelector(ABC, target_ms=12, window=1, guard=2, start="b")
    assert sel.step(13.0) == "a"  # t=1: left b for latency
    assert sel.step(1.0) == "a"  # t=2: 2 - 1 = 1 <= 2
    assert sel.step(1.0) == "a"  # t=3: 2 <= 2
    assert sel.step(1.0) == "b"  # t=4: 3 > 2
    # a None reading counts as time but not as a latency
    sel = StepSelector(ABC, target_ms=12, window=1, guard=2, start="b")
    sel.step(13.0)
    assert sel.step(None) == "a" and sel.step(None) == "a"
    assert sel.step(1.0) == "b"  # t=4
    # the guard is only against the level it left; default guard 2 * window
    sel = StepSelector(ABC, target_ms=12, window=1, start="b")
    sel.step(13.0)
    for _ in range(2):
        assert sel.step(1.0) == "a"
    assert sel.step(1.0) == "b"


def test_step_selector_after_switch_needs_a_full_window() -> None:
    sel = StepSelector(ABC, target_ms=12, window=2, guard=0, start="b")
    sel.step(13.0)
    assert sel.step(13.0) == "a"
    assert sel.step(1.0) == "a"  # one reading of a: window not full
    assert sel.step(1.0) == "b"  # mean 1 * 2 <= 12 and guard 0: 3 - 2 > 0


# -- oracle ------------------------------------------------------------------------------------
def test_oracle_contract() -> None:
    with pytest.raises(ValueError, match=r"^the oracle needs the load of every request; got "
                       r"none$"):
        OracleSelector(ABC, target_ms=20, load=[])
    sel = OracleSelector(ABC, target_ms=20, load=[1.0, 2.0, 4.0, 1.5])
    assert sel.current == "c"  # 20 <= 20 / 1
    assert sel.step(1.0) == "b"  # 10 <= 20 / 2
    assert sel.step(1.0) == "a"  # 5 <= 20 / 4
    assert sel.step(None) == "b"  # 20 / 1.5 = 13.3
    assert sel.step(1.0) == "b"  # past the end: the last load
    assert sel.step(1.0) == "b"
    slow = OracleSelector(ABC, target_ms=2, load=[1.0])
    assert slow.current == "a"


def test_feedback_ties_go_to_the_faster_member() -> None:
    same = [MemberInfo("p", 0.8, 6.0, 1.0), MemberInfo("q", 0.8, 4.0, 1.0)]
    assert FeedbackSelector(same, target_ms=100).current == "q"
    assert FeedbackSelector(same, target_ms=100, objective="energy").current == "q"
    cheap = [MemberInfo("p", 0.8, 4.0, 2.0), MemberInfo("q", 0.8, 6.0, 1.0)]
    assert FeedbackSelector(cheap, target_ms=100).current == "q"  # then less energy
    assert FeedbackSelector(cheap, target_ms=100, objective="energy").current == "q"


def test_feedback_first_choice_starts_from_the_fastest_at_the_first_point() -> None:
    """Before any reading the fastest member at the first operating point counts as the
    current one, so hysteresis already applies to the first choice."""
    assert FeedbackSelector(ABC, target_ms=22).current == "b"
    assert FeedbackSelector(ABC, target_ms=22, hysteresis=0.5).current == "a"  # b: 10 > 9.9


def test_step_selector_climbs_to_the_top_level() -> None:
    sel = StepSelector(ABC, target_ms=100, window=1, start="b")
    assert sel.step(10.0) == "c"  # 10 * 20 / 10 = 20 <= 100


def test_feedback_members_without_energy_weigh_nothing() -> None:
    ops = [{"name": "fast", "latency_scale": 0.5, "energy_scale": 1.0},
           {"name": "eco", "energy_scale": 0.5}]
    sel = FeedbackSelector([MemberInfo("a", 0.9, 5.0)], target_ms=100, operating_points=ops)
    assert sel.operating_point == "fast"  # no energy: the faster point


def test_feedback_infeasible_falls_back_to_the_fastest() -> None:
    sel = FeedbackSelector([MemberInfo("x", 0.5, 5.0, 10.0), MemberInfo("y", 0.9, 10.0, 1.0)],
                           target_ms=1)
    assert sel.current == "x" and sel.infeasible is True


def test_feedback_budget_is_inclusive() -> None:
    two = [MemberInfo("a", 0.5, 5.0), MemberInfo("b", 0.7, 10.0)]
    sel = FeedbackSelector(two, target_ms=20, margin=0.5, window=1)
    assert sel.step(20.0) == "a" and sel.infeasible is False  # a: 5 * 2 = 10 <= 10


@pytest.mark.parametrize("objective", ["accuracy", "energy"])
def test_feedback_moves_to_an_equal_but_faster_member(objective: str) -> None:
    eq = [MemberInfo("p", 0.8, 6.0, 1.0), MemberInfo("q", 0.8, 4.0, 1.0)]
    sel = FeedbackSelector(eq, target_ms=100, objective=objective)
    assert sel.step(6.0, ran="p") == "q"
    same = [MemberInfo("p", 0.8, 5.0, 1.0), MemberInfo("q", 0.8, 5.0, 1.0)]
    sel = FeedbackSelector(same, target_ms=100, objective=objective)
    assert sel.step(5.0, ran="q") == "q"  # an identical member is no better: it stays


def test_feedback_told_which_member_ran_keeps_the_point() -> None:
    a = MemberInfo("a", 0.5, 5.0, 1.0)
    c = MemberInfo("c", 0.9, 20.0, 4.0)
    ops = [{"name": "fast", "latency_scale": 0.5, "energy_scale": 1.0},
           {"name": "slow", "latency_scale": 1.0, "energy_scale": 0.5}]
    sel = FeedbackSelector([a, c], target_ms=100, operating_points=ops, window=1)
    assert (sel.current, sel.operating_point) == ("c", "slow")
    sel.step(10.0, ran="a")  # a ran at the current point, slow: 10 / 5
    assert sel.slowdown == 2.0


def test_feedback_median_of_five() -> None:
    sel = FeedbackSelector([MemberInfo("a", 0.9, 1.0)], target_ms=100, window=5)
    for obs in (5.0, 1.0, 4.0, 2.0, 3.0):
        sel.step(obs)
    assert sel.slowdown == 3.0
