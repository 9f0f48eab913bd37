"""``switchnas run supernet=fluid preset=tiny``: every stage, and the bundle loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch


@pytest.mark.slow
def test_tiny_run_exports_a_loadable_bundle(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "switchnas.pipeline.cli", "run", "supernet=fluid", "preset=tiny",
         "hardware=cpu", f"hydra.run.dir={run_dir}", "progress=false"],
        capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "family (fluid on cpu" in proc.stdout
    from switchnas.runtime import load

    bundle = load(run_dir / "bundle")
    assert bundle.members
    for m in bundle.members:
        bundle.activate(m.id)
        assert sum(m.config["on"]) >= 1
        assert bundle(torch.randn(1, 3, 32, 32)).shape == (1, 10)
