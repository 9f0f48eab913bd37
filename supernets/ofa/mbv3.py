"""OFA-MobileNetV3 space: kernel {3,5,7} and expand {3,4,6} per block, depth {2,3,4} per
stage (5 elastic stages of up to 4 blocks), elastic input resolution."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from ofa.imagenet_classification.elastic_nn.networks import OFAMobileNetV3

from ..base import Config
from .mbconv import MBConvSpace, MBConvSuperNet, check_mbconv_args

__all__ = ["MobileNetV3Space", "OFAMobileNetV3Net"]


class MobileNetV3Space(MBConvSpace):
    """The MBConv space with MobileNetV3's stage layout (5 stages)."""

    @classmethod
    def build(cls, ks: Sequence[int], expand: Sequence[int], depth: Sequence[int],  # type: ignore[override]
              resolutions: Sequence[int], *, groups: Sequence[int] | None = None,
              name: str = "ofa_mbv3") -> MBConvSpace:
        return super().build(ks, expand, depth, resolutions,
                             groups=groups or [max(depth)] * 5, name=name)


class OFAMobileNetV3Net(MBConvSuperNet):
    """The ``ofa`` package's ``OFAMobileNetV3`` as a switchnas ``SuperNet``."""

    def __init__(self, *, n_classes: int = 1000, width_mult: float = 1.0,
                 ks: Sequence[int] = (3, 5, 7), expand: Sequence[int] = (3, 4, 6),
                 depth: Sequence[int] = (2, 3, 4), resolutions: Sequence[int] = (224,),
                 dropout: float = 0.0, space: dict[str, Any] | None = None):
        check_mbconv_args("OFA-MobileNetV3", ks=ks, expand=expand, depth=depth,
                          resolutions=resolutions, width_mult=width_mult, n_classes=n_classes)
        kwargs = dict(n_classes=n_classes, width_mult=width_mult, ks=list(ks),
                      expand=list(expand), depth=list(depth), resolutions=list(resolutions),
                      dropout=dropout, space=space)
        net = OFAMobileNetV3(n_classes=n_classes, dropout_rate=dropout, width_mult=width_mult,
                             ks_list=list(ks), expand_ratio_list=list(expand),
                             depth_list=list(depth))
        groups = [len(g) for g in net.block_group_info]
        full = MobileNetV3Space.build(ks, expand, depth, resolutions, groups=groups)
        sp = MobileNetV3Space.from_dict(space) if space else full
        super().__init__(net, sp, kwargs)

    def _has_operators(self) -> bool:
        return tuple(getattr(self.space, "groups", ())) == (4, 4, 4, 4, 4)

    def _operator_features(self, configs: Sequence[Config]) -> np.ndarray:
        from switchnas.predictors.encodings import mbv3_operator_features

        return mbv3_operator_features(configs, level="stage",
                                      width_mult=float(self._kwargs["width_mult"]))

    def _operator_features_arrays(self, ks: np.ndarray, e: np.ndarray, d: np.ndarray,
                                  r: np.ndarray, table: Any) -> np.ndarray:
        from switchnas.predictors.encodings import mbv3_operator_features_arrays

        return mbv3_operator_features_arrays(ks, e, d, r, table=table, level="stage")

    def _new_operator_table(self) -> Any:
        from switchnas.predictors.encodings import mbv3_operator_table

        return mbv3_operator_table(**self._table_choices(),
                                   width_mult=float(self._kwargs["width_mult"]))
