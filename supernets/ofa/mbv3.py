"""OFA-MobileNetV3 space: kernel, expand ratio per block, depth per stage, resolution."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ofa.imagenet_classification.elastic_nn.networks import OFAMobileNetV3

from ..base import Config
from ..space import ChoiceSpace, Dimension
from .common import OFASuperNet

__all__ = ["MobileNetV3Space", "OFAMobileNetV3Net"]

N_STAGES = 5  # elastic stages after the fixed first block


class MobileNetV3Space(ChoiceSpace):
    """``ks``/``e``: one value per block (stages x max depth); ``d``: one per stage; ``r``."""

    @classmethod
    def build(cls, ks: Sequence[int], expand: Sequence[int], depth: Sequence[int],
              resolutions: Sequence[int], name: str = "ofa_mbv3") -> MobileNetV3Space:
        n_blocks = N_STAGES * max(depth)
        return cls(name, [
            Dimension("ks", [list(ks)] * n_blocks),
            Dimension("e", [list(expand)] * n_blocks),
            Dimension("d", [list(depth)] * N_STAGES),
            Dimension("r", [list(resolutions)], scalar=True),
        ])

    @property
    def max_depth(self) -> int:
        return len(self.dimension("ks").choices) // N_STAGES

    def canonical(self, config: Config) -> Config:
        """Blocks beyond a stage's depth are inactive: set their ks/e to the smallest choice."""
        cfg = {k: (list(v) if isinstance(v, list) else v) for k, v in config.items()}
        md = self.max_depth
        for s, d in enumerate(cfg["d"]):
            for b in range(s * md + d, (s + 1) * md):
                cfg["ks"][b] = min(self.dimension("ks").choices[b])
                cfg["e"][b] = min(self.dimension("e").choices[b])
        return cfg

    def active_blocks(self, config: Config) -> list[int]:
        md = self.max_depth
        return [s * md + b for s, d in enumerate(config["d"]) for b in range(d)]


class OFAMobileNetV3Net(OFASuperNet):
    """The ``ofa`` package's ``OFAMobileNetV3`` as a switchnas ``SuperNet``."""

    def __init__(self, *, n_classes: int = 1000, width_mult: float = 1.0,
                 ks: Sequence[int] = (3, 5, 7), expand: Sequence[int] = (3, 4, 6),
                 depth: Sequence[int] = (2, 3, 4), resolutions: Sequence[int] = (224,),
                 dropout: float = 0.0, space: dict[str, Any] | None = None):
        _check_choices("ks", ks, {3, 5, 7})
        _check_choices("expand", expand, {3, 4, 6})
        _check_choices("depth", depth, {1, 2, 3, 4})
        _check_resolutions(resolutions)
        if not 0 < width_mult <= 2:
            raise ValueError(f"width_mult={width_mult} must be in (0, 2]")
        if n_classes < 2:
            raise ValueError(f"n_classes={n_classes} must be >= 2")
        kwargs = dict(n_classes=n_classes, width_mult=width_mult, ks=list(ks),
                      expand=list(expand), depth=list(depth), resolutions=list(resolutions),
                      dropout=dropout, space=space)
        net = OFAMobileNetV3(n_classes=n_classes, dropout_rate=dropout, width_mult=width_mult,
                             ks_list=list(ks), expand_ratio_list=list(expand),
                             depth_list=list(depth))
        full = MobileNetV3Space.build(ks, expand, depth, resolutions)
        sp = MobileNetV3Space.from_dict(space) if space else full
        super().__init__(net, sp, kwargs)

    def _subnet_args(self, config: Config) -> dict[str, Any]:
        return {"ks": config["ks"], "e": config["e"], "d": config["d"]}


def _check_choices(name: str, values: Sequence[int], allowed: set[int]) -> None:
    bad = [v for v in values if v not in allowed]
    if not values or bad:
        raise ValueError(f"OFA-MobileNetV3 {name}={list(values)}: values {bad or '(none)'} are not "
                         f"allowed; choose a non-empty subset of {sorted(allowed)}")


def _check_resolutions(resolutions: Sequence[int]) -> None:
    bad = [r for r in resolutions if not isinstance(r, int) or r < 16 or r % 4]
    if not resolutions or bad:
        raise ValueError(f"resolutions={list(resolutions)}: {bad or '(none)'} not allowed; use "
                         "multiples of 4 that are >= 16")
