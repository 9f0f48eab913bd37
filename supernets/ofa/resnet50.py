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
        cfg = {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in config.items()}
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

    def predictor_encodings(self, configs: Sequence[Config]) -> dict[str, np.ndarray]:
        """Encodings the ``fit`` stage chooses among by cross-validation: the space's
        own (``"space"``), and per-group operator work (``"operators"``: the stem and 4
        stages' 1x1 and 3x3 MACs, memory traffic and block counts, then the head's, at each
        config's resolution and widths; see
        :func:`switchnas.predictors.ofa_operators.resnet50_operator_features`)."""
        from switchnas.predictors.ofa_operators import resnet50_operator_features

        return {"space": self.space.encode(configs),
                "operators": resnet50_operator_features(
                    configs, width_mult_list=self._kwargs["width_mult_list"],
                    n_classes=int(self._kwargs["n_classes"]))}

    def predictor_encodings_genomes(self, genomes: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`predictor_encodings` of the genomes' configs, vectorised (the operator
        features from a table over expand ratio, widths and resolution, built once)."""
        from switchnas.predictors.ofa_operators import resnet50_operator_features_arrays

        sp = self.space
        g = sp.check_genomes(genomes)
        d, e, w, r = (sp.genome_values(g, n) for n in ("d", "e", "w", "r"))
        return {"space": sp.encode_genomes(g),
                "operators": resnet50_operator_features_arrays(
                    d, e, w, r[:, 0], table=self._operator_table())}

    def _operator_table(self) -> Any:
        from switchnas.predictors.ofa_operators import resnet50_operator_table

        cached = self.__dict__.get("_op_table")  # built for this space object
        if cached is None or cached[0] is not self.space:
            sp = self.space
            assert isinstance(sp, ResNet50Space)
            dims = sp.dimensions
            table = resnet50_operator_table(
                expand={x for c in dims["e"] for x in c}, resolutions=dims["r"][0],
                max_depth=sp.max_depth, width_mult_list=self._kwargs["width_mult_list"],
                n_classes=int(self._kwargs["n_classes"]))
            self.__dict__["_op_table"] = cached = (sp, table)
        return cached[1]
