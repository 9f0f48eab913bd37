"""Machine conditions read from a fake /proc + /sys tree."""

from __future__ import annotations

import json
from pathlib import Path

from switchnas.plugins.conditions import during, governors, snapshot


def fake_tree(root: Path, *, load1: float, jiffies: list[int], freqs: dict[int, int],
              governor: str = "performance") -> Path:
    (root / "proc").mkdir(parents=True, exist_ok=True)
    (root / "proc" / "loadavg").write_text(f"{load1:.2f} 1.00 0.50 2/300 12345\n")
    cpu = " ".join(str(j) for j in jiffies)
    (root / "proc" / "stat").write_text(f"cpu  {cpu}\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1 2\n")
    for c, khz in freqs.items():
        d = root / "sys" / "devices" / "system" / "cpu" / f"cpu{c}" / "cpufreq"
        d.mkdir(parents=True, exist_ok=True)
        (d / "scaling_governor").write_text(governor + "\n")
        (d / "scaling_cur_freq").write_text(f"{khz}\n")
    return root


def test_snapshot_reads_the_fake_tree(tmp_path: Path) -> None:
    root = fake_tree(tmp_path, load1=0.5, jiffies=[100, 0, 50, 800, 10, 0, 0, 40, 5, 0],
                     freqs={0: 2_400_000, 1: 2_000_000})
    snap = snapshot(root, cpus=[0, 1, 2])  # cpu2 has no cpufreq folder: left out
    assert snap["loadavg"] == [0.5, 1.0, 0.5]
    # user nice system idle iowait irq softirq steal (guest time is inside user)
    assert snap["cpu_jiffies"] == {"total": 1000, "idle": 810, "steal": 40}
    assert snap["cpufreq"] == {"0": {"governor": "performance", "cur_khz": 2_400_000},
                               "1": {"governor": "performance", "cur_khz": 2_000_000}}
    assert governors(snap) == ["performance"]
    assert snap["cpu_count"] >= 1 and "monotonic" in snap
    json.dumps(snap)


def test_snapshot_never_fails_on_a_bare_tree(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "loadavg").write_text("garbage\n")
    (tmp_path / "proc" / "stat").write_text("cpu  x y z\n")
    snap = snapshot(tmp_path)
    assert not {"loadavg", "cpu_jiffies", "cpufreq"} & set(snap)
    assert governors(snap) == []
    d = during(snap, snapshot(tmp_path))
    assert d["steal_pct"] is None and d["load1"] is None and d["overloaded"] is False


def test_during_gives_steal_busy_load_and_overload(tmp_path: Path) -> None:
    a = snapshot(fake_tree(tmp_path / "a", load1=1.0, jiffies=[100, 0, 0, 900, 0, 0, 0, 0],
                           freqs={0: 2_000_000}), cpus=[0])
    b = snapshot(fake_tree(tmp_path / "b", load1=5.0, jiffies=[300, 0, 100, 1400, 0, 0, 0, 200],
                           freqs={0: 1_000_000}, governor="powersave"), cpus=[0])
    a["cpu_count"] = b["cpu_count"] = 4
    d = during(a, b)
    # 1000 jiffies elapsed: 200 stolen, 500 idle
    assert d["steal_pct"] == 20.0 and d["busy_pct"] == 50.0
    assert d["load1"] == 5.0 and d["overloaded"] is True
    assert d["freq_khz_before"] == 2_000_000 and d["freq_khz_after"] == 1_000_000
    assert d["governors"] == ["performance"]
    b["loadavg"] = [3.0, 1.0, 1.0]
    a["loadavg"] = [2.0, 1.0, 1.0]
    assert during(a, b)["overloaded"] is False
    json.dumps(d)


def test_the_real_machine_snapshot_is_json() -> None:
    snap = snapshot()
    json.dumps(snap)
    assert snap["cpu_count"] >= 1
