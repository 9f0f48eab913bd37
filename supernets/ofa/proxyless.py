"""OFA-ProxylessNAS space: kernel {3,5,7} and expand {3,4,6} per block, depth {2,3,4}
per stage (5 elastic stages of up to 4 blocks, then a fixed single-block stage), elastic
input resolution."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from ofa.imagenet_classification.elastic_nn.networks import OFAProxylessNASNets

from ..base import Config
from .common import OFASuperNet
from .mbconv import MBConvSpace, check_mbconv_args

__all__ = ["OFAProxylessNet"]


class OFAProxylessNet(OFASuperNet):
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

    def _subnet_args(self, config: Config) -> dict[str, Any]:
        return {"ks": config["ks"], "e": config["e"], "d": config["d"]}

    def _groups(self) -> tuple[int, ...] | None:
        """The space's stage layout when the operator encoding covers it (6 stages)."""
        groups = tuple(getattr(self.space, "groups", ()))
        return groups if len(groups) == 6 else None

    def predictor_encodings(self, configs: Sequence[Config]) -> dict[str, np.ndarray]:
        """Encodings the ``fit`` stage chooses among by cross-validation: the space's
        own (``"space"``), and per-stage MBConv operator work (``"operators"``: block
        counts, pointwise MACs, depthwise MACs by kernel size, memory traffic, then the
        fixed operators'; see
        :func:`switchnas.predictors.ofa_operators.proxyless_operator_features`)."""
        out = {"space": self.space.encode(configs)}
        groups = self._groups()
        if groups is not None:
            from switchnas.predictors.ofa_operators import proxyless_operator_features

            out["operators"] = proxyless_operator_features(
                configs, width_mult=float(self._kwargs["width_mult"]), groups=groups,
                n_classes=int(self._kwargs["n_classes"]))
        return out

    def predictor_encodings_genomes(self, genomes: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`predictor_encodings` of the genomes' configs, vectorised (the operator
        features from a per-block table over kernel, expand and resolution, built once)."""
        sp = self.space
        g = sp.check_genomes(genomes)
        out = {"space": sp.encode_genomes(g)}
        if self._groups() is not None:
            from switchnas.predictors.ofa_operators import proxyless_operator_features_arrays

            ks, e, d, r = (sp.genome_values(g, n) for n in ("ks", "e", "d", "r"))
            out["operators"] = proxyless_operator_features_arrays(
                ks, e, d, r[:, 0], table=self._operator_table())
        return out

    def _operator_table(self) -> Any:
        from switchnas.predictors.ofa_operators import proxyless_operator_table

        cached = self.__dict__.get("_op_table")  # built for this space object
        if cached is None or cached[0] is not self.space:
            dims = self.space.dimensions
            table = proxyless_operator_table(
                ks={k for c in dims["ks"] for k in c}, e={x for c in dims["e"] for x in c},
                resolutions=dims["r"][0], width_mult=float(self._kwargs["width_mult"]),
                groups=self._groups() or (), n_classes=int(self._kwargs["n_classes"]))
            self.__dict__["_op_table"] = cached = (self.space, table)
        return cached[1]
