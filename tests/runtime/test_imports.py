"""The runtime needs only torch, numpy, safetensors and the super-net's own module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FORBIDDEN = ("optuna", "hydra", "sklearn", "switchnas.search", "switchnas.predictors",
             "switchnas.pipeline", "switchnas.plugins")


@pytest.mark.slow  # a fresh interpreter importing torch and ofa: ~4 s
def test_runtime_imports_nothing_heavy(bundle_dir: Path) -> None:
    code = (
        "import sys, torch\n"
        "torch.set_num_threads(1)\n"
        "import switchnas.runtime as rt\n"
        f"b = rt.load({str(bundle_dir)!r}, switch='inplace')\n"
        "b.activate(b.members[-1].id)\n"
        "b(torch.zeros(1, 3, 32, 32))\n"
        "b.selector(target_ms=5).step(4.0)\n"
        "import switchnas.runtime.simulate\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r} "
        f"or any(m == f or m.startswith(f + '.') for f in {FORBIDDEN!r})]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
