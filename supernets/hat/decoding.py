"""Greedy and beam-search decoding with an incremental cache.

Both work on any :class:`~switchnas.supernets.hat.transformer.Transformer` (the super-network
with a sub-network activated, or an extracted SubTransformer). Outputs are lists of token
ids without BOS/EOS/padding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .transformer import Transformer

__all__ = ["beam_search", "greedy_decode", "max_target_len", "strip"]


def max_target_len(src: torch.Tensor, max_len_a: float = 1.2, max_len_b: int = 10,
                   limit: int | None = None) -> int:
    """fairseq's rule: ``a * longest source + b`` (capped at ``limit``)."""
    n = int(max_len_a * src.shape[1] + max_len_b)
    return n if limit is None else min(n, limit)


def strip(tokens: list[int]) -> list[int]:
    from .transformer import BOS, EOS, PAD

    out = []
    for t in tokens:
        if t == EOS:
            break
        if t not in (PAD, BOS):
            out.append(t)
    return out


@torch.no_grad()
def greedy_decode(model: Transformer, src: torch.Tensor, *, max_len: int | None = None) -> torch.Tensor:
    """Token ids ``(batch, steps)`` (EOS then PAD after a sentence ends)."""
    from .transformer import BOS, EOS, PAD

    steps = max_len or max_target_len(src, limit=model.max_positions)
    enc = model.encode(src)
    cache = model.new_cache()
    b = src.shape[0]
    tok = torch.full((b, 1), BOS, dtype=torch.long, device=src.device)
    done = torch.zeros(b, dtype=torch.bool, device=src.device)
    out = []
    for t in range(steps):
        logits = model.decode(tok, enc, cache=cache, start=t)[:, -1]
        logits[:, PAD] = logits[:, BOS] = float("-inf")
        nxt = logits.argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, PAD), nxt)
        out.append(nxt)
        done |= nxt.eq(EOS)
        tok = nxt[:, None]
        if bool(done.all()):
            break
    return torch.stack(out, dim=1)


@torch.no_grad()
def beam_search(model: Transformer, src: torch.Tensor, *, beam: int = 5, max_len: int | None = None,
                len_penalty: float = 1.0) -> list[list[int]]:
    """Best hypothesis per source (scores are summed log-probs divided by length**len_penalty).

    A sentence stops once ``beam`` hypotheses have ended; the last step forces EOS.
    """
    from .transformer import BOS, EOS, PAD

    steps = max_len or max_target_len(src, limit=model.max_positions)
    b, k = src.shape[0], beam
    enc = model.encode(src).index_select(torch.arange(b, device=src.device).repeat_interleave(k))
    cache = model.new_cache()
    tokens = torch.full((b * k, 1), BOS, dtype=torch.long, device=src.device)
    scores = torch.zeros(b, k, device=src.device)
    scores[:, 1:] = float("-inf")  # all beams start identical: keep one
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(b)]
    for t in range(steps):
        lp = torch.log_softmax(model.decode(tokens[:, -1:], enc, cache=cache, start=t)[:, -1].float(), -1)
        lp[:, PAD] = lp[:, BOS] = float("-inf")
        if t == steps - 1:
            eos_col = lp[:, EOS].clone()
            lp.fill_(float("-inf"))
            lp[:, EOS] = eos_col
        v = lp.shape[-1]
        cand = (scores.view(-1, 1) + lp).view(b, k * v)
        top_s, top_i = cand.topk(min(2 * k, k * v), dim=1)
        new_scores = torch.full((b, k), float("-inf"), device=src.device)
        sel = torch.zeros(b, k, dtype=torch.long, device=src.device)
        new_tok = torch.full((b, k), EOS, dtype=torch.long, device=src.device)
        top_s_l, top_i_l = top_s.tolist(), top_i.tolist()
        for i in range(b):
            j = 0
            done = len(finished[i]) >= k
            for rank, (s, idx) in enumerate(zip(top_s_l[i], top_i_l[i], strict=True)):
                if s == float("-inf"):
                    break
                src_beam, tok = divmod(idx, v)
                if tok == EOS:
                    # as fairseq: an ending counts only among the top ``beam`` candidates
                    if not done and rank < k and len(finished[i]) < k:
                        hyp = tokens[i * k + src_beam, 1:].tolist()
                        finished[i].append((s / (len(hyp) + 1) ** len_penalty, hyp))
                    continue
                if j < k:
                    new_scores[i, j], sel[i, j], new_tok[i, j] = s, i * k + src_beam, tok
                    j += 1
            if done:
                new_scores[i] = float("-inf")
                sel[i] = i * k
        if all(len(f) >= k for f in finished):
            break
        flat = sel.view(-1)
        model.reorder_cache(cache, flat)
        tokens = torch.cat([tokens.index_select(0, flat), new_tok.view(-1, 1)], dim=1)
        scores = new_scores
    out = []
    for i in range(b):
        if finished[i]:
            out.append(strip(max(finished[i], key=lambda h: h[0])[1]))
        else:  # pragma: no cover - the last step forces EOS
            out.append(strip(tokens[i * k, 1:].tolist()))
    return out
