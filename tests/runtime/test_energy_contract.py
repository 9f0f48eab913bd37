"""Energy: counters against fake powercap trees and a fake NVML, energy_per_call on a fake
clock, the power model's numbers by hand, and expand_with_frequencies exactly."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

import switchnas.runtime.energy as energy
from switchnas.runtime.energy import (
    POWER_MODELS,
    EnergyMeter,
    NvmlEnergyReader,
    PowerModel,
    RAPLReader,
    energy_per_call,
    expand_with_frequencies,
    get_power_model,
)

# --------------------------------------------------------------------------- RAPL


def zone(root: Path, name: str, energy_uj: str = "1000", top: str = "5000",
         label: str | None = "package-0") -> Path:
    z = root / name
    z.mkdir(parents=True)
    (z / "energy_uj").write_text(energy_uj + "\n")
    (z / "max_energy_range_uj").write_text(top + "\n")
    if label is not None:
        (z / "name").write_text(label + "\n")
    return z


def test_rapl_reads_package_zones_only(tmp_path: Path) -> None:
    zone(tmp_path, "intel-rapl:1", "200", "7000")
    zone(tmp_path, "intel-rapl:0", "100", "5000")
    zone(tmp_path, "intel-rapl:0:0", "5", "9", label="core")
    zone(tmp_path, "intel-rapl:2", "9", "9", label="psys")
    zone(tmp_path, "intel-rapl:3", "300", "6000", label=None)  # no name file: a package
    zone(tmp_path, "intel-rapl-mmio:0", "1", "1")
    r = RAPLReader(root=tmp_path)
    assert isinstance(r, EnergyMeter) and r.energy_source == "rapl"
    assert r.root == tmp_path and r.available and r.reason is None
    assert [z.name for z in r.zones] == ["intel-rapl:0", "intel-rapl:1", "intel-rapl:3"]
    assert r.ranges == [5000, 7000, 6000]
    assert r.read_uj() == [100, 200, 300] and r.read() == [100, 200, 300]
    # a counter that went down wrapped once at its range
    assert r.delta_uj([100, 200, 300], [150, 100, 300]) == 50 + (100 + 7000 - 200) + 0
    assert r.delta_mj([100, 200, 300], [1100, 200, 1300]) == 2.0
    assert r.delta_uj([100, 200, 300], [100, 200, 300]) == 0
    with pytest.raises(ValueError):
        r.delta_uj([1, 2], [1, 2])  # one reading per package


def test_rapl_default_root() -> None:
    assert energy.POWERCAP_ROOT == "/sys/class/powercap"
    r = RAPLReader()
    assert r.root == Path("/sys/class/powercap")
    assert r.available == (r.reason is None)


def test_rapl_without_zones_says_why(tmp_path: Path) -> None:
    r = RAPLReader(root=tmp_path)
    assert not r.available and r.zones == [] and r.ranges == []
    assert r.reason == (f"no RAPL package zones (intel-rapl:<N>) under {tmp_path}: this "
                        "machine or VM does not expose RAPL")
    zone(tmp_path, "intel-rapl:0", label="psys")
    assert RAPLReader(root=tmp_path).reason.startswith("no RAPL package zones")


def test_rapl_unreadable_says_why(tmp_path: Path) -> None:
    zone(tmp_path, "intel-rapl:0")
    z = zone(tmp_path, "intel-rapl:1")
    (z / "energy_uj").unlink()
    r = RAPLReader(root=tmp_path)
    assert not r.available and r.zones == [] and r.ranges == []
    assert r.reason is not None
    assert r.reason.startswith(f"RAPL energy counters under {tmp_path} are not readable "
                               "(FileNotFoundError: ")
    assert r.reason.endswith("); since Linux 5.10 energy_uj is readable by root only")
    bad = tmp_path / "b"
    zone(bad, "intel-rapl:0", top="lots")
    r = RAPLReader(root=bad)
    assert r.reason == (f"RAPL energy counters under {bad} are not readable (ValueError: "
                        "invalid literal for int() with base 10: 'lots'); since Linux 5.10 "
                        "energy_uj is readable by root only")
    bad2 = tmp_path / "c"
    zone(bad2, "intel-rapl:0", energy_uj="x")
    assert RAPLReader(root=bad2).reason.startswith(f"RAPL energy counters under {bad2} are "
                                                   "not readable (ValueError: ")


# --------------------------------------------------------------------------- NVML


class NVMLError(Exception):
    pass


def fake_nvml(*, uuid_ok: bool = True, energy_ok: bool = True) -> types.ModuleType:
    mod = types.ModuleType("pynvml")
    mod.calls = []  # type: ignore[attr-defined]
    mod.counter = 1000  # type: ignore[attr-defined]
    mod.nvmlInit = lambda: mod.calls.append("init")  # type: ignore[attr-defined]

    def by_uuid(u: str) -> str:
        mod.calls.append(("uuid", u))
        if not uuid_ok:
            raise NVMLError("not found")
        return f"u:{u}"

    def by_index(i: int) -> str:
        mod.calls.append(("index", i))
        return f"i:{i}"

    def total(h: str) -> int:
        if not energy_ok:
            raise NVMLError("Not Supported")
        mod.calls.append(("total", h))
        return mod.counter

    mod.nvmlDeviceGetHandleByUUID = by_uuid  # type: ignore[attr-defined]
    mod.nvmlDeviceGetHandleByIndex = by_index  # type: ignore[attr-defined]
    mod.nvmlDeviceGetTotalEnergyConsumption = total  # type: ignore[attr-defined]
    return mod


def test_nvml_reader_by_index(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = fake_nvml()
    monkeypatch.setitem(sys.modules, "pynvml", mod)
    r = NvmlEnergyReader()
    assert isinstance(r, EnergyMeter)
    assert r.energy_source == "nvml" and r.index == 0 and r.available and r.reason is None
    assert r.handle == "i:0" and mod.calls == ["init", ("index", 0), ("total", "i:0")]
    mod.counter = 1234
    assert r.read() == 1234.0 and isinstance(r.read(), float)
    assert r.delta_mj(1000, 1500.5) == 500.5
    assert NvmlEnergyReader(index=3).handle == "i:3"


def test_nvml_reader_by_uuid(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = fake_nvml()
    monkeypatch.setitem(sys.modules, "pynvml", mod)
    assert NvmlEnergyReader(uuid="abc").handle == "u:GPU-abc"
    assert NvmlEnergyReader(uuid="GPU-abc", index=2).handle == "u:GPU-abc"
    assert ("index", 2) not in mod.calls
    mod2 = fake_nvml(uuid_ok=False)
    monkeypatch.setitem(sys.modules, "pynvml", mod2)
    r = NvmlEnergyReader(uuid="abc", index=2)
    assert r.handle == "i:2" and r.available and r.reason is None
    assert mod2.calls[1:3] == [("uuid", "GPU-abc"), ("index", 2)]


def test_nvml_reader_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(energy_ok=False))
    r = NvmlEnergyReader(index=1)
    assert not r.available and r.handle is None
    assert r.reason == "NVML energy counter unavailable: NVMLError: Not Supported"
    monkeypatch.setitem(sys.modules, "pynvml", None)
    r = NvmlEnergyReader()
    assert not r.available and r.handle is None
    assert r.reason == "pynvml is not installed (pip install 'nvidia-ml-py>=12')"


# --------------------------------------------------------------------------- energy_per_call


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def perf_counter(self) -> float:
        return self.t


class Meter:
    energy_source = "rapl"

    def __init__(self, mj_per_run: float, available: bool = True,
                 reason: str | None = None) -> None:
        self.available, self.reason = available, reason
        self.mj_per_run = mj_per_run
        self.total = 0.0
        self.reads: list[float] = []

    def read(self) -> float:
        self.reads.append(self.total)
        return self.total

    def delta_mj(self, before: Any, after: Any) -> float:
        return after - before


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(energy, "time", types.SimpleNamespace(perf_counter=c.perf_counter))
    return c


def test_energy_per_call_exact(clock: Clock) -> None:
    meter = Meter(2.0)
    log: list[str] = []

    def run() -> None:
        log.append("run")
        clock.t += 0.25
        meter.total += meter.mj_per_run

    e, info = energy_per_call(run, meter, seconds=1.0, sync=lambda: log.append("sync"))
    # runs until 1.0 s have passed: 4 runs of 0.25 s
    assert log == ["sync", "run", "run", "run", "run", "sync"]
    assert e == 2.0
    assert info == {"energy_source": "rapl", "energy_runs": 4, "energy_s": 1.0,
                    "avg_power_w": 0.008}
    assert meter.reads == [0.0, 8.0]


def test_energy_per_call_runs_at_least_once(clock: Clock) -> None:
    meter = Meter(3.0)
    n = []

    def run() -> None:
        n.append(1)
        clock.t += 0.5
        meter.total += 3.0

    e, info = energy_per_call(run, meter, seconds=0.0)
    assert len(n) == 1 and e == 3.0 and info["energy_runs"] == 1
    assert info["energy_s"] == 0.5 and info["avg_power_w"] == 0.006
    n.clear()
    e, info = energy_per_call(run, meter, seconds=1.2)
    assert len(n) == 3 and info["energy_runs"] == 3


def test_energy_per_call_rounds_and_divides(clock: Clock) -> None:
    meter = Meter(1.0)

    def run() -> None:
        clock.t += 0.123456
        meter.total += 1.0

    e, info = energy_per_call(run, meter, seconds=0.3)
    assert info["energy_runs"] == 3 and e == pytest.approx(1.0)
    assert info["energy_s"] == 0.3704
    assert info["avg_power_w"] == round(3.0 / 1e3 / (3 * 0.123456), 3) == 0.008


def test_energy_per_call_counter_that_does_not_advance(clock: Clock) -> None:
    meter = Meter(0.0)
    n = []

    def run() -> None:
        n.append(1)
        clock.t += 0.02

    e, info = energy_per_call(run, meter, seconds=0.05)
    assert e is None and len(n) == 3
    assert info == {"energy_source": "rapl", "energy_runs": 3,
                    "energy_unavailable": "RAPL energy counter did not advance in 0.060 s "
                                          "(raise the energy phase)"}
    meter.mj_per_run = -1.0  # a counter that went back: no energy either

    def back() -> None:
        clock.t += 1.0
        meter.total -= 1.0

    e, info = energy_per_call(back, meter, seconds=0.0)
    assert e is None and info["energy_unavailable"].startswith("RAPL energy counter did not")


def test_energy_per_call_unavailable_meter(clock: Clock) -> None:
    meter = Meter(1.0, available=False, reason="no counter")
    meter.energy_source = "nvml"
    called = []
    e, info = energy_per_call(lambda: called.append(1), meter, seconds=1.0,
                              sync=lambda: called.append(2))
    assert e is None and called == [] and meter.reads == []
    assert info == {"energy_source": "nvml", "energy_unavailable": "no counter"}


def test_energy_per_call_zero_time(clock: Clock) -> None:
    meter = Meter(1.0)

    def run() -> None:
        meter.total += 5.0

    e, info = energy_per_call(run, meter, seconds=0.0)
    assert e == 5.0 and info["energy_s"] == 0.0
    assert info["avg_power_w"] == round(5.0 / 1e3 / 1e-9, 3)


# --------------------------------------------------------------------------- PowerModel


def test_power_model_defaults_and_label() -> None:
    m = PowerModel("m", ((1000000, 800000),), 1.0)
    assert m.leakage_a == 0.0 and m.uncore_w == 0.0 and m.source == ""
    assert m.energy_source == "model:m" and m.frequencies_khz == [1000000]
    assert m.to_dict() == {"name": "m", "table": [[1000000, 800000]],
                           "coefficient_uw_mhz_v2": 1.0, "leakage_a": 0.0, "uncore_w": 0.0,
                           "source": ""}
    PowerModel("a.b-c_9", ((1, 1),), 0.0)  # zero coefficient is allowed


@pytest.mark.parametrize("name", ["", "a b", "a/b", "a:b", "é"])
def test_power_model_name_message(name: str) -> None:
    with pytest.raises(ValueError) as info:
        PowerModel(name, ((1, 1),), 1.0)
    assert str(info.value) == ("a power model's name is letters, digits, '_', '.', '-', "
                               f"got {name!r}")


@pytest.mark.parametrize("table", [(), ((2, 1), (1, 1)), ((1, 1), (1, 2)), ((0, 1),),
                                   ((1, 0),), ((-1, 1),), ((1, -5),)])
def test_power_model_table_message(table: tuple) -> None:
    with pytest.raises(ValueError) as info:
        PowerModel("m", table, 1.0)
    assert str(info.value) == ("power model 'm': the table needs (freq_khz, microvolt) pairs "
                               f"> 0 with strictly increasing frequencies, got {table}")


@pytest.mark.parametrize("key", ["coefficient_uw_mhz_v2", "leakage_a", "uncore_w"])
@pytest.mark.parametrize("value", [-0.1, float("inf"), float("nan")])
def test_power_model_number_message(key: str, value: float) -> None:
    kw: dict[str, Any] = {"coefficient_uw_mhz_v2": 1.0, key: value}
    with pytest.raises(ValueError) as info:
        PowerModel("m", ((1, 1),), **kw)
    assert str(info.value) == (f"power model 'm': {key} must be a finite number >= 0, "
                               f"got {value!r}")


def test_voltage_interpolates_and_clamps() -> None:
    m = PowerModel("m", ((1000000, 800000), (2000000, 1000000), (4000000, 1400000)), 1.0)
    assert m.voltage(500000) == 0.8
    assert m.voltage(1000000) == 0.8
    assert m.voltage(1500000) == pytest.approx(0.9)
    assert m.voltage(2000000) == pytest.approx(1.0)
    assert m.voltage(3000000) == pytest.approx(1.2)
    assert m.voltage(3500000) == pytest.approx(1.3)
    assert m.voltage(4000000) == pytest.approx(1.4)
    assert m.voltage(9000000) == 1.4
    one = PowerModel("o", ((1000000, 800000),), 1.0)
    assert one.voltage(2e6) == 0.8 and one.voltage(1) == 0.8


def test_power_exact_by_hand() -> None:
    # C = 100 uW/MHz/V^2, V = 1.0 V at 2000 MHz: dynamic 0.2 W; leakage 0.5 A * 1 V
    m = PowerModel("m", ((1000000, 800000), (2000000, 1000000)), 100.0, leakage_a=0.5,
                   uncore_w=3.0)
    assert m.power_w() == pytest.approx(0.2 + 0.5 + 3.0)
    assert m.power_w(cores=2) == pytest.approx(2 * 0.7 + 3.0)
    # at 1000 MHz: 100 * 0.64 * 1000 / 1e6 = 0.064 W, leakage 0.4 W
    assert m.power_w(freq_khz=1000000) == pytest.approx(0.064 + 0.4 + 3.0)
    assert m.power_w(freq_khz=1500000, cores=3) == pytest.approx(
        3 * (100 * 0.81 * 1500 / 1e6 + 0.5 * 0.9) + 3.0)
    assert m.point_power_w({}) == pytest.approx(3.7)
    assert m.point_power_w({"freq_khz": "1000000", "threads": "2"}) == pytest.approx(
        2 * 0.464 + 3.0)
    assert m.point_power_w({"threads": 2, "cpus": [0, 1]}) == pytest.approx(4.4)
    assert m.energy_mj(10.0, {"threads": 1}) == pytest.approx(37.0)
    assert m.energy_mj(0.0, {}) == 0.0


def test_power_messages() -> None:
    m = PowerModel("m", ((1000000, 800000),), 1.0)
    for kw in ({"cores": 0}, {"freq_khz": 0}, {"freq_khz": -5.0, "cores": 2},
               {"freq_khz": float("nan")}):
        with pytest.raises(ValueError) as info:
            m.power_w(**kw)
        assert str(info.value) == ("power model 'm': needs cores >= 1 and freq_khz > 0, got "
                                   f"cores={kw.get('cores', 1)}, "
                                   f"freq_khz={kw.get('freq_khz')}")
    assert m.power_w(freq_khz=1e-9) >= 0
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError) as info:
            m.energy_mj(bad, {})
        assert str(info.value) == f"latency_ms must be >= 0, got {bad!r}"


def test_built_in_models() -> None:
    assert sorted(POWER_MODELS) == ["generic", "rk3399-a53", "rk3399-a72"]
    g = get_power_model("generic")
    assert g is POWER_MODELS["generic"] and g.energy_source == "model:generic"
    assert g.frequencies_khz == [800000, 1600000, 2400000, 3200000]
    # about 4 W per core at 3.2 GHz: 1000 * 1.15^2 * 3200 / 1e6 + 0.3 * 1.15, + 2 W uncore
    assert g.power_w() == pytest.approx(1000 * 1.15 ** 2 * 3200 / 1e6 + 0.3 * 1.15 + 2.0)
    a72 = get_power_model("rk3399-a72")
    assert a72.frequencies_khz[-1] == 1800000 and a72.coefficient_uw_mhz_v2 == 436.0
    dyn = 436e-6 * 1.2 ** 2 * 1800
    assert a72.power_w() == pytest.approx(1.1 * dyn)  # leakage 10 % of dynamic at the top
    a53 = get_power_model("rk3399-a53")
    assert a53.power_w() == pytest.approx(1.1 * 100e-6 * 1.125 ** 2 * 1416)
    assert a53.uncore_w == 0.0 and "RK3399" in a53.source
    with pytest.raises(ValueError) as info:
        get_power_model("x")
    assert str(info.value) == ("unknown power model 'x'; built-in: ['generic', "
                               "'rk3399-a53', 'rk3399-a72']")
    assert info.value.__cause__ is None and info.value.__suppress_context__


# --------------------------------------------------------------------------- expand


def base_table() -> dict[str, Any]:
    return {"energy_source": "rapl",
            "members": {"a": {"t1": {"latency_ms": 4.0, "energy_mj": 1.0, "power_w": None},
                              "t2": {"latency_ms": 2.0, "energy_mj": None, "power_w": 3.0}}},
            "points": [{"name": "t1", "settings": {"threads": 1}},
                       {"name": "t2", "settings": {"threads": 2}}],
            "meta": {"note": "n"}}


MODEL = PowerModel("m", ((1000000, 1000000), (2000000, 1000000)), 100.0, uncore_w=1.0)


def test_expand_exact() -> None:
    out = expand_with_frequencies(base_table(), MODEL)
    assert out["energy_source"] == "model:m"
    assert [p["name"] for p in out["points"]] == ["t1+f1000MHz", "t1+f2000MHz",
                                                 "t2+f1000MHz", "t2+f2000MHz"]
    assert out["points"][0] == {"name": "t1+f1000MHz",
                                "settings": {"threads": 1, "freq_khz": 1000000}}
    row = out["members"]["a"]
    # half the frequency: twice the latency (memory_bound 0)
    assert row["t1+f1000MHz"]["latency_ms"] == pytest.approx(8.0)
    assert row["t1+f2000MHz"]["latency_ms"] == pytest.approx(4.0)
    assert row["t2+f1000MHz"]["latency_ms"] == pytest.approx(4.0)
    # power: threads x 100 * 1 * MHz / 1e6 + 1 W
    assert row["t1+f1000MHz"]["power_w"] == pytest.approx(1.1)
    assert row["t2+f2000MHz"]["power_w"] == pytest.approx(1.4)
    assert row["t2+f2000MHz"]["energy_mj"] == pytest.approx(1.4 * 2.0)
    assert row["t1+f1000MHz"]["energy_mj"] == pytest.approx(1.1 * 8.0)
    meta = out["meta"]
    assert meta["note"] == "n"
    assert meta["derived"] == {
        "from_energy_source": "rapl",
        "latency_model": "t(f) = t_measured * ((1 - memory_bound) * f_top / f "
                         "+ memory_bound)",
        "memory_bound": 0.0, "f_top_khz": 2000000, "power_model": MODEL.to_dict()}


def test_expand_memory_bound_and_frequencies() -> None:
    t = base_table()
    del t["meta"]
    out = expand_with_frequencies(t, MODEL, frequencies_khz=[500000.0, 1000000, 1000000],
                                  memory_bound=0.5)
    assert [p["name"] for p in out["points"]] == ["t1+f500MHz", "t1+f1000MHz", "t2+f500MHz",
                                                 "t2+f1000MHz"]
    row = out["members"]["a"]
    # 4 ms * (0.5 * 2000/500 + 0.5) = 10 ms; at 1000 MHz 4 * (0.5 * 2 + 0.5) = 6 ms
    assert row["t1+f500MHz"]["latency_ms"] == pytest.approx(10.0)
    assert row["t1+f1000MHz"]["latency_ms"] == pytest.approx(6.0)
    assert row["t2+f500MHz"]["power_w"] == pytest.approx(2 * 100 * 500 / 1e6 + 1.0)
    assert out["meta"]["derived"]["memory_bound"] == 0.5
    assert set(out["meta"]) == {"derived"}
    full = expand_with_frequencies(base_table(), MODEL, memory_bound=1.0)
    assert full["members"]["a"]["t1+f1000MHz"]["latency_ms"] == pytest.approx(4.0)


def test_expand_messages() -> None:
    for mb in (-0.01, 1.01):
        with pytest.raises(ValueError) as info:
            expand_with_frequencies(base_table(), MODEL, memory_bound=mb)
        assert str(info.value) == f"memory_bound must be in [0, 1], got {mb!r}"
    for freqs, shown in (([0, 1000], [0, 1000]), ([], []), ([-5], [-5])):
        with pytest.raises(ValueError) as info:
            expand_with_frequencies(base_table(), MODEL, frequencies_khz=freqs)
        assert str(info.value) == f"frequencies_khz must be > 0, got {shown}"
    t = base_table()
    t["points"][1]["settings"]["freq_khz"] = 1
    with pytest.raises(ValueError) as info:
        expand_with_frequencies(t, MODEL)
    assert str(info.value) == ("point 't2' already sets freq_khz: it was measured with DVFS, "
                               "nothing to model")
    bad = base_table()
    bad["energy_source"] = "x"
    with pytest.raises(ValueError, match="energy_source must be"):
        expand_with_frequencies(bad, MODEL)


def test_energy_per_call_small_and_large_deltas(clock: Clock) -> None:
    meter = Meter(0.5)

    def run() -> None:
        clock.t += 1.0
        meter.total += meter.mj_per_run

    e, info = energy_per_call(run, meter, seconds=0.0)
    assert e == 0.5 and info["avg_power_w"] == 0.001  # below 1 mJ still counts
    meter.mj_per_run = 1e6  # 1 kJ in 1 s: 1000 W
    e, info = energy_per_call(run, meter, seconds=0.0)
    assert e == 1e6 and info["avg_power_w"] == 1000.0 and info["energy_s"] == 1.0


def test_rapl_counter_text_is_ascii(tmp_path: Path) -> None:
    z = zone(tmp_path, "intel-rapl:0")
    (z / "energy_uj").write_bytes("1\u00e9\n".encode())
    r = RAPLReader(root=tmp_path)
    assert not r.available
    assert r.reason is not None and "(UnicodeDecodeError: " in r.reason


def test_power_model_names_may_use_capitals() -> None:
    assert PowerModel("Cortex-A72.v2", ((1, 1),), 1.0).energy_source == "model:Cortex-A72.v2"


def test_voltage_below_the_table_and_exact_dynamic_power() -> None:
    m = PowerModel("m", ((1000000, 800000), (2000000, 1000000)), 1000.0)
    assert m.voltage(900000) == 0.8  # clamped, not extrapolated
    one = PowerModel("o", ((1000000, 1000000),), 1000.0)
    assert one.power_w() == 1.0  # 1000 uW/MHz/V^2 * 1 V^2 * 1000 MHz, exactly
