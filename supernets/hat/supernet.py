"""HAT's SuperTransformer as a switchnas ``SuperNet``."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..base import Config
from .space import HATSpace
from .transformer import UNK, Transformer

__all__ = ["SubTransformer", "SuperTransformer"]

_N_SPECIAL = UNK + 1


def _generate(model: Transformer, src_tokens: torch.Tensor, *, beam: int, max_len: int | None,
              len_penalty: float) -> list[list[int]]:
    from .decoding import beam_search, greedy_decode, max_target_len, strip

    if isinstance(beam, bool) or not isinstance(beam, int) or beam < 1:
        raise ValueError(f"beam={beam!r} must be a positive integer (1: greedy)")
    if not isinstance(src_tokens, torch.Tensor) or src_tokens.ndim != 2 \
            or src_tokens.dtype != torch.long:
        raise ValueError("src_tokens must be a (batch, length) long tensor of source ids "
                         "ending in EOS")
    steps = max_len or max_target_len(src_tokens, limit=model.max_positions)
    was = model.training
    model.eval()
    try:
        if beam == 1:
            return [strip(r) for r in greedy_decode(model, src_tokens, max_len=steps).tolist()]
        return beam_search(model, src_tokens, beam=beam, max_len=steps, len_penalty=len_penalty)
    finally:
        model.train(was)


class SubTransformer(Transformer):
    """A standalone Transformer at one config's exact sizes (what :meth:`extract` returns)."""

    def __init__(self, config: Mapping[str, Any], **kwargs: Any):
        cfg = dict(config)
        ne, nd = int(cfg["encoder_layer_num"]), int(cfg["decoder_layer_num"])
        super().__init__(encoder_embed_dim=int(cfg["encoder_embed_dim"]),
                         decoder_embed_dim=int(cfg["decoder_embed_dim"]),
                         encoder_ffn=[int(f) for f in cfg["encoder_ffn_embed_dim"][:ne]],
                         decoder_ffn=[int(f) for f in cfg["decoder_ffn_embed_dim"][:nd]],
                         **kwargs)
        self.config = cfg
        self.set_arch(cfg)

    def generate(self, src_tokens: torch.Tensor, config: Mapping[str, Any] | None = None, *,
                 beam: int = 5, max_len: int | None = None,
                 len_penalty: float = 1.0) -> list[list[int]]:
        """Translate: see :meth:`SuperTransformer.generate`; ``config``, if given, must be
        this sub-network's own."""
        if config is not None and dict(config) != self.config:
            raise ValueError("a SubTransformer generates only with its own config")
        return _generate(self, src_tokens, beam=beam, max_len=max_len, len_penalty=len_penalty)


class SuperTransformer(Transformer):
    """HAT's SuperTransformer: sub-networks use leading slices of every shared weight.

    Args:
        src_vocab: source vocabulary size (special ids 0-3 are pad, bos, eos, unk).
        tgt_vocab: target vocabulary size.
        space: HAT space name ("space0" WMT, "space1" IWSLT) or a space dict
            (``HATSpace.to_dict()``, e.g. a reduced space); a dict must lie inside the
            named space ``base_space``.
        base_space: the named space whose maximal sizes the weights are built for, when
            ``space`` is a dict.
        width_divisor: divides every width choice (a cheaper copy of the space's shape).
        qkv_dim: q/k/v projection width (HAT: 512); default ``512 // width_divisor``.
        vocab_hash: fingerprint of the vocabularies the weights were trained with
            (set by training; data with another vocabulary is refused).
    """

    space: HATSpace

    def __init__(self, *, src_vocab: int, tgt_vocab: int, space: str | Mapping[str, Any] = "space0",
                 base_space: str = "space0", width_divisor: int = 1, qkv_dim: int | None = None,
                 encoder_layers: int = 6, decoder_layers: int = 6, dropout: float = 0.1,
                 attention_dropout: float = 0.0, normalize_before: bool = False,
                 share_all_embeddings: bool = False, max_positions: int = 256,
                 vocab_hash: str | None = None):
        for name, v in (("src_vocab", src_vocab), ("tgt_vocab", tgt_vocab)):
            if int(v) <= _N_SPECIAL:
                raise ValueError(f"{name}={v!r} must exceed the {_N_SPECIAL} special tokens")
        base_name = space if isinstance(space, str) else base_space
        full = HATSpace.build(base_name, width_divisor=width_divisor, encoder_layers=encoder_layers,
                              decoder_layers=tuple(range(1, decoder_layers + 1)))
        sp = full if isinstance(space, str) else _subspace(full, space)
        qkv = int(qkv_dim) if qkv_dim is not None else 512 // width_divisor
        dims = full.dimensions
        self._kwargs: dict[str, Any] = dict(
            src_vocab=int(src_vocab), tgt_vocab=int(tgt_vocab),
            space=space if isinstance(space, str) else dict(space), base_space=base_name,
            width_divisor=int(width_divisor), qkv_dim=qkv, encoder_layers=int(encoder_layers),
            decoder_layers=int(decoder_layers), dropout=float(dropout),
            attention_dropout=float(attention_dropout), normalize_before=bool(normalize_before),
            share_all_embeddings=bool(share_all_embeddings), max_positions=int(max_positions),
            vocab_hash=vocab_hash)
        self._core = dict(
            src_vocab=int(src_vocab), tgt_vocab=int(tgt_vocab), qkv_dim=qkv,
            heads=max(dims["encoder_self_attention_heads"][0]), dropout=float(dropout),
            attention_dropout=float(attention_dropout), normalize_before=bool(normalize_before),
            share_all_embeddings=bool(share_all_embeddings), max_positions=int(max_positions))
        super().__init__(
            encoder_embed_dim=max(dims["encoder_embed_dim"][0]),
            decoder_embed_dim=max(dims["decoder_embed_dim"][0]),
            encoder_ffn=[max(c) for c in dims["encoder_ffn_embed_dim"]],
            decoder_ffn=[max(c) for c in dims["decoder_ffn_embed_dim"]], **self._core)
        self.space = sp
        self.vocab_hash = vocab_hash
        self.active: Config = sp.largest()
        self.activate(self.active)

    def generate(self, src_tokens: torch.Tensor, config: Mapping[str, Any] | None = None, *,
                 beam: int = 5, max_len: int | None = None,
                 len_penalty: float = 1.0) -> list[list[int]]:
        """Translate ``src_tokens`` with the active sub-network (or ``config``, which is
        then activated), as the training task's evaluation does.

        Args:
            src_tokens: ``(batch, length)`` source ids, each sentence followed by EOS and
                right-padded with PAD.
            config: a sub-network to activate first (default: the active one).
            beam: beam size; 1 decodes greedily.
            max_len: at most this many target tokens (default fairseq's
                ``1.2 * length + 10``, capped at ``max_positions``).
            len_penalty: hypotheses are scored by log-probability / length ** len_penalty.

        Returns:
            Per sentence, the target ids without BOS, EOS and padding.

        Raises:
            ValueError: a bad ``beam``, ``src_tokens`` or ``config``.
        """
        if config is not None:
            self.activate(config)
        return _generate(self, src_tokens, beam=beam, max_len=max_len, len_penalty=len_penalty)

    # -- SuperNet protocol ------------------------------------------------------------------
    def spec(self) -> dict[str, Any]:
        """``{"name", "kwargs", "target"}``: the registered name bundles use (``"hat"``;
        ``None`` for an unregistered subclass), the constructor arguments, and the import
        path (for ``trust_target`` users only; bundles never store it under a name)."""
        from switchnas.runtime import supernet_name

        cls = type(self)
        kwargs = copy.deepcopy(dict(self._kwargs, vocab_hash=self.vocab_hash))
        return {"name": supernet_name(cls), "kwargs": kwargs,
                "target": f"{cls.__module__}:{cls.__qualname__}"}

    def activate(self, config: Mapping[str, Any]) -> None:
        cfg = self.space.validate(config)
        self.set_arch(cfg)
        self.active = cfg

    def extract(self, config: Mapping[str, Any]) -> SubTransformer:
        cfg = self.space.validate(config)
        sub = SubTransformer(cfg, reference_dims=(self.ref_enc, self.ref_dec), **self._core)
        own = dict(self.named_parameters(remove_duplicate=False))
        with torch.no_grad():
            for name, p in sub.named_parameters(remove_duplicate=False):
                src = own[name]
                p.copy_(src[tuple(slice(0, n) for n in p.shape)])
        sub.train(self.training)
        return sub

    def example_input(self, config: Mapping[str, Any] | None = None, batch: int = 1, *,
                      src_len: int = 30, generator: torch.Generator | None = None) -> torch.Tensor:
        """Source tokens ``(batch, src_len)`` of random non-special ids; calling the network
        on them translates greedily (what a runtime bundle does with a request)."""
        if config is not None:
            self.space.validate(config)
        return torch.randint(_N_SPECIAL, self.src_vocab, (batch, src_len), generator=generator)

    def example_pair(self, config: Mapping[str, Any] | None = None, batch: int = 1, *,
                     src_len: int = 30, tgt_len: int = 30,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(src_tokens, prev_output_tokens)``: calling the network on them gives
        teacher-forced logits ``(batch, tgt_len, tgt_vocab)``."""
        src = self.example_input(config, batch, src_len=src_len, generator=generator)
        prev = torch.randint(_N_SPECIAL, self.tgt_vocab, (batch, tgt_len), generator=generator)
        return src, prev

    def load_weights(self, path: str | Path) -> None:
        """Load a state dict (``.safetensors``, or a ``torch.save`` file of tensors).

        Raises:
            ValueError: the file's embedding tables do not match this network's
                vocabularies (``src_vocab``/``tgt_vocab``), or its tensors do not fit.
        """
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"SuperTransformer weights file {str(p)!r} does not exist")
        obj: Any
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(str(p))
        else:
            obj = torch.load(p, map_location="cpu", weights_only=True)
        if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
            obj = obj["state_dict"]
        if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise ValueError(f"{str(p)!r} holds no state dict of tensors")
        state: dict[str, torch.Tensor] = obj
        for key, mine in (("src_embed.weight", self.src_vocab),
                          ("tgt_embed_table.weight", self.tgt_vocab)):
            if key in state and int(state[key].shape[0]) != mine:
                side = key.split("_", 1)[0]
                raise ValueError(f"vocabulary mismatch: {str(p)!r} has a {side} vocabulary of "
                                 f"{int(state[key].shape[0])}, this SuperTransformer (and its data) "
                                 f"{mine}")
        try:
            self.load_state_dict(state)
        except RuntimeError as exc:
            raise ValueError(f"{str(p)!r} does not fit this SuperTransformer "
                             f"({self.spec()['kwargs']}): {exc}") from exc

    def latency_workload(self, config: Mapping[str, Any], batch: int = 1, *, src_len: int = 30,
                         steps: int = 30, beam: int = 5) -> tuple[nn.Module, tuple[torch.Tensor]]:
        """HAT's latency protocol as one module call: encoder on a fixed ``src_len``-token
        source, then ``steps`` incremental decoder steps over ``batch * beam`` rows."""
        from .latency import HATWorkload, hat_source

        sub = self.extract(config).eval()
        return HATWorkload(sub, steps=steps, beam=beam), (hat_source(batch, src_len),)

    def recalibrate_bn(self, config: Mapping[str, Any], batches: Iterable[Any]) -> None:
        """No batch norm in a Transformer: only activates ``config``."""
        self.activate(config)

    def bn_state(self) -> dict[str, torch.Tensor]:
        return {}

    def load_bn_state(self, state: Mapping[str, torch.Tensor]) -> None:
        return None

    # -- vocabularies -----------------------------------------------------------------------
    def bind_vocab(self, data: Any) -> None:
        """Check ``data``'s vocabularies against the weights, and record them if none yet.

        Raises:
            ValueError: the sizes differ from the embedding tables, or the weights were
                trained with other vocabularies (different fingerprint).
        """
        ds, dt = int(data.src_vocab), int(data.tgt_vocab)
        if (ds, dt) != (self.src_vocab, self.tgt_vocab):
            raise ValueError(f"vocabulary mismatch: data has src_vocab={ds}, tgt_vocab={dt}; the "
                             f"SuperTransformer has src_vocab={self.src_vocab}, "
                             f"tgt_vocab={self.tgt_vocab}")
        h = str(data.vocab_hash())
        if self.vocab_hash is not None and self.vocab_hash != h:
            raise ValueError(f"vocabulary mismatch: the weights were trained with vocabularies "
                             f"{self.vocab_hash}, the data has {h}")
        self.vocab_hash = h

    def __deepcopy__(self, memo: dict[int, Any]) -> SuperTransformer:
        new = type(self)(**dict(self._kwargs, vocab_hash=self.vocab_hash))
        new.load_state_dict(copy.deepcopy(self.state_dict(), memo))
        new.activate(self.active)
        new.train(self.training)
        return new


def _subspace(full: HATSpace, data: Mapping[str, Any]) -> HATSpace:
    """A space from its dict, checked to lie inside ``full`` (the weights' space)."""
    sp = HATSpace.from_dict(data)
    assert isinstance(sp, HATSpace)
    if sp.dimensions.keys() != full.dimensions.keys():
        raise ValueError(f"space dict dimensions {sorted(sp.dimensions)} differ from "
                         f"{full.name}'s {sorted(full.dimensions)}")
    for n, per_pos in sp.dimensions.items():
        big = full.dimensions[n]
        if len(per_pos) != len(big) or any(not set(a) <= set(b) for a, b in zip(per_pos, big, strict=True)):
            raise ValueError(f"space dict dimension {n!r} {[list(c) for c in per_pos]} is not "
                             f"inside {full.name}'s {[list(c) for c in big]}")
    return sp
