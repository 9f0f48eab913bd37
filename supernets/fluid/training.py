"""Nested incremental training of the Fluid network, its scoring, and the baselines' training.

Schedule (see :mod:`.net`): column ``k`` (``k = 1..D``) is trained for ``epochs_per_column``
epochs with Adam (cosine learning rate) while columns ``< k`` are frozen. Each step draws
one random width for every earlier column and, sandwich-style, runs column ``k`` at its
largest width and at one random width; the loss is the mean over every subset ``S`` of
``{1..k}`` containing ``k`` of the cross-entropy of ``S``'s mean logits. The baselines
(:class:`~.baselines.GroupedCNN`) train with the same optimiser and epochs: the static
network as one network for ``D`` times the epochs of a column, the nested one group after
group (group ``g``'s entries only; earlier groups frozen).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from switchnas.plugins.progress import progress_bar

from .baselines import GroupedCNN
from .net import FluidNet

__all__ = ["NestedIncrementalTraining", "accuracy", "train_grouped"]


def _cosine(opt: torch.optim.Optimizer, total: int) -> torch.optim.lr_scheduler.LRScheduler:
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / max(total, 1))))


class NestedIncrementalTraining:
    """``Task`` of the Fluid network: nested incremental training and top-1 scoring.

    Args:
        epochs_per_column: epochs of the training split per column (fractions allowed).
        batch_size: training batch size.
        lr: Adam's learning rate (cosine schedule per column).
        eval_batch_size: batch size of scoring.
        threads: torch threads while training (``None``: leave as is).
        progress: show a progress bar.

    Raises:
        ValueError: a non-positive number of epochs, batch size or learning rate.
    """

    metric = "top1"

    def __init__(self, *, epochs_per_column: float = 8.0, batch_size: int = 32,
                 lr: float = 3e-3, eval_batch_size: int = 256, threads: int | None = None,
                 progress: bool = True):
        if epochs_per_column <= 0 or batch_size < 1 or lr <= 0:
            raise ValueError(f"epochs_per_column={epochs_per_column}, batch_size={batch_size} "
                             f"and lr={lr} must be positive")
        self.epochs_per_column, self.batch_size = float(epochs_per_column), int(batch_size)
        self.lr, self.eval_batch_size = float(lr), int(eval_batch_size)
        self.threads, self.progress = threads, progress

    def train(self, net: FluidNet, data: Any, *, seed: int = 0) -> dict[str, Any]:
        """Train ``net``'s columns one after another (earlier ones frozen); return a log
        ``{"columns": [{"column", "steps", "loss"}...]}``."""
        if self.threads:
            torch.set_num_threads(int(self.threads))
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        widths = net.space.dimension("w").choices
        log: dict[str, Any] = {"columns": [], "schedule": "nested-incremental"}
        net.train()
        for k in range(net.devices):
            for i, col in enumerate(net.columns):
                col.requires_grad_(i == k)
            subsets = [s for r in range(1, k + 2)
                       for s in itertools.combinations(range(k + 1), r) if k in s]
            opt = torch.optim.Adam(net.columns[k].parameters(), lr=self.lr)
            steps = max(1, math.ceil(self.epochs_per_column * data.size("train")
                                     / self.batch_size))
            sched = _cosine(opt, steps)
            losses: list[float] = []
            bar = progress_bar(range(steps), desc=f"fluid column {k + 1}/{net.devices}",
                               enabled=self.progress)
            batches = _endless(data, self.batch_size, net.resolution, seed * 1000 + k)
            for _ in bar:
                xb, yb = next(batches)
                with torch.no_grad():
                    frozen = {i: net.column(i)(xb, float(rng.choice(widths[i])))
                              for i in range(k)}
                loss = torch.zeros(())
                for w in {max(widths[k]), float(rng.choice(widths[k]))}:
                    own = net.column(k)(xb, w)
                    for s in subsets:
                        logits = torch.stack([own if i == k else frozen[i] for i in s]).mean(0)
                        loss = loss + F.cross_entropy(logits, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                losses.append(float(loss.detach()))
            log["columns"].append({"column": k, "steps": steps, "subsets": len(subsets),
                                   "loss": float(np.mean(losses[-10:]))})
        for col in net.columns:
            col.requires_grad_(True)
        net.activate(net.space.largest())
        net.eval()
        return log

    @torch.no_grad()
    def evaluate(self, net: FluidNet, configs: Sequence[Mapping[str, Any]], data: Any, *,
                 split: str = "val", return_bn: bool = False) -> Any:
        """Top-1 accuracy (%) of each config on ``split``; with ``return_bn`` also each
        config's (empty: the network has none) batch-norm state."""
        was = net.active
        accs = []
        try:
            net.eval()
            for cfg in progress_bar(configs, desc=f"evaluate ({split})", enabled=self.progress):
                net.activate(cfg)
                accs.append(accuracy(net, data, split, batch_size=self.eval_batch_size))
        finally:
            net.activate(was)
        out = np.asarray(accs, dtype=np.float64)
        return (out, [{} for _ in configs]) if return_bn else out


def _endless(data: Any, batch_size: int, resolution: int, seed: int
             ) -> Any:
    epoch = 0
    while True:
        yield from data.batches("train", batch_size=batch_size, resolution=resolution,
                                shuffle=True, seed=seed + epoch)
        epoch += 1


@torch.no_grad()
def accuracy(model: Any, data: Any, split: str, *, batch_size: int = 256, **kwargs: Any
             ) -> float:
    """Top-1 (%) of ``model(x, **kwargs)`` on ``split`` of ``data`` (at the model's
    ``resolution``)."""
    correct = total = 0
    for xb, yb in data.batches(split, batch_size=batch_size, resolution=model.resolution):
        correct += int((model(xb, **kwargs).argmax(1) == yb).sum())
        total += len(yb)
    return 100.0 * correct / max(total, 1)


def train_grouped(model: GroupedCNN, data: Any, *, epochs_per_group: float = 8.0,
                  batch_size: int = 64, lr: float = 3e-3, seed: int = 0) -> dict[str, Any]:
    """Train a baseline: a dense network for ``groups * epochs_per_group`` epochs, or a
    nested one group after group (only group ``g``'s entries change while it trains,
    on the loss of sub-network ``g``)."""
    torch.manual_seed(seed)
    model.train()
    log: dict[str, Any] = {"stages": []}
    stages = [None] if model.connectivity == "dense" else list(range(model.groups))
    epochs = epochs_per_group * (model.groups if model.connectivity == "dense" else 1)
    for g in stages:
        masks = model.group_parameters_mask(g) if g is not None else None
        params = dict(model.named_parameters())
        opt = torch.optim.Adam(params.values(), lr=lr)
        steps = max(1, math.ceil(epochs * data.size("train") / batch_size))
        sched = _cosine(opt, steps)
        batches = _endless(data, batch_size, model.resolution, seed * 1000 + (g or 0))
        loss = torch.zeros(())
        for _ in range(steps):
            xb, yb = next(batches)
            out = model(xb) if g is None else model(xb, k=g + 1)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if masks is not None:
                for n, p in params.items():
                    if p.grad is not None:
                        p.grad.mul_(masks[n])
            opt.step()
            sched.step()
        log["stages"].append({"group": g, "steps": steps, "loss": float(loss.detach())})
    model.eval()
    return log
