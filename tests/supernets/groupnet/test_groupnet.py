"""The channel-group network: space, errors, extraction, bit identity, incremental training."""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pytest
import torch

from switchnas.supernets.base import SuperNet, Task, check_protocol
from switchnas.supernets.groupnet.net import GroupNet
from switchnas.supernets.groupnet.space import GroupSpace
from switchnas.supernets.groupnet.training import IncrementalTraining
from switchnas.supernets.ofa.data import DigitsData

SMALL: dict[str, Any] = dict(n_classes=10, groups=3, widths=[12, 12, 12], kernels=[3, 3, 3],
                             pools=[0, 1], resolution=16)


@pytest.fixture(scope="module")
def digits() -> DigitsData:
    return DigitsData()


def small_net(**over: Any) -> GroupNet:
    torch.manual_seed(0)
    return GroupNet(**{**SMALL, **over})


def fast_task(**over: Any) -> IncrementalTraining:
    kw: dict[str, Any] = dict(epochs_per_stage=0.3, batch_size=32, lr=0.1, threads=1,
                              progress=False)
    return IncrementalTraining(**{**kw, **over})


# -- space ---------------------------------------------------------------------------------
def test_space_dimensions_and_canonical_form() -> None:
    space = GroupSpace.build(groups=4, layers=5)
    assert space.dimensions["g"] == ((1, 2, 3, 4),)
    assert len(space.dimensions["layer_g"]) == 4
    assert space.largest() == {"g": 4, "layer_g": [4, 4, 4, 4]}
    assert space.smallest() == {"g": 1, "layer_g": [1, 1, 1, 1]}
    # a layer is capped at the next one's count (its later groups would be read by nobody)
    assert space.validate({"g": 2, "layer_g": [4, 1, 3, 4]}) == {"g": 2, "layer_g": [1, 1, 2, 2]}
    assert space.uniform(3) == {"g": 3, "layer_g": [3, 3, 3, 3]}
    g = space.sample_genomes(np.random.default_rng(0), 200)
    for cfg in space.from_genomes(g):
        seq = [*cfg["layer_g"], cfg["g"]]
        assert seq == sorted(seq)


def test_canonical_in_a_reduced_space_picks_an_allowed_value() -> None:
    space = GroupSpace.build(groups=4, layers=3).restrict({"layer_g": [[2, 4], [1, 3]]})
    cfg = space.validate({"g": 2, "layer_g": [4, 3]})
    assert cfg == {"g": 2, "layer_g": [2, 1]}
    raw = np.random.default_rng(1).integers(0, space.cardinalities(), size=(100, 3))
    rowwise = space.to_genomes([space.canonical(c) for c in space.from_genomes(raw)])
    assert np.array_equal(space.canonical_genomes(raw), rowwise)


@pytest.mark.parametrize(("config", "message"), [
    ({"g": 5, "layer_g": [1, 1, 1, 1]}, r"g=5 is not allowed; choose from \[1, 2, 3, 4\]"),
    ({"g": 2, "layer_g": [1, 1]}, "layer_g' must be a list of 4 values"),
    ({"g": 2, "layer_g": [1, 0, 1, 1]}, r"layer_g\[1\]=0 is not allowed"),
    ({"g": 2}, r"missing \['layer_g'\]"),
    ({"g": 2, "layer_g": [1, 1, 1, 1], "w": 1}, r"unknown \['w'\]"),
])
def test_bad_configs_are_named(config: dict[str, Any], message: str) -> None:
    net = GroupNet(widths=[8, 8, 8, 8, 8])
    with pytest.raises(ValueError, match=message):
        net.activate(config)


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(widths=[12, 10]), r"widths \[10\] must be multiples of groups=4"),
    (dict(groups=0), "groups=0 must be an int in 1..16"),
    (dict(widths=[8, 8], kernels=[3]), "kernels=.* must be 2 odd ints"),
    (dict(widths=[8, 8], kernels=[3, 3], pools=[2]), r"pools=\[2\] must be distinct layer"),
    (dict(widths=[8, 8], kernels=[3, 3], pools=[0, 1], resolution=2), "resolution=2"),
    (dict(n_classes=1), "n_classes=1 must be an int >= 2"),
])
def test_bad_arguments_are_named(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GroupNet(**kwargs)


# -- the network ---------------------------------------------------------------------------
def test_implements_the_protocols() -> None:
    check_protocol(small_net(), SuperNet, "supernet")
    check_protocol(fast_task(), Task, "task")
    with pytest.raises(ValueError, match="stages=.*non-empty"):
        IncrementalTraining(stages=[])


def test_extract_equals_activate_and_holds_only_its_groups() -> None:
    net = small_net().eval()
    x = torch.randn(4, 3, 20, 20)  # another size: both resize to 16
    rng = np.random.default_rng(0)
    configs = [net.space.sample(rng) for _ in range(6)] + [net.space.smallest()]
    for cfg in configs:
        net.activate(cfg)
        sub = net.extract(cfg).eval()
        assert torch.equal(sub(x), net(x)), cfg
        counts = net.counts(cfg)
        n_sub = sum(p.numel() for p in sub.parameters())
        assert n_sub == sum(int(np.prod(s)) for k, s in net.used_extents(cfg).items()
                            if not k.endswith(("running_mean", "running_var",
                                               "num_batches_tracked")))
        assert len(sub.layers[-1]) == counts[-1]
    assert sum(p.numel() for p in net.extract(net.space.smallest()).parameters()) < \
        sum(p.numel() for p in net.extract(net.space.largest()).parameters())


def test_outputs_are_bit_identical_with_later_groups_absent_and_after_training_them(
        digits: DigitsData) -> None:
    net = small_net()
    fast_task(stages=[1]).train(net, digits, seed=0)
    one = net.space.uniform(1)
    x = torch.randn(5, 3, 16, 16)
    net.activate(one)
    before = net(x)
    alone = net.extract(one).eval()  # later groups' weights are absent from this module
    assert torch.equal(alone(x), before)
    snapshot = copy.deepcopy(net.state_dict())
    fast_task(stages=[2, 3]).train(net, digits, seed=1)
    changed = [k for k in snapshot if not torch.equal(snapshot[k], net.state_dict()[k])]
    assert changed and all(k.startswith(("heads.1.", "heads.2.")) or
                           (k.startswith("layers.") and k.split(".")[2] in ("1", "2"))
                           for k in changed), changed
    net.activate(one)
    assert torch.equal(net(x), before)
    assert torch.equal(net.extract(one).eval()(x), before)
    # group 1's features inside the 3-group network are those of the 1-group network
    net.activate(net.space.uniform(3))
    feats: list[torch.Tensor] = []
    hook = net.layers[-1][0].register_forward_hook(lambda m, i, o: feats.append(o))
    net(x)
    net.activate(one)
    net(x)
    hook.remove()
    assert torch.equal(feats[0], feats[1])


def test_recalibration_leaves_uniform_configs_alone_and_touches_pruned_groups() -> None:
    net = small_net()
    bn = net.bn_state()
    batches = [torch.randn(8, 3, 16, 16) for _ in range(2)]
    net.recalibrate_bn(net.space.uniform(2), iter(batches))
    assert all(torch.equal(bn[k], v) for k, v in net.bn_state().items())
    pruned = {"g": 3, "layer_g": [1, 3]}
    assert net.pruned_groups(pruned) == [(1, 1), (1, 2), (2, 1), (2, 2)]
    net.recalibrate_bn(pruned, iter(batches))
    after = net.bn_state()
    moved = {k for k in after if not torch.equal(after[k], bn[k])}
    assert "layers.1.1.bn.running_mean" in moved and "layers.2.2.bn.running_var" in moved
    assert not any(k.startswith(("layers.0.", "layers.1.0.", "layers.2.0.")) for k in moved)
    with pytest.raises(ValueError, match="no batches"):
        net.recalibrate_bn(pruned, iter([]))


def test_spec_round_trip_and_bundle_slices() -> None:
    net = small_net()
    spec = net.spec()
    assert spec["name"] == "groupnet"
    kwargs = json.loads(json.dumps(spec["kwargs"]))
    again = GroupNet(**kwargs)
    again.load_state_dict(net.state_dict())
    cfg = net.space.uniform(2)
    x = torch.randn(2, 3, 16, 16)
    net.eval().activate(cfg)
    again.eval().activate(cfg)
    assert torch.equal(net(x), again(x))
    ext = net.used_extents(net.space.uniform(1))
    assert all(k.startswith(("heads.0.", "layers.")) and k.split(".")[2] == "0" or
               k.startswith("heads.0.") for k in ext)
    assert ext["layers.1.0.conv.weight"] == (4, 4, 3, 3)
    assert net.used_extents({"g": 2, "layer_g": [1, 2]})["layers.2.1.conv.weight"] == (4, 8, 3, 3)
    assert net.used_extents({"g": 2, "layer_g": [1, 1]})["layers.2.1.conv.weight"] == (4, 4, 3, 3)
    reduced = net.space.restrict({"g": [2, 3]})
    sub = GroupNet(**{**SMALL, "space": reduced.to_dict()})
    assert sub.space.dimensions["g"] == ((2, 3),)
    with pytest.raises(ValueError, match="outside 1..3"):
        GroupNet(**{**SMALL, "space": GroupSpace.build(groups=4, layers=3).to_dict()})


def test_incremental_training_beats_chance_and_logs_each_stage(digits: DigitsData) -> None:
    net = small_net(groups=2, widths=[8, 8, 8])
    task = fast_task(epochs_per_stage=2.0, batch_size=64)
    log = task.train(net, digits, seed=0)
    assert [s["groups"] for s in log["stages"]] == [1, 2]
    assert all(s["last_loss"] < s["first_loss"] for s in log["stages"])
    acc = task.evaluate(net, [net.space.uniform(k) for k in (1, 2)], digits)
    assert acc.shape == (2,) and (acc > 30.0).all(), acc  # chance is 10 %
    scores, bns = task.evaluate(net, [{"g": 2, "layer_g": [1, 2]}], digits, return_bn=True)
    assert scores.shape == (1,) and set(bns[0]) == set(net.bn_state())
    with pytest.raises(ValueError, match=r"stages \[3\] are not group counts"):
        fast_task(stages=[3]).train(net, digits)


def test_load_weights_reads_a_train_artifact(tmp_path: Any) -> None:
    from safetensors.torch import save_file

    net = small_net()
    path = tmp_path / "supernet.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    other = GroupNet(**SMALL)
    other.load_weights(path)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(),
                                                  other.state_dict().values(), strict=True))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        other.load_weights(tmp_path / "nope.safetensors")
    space = GroupSpace.from_dict(net.space.to_dict())
    assert isinstance(space, GroupSpace) and space.dimensions == net.space.dimensions
