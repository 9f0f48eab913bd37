"""Incremental training of a :class:`~.net.GroupNet` and top-1 scoring of its configs.

The schedule (MLCAD 2019's incremental training, details decided here): stage ``k``
trains group ``k`` of every layer and the head for ``k`` groups on the uniform
``k``-group sub-network, with every earlier group frozen: no gradient, no weight decay,
and batch norm in evaluation mode (its running statistics are not updated). Stages run in
the order given (default ``1..G``), each for ``epochs_per_stage`` epochs of SGD (Nesterov,
cosine schedule). So training group ``k`` changes nothing that a sub-network of fewer
groups computes. ``joint=True`` instead trains the largest config with every group at
once (the baseline "this size trained alone").
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from switchnas.plugins.progress import progress_bar

from .. import distributed
from .net import GroupNet

__all__ = ["IncrementalTraining"]


class IncrementalTraining:
    """``Task`` of the channel-group network: incremental training, top-1 accuracy.

    Args:
        epochs_per_stage: epochs of the training split per stage (fractions allowed).
        stages: the group counts to train, in order (default ``1..G``); e.g. ``[1]`` then
            later ``[2, 3, 4]`` adds groups to a trained network without touching group 1.
        joint: train the largest config with all its groups at once in one stage instead.
        batch_size, lr, weight_decay: SGD (Nesterov, momentum 0.9, cosine per stage).
        calib_batches: training batches for batch-norm re-estimation of pruned configs.
        eval_batch_size: batch size of scoring.
        threads: torch threads while training (default: leave as is); restored after.
        progress: show progress bars.

    Raises:
        ValueError: a bad argument, named.
    """

    metric = "top1"

    def __init__(self, *, epochs_per_stage: float = 4.0, stages: Sequence[int] | None = None,
                 joint: bool = False, batch_size: int = 64, lr: float = 0.1,
                 weight_decay: float = 5e-4, calib_batches: int = 4, eval_batch_size: int = 256,
                 threads: int | None = None, progress: bool = True):
        if not epochs_per_stage > 0:
            raise ValueError(f"epochs_per_stage={epochs_per_stage} must be > 0")
        if stages is not None and (not stages or any(
                not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in stages)):
            raise ValueError(f"stages={stages!r} must be a non-empty list of group counts >= 1")
        if batch_size < 1 or calib_batches < 1 or eval_batch_size < 1 or not lr > 0 \
                or weight_decay < 0:
            raise ValueError(f"batch_size={batch_size}, calib_batches={calib_batches}, "
                             f"eval_batch_size={eval_batch_size} must be >= 1, lr={lr} > 0 "
                             f"and weight_decay={weight_decay} >= 0")
        self.epochs_per_stage = float(epochs_per_stage)
        self.stages = None if stages is None else [int(s) for s in stages]
        self.joint = bool(joint)
        self.batch_size, self.lr, self.weight_decay = int(batch_size), float(lr), float(weight_decay)
        self.calib_batches, self.eval_batch_size = int(calib_batches), int(eval_batch_size)
        self.threads, self.progress = threads, progress

    # -- training ------------------------------------------------------------------------
    def train(self, net: GroupNet, data: Any, *, seed: int = 0) -> dict[str, Any]:
        """Train ``net`` in place, stage by stage; return a JSON-able log (per stage:
        steps, first and last loss, top-1 of its uniform config on ``val``, seconds).

        Args:
            net: the super-network.
            data: images with ``batches(split, batch_size=, resolution=, shuffle=, seed=)``.
            seed: seeds torch and the data order.

        Raises:
            ValueError: a stage names a group count the network does not have, or the
                process is one rank of several (data-parallel training is not supported).
        """
        if distributed.world_size() > 1:
            raise ValueError("groupnet training runs in one process; use trainer.nproc=1")
        stages = [net.groups] if self.joint else (self.stages or list(range(1, net.groups + 1)))
        bad = [s for s in stages if not 1 <= s <= net.groups]
        if bad:
            raise ValueError(f"stages {bad} are not group counts of this network; choose "
                             f"from 1..{net.groups}")
        threads = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(int(self.threads))
        try:
            return self._train(net, data, stages, seed)
        finally:
            torch.set_num_threads(threads)

    def _train(self, net: GroupNet, data: Any, stages: list[int], seed: int) -> dict[str, Any]:
        torch.manual_seed(seed)
        steps_per_epoch = math.ceil(data.size("train") / self.batch_size)
        log: dict[str, Any] = {"schedule": "joint" if self.joint else "incremental",
                               "stages": []}
        for s_idx, k in enumerate(stages):
            cfg = net.space.largest() if self.joint else net.space.uniform(k)
            trainable = (list(net.parameters()) if self.joint else net.group_parameters(k))
            live = {id(m) for m in (net.modules() if self.joint else
                                    (x for g in net.group_modules(k) for x in g.modules()))}
            steps = max(1, round(self.epochs_per_stage * steps_per_epoch))
            t0 = time.perf_counter()
            losses = self._train_stage(net, data, cfg, trainable, live, steps,
                                       seed=seed * 1000 + s_idx * 100,
                                       desc=f"train {s_idx + 1}/{len(stages)} group {k}")
            acc = float(self.evaluate(net, [cfg], data)[0])
            log["stages"].append({"groups": k, "config": cfg, "steps": steps,
                                  "first_loss": losses[0],
                                  "last_loss": float(np.mean(losses[-5:])),
                                  "val_top1": acc,
                                  "seconds": round(time.perf_counter() - t0, 2)})
        net.activate(net.space.largest())
        net.eval()
        return log

    def _train_stage(self, net: GroupNet, data: Any, cfg: Mapping[str, Any],
                     trainable: list[torch.nn.Parameter], live: set[int], steps: int, *,
                     seed: int, desc: str) -> list[float]:
        keep = [p.requires_grad for p in net.parameters()]
        wanted = {id(p) for p in trainable}
        for p in net.parameters():
            p.requires_grad_(id(p) in wanted)
        opt = torch.optim.SGD(trainable, lr=self.lr, momentum=0.9, nesterov=True,
                              weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        net.activate(cfg)
        losses: list[float] = []
        bar = progress_bar(total=steps, desc=desc, enabled=self.progress)
        try:
            net.train()
            for m in net.modules():  # frozen groups: batch norm keeps its statistics
                if id(m) not in live and isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()
            epoch = 0
            while len(losses) < steps:
                for xb, yb in data.batches("train", batch_size=self.batch_size,
                                           resolution=net.resolution, shuffle=True,
                                           seed=seed + epoch):
                    loss = F.cross_entropy(net(xb), yb)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    losses.append(float(loss.detach()))
                    bar.update(1)
                    bar.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}")
                    if len(losses) >= steps:
                        break
                epoch += 1
        finally:
            bar.close()
            for p, rg in zip(net.parameters(), keep, strict=True):
                p.requires_grad_(rg)
            net.eval()
        return losses

    # -- scoring -------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, net: GroupNet, configs: Sequence[Mapping[str, Any]], data: Any, *,
                 split: str = "val", return_bn: bool = False) -> Any:
        """Top-1 accuracy (%) of each config on ``split``, after re-estimating the batch
        norm of its pruned groups on training images (none for uniform configs). The
        super-net's own statistics are restored afterwards. With ``return_bn`` also each
        config's batch-norm state (for bundles)."""
        saved = net.bn_state()
        accs, bns = [], []
        try:
            for cfg in progress_bar(configs, desc=f"evaluate ({split})", enabled=self.progress):
                calib = (xb for xb, _ in data.batches("train", batch_size=self.batch_size,
                                                        resolution=net.resolution,
                                                        shuffle=True, limit=self.calib_batches))
                net.recalibrate_bn(cfg, calib)
                net.eval()
                correct = total = 0
                for xb, yb in data.batches(split, batch_size=self.eval_batch_size,
                                           resolution=net.resolution):
                    correct += int((net(xb).argmax(1) == yb).sum())
                    total += len(yb)
                accs.append(100.0 * correct / max(total, 1))
                if return_bn:
                    bns.append(net.bn_state())
                net.load_bn_state(saved)
        finally:
            net.load_bn_state(saved)
            net.eval()
        out = np.asarray(accs, dtype=np.float64)
        return (out, bns) if return_bn else out
