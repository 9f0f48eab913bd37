"""The search space of the channel-group network: active groups, globally and per layer.

A config is ``{"g": k, "layer_g": [k_0, ..., k_{L-2}]}``:

* ``g`` is the number of active groups of the last convolution layer and of the
  classifier (the head for ``g`` groups reads those groups);
* ``layer_g[l]`` is the number of active groups of convolution layer ``l`` (every layer
  but the last).

Group ``i`` of layer ``l`` reads groups ``1..i`` of layer ``l - 1`` only, so a layer's
groups beyond what the next layer has active are never read: the canonical config caps
each layer at the next one's count (``layer_g`` is non-decreasing with depth and at most
``g``). A layer with fewer groups than the next one is *pruned*: the next layer's groups
beyond it read only the groups that exist (the leading part of their weights).
The uniform sub-network of ``k`` groups is ``{"g": k, "layer_g": [k] * (L - 1)}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..base import Config
from ..space import ChoiceSpace, Dimension

__all__ = ["GroupSpace"]


def _floor_choice(choices: Sequence[int], cap: int) -> int:
    """The largest choice <= ``cap`` (the smallest choice if none is)."""
    below = [c for c in choices if c <= cap]
    return max(below) if below else min(choices)


class GroupSpace(ChoiceSpace):
    """Active group counts: ``g`` (last layer and classifier) and ``layer_g`` (per layer)."""

    @classmethod
    def build(cls, *, groups: int, layers: int, name: str = "groupnet") -> GroupSpace:
        """The full space of a network of ``layers`` convolution layers of ``groups`` groups.

        Raises:
            ValueError: ``groups`` < 1 or ``layers`` < 1.
        """
        if groups < 1 or layers < 1:
            raise ValueError(f"groupnet space: groups={groups} and layers={layers} must be >= 1")
        choices = list(range(1, groups + 1))
        dims = [Dimension("g", [choices], scalar=True),
                Dimension("layer_g", [choices] * (layers - 1))]
        obj = cls.__new__(cls)
        ChoiceSpace.__init__(obj, name, dims)
        return obj

    def uniform(self, k: int) -> Config:
        """The config with ``k`` groups in every layer.

        Raises:
            ValueError: ``k`` is not a choice of every position.
        """
        return self.validate({"g": k, "layer_g": [k] * self.dimension("layer_g").length})

    def canonical(self, config: Config) -> Config:
        """Cap every layer at the next layer's count (groups nobody reads are inactive)."""
        cfg = dict(config)
        cap = int(cfg["g"])
        layer_choices = self.dimension("layer_g").choices
        out = list(cfg["layer_g"])
        for i in range(len(out) - 1, -1, -1):
            out[i] = _floor_choice(layer_choices[i], min(int(out[i]), cap))
            cap = out[i]
        cfg["layer_g"] = out
        return cfg

    def canonical_genomes(self, genomes: Any) -> np.ndarray:
        g = self.check_genomes(genomes).copy()
        cap = self._values(g, "g")[:, 0].astype(np.int64)
        sl = self.positions("layer_g")
        vals = self._values(g, "layer_g").astype(np.int64)
        choices = self.dimension("layer_g").choices
        for i in range(vals.shape[1] - 1, -1, -1):
            ch = np.asarray(choices[i], dtype=np.int64)
            want = np.minimum(vals[:, i], cap)
            idx = np.maximum(np.searchsorted(ch, want, side="right") - 1, 0)
            g[:, sl.start + i] = idx
            cap = ch[idx]
        return g

    def effective(self, config: Config) -> list[int]:
        """Active groups of every convolution layer (the last is ``g``): each layer capped
        at the next one's count (what the network runs, also for a reduced space whose
        choices cannot express the cap)."""
        counts = [int(v) for v in config["layer_g"]] + [int(config["g"])]
        for i in range(len(counts) - 2, -1, -1):
            counts[i] = min(counts[i], counts[i + 1])
        return counts
