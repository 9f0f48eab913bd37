"""Energy of the ``cpu`` plugin from Linux RAPL, against a fake powercap tree (these VMs
hide RAPL): the counters, their wrap-around, and energy per inference in a batch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from switchnas.plugins.batch import BatchPolicy, measure_batch
from switchnas.plugins.cpu import CPUPlugin, RAPLReader

RANGE_UJ = 1_000_000


def fake_powercap(root: Path, start_uj: int = 0) -> Path:
    """A package zone, its core sub-zone and a psys zone (the last two must be ignored)."""
    for name, label in (("intel-rapl:0", "package-0"), ("intel-rapl:0:0", "core"),
                        ("intel-rapl:1", "psys")):
        z = root / name
        z.mkdir(parents=True)
        (z / "name").write_text(label + "\n")
        (z / "energy_uj").write_text(f"{start_uj}\n")
        (z / "max_energy_range_uj").write_text(f"{RANGE_UJ}\n")
    return root / "intel-rapl:0" / "energy_uj"


class Burner(nn.Module):
    """Adds ``uj`` to the fake package counter on every call, wrapping like RAPL does."""

    def __init__(self, counter: Path, uj: int):
        super().__init__()
        self.counter, self.uj = counter, uj
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value = int(self.counter.read_text())
        self.counter.write_text(f"{(value + self.uj) % RANGE_UJ}\n")
        return self.lin(x)


def test_reader_sums_packages_and_undoes_a_wrap(tmp_path: Path) -> None:
    counter = fake_powercap(tmp_path, start_uj=RANGE_UJ - 300)
    reader = RAPLReader(tmp_path)
    assert reader.available and reader.reason is None
    assert [z.name for z in reader.zones] == ["intel-rapl:0"]  # no sub-zone, no psys
    before = reader.read_uj()
    counter.write_text("700\n")  # wrapped: 300 to the top, then 700
    assert reader.delta_uj(before, reader.read_uj()) == 1000
    counter.write_text("1700\n")
    assert reader.delta_uj([700], reader.read_uj()) == 1000


def test_reader_says_why_when_there_is_no_rapl(tmp_path: Path) -> None:
    reader = RAPLReader(tmp_path / "missing")
    assert not reader.available and "does not expose RAPL" in str(reader.reason)
    (tmp_path / "intel-rapl:0").mkdir()
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("not a number\n")
    reader = RAPLReader(tmp_path)
    assert not reader.available and "not readable" in str(reader.reason)


def test_cpu_plugin_measures_energy_per_inference_across_a_wrap(tmp_path: Path) -> None:
    counter = fake_powercap(tmp_path, start_uj=RANGE_UJ - 2500)
    plugin = CPUPlugin(energy=True, energy_seconds=0.05, powercap_root=str(tmp_path),
                       min_repeats=3, max_repeats=5, warmup=1)
    assert plugin.describe()["energy"] == "rapl-package"
    x = torch.zeros(1, 4)
    m = plugin.measure(Burner(counter, 1000), x)
    assert m.energy_mj == pytest.approx(1.0)  # 1000 uJ per call, whatever wrapped
    assert m.meta["energy_runs"] >= 1 and "idle power" in m.meta["energy_scope"]
    # in a batch: each kept row gets its own energy phase
    res = measure_batch(plugin, [(Burner(counter, 2000), x), (Burner(counter, 500), x)],
                        policy=BatchPolicy(rounds=2, max_rounds=2, max_seconds=30))
    assert [r.energy_mj for r in res.measurements] == [pytest.approx(2.0), pytest.approx(0.5)]


def test_cpu_plugin_without_energy_is_unchanged_and_says_why_rapl_is_missing(
        tmp_path: Path) -> None:
    plain = CPUPlugin()
    assert "energy" not in plain.describe()
    assert plain.measure(nn.Linear(4, 4), torch.zeros(1, 4)).energy_mj is None
    blind = CPUPlugin(energy=True, energy_seconds=0.01, powercap_root=str(tmp_path / "none"),
                      min_repeats=3, max_repeats=5)
    m = blind.measure(nn.Linear(4, 4), torch.zeros(1, 4))
    assert m.energy_mj is None and "RAPL" in m.meta["energy_unavailable"]
    with pytest.raises(ValueError, match="energy_seconds"):
        CPUPlugin(energy_seconds=-1)
