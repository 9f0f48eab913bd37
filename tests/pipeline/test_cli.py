"""The ``switchnas`` command end to end: the tiny run, reuse, single stages, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from .conftest import TINY
from .test_export_io import check_hat_bundle_translates

CLI = [sys.executable, "-m", "switchnas.pipeline.cli"]


def switchnas(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args, "progress=false"], capture_output=True, text=True,
                          timeout=timeout)


# The session fixtures tiny_run and oneshot_run live in conftest.py (shared with
# test_report.py, so each tiny run is made once per session).

#: a smaller search loop and shorter latency batches than the tiny preset's, for the runs
#: that check another space's plumbing end to end (tiny_run checks the preset's loop)
SMALL_LOOP = ("explore.budget=12", "explore.batch=6", "explore.initial=6", "measure.rounds=4",
              "measure.max_rounds=6")


@pytest.mark.slow
def test_tiny_run_explores_with_real_evaluations(tiny_run: tuple[Path, str]) -> None:
    import optuna

    run_dir, out = tiny_run
    manifest = json.loads((run_dir / "bundle" / "manifest.json").read_text())
    family = json.loads((run_dir / "family" / "family.json").read_text())["members"]
    assert 1 <= len(manifest["members"]) == len(family) <= 3
    assert [m["id"] for m in manifest["members"]] == [m["id"] for m in family]
    for stage in ("train", "explore", "family"):
        assert (run_dir / stage / "stage.json").is_file(), stage
    for stage in ("profile", "evaluate", "fit", "search", "validate"):
        assert not (run_dir / stage).exists(), stage
    summary = json.loads((run_dir / "explore" / "stage.json").read_text())["summary"]
    # the tiny preset's budget: 30 real evaluations (10 random, then rounds of 10)
    assert summary["measured"] == summary["evaluations"] == 30
    assert summary["rounds"] >= 2 and 0 <= summary["noise_floor"] < 1
    every = json.loads((run_dir / "explore" / "all.json").read_text())["rows"]
    keys = {json.dumps(r["config"], sort_keys=True) for r in every}
    assert len(every) == len(keys) == 30  # no sub-network measured twice
    # every evaluation is a completed trial of the persistent study
    study = optuna.load_study(study_name=summary["study"],
                              storage=f"sqlite:///{run_dir / 'study.db'}")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 30
    rows = json.loads((run_dir / "explore" / "measured.json").read_text())["rows"]
    assert all(r["latency_low_ms"] <= r["latency_ms"] <= r["latency_high_ms"] for r in rows)
    assert {m["config"] == rows[m["validated_index"]]["config"] for m in family} == {True}
    # members are told apart by their measurement (fastest first, disjoint intervals), and a
    # family smaller than family.k=3 is one the measured rows could not make larger: some
    # measured row outside it would be distinguishable from every member otherwise
    for a, b in zip(family, family[1:], strict=False):
        assert a["latency_high_ms"] < b["latency_low_ms"], (a, b)
    if len(family) < 3:
        picked = {m["validated_index"] for m in family}
        apart = [i for i, r in enumerate(rows) if i not in picked and all(
            r["latency_high_ms"] < m["latency_low_ms"] or m["latency_high_ms"] < r["latency_low_ms"]
            for m in family) and r["accuracy"] > min(m["accuracy"] for m in family) + 0.5]
        assert not [i for i in apart if rows[i]["latency_ms"] < family[0]["latency_ms"]]
    assert (run_dir / "explore" / "pareto.png").stat().st_size > 1000
    assert "family (ofa_mbv3 on cpu" in out and f"bundle: {run_dir / 'bundle'}" in out
    assert "explore: 30 new evaluations" in out and "runtime demo" in out
    assert "latency trust: noise floor" in out


@pytest.mark.slow
def test_a_larger_budget_continues_the_study(tiny_run: tuple[Path, str], tmp_path: Path
                                             ) -> None:
    import shutil

    src, _ = tiny_run
    run_dir = tmp_path / "run"
    shutil.copytree(src, run_dir)
    proc = switchnas("explore", *TINY, f"hydra.run.dir={run_dir}", "explore.budget=40")
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((run_dir / "explore" / "stage.json").read_text())["summary"]
    assert summary["evaluations"] == 10 and summary["measured"] == 40
    every = json.loads((run_dir / "explore" / "all.json").read_text())["rows"]
    assert len({json.dumps(r["config"], sort_keys=True) for r in every}) == 40


@pytest.mark.slow
def test_oneshot_run_writes_bundle_and_reports(oneshot_run: tuple[Path, str]) -> None:
    run_dir, out = oneshot_run
    manifest = json.loads((run_dir / "bundle" / "manifest.json").read_text())
    # the measured front of a tiny run can be a single point (noise decides)
    family = json.loads((run_dir / "family" / "family.json").read_text())["members"]
    assert 1 <= len(manifest["members"]) == len(family) <= 3
    assert [m["id"] for m in manifest["members"]] == [m["id"] for m in family]
    for stage in ("train", "profile", "evaluate", "fit", "search", "validate", "family"):
        assert (run_dir / stage / "stage.json").is_file(), stage
    assert (run_dir / "validate" / "pareto.png").stat().st_size > 1000
    assert (run_dir / "study.db").is_file()  # the persistent study, outside the stage
    assert "family (ofa_mbv3 on cpu" in out and f"bundle: {run_dir / 'bundle'}" in out
    assert "held-out MAPE" in out and "runtime demo" in out
    # the profile was measured as one interleaved batch, with its noise floor, and the run
    # ends with the latency trust report beside the predictor's error
    prof = json.loads((run_dir / "profile" / "latency.json").read_text())
    assert prof["meta"]["protocol"]["name"] == "interleaved-reference"
    assert 0 <= prof["meta"]["repeatability"]["noise_floor"] < 1
    assert "measurement noise floor" in out and "latency trust: noise floor" in out
    rows = json.loads((run_dir / "validate" / "measured.json").read_text())["rows"]
    assert all(r["latency_low_ms"] <= r["latency_ms"] <= r["latency_high_ms"] for r in rows)
    report = json.loads((run_dir / "fit" / "report.json").read_text())
    assert {"mape", "rmse", "kendall"} <= set(report["latency"]["holdout"])
    # predictors are skops files with their encoding beside them; no pickle anywhere
    for name in ("latency", "accuracy"):
        meta = json.loads((run_dir / "fit" / f"{name}.skops.json").read_text())
        assert meta["encoding"] == report[name]["encoding"]
    assert not list(run_dir.rglob("*.pkl")) and not list(run_dir.rglob("*.pickle"))


@pytest.mark.slow
def test_bundle_member_equals_extracted_subnetwork(tiny_run: tuple[Path, str]) -> None:
    from safetensors.torch import load_file

    from switchnas.runtime import load
    from switchnas.supernets.ofa.mbv3 import OFAMobileNetV3Net

    run_dir, _ = tiny_run
    bundle = load(run_dir / "bundle")
    family = json.loads((run_dir / "family" / "family.json").read_text())["members"]
    bn_all = load_file(str(run_dir / "explore" / "bn_states.safetensors"))
    manifest = json.loads((run_dir / "bundle" / "manifest.json").read_text())
    ref = OFAMobileNetV3Net(**manifest["supernet"]["kwargs"])
    ref.load_state_dict(load_file(str(run_dir / "train" / "supernet.safetensors")))
    ref.eval()
    for m in family:
        prefix = f"{m['validated_index']}/"
        ref.load_bn_state({k[len(prefix):]: v for k, v in bn_all.items() if k.startswith(prefix)})
        sub = ref.extract(m["config"]).eval()
        x = ref.example_input(m["config"], 3)
        bundle.activate(m["id"])
        with torch.no_grad():
            assert torch.allclose(bundle(x), sub(x), atol=1e-5), m["id"]
        member = next(b for b in bundle.members if b.id == m["id"])
        assert member.config == m["config"]
        assert np.isclose(member.accuracy, m["accuracy"])


@pytest.mark.slow
def test_rerun_reuses_every_stage_and_stages_run_alone(tiny_run: tuple[Path, str]) -> None:
    run_dir, _ = tiny_run
    stale = run_dir / ".explore.k1ll3d00"  # what a killed run leaves behind
    (stale / "sub").mkdir(parents=True)
    proc = switchnas("family", *TINY, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not stale.exists()
    log = (run_dir / "cli.log").read_text() if (run_dir / "cli.log").exists() else proc.stderr
    for stage in ("train", "explore", "family"):
        assert f"stage {stage}: inputs unchanged" in proc.stderr + log, stage


@pytest.mark.slow
def test_infeasible_constraint_fails_cleanly(oneshot_run: tuple[Path, str]) -> None:
    run_dir, _ = oneshot_run
    before = (run_dir / "search" / "stage.json").read_text()
    proc = switchnas("search", *TINY, f"hydra.run.dir={run_dir}",
                     "search.max_latency_ms=0.0001")
    assert proc.returncode == 2
    assert "search.max_latency_ms=0.0001 is infeasible" in proc.stderr
    assert (run_dir / "search" / "stage.json").read_text() == before
    assert not [p for p in run_dir.iterdir()
                if p.name.startswith(".") and p.name not in (".hydra", ".lock")]


@pytest.mark.parametrize(("override", "message"), [
    ("supernet=nope", "supernet/nope"),
    ("hardware=nope", "hardware/nope"),
    ("search=nope", "search/nope"),
    ("profile.n=2", "profile.n=2"),
    ("supernet.net.ks=[3,9]", "choose a non-empty subset of [3, 5, 7]"),
    ("supernet.weights=/does/not/exist.pth", "no such file"),
])
def test_bad_input_is_named(tmp_path: Path, override: str, message: str) -> None:
    proc = switchnas("train" if "weights" in override or "ks" in override else "profile",
                     override, f"hydra.run.dir={tmp_path}", timeout=120)
    assert proc.returncode != 0
    assert message in proc.stderr + proc.stdout
    assert not (tmp_path / "train").exists() and not (tmp_path / "profile").exists()


def test_unknown_command_and_help() -> None:
    from switchnas.pipeline.cli import main

    assert main(["frobnicate"]) == 2
    assert main(["--help"]) == 0


@pytest.mark.slow
def test_official_checkpoint_and_imagefolder(tmp_path: Path) -> None:
    from PIL import Image

    from switchnas.supernets.ofa.mbv3 import OFAMobileNetV3Net

    torch.manual_seed(0)
    net = OFAMobileNetV3Net(n_classes=10, width_mult=0.5, resolutions=[24, 32])
    sd = {k.replace(".conv.", ".mobile_inverted_conv.", 1) if k.startswith("blocks.") else k: v
          for k, v in net.net.state_dict().items()}
    ckpt = tmp_path / "ofa_mbv3_tiny.pth"
    torch.save({"state_dict": sd}, ckpt)
    root = tmp_path / "images"
    rng = np.random.default_rng(0)
    for c in ("a", "b", "c"):
        (root / c).mkdir(parents=True)
        for i in range(8):
            Image.fromarray((rng.random((24, 24, 3)) * 255).astype("uint8")).save(root / c / f"{i}.png")
    run_dir = tmp_path / "run"
    proc = switchnas("evaluate", "preset=tiny", f"hydra.run.dir={run_dir}",
                     f"supernet.weights={ckpt}", "data=imagefolder", f"data.root={root}",
                     "data.n_classes=10", "data.image_size=32", "evaluate.n=4")
    assert proc.returncode == 0, proc.stderr[-2000:]
    train_summary = json.loads((run_dir / "train" / "stage.json").read_text())["summary"]
    assert train_summary == {"loaded": str(ckpt)}
    acc = json.loads((run_dir / "evaluate" / "accuracy.json").read_text())
    assert len(acc["rows"]) == 4 and all(0 <= r["score"] <= 100 for r in acc["rows"])


@pytest.mark.slow
@pytest.mark.parametrize("supernet", ["ofa_resnet50", "ofa_proxyless"])
def test_other_ofa_spaces_tiny_run(tmp_path: Path, supernet: str) -> None:
    from switchnas.runtime import load

    # a quarter of an epoch per phase (every phase of progressive shrinking still runs) and
    # one batch of BN recalibration per score. The preset's block is merged over
    # supernet.task, so a budget the preset sets is overridden inside the preset.
    proc = switchnas("run", "preset=tiny", f"supernet={supernet}", f"hydra.run.dir={tmp_path}",
                     *SMALL_LOOP, "supernet.presets.tiny.task.epochs_per_phase=0.25",
                     "+supernet.task.calib_batches=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"family ({supernet} on cpu" in proc.stdout
    bundle = load(tmp_path / "bundle")
    member = bundle.members[0]
    bundle.activate(member.id)
    x = torch.randn(2, 3, member.config["r"], member.config["r"])
    with torch.no_grad():
        ref = bundle.extract(member.id).eval()(x)
        assert torch.allclose(bundle(x), ref, atol=1e-5)


@pytest.mark.slow
def test_hat_tiny_run(tmp_path: Path) -> None:
    from switchnas.runtime import load

    proc = switchnas("run", "supernet=hat_wmt14ende", "preset=tiny", f"hydra.run.dir={tmp_path}",
                     *SMALL_LOOP)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert manifest["supernet"]["name"] == "hat" and "target" not in manifest["supernet"]
    assert "family (hat_wmt14ende on cpu, bleu" in proc.stdout
    bundle = load(tmp_path / "bundle")
    assert len(bundle.members) >= 1
    check_hat_bundle_translates(tmp_path, proc.stdout + proc.stderr)


@pytest.mark.slow
def test_reduced_space_fine_tune_and_search(tiny_run: tuple[Path, str], tmp_path: Path) -> None:
    from switchnas.search.reduce import read_space_file
    from switchnas.supernets.ofa.mbv3 import MobileNetV3Space

    run_dir, _ = tiny_run
    proc = switchnas("reduce", *TINY, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    space_file = run_dir / "reduce" / "space.json"
    reduced = MobileNetV3Space.from_dict(read_space_file(space_file))
    # the analytic flops target: no timing, what is tested is the space the search keeps to
    proc = switchnas("search", "preset=tiny", f"hydra.run.dir={tmp_path}", "hardware=flops",
                     f"supernet.space_file={space_file}",
                     f"supernet.weights={run_dir / 'train' / 'supernet.safetensors'}",
                     "supernet.finetune=true",
                     "supernet.presets.tiny.task.epochs_per_phase=0.2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = json.loads((tmp_path / "train" / "train_log.json").read_text())
    assert log["loaded"].endswith("supernet.safetensors") and log["phases"]
    front = json.loads((tmp_path / "search" / "front.json").read_text())["rows"]
    for row in front:
        reduced.validate(row["config"])  # every candidate lies in the reduced space


@pytest.mark.slow
def test_sweep_shares_artifacts_and_ends_with_a_table(tmp_path: Path, tiny_weights: Path
                                                      ) -> None:
    from switchnas.pipeline.sweep import sweep_rows

    # given (untrained) weights: the train stage loads them instead of training, and is
    # still an artifact the second job shares
    proc = switchnas("fit", "-m", "preset=tiny", "hardware=flops", "fit.holdout=0.2,0.3",
                     f"supernet.weights={tiny_weights}", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = sweep_rows(tmp_path)
    assert [r["job"] for r in rows] == ["0", "1"]
    assert rows[0]["shared"] == [] and "train" in rows[0]["stages"]
    # the second job differs only in fit: it copied train, profile and evaluate from the store
    assert rows[1]["shared"] == ["evaluate", "profile", "train"]
    assert rows[1]["overrides"][:3] == ["preset=tiny", "hardware=flops", "fit.holdout=0.3"]
    key = json.loads((tmp_path / "0" / "train" / "stage.json").read_text())["key"]
    assert (tmp_path / ".store" / "train" / key / "supernet.safetensors").is_file()
    assert ("| 1 | preset=tiny hardware=flops fit.holdout=0.3 "
            f"supernet.weights={tiny_weights} progress=") in proc.stdout
    assert "| no family |" in proc.stdout
    assert (tmp_path / "sweep.md").is_file() and (tmp_path / "sweep.json").is_file()
