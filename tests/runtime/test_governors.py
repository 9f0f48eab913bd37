"""Frequency governors: their rules, step by step."""

from __future__ import annotations

import pytest

from switchnas.runtime.governors import (
    GOVERNORS,
    Governor,
    OndemandGovernor,
    SchedutilGovernor,
    frequencies_of,
    make_governor,
)

FREQ = {"f600": 600_000.0, "f900": 900_000.0, "f1200": 1_200_000.0, "f1500": 1_500_000.0,
        "f1800": 1_800_000.0}


@pytest.mark.parametrize("name", sorted(GOVERNORS))
def test_every_governor_is_a_governor(name: str) -> None:
    gov = make_governor(name, FREQ)
    assert isinstance(gov, Governor) and gov.name == name
    assert gov.step(None) == gov.current  # no reading: no change
    assert gov.step(0.3) in FREQ


def test_performance_and_powersave() -> None:
    perf, save = make_governor("performance", FREQ), make_governor("powersave", FREQ)
    for u in (0.0, 0.5, 1.0):
        assert perf.step(u) == "f1800" and save.step(u) == "f600"


@pytest.mark.parametrize(("start", "util", "expected"), [
    ("f1800", 0.5, "f1200"),   # 1.25 * 1800 * 0.5 = 1125 MHz -> 1200
    ("f1800", 0.8, "f1800"),   # 1800
    ("f1800", 0.1, "f600"),    # 225 -> lowest
    ("f1200", 0.5, "f900"),    # util_inv = 0.5 * 1200 / 1800: 1.25 * 1800 * 1/3 = 750 -> 900
    ("f600", 1.0, "f900"),     # saturated at 600: 1.25 * 600 = 750 -> 900
    ("f1200", 0.6, "f900"),    # 1.25 * 0.6 * 1200 = 900 -> exactly 900
])
def test_schedutil_rule(start: str, util: float, expected: str) -> None:
    gov = SchedutilGovernor(FREQ, start=start)
    assert gov.target_khz(util) == pytest.approx(1.25 * FREQ[start] * util)
    assert gov.step(util) == expected


def test_schedutil_converges_to_80_percent_utilisation() -> None:
    """A fixed amount of work per period (latency ~ 1/f): it settles on the lowest frequency
    at which the device is busy at most 1 / 1.25 of the time."""
    gov = SchedutilGovernor(FREQ)
    work = 0.45  # busy fraction at 1800 MHz
    for _ in range(10):
        gov.step(work * 1_800_000 / FREQ[gov.current])
    assert gov.current == "f1200"  # 0.45 * 1800 / 1200 = 0.675 <= 0.8, at 900: 0.9 > 0.8


def test_ondemand_rule() -> None:
    gov = OndemandGovernor(FREQ, up_threshold=0.8, down_threshold=0.5)
    assert gov.current == "f1800"
    assert gov.step(0.3) == "f1500"   # below down: one step down
    assert gov.step(0.3) == "f1200"
    assert gov.step(0.6) == "f1200"   # between: stay
    assert gov.step(0.9) == "f1800"   # above up: straight to the top
    for _ in range(10):
        gov.step(0.0)
    assert gov.current == "f600"      # never below the lowest
    with pytest.raises(ValueError, match="down_threshold < up_threshold"):
        OndemandGovernor(FREQ, up_threshold=0.5, down_threshold=0.6)


def test_errors() -> None:
    with pytest.raises(ValueError, match="unknown governor 'turbo'"):
        make_governor("turbo", FREQ)
    with pytest.raises(ValueError, match="no positive settings\\['freq_khz'\\]"):
        frequencies_of([{"name": "t1", "settings": {"threads": 1}}])
    assert frequencies_of([{"name": "a", "settings": {"freq_khz": 5}}]) == {"a": 5.0}
    with pytest.raises(ValueError, match="util must be a number"):
        make_governor("schedutil", FREQ).step(float("nan"))
    with pytest.raises(ValueError, match="at least one"):
        make_governor("performance", {})
    with pytest.raises(ValueError, match="unknown start point 'f1'"):
        make_governor("ondemand", FREQ, start="f1")
    assert make_governor("powersave", FREQ, start="f900").current == "f900"
    with pytest.raises(ValueError, match="headroom"):
        SchedutilGovernor(FREQ, headroom=0.9)
