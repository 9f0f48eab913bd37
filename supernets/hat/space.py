"""HAT's SuperTransformer design spaces and their encodings.

A config is a flat dict with HAT's key names, per-layer values as lists of
``max layers`` entries::

    {"encoder_embed_dim": 640, "encoder_layer_num": 6,
     "encoder_ffn_embed_dim": [3072, ...6], "encoder_self_attention_heads": [8, ...6],
     "decoder_embed_dim": 640, "decoder_layer_num": 6,
     "decoder_ffn_embed_dim": [...6], "decoder_self_attention_heads": [...6],
     "decoder_ende_attention_heads": [...6], "decoder_arbitrary_ende_attn": [...6]}

``decoder_arbitrary_ende_attn`` is HAT's code: ``-1`` attends to the last encoder
layer only, ``1`` to the last two, ``2`` to the last three (outputs concatenated along
the sequence).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..base import Config
from ..space import ChoiceSpace, Dimension

__all__ = [
    "HAT_FEATURE_NAMES",
    "HAT_FEATURE_SCALE",
    "SPACES",
    "HATSpace",
    "arbitrary_layers",
    "hat_features",
]

#: HAT's named spaces: "space0" is the WMT space, "space1" the IWSLT space.
SPACES: dict[str, dict[str, Any]] = {
    "space0": {"embed": (512, 640), "ffn": (1024, 2048, 3072), "heads": (4, 8)},
    "space1": {"embed": (512, 640), "ffn": (512, 1024, 2048), "heads": (2, 4)},
}

#: Column order of ``shared/data/hat_latency/*.csv`` (HAT's latency-predictor features).
HAT_FEATURE_NAMES = (
    "encoder_embed_dim",
    "encoder_layer_num",
    "encoder_ffn_embed_dim_avg",
    "encoder_self_attention_heads_avg",
    "decoder_embed_dim",
    "decoder_layer_num",
    "decoder_ffn_embed_dim_avg",
    "decoder_self_attention_heads_avg",
    "decoder_ende_attention_heads_avg",
    "decoder_arbitrary_ende_attn_avg",
)
#: HAT's predictor divides the features by these.
HAT_FEATURE_SCALE = (640.0, 6.0, 2048.0, 6.0, 640.0, 6.0, 2048.0, 6.0, 6.0, 2.0)

_ENC_LAYER_KEYS = ("encoder_ffn_embed_dim", "encoder_self_attention_heads")
_DEC_LAYER_KEYS = ("decoder_ffn_embed_dim", "decoder_self_attention_heads",
                   "decoder_ende_attention_heads", "decoder_arbitrary_ende_attn")
_ARBITRARY_CHOICES = (-1, 1, 2)


def arbitrary_layers(code: int) -> int:
    """How many of the last encoder layers a decoder layer attends to (HAT's -1/1/2 code)."""
    if code not in _ARBITRARY_CHOICES:
        raise ValueError(f"decoder_arbitrary_ende_attn={code!r}; choose from {list(_ARBITRARY_CHOICES)}")
    return 1 if code == -1 else code + 1


class HATSpace(ChoiceSpace):
    """HAT's space: embedding dims per side, per-layer FFN dims and heads, decoder depth,
    per-decoder-layer arbitrary encoder-decoder attention.

    Canonical form: per-layer choices of layers beyond a side's layer count are set to
    that position's smallest allowed choice (they do not change the network).
    """

    @classmethod
    def build(cls, name: str = "space0", *, width_divisor: int = 1,
              encoder_layers: int = 6, decoder_layers: Sequence[int] = (1, 2, 3, 4, 5, 6),
              arbitrary_ende_attn: Sequence[int] = _ARBITRARY_CHOICES) -> HATSpace:
        """HAT's space ``name`` ("space0" WMT, "space1" IWSLT).

        ``width_divisor`` divides every width choice (embedding and FFN dims), keeping the
        space's shape: a cheap stand-in of the same structure for CPU runs and tests.
        """
        if name not in SPACES:
            raise ValueError(f"unknown HAT space {name!r}; choose from {sorted(SPACES)}")
        if width_divisor < 1:
            raise ValueError(f"width_divisor must be >= 1, got {width_divisor!r}")
        for a in arbitrary_ende_attn:
            arbitrary_layers(a)
        if max(arbitrary_layers(a) for a in arbitrary_ende_attn) > encoder_layers:
            raise ValueError(f"decoder_arbitrary_ende_attn {list(arbitrary_ende_attn)} needs more "
                             f"than the {encoder_layers} encoder layers")
        s = SPACES[name]
        embed = [e // width_divisor for e in s["embed"]]
        ffn = [f // width_divisor for f in s["ffn"]]
        heads = list(s["heads"])
        n_dec = max(decoder_layers)
        return cls(name, [
            Dimension("encoder_embed_dim", [embed], scalar=True),
            Dimension("encoder_layer_num", [[encoder_layers]], scalar=True),
            Dimension("encoder_ffn_embed_dim", [ffn] * encoder_layers),
            Dimension("encoder_self_attention_heads", [heads] * encoder_layers),
            Dimension("decoder_embed_dim", [embed], scalar=True),
            Dimension("decoder_layer_num", [list(decoder_layers)], scalar=True),
            Dimension("decoder_ffn_embed_dim", [ffn] * n_dec),
            Dimension("decoder_self_attention_heads", [heads] * n_dec),
            Dimension("decoder_ende_attention_heads", [heads] * n_dec),
            Dimension("decoder_arbitrary_ende_attn", [list(arbitrary_ende_attn)] * n_dec),
        ])

    @property
    def max_encoder_layers(self) -> int:
        return self.dimension("encoder_ffn_embed_dim").length

    @property
    def max_decoder_layers(self) -> int:
        return self.dimension("decoder_ffn_embed_dim").length

    def canonical(self, config: Config) -> Config:
        cfg = {k: (list(v) if isinstance(v, list) else v) for k, v in config.items()}
        for side, keys in (("encoder", _ENC_LAYER_KEYS), ("decoder", _DEC_LAYER_KEYS)):
            n = cfg[f"{side}_layer_num"]
            assert isinstance(n, int)
            for key in keys:
                choices = self.dimension(key).choices
                for i in range(n, len(choices)):
                    cfg[key][i] = min(choices[i])
        return cfg

    def canonical_genomes(self, genomes: Any) -> np.ndarray:
        """:meth:`canonical`, vectorised: per-layer positions beyond a side's layer count
        take choice index 0 (the smallest value)."""
        g = self.check_genomes(genomes).copy()
        for side, keys in (("encoder", _ENC_LAYER_KEYS), ("decoder", _DEC_LAYER_KEYS)):
            n = self._values(g, f"{side}_layer_num")[:, 0]
            for key in keys:
                sl = self.positions(key)
                inactive = np.arange(sl.stop - sl.start)[None, :] >= n[:, None]
                g[:, sl][inactive] = 0
        return g

    def validate(self, config: Mapping[str, Any]) -> Config:
        """As :meth:`ChoiceSpace.validate`, except that values of inactive layers (beyond
        a side's layer count) are ignored, so a config from a larger space whose active
        part fits is accepted (and made canonical here)."""
        cfg = dict(config) if isinstance(config, Mapping) else config
        if isinstance(cfg, dict):
            for side, keys in (("encoder", _ENC_LAYER_KEYS), ("decoder", _DEC_LAYER_KEYS)):
                n = cfg.get(f"{side}_layer_num")
                if not isinstance(n, (int, np.integer)):
                    continue
                for key in keys:
                    v, choices = cfg.get(key), self.dimension(key).choices
                    if isinstance(v, (list, tuple)) and len(v) == len(choices):
                        cfg[key] = [x if i < n else min(choices[i]) for i, x in enumerate(v)]
        return super().validate(cfg)

    def hat_features(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """HAT's 10 averaged features, one row per config (see :func:`hat_features`)."""
        return np.stack([hat_features(self.validate(c)) for c in configs]) if configs \
            else np.zeros((0, len(HAT_FEATURE_NAMES)))


def hat_features(config: Mapping[str, Any]) -> np.ndarray:
    """HAT's latency-predictor features of ``config``, in :data:`HAT_FEATURE_NAMES` order.

    Per-layer values are averaged over the active layers only; the arbitrary attention
    code is averaged as the number of encoder layers attended (-1/1/2 -> 1/2/3), as in
    the columns of HAT's latency datasets.
    """
    ne, nd = int(config["encoder_layer_num"]), int(config["decoder_layer_num"])

    def avg(key: str, n: int) -> float:
        return float(np.mean(np.asarray(config[key][:n], dtype=np.float64)))

    return np.array([
        float(config["encoder_embed_dim"]), float(ne),
        avg("encoder_ffn_embed_dim", ne), avg("encoder_self_attention_heads", ne),
        float(config["decoder_embed_dim"]), float(nd),
        avg("decoder_ffn_embed_dim", nd), avg("decoder_self_attention_heads", nd),
        avg("decoder_ende_attention_heads", nd),
        float(np.mean([arbitrary_layers(int(a)) for a in config["decoder_arbitrary_ende_attn"][:nd]])),
    ], dtype=np.float64)
