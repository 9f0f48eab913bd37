"""Energy sources: RAPL counters (fake powercap tree), the NVML counter where installed, and
the power model from a documented voltage/frequency table."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from switchnas.runtime.energy import (
    POWER_MODELS,
    EnergyMeter,
    NvmlEnergyReader,
    PowerModel,
    RAPLReader,
    energy_per_call,
    get_power_model,
)

RANGE_UJ = 1_000_000


def fake_rapl(root: Path, start_uj: int) -> list[Path]:
    """Two package zones, a core sub-zone and psys (the last two left out by the reader)."""
    counters = []
    for name, label in (("intel-rapl:0", "package-0"), ("intel-rapl:1", "package-1"),
                        ("intel-rapl:0:0", "core"), ("intel-rapl:2", "psys")):
        z = root / name
        z.mkdir(parents=True)
        (z / "name").write_text(label + "\n")
        (z / "energy_uj").write_text(f"{start_uj}\n")
        (z / "max_energy_range_uj").write_text(f"{RANGE_UJ}\n")
        counters.append(z / "energy_uj")
    return counters[:2]


def bump(counter: Path, uj: int) -> None:
    counter.write_text(f"{(int(counter.read_text()) + uj) % RANGE_UJ}\n")


def test_rapl_is_an_energy_meter_summing_packages_across_a_wrap(tmp_path: Path) -> None:
    p0, p1 = fake_rapl(tmp_path, start_uj=RANGE_UJ - 100)
    meter = RAPLReader(tmp_path)
    assert isinstance(meter, EnergyMeter) and meter.energy_source == "rapl"
    assert [z.name for z in meter.zones] == ["intel-rapl:0", "intel-rapl:1"]
    before = meter.read()
    bump(p0, 300)  # wraps
    bump(p1, 1000)
    assert meter.delta_mj(before, meter.read()) == pytest.approx(1.3)


def test_energy_per_call_divides_the_counter_by_the_calls(tmp_path: Path) -> None:
    p0, _ = fake_rapl(tmp_path, start_uj=RANGE_UJ - 1500)
    meter = RAPLReader(tmp_path)
    calls = []

    def run() -> None:
        calls.append(1)
        bump(p0, 2000)

    energy, info = energy_per_call(run, meter, seconds=0.02)
    assert energy == pytest.approx(2.0) and info["energy_runs"] == len(calls) >= 1
    assert info["energy_source"] == "rapl" and info["avg_power_w"] > 0
    idle, info = energy_per_call(lambda: None, meter, seconds=0.0)
    assert idle is None and "did not advance" in info["energy_unavailable"]


def test_unreadable_counters_say_why(tmp_path: Path) -> None:
    meter = RAPLReader(tmp_path / "none")
    energy, info = energy_per_call(lambda: None, meter, seconds=0.0)
    assert energy is None and "does not expose RAPL" in info["energy_unavailable"]
    nvml = NvmlEnergyReader(index=0)
    assert nvml.energy_source == "nvml"
    try:
        import pynvml  # noqa: F401
    except ImportError:
        assert not nvml.available and "pynvml is not installed" in str(nvml.reason)


def _fake_nvml(energy: list[int]) -> types.ModuleType:
    """A pynvml with GPU 0 (UUID ``GPU-aaaa``) and GPU 1 (``GPU-bbbb``) whose energy
    counters read ``energy`` in turn; unknown UUIDs and indices raise."""
    mod = types.ModuleType("pynvml")
    uuids = {"GPU-aaaa": "h0", "GPU-bbbb": "h1"}
    mod.nvmlInit = lambda: None  # type: ignore[attr-defined]

    def by_uuid(u: str) -> str:
        if u not in uuids:
            raise RuntimeError(f"unknown uuid {u}")
        return uuids[u]

    def by_index(i: int) -> str:
        if i not in (0, 1):
            raise RuntimeError(f"no GPU {i}")
        return f"h{i}"

    def total(handle: str) -> int:
        assert handle in ("h0", "h1")
        return energy.pop(0) if len(energy) > 1 else energy[0]

    mod.nvmlDeviceGetHandleByUUID = by_uuid  # type: ignore[attr-defined]
    mod.nvmlDeviceGetHandleByIndex = by_index  # type: ignore[attr-defined]
    mod.nvmlDeviceGetTotalEnergyConsumption = total  # type: ignore[attr-defined]
    return mod


@pytest.mark.parametrize(("kwargs", "handle"), [
    ({"index": 0, "uuid": "bbbb"}, "h1"),         # the UUID wins over the index
    ({"index": 0, "uuid": "GPU-bbbb"}, "h1"),     # with NVML's prefix too
    ({"index": 1, "uuid": "no-such-gpu"}, "h1"),  # an unknown UUID falls back to the index
    ({"index": 1}, "h1"),
])
def test_nvml_reader_picks_the_gpu_by_uuid_then_index(monkeypatch: pytest.MonkeyPatch,
                                                      kwargs: dict, handle: str) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml([1000]))
    reader = NvmlEnergyReader(**kwargs)
    assert reader.available and reader.handle == handle and reader.reason is None


def test_nvml_energy_per_call_and_an_unknown_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    # probe read, then before/after: 1000 -> 1600 mJ over the calls
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml([1000, 1000, 1600]))
    calls: list[int] = []
    energy, info = energy_per_call(lambda: calls.append(1), NvmlEnergyReader(index=0),
                                   seconds=0.0)
    assert energy == pytest.approx(600.0 / len(calls)) and info["energy_source"] == "nvml"
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml([1000]))
    bad = NvmlEnergyReader(index=7, uuid="nope")
    assert not bad.available and "no GPU 7" in str(bad.reason)
    energy, info = energy_per_call(lambda: None, bad, seconds=0.0)
    assert energy is None and "no GPU 7" in info["energy_unavailable"]


@pytest.mark.parametrize("name", sorted(POWER_MODELS))
def test_power_model_grows_with_frequency_and_cores(name: str) -> None:
    model = get_power_model(name)
    assert model.energy_source == f"model:{name}" and model.source
    freqs = model.frequencies_khz
    powers = [model.power_w(freq_khz=f) for f in freqs]
    assert all(a < b for a, b in zip(powers, powers[1:], strict=False))
    volts = [model.voltage(f) for f in freqs]
    assert all(a <= b for a, b in zip(volts, volts[1:], strict=False))
    assert model.power_w(cores=2) > model.power_w(cores=1)
    # energy of an inference that takes as long at every point: lowest at the lowest point
    energies = [model.energy_mj(10.0, {"freq_khz": f, "threads": 1}) for f in freqs]
    assert energies == sorted(energies)


def test_power_model_follows_the_documented_table() -> None:
    a72 = get_power_model("rk3399-a72")
    # Linux rk3399-opp.dtsi: 1.8 GHz at 1.2 V; rk3399.dtsi: dynamic-power-coefficient 436
    dynamic = 436e-6 * 1.2 ** 2 * 1800
    assert a72.power_w(freq_khz=1800000) == pytest.approx(dynamic * 1.1)  # + 10 % leakage
    assert a72.voltage(1308000) == pytest.approx((0.950 + 1.025) / 2)  # interpolated
    assert a72.voltage(100000) == pytest.approx(0.825)  # clamped below the table
    assert a72.voltage(3000000) == pytest.approx(1.2)
    settings = {"freq_khz": 1800000, "threads": 2}
    assert a72.energy_mj(5.0, settings) == pytest.approx(a72.point_power_w(settings) * 5.0)
    assert a72.to_dict()["table"][0] == [408000, 825000]


def test_power_model_refuses_bad_tables_and_names() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        PowerModel(name="x", table=((2, 1), (1, 1)), coefficient_uw_mhz_v2=1.0)
    with pytest.raises(ValueError, match="leakage_a"):
        PowerModel(name="x", table=((1, 1),), coefficient_uw_mhz_v2=1.0, leakage_a=-1.0)
    with pytest.raises(ValueError, match="name"):
        PowerModel(name="a b", table=((1, 1),), coefficient_uw_mhz_v2=1.0)
    with pytest.raises(ValueError, match=r"unknown power model 'xavier'.*generic"):
        get_power_model("xavier")
    with pytest.raises(ValueError, match="cores >= 1"):
        get_power_model("generic").power_w(cores=0)


def test_expanding_a_table_with_modelled_frequencies() -> None:
    from switchnas.runtime.energy import expand_with_frequencies

    measured = {"energy_source": "rapl",
                "members": {"m": {"t1": {"latency_ms": 10.0, "energy_mj": 5.0, "power_w": 0.5},
                                  "t2": {"latency_ms": 6.0, "energy_mj": 6.0, "power_w": 1.0}}},
                "points": [{"name": "t1", "settings": {"threads": 1}},
                           {"name": "t2", "settings": {"threads": 2}}]}
    a53 = get_power_model("rk3399-a53")
    out = expand_with_frequencies(measured, a53, frequencies_khz=[708000, 1416000],
                                  memory_bound=0.5)
    assert out["energy_source"] == "model:rk3399-a53"
    assert out["meta"]["derived"]["from_energy_source"] == "rapl"
    assert [p["name"] for p in out["points"]] == ["t1+f708MHz", "t1+f1416MHz",
                                                  "t2+f708MHz", "t2+f1416MHz"]
    row = out["members"]["m"]
    assert row["t1+f1416MHz"]["latency_ms"] == pytest.approx(10.0)  # the top: as measured
    assert row["t1+f708MHz"]["latency_ms"] == pytest.approx(10.0 * (0.5 * 2 + 0.5))
    cell = row["t2+f708MHz"]
    assert cell["power_w"] == pytest.approx(a53.power_w(freq_khz=708000, cores=2))
    assert cell["energy_mj"] == pytest.approx(cell["power_w"] * cell["latency_ms"])
    with pytest.raises(ValueError, match="already sets freq_khz"):
        expand_with_frequencies(out, a53)
    with pytest.raises(ValueError, match="memory_bound"):
        expand_with_frequencies(measured, a53, memory_bound=2)
