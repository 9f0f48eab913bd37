"""OFA-ResNet50 space: depth {0,1,2} extra blocks per stage (and whether the input stem
keeps its residual block), expand ratio {0.2,0.25,0.35} per block, width multiplier
index per stage (2 stem convolutions + 4 stages), elastic input resolution."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from ofa.imagenet_classification.elastic_nn.networks import OFAResNets
from ofa.imagenet_classification.networks import ResNets

from ..base import Config
from ..space import ChoiceSpace, Dimension
from .common import OFASuperNet
from .mbconv import check_choices, check_resolutions

__all__ = ["OFAResNet50Net", "ResNet50Space"]

BASE_DEPTH = tuple(ResNets.BASE_DEPTH_LIST)  # (2, 2, 4, 2) blocks per stage at depth 0


class ResNet50Space(ChoiceSpace):
    """``d``: [stem] + 4 stages; ``e``: one per block; ``w``: 6 width indices; ``r``."""

    @classmethod
    def build(cls, depth: Sequence[int], expand: Sequence[float], n_widths: int,
              resolutions: Sequence[int], name: str = "ofa_resnet50") -> ResNet50Space:
        max_d = max(depth)
        n_blocks = sum(b + max_d for b in BASE_DEPTH)
        stem = sorted({min(depth), max_d})  # the stem block is either skipped or kept
        return cls(name, [
            Dimension("d", [stem] + [list(depth)] * len(BASE_DEPTH)),
            Dimension("e", [list(expand)] * n_blocks),
            Dimension("w", [list(range(n_widths))] * (2 + len(BASE_DEPTH))),
            Dimension("r", [list(resolutions)], scalar=True),
        ])

    @property
    def max_depth(self) -> int:
        n_blocks = self.dimension("e").length
        return (n_blocks - sum(BASE_DEPTH)) // len(BASE_DEPTH)

    def canonical(self, config: Config) -> Config:
        """Blocks a stage's depth leaves out take the smallest expand ratio."""
        cfg = {k: (list(v) if isinstance(v, list) else v) for k, v in config.items()}
        e = self.dimension("e").choices
        start = 0
        for s, base in enumerate(BASE_DEPTH):
            size = base + self.max_depth
            for b in range(start + base + cfg["d"][s + 1], start + size):
                cfg["e"][b] = min(e[b])
            start += size
        return cfg

    def canonical_genomes(self, genomes: Any) -> np.ndarray:
        """:meth:`canonical`, vectorised: ``e`` positions of blocks a stage's depth leaves
        out take choice index 0 (the smallest expand ratio)."""
        g = self.check_genomes(genomes).copy()
        sizes = np.asarray(BASE_DEPTH, dtype=np.int64) + self.max_depth
        stage = np.repeat(np.arange(len(sizes)), sizes)
        slot = np.arange(len(stage)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        depth = self._values(g, "d")[:, 1:]  # the stem's entry is not a stage's
        active = np.asarray(BASE_DEPTH, dtype=np.int64)[stage][None, :] + depth[:, stage]
        g[:, self.positions("e")][slot[None, :] >= active] = 0
        return g


class OFAResNet50Net(OFASuperNet):
    """The ``ofa`` package's ``OFAResNets`` (ResNet50 layout) as a switchnas ``SuperNet``.

    ``width_mult_list`` holds the per-stage width multipliers a ``w`` index selects; the
    default config shrinks them for a CPU.
    """

    def __init__(self, *, n_classes: int = 1000, depth: Sequence[int] = (0, 1, 2),
                 expand: Sequence[float] = (0.2, 0.25, 0.35),
                 width_mult_list: Sequence[float] = (0.65, 0.8, 1.0),
                 resolutions: Sequence[int] = (224,), dropout: float = 0.0,
                 space: dict[str, Any] | None = None):
        what = "OFA-ResNet50"
        check_choices(what, "depth", depth, [0, 1, 2])
        check_choices(what, "expand", expand, [0.2, 0.25, 0.35])
        check_resolutions(resolutions)
        if not width_mult_list or any(not 0 < w <= 2 for w in width_mult_list):
            raise ValueError(f"{what} width_mult_list={list(width_mult_list)}: each must be "
                             "in (0, 2]")
        kwargs = dict(n_classes=n_classes, depth=list(depth), expand=list(expand),
                      width_mult_list=list(width_mult_list), resolutions=list(resolutions),
                      dropout=dropout, space=space)
        net = OFAResNets(n_classes=n_classes, dropout_rate=dropout, depth_list=list(depth),
                         expand_ratio_list=list(expand), width_mult_list=list(width_mult_list))
        full = ResNet50Space.build(depth, expand, len(width_mult_list), resolutions)
        sp = ResNet50Space.from_dict(space) if space else full
        super().__init__(net, sp, kwargs)

    def _subnet_args(self, config: Config) -> dict[str, Any]:
        return {"d": config["d"], "e": config["e"], "w": config["w"]}
