"""The Fluid network, its space, nested incremental training and the baselines."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from switchnas.supernets.fluid.baselines import GroupedCNN
from switchnas.supernets.fluid.net import FluidNet, FluidSpace
from switchnas.supernets.fluid.training import (
    NestedIncrementalTraining,
    accuracy,
    train_grouped,
)
from switchnas.supernets.ofa.data import DigitsData


@pytest.fixture(scope="module")
def data() -> DigitsData:
    return DigitsData()


def _net(**kw: Any) -> FluidNet:
    torch.manual_seed(0)
    return FluidNet(**{"devices": 2, "channels": [4, 8, 8], "widths": [0.5, 1.0], **kw})


def test_space_canonical_and_errors() -> None:
    space = FluidSpace.build(3, [0.5, 1.0])
    assert space.validate({"on": [0, 0, 0], "w": [1.0, 1.0, 1.0]}) == {
        "on": [1, 0, 0], "w": [1.0, 0.5, 0.5]}
    assert space.largest() == {"on": [1, 1, 1], "w": [1.0, 1.0, 1.0]}
    with pytest.raises(ValueError, match=r"w\[1\]=0.3 is not allowed"):
        space.validate({"on": [1, 1, 1], "w": [1.0, 0.3, 1.0]})
    with pytest.raises(ValueError, match="devices=1"):
        FluidNet(devices=1)
    with pytest.raises(ValueError, match="widths"):
        FluidNet(widths=[0.0, 1.0])
    with pytest.raises(ValueError, match="channels"):
        FluidNet(channels=[4, 8])


def test_forward_is_mean_of_columns_and_extract_matches() -> None:
    net = _net(devices=3).eval()
    x = torch.randn(4, 3, 32, 32)
    cfg = {"on": [1, 0, 1], "w": [0.5, 0.5, 1.0]}
    net.activate(cfg)
    want = (net.column_logits(x, 0, 0.5) + net.column_logits(x, 2, 1.0)) / 2
    torch.testing.assert_close(net(x), want)
    torch.testing.assert_close(net.extract(cfg).eval()(x), want)
    assert net.example_input(cfg, 2).shape == (2, 3, 32, 32)
    assert net.bn_state() == {}
    assert net.spec()["name"] == "fluid"


def test_training_keeps_earlier_columns_bit_identical(data: DigitsData) -> None:
    """Column 1's outputs are bit-identical before and after column 2 is trained."""
    net = _net()
    task = NestedIncrementalTraining(epochs_per_column=0.1, progress=False)
    x = torch.randn(3, 3, 32, 32)
    seen: dict[int, torch.Tensor] = {}
    original = net.column(1).forward

    def record(xb: torch.Tensor, width: float = 1.0) -> torch.Tensor:  # column 2's first use
        if 0 not in seen:
            with torch.no_grad():
                seen[0] = net.column(0)(x, 1.0).clone()
                seen[1] = net.column(1)(x, 1.0).clone()
        return original(xb, width)

    net.column(1).forward = record  # type: ignore[method-assign]
    log = task.train(net, data, seed=0)
    del net.column(1).forward
    assert [c["subsets"] for c in log["columns"]] == [1, 2]
    with torch.no_grad():
        assert torch.equal(net.column(0)(x, 1.0), seen[0])
        assert not torch.equal(net.column(1)(x, 1.0), seen[1])  # column 2 did train


@pytest.mark.slow
def test_training_beats_chance(data: DigitsData) -> None:
    """Each column alone and the union are well above chance (10 %) after a tiny training."""
    net = _net()
    task = NestedIncrementalTraining(epochs_per_column=1.5, progress=False)
    task.train(net, data, seed=0)
    alone0, alone1, union = task.evaluate(
        net, [{"on": [1, 0], "w": [1.0, 0.5]}, {"on": [0, 1], "w": [0.5, 1.0]},
              {"on": [1, 1], "w": [1.0, 1.0]}], data)
    assert min(alone0, alone1, union) > 30.0, (alone0, alone1, union)
    scores, bns = task.evaluate(net, [net.space.largest()], data, split="test", return_bn=True)
    assert bns == [{}] and 0 <= scores[0] <= 100


def test_nested_baseline_groups_and_split(data: DigitsData) -> None:
    torch.manual_seed(0)
    nested = GroupedCNN(groups=2, channels=[4, 8, 8], connectivity="nested").eval()
    dense = GroupedCNN(groups=3, channels=[4, 8, 8], connectivity="dense").eval()
    x = torch.randn(2, 3, 32, 32)
    acts, logits1 = nested.run_group(0, x, [], None)
    torch.testing.assert_close(logits1, nested(x, k=1))
    _, logits2 = nested.run_group(1, x, acts, logits1)
    torch.testing.assert_close(logits2, nested(x))
    for devices in (2, 3):
        h = x
        for a, b in dense.layer_ranges(devices):
            h = dense.run_layers(h, a, b)
        torch.testing.assert_close(h, dense(x))
    with pytest.raises(ValueError, match="connectivity='ring'"):
        GroupedCNN(connectivity="ring")
    before = nested(x, k=1).detach().clone()
    nested.train()
    train_grouped(nested, data, epochs_per_group=0.2, seed=0)
    assert accuracy(nested, data, "val") >= 0  # runs
    nested.eval()
    # group 2's training never changed sub-network 1 after group 1's stage
    masks = nested.group_parameters_mask(1)
    assert masks["head.bias"].sum() == 0 and masks["convs.0.weight"][:4].sum() == 0
    assert not torch.equal(before, nested(x, k=1))  # group 1 did train


def test_bundle_round_trip(tmp_path: Any) -> None:
    from switchnas.runtime import load, write_bundle

    net = _net().eval()
    members = [{"id": f"m{i}", "config": c, "accuracy": 50.0 + i, "latency_ms": 1.0 + i}
               for i, c in enumerate([{"on": [1, 0], "w": [0.5, 0.5]},
                                      {"on": [1, 1], "w": [1.0, 1.0]}])]
    write_bundle(tmp_path / "b", supernet=net, members=members)
    bundle = load(tmp_path / "b")
    x = torch.randn(1, 3, 32, 32)
    bundle.activate("m1")
    net.activate(members[1]["config"])
    torch.testing.assert_close(bundle(x), net(x))
    assert np.isfinite(bundle(x).numpy()).all()
