"""Training (sandwich sampling of SubTransformers) and scoring (BLEU or validation loss)."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

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


def _loss(model: Transformer, batch: Batch, label_smoothing: float) -> torch.Tensor:
    logits = model(batch.src, batch.prev)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.target.reshape(-1),
                           ignore_index=PAD, label_smoothing=label_smoothing)


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
        threads: torch threads while training (``None``: unchanged).
        log_every: record the mean loss every this many steps.
        progress: print the loss when it is recorded.
    """

    def __init__(self, *, steps: int = 2000, batch_size: int = 64, lr: float = 1e-3,
                 warmup: int = 200, label_smoothing: float = 0.1, clip_norm: float = 1.0,
                 sandwich: bool = True, random_per_step: int = 1, metric: str = "bleu",
                 beam: int = 5, eval_sentences: int | None = 200, eval_split: str = "valid",
                 threads: int | None = None, log_every: int = 50, progress: bool = False):
        if metric not in _METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose from {list(_METRICS)}")
        self.steps, self.batch_size, self.lr, self.warmup = steps, batch_size, lr, warmup
        self.label_smoothing, self.clip_norm = label_smoothing, clip_norm
        self.sandwich, self.random_per_step = sandwich, random_per_step
        self.metric, self.beam, self.eval_sentences = metric, beam, eval_sentences
        self.eval_split, self.threads, self.log_every = eval_split, threads, log_every
        self.progress = progress

    def _configs(self, net: SuperTransformer, rng: np.random.Generator) -> list[dict[str, Any]]:
        if not self.sandwich:
            return [net.space.sample(rng)]
        return [net.space.largest(), net.space.smallest()] + \
            [net.space.sample(rng) for _ in range(self.random_per_step)]

    def train(self, net: SuperTransformer, data: TranslationData, *, seed: int = 0) -> dict[str, Any]:
        """Train ``net`` in place; return ``{"losses": [[step, loss], ...], "seconds", ...}``."""
        net.bind_vocab(data)
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        old_threads = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, betas=(0.9, 0.98))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min((s + 1) / max(self.warmup, 1), math.sqrt(max(self.warmup, 1) / (s + 1))))
        previous = net.active
        net.train()
        log: list[list[float]] = []
        acc, n_acc, step, t0 = 0.0, 0, 0, time.perf_counter()
        try:
            while step < self.steps:
                for batch in data.batches("train", self.batch_size, rng=rng):
                    if step >= self.steps:
                        break
                    opt.zero_grad(set_to_none=True)
                    for cfg in self._configs(net, rng):
                        net.activate(cfg)
                        loss = _loss(net, batch, self.label_smoothing)
                        loss.backward()
                        acc, n_acc = acc + float(loss.detach()), n_acc + 1
                    if self.clip_norm:
                        torch.nn.utils.clip_grad_norm_(net.parameters(), self.clip_norm)
                    opt.step()
                    sched.step()
                    step += 1
                    if step % self.log_every == 0 or step == self.steps:
                        log.append([step, acc / max(n_acc, 1)])
                        if self.progress:
                            print(f"[hat] step {step}/{self.steps} loss {log[-1][1]:.3f} "
                                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
                        acc, n_acc = 0.0, 0
        finally:
            torch.set_num_threads(old_threads)
            net.activate(previous)
            net.eval()
        return {"losses": log, "steps": step, "seconds": time.perf_counter() - t0,
                "first_loss": log[0][1] if log else None, "last_loss": log[-1][1] if log else None}

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
