"""A small OFA-MobileNetV3 bundle (untrained weights, distinct BN statistics per member)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> Any:
    """Two cores shared by several jobs: more threads only oversubscribe them."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_family(k: int = 3, seed: int = 0) -> tuple[Any, list[dict[str, Any]]]:
    from switchnas.supernets.ofa.mbv3 import OFAMobileNetV3Net

    torch.manual_seed(seed)
    net = OFAMobileNetV3Net(n_classes=10, width_mult=0.5, resolutions=[32, 40])
    net.eval()
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    members = []
    for i in range(k):
        cfg = net.space.sample(rng)
        bn = {key: (v + torch.rand(v.shape, generator=gen) if v.is_floating_point() else v)
              for key, v in net.bn_state().items()}
        members.append({"id": f"m{i}", "config": cfg, "accuracy": 0.5 + 0.1 * i,
                        "latency_ms": 2.0 + 3.0 * i, "bn_state": bn})
    return net, members


@pytest.fixture(scope="session")
def family() -> tuple[Any, list[dict[str, Any]]]:
    return make_family()


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory, family: Any) -> Path:
    from switchnas.runtime import write_bundle

    net, members = family
    return write_bundle(tmp_path_factory.mktemp("bundles") / "b", supernet=net,
                        members=members, hardware={"key": "cpu-2t", "threads": 2},
                        extra={"note": "test"})


@pytest.fixture()
def bundle_copy(bundle_dir: Path, tmp_path: Path) -> Path:
    """A private copy a test may corrupt."""
    return Path(shutil.copytree(bundle_dir, tmp_path / "copy"))
