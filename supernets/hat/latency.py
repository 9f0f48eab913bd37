"""Latency the way HAT measured it, and Dynamic-HAT switch times.

HAT's protocol: batch 1, a fixed source of ``src_len`` tokens (30 for WMT, 23 for IWSLT),
the encoder run once, then the decoder run for ``steps`` autoregressive steps with an
incremental cache over ``beam`` rows (the encoder output repeated per beam); of the
repeated runs, the fastest and slowest 10% are dropped before averaging.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from .transformer import BOS, EOS, Transformer

if TYPE_CHECKING:
    from .supernet import SuperTransformer

__all__ = ["HATWorkload", "hat_source", "measure_hat_latency", "measure_switch_time", "trimmed"]


def hat_source(batch: int = 1, src_len: int = 30) -> torch.Tensor:
    """HAT's dummy source: BOS-like marker then a repeated token (ids 2, 7, 7, ...)."""
    return torch.tensor([[EOS] + [7] * (src_len - 1)] * batch, dtype=torch.long)


def trimmed(samples: Sequence[float]) -> np.ndarray:
    """HAT's rule: sort, drop the lowest ``int(0.1 n)`` and highest ``max(1, int(0.1 n))``."""
    s = np.sort(np.asarray(samples, dtype=np.float64))
    n = len(s)
    lo, hi = int(n * 0.1), max(1, int(n * 0.1))
    kept = s[lo: n - hi]
    return kept if len(kept) else s


class HATWorkload(nn.Module):
    """Encoder once, then ``steps`` cached decoder steps over ``batch * beam`` rows.

    Calling it returns the last step's logits; :meth:`encoder` and :meth:`decoder` run the
    two halves separately (HAT times them separately).
    """

    def __init__(self, model: Transformer, *, steps: int = 30, beam: int = 5):
        super().__init__()
        self.model, self.steps, self.beam = model, int(steps), int(beam)

    def encoder(self, src: torch.Tensor) -> Any:
        return self.model.encode(src)

    def decoder(self, enc: Any) -> torch.Tensor:
        b = enc.padding_mask.shape[0]
        enc = enc.index_select(torch.arange(b).repeat_interleave(self.beam))
        cache = self.model.new_cache()
        tok = torch.full((b * self.beam, 1), BOS, dtype=torch.long)
        logits = torch.empty(0)
        for t in range(self.steps):
            logits = self.model.decode(tok, enc, cache=cache, start=t)
            tok = torch.full_like(tok, 7)  # HAT feeds fixed tokens: content does not change cost
        return logits

    @torch.no_grad()
    def forward(self, src: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(src))


@torch.no_grad()
def measure_hat_latency(net: SuperTransformer, config: Mapping[str, Any], *, src_len: int = 30,
                        steps: int = 30, beam: int = 5, iters: int = 30, warmup: int = 5,
                        threads: int | None = None) -> dict[str, float]:
    """Encoder and decoder latency (ms) of ``config`` on this CPU with HAT's protocol.

    Returns:
        ``latency_mean_encoder``, ``latency_mean_decoder``, ``latency_std_encoder``,
        ``latency_std_decoder`` (the columns of HAT's latency datasets) and ``latency_ms``
        (encoder + decoder means).
    """
    old = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        wl, (src,) = net.latency_workload(config, src_len=src_len, steps=steps, beam=beam)
        assert isinstance(wl, HATWorkload)
        for _ in range(warmup):
            wl(src)
        enc_t, dec_t = [], []
        for _ in range(iters):
            t0 = time.perf_counter()
            enc = wl.encoder(src)
            t1 = time.perf_counter()
            wl.decoder(enc)
            t2 = time.perf_counter()
            enc_t.append((t1 - t0) * 1e3)
            dec_t.append((t2 - t1) * 1e3)
    finally:
        torch.set_num_threads(old)
    e, d = trimmed(enc_t), trimmed(dec_t)
    return {"latency_mean_encoder": float(e.mean()), "latency_mean_decoder": float(d.mean()),
            "latency_std_encoder": float(e.std()), "latency_std_decoder": float(d.std()),
            "latency_ms": float(e.mean() + d.mean())}


def measure_switch_time(net: SuperTransformer, configs: Sequence[Mapping[str, Any]], *,
                        repeats: int = 20) -> dict[str, float]:
    """Time (ms) to switch between ``configs`` in place (:meth:`activate`, validation
    included) and by extraction (a standalone copy of the weights), cycling through them.

    Returns median and p90 of each: ``activate_ms_median``, ``activate_ms_p90``,
    ``extract_ms_median``, ``extract_ms_p90``.
    """
    if not configs:
        raise ValueError("measure_switch_time needs at least one config")

    def times(fn: Callable[[Mapping[str, Any]], Any], n: int) -> np.ndarray:
        out = []
        for i in range(n):
            c = configs[i % len(configs)]
            t0 = time.perf_counter()
            fn(c)
            out.append((time.perf_counter() - t0) * 1e3)
        return np.asarray(out)

    previous = net.active
    try:
        act = times(net.activate, repeats * len(configs))
        ext = times(net.extract, max(repeats // 4, 1) * len(configs))
    finally:
        net.activate(previous)
    return {"activate_ms_median": float(np.median(act)), "activate_ms_p90": float(np.percentile(act, 90)),
            "extract_ms_median": float(np.median(ext)), "extract_ms_p90": float(np.percentile(ext, 90))}
