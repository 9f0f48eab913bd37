"""OFA-ProxylessNAS space: kernel {3,5,7} and expand {3,4,6} per block, depth {2,3,4}
per stage (5 elastic stages of up to 4 blocks, then a fixed single-block stage), elastic
input resolution."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from ofa.imagenet_classification.elastic_nn.networks import OFAProxylessNASNets

from ..base import Config
from .mbconv import MBConvSpace, MBConvSuperNet, check_mbconv_args

__all__ = ["OFAProxylessNet"]


class OFAProxylessNet(MBConvSuperNet):
    """The ``ofa`` package's ``OFAProxylessNASNets`` as a switchnas ``SuperNet``."""

    def __init__(self, *, n_classes: int = 1000, width_mult: float = 1.0,
                 ks: Sequence[int] = (3, 5, 7), expand: Sequence[int] = (3, 4, 6),
                 depth: Sequence[int] = (2, 3, 4), resolutions: Sequence[int] = (224,),
                 dropout: float = 0.0, space: dict[str, Any] | None = None):
        check_mbconv_args("OFA-ProxylessNAS", ks=ks, expand=expand, depth=depth,
                          resolutions=resolutions, width_mult=width_mult, n_classes=n_classes)
        kwargs = dict(n_classes=n_classes, width_mult=width_mult, ks=list(ks),
                      expand=list(expand), depth=list(depth), resolutions=list(resolutions),
                      dropout=dropout, space=space)
        net = OFAProxylessNASNets(n_classes=n_classes, dropout_rate=dropout,
                                  width_mult=width_mult, ks_list=list(ks),
                                  expand_ratio_list=list(expand), depth_list=list(depth))
        groups = [len(g) for g in net.block_group_info]
        full = MBConvSpace.build(ks, expand, depth, resolutions, groups=groups,
                                 name="ofa_proxyless")
        sp = MBConvSpace.from_dict(space) if space else full
        super().__init__(net, sp, kwargs)

    def _groups(self) -> tuple[int, ...] | None:
        """The space's stage layout when the operator encoding covers it (6 stages)."""
        groups = tuple(getattr(self.space, "groups", ()))
        return groups if len(groups) == 6 else None

    def _has_operators(self) -> bool:
        return self._groups() is not None

    def _operator_features(self, configs: Sequence[Config]) -> np.ndarray:
        """Block counts, pointwise MACs, depthwise MACs by kernel size, memory traffic,
        then the fixed operators' (see
        :func:`switchnas.predictors.ofa_operators.proxyless_operator_features`)."""
        from switchnas.predictors.ofa_operators import proxyless_operator_features

        return proxyless_operator_features(
            configs, width_mult=float(self._kwargs["width_mult"]), groups=self._groups() or (),
            n_classes=int(self._kwargs["n_classes"]))

    def _operator_features_arrays(self, ks: np.ndarray, e: np.ndarray, d: np.ndarray,
                                  r: np.ndarray, table: Any) -> np.ndarray:
        from switchnas.predictors.ofa_operators import proxyless_operator_features_arrays

        return proxyless_operator_features_arrays(ks, e, d, r, table=table)

    def _new_operator_table(self) -> Any:
        from switchnas.predictors.ofa_operators import proxyless_operator_table

        return proxyless_operator_table(
            **self._table_choices(), width_mult=float(self._kwargs["width_mult"]),
            groups=self._groups() or (), n_classes=int(self._kwargs["n_classes"]))
