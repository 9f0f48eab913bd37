"""The encoder-decoder Transformer that both the super-network and its extracted
SubTransformers are made of.

Tokens use fixed special ids (:data:`PAD`, :data:`BOS`, :data:`EOS`, :data:`UNK`); sources
are right-padded. A decoder layer attends to the concatenation (along the sequence) of the
outputs of the last 1, 2 or 3 encoder layers, as chosen per layer (HAT's arbitrary
encoder-decoder attention).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from .modules import Attention, SuperEmbedding, SuperLayerNorm, SuperLinear, sinusoidal_table
from .space import arbitrary_layers

__all__ = ["BOS", "EOS", "PAD", "UNK", "DecoderCache", "EncoderOut", "Transformer"]

PAD, BOS, EOS, UNK = 0, 1, 2, 3

DecoderCache = list[dict[str, dict[str, torch.Tensor]]]


@dataclass
class EncoderOut:
    states: list[torch.Tensor]  #: output of every encoder layer, (batch, src_len, dim)
    padding_mask: torch.Tensor  #: (batch, src_len), True at padding

    def index_select(self, index: torch.Tensor) -> EncoderOut:
        return EncoderOut([s.index_select(0, index) for s in self.states],
                          self.padding_mask.index_select(0, index))


class _EncoderLayer(nn.Module):
    def __init__(self, dim: int, ffn: int, qkv_dim: int, heads: int, attn_dropout: float):
        super().__init__()
        self.self_attn = Attention(dim, dim, qkv_dim, heads, dropout=attn_dropout)
        self.self_attn_layer_norm = SuperLayerNorm(dim)
        self.fc1 = SuperLinear(dim, ffn)
        self.fc2 = SuperLinear(ffn, dim)
        self.final_layer_norm = SuperLayerNorm(dim)

    def set_active(self, dim: int, ffn: int, heads: int) -> None:
        self.self_attn.set_active(dim, dim, heads)
        self.self_attn_layer_norm.set_active(dim)
        self.fc1.set_active(dim, ffn)
        self.fc2.set_active(ffn, dim)
        self.final_layer_norm.set_active(dim)


class _DecoderLayer(nn.Module):
    def __init__(self, dim: int, enc_dim: int, ffn: int, qkv_dim: int, heads: int,
                 attn_dropout: float):
        super().__init__()
        self.self_attn = Attention(dim, dim, qkv_dim, heads, dropout=attn_dropout)
        self.self_attn_layer_norm = SuperLayerNorm(dim)
        self.encoder_attn = Attention(dim, enc_dim, qkv_dim, heads, dropout=attn_dropout)
        self.encoder_attn_layer_norm = SuperLayerNorm(dim)
        self.fc1 = SuperLinear(dim, ffn)
        self.fc2 = SuperLinear(ffn, dim)
        self.final_layer_norm = SuperLayerNorm(dim)
        self.ende_layers = 1

    def set_active(self, dim: int, enc_dim: int, ffn: int, heads: int, ende_heads: int,
                   arbitrary: int) -> None:
        self.self_attn.set_active(dim, dim, heads)
        self.self_attn_layer_norm.set_active(dim)
        self.encoder_attn.set_active(dim, enc_dim, ende_heads)
        self.encoder_attn_layer_norm.set_active(dim)
        self.fc1.set_active(dim, ffn)
        self.fc2.set_active(ffn, dim)
        self.final_layer_norm.set_active(dim)
        self.ende_layers = arbitrary_layers(arbitrary)


class Transformer(nn.Module):
    """Encoder-decoder Transformer with weight-sharing layers.

    Built at maximal sizes (``encoder_ffn``/``decoder_ffn`` give one maximal FFN width per
    layer); :meth:`set_arch` selects the active part. ``reference_dims`` (encoder,
    decoder) fix the positional table and the dropout scaling, so a network built at
    smaller sizes with the super-network's reference dims computes the same function.
    """

    enc_positions: torch.Tensor
    dec_positions: torch.Tensor

    def __init__(self, *, src_vocab: int, tgt_vocab: int, encoder_embed_dim: int,
                 decoder_embed_dim: int, encoder_ffn: Sequence[int], decoder_ffn: Sequence[int],
                 qkv_dim: int, heads: int = 4, dropout: float = 0.1,
                 attention_dropout: float = 0.0, normalize_before: bool = False,
                 share_all_embeddings: bool = False, max_positions: int = 256,
                 reference_dims: tuple[int, int] | None = None):
        super().__init__()
        if share_all_embeddings and (src_vocab != tgt_vocab):
            raise ValueError(f"share_all_embeddings needs one vocabulary; got src_vocab={src_vocab}, "
                             f"tgt_vocab={tgt_vocab}")
        self.ref_enc, self.ref_dec = reference_dims or (encoder_embed_dim, decoder_embed_dim)
        self.dropout, self.normalize_before = dropout, normalize_before
        self.max_positions = max_positions
        self.src_embed = SuperEmbedding(
            src_vocab, max(encoder_embed_dim, decoder_embed_dim) if share_all_embeddings
            else encoder_embed_dim, PAD)
        # Shared embeddings are one registered module, so the state dict holds no aliased
        # tensors (safetensors refuses them).
        self.tgt_embed_table = (None if share_all_embeddings
                                else SuperEmbedding(tgt_vocab, decoder_embed_dim, PAD))
        self.encoder_layers = nn.ModuleList(
            _EncoderLayer(encoder_embed_dim, f, qkv_dim, heads, attention_dropout) for f in encoder_ffn)
        self.decoder_layers = nn.ModuleList(
            _DecoderLayer(decoder_embed_dim, encoder_embed_dim, f, qkv_dim, heads, attention_dropout)
            for f in decoder_ffn)
        self.encoder_norm = SuperLayerNorm(encoder_embed_dim) if normalize_before else None
        self.decoder_norm = SuperLayerNorm(decoder_embed_dim) if normalize_before else None
        self.register_buffer("enc_positions", sinusoidal_table(max_positions, self.ref_enc),
                             persistent=False)
        self.register_buffer("dec_positions", sinusoidal_table(max_positions, self.ref_dec),
                             persistent=False)
        self.arch: dict[str, int] = {}

    def _enc_layers(self, n: int) -> list[_EncoderLayer]:
        return cast(list[_EncoderLayer], list(self.encoder_layers)[:n])

    def _dec_layers(self, n: int) -> list[_DecoderLayer]:
        return cast(list[_DecoderLayer], list(self.decoder_layers)[:n])

    @property
    def tgt_embed(self) -> SuperEmbedding:
        return self.src_embed if self.tgt_embed_table is None else self.tgt_embed_table

    @property
    def src_vocab(self) -> int:
        return self.src_embed.num_embeddings

    @property
    def tgt_vocab(self) -> int:
        return self.tgt_embed.num_embeddings

    # -- architecture ---------------------------------------------------------------------
    def set_arch(self, cfg: Mapping[str, Any]) -> None:
        """Activate the sub-network ``cfg`` (a canonical HAT config; not validated here)."""
        de, dd = int(cfg["encoder_embed_dim"]), int(cfg["decoder_embed_dim"])
        ne, nd = int(cfg["encoder_layer_num"]), int(cfg["decoder_layer_num"])
        if ne > len(self.encoder_layers) or nd > len(self.decoder_layers):
            raise ValueError(f"config has {ne} encoder / {nd} decoder layers; this network has "
                             f"{len(self.encoder_layers)} / {len(self.decoder_layers)}")
        for i in range(nd):
            if arbitrary_layers(int(cfg["decoder_arbitrary_ende_attn"][i])) > ne:
                raise ValueError(f"decoder layer {i} attends to more encoder layers than the {ne} "
                                 "active ones")
        for i, enc_layer in enumerate(self._enc_layers(ne)):
            enc_layer.set_active(de, int(cfg["encoder_ffn_embed_dim"][i]),
                                              int(cfg["encoder_self_attention_heads"][i]))
        for i, dec_layer in enumerate(self._dec_layers(nd)):
            dec_layer.set_active(
                dd, de, int(cfg["decoder_ffn_embed_dim"][i]),
                int(cfg["decoder_self_attention_heads"][i]),
                int(cfg["decoder_ende_attention_heads"][i]),
                int(cfg["decoder_arbitrary_ende_attn"][i]))
        if self.encoder_norm is not None and self.decoder_norm is not None:
            self.encoder_norm.set_active(de)
            self.decoder_norm.set_active(dd)
        self.arch = {"de": de, "dd": dd, "ne": ne, "nd": nd}

    def _drop(self, x: torch.Tensor, ref: int, dim: int | None = None) -> torch.Tensor:
        # HAT scales dropout with the active embedding width (``dim``, default the last
        # axis) relative to the super-network's.
        p = self.dropout * (dim or x.shape[-1]) / ref
        return F.dropout(x, p=p, training=self.training)

    def _sublayer(self, x: torch.Tensor, norm: nn.Module, fn: Any, ref: int) -> torch.Tensor:
        if self.normalize_before:
            return x + self._drop(fn(norm(x)), ref)
        return norm(x + self._drop(fn(x), ref))

    # -- encoder ----------------------------------------------------------------------------
    def encode(self, src: torch.Tensor) -> EncoderOut:
        de, ne = self.arch["de"], self.arch["ne"]
        if src.shape[1] > self.max_positions:
            raise ValueError(f"source of {src.shape[1]} tokens exceeds max_positions={self.max_positions}")
        pad = src.eq(PAD)
        x = self.src_embed(src, de) * math.sqrt(de) + self.enc_positions[: src.shape[1], :de]
        x = self._drop(x, self.ref_enc)
        states = []
        for layer in self._enc_layers(ne):
            x = self._sublayer(x, layer.self_attn_layer_norm,
                               lambda h, a=layer.self_attn: a(h, key_padding_mask=pad), self.ref_enc)
            x = self._sublayer(x, layer.final_layer_norm,
                               lambda h, lay=layer: lay.fc2(self._drop(F.relu(lay.fc1(h)), self.ref_enc, h.shape[-1])),
                               self.ref_enc)
            states.append(x)
        if self.encoder_norm is not None:
            states = [self.encoder_norm(s) for s in states]
        return EncoderOut(states, pad)

    # -- decoder ----------------------------------------------------------------------------
    def new_cache(self) -> DecoderCache:
        return [{"self": {}, "ende": {}} for _ in range(self.arch["nd"])]

    @staticmethod
    def reorder_cache(cache: DecoderCache, index: torch.Tensor) -> None:
        for layer in cache:
            for part in layer.values():
                for k, v in part.items():
                    part[k] = v.index_select(0, index)

    def decode(self, prev: torch.Tensor, enc: EncoderOut, *, cache: DecoderCache | None = None,
               start: int = 0) -> torch.Tensor:
        """Logits ``(batch, len, tgt_vocab)`` for ``prev`` (teacher forcing), or with
        ``cache`` for the new positions ``start ..`` only (incremental decoding)."""
        dd, nd = self.arch["dd"], self.arch["nd"]
        end = start + prev.shape[1]
        if end > self.max_positions:
            raise ValueError(f"target of {end} tokens exceeds max_positions={self.max_positions}")
        x = self.tgt_embed(prev, dd) * math.sqrt(dd) + self.dec_positions[start:end, :dd]
        x = self._drop(x, self.ref_dec)
        ref = self.ref_dec
        for i, layer in enumerate(self._dec_layers(nd)):
            lc = cache[i] if cache is not None else None
            n = layer.ende_layers
            if lc is not None and "k" in lc["ende"]:
                memory, mem_pad = enc.states[-1], lc["ende"]["pad"]  # projections are cached
            else:
                memory = enc.states[-1] if n == 1 else torch.cat(enc.states[::-1][:n], dim=1)
                mem_pad = enc.padding_mask if n == 1 else enc.padding_mask.repeat(1, n)
                if lc is not None:
                    lc["ende"]["pad"] = mem_pad
            x = self._sublayer(
                x, layer.self_attn_layer_norm,
                lambda h, a=layer.self_attn, c=lc: a(h, causal=True,
                                                     cache=None if c is None else c["self"]), ref)
            x = self._sublayer(
                x, layer.encoder_attn_layer_norm,
                lambda h, a=layer.encoder_attn, c=lc, m=memory, mp=mem_pad: a(
                    h, m, key_padding_mask=mp, cache=None if c is None else c["ende"]), ref)
            x = self._sublayer(x, layer.final_layer_norm,
                               lambda h, lay=layer: lay.fc2(self._drop(F.relu(lay.fc1(h)), ref, h.shape[-1])), ref)
        if self.decoder_norm is not None:
            x = self.decoder_norm(x)
        return self.tgt_embed.project(x)

    def forward(self, src: torch.Tensor | Sequence[torch.Tensor],
                prev: torch.Tensor | None = None) -> torch.Tensor:
        """``(src, prev)`` -> teacher-forced logits; ``src`` alone -> greedy translation
        (token ids, ``(batch, len)``). A tuple ``(src, prev)`` as one argument also works."""
        if isinstance(src, (tuple, list)):
            src, prev = src[0], (src[1] if len(src) > 1 else None)
        assert isinstance(src, torch.Tensor)
        if prev is None:
            from .decoding import greedy_decode

            return greedy_decode(self, src)
        return self.decode(prev, self.encode(src))
