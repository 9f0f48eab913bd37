"""Session fixtures of ``tests/pipeline``: the tiny runs, made once per session and shared
by every module that reads a finished run directory (``test_cli``, ``test_report``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "switchnas.pipeline.cli"]


# a tiny run takes minutes on idle cores, and its training alone took over 9 minutes on a
# 2-core machine shared with other jobs: the limit only catches a hung run
def _switchnas(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args, "progress=false"], capture_output=True, text=True,
                          timeout=timeout)


#: The tiny preset as the session's shared runs use it, and every command that continues
#: one of them must repeat (so its stages keep their keys): half the preset's training and
#: two batches of batch-norm recalibration per score. What these runs check is the chain's
#: plumbing and the artefacts' contracts, not the accuracy a tiny run reaches.
TINY = ("preset=tiny", "supernet.presets.tiny.task.epochs_per_phase=0.5",
        "+supernet.task.calib_batches=2")


@pytest.fixture(scope="session")
def artifact_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One content-addressed artifact store (``store=<path>``) for the session's tiny runs,
    so that the tiny super-network is trained once for ``tiny_run`` and ``oneshot_run``."""
    return tmp_path_factory.mktemp("store")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, artifact_store: Path
             ) -> tuple[Path, str]:
    """``switchnas run`` with :data:`TINY` (the search loop, explore): its run dir and
    stdout."""
    run_dir = tmp_path_factory.mktemp("tiny")
    proc = _switchnas("run", *TINY, f"hydra.run.dir={run_dir}", f"store={artifact_store}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir, proc.stdout


@pytest.fixture(scope="session")
def oneshot_run(tmp_path_factory: pytest.TempPathFactory, artifact_store: Path
                ) -> tuple[Path, str]:
    """The one-pass chain (profile, evaluate, fit, search, validate) instead of the loop.

    Its ``train`` stage has the same key as ``tiny_run``'s: whichever of the two runs
    second copies the trained super-network from the session's artifact store."""
    run_dir = tmp_path_factory.mktemp("oneshot")
    proc = _switchnas("run", *TINY, "explore.enabled=false", f"hydra.run.dir={run_dir}",
                      f"store={artifact_store}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir, proc.stdout


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Untrained weights of the tiny preset's OFA-MobileNetV3 (``supernet.weights=``): a
    run given them only loads them in its ``train`` stage, for tests of plumbing that need
    *a* super-network, not a trained one."""
    import torch
    from safetensors.torch import save_file

    from switchnas.supernets.ofa.mbv3 import OFAMobileNetV3Net

    torch.manual_seed(0)
    net = OFAMobileNetV3Net(n_classes=10, width_mult=0.5, resolutions=[24, 32])
    path = tmp_path_factory.mktemp("weights") / "supernet.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path
