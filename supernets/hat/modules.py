"""Weight-sharing layers: every sub-network uses the leading slices of the shared weights.

Each layer stores its active sizes (set by :meth:`Transformer.set_arch`) and slices its
weights in ``forward``; a layer built at exactly the active sizes computes the same
thing with whole tensors, which is what extraction relies on.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Attention", "SuperEmbedding", "SuperLayerNorm", "SuperLinear", "sinusoidal_table"]


class SuperLinear(nn.Module):
    """``nn.Linear`` whose active part is ``weight[:out_dim, :in_dim]``, ``bias[:out_dim]``."""

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        nn.init.xavier_uniform_(self.weight)
        self.in_dim, self.out_dim = in_features, out_features

    def set_active(self, in_dim: int, out_dim: int) -> None:
        self.in_dim, self.out_dim = int(in_dim), int(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight[: self.out_dim, : self.in_dim]
        b = None if self.bias is None else self.bias[: self.out_dim]
        return F.linear(x, w, b)


class SuperEmbedding(nn.Module):
    """Token embedding whose active part is ``weight[:, :dim]``.

    The width is passed per call, so one table can serve both sides at different widths
    (shared source/target embeddings, as HAT's WMT models).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_embeddings, embedding_dim))
        nn.init.normal_(self.weight, mean=0.0, std=embedding_dim**-0.5)
        with torch.no_grad():
            self.weight[padding_idx].zero_()
        self.padding_idx = padding_idx

    @property
    def num_embeddings(self) -> int:
        return int(self.weight.shape[0])

    def forward(self, tokens: torch.Tensor, dim: int) -> torch.Tensor:
        return F.embedding(tokens, self.weight[:, :dim], self.padding_idx)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Output logits with the tied embedding matrix (width of ``x``)."""
        return F.linear(x, self.weight[:, : x.shape[-1]])


class SuperLayerNorm(nn.Module):
    """``nn.LayerNorm`` over the leading ``dim`` features."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.dim, self.eps = dim, eps

    def set_active(self, dim: int) -> None:
        self.dim = int(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, (self.dim,), self.weight[: self.dim], self.bias[: self.dim], self.eps)


Cache = dict[str, torch.Tensor]


class Attention(nn.Module):
    """Multi-head attention with a fixed q/k/v projection width ``qkv_dim`` (HAT's design:
    the number of heads changes the head size, not the weights)."""

    def __init__(self, q_dim: int, kv_dim: int, qkv_dim: int, heads: int, *, dropout: float = 0.0):
        super().__init__()
        self.q_proj = SuperLinear(q_dim, qkv_dim)
        self.k_proj = SuperLinear(kv_dim, qkv_dim)
        self.v_proj = SuperLinear(kv_dim, qkv_dim)
        self.out_proj = SuperLinear(qkv_dim, q_dim)
        self.qkv_dim, self.heads, self.dropout = qkv_dim, heads, dropout

    def set_active(self, q_dim: int, kv_dim: int, heads: int) -> None:
        if self.qkv_dim % heads:
            raise ValueError(f"qkv_dim={self.qkv_dim} is not divisible by {heads} heads")
        self.q_proj.set_active(q_dim, self.qkv_dim)
        self.k_proj.set_active(kv_dim, self.qkv_dim)
        self.v_proj.set_active(kv_dim, self.qkv_dim)
        self.out_proj.set_active(self.qkv_dim, q_dim)
        self.heads = int(heads)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.qkv_dim // self.heads).transpose(1, 2)

    def forward(self, query: torch.Tensor, kv: torch.Tensor | None = None, *,
                key_padding_mask: torch.Tensor | None = None, causal: bool = False,
                cache: Cache | None = None) -> torch.Tensor:
        """``kv=None`` is self-attention (``cache`` then grows by the new positions);
        otherwise ``kv`` is the static memory (``cache`` keeps its projections).
        ``key_padding_mask`` is ``True`` at padded keys."""
        q = self._split(self.q_proj(query))
        if kv is None:
            k, v = self._split(self.k_proj(query)), self._split(self.v_proj(query))
            if cache is not None:
                if "k" in cache:
                    k = torch.cat([cache["k"], k], dim=2)
                    v = torch.cat([cache["v"], v], dim=2)
                cache["k"], cache["v"] = k, v
        elif cache is not None and "k" in cache:
            k, v = cache["k"], cache["v"]
        else:
            k, v = self._split(self.k_proj(kv)), self._split(self.v_proj(kv))
            if cache is not None:
                cache["k"], cache["v"] = k, v
        mask = None
        if key_padding_mask is not None:
            mask = ~key_padding_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal and query.shape[1] > 1,
            dropout_p=self.dropout if self.training else 0.0)
        b, _, t, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, t, self.qkv_dim))


def sinusoidal_table(positions: int, dim: int) -> torch.Tensor:
    """fairseq's layout: sines in the first half of the features, cosines in the second."""
    half = dim // 2
    freq = torch.exp(torch.arange(half, dtype=torch.float32) * -(math.log(10000.0) / max(half - 1, 1)))
    angles = torch.arange(positions, dtype=torch.float32)[:, None] * freq[None, :]
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    if dim % 2:
        table = torch.cat([table, torch.zeros(positions, 1)], dim=1)
    return table
