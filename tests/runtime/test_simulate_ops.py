"""``switchnas simulate --ops``: member x operating-point replay, energy, governors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from switchnas.runtime import simulate as sim
from switchnas.runtime.manager import ModelSpec

from .test_manager import TABLE, make_table


def test_replay_ops_metrics_and_energy() -> None:
    spec = ModelSpec(name="a", table=TABLE, target_ms=12.0)
    load = sim.make_trace("step", 120, high=1.8)
    res = {r.policy: r for r in sim.compare_ops([spec], load, policies=sim.OPS_POLICIES,
                                                noise=0.0)}
    perf = res["performance"]
    # fixed member m3 at 1800 MHz: 6 ms x load, energy power * latency, no point switches
    assert perf.ran == ["m3"] * 120 and perf.points == ["f1800"] * 120
    assert perf.mean_latency_ms == pytest.approx(6.0 * float(np.mean(load)))
    assert perf.energy_total_mj == pytest.approx(1.2 * 6.0 * float(np.sum(load)))
    assert perf.point_switches == 0 and perf.energy_source == "model:test"
    assert res["powersave"].points == ["f600"] * 120
    assert res["static"].switches == 0
    assert res["schedutil"].point_switches > 0
    man = res["manager"]
    # it runs with less slack: at most the first request after the load rises misses
    assert man.point_switches > 0 and man.miss_rate * 120 <= 1
    sched = res["schedutil"]
    assert man.miss_rate <= sched.miss_rate
    assert man.energy_total_mj <= 1.01 * sched.energy_total_mj
    assert man.energy_total_mj < 0.85 * perf.energy_total_mj
    assert "points" not in man.row() and "ran" not in man.row()


def test_two_models_share_the_device() -> None:
    """Processor sharing: with two models each request waits for the other's share."""
    a = ModelSpec(name="a", table=TABLE, target_ms=30.0)
    b = ModelSpec(name="b", table=TABLE, target_ms=30.0)
    solo = sim.replay_ops([a], [1.0] * 10, policy="performance", noise=0.0)[0]
    pair = sim.replay_ops([a, b], {"a": [1.0] * 10, "b": [1.0] * 10}, policy="performance",
                          noise=0.0, options={"members": {"b": "m0"}})
    assert solo.mean_latency_ms == pytest.approx(6.0)
    assert pair[0].mean_latency_ms == pytest.approx(6.0 + 2.0)  # m3 waits for m0's 2 ms
    assert pair[1].mean_latency_ms == pytest.approx(2.0 + 2.0)  # m0 shares its 2 ms
    man = sim.replay_ops([a, b], [1.0] * 30, policy="manager", noise=0.0)
    assert man[0].points == man[1].points  # one point for the device
    with pytest.raises(ValueError, match="same length"):
        sim.replay_ops([a, b], {"a": [1.0] * 3, "b": [1.0] * 4}, policy="manager")
    with pytest.raises(ValueError, match="unknown policy 'oracle'"):
        sim.replay_ops([a], [1.0] * 3, policy="oracle")
    with pytest.raises(ValueError, match=r"unknown options \['bogus'\]"):
        sim.replay_ops([a], [1.0] * 3, policy="schedutil", options={"bogus": 1})


def test_cli_ops(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    TABLE.write(tmp_path / "cam.json")
    make_table([1.0, 2.0], [0.5, 0.7]).write(tmp_path / "mic.json")
    out = tmp_path / "r.json"
    rc = sim.main(["--ops", str(tmp_path / "cam.json"), "--ops", str(tmp_path / "mic.json"),
                   "--target-ms", "15", "--n", "60", "--trace", "periodic",
                   "--policy", "manager,schedutil,feedback", "--json", str(out)])
    assert rc == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert "energy_mj_per_request" in text and "model:test" in text and "2 model(s)" in text
    data = json.loads(out.read_text())
    assert [(r["policy"], r["model"]) for r in data["results"]] == [
        ("manager", "cam"), ("manager", "mic"), ("schedutil", "cam"), ("schedutil", "mic"),
        ("feedback", "cam"), ("feedback", "mic")]
    assert data["energy_source"] == "model:test"
    assert sim.main(["--ops", str(tmp_path / "cam.json"), "--objective", "energy",
                     "--accuracy-floor", "0.7", "--n", "30"]) == 0


def test_cli_ops_errors(tmp_path: Path, bundle_dir: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    TABLE.write(tmp_path / "t.json")
    assert sim.main(["--ops", str(tmp_path / "t.json"), "--policy", "oracle"]) == 2
    assert "unknown policy 'oracle'" in capsys.readouterr().err
    # the bundle's members (m0..m2) are not the table's (m0..m3)
    assert sim.main(["--ops", str(tmp_path / "t.json"), "--bundle", str(bundle_dir)]) == 2
    assert "need accuracies" in capsys.readouterr().err
    assert sim.main(["--ops", str(tmp_path / "nope.json")]) == 2
    assert "nope.json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        sim.main(["--trace", "step"])  # neither --bundle nor --ops
    assert "give --bundle" in capsys.readouterr().err
