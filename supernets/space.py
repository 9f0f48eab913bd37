"""``ChoiceSpace``: a generic search space of named, per-position categorical choices.

Spaces that need more than independent choices (inactive blocks beyond a stage's
depth, say) subclass it and override :meth:`ChoiceSpace.canonical`, which maps every
config to the one representative that the super-network actually distinguishes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .base import Config

__all__ = ["ChoiceSpace", "Dimension"]


class Dimension:
    """One named dimension: ``choices[i]`` are the allowed values at position ``i``.

    ``scalar=True`` means the dimension has one position and configs hold a bare value.
    """

    def __init__(self, name: str, choices: Sequence[Sequence[Any]], *, scalar: bool = False):
        if scalar and len(choices) != 1:
            raise ValueError(f"scalar dimension {name!r} needs exactly one position")
        if any(len(c) == 0 for c in choices):
            raise ValueError(f"dimension {name!r} has a position with no choices")
        self.name = name
        self.choices: tuple[tuple[Any, ...], ...] = tuple(tuple(sorted(set(c))) for c in choices)
        self.scalar = scalar

    @property
    def length(self) -> int:
        return len(self.choices)

    def to_dict(self) -> dict[str, Any]:
        return {"choices": [list(c) for c in self.choices], "scalar": self.scalar}


class ChoiceSpace:
    """A search space of independent categorical choices per dimension and position."""

    def __init__(self, name: str, dimensions: Sequence[Dimension]):
        self.name = name
        self._dims: dict[str, Dimension] = {d.name: d for d in dimensions}

    # -- description -------------------------------------------------------------------
    @property
    def dimensions(self) -> dict[str, tuple[tuple[Any, ...], ...]]:
        return {n: d.choices for n, d in self._dims.items()}

    def dimension(self, name: str) -> Dimension:
        return self._dims[name]

    def size(self) -> float:
        """Number of raw configs (before canonicalisation), as a float (it overflows)."""
        return float(np.prod([len(c) for d in self._dims.values() for c in d.choices], dtype=float))

    def to_dict(self) -> dict[str, Any]:
        return {
            "class": f"{type(self).__module__}:{type(self).__qualname__}",
            "name": self.name,
            "dimensions": {n: d.to_dict() for n, d in self._dims.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChoiceSpace:
        dims = [
            Dimension(n, d["choices"], scalar=bool(d.get("scalar", False)))
            for n, d in data["dimensions"].items()
        ]
        return cls._rebuild(str(data["name"]), dims)

    @classmethod
    def _rebuild(cls, name: str, dims: Sequence[Dimension]) -> ChoiceSpace:
        """Make a space of the same class from new dimensions (subclasses keep extras)."""
        obj = cls.__new__(cls)
        ChoiceSpace.__init__(obj, name, dims)
        return obj

    # -- configs -----------------------------------------------------------------------
    def canonical(self, config: Config) -> Config:
        """Map ``config`` to its canonical representative (identity here)."""
        return config

    def sample(self, rng: np.random.Generator) -> Config:
        cfg: Config = {}
        for n, d in self._dims.items():
            vals = [c[int(rng.integers(len(c)))] for c in d.choices]
            cfg[n] = vals[0] if d.scalar else vals
        return self.canonical(_plain(cfg))

    def largest(self) -> Config:
        return self.canonical(self._pick(max))

    def smallest(self) -> Config:
        return self.canonical(self._pick(min))

    def _pick(self, fn: Any) -> Config:
        cfg: Config = {}
        for n, d in self._dims.items():
            vals = [fn(c) for c in d.choices]
            cfg[n] = vals[0] if d.scalar else vals
        return _plain(cfg)

    def validate(self, config: Mapping[str, Any]) -> Config:
        if not isinstance(config, Mapping):
            raise ValueError(f"a {self.name} config must be a mapping, got {type(config).__name__}")
        unknown = sorted(set(config) - set(self._dims))
        missing = sorted(set(self._dims) - set(config))
        if unknown or missing:
            raise ValueError(
                f"{self.name} config keys do not match the space: unknown {unknown}, "
                f"missing {missing}; expected {sorted(self._dims)}"
            )
        out: Config = {}
        for n, d in self._dims.items():
            v = config[n]
            vals = [v] if d.scalar else v
            if d.scalar and isinstance(v, (list, tuple)):
                raise ValueError(f"{self.name}: {n!r} is a scalar dimension, got a list {v!r}")
            if not d.scalar and (not isinstance(v, (list, tuple)) or len(v) != d.length):
                raise ValueError(
                    f"{self.name}: {n!r} must be a list of {d.length} values, got {v!r}"
                )
            for i, (x, allowed) in enumerate(zip(vals, d.choices, strict=True)):
                if x not in allowed:
                    where = n if d.scalar else f"{n}[{i}]"
                    raise ValueError(
                        f"{self.name}: {where}={x!r} is not allowed; choose from {list(allowed)}"
                    )
            out[n] = vals[0] if d.scalar else list(vals)
        return self.canonical(_plain(out))

    def encode(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Each position's value scaled to [0, 1] by its choices' range (0 if one choice)."""
        rows = []
        for cfg in configs:
            row: list[float] = []
            for n, d in self._dims.items():
                v = cfg[n]
                vals = [v] if d.scalar else v
                for x, full in zip(vals, d.choices, strict=True):
                    lo, hi = float(min(full)), float(max(full))
                    row.append(0.0 if hi == lo else (float(x) - lo) / (hi - lo))
            rows.append(row)
        return np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)

    def restrict(self, allowed: Mapping[str, Any]) -> ChoiceSpace:
        """``allowed[name]`` is a list of values (all positions) or a list of lists (per
        position). Values outside the current choices raise ``ValueError``."""
        dims = []
        for n, d in self._dims.items():
            if n not in allowed:
                dims.append(d)
                continue
            a = allowed[n]
            per_pos = (
                [list(x) for x in a]
                if len(a) and isinstance(a[0], (list, tuple))
                else [list(a)] * d.length
            )
            if len(per_pos) != d.length:
                raise ValueError(f"{self.name}: restriction of {n!r} has {len(per_pos)} "
                                 f"positions, the space has {d.length}")
            new = []
            for i, (keep, full) in enumerate(zip(per_pos, d.choices, strict=True)):
                bad = [x for x in keep if x not in full]
                if bad or not keep:
                    raise ValueError(f"{self.name}: cannot restrict {n}[{i}] to {keep!r}; "
                                     f"allowed values are {list(full)}")
                new.append(keep)
            dims.append(Dimension(n, new, scalar=d.scalar))
        unknown = sorted(set(allowed) - set(self._dims))
        if unknown:
            raise ValueError(f"{self.name}: unknown dimensions {unknown}; expected {sorted(self._dims)}")
        return self._rebuild(self.name, dims)


def _plain(cfg: Config) -> Config:
    """Numpy scalars to Python ints/floats so configs stay JSON-serialisable."""
    def conv(x: Any) -> Any:
        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, list):
            return [conv(y) for y in x]
        return x

    return {k: conv(v) for k, v in cfg.items()}
