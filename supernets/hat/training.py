"""Training (sandwich sampling of SubTransformers) and scoring (BLEU or validation loss)."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import distributed
from ..checkpoint import CheckpointDir, restore_optimisation, restore_rng, training_state
from ..distillation import soft_target_loss
from ..distributed import Trainer
from .data import Batch, TranslationData
from .decoding import beam_search, greedy_decode, max_target_len, strip
from .supernet import SuperTransformer
from .transformer import PAD, Transformer

__all__ = ["HATTask", "bleu", "translate"]

_METRICS = ("bleu", "neg_valid_loss")


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (sacrebleu, default 13a tokenisation) of detokenised strings."""
    import sacrebleu

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score)


def translate(model: Transformer, data: TranslationData, split: str = "valid", *,
              beam: int = 5, limit: int | None = None, batch_size: int = 64,
              len_penalty: float = 1.0) -> list[str]:
    """Detokenised translations of ``split`` (greedy when ``beam <= 1``)."""
    was = model.training
    model.eval()
    out: list[str] = []
    try:
        for b in data.batches(split, batch_size, limit=limit):
            max_len = max_target_len(b.src, limit=model.max_positions)
            if beam <= 1:
                ids = [strip(r) for r in greedy_decode(model, b.src, max_len=max_len).tolist()]
            else:
                ids = beam_search(model, b.src, beam=beam, max_len=max_len, len_penalty=len_penalty)
            out += [data.tgt_dict.decode(t) for t in ids]
    finally:
        model.train(was)
    return out


class HATTask:
    """Trains a :class:`SuperTransformer` and scores its SubTransformers.

    Each step samples SubTransformers sandwich-style: the largest, the smallest and
    ``random_per_step`` random ones, their gradients summed (``sandwich=False``: one random
    SubTransformer per step, HAT's own recipe). Adam with inverse-sqrt decay after a
    linear warm-up.

    Args:
        steps: optimiser steps (the training budget).
        batch_size: sentence pairs per step.
        lr, warmup, label_smoothing, clip_norm: optimisation.
        metric: "bleu" (higher is better) or "neg_valid_loss".
        beam: beam size for BLEU (1 = greedy); HAT uses 5.
        eval_sentences: validation pairs scored per config (``None``: all).
        eval_split: split scored by :meth:`evaluate`.
        kd_ratio: weight of distillation from the largest SubTransformer's soft targets
            (in-place: the shared weights' largest sub-network, the one sandwich training
            already runs); 0, the default, is HAT's recipe.
        kd_temperature: softmax temperature of the soft targets.
        threads: torch threads while training (``None``: unchanged).
        log_every: record the mean loss every this many steps.
        progress: print the loss when it is recorded.
    """

    def __init__(self, *, steps: int = 2000, batch_size: int = 64, lr: float = 1e-3,
                 warmup: int = 200, label_smoothing: float = 0.1, clip_norm: float = 1.0,
                 sandwich: bool = True, random_per_step: int = 1, metric: str = "bleu",
                 beam: int = 5, eval_sentences: int | None = 200, eval_split: str = "valid",
                 kd_ratio: float = 0.0, kd_temperature: float = 1.0,
                 threads: int | None = None, log_every: int = 50, progress: bool = False):
        if metric not in _METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose from {list(_METRICS)}")
        self.steps, self.batch_size, self.lr, self.warmup = steps, batch_size, lr, warmup
        self.label_smoothing, self.clip_norm = label_smoothing, clip_norm
        self.sandwich, self.random_per_step = sandwich, random_per_step
        self.metric, self.beam, self.eval_sentences = metric, beam, eval_sentences
        self.eval_split, self.threads, self.log_every = eval_split, threads, log_every
        if kd_ratio < 0 or kd_temperature <= 0:
            raise ValueError(f"kd_ratio={kd_ratio} must be >= 0 and kd_temperature="
                             f"{kd_temperature} > 0")
        self.kd_ratio, self.kd_temperature = float(kd_ratio), float(kd_temperature)
        self.progress = progress

    def _configs(self, net: SuperTransformer, rng: np.random.Generator) -> list[dict[str, Any]]:
        if not self.sandwich:
            return [net.space.sample(rng)]
        return [net.space.largest(), net.space.smallest()] + \
            [net.space.sample(rng) for _ in range(self.random_per_step)]

    def train(self, net: SuperTransformer, data: TranslationData, *, seed: int = 0,
              trainer: Trainer | None = None) -> dict[str, Any]:
        """Train ``net`` in place; return ``{"losses": [[step, loss], ...], "seconds", ...}``.

        In a process group (:mod:`switchnas.supernets.distributed`) every rank runs this
        with the same seed and forwards its shard of each global batch of ``batch_size``.

        Args:
            net: the SuperTransformer.
            data: the language pair.
            seed: seeds the sampler, the data order and torch.
            trainer: device, mixed precision and checkpoints (default: CPU, none). With a
                checkpoint folder holding a checkpoint, training continues from it.

        Raises:
            ValueError: ``batch_size`` smaller than the number of ranks.
        """
        trainer = trainer or Trainer()
        world = distributed.world_size()
        if self.batch_size < world:
            raise ValueError(f"batch_size={self.batch_size} is smaller than the {world} ranks")
        net.bind_vocab(data)
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        old_threads = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        device, home = trainer.torch_device, next(net.parameters()).device
        net.to(device)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, betas=(0.9, 0.98))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min((s + 1) / max(self.warmup, 1), math.sqrt(max(self.warmup, 1) / (s + 1))))
        scaler = torch.amp.GradScaler("cuda") if trainer.use_amp else None
        ckpt = (CheckpointDir(trainer.checkpoint_dir)
                if trainer.checkpoint_dir and trainer.checkpoint_every else None)
        previous = net.active
        log: list[list[float]] = []
        acc, n_acc, step, skip, t0 = 0.0, 0, 0, 0, time.perf_counter()
        saved = ckpt.load() if ckpt else None
        if saved is not None:
            net.load_state_dict(saved["model"])
            restore_optimisation(saved, optimizer=opt, scheduler=sched, scaler=scaler)
            log, acc, n_acc = saved["log"], saved["acc"], saved["n_acc"]
            step, skip = saved["position"]["step"], saved["position"]["batch"]
            rng.bit_generator.state = saved["position"]["epoch_rng"]
        net.train()
        try:
            while step < self.steps:
                # the sampler's state before this epoch's shuffle: a resumed run replays it
                epoch_rng = rng.bit_generator.state
                for b_idx, batch in enumerate(data.batches("train", self.batch_size, rng=rng)):
                    if b_idx < skip:
                        continue
                    if saved is not None:  # the epoch's order is replayed: now the rest
                        restore_rng(saved["rng"], rng)
                        saved = None
                    if step >= self.steps:
                        break
                    if len(batch.src) < world:  # a rank would get no rows
                        continue
                    losses = self._step(net, batch, rng, opt, scaler, device)
                    sched.step()
                    step += 1
                    acc, n_acc = acc + sum(losses), n_acc + len(losses)
                    if step % self.log_every == 0 or step == self.steps:
                        log.append([step, acc / max(n_acc, 1)])
                        if self.progress and distributed.rank() == 0:
                            print(f"[hat] step {step}/{self.steps} loss {log[-1][1]:.3f} "
                                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
                        acc, n_acc = 0.0, 0
                    if ckpt is not None and step % trainer.checkpoint_every == 0 \
                            and distributed.rank() == 0:
                        ckpt.save(training_state(
                            model=net, optimizer=opt, scheduler=sched, scaler=scaler, rng=rng,
                            log=log, acc=acc, n_acc=n_acc,
                            position={"step": step, "batch": b_idx + 1, "epoch_rng": epoch_rng}))
                if saved is not None:  # the checkpoint closed its epoch
                    restore_rng(saved["rng"], rng)
                    saved = None
                skip = 0
        finally:
            torch.set_num_threads(old_threads)
            net.activate(previous)
            net.eval()
            net.to(home)
        return {"losses": log, "steps": step, "seconds": time.perf_counter() - t0,
                "first_loss": log[0][1] if log else None, "last_loss": log[-1][1] if log else None,
                "ranks": world, "distill": self.kd_ratio > 0}

    def _step(self, net: SuperTransformer, batch: Batch, rng: np.random.Generator,
              opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None,
              device: torch.device) -> list[float]:
        """One optimiser step on this rank's shard of a global batch; each sampled
        SubTransformer's loss on the global batch (token mean)."""
        lo, hi = distributed.shard_bounds(len(batch.src))
        src, prev, target = (t[lo:hi].to(device) for t in (batch.src, batch.prev, batch.target))
        ntokens = max(batch.ntokens, 1)  # of the global batch: the ranks' sums add up
        mask = target.ne(PAD)
        configs = self._configs(net, rng)
        largest = net.space.largest()
        teacher: torch.Tensor | None = None
        amp = torch.autocast(device.type, dtype=torch.float16, enabled=scaler is not None)
        if self.kd_ratio > 0 and configs[0] != largest:
            net.activate(largest)
            with torch.no_grad(), amp:
                teacher = net(src, prev)[mask]
        opt.zero_grad(set_to_none=True)
        local: list[float] = []
        for cfg in configs:
            net.activate(cfg)
            with amp:
                logits = net(src, prev)
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                       ignore_index=PAD, label_smoothing=self.label_smoothing,
                                       reduction="sum") / ntokens
                if self.kd_ratio > 0 and cfg == largest:
                    teacher = logits[mask].detach()
                elif teacher is not None:  # distillation from the largest SubTransformer
                    loss = loss + self.kd_ratio * soft_target_loss(
                        logits[mask], teacher, self.kd_temperature, reduction="sum") / ntokens
            (scaler.scale(loss) if scaler is not None else loss).backward()
            local.append(float(loss.detach()))
        losses = distributed.all_reduce_gradients(net.parameters(), local)
        if scaler is not None:
            scaler.unscale_(opt)
        if self.clip_norm:
            torch.nn.utils.clip_grad_norm_(net.parameters(), self.clip_norm)
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        return losses

    @torch.no_grad()
    def valid_loss(self, net: SuperTransformer, config: Mapping[str, Any],
                   data: TranslationData, *, split: str | None = None) -> float:
        """Token-level cross-entropy (no smoothing) of ``config`` on ``split`` (default
        ``eval_split``)."""
        net.activate(config)
        net.eval()
        total, n = 0.0, 0
        for b in data.batches(split or self.eval_split, self.batch_size, limit=self.eval_sentences):
            logits = net(b.src, b.prev)
            total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), b.target.reshape(-1),
                                           ignore_index=PAD, reduction="sum"))
            n += b.ntokens
        return total / max(n, 1)

    def evaluate(self, net: SuperTransformer, configs: Sequence[Mapping[str, Any]],
                 data: TranslationData, *, split: str | None = None) -> np.ndarray:
        """BLEU (or minus the loss) of each config on ``split`` (default ``eval_split``);
        higher is better."""
        split = split or self.eval_split
        net.bind_vocab(data)
        previous = net.active
        scores = []
        try:
            for cfg in configs:
                if self.metric == "neg_valid_loss":
                    scores.append(-self.valid_loss(net, cfg, data, split=split))
                    continue
                net.activate(cfg)
                hyps = translate(net, data, split, beam=self.beam,
                                 limit=self.eval_sentences, batch_size=self.batch_size)
                scores.append(bleu(hyps, data.references(split, self.eval_sentences)))
        finally:
            net.activate(previous)
        return np.asarray(scores, dtype=np.float64)
