"""Knobs: the documented contract pinned down exactly (messages, defaults, boundaries,
what is written to a fake cpufreq tree and to a fake NVML, the point table's checks)."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from switchnas.runtime.knobs import (
    CombinedKnob,
    CpufreqKnob,
    KnobUnavailable,
    NvmlKnob,
    OperatingPoint,
    ThreadsKnob,
    cpu_list,
    frequency_name,
    load_point_table,
    save_point_table,
    validate_point_table,
)

# --------------------------------------------------------------------------- helpers


def fake_tree(root: Path, cpus: tuple[int, ...] = (0,), *, governor: str = "ondemand",
              freqs: str | None = "800000 1200000 1600000", setspeed: str = "<unsupported>",
              governors: str | None = "ondemand userspace", lo: str = "800000",
              hi: str = "1600000", cur: str | None = "1600000") -> Path:
    for cpu in cpus:
        d = root / f"cpu{cpu}" / "cpufreq"
        d.mkdir(parents=True)
        (d / "scaling_governor").write_text(governor + "\n")
        if governors is not None:
            (d / "scaling_available_governors").write_text(governors + "\n")
        (d / "scaling_setspeed").write_text(setspeed + "\n")
        if cur is not None:
            (d / "scaling_cur_freq").write_text(cur + "\n")
        (d / "cpuinfo_min_freq").write_text(lo + "\n")
        (d / "cpuinfo_max_freq").write_text(hi + "\n")
        if freqs is not None:
            (d / "scaling_available_frequencies").write_text(freqs + "\n")
    return root


def rd(root: Path, cpu: int, name: str) -> str:
    return (root / f"cpu{cpu}" / "cpufreq" / name).read_text()


class FakeKnob:
    """A knob in memory that records what it was asked."""

    def __init__(self, name: str, points: list[OperatingPoint], log: list[str]) -> None:
        self.name = name
        self._points = points
        self._now = points[0]
        self.log = log

    def points(self) -> list[OperatingPoint]:
        return list(self._points)

    def current(self) -> OperatingPoint:
        return self._now

    def apply(self, point: OperatingPoint | str) -> None:
        name = point.name if isinstance(point, OperatingPoint) else point
        self._now = next(p for p in self._points if p.name == name)
        self.log.append(f"apply {self.name} {name}")

    def restore(self) -> None:
        self.log.append(f"restore {self.name}")


# --------------------------------------------------------------------------- OperatingPoint


def test_operating_point_defaults_and_dict_round_trip() -> None:
    p = OperatingPoint("a")
    assert p.settings == {} and p.to_dict() == {"name": "a", "settings": {}}
    q = OperatingPoint.from_dict({"name": "b"})
    assert q == OperatingPoint("b", {}) and q.settings == {}
    d = OperatingPoint("c", {"x": 1}).to_dict()
    assert d == {"name": "c", "settings": {"x": 1}} and type(d["settings"]) is dict
    # equality includes settings, the hash does not
    assert OperatingPoint("c", {"x": 1}) != OperatingPoint("c", {"x": 2})
    assert hash(OperatingPoint("c", {"x": 1})) == hash(OperatingPoint("c", {"x": 2}))


@pytest.mark.parametrize("bad", ["", " a", "a ", "\ta", 3, None])
def test_operating_point_name_message(bad: Any) -> None:
    with pytest.raises(ValueError) as info:
        OperatingPoint(bad)
    assert str(info.value) == ("an operating point needs a non-empty name without "
                               f"surrounding spaces, got {bad!r}")


def test_operating_point_from_dict_messages() -> None:
    for bad in ([("name", "a")], {"name": 3}, {"settings": {}}):
        with pytest.raises(ValueError) as info:
            OperatingPoint.from_dict(bad)  # type: ignore[arg-type]
        assert str(info.value) == ("an operating point is {'name': str, 'settings': {...}}, "
                                   f"got {bad!r}")
    with pytest.raises(ValueError) as info:
        OperatingPoint.from_dict({"name": "a", "settings": [1]})
    assert str(info.value) == "operating point 'a': settings must be a mapping, got [1]"
    # a Mapping that is not a dict is accepted and copied into a dict
    p = OperatingPoint.from_dict(types.MappingProxyType({"name": "m",
                                                          "settings": {"k": 2}}))
    assert p.name == "m" and type(p.settings) is dict and p.settings == {"k": 2}


# --------------------------------------------------------------------------- cpu_list / names


@pytest.mark.parametrize("cpus, text", [
    ([], ""), ([0], "0"), ([0, 1], "0,1"), ([0, 1, 2], "0-2"), ([2, 1, 0, 1], "0-2"),
    ([0, 2], "0,2"), ([0, 1, 3, 4, 5], "0,1,3-5"), ([0, 1, 2, 4, 5, 6, 7, 9], "0-2,4-7,9"),
    ([5, 7, 8], "5,7,8"), (["3", "4", "5"], "3-5"),
])
def test_cpu_list(cpus: list[Any], text: str) -> None:
    assert cpu_list(cpus) == text


@pytest.mark.parametrize("khz, name", [
    (1200000, "f1200MHz"), (1234567, "f1234.567MHz"), (1234500, "f1234.5MHz"),
    (1234050, "f1234.05MHz"), (1000, "f1MHz"), (999, "f0.999MHz"), (0, "f0MHz"),
    ("1600000", "f1600MHz"),
])
def test_frequency_name(khz: Any, name: str) -> None:
    assert frequency_name(khz) == name


# --------------------------------------------------------------------------- ThreadsKnob


@pytest.fixture
def keep_threads():
    import torch

    before = (torch.get_num_threads(), os.sched_getaffinity(0))
    yield
    torch.set_num_threads(before[0])
    os.sched_setaffinity(0, before[1])


def _cpus(monkeypatch: pytest.MonkeyPatch, cpus: list[int]) -> None:
    import switchnas.runtime.knobs as knobs

    monkeypatch.setattr(knobs, "_allowed_cpus", lambda: list(cpus))


def test_threads_knob_placements_on_four_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    _cpus(monkeypatch, [0, 1, 2, 3])
    first = ThreadsKnob()
    assert first.name == "threads" and first.placement == "first" and first.cpus == [0, 1, 2, 3]
    assert [p.name for p in first.points()] == ["t1-cpu0", "t2-cpu0,1", "t3-cpu0-2",
                                               "t4-cpu0-3"]
    assert first.points()[2].settings == {"threads": 3, "cpus": [0, 1, 2]}
    assert [p.name for p in ThreadsKnob(threads=[2, 1, 2], placement="all").points()] == [
        "t1-cpu0-3", "t2-cpu0-3"]
    win = ThreadsKnob(threads=[1, 3], placement="windows")
    assert [p.name for p in win.points()] == ["t1-cpu0", "t1-cpu1", "t1-cpu2", "t1-cpu3",
                                             "t3-cpu0-2", "t3-cpu1-3"]
    assert win.points()[-1].settings == {"threads": 3, "cpus": [1, 2, 3]}
    assert [p.name for p in ThreadsKnob(threads=[4], placement="windows").points()] == [
        "t4-cpu0-3"]
    # points() is a copy
    pts = first.points()
    pts.clear()
    assert len(first.points()) == 4


def test_threads_knob_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    _cpus(monkeypatch, [0, 1])
    with pytest.raises(ValueError) as info:
        ThreadsKnob(placement="last")
    assert str(info.value) == ("threads knob: placement must be 'first', 'windows' or 'all', "
                               "got 'last'")
    for bad in ([0], [3], [True], [1.0], [1, 2, 3], []):
        with pytest.raises(ValueError) as info:
            ThreadsKnob(threads=bad)
        assert str(info.value) == ("threads knob: thread counts must be integers in 1..2 "
                                   f"(the CPUs this process may use: [0, 1]), got {bad}")
    assert [p.name for p in ThreadsKnob(threads=[2]).points()] == ["t2-cpu0,1"]


def test_threads_knob_apply_current_restore(keep_threads) -> None:
    import torch

    allowed = sorted(os.sched_getaffinity(0))
    torch.set_num_threads(1)
    knob = ThreadsKnob(threads=[1])
    p = knob.points()[0]
    assert p.name == f"t1-cpu{allowed[0]}"
    knob.apply(p.name)
    assert torch.get_num_threads() == 1 and os.sched_getaffinity(0) == {allowed[0]}
    assert knob.current() == OperatingPoint(p.name, {"threads": 1, "cpus": [allowed[0]]})
    knob.restore()
    assert os.sched_getaffinity(0) == set(allowed) and torch.get_num_threads() == 1
    with pytest.raises(ValueError) as info:
        knob.apply("t9-cpu0")
    assert str(info.value) == (f"threads: unknown operating point 't9-cpu0'; allowed: "
                               f"['{p.name}']")
    with pytest.raises(ValueError) as info:
        knob.apply(OperatingPoint(p.name, {"threads": 2}))
    assert str(info.value) == (f"threads: operating point '{p.name}' has settings "
                               f"{dict(p.settings)}, got {{'threads': 2}}")
    knob.apply(OperatingPoint(p.name, dict(p.settings)))  # same settings: fine


def test_threads_knob_set_skips_threads_that_ended(monkeypatch: pytest.MonkeyPatch,
                                                   keep_threads) -> None:
    import switchnas.runtime.knobs as knobs

    seen: list[tuple[int, list[int]]] = []

    def setaff(tid: int, cpus: list[int]) -> None:
        seen.append((tid, list(cpus)))
        if tid == 111:
            raise ProcessLookupError("gone")

    monkeypatch.setattr(knobs.os, "sched_setaffinity", setaff)
    monkeypatch.setattr(knobs.os, "listdir", lambda path: ["111", "222"])
    knobs.ThreadsKnob._set(1, [0])
    assert seen == [(0, [0]), (111, [0]), (222, [0])]


def test_threads_knob_set_without_proc_task(monkeypatch: pytest.MonkeyPatch,
                                            keep_threads) -> None:
    import switchnas.runtime.knobs as knobs

    seen: list[int] = []
    monkeypatch.setattr(knobs.os, "sched_setaffinity", lambda tid, cpus: seen.append(tid))

    def nolist(path: str) -> list[str]:
        raise FileNotFoundError(path)

    monkeypatch.setattr(knobs.os, "listdir", nolist)
    knobs.ThreadsKnob._set(1, [0])
    assert seen == [0]


# --------------------------------------------------------------------------- CpufreqKnob


def test_cpufreq_default_steps_is_five(tmp_path: Path) -> None:
    root = fake_tree(tmp_path, freqs=None, lo="1000000", hi="2000000")
    knob = CpufreqKnob(root=root, cpus=[0])
    assert knob.name == "cpufreq" and knob.cpus == [0] and knob.root == root
    assert [p.settings["freq_khz"] for p in knob.points()] == [
        1000000, 1250000, 1500000, 1750000, 2000000]
    assert [p.name for p in knob.points()] == ["f1000MHz", "f1250MHz", "f1500MHz",
                                              "f1750MHz", "f2000MHz"]


def test_cpufreq_steps_boundaries_and_rounding(tmp_path: Path) -> None:
    root = fake_tree(tmp_path, freqs=None, lo="1000000", hi="2000000")
    assert [p.settings["freq_khz"] for p in CpufreqKnob(root=root, cpus=[0],
                                                         steps=2).points()] == [1000000,
                                                                                2000000]
    with pytest.raises(ValueError) as info:
        CpufreqKnob(root=root, cpus=[0], steps=1)
    assert str(info.value) == "cpufreq knob: steps must be >= 2, got 1"
    # rounded to 1 MHz, both ends kept exactly even when they are not whole MHz
    odd = fake_tree(tmp_path / "odd", freqs=None, lo="1000100", hi="2000900")
    got = [p.settings["freq_khz"] for p in CpufreqKnob(root=odd, cpus=[0], steps=3).points()]
    assert got == [1000000, 1000100, 1500000, 2000900, 2001000]  # 1500.5 rounds to even
    # min == max: one point
    flat = fake_tree(tmp_path / "flat", freqs=None, lo="1500000", hi="1500000")
    assert [p.name for p in CpufreqKnob(root=flat, cpus=[0]).points()] == ["f1500MHz"]
    # max < min: just the min
    inv = fake_tree(tmp_path / "inv", freqs=None, lo="1500000", hi="1000000")
    assert [p.name for p in CpufreqKnob(root=inv, cpus=[0]).points()] == ["f1500MHz"]


def test_cpufreq_listed_frequencies_are_deduplicated_and_sorted(tmp_path: Path) -> None:
    root = fake_tree(tmp_path, freqs="1600000 800000 1600000 1200000")
    knob = CpufreqKnob(root=root, cpus=[0], steps=2)
    assert [p.settings for p in knob.points()] == [{"freq_khz": 800000},
                                                  {"freq_khz": 1200000},
                                                  {"freq_khz": 1600000}]
    # an empty list file falls back to min..max
    empty = fake_tree(tmp_path / "e", freqs="", lo="1000000", hi="2000000")
    assert len(CpufreqKnob(root=empty, cpus=[0], steps=3).points()) == 3


def test_cpufreq_unreadable_frequencies(tmp_path: Path) -> None:
    root = fake_tree(tmp_path, freqs=None, hi="fast")
    d = root / "cpu0" / "cpufreq"
    with pytest.raises(KnobUnavailable) as info:
        CpufreqKnob(root=root, cpus=[0])
    assert str(info.value) == (f"cpufreq knob: cannot read the frequencies under {d} "
                               "(ValueError: invalid literal for int() with base 10: 'fast')")
    assert isinstance(info.value.__cause__, ValueError)
    root2 = fake_tree(tmp_path / "b", freqs=None)
    (root2 / "cpu0" / "cpufreq" / "cpuinfo_min_freq").unlink()
    with pytest.raises(KnobUnavailable, match=r"^cpufreq knob: cannot read the frequencies "
                                              r"under .* \(FileNotFoundError: "):
        CpufreqKnob(root=root2, cpus=[0])
    root3 = fake_tree(tmp_path / "c", freqs="800000 fast")
    with pytest.raises(KnobUnavailable, match=r"\(ValueError: "):
        CpufreqKnob(root=root3, cpus=[0])


def test_cpufreq_cpus_argument(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = fake_tree(tmp_path, cpus=(0, 1, 2))
    assert CpufreqKnob(root=root, cpus=[2, 0, 2, "1"]).cpus == [0, 1, 2]  # type: ignore[list-item]
    _cpus(monkeypatch, [1, 2])
    assert CpufreqKnob(root=root).cpus == [1, 2]
    with pytest.raises(ValueError) as info:
        CpufreqKnob(root=root, cpus=[])
    assert str(info.value) == "cpufreq knob: cpus must name at least one CPU"


def test_cpufreq_default_root_is_sysfs() -> None:
    import inspect

    from switchnas.runtime import knobs

    assert knobs.CPUFREQ_ROOT == "/sys/devices/system/cpu"
    assert inspect.signature(CpufreqKnob).parameters["root"].default == knobs.CPUFREQ_ROOT


def test_cpufreq_unavailable_messages(tmp_path: Path) -> None:
    root = fake_tree(tmp_path, governors="performance powersave")
    with pytest.raises(KnobUnavailable) as info:
        CpufreqKnob(root=root, cpus=[0])
    assert str(info.value) == ("cpufreq knob: CPU 0 has no userspace governor (available: "
                               "performance powersave); the driver may not allow setting a "
                               "frequency")
    # "userspace" must be a whole word of the list
    root = fake_tree(tmp_path / "w", governors="userspace2 performance")
    with pytest.raises(KnobUnavailable, match="no userspace governor"):
        CpufreqKnob(root=root, cpus=[0])
    # no list of governors at all: allowed
    root = fake_tree(tmp_path / "n", governors=None)
    assert len(CpufreqKnob(root=root, cpus=[0]).points()) == 3
    # no common frequency
    root = fake_tree(tmp_path / "c", cpus=(0,), freqs="800000")
    fake_tree(root, cpus=(1,), freqs="900000")
    with pytest.raises(KnobUnavailable) as info:
        CpufreqKnob(root=root, cpus=[0, 1])
    assert str(info.value) == ("cpufreq knob: CPUs [0, 1] share no frequency (per CPU: "
                               "[[800000], [900000]])")
    # the second CPU's tree is missing: named
    root = fake_tree(tmp_path / "m", cpus=(0,))
    with pytest.raises(KnobUnavailable, match=r"cpu1/cpufreq/scaling_governor does not exist"):
        CpufreqKnob(root=root, cpus=[0, 1])


def test_cpufreq_not_writable_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = fake_tree(tmp_path)
    d = root / "cpu0" / "cpufreq"
    asked: list[tuple[str, int]] = []

    def access(path: Any, mode: int) -> bool:
        asked.append((Path(path).name, mode))
        return Path(path).name != "scaling_setspeed"

    monkeypatch.setattr(os, "access", access)
    with pytest.raises(KnobUnavailable) as info:
        CpufreqKnob(root=root, cpus=[0])
    assert str(info.value) == (f"cpufreq knob: {d / 'scaling_setspeed'} is not writable by "
                               "this process (cpufreq needs root)")
    assert asked == [("scaling_governor", os.W_OK), ("scaling_setspeed", os.W_OK)]
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path).name != "scaling_governor")
    with pytest.raises(KnobUnavailable, match=r"scaling_governor is not writable"):
        CpufreqKnob(root=root, cpus=[0])


def test_cpufreq_current_outside_the_points(tmp_path: Path) -> None:
    root = fake_tree(tmp_path, governor="userspace", setspeed="1234000")
    knob = CpufreqKnob(root=root, cpus=[0])
    now = knob.current()
    assert now == OperatingPoint(frequency_name(1234000), {"freq_khz": 1234000})
    assert now.name == "f1234MHz"
    # a point: the very point object
    (root / "cpu0" / "cpufreq" / "scaling_setspeed").write_text("1200000\n")
    assert knob.current() is knob.points()[1]


def test_cpufreq_current_under_another_governor(tmp_path: Path) -> None:
    root = fake_tree(tmp_path, governor="performance", cur="1800000", setspeed="800000")
    knob = CpufreqKnob(root=root, cpus=[0])
    assert knob.current() == OperatingPoint("performance@f1800MHz",
                                            {"governor": "performance", "freq_khz": 1800000})
    (root / "cpu0" / "cpufreq" / "scaling_cur_freq").write_text("n/a\n")
    assert knob.current() == OperatingPoint("performance@unknown",
                                            {"governor": "performance", "freq_khz": None})
    (root / "cpu0" / "cpufreq" / "scaling_cur_freq").unlink()
    assert knob.current().name == "performance@unknown"
    # userspace whose setspeed is not a number: the current frequency under that governor
    root2 = fake_tree(tmp_path / "u", governor="userspace", setspeed="<unsupported>",
                      cur="800000")
    assert CpufreqKnob(root=root2, cpus=[0]).current() == OperatingPoint(
        "userspace@f800MHz", {"governor": "userspace", "freq_khz": 800000})


def test_cpufreq_current_reads_the_first_cpu(tmp_path: Path) -> None:
    root = fake_tree(tmp_path, cpus=(3, 5), cur="800000")
    (root / "cpu5" / "cpufreq" / "scaling_cur_freq").write_text("1600000\n")
    assert CpufreqKnob(root=root, cpus=[5, 3]).current().name == "ondemand@f800MHz"


def test_cpufreq_apply_writes_exactly(tmp_path: Path) -> None:
    root = fake_tree(tmp_path, cpus=(0, 1))
    knob = CpufreqKnob(root=root, cpus=[0, 1])
    knob.apply(knob.points()[0])
    for cpu in (0, 1):
        assert rd(root, cpu, "scaling_governor") == "userspace"  # no newline: one write
        assert rd(root, cpu, "scaling_setspeed") == "800000"
    # already userspace: the governor file is not written again
    (root / "cpu0" / "cpufreq" / "scaling_governor").write_text("userspace\n")
    knob.apply("f1600MHz")
    assert rd(root, 0, "scaling_governor") == "userspace\n"
    assert rd(root, 0, "scaling_setspeed") == "1600000"
    with pytest.raises(ValueError) as info:
        knob.apply("f1000MHz")
    assert str(info.value) == ("cpufreq: unknown operating point 'f1000MHz'; allowed: "
                               "['f800MHz', 'f1200MHz', 'f1600MHz']")
    with pytest.raises(ValueError, match=r"^cpufreq: operating point 'f800MHz' has settings "
                                         r"\{'freq_khz': 800000\}, got \{'freq_khz': 1\}$"):
        knob.apply(OperatingPoint("f800MHz", {"freq_khz": 1}))


def test_cpufreq_restore_writes_back_each_cpu(tmp_path: Path) -> None:
    root = fake_tree(tmp_path, cpus=(0,), governor="userspace", setspeed="1200000")
    fake_tree(root, cpus=(1,), governor="powersave", setspeed="<unsupported>")
    knob = CpufreqKnob(root=root, cpus=[0, 1])
    knob.apply("f1600MHz")
    knob.restore()
    assert rd(root, 0, "scaling_setspeed") == "1200000"
    assert rd(root, 0, "scaling_governor") == "userspace"
    assert rd(root, 1, "scaling_governor") == "powersave"
    assert rd(root, 1, "scaling_setspeed") == "1600000"  # not userspace before: left alone
    # a userspace CPU whose setspeed was not a number: governor only
    root2 = fake_tree(tmp_path / "b", governor="userspace", setspeed="<unsupported>")
    k2 = CpufreqKnob(root=root2, cpus=[0])
    k2.apply("f800MHz")
    k2.restore()
    assert rd(root2, 0, "scaling_setspeed") == "800000"
    assert rd(root2, 0, "scaling_governor") == "userspace"


def test_cpufreq_write_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins
    import errno

    root = fake_tree(tmp_path)
    knob = CpufreqKnob(root=root, cpus=[0])
    real_open = builtins.open
    setspeed = root / "cpu0" / "cpufreq" / "scaling_setspeed"

    def refusing(path: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(path).name == "scaling_setspeed" and args and args[0] == "w":
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing)
    with pytest.raises(PermissionError) as info:
        knob.apply("f800MHz")
    assert str(info.value) == (f"cannot write '800000' to {setspeed}: Permission denied "
                               "(cpufreq needs root)")
    assert isinstance(info.value.__cause__, PermissionError)

    def invalid(path: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(path).name == "scaling_setspeed" and args and args[0] == "w":
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", invalid)
    with pytest.raises(OSError) as info2:
        knob.apply("f800MHz")
    assert not isinstance(info2.value, PermissionError)
    assert info2.value.errno == errno.EINVAL
    assert info2.value.strerror == (f"cannot write '800000' to {setspeed}: Invalid argument "
                                    "(the driver refused the value)")


# --------------------------------------------------------------------------- NvmlKnob


class NVMLError(Exception):
    pass


def fake_nvml(graphics: list[int] | None = None, power: tuple[int, int] = (100000, 300000),
              limit: int = 250000, refuse: bool = False) -> types.ModuleType:
    mod = types.ModuleType("pynvml")
    calls: list[tuple[Any, ...]] = []
    mod.calls = calls  # type: ignore[attr-defined]
    mod.NVMLError = NVMLError  # type: ignore[attr-defined]
    mod.NVML_CLOCK_GRAPHICS = 7  # type: ignore[attr-defined]
    mod.nvmlInit = lambda: calls.append(("init",))  # type: ignore[attr-defined]
    mod.nvmlDeviceGetHandleByIndex = lambda i: f"h{i}"  # type: ignore[attr-defined]
    mod.nvmlDeviceGetSupportedMemoryClocks = lambda h: [877, 5001]  # type: ignore[attr-defined]

    def graphics_fn(h: str, mem: int) -> list[int]:
        calls.append(("graphics", h, mem))
        return [300, 600, 900, 1200, 1500, 600] if graphics is None else graphics

    mod.nvmlDeviceGetSupportedGraphicsClocks = graphics_fn  # type: ignore[attr-defined]
    mod.nvmlDeviceGetPowerManagementLimitConstraints = (  # type: ignore[attr-defined]
        lambda h: power)
    mod.nvmlDeviceGetPowerManagementLimit = lambda h: limit  # type: ignore[attr-defined]

    def clock(h: str, kind: int) -> int:
        calls.append(("clock", h, kind))
        return 1410

    mod.nvmlDeviceGetClockInfo = clock  # type: ignore[attr-defined]

    def rec(name: str) -> Any:
        def fn(*args: Any) -> None:
            if refuse:
                raise NVMLError("Insufficient Permissions")
            calls.append((name, *args))
        return fn

    for name in ("nvmlDeviceSetGpuLockedClocks", "nvmlDeviceResetGpuLockedClocks",
                 "nvmlDeviceSetPowerManagementLimit"):
        setattr(mod, name, rec(name))
    return mod


def test_nvml_clock_points_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = fake_nvml(graphics=list(range(100, 1100, 100)))  # 10 clocks
    monkeypatch.setitem(sys.modules, "pynvml", mod)
    knob = NvmlKnob()
    assert knob.name == "nvml" and knob.mode == "clocks" and knob.index == 0
    assert ("graphics", "h0", 5001) in mod.calls  # the highest memory clock
    # default max_points 6: indices round(i*9/5) = 0, 2, 4, 5, 7, 9
    assert [p.name for p in knob.points()] == ["g100MHz", "g300MHz", "g500MHz", "g600MHz",
                                              "g800MHz", "g1000MHz"]
    assert knob.points()[0].settings == {"gpu_clock_mhz": 100}
    assert knob.current() == OperatingPoint("g-auto@1410MHz",
                                            {"gpu_clock_mhz": None, "observed_mhz": 1410})
    assert ("clock", "h0", 7) in mod.calls
    knob.apply("g300MHz")
    assert mod.calls[-1] == ("nvmlDeviceSetGpuLockedClocks", "h0", 300, 300)
    assert knob.current() is knob.points()[1]
    knob.restore()
    assert mod.calls[-1] == ("nvmlDeviceResetGpuLockedClocks", "h0")
    assert knob.current().name == "g-auto@1410MHz"


def test_nvml_few_clocks_are_all_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml())
    knob = NvmlKnob(index=2, max_points=5)
    assert [p.name for p in knob.points()] == ["g300MHz", "g600MHz", "g900MHz", "g1200MHz",
                                              "g1500MHz"]
    assert [p.name for p in NvmlKnob(max_points=2).points()] == ["g300MHz", "g1500MHz"]


def test_nvml_power_points(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = fake_nvml(power=(100000, 300000), limit=249600)
    monkeypatch.setitem(sys.modules, "pynvml", mod)
    knob = NvmlKnob(mode="power", max_points=3, index=1)
    assert [p.name for p in knob.points()] == ["p100W", "p200W", "p300W"]
    assert knob.points()[1].settings == {"power_limit_w": 200}
    assert knob.current() == OperatingPoint("p250W", {"power_limit_w": 250})
    knob.apply("p200W")
    assert mod.calls[-1] == ("nvmlDeviceSetPowerManagementLimit", "h1", 200000)
    assert knob.current().name == "p200W"
    knob.restore()
    assert mod.calls[-1] == ("nvmlDeviceSetPowerManagementLimit", "h1", 249600)
    assert knob.current().name == "p250W"
    # default 6 points over 100..300 W
    assert [p.name for p in NvmlKnob(mode="power").points()] == [
        "p100W", "p140W", "p180W", "p220W", "p260W", "p300W"]


def test_nvml_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(refuse=True))
    with pytest.raises(ValueError) as info:
        NvmlKnob(mode="volts")
    assert str(info.value) == "nvml knob: mode must be 'clocks' or 'power', got 'volts'"
    with pytest.raises(ValueError) as info:
        NvmlKnob(max_points=1)
    assert str(info.value) == "nvml knob: max_points must be >= 2, got 1"
    knob = NvmlKnob(index=4)
    with pytest.raises(PermissionError) as info2:
        knob.apply("g300MHz")
    assert str(info2.value) == ("nvml knob: nvmlDeviceSetGpuLockedClocks(300, 300) on GPU 4 "
                                "refused: Insufficient Permissions (needs root or an "
                                "unrestricted GPU)")
    assert knob.current().name.startswith("g-auto@")  # nothing recorded as applied
    with pytest.raises(ValueError, match=r"^nvml: unknown operating point 'g1MHz'; allowed: "):
        knob.apply("g1MHz")
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(graphics=[]))
    with pytest.raises(KnobUnavailable) as info3:
        NvmlKnob(index=1)
    assert str(info3.value) == "nvml knob: GPU 1 reports no supported clocks"
    broken = fake_nvml()

    def no_gpu(i: int) -> str:
        raise NVMLError(f"no GPU {i}")

    broken.nvmlDeviceGetHandleByIndex = no_gpu  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", broken)
    with pytest.raises(KnobUnavailable) as info3:
        NvmlKnob(index=1, mode="power")
    assert str(info3.value) == ("nvml knob: NVML cannot offer power on GPU 1: NVMLError: "
                                "no GPU 1")
    assert isinstance(info3.value.__cause__, NVMLError)
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with pytest.raises(KnobUnavailable) as info3:
        NvmlKnob()
    assert str(info3.value) == ("nvml knob: pynvml is not installed "
                                "(pip install 'nvidia-ml-py>=12')")
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(power=(100000, 100000)))
    assert [p.name for p in NvmlKnob(mode="power").points()] == ["p100W"]


def test_nvml_no_points_message(monkeypatch: pytest.MonkeyPatch) -> None:
    import switchnas.runtime.knobs as knobs

    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml())
    monkeypatch.setattr(knobs, "_spread", lambda values, k: [])
    with pytest.raises(KnobUnavailable) as info:
        NvmlKnob(index=3)
    assert str(info.value) == "nvml knob: GPU 3 reports no supported clocks"


# --------------------------------------------------------------------------- CombinedKnob


def test_combined_knob_order_names_and_settings() -> None:
    log: list[str] = []
    a = FakeKnob("a", [OperatingPoint("a1", {"x": 1}), OperatingPoint("a2", {"x": 2})], log)
    b = FakeKnob("b", [OperatingPoint("b1", {"y": 1}), OperatingPoint("b2", {"y": 2}),
                       OperatingPoint("b3", {"y": 3})], log)
    c = CombinedKnob([a, b])
    assert c.name == "a+b" and c.knobs == [a, b]
    assert [p.name for p in c.points()] == ["a1+b1", "a1+b2", "a1+b3", "a2+b1", "a2+b2",
                                           "a2+b3"]
    assert c.points()[4].settings == {"x": 2, "y": 2}
    assert c.current() == OperatingPoint("a1+b1", {"x": 1, "y": 1})
    c.apply("a2+b3")
    assert log == ["apply a a2", "apply b b3"]
    assert c.current() == OperatingPoint("a2+b3", {"x": 2, "y": 3})
    c.restore()
    assert log[2:] == ["restore b", "restore a"]
    with pytest.raises(ValueError, match=r"^a\+b: unknown operating point 'a1'; allowed: "
                                         r"\['a1\+b1', "):
        c.apply("a1")
    single = CombinedKnob([a])
    assert single.name == "a" and [p.name for p in single.points()] == ["a1", "a2"]


def test_combined_knob_overlap_message() -> None:
    log: list[str] = []
    a = FakeKnob("a", [OperatingPoint("a1", {"x": 1, "z": 0})], log)
    b = FakeKnob("b", [OperatingPoint("b1", {"y": 1})], log)
    c = FakeKnob("c", [OperatingPoint("c1", {"z": 1, "x": 2})], log)
    with pytest.raises(ValueError) as info:
        CombinedKnob([a, b, c])
    assert str(info.value) == "CombinedKnob: knobs 'a' and 'c' both set ['x', 'z']"
    with pytest.raises(ValueError) as info:
        CombinedKnob([b, c, FakeKnob("d", [OperatingPoint("d1", {"y": 0})], log)])
    assert str(info.value) == "CombinedKnob: knobs 'b' and 'd' both set ['y']"
    with pytest.raises(ValueError) as info:
        CombinedKnob([])
    assert str(info.value) == "CombinedKnob needs at least one knob"


# --------------------------------------------------------------------------- point tables


def good() -> dict[str, Any]:
    return {"energy_source": "rapl",
            "members": {"a": {"p": {"latency_ms": 1, "energy_mj": 0, "power_w": 0}}},
            "points": [{"name": "p", "settings": {"k": 1}}]}


@pytest.mark.parametrize("source", ["rapl", "nvml", "model:x", "model:generic"])
def test_table_accepts_the_three_kinds_of_source(source: str) -> None:
    t = good()
    t["energy_source"] = source
    assert validate_point_table(t)["energy_source"] == source


@pytest.mark.parametrize("source", ["model:", "model", "RAPL", "guess", 3, None, "xmodel:a"])
def test_table_refuses_other_sources(source: Any) -> None:
    t = good()
    t["energy_source"] = source
    with pytest.raises(ValueError) as info:
        validate_point_table(t)
    assert str(info.value) == ("operating-point table: energy_source must be 'rapl', 'nvml' "
                               f"or 'model:<name>', got {source!r}")


def test_table_output_is_plain_and_exact() -> None:
    t = good()
    t["members"] = {7: {"p": {"latency_ms": 2}}}
    out = validate_point_table(t)
    assert out == {"energy_source": "rapl",
                   "members": {"7": {"p": {"latency_ms": 2.0, "energy_mj": None,
                                           "power_w": None}}},
                   "points": [{"name": "p", "settings": {"k": 1}}]}
    assert type(out["members"]["7"]["p"]["latency_ms"]) is float
    assert "meta" not in out
    t["meta"] = types.MappingProxyType({"how": "m"})
    out = validate_point_table(t)
    assert out["meta"] == {"how": "m"} and type(out["meta"]) is dict
    # zero energy and power are allowed, as floats
    assert validate_point_table(good())["members"]["a"]["p"] == {
        "latency_ms": 1.0, "energy_mj": 0.0, "power_w": 0.0}


def test_table_key_messages() -> None:
    with pytest.raises(ValueError) as info:
        validate_point_table([1])  # type: ignore[arg-type]
    assert str(info.value) == "an operating-point table is a mapping, got list"
    t = good()
    del t["points"]
    t["x"] = 1
    with pytest.raises(ValueError) as info:
        validate_point_table(t)
    assert str(info.value) == ("operating-point table: missing keys ['points'], unknown keys "
                               "['x']; allowed: energy_source, members, points, meta "
                               "(optional)")
    t = good()
    del t["energy_source"]
    with pytest.raises(ValueError, match=r"missing keys \['energy_source'\], unknown keys "
                                         r"\[\];"):
        validate_point_table(t)
    t = good()
    t["meta"] = [1]
    with pytest.raises(ValueError) as info:
        validate_point_table(t)
    assert str(info.value) == "operating-point table: meta must be a mapping, got [1]"


def test_table_points_and_members_messages() -> None:
    t = good()
    t["points"] = []
    with pytest.raises(ValueError) as info:
        validate_point_table(t)
    assert str(info.value) == ("operating-point table: point names must be unique and "
                               "non-empty, got []")
    t = good()
    t["points"] = [{"name": "p"}, {"name": "p"}]
    with pytest.raises(ValueError, match=r"unique and non-empty, got \['p', 'p'\]$"):
        validate_point_table(t)
    for members in ({}, [1]):
        t = good()
        t["members"] = members
        with pytest.raises(ValueError) as info:
            validate_point_table(t)
        assert str(info.value) == "operating-point table: members must be a non-empty mapping"
    t = good()
    t["members"]["a"] = {"p": {"latency_ms": 1}, "q": {"latency_ms": 1}}
    with pytest.raises(ValueError) as info:
        validate_point_table(t)
    assert str(info.value) == ("operating-point table: member 'a' must have an entry for "
                               "every point ['p'], got ['p', 'q']")
    t["members"]["a"] = 5
    with pytest.raises(ValueError) as info:
        validate_point_table(t)
    assert str(info.value) == ("operating-point table: member 'a' must have an entry for "
                               "every point ['p'], got 5")
    for cell in (3, {"latency_ms": 1, "joules": 2}):
        t = good()
        t["members"]["a"]["p"] = cell
        with pytest.raises(ValueError) as info:
            validate_point_table(t)
        assert str(info.value) == ("operating-point table: member 'a' at 'p' must be "
                                   f"{{latency_ms, energy_mj, power_w}}, got {cell!r}")


@pytest.mark.parametrize("key, value", [
    ("latency_ms", 0), ("latency_ms", -1.0), ("latency_ms", True), ("latency_ms", "1"),
    ("latency_ms", float("inf")), ("energy_mj", -0.5), ("energy_mj", False),
    ("power_w", float("nan")), ("power_w", "2"),
])
def test_table_number_messages(key: str, value: Any) -> None:
    t = good()
    t["members"]["a"]["p"][key] = value
    bound = "> 0" if key == "latency_ms" else ">= 0 or null"
    with pytest.raises(ValueError) as info:
        validate_point_table(t)
    assert str(info.value) == (f"operating-point table: member 'a' at 'p': {key} must be a "
                               f"finite number {bound}, got {value!r}")


def test_table_small_positive_latency_is_fine() -> None:
    t = good()
    t["members"]["a"]["p"]["latency_ms"] = 1e-9
    assert validate_point_table(t)["members"]["a"]["p"]["latency_ms"] == 1e-9


def test_save_and_load_exact_file(tmp_path: Path) -> None:
    t = good()
    t["meta"] = {"b": 1, "a": [1, 2]}
    path = save_point_table(t, str(tmp_path / "t.json"))
    assert isinstance(path, Path) and path == tmp_path / "t.json"
    text = path.read_text()
    data = validate_point_table(t)
    assert text == json.dumps(data, indent=1, sort_keys=True) + "\n"
    assert load_point_table(str(path)) == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.json"]


def test_save_refuses_non_json(tmp_path: Path) -> None:
    t = good()
    t["meta"] = {"x": object()}
    with pytest.raises(ValueError, match=r"^operating-point table is not plain JSON: "
                                         r"Object of type object is not JSON serializable$"):
        save_point_table(t, tmp_path / "t.json")
    t["meta"] = {"x": float("nan")}
    with pytest.raises(ValueError, match=r"^operating-point table is not plain JSON: "):
        save_point_table(t, tmp_path / "t.json")
    assert list(tmp_path.iterdir()) == []
    bad = good()
    bad["energy_source"] = "x"
    with pytest.raises(ValueError, match="energy_source must be"):
        save_point_table(bad, tmp_path / "t.json")
    assert list(tmp_path.iterdir()) == []


def test_load_messages(tmp_path: Path) -> None:
    p = tmp_path / "bad.json"
    p.write_text("{not json")
    with pytest.raises(ValueError, match=r"^.*bad\.json: not a valid operating-point table: "
                                         r"Expecting property name"):
        load_point_table(p)
    t = good()
    t["energy_source"] = "x"
    p.write_text(json.dumps(t))
    with pytest.raises(ValueError) as info:
        load_point_table(p)
    assert str(info.value) == (f"{p}: not a valid operating-point table: operating-point "
                               "table: energy_source must be 'rapl', 'nvml' or "
                               "'model:<name>', got 'x'")
    with pytest.raises(OSError):
        load_point_table(tmp_path / "missing.json")


def test_allowed_cpus_without_affinity_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    import switchnas.runtime.knobs as knobs

    assert knobs._allowed_cpus() == sorted(os.sched_getaffinity(0))
    monkeypatch.delattr(knobs.os, "sched_getaffinity")
    monkeypatch.setattr(knobs.os, "cpu_count", lambda: 3)
    assert knobs._allowed_cpus() == [0, 1, 2]
    monkeypatch.setattr(knobs.os, "cpu_count", lambda: None)
    assert knobs._allowed_cpus() == [0]


def test_sysfs_files_are_read_as_ascii(tmp_path: Path) -> None:
    import switchnas.runtime.knobs as knobs

    p = tmp_path / "f"
    p.write_text("  1200000 \n", encoding="ascii")
    assert knobs._read(p) == "1200000"
    p.write_bytes("userspace caf\u00e9\n".encode())
    with pytest.raises(UnicodeDecodeError):
        knobs._read(p)
    assert knobs._read_optional(tmp_path / "missing") is None
