"""Spaces of OFA's MBConv networks (MobileNetV3, ProxylessNAS): kernel size and expand
ratio per block, depth per stage, input resolution.

``groups[s]`` is the number of blocks stage ``s`` has at full depth; a stage shorter
than a depth choice (ProxylessNAS's single-block last stage) keeps only what it can do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..base import Config
from ..space import ChoiceSpace, Dimension
from .common import OFASuperNet

__all__ = ["MBConvSpace", "MBConvSuperNet", "check_choices", "check_mbconv_args",
           "check_resolutions"]


class MBConvSpace(ChoiceSpace):
    """``ks``/``e``: one value per elastic block; ``d``: one per stage; ``r``: scalar."""

    groups: tuple[int, ...]

    @classmethod
    def build(cls, ks: Sequence[int], expand: Sequence[int], depth: Sequence[int],
              resolutions: Sequence[int], *, groups: Sequence[int], name: str) -> MBConvSpace:
        n_blocks = sum(groups)
        depth_choices = [[d for d in depth if d <= g] or [g] for g in groups]
        obj = cls(name, [
            Dimension("ks", [list(ks)] * n_blocks),
            Dimension("e", [list(expand)] * n_blocks),
            Dimension("d", depth_choices),
            Dimension("r", [list(resolutions)], scalar=True),
        ])
        obj.groups = tuple(int(g) for g in groups)
        return obj

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["groups"] = list(self.groups)
        return d

    @classmethod
    def _rebuild(cls, name: str, dims: Sequence[Dimension]) -> ChoiceSpace:
        obj = cls.__new__(cls)
        ChoiceSpace.__init__(obj, name, dims)
        obj.groups = ()
        return obj

    @classmethod
    def from_dict(cls, data: Any) -> ChoiceSpace:
        obj = super().from_dict(data)
        assert isinstance(obj, MBConvSpace)
        obj.groups = tuple(data["groups"])
        return obj

    def restrict(self, allowed: Any) -> ChoiceSpace:
        obj = super().restrict(allowed)
        assert isinstance(obj, MBConvSpace)
        obj.groups = self.groups
        return obj

    def _offsets(self) -> list[int]:
        out, acc = [], 0
        for g in self.groups:
            out.append(acc)
            acc += g
        return out

    def active_blocks(self, config: Config) -> list[int]:
        return [o + b for o, d in zip(self._offsets(), config["d"], strict=True) for b in range(d)]

    def canonical(self, config: Config) -> Config:
        """Blocks beyond a stage's depth are inactive: their ks/e take the smallest choice."""
        cfg = {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in config.items()}
        ks, e = self.dimension("ks").choices, self.dimension("e").choices
        for o, g, d in zip(self._offsets(), self.groups, cfg["d"], strict=True):
            for b in range(o + d, o + g):
                cfg["ks"][b] = min(ks[b])
                cfg["e"][b] = min(e[b])
        return cfg

    def canonical_genomes(self, genomes: Any) -> np.ndarray:
        """:meth:`canonical`, vectorised: the ``ks``/``e`` positions of blocks beyond
        their stage's depth take choice index 0 (the smallest value)."""
        g = self.check_genomes(genomes).copy()
        groups = np.asarray(self.groups, dtype=np.int64)
        stage = np.repeat(np.arange(len(groups)), groups)  # the stage of each block
        slot = np.arange(len(stage)) - np.repeat(np.cumsum(groups) - groups, groups)
        inactive = slot[None, :] >= self._values(g, "d")[:, stage]
        for name in ("ks", "e"):
            g[:, self.positions(name)][inactive] = 0
        return g


def check_choices(what: str, name: str, values: Sequence[Any], allowed: Sequence[Any]) -> None:
    bad = [v for v in values if v not in allowed]
    if not values or bad:
        raise ValueError(f"{what} {name}={list(values)}: values {bad or '(none)'} are not "
                         f"allowed; choose a non-empty subset of {sorted(allowed)}")


def check_resolutions(resolutions: Sequence[int]) -> None:
    bad = [r for r in resolutions if not isinstance(r, int) or r < 16 or r % 4]
    if not resolutions or bad:
        raise ValueError(f"resolutions={list(resolutions)}: {bad or '(none)'} not allowed; use "
                         "multiples of 4 that are >= 16")


def check_mbconv_args(what: str, *, ks: Sequence[int], expand: Sequence[int],
                      depth: Sequence[int], resolutions: Sequence[int], width_mult: float,
                      n_classes: int) -> None:
    """Constructor arguments of an OFA MBConv super-network, with errors naming the value."""
    check_choices(what, "ks", ks, [3, 5, 7])
    check_choices(what, "expand", expand, [3, 4, 6])
    check_choices(what, "depth", depth, [1, 2, 3, 4])
    check_resolutions(resolutions)
    if not 0 < width_mult <= 2:
        raise ValueError(f"{what} width_mult={width_mult} must be in (0, 2]")
    if n_classes < 2:
        raise ValueError(f"{what} n_classes={n_classes} must be >= 2")


class MBConvSuperNet(OFASuperNet):
    """What OFA's MBConv super-nets share: the predictor encodings.

    :meth:`predictor_encodings` (and its vectorised twin over genomes) returns the space's
    own encoding (``"space"``) and, where the network's operator encoding covers the
    space's stage layout, per-stage operator work (``"operators"``). Subclasses say how:
    :meth:`_has_operators`, :meth:`_operator_features` (configs),
    :meth:`_operator_features_arrays` (per-block ks/e, per-stage d, resolution arrays and
    the table) and :meth:`_new_operator_table` (built once per space object).
    """

    def _subnet_args(self, config: Config) -> dict[str, Any]:
        return {"ks": config["ks"], "e": config["e"], "d": config["d"]}

    def _has_operators(self) -> bool:
        raise NotImplementedError

    def _operator_features(self, configs: Sequence[Config]) -> np.ndarray:
        raise NotImplementedError

    def _operator_features_arrays(self, ks: np.ndarray, e: np.ndarray, d: np.ndarray,
                                  r: np.ndarray, table: Any) -> np.ndarray:
        raise NotImplementedError

    def _new_operator_table(self) -> Any:
        raise NotImplementedError

    def predictor_encodings(self, configs: Sequence[Config]) -> dict[str, np.ndarray]:
        """Encodings the ``fit`` stage chooses among by cross-validation: the space's
        own (``"space"``) and, for the network's stage layout, per-stage operator work
        (``"operators"``: MACs by kernel size, memory traffic ... at this width)."""
        out = {"space": self.space.encode(configs)}
        if self._has_operators():
            out["operators"] = self._operator_features(configs)
        return out

    def predictor_encodings_genomes(self, genomes: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`predictor_encodings` of the genomes' configs, vectorised (the operator
        features from a per-block table over kernel, expand and resolution, built once)."""
        sp = self.space
        g = sp.check_genomes(genomes)
        out = {"space": sp.encode_genomes(g)}
        if self._has_operators():
            ks, e, d, r = (sp.genome_values(g, n) for n in ("ks", "e", "d", "r"))
            out["operators"] = self._operator_features_arrays(ks, e, d, r[:, 0],
                                                              self._operator_table())
        return out

    def _operator_table(self) -> Any:
        cached = self.__dict__.get("_op_table")  # built for this space object
        if cached is None or cached[0] is not self.space:
            self.__dict__["_op_table"] = cached = (self.space, self._new_operator_table())
        return cached[1]

    def _table_choices(self) -> dict[str, Any]:
        """The kernel sizes, expand ratios and resolutions the space allows (table axes)."""
        dims = self.space.dimensions
        return dict(ks={k for c in dims["ks"] for k in c}, e={x for c in dims["e"] for x in c},
                    resolutions=dims["r"][0])
