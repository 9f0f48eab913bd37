"""``explore`` with more than two objectives, several hardware targets and constraints:
the tiny run end to end on untrained weights (loading them is instant), cheap targets."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from switchnas.plugins.base import Measurement
from switchnas.plugins.flops import FlopsPlugin

CLI = [sys.executable, "-m", "switchnas.pipeline.cli"]
ROOT = Path(__file__).resolve().parents[2]
#: proxy latency on the flops target (ms at 1 GMAC/s); the tiny space spans about 1 to 5.5
FLOPS_LIMIT = 2.0
#: a small loop, short latency batches and one batch of BN recalibration per score
# The end-to-end tests take a minute or two on an idle 2-core machine, many more on a
# crowded one: their timeout is wider than the suite's.
SMALL = ["preset=tiny", "explore.budget=12", "explore.batch=6", "explore.initial=6",
         "measure.rounds=4", "measure.max_rounds=6", "+supernet.task.calib_batches=1",
         "runtime_demo.enabled=false"]


class EnergyFlopsPlugin(FlopsPlugin):
    """The flops plugin that also reports an energy (a fixed cost plus a share of the
    parameters: another trade-off than the MACs)."""

    def measure(self, module: Any, example_input: Any) -> Measurement:
        m = super().measure(module, example_input)
        energy = 0.2 + m.meta["params"] * 1e-5 + 0.1 * m.median_ms
        return Measurement(samples_ms=m.samples_ms, energy_mj=energy, meta=m.meta)


def switchnas(*args: str, timeout: float = 1400) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args, "progress=false"], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Untrained tiny OFA-MobileNetV3 weights, so the train stage only loads them."""
    import torch
    from safetensors.torch import save_file

    from switchnas.supernets.ofa.mbv3 import OFAMobileNetV3Net

    torch.manual_seed(0)
    net = OFAMobileNetV3Net(n_classes=10, width_mult=0.5, resolutions=[24, 32])
    path = tmp_path_factory.mktemp("weights") / "supernet.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


@pytest.fixture(scope="module")
def targets_run(tmp_path_factory: pytest.TempPathFactory, weights: Path) -> Path:
    run_dir = tmp_path_factory.mktemp("targets")
    proc = switchnas("export", *SMALL, f"hydra.run.dir={run_dir}", f"supernet.weights={weights}",
                     "explore.targets=[flops]",
                     "explore.objectives=[accuracy,latency,latency@flops]",
                     f"explore.constraints={{latency@flops:{FLOPS_LIMIT}}}",
                     "family.accuracy_tolerance=0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_rows_carry_every_target_and_the_front_meets_the_constraint(targets_run: Path
                                                                    ) -> None:
    measured = json.loads((targets_run / "explore" / "measured.json").read_text())
    assert measured["objectives"] == ["latency", "accuracy", "latency@flops"]
    assert measured["constraints"] == {"latency@flops": FLOPS_LIMIT}
    assert measured["hardware_key"] == "cpu" and "flops" in measured["targets"]
    rows = measured["rows"]
    assert rows
    for r in rows:
        assert set(r["latencies"]) == {"cpu", "flops"}
        assert r["latencies"]["cpu"] == r["latency_ms"]
        assert r["latencies"]["flops"] <= FLOPS_LIMIT, "a violating row is on the front"
    every = json.loads((targets_run / "explore" / "all.json").read_text())
    assert every["objectives"][2] == "latency_ms@flops"
    assert len(every["rows"]) == 12
    for r in every["rows"]:
        assert r["objectives"][2] == r["latencies"]["flops"]
        assert r["feasible"] == (r["latencies"]["flops"] <= FLOPS_LIMIT)
    # the first round holds the largest sub-network, which violates: recorded, not on the front
    assert not all(r["feasible"] for r in every["rows"])
    summary = json.loads((targets_run / "explore" / "stage.json").read_text())["summary"]
    assert summary["objectives"] == measured["objectives"] and summary["infeasible"] >= 1
    # a study of its own: never mixed with a plain run's two-objective study
    assert "/latency,accuracy,latency@flops/flops=" in summary["study"]
    # pareto flag: non-dominated over all three objectives (test split's score)
    obj = np.array([[r["latency_ms"], -r["accuracy"], r["latencies"]["flops"]] for r in rows])
    for i, r in enumerate(rows):
        dominated = np.any(np.all(obj <= obj[i], axis=1) & np.any(obj < obj[i], axis=1))
        assert r["pareto"] == (not dominated)
    assert (targets_run / "explore" / "pareto.png").stat().st_size > 1000


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_family_is_pareto_good_on_both_targets(targets_run: Path) -> None:
    rows = json.loads((targets_run / "explore" / "measured.json").read_text())["rows"]
    members = json.loads((targets_run / "family" / "family.json").read_text())["members"]
    assert 1 <= len(members) <= 3
    obj = np.array([[r["latency_ms"], -r["accuracy"], r["latencies"]["flops"]] for r in rows])
    for m in members:
        assert set(m["latencies"]) == {"cpu", "flops"}
        x = obj[m["validated_index"]]
        dominated = np.any(np.all(obj <= x, axis=1) & np.any(obj < x, axis=1))
        assert not dominated, f"member {m['id']} is dominated on (latency, accuracy, flops)"
    # the bundle carries each member's latency on every target
    manifest = json.loads((targets_run / "bundle" / "manifest.json").read_text())
    for bm, fm in zip(manifest["members"], members, strict=True):
        assert bm["latency"] == pytest.approx(fm["latencies"])


@pytest.mark.parametrize(("overrides", "message"), [
    (["explore.objectives=[accuracy,latency,latency@nowhere]"],
     "unknown objective 'latency@nowhere' ('nowhere' is not in explore.targets=[]"),
    (["explore.objectives=[accuracy,latency,speed]"],
     "unknown objective 'speed'; allowed: ['accuracy', 'latency', 'energy']"),
    (["explore.targets=[flops]", "explore.objectives=[accuracy,latency,energy@flop]"],
     "allowed: ['accuracy', 'latency', 'energy', 'latency@flops', 'energy@flops']"),
    (["explore.objectives=[accuracy,energy]"], "must include 'latency'"),
    (["explore.targets=[nowhere]"], "unknown hardware target 'nowhere'"),
    (["explore.targets=[flops,flops]"], "names a target twice"),
    (["explore.constraints={energy:3}"], "'energy' is not an objective"),
    (["explore.constraints={latency:fast}"], "must be null or map objective names"),
])
def test_bad_objectives_targets_and_constraints_are_config_errors(
        tmp_path: Path, overrides: list[str], message: str) -> None:
    from hydra import compose, initialize_config_module

    from switchnas.pipeline.context import ConfigError, Context
    from switchnas.pipeline.schema import validate_config

    with initialize_config_module("switchnas.conf", version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_config(Context(cfg, tmp_path).cfg, command="run")


def test_a_bad_objective_name_stops_the_command_before_any_work(tmp_path: Path) -> None:
    proc = switchnas("explore", "preset=tiny", f"hydra.run.dir={tmp_path / 'run'}",
                     "explore.objectives=[accuracy,latency,latency@nowhere]", timeout=120)
    assert proc.returncode == 2 and "'latency@nowhere'" in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "run" / "train").exists()


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_energy_on_a_plugin_without_energy_is_an_error_naming_it(tmp_path: Path,
                                                                  weights: Path) -> None:
    # declared: the cpu plugin with energy off says so before any work
    proc = switchnas("explore", *SMALL, f"hydra.run.dir={tmp_path / 'a'}",
                     "explore.objectives=[accuracy,latency,energy]", timeout=120)
    assert proc.returncode == 2 and "'cpu'" in proc.stderr and "energy" in proc.stderr
    assert not (tmp_path / "a" / "train").exists()
    # found at the first batch: flops reports no energy_mj
    proc = switchnas("explore", *SMALL, f"hydra.run.dir={tmp_path / 'b'}", "hardware=flops",
                     f"supernet.weights={weights}", "explore.objectives=[accuracy,latency,energy]")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "'flops'" in proc.stderr and "measured none" in proc.stderr


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_energy_as_an_objective_where_the_plugin_reports_it(tmp_path: Path,
                                                            weights: Path) -> None:
    run_dir = tmp_path / "run"
    proc = switchnas("family", *SMALL, f"hydra.run.dir={run_dir}", "hardware=flops",
                     f"hardware._target_={__name__}.EnergyFlopsPlugin",
                     f"supernet.weights={weights}", "explore.objectives=[accuracy,latency,energy]")
    assert proc.returncode == 0, proc.stderr[-3000:]
    measured = json.loads((run_dir / "explore" / "measured.json").read_text())
    assert measured["objectives"] == ["latency", "accuracy", "energy"]
    rows = measured["rows"]
    for r in rows:
        assert r["energy_mj"] == r["energies_mj"]["flops"] > 0.2
    every = json.loads((run_dir / "explore" / "all.json").read_text())["rows"]
    assert all(r["objectives"][2] == r["energy_mj"] for r in every)
    members = json.loads((run_dir / "family" / "family.json").read_text())["members"]
    assert members and all(m["energy_mj"] > 0 for m in members)
