"""``switchnas run supernet=groupnet preset=tiny`` end to end, and its bundle."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

CLI = [sys.executable, "-m", "switchnas.pipeline.cli"]


@pytest.mark.slow
def test_tiny_run_exports_a_bundle_that_loads(tmp_path: Path) -> None:
    from switchnas.runtime import load

    proc = subprocess.run([*CLI, "run", "supernet=groupnet", "preset=tiny", "hardware=cpu",
                           "supernet.task.threads=1", f"hydra.run.dir={tmp_path}",
                           "progress=false"], capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "family (groupnet on cpu, top1" in proc.stdout
    log = json.loads((tmp_path / "train" / "train_log.json").read_text())
    assert [s["groups"] for s in log["stages"]] == [1, 2, 3, 4]
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert manifest["supernet"]["name"] == "groupnet"
    assert manifest["weights"]["layout"] == "slices"
    bundle = load(tmp_path / "bundle")
    top = max(max(m.config["layer_g"] + [m.config["g"]]) for m in bundle.members)
    with safe_open(str(tmp_path / "bundle" / "weights.safetensors"), "pt") as f:
        groups_stored = {int(m.group(1)) for k in f.keys()  # noqa: SIM118
                         if (m := re.search(r"layers\.\d+\.(\d+)\.", k))}
    assert max(groups_stored) == top - 1  # later groups' weights are not in the bundle
    inplace = load(tmp_path / "bundle", switch="inplace")  # the super-net, later groups absent
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        for m in bundle.members:
            bundle.activate(m.id)
            inplace.activate(m.id)
            assert torch.equal(bundle(x), inplace(x)), m.id
