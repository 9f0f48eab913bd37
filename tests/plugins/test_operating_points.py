"""Operating points of the ``cpu`` plugin (real threads and affinity; cpufreq from a fake
sysfs tree) and the member x operating-point table of :func:`measure_operating_points`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from switchnas.plugins.base import Measurement
from switchnas.plugins.batch import BatchPolicy
from switchnas.plugins.cpu import CPUPlugin
from switchnas.plugins.cpu import RAPLReader as CpuRAPL
from switchnas.plugins.operating_points import measure_operating_points
from switchnas.runtime.energy import RAPLReader, get_power_model
from switchnas.runtime.knobs import OperatingPoint, cpu_list, validate_point_table

ALLOWED = sorted(os.sched_getaffinity(0))
QUICK = BatchPolicy(rounds=2, max_rounds=2, warmup_runs=1, max_seconds=20)


@pytest.fixture(autouse=True)
def restore_threads():
    before = (torch.get_num_threads(), os.sched_getaffinity(0))
    yield
    torch.set_num_threads(before[0])
    os.sched_setaffinity(0, before[1])


def fake_cpufreq(root: Path) -> Path:
    for cpu in ALLOWED:
        d = root / f"cpu{cpu}" / "cpufreq"
        d.mkdir(parents=True)
        for name, value in (("scaling_governor", "schedutil"),
                            ("scaling_available_governors", "schedutil userspace"),
                            ("scaling_setspeed", "<unsupported>"),
                            ("scaling_available_frequencies", "1000000 2000000")):
            (d / name).write_text(value + "\n")
    return root


def workloads() -> dict[str, tuple[nn.Module, torch.Tensor]]:
    torch.manual_seed(0)
    return {"small": (nn.Linear(8, 8), torch.zeros(1, 8)),
            "large": (nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64)),
                      torch.zeros(4, 64))}


def test_rapl_reader_moved_to_the_runtime_and_is_the_same_class() -> None:
    assert CpuRAPL is RAPLReader


def test_cpu_plugin_points_switch_threads_affinity_and_describe(tmp_path: Path) -> None:
    plugin = CPUPlugin(threads=1, cpufreq_root=str(tmp_path / "none"))
    names = [p.name for p in plugin.operating_points()]
    assert names == [f"t{k}-cpu{cpu_list(ALLOWED[:k])}" for k in range(1, len(ALLOWED) + 1)]
    assert "does not exist" in plugin.knob_notes[0]  # no cpufreq: threads only
    assert "operating_point" not in plugin.describe()
    plugin.set_operating_point(names[-1])
    assert plugin.threads == len(ALLOWED) and torch.get_num_threads() == len(ALLOWED)
    assert plugin.describe()["operating_point"] == names[-1]
    plugin.set_operating_point(names[0])
    assert os.sched_getaffinity(0) == {ALLOWED[0]}
    # measurements run at the point's thread count
    m = plugin.measure(nn.Linear(4, 4), torch.zeros(1, 4))
    assert m.meta["threads_observed"] == 1
    plugin.restore_operating_point()
    assert os.sched_getaffinity(0) == set(ALLOWED) and plugin.threads == 1
    assert "operating_point" not in plugin.describe()
    with pytest.raises(ValueError, match=r"unknown operating point 'fast'.*t1-cpu"):
        plugin.set_operating_point("fast")


@pytest.mark.skipif(len(ALLOWED) < 2, reason="one CPU: one placement")
def test_cpu_plugin_can_place_threads_on_each_core(tmp_path: Path) -> None:
    plugin = CPUPlugin(placement="windows", cpufreq_root=str(tmp_path / "none"))
    names = [p.name for p in plugin.operating_points()]
    assert [f"t1-cpu{c}" for c in ALLOWED] == names[:len(ALLOWED)]
    plugin.set_operating_point(f"t1-cpu{ALLOWED[1]}")
    assert os.sched_getaffinity(0) == {ALLOWED[1]}
    plugin.restore_operating_point()
    with pytest.raises(ValueError, match="placement"):
        CPUPlugin(placement="spread")


def test_cpu_plugin_adds_dvfs_where_cpufreq_is_writable(tmp_path: Path) -> None:
    root = fake_cpufreq(tmp_path)
    plugin = CPUPlugin(cpufreq_root=str(root))
    names = [p.name for p in plugin.operating_points()]
    assert len(names) == 2 * len(ALLOWED) and names[1] == "t1-cpu" + str(ALLOWED[0]) + \
        "+f2000MHz"
    plugin.set_operating_point(names[0])
    d = root / f"cpu{ALLOWED[0]}" / "cpufreq"
    assert (d / "scaling_governor").read_text() == "userspace"
    assert (d / "scaling_setspeed").read_text() == "1000000"
    plugin.restore_operating_point()
    assert (d / "scaling_governor").read_text() == "schedutil"


def test_table_covers_every_member_at_every_point_with_modelled_energy(tmp_path: Path
                                                                       ) -> None:
    plugin = CPUPlugin(cpufreq_root=str(tmp_path / "none"))
    points = plugin.operating_points()
    threads_before, cpus_before = torch.get_num_threads(), os.sched_getaffinity(0)
    table = measure_operating_points(plugin, workloads(), energy="model:rk3399-a53",
                                     policy=QUICK)
    assert validate_point_table(table) == table
    assert table["energy_source"] == "model:rk3399-a53"
    assert set(table["members"]) == {"small", "large"}
    assert [p["name"] for p in table["points"]] == [p.name for p in points]
    model = get_power_model("rk3399-a53")
    for row in table["members"].values():
        assert set(row) == {p.name for p in points}
        for p in points:
            cell = row[p.name]
            assert cell["latency_ms"] > 0
            assert cell["power_w"] == pytest.approx(model.point_power_w(p.settings))
            assert cell["energy_mj"] == pytest.approx(cell["power_w"] * cell["latency_ms"])
    assert table["meta"]["protocol"] == "interleaved-points"
    assert table["meta"]["power_model"]["name"] == "rk3399-a53"
    assert "operating_point" not in table["meta"]["plugin"]
    # the plugin and the process are as they were
    assert torch.get_num_threads() == threads_before and os.sched_getaffinity(0) == cpus_before
    assert plugin.operating_point is None


class Spy(CPUPlugin):
    """The cpu plugin, recording every switch of operating point."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.switches: list[str] = []

    def set_operating_point(self, name: str) -> None:
        self.switches.append(name)
        super().set_operating_point(name)


@pytest.mark.skipif(len(ALLOWED) < 2, reason="one CPU: one operating point")
def test_points_are_interleaved_within_one_batch(tmp_path: Path) -> None:
    plugin = Spy(cpufreq_root=str(tmp_path / "none"))
    measure_operating_points(plugin, workloads(), energy="model:generic",
                             policy=BatchPolicy(rounds=3, max_rounds=3, max_seconds=20))
    # blocked measurement would switch once per point; interleaved rounds switch back and forth
    changes = sum(a != b for a, b in zip(plugin.switches, plugin.switches[1:], strict=False))
    assert changes >= 3 * len(plugin.operating_points())


def fake_rapl(root: Path) -> Path:
    """One RAPL package zone under ``root/powercap``; returns the zone."""
    zone = root / "powercap" / "intel-rapl:0"
    zone.mkdir(parents=True)
    (zone / "name").write_text("package-0\n")
    (zone / "energy_uj").write_text("0\n")
    (zone / "max_energy_range_uj").write_text("1000000000\n")
    return zone


def test_measured_energy_comes_from_rapl(tmp_path: Path) -> None:
    zone = fake_rapl(tmp_path)

    class Burner(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            c = zone / "energy_uj"
            c.write_text(f"{int(c.read_text()) + 3000}\n")
            return x

    plugin = CPUPlugin(cpufreq_root=str(tmp_path / "none"))
    table = measure_operating_points(plugin, {"b": (Burner(), torch.zeros(1, 2))},
                                     points=[plugin.operating_points()[0].name],
                                     energy="auto", energy_seconds=0.02,
                                     powercap_root=str(tmp_path / "powercap"), policy=QUICK)
    assert table["energy_source"] == "rapl"
    (cell,) = table["members"]["b"].values()
    assert cell["energy_mj"] == pytest.approx(3.0) and cell["power_w"] > 0


class Scaled:
    """A plugin without ``prepare``: latency = the member's base x its point's factor."""

    name = "scaled"
    deterministic = True

    def __init__(self) -> None:
        self.points = [OperatingPoint(name="slow", settings={"factor": 3.0}),
                       OperatingPoint(name="fast", settings={"factor": 1.0})]
        self.at = self.points[1]
        self.restored = False

    def describe(self) -> dict[str, Any]:
        return {"plugin": self.name, "operating_point": self.at.name}

    def measure(self, module: Any, example_input: Any) -> Measurement:
        return Measurement(samples_ms=(module * self.at.settings["factor"],))

    def operating_points(self) -> list[OperatingPoint]:
        return list(self.points)

    def set_operating_point(self, name: str) -> None:
        self.at = next(p for p in self.points if p.name == name)

    def restore_operating_point(self) -> None:
        self.restored = True


def test_plugins_without_prepare_are_measured_point_by_point(tmp_path: Path) -> None:
    plugin = Scaled()
    table = measure_operating_points(plugin, {"a": (2.0, None), "b": (5.0, None)},
                                     energy="model:generic", passes=3)
    assert table["meta"]["protocol"] == "per-point" and plugin.restored
    assert {m: {p: c["latency_ms"] for p, c in row.items()}
            for m, row in table["members"].items()} == {
        "a": {"slow": 6.0, "fast": 2.0}, "b": {"slow": 15.0, "fast": 5.0}}
    assert table["meta"]["plugin"] == {"plugin": "scaled"}
    zone = fake_rapl(Path(tmp_path))
    with pytest.raises(ValueError, match="needs a plugin with prepare"):
        measure_operating_points(plugin, {"a": (2.0, None)}, energy="rapl",
                                 powercap_root=str(zone.parent))


def test_bad_requests_are_refused(tmp_path: Path) -> None:
    plugin = CPUPlugin(cpufreq_root=str(tmp_path / "none"))
    w = {"a": (nn.Linear(2, 2), torch.zeros(1, 2))}
    with pytest.raises(ValueError, match=r"unknown operating point 'turbo'.*t1-cpu"):
        measure_operating_points(plugin, w, ["turbo"])
    with pytest.raises(ValueError, match="energy must be"):
        measure_operating_points(plugin, w, energy="joules")
    with pytest.raises(ValueError, match="does not expose RAPL"):
        measure_operating_points(plugin, w, energy="rapl", powercap_root=str(tmp_path))
    with pytest.raises(ValueError, match="unknown power model"):
        measure_operating_points(plugin, w, energy="model:nope")
    with pytest.raises(ValueError, match="at least one member"):
        measure_operating_points(plugin, {})
    with pytest.raises(TypeError, match="no operating_points"):
        measure_operating_points(object(), w)
