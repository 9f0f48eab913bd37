"""Training and scoring of OFA super-networks: progressive shrinking and top-1 accuracy.

Progressive shrinking (Cai et al., 2020) trains the full network first, then lets the
dimensions become elastic one after another (kernel, then depth, then expand for
MobileNetV3), each phase sampling sub-networks among the dimensions released so far.
Resolution is elastic in every phase. Before expand ratios become elastic, the middle
channels are re-ordered by importance (``re_organize_middle_weights``), as OFA does.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from switchnas.plugins.progress import progress_bar

from .. import distributed
from ..base import Config
from ..checkpoint import CheckpointDir, restore_optimisation, restore_rng, training_state
from ..distillation import soft_target_loss
from ..distributed import Trainer
from .common import OFASuperNet
from .data import TensorImageData

__all__ = ["ProgressiveShrinking"]


class ProgressiveShrinking:
    """``Task`` for the OFA spaces.

    Args:
        phases: ordered list of ``[name, [dims released]]``; dims not released take
            their largest value (``r`` is always sampled).
        epochs_per_phase: epochs of the training split per phase (fractions allowed).
        batch_size, lr, weight_decay: SGD (Nesterov, cosine schedule per phase).
        calib_batches: batches of training images for BN recalibration in ``evaluate``.
        eval_split: split scored by ``evaluate`` (``val`` for the accuracy dataset,
            ``test`` for validation of the final front).
        kd_ratio: weight of knowledge distillation in the phases that release dimensions
            after a ``full`` phase (OFA's recipe: soft targets from the trained full
            network, frozen when the first such phase starts); 0 turns it off.
        kd_temperature: softmax temperature of the soft targets (the term is scaled by
            its square, as in Hinton et al.; OFA uses 1).
    """

    metric = "top1"

    def __init__(self, *, phases: Sequence[Sequence[Any]] = (("full", []),),
                 epochs_per_phase: float = 1.0, batch_size: int = 64, lr: float = 0.05,
                 weight_decay: float = 3e-5, calib_batches: int = 4, eval_batch_size: int = 256,
                 kd_ratio: float = 1.0, kd_temperature: float = 1.0,
                 threads: int | None = None, progress: bool = True):
        self.phases = [(str(p[0]), list(p[1])) for p in phases]
        if epochs_per_phase <= 0:
            raise ValueError(f"epochs_per_phase must be > 0, got {epochs_per_phase}")
        self.epochs_per_phase = float(epochs_per_phase)
        self.batch_size, self.lr, self.weight_decay = int(batch_size), float(lr), float(weight_decay)
        self.calib_batches, self.eval_batch_size = int(calib_batches), int(eval_batch_size)
        if kd_ratio < 0 or kd_temperature <= 0:
            raise ValueError(f"kd_ratio={kd_ratio} must be >= 0 and kd_temperature="
                             f"{kd_temperature} > 0")
        self.kd_ratio, self.kd_temperature = float(kd_ratio), float(kd_temperature)
        self.threads, self.progress = threads, progress

    # -- training ------------------------------------------------------------------------
    def _phase_sample(self, net: OFASuperNet, released: list[str], rng: np.random.Generator
                      ) -> Config:
        cfg = net.space.sample(rng)
        big = net.space.largest()
        for k in cfg:
            if k != "r" and k not in released:
                cfg[k] = big[k]
        return net.space.canonical(cfg)

    def train(self, net: OFASuperNet, data: TensorImageData, *, seed: int = 0,
              trainer: Trainer | None = None) -> dict[str, Any]:
        """Train ``net`` in place by progressive shrinking; return a JSON-able log.

        In a process group (:mod:`switchnas.supernets.distributed`) every rank runs this
        with the same seed and forwards its shard of each global batch of ``batch_size``.

        Args:
            net: the super-network.
            data: images.
            seed: seeds the sampler, the data order and torch.
            trainer: device, mixed precision and checkpoints (default: CPU, none). With a
                checkpoint folder holding a checkpoint, training continues from it.

        Raises:
            ValueError: a phase names an unknown dimension, or ``batch_size`` is smaller
                than the number of ranks.
        """
        unknown = [d for _, dims in self.phases for d in dims if d not in net.space.dimensions]
        if unknown:
            raise ValueError(f"progressive shrinking phases name unknown dimensions {unknown}; "
                             f"the space has {sorted(net.space.dimensions)}")
        trainer = trainer or Trainer()
        world = distributed.world_size()
        if self.batch_size < world:
            raise ValueError(f"batch_size={self.batch_size} is smaller than the {world} ranks")
        if self.threads:
            torch.set_num_threads(int(self.threads))
        ckpt = (CheckpointDir(trainer.checkpoint_dir)
                if trainer.checkpoint_dir and trainer.checkpoint_every else None)
        device, home = trainer.torch_device, next(net.parameters()).device
        net.to(device)
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        n_train = data.size("train")
        steps_per_epoch = math.ceil(n_train / self.batch_size)
        log: dict[str, Any] = {"phases": []}
        saved = ckpt.load() if ckpt else None
        if saved is not None:
            net.load_state_dict(saved["model"])
            log = saved["log"]
            log["resumed"] = [*log.get("resumed", []), saved["position"]]
        teacher: OFASuperNet | None = None
        for p_idx, (name, released) in enumerate(self.phases):
            resume = saved if saved is not None and saved["position"]["phase"] == p_idx else None
            if saved is not None and p_idx < saved["position"]["phase"]:
                continue
            kd = self.kd_ratio > 0 and bool(released) and any(
                not dims for _, dims in self.phases[:p_idx])
            if kd and teacher is None:  # OFA's teacher: the trained full network, frozen
                with torch.random.fork_rng(devices=[]):
                    teacher = copy.deepcopy(net)
                if resume is not None:
                    teacher.load_state_dict(resume["teacher"])
                teacher.to(device=device, dtype=next(net.parameters()).dtype)
                teacher.activate(net.space.largest())
                teacher.requires_grad_(False)
            if resume is None and "e" in released and hasattr(net.net, "re_organize_middle_weights"):
                net.net.re_organize_middle_weights()
            steps = max(1, round(self.epochs_per_phase * steps_per_epoch))
            opt = torch.optim.SGD(net.parameters(), lr=self.lr, momentum=0.9, nesterov=True,
                                  weight_decay=self.weight_decay)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
            scaler = torch.amp.GradScaler("cuda") if trainer.use_amp else None
            losses: list[float] = []
            step, epoch, skip = 0, 0, 0
            if resume is not None:
                restore_optimisation(resume, optimizer=opt, scheduler=sched, scaler=scaler)
                pos = resume["position"]
                step, epoch, skip, losses = pos["step"], pos["epoch"], pos["batch"], resume["losses"]
                restore_rng(resume["rng"], rng)
            net.train()
            if teacher is not None:
                teacher.train()  # as OFA: the teacher's batch norms use batch statistics
            t0 = time.perf_counter()
            bar = progress_bar(total=steps, desc=f"train {p_idx + 1}/{len(self.phases)} {name}",
                               enabled=self.progress and distributed.rank() == 0)
            bar.update(step)
            with distributed.synced_batch_norm():
                while step < steps:
                    for b_idx, (xb, yb) in enumerate(data.batches(
                            "train", batch_size=self.batch_size,
                            resolution=net.resolution(net.space.largest()),
                            shuffle=True, seed=seed * 1000 + p_idx * 100 + epoch)):
                        if b_idx < skip or len(yb) < world:  # a rank would get no rows
                            continue
                        cfg = self._phase_sample(net, released, rng)
                        net.activate(cfg)
                        loss, _ = self._step(net, teacher if kd else None, xb, yb, opt,
                                             scaler, device)
                        sched.step()
                        losses.append(loss)
                        step += 1
                        bar.update(1)
                        bar.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}")
                        if ckpt is not None and step % trainer.checkpoint_every == 0 \
                                and distributed.rank() == 0:
                            ckpt.save(training_state(
                                model=net, optimizer=opt, scheduler=sched, scaler=scaler,
                                rng=rng, losses=losses, log=log,
                                teacher=teacher.state_dict() if teacher is not None else None,
                                position={"phase": p_idx, "step": step, "epoch": epoch,
                                          "batch": b_idx + 1}))
                        if step >= steps:
                            break
                    epoch, skip = epoch + 1, 0
            bar.close()
            # the losses logged are the cross-entropy: comparable with and without distillation
            log["phases"].append({"name": name, "released": released, "steps": steps,
                                  "distill": kd,
                                  "first_loss": losses[0],
                                  "last_loss": float(np.mean(losses[-5:])),
                                  "seconds": round(time.perf_counter() - t0, 2)})
        log["ranks"] = world
        net.activate(net.space.largest())
        net.eval()
        net.to(home)
        return log

    def _step(self, net: OFASuperNet, teacher: OFASuperNet | None, xb: torch.Tensor,
              yb: torch.Tensor, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None,
              device: torch.device) -> tuple[float, float]:
        """One optimiser step on this rank's shard of a global batch; the global batch's
        mean cross-entropy and mean loss (the cross-entropy plus, with a teacher, the
        distillation term: what the step minimised)."""
        lo, hi = distributed.shard_bounds(len(yb))
        dtype = next(net.parameters()).dtype  # float32, or float64 where a user asks for it
        x, y = xb[lo:hi].to(device=device, dtype=dtype), yb[lo:hi].to(device)
        with torch.autocast(device.type, dtype=torch.float16, enabled=scaler is not None):
            out = net(x)
            # sums over the shard / the global batch size: the ranks' gradients add up to
            # the gradient of the global batch's mean loss
            ce = loss = F.cross_entropy(out, y, reduction="sum") / len(yb)
            if teacher is not None:
                with torch.no_grad():
                    soft = teacher(x)
                loss = loss + self.kd_ratio * soft_target_loss(out, soft, self.kd_temperature,
                                                               reduction="sum") / len(yb)
        opt.zero_grad(set_to_none=True)
        (scaler.scale(loss) if scaler is not None else loss).backward()
        total, ce_total = distributed.all_reduce_gradients(
            net.parameters(), [float(loss.detach()), float(ce.detach())])
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        return ce_total, total

    # -- scoring -------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, net: OFASuperNet, configs: Sequence[Mapping[str, Any]],
                 data: TensorImageData, *, split: str = "val", return_bn: bool = False,
                 ) -> Any:
        """Top-1 accuracy (%) of each config on ``split`` after BN recalibration on
        training images. The super-net's own BN statistics are restored afterwards. With
        ``return_bn`` also the recalibrated BN state of each config (for bundles)."""
        saved = net.bn_state()
        accs, bns = [], []
        try:
            for cfg in progress_bar(configs, desc=f"evaluate ({split})",
                                    enabled=self.progress):
                r = net.resolution(net.space.validate(cfg))
                calib = (xb for xb, _ in data.batches("train", batch_size=self.batch_size,
                                                        resolution=r, shuffle=True,
                                                        limit=self.calib_batches))
                net.recalibrate_bn(cfg, calib)
                net.eval()
                correct = total = 0
                for xb, yb in data.batches(split, batch_size=self.eval_batch_size, resolution=r):
                    correct += int((net(xb).argmax(1) == yb).sum())
                    total += len(yb)
                accs.append(100.0 * correct / total)
                if return_bn:
                    bns.append(net.bn_state())
        finally:
            net.load_bn_state(saved)
            net.eval()
        out = np.asarray(accs, dtype=np.float64)
        return (out, bns) if return_bn else out
