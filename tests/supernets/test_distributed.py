"""Data-parallel training: two gloo ranks on the CPU train the same weights as one process
with the same global batch and seed (OFA progressive shrinking with distillation, HAT
sandwich training), and the pieces that make it so."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from switchnas.supernets import distributed
from switchnas.supernets.distillation import soft_target_loss

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@functools.cache
def _digits() -> Any:
    from switchnas.supernets.ofa.data import DigitsData

    return DigitsData()


# -- small, fast set-ups (module level: the spawned ranks import them) -----------------------
PHASES = [["full", []], ["kernel", ["ks"]], ["expand", ["ks", "d", "e"]]]


def build(kind: str, *, kd: float, steps: int, phases: list[Any] | None = None,
          double: bool = False) -> tuple[Any, Any, Any]:
    """``(net, data, task)`` of a few steps of one family, identically on every call."""
    torch.manual_seed(0)
    torch.set_num_threads(1)  # the ranks share two cores
    if kind == "ofa":
        from switchnas.supernets.ofa.mbv3 import OFAMobileNetV3Net
        from switchnas.supernets.ofa.training import ProgressiveShrinking

        net = OFAMobileNetV3Net(n_classes=10, width_mult=0.5, depth=[2, 3], resolutions=[16, 24])
        if double:
            net = net.double()
        data = _digits()
        # 1078 training images / 16 = 68 steps per epoch; `steps` per phase
        task = ProgressiveShrinking(phases=phases or PHASES, epochs_per_phase=steps / 68,
                                    batch_size=16, lr=0.01,
                                    kd_ratio=kd, progress=False)
        return net, data, task
    from switchnas.supernets.hat.data import ToyTranslation
    from switchnas.supernets.hat.supernet import SuperTransformer
    from switchnas.supernets.hat.training import HATTask

    data = ToyTranslation(src_vocab=24, tgt_vocab=28, n_train=96, n_valid=16, n_test=16,
                          max_clauses=1, max_adjectives=1, seed=0)
    net = SuperTransformer(src_vocab=24, tgt_vocab=28, space="space0", width_divisor=32,
                           dropout=0.0)
    if double:
        net = net.double()
    task = HATTask(steps=steps, batch_size=20, warmup=2, metric="neg_valid_loss", kd_ratio=kd,
                   log_every=1)
    return net, data, task


def train_and_save(device: str, kind: str, kd: float, steps: int, out: str,
                   trainer: Any = None, phases: list[Any] | None = None,
                   double: bool = False) -> dict[str, Any]:
    """One rank's work: train, then rank 0 writes the weights to ``out``."""
    net, data, task = build(kind, kd=kd, steps=steps, phases=phases, double=double)
    log = task.train(net, data, seed=3, trainer=trainer)
    if distributed.rank() == 0:
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, out)
    return dict(log)


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor],
                        start: dict[str, torch.Tensor], *, rtol: float) -> None:
    """``a`` and ``b`` differ by less than ``rtol`` of how far training moved ``a`` from
    ``start`` (float rounding differs between one and two ranks, and a few SGD steps on a
    fresh network with batch norm over 16 images amplify it, about 100x a step here)."""
    assert a.keys() == b.keys()
    keys = [k for k in a if a[k].is_floating_point()]
    moved = torch.cat([(a[k].double() - start[k].double()).reshape(-1) for k in keys]).norm()
    apart = torch.cat([(a[k].double() - b[k].double()).reshape(-1) for k in keys]).norm()
    assert moved > 1e-3, "training did not move the weights"
    assert apart <= rtol * moved, f"weights differ by {apart:g}, {apart / moved:.2%} of the training's move"


# -- the helpers -------------------------------------------------------------------------------
def test_shard_bounds_cover_the_batch_once() -> None:
    for n in (2, 5, 32, 33):
        for world in (1, 2, 3):
            if n < world:
                continue
            parts = [distributed.shard_bounds(n, rank_=r, world=world) for r in range(world)]
            assert parts[0][0] == 0 and parts[-1][1] == n
            assert all(p[1] == q[0] and p[1] > p[0] for p, q in zip(parts, parts[1:], strict=False))
    assert distributed.world_size() == 1 and distributed.rank() == 0
    x = torch.arange(6)
    assert torch.equal(distributed.shard(x), x)  # one process: the whole batch


def test_resolve_device_and_trainer_validate() -> None:
    assert distributed.resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="tpu"):
        distributed.resolve_device("tpu")
    with pytest.raises(ValueError, match="checkpoint_every=-1"):
        distributed.Trainer(checkpoint_every=-1)
    assert not distributed.Trainer(device="cpu", amp=True).use_amp  # CPU runs unchanged
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="not available"):
            distributed.resolve_device("cuda")


def test_soft_target_loss() -> None:
    torch.manual_seed(0)
    s, t = torch.randn(5, 7), torch.randn(5, 7)
    # equals the cross-entropy against the teacher's distribution (T=1)
    expected = -(t.softmax(-1) * s.log_softmax(-1)).sum(-1).mean()
    assert torch.allclose(soft_target_loss(s, t), expected)
    assert torch.allclose(soft_target_loss(s, t, reduction="sum"), expected * 5)
    # minimised by the teacher's own logits
    assert soft_target_loss(t, t) < soft_target_loss(s, t)
    assert not torch.allclose(soft_target_loss(s, t, 4.0), soft_target_loss(s, t, 1.0))
    with pytest.raises(ValueError, match="temperature"):
        soft_target_loss(s, t, 0.0)
    with pytest.raises(ValueError, match="shape"):
        soft_target_loss(s, t[:, :3])


# -- two ranks == one process -------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["ofa", "hat"])
def test_two_gloo_ranks_train_the_weights_of_one_process(kind: str, tmp_path: Path) -> None:
    steps = 2 if kind == "ofa" else 4
    kd = 1.0 if kind == "ofa" else 0.5
    # Without the expand phase: its channel re-ordering sorts by importance, and rounding
    # can swap two channels of near-equal importance (same function, permuted weights).
    # In float64: batch norm over channels of near-zero variance (1x1 maps, 16 images)
    # amplifies rounding about 100x a step, so float32 runs part after a few steps.
    phases = [["full", []], ["kernel", ["ks"]], ["depth", ["ks", "d"]]]
    one = tmp_path / "one.safetensors"
    log1 = train_and_save("cpu", kind, kd, steps, str(one), None, phases, True)
    two = tmp_path / "two.safetensors"
    log2 = distributed.launch(train_and_save, (kind, kd, steps, str(two), None, phases, True),
                              nproc=2, device="cpu")
    assert log2["ranks"] == 2 and log1["ranks"] == 1
    a, b = load_file(str(one)), load_file(str(two))
    # the weights moved, and both runs moved them alike
    fresh = build(kind, kd=kd, steps=steps, double=True)[0].state_dict()
    assert_same_weights(a, b, fresh, rtol=1e-6)
    if kind == "ofa":  # distillation ran in the phases after `full`
        assert [p["distill"] for p in log1["phases"]] == [False, True, True]
        l1 = [p["first_loss"] for p in log1["phases"]]
        l2 = [p["first_loss"] for p in log2["phases"]]
        assert l1 == pytest.approx(l2, rel=1e-4)
    else:
        assert [x[1] for x in log1["losses"]] == pytest.approx([x[1] for x in log2["losses"]],
                                                               rel=1e-4)


def test_launch_refuses_bad_nproc() -> None:
    with pytest.raises(ValueError, match="nproc=0"):
        distributed.launch(train_and_save, (), nproc=0, device="cpu")


@pytest.mark.parametrize("kind", ["ofa", "hat"])
def test_distillation_changes_training(kind: str) -> None:
    steps = 2 if kind == "ofa" else 3
    runs = []
    for kd in (0.0, 1.0):
        net, data, task = build(kind, kd=kd, steps=steps)
        log = task.train(net, data, seed=1)
        runs.append((log, net.state_dict()))
    (log0, w0), (log1, w1) = runs
    worst = max(float((w0[k] - w1[k]).abs().max()) for k in w0 if w0[k].is_floating_point())
    assert worst > 1e-4
    if kind == "ofa":
        assert log0["phases"][0] == {**log1["phases"][0], "seconds": log0["phases"][0]["seconds"]}
        assert log1["phases"][1]["distill"] and not log0["phases"][1]["distill"]
        # the logged loss is the cross-entropy: equal before the first distilled step,
        # different once distillation has moved the weights
        assert log1["phases"][1]["first_loss"] == log0["phases"][1]["first_loss"]
        assert log1["phases"][1]["last_loss"] != log0["phases"][1]["last_loss"]
    else:
        assert log1["distill"] and not log0["distill"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_mixed_precision_on_cuda_trains() -> None:
    trainer = distributed.Trainer(device="cuda", amp=True)
    assert trainer.use_amp
    for kind in ("ofa", "hat"):
        net, data, task = build(kind, kd=1.0, steps=3)
        log = task.train(net, data, seed=0, trainer=trainer)
        assert next(net.parameters()).device.type == "cpu"  # handed back where it was
        assert all(torch.isfinite(v).all() for v in net.state_dict().values()
                   if v.is_floating_point())
        assert log["ranks"] == 1
