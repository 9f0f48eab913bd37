"""OFA super-networks: extraction equals in-place activation, BN state, checkpoints, data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from switchnas.supernets.base import SuperNet
from switchnas.supernets.ofa.common import OFASuperNet, load_ofa_checkpoint
from switchnas.supernets.ofa.data import DigitsData, ImageFolderData
from switchnas.supernets.ofa.mbv3 import OFAMobileNetV3Net
from switchnas.supernets.ofa.proxyless import OFAProxylessNet
from switchnas.supernets.ofa.resnet50 import OFAResNet50Net
from switchnas.supernets.ofa.training import ProgressiveShrinking

SPACES = {
    "ofa_mbv3": lambda: OFAMobileNetV3Net(n_classes=10, width_mult=0.5, resolutions=[24, 32]),
    "ofa_proxyless": lambda: OFAProxylessNet(n_classes=10, width_mult=0.5, resolutions=[24, 32]),
    "ofa_resnet50": lambda: OFAResNet50Net(n_classes=10, width_mult_list=[0.1, 0.15, 0.2],
                                           resolutions=[24, 32]),
}


@pytest.fixture(scope="module", params=sorted(SPACES))
def net(request: pytest.FixtureRequest) -> OFASuperNet:
    torch.manual_seed(0)
    return SPACES[request.param]().eval()


def test_protocol(net: OFASuperNet) -> None:
    assert isinstance(net, SuperNet)
    spec = net.spec()
    module, _, cls = spec["target"].partition(":")
    assert getattr(__import__(module, fromlist=[cls]), cls) is type(net)
    assert spec["kwargs"]["resolutions"] == [24, 32]
    rebuilt = type(net)(**spec["kwargs"])
    assert rebuilt.space.to_dict() == net.space.to_dict()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_extract_equals_activated(net: OFASuperNet, seed: int) -> None:
    cfg = net.space.sample(np.random.default_rng(seed))
    x = net.example_input(cfg, 2)
    net.activate(cfg)
    with torch.no_grad():
        ref = net(x)
        sub = net.extract(cfg).eval()
        out = sub(x)
    assert torch.allclose(ref, out, atol=1e-5)
    # a smaller network has fewer parameters than the super-network
    assert sum(p.numel() for p in sub.parameters()) < sum(p.numel() for p in net.parameters())


def test_bn_state_round_trip(net: OFASuperNet) -> None:
    state = net.bn_state()
    assert state and all(k.endswith(("running_mean", "running_var", "num_batches_tracked"))
                         for k in state)
    cfg = net.space.smallest()
    before = net.bn_state()
    net.recalibrate_bn(cfg, [torch.randn(8, 3, 24, 24) * 3 + 1])
    changed = net.bn_state()
    assert any(not torch.equal(before[k], changed[k]) for k in before)
    net.load_bn_state(before)
    assert all(torch.equal(before[k], v) for k, v in net.bn_state().items())


def test_invalid_config_is_refused(net: OFASuperNet) -> None:
    with pytest.raises(ValueError, match="not allowed"):
        net.activate({**net.space.largest(), "r": 999})


def test_checkpoint_formats(tmp_path: Path) -> None:
    # OFA's released files: {"state_dict": ...} with the original "mobile_inverted_conv" names
    net = SPACES["ofa_mbv3"]()
    sd = {k.replace(".conv.", ".mobile_inverted_conv.", 1) if k.startswith("blocks.") else k: v
          for k, v in net.net.state_dict().items()}
    torch.save({"state_dict": sd, "epoch": 3}, tmp_path / "ofa.pth")
    other = OFAMobileNetV3Net(n_classes=10, width_mult=0.5, resolutions=[24, 32])
    other.load_weights(tmp_path / "ofa.pth")
    for k, v in net.state_dict().items():
        assert torch.equal(v, other.state_dict()[k]), k
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_ofa_checkpoint(tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read"):
        load_ofa_checkpoint(tmp_path / "junk.pth")


def test_space_specific_rules() -> None:
    resnet = SPACES["ofa_resnet50"]()
    cfg = resnet.space.largest()
    assert len(cfg["e"]) == 18 and len(cfg["w"]) == 6 and cfg["d"][0] in (0, 2)
    proxy = SPACES["ofa_proxyless"]()
    assert proxy.space.dimensions["d"][-1] == (1,)  # single-block last stage
    with pytest.raises(ValueError, match=r"choose a non-empty subset of \[0.2, 0.25, 0.35\]"):
        OFAResNet50Net(expand=[0.5])
    with pytest.raises(ValueError, match="resolutions"):
        OFAProxylessNet(resolutions=[30])


def test_digits_splits_are_disjoint_and_resized() -> None:
    d = DigitsData()
    assert d.size("train") + d.size("val") + d.size("test") == 1797
    xb, yb = next(d.batches("val", batch_size=16, resolution=32))
    assert xb.shape == (16, 3, 32, 32) and yb.shape == (16,)
    with pytest.raises(ValueError, match="unknown split"):
        d.size("dev")
    with pytest.raises(ValueError, match="n_classes"):
        DigitsData(n_classes=5)


def test_imagefolder(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        for i in range(6):
            arr = (rng.random((20, 20, 3)) * 255).astype("uint8")
            Image.fromarray(arr).save(tmp_path / c / f"{i}.png")
    d = ImageFolderData(root=str(tmp_path), image_size=16)
    assert d.classes == ["cat", "dog"] and d.n_classes == 2
    assert d.size("train") + d.size("val") + d.size("test") == 12
    with pytest.raises(FileNotFoundError, match="not a directory"):
        ImageFolderData(root=str(tmp_path / "nope"))


def test_training_reduces_loss_and_evaluate_restores_bn() -> None:
    torch.manual_seed(0)
    net = OFAMobileNetV3Net(n_classes=10, width_mult=0.5, depth=[2, 3], resolutions=[24])
    data = DigitsData()
    task = ProgressiveShrinking(phases=[["full", []], ["kernel", ["ks"]]], epochs_per_phase=1.0,
                                progress=False, lr=0.1)
    log = task.train(net, data, seed=0)
    assert log["phases"][-1]["last_loss"] < log["phases"][0]["first_loss"]
    before = net.bn_state()
    acc = task.evaluate(net, [net.space.largest(), net.space.smallest()], data)
    assert acc.shape == (2,) and np.all((acc >= 0) & (acc <= 100))
    assert acc.max() > 15.0  # above chance (10 %) after a short training
    assert all(torch.equal(before[k], v) for k, v in net.bn_state().items())
    with pytest.raises(ValueError, match="unknown dimensions"):
        ProgressiveShrinking(phases=[["x", ["width"]]], progress=False).train(net, data)
