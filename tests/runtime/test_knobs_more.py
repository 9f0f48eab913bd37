"""Knobs without the hardware: NvmlKnob against a fake ``pynvml`` module (which handle each
call gets, what is applied and restored), the spreading of clocks, and the exact messages
that say why a knob or a table is refused."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchnas.runtime.knobs import (
    CpufreqKnob,
    KnobUnavailable,
    NvmlKnob,
    _spread,
    validate_point_table,
)

HANDLE = "handle-of-gpu-3"


class FakeNVMLError(Exception):
    """What pynvml raises."""


def fake_pynvml(*, graphics: list[int] | None = None, power: tuple[int, int] = (100000, 300000),
                limit: int = 250000, index: int = 3) -> types.ModuleType:
    """A pynvml whose calls record themselves and refuse any handle but GPU ``index``'s."""
    mod = types.ModuleType("pynvml")
    calls: list[tuple[Any, ...]] = []
    mod.calls = calls  # type: ignore[attr-defined]
    mod.NVMLError = FakeNVMLError  # type: ignore[attr-defined]
    mod.NVML_CLOCK_GRAPHICS = 0  # type: ignore[attr-defined]

    def check(handle: Any) -> None:
        if handle != HANDLE:
            raise FakeNVMLError(f"invalid handle {handle!r}")

    def handle_by_index(i: Any) -> str:
        if i != index:
            raise FakeNVMLError(f"no GPU {i!r}")
        return HANDLE

    def recorder(name: str, result: Any = None) -> Any:
        def fn(*args: Any) -> Any:
            check(args[0])
            calls.append((name, *args))
            return result
        return fn

    mod.nvmlInit = lambda: None  # type: ignore[attr-defined]
    mod.nvmlDeviceGetHandleByIndex = handle_by_index  # type: ignore[attr-defined]
    mod.nvmlDeviceGetSupportedMemoryClocks = recorder(  # type: ignore[attr-defined]
        "mem", [5001, 877])
    mod.nvmlDeviceGetSupportedGraphicsClocks = recorder(  # type: ignore[attr-defined]
        "graphics", [300, 600, 900, 1200, 1500] if graphics is None else graphics)
    mod.nvmlDeviceGetPowerManagementLimitConstraints = recorder(  # type: ignore[attr-defined]
        "constraints", power)
    mod.nvmlDeviceGetPowerManagementLimit = recorder("limit", limit)  # type: ignore[attr-defined]
    mod.nvmlDeviceGetClockInfo = recorder("clock", 1410)  # type: ignore[attr-defined]
    for name in ("nvmlDeviceSetGpuLockedClocks", "nvmlDeviceResetGpuLockedClocks",
                 "nvmlDeviceSetPowerManagementLimit"):
        setattr(mod, name, recorder(name))
    return mod


@pytest.fixture
def nvml(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    mod = fake_pynvml()
    monkeypatch.setitem(sys.modules, "pynvml", mod)
    return mod


def test_nvml_clocks_use_the_handle_of_the_chosen_gpu(nvml: types.ModuleType) -> None:
    """Every NVML call goes to the handle of GPU ``index``; apply locks the clock, restore
    unlocks it on the same GPU."""
    knob = NvmlKnob(index=3, mode="clocks", max_points=3)
    assert [p.name for p in knob.points()] == ["g300MHz", "g900MHz", "g1500MHz"]
    assert ("graphics", HANDLE, 5001) in nvml.calls  # at the highest memory clock
    assert knob.current().settings == {"gpu_clock_mhz": None, "observed_mhz": 1410}
    knob.apply("g900MHz")
    assert nvml.calls[-1] == ("nvmlDeviceSetGpuLockedClocks", HANDLE, 900, 900)
    assert knob.current() == knob.points()[1]
    knob.restore()
    assert nvml.calls[-1] == ("nvmlDeviceResetGpuLockedClocks", HANDLE)
    assert knob.current().name == "g-auto@1410MHz"


def test_nvml_power_points_span_the_allowed_range(nvml: types.ModuleType) -> None:
    """Power mode: points from the minimum to the maximum limit (W), the state found at
    construction as ``p<W>W`` with its ``power_limit_w``, restored in mW."""
    knob = NvmlKnob(index=3, mode="power", max_points=3)
    assert [p.settings for p in knob.points()] == [
        {"power_limit_w": 100}, {"power_limit_w": 200}, {"power_limit_w": 300}]
    assert ("constraints", HANDLE) in nvml.calls
    now = knob.current()
    assert now.name == "p250W" and dict(now.settings) == {"power_limit_w": 250}
    knob.apply("p200W")
    assert nvml.calls[-1] == ("nvmlDeviceSetPowerManagementLimit", HANDLE, 200000)
    knob.restore()
    assert nvml.calls[-1] == ("nvmlDeviceSetPowerManagementLimit", HANDLE, 250000)


def test_nvml_unknown_point_names_the_knob(nvml: types.ModuleType) -> None:
    knob = NvmlKnob(index=3, max_points=2)
    with pytest.raises(ValueError, match=r"^nvml: unknown operating point 'g1MHz'; allowed: "
                                         r"\['g300MHz', 'g1500MHz'\]$"):
        knob.apply("g1MHz")


def test_nvml_refusal_is_a_permission_error(nvml: types.ModuleType) -> None:
    def refuse(*args: Any) -> None:
        raise FakeNVMLError("Insufficient Permissions")

    nvml.nvmlDeviceSetGpuLockedClocks = refuse  # type: ignore[attr-defined]
    knob = NvmlKnob(index=3, max_points=2)
    with pytest.raises(PermissionError, match=r"nvmlDeviceSetGpuLockedClocks\(300, 300\) "
                                              r"on GPU 3 refused"):
        knob.apply("g300MHz")


def test_nvml_without_clocks_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(graphics=[], index=0))
    with pytest.raises(KnobUnavailable,
                       match=r"^nvml knob: GPU 0 reports no supported clocks$"):
        NvmlKnob(index=0)


def test_nvml_without_pynvml_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import raises ImportError
    with pytest.raises(KnobUnavailable, match=re.escape(
            "nvml knob: pynvml is not installed (pip install 'nvidia-ml-py>=12')")) as info:
        NvmlKnob()
    assert str(info.value) == ("nvml knob: pynvml is not installed "
                               "(pip install 'nvidia-ml-py>=12')")


def test_spread_examples() -> None:
    assert _spread([10, 20, 30, 40, 50], 3) == [10, 30, 50]
    assert _spread([10, 20, 30, 40, 50, 60, 70], 4) == [10, 30, 50, 70]
    assert _spread([1, 2], 5) == [1, 2]


@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=40, unique=True),
       st.integers(2, 12))
def test_spread_keeps_both_ends_and_at_most_k(values: list[int], k: int) -> None:
    """Sorted values in, a sorted subset out: both ends, at most ``k``, all when few."""
    values = sorted(values)
    out = _spread(values, k)
    assert out == sorted(set(out)) and set(out) <= set(values)
    assert out[0] == values[0] and out[-1] == values[-1]
    assert len(out) == min(k, len(values))  # the spacing exceeds 1: no index repeats
    if len(values) <= k:
        assert out == values


def test_cpufreq_message_for_a_missing_tree(tmp_path: Path) -> None:
    gov = tmp_path / "cpu0" / "cpufreq" / "scaling_governor"
    with pytest.raises(KnobUnavailable) as info:
        CpufreqKnob(root=tmp_path, cpus=[0])
    assert str(info.value) == (f"cpufreq knob: {gov} does not exist: this machine or VM "
                               "exposes no cpufreq for that CPU")


@pytest.mark.parametrize("key, value, bound", [
    ("energy_mj", -1.0, ">= 0 or null"),
    ("power_w", float("inf"), ">= 0 or null"),
    ("latency_ms", None, "> 0"),
])
def test_point_table_message_says_what_a_number_must_be(key: str, value: Any,
                                                        bound: str) -> None:
    cell: dict[str, Any] = {"latency_ms": 1.0, "energy_mj": 1.0, "power_w": 1.0, key: value}
    table = {"energy_source": "rapl", "members": {"a": {"p": cell}},
             "points": [{"name": "p"}]}
    with pytest.raises(ValueError) as info:
        validate_point_table(table)
    assert str(info.value) == (f"operating-point table: member 'a' at 'p': {key} must be a "
                               f"finite number {bound}, got {value!r}")
