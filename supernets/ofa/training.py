"""Training and scoring of OFA super-networks: progressive shrinking and top-1 accuracy.

Progressive shrinking (Cai et al., 2020) trains the full network first, then lets the
dimensions become elastic one after another (kernel, then depth, then expand for
MobileNetV3), each phase sampling sub-networks among the dimensions released so far.
Resolution is elastic in every phase. Before expand ratios become elastic, the middle
channels are re-ordered by importance (``re_organize_middle_weights``), as OFA does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..base import Config
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
    """

    metric = "top1"

    def __init__(self, *, phases: Sequence[Sequence[Any]] = (("full", []),),
                 epochs_per_phase: float = 1.0, batch_size: int = 64, lr: float = 0.05,
                 weight_decay: float = 3e-5, calib_batches: int = 4, eval_batch_size: int = 256,
                 threads: int | None = None, progress: bool = True):
        self.phases = [(str(p[0]), list(p[1])) for p in phases]
        if epochs_per_phase <= 0:
            raise ValueError(f"epochs_per_phase must be > 0, got {epochs_per_phase}")
        self.epochs_per_phase = float(epochs_per_phase)
        self.batch_size, self.lr, self.weight_decay = int(batch_size), float(lr), float(weight_decay)
        self.calib_batches, self.eval_batch_size = int(calib_batches), int(eval_batch_size)
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

    def train(self, net: OFASuperNet, data: TensorImageData, *, seed: int = 0) -> dict[str, Any]:
        unknown = [d for _, dims in self.phases for d in dims if d not in net.space.dimensions]
        if unknown:
            raise ValueError(f"progressive shrinking phases name unknown dimensions {unknown}; "
                             f"the space has {sorted(net.space.dimensions)}")
        if self.threads:
            torch.set_num_threads(int(self.threads))
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        n_train = data.size("train")
        steps_per_epoch = math.ceil(n_train / self.batch_size)
        log: dict[str, Any] = {"phases": []}
        for p_idx, (name, released) in enumerate(self.phases):
            if "e" in released and hasattr(net.net, "re_organize_middle_weights"):
                net.net.re_organize_middle_weights()
            steps = max(1, round(self.epochs_per_phase * steps_per_epoch))
            opt = torch.optim.SGD(net.parameters(), lr=self.lr, momentum=0.9, nesterov=True,
                                  weight_decay=self.weight_decay)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
            net.train()
            losses: list[float] = []
            t0 = time.perf_counter()
            bar = tqdm(total=steps, desc=f"train {p_idx + 1}/{len(self.phases)} {name}",
                       disable=not self.progress, leave=False)
            step, epoch = 0, 0
            while step < steps:
                for xb, yb in data.batches("train", batch_size=self.batch_size,
                                           resolution=net.resolution(net.space.largest()),
                                           shuffle=True, seed=seed * 1000 + p_idx * 100 + epoch):
                    cfg = self._phase_sample(net, released, rng)
                    net.activate(cfg)
                    loss = F.cross_entropy(net(xb), yb)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    losses.append(loss.item())
                    step += 1
                    bar.update(1)
                    bar.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}")
                    if step >= steps:
                        break
                epoch += 1
            bar.close()
            log["phases"].append({"name": name, "released": released, "steps": steps,
                                  "first_loss": losses[0], "last_loss": float(np.mean(losses[-5:])),
                                  "seconds": round(time.perf_counter() - t0, 2)})
        net.activate(net.space.largest())
        net.eval()
        return log

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
            for cfg in tqdm(configs, desc=f"evaluate ({split})", disable=not self.progress,
                            leave=False):
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
