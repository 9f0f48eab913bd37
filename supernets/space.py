"""``ChoiceSpace``: a generic search space of named, per-position categorical choices.

Spaces that need more than independent choices (inactive blocks beyond a stage's
depth, say) subclass it and override :meth:`ChoiceSpace.canonical`, which maps every
config to the one representative that the super-network actually distinguishes.

A config is also an integer *genome*: one ``int64`` per position, positions in
dimension order (each dimension's positions in order, a scalar dimension is one
position), the value an index into that position's sorted choices. Populations of
genomes are ``(n, P)`` arrays that the ``*_genomes`` methods handle in numpy, without a
Python loop per config; a subclass that overrides :meth:`ChoiceSpace.canonical` should
override :meth:`ChoiceSpace.canonical_genomes` with the same rule, vectorised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
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


@dataclass(frozen=True)
class _Layout:
    """Per-position tables of a space's genomes, built once per space."""

    slices: dict[str, slice]  # dimension -> its genome positions
    cards: np.ndarray  # (P,) number of choices per position
    values: dict[str, np.ndarray]  # dimension -> (L, max choices) padded choice values
    numeric: dict[str, bool]  # dimension -> all choices are int or float (not bool)
    scaled: np.ndarray  # (P * max choices,) ``encode``'s value per (position, index)
    width: int  # max choices over all positions (row stride of ``scaled``)
    one_hot_offsets: np.ndarray  # (P,) first one-hot column of each position


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(
        x, (bool, np.bool_))


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
        """Each position's value scaled to [0, 1] by its choices' range (0 if one choice),
        for each config's canonical form (:meth:`canonical`): configs that the
        super-network does not tell apart (values of blocks beyond a stage's depth, say)
        encode alike.

        Raises:
            ValueError: a config lacks a dimension of the space (named).
        """
        canonical = type(self).canonical is not ChoiceSpace.canonical
        rows = []
        for i, raw in enumerate(configs):
            missing = [n for n in self._dims if n not in raw]
            if missing:
                raise ValueError(f"{self.name} config {i} lacks {missing}; expected "
                                 f"{sorted(self._dims)}")
            cfg = raw
            if canonical:  # on a copy, lists as lists (canonical assigns into them)
                cfg = self.canonical({k: list(v) if isinstance(v, (list, tuple)) else v
                                      for k, v in raw.items()})
            row: list[float] = []
            for n, d in self._dims.items():
                v = cfg[n]
                vals = [v] if d.scalar else v
                for x, full in zip(vals, d.choices, strict=True):
                    lo, hi = float(min(full)), float(max(full))
                    row.append(0.0 if hi == lo else (float(x) - lo) / (hi - lo))
            rows.append(row)
        return np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)

    # -- genomes -----------------------------------------------------------------------
    @cached_property
    def _layout(self) -> _Layout:
        slices: dict[str, slice] = {}
        cards: list[int] = []
        for n, d in self._dims.items():
            slices[n] = slice(len(cards), len(cards) + d.length)
            cards.extend(len(c) for c in d.choices)
        width = max(cards, default=1)
        values: dict[str, np.ndarray] = {}
        numeric: dict[str, bool] = {}
        scaled = np.zeros((len(cards), width))
        for n, d in self._dims.items():
            flat = [x for c in d.choices for x in c]
            numeric[n] = all(_is_number(x) for x in flat)
            # the choices' own types come back from ``from_genomes`` (object if mixed)
            dtype: Any = object
            if numeric[n] and all(isinstance(x, (int, np.integer)) for x in flat):
                dtype = np.int64
            elif numeric[n] and all(isinstance(x, (float, np.floating)) for x in flat):
                dtype = np.float64
            table = np.zeros((d.length, width), dtype=dtype)
            for i, c in enumerate(d.choices):
                table[i, :len(c)] = list(c)
                table[i, len(c):] = c[-1]
                if numeric[n]:  # the same arithmetic as ``encode``
                    lo, hi = float(min(c)), float(max(c))
                    scaled[slices[n].start + i, :len(c)] = [
                        0.0 if hi == lo else (float(x) - lo) / (hi - lo) for x in c]
            values[n] = table
        card_arr = np.asarray(cards, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(card_arr)[:-1]]).astype(np.int64)
        return _Layout(slices, card_arr, values, numeric, scaled.ravel(), width, offsets)

    @property
    def genome_length(self) -> int:
        """``P``, the number of positions of a genome (one per dimension position)."""
        return len(self._layout.cards)

    def cardinalities(self) -> np.ndarray:
        """Number of choices of each genome position: ``int64`` array ``(P,)``."""
        return self._layout.cards.copy()

    def positions(self, name: str) -> slice:
        """The genome positions of dimension ``name``.

        Raises:
            KeyError: ``name`` is not a dimension of the space (the message lists them).
        """
        if name not in self._dims:
            raise KeyError(f"{self.name} has no dimension {name!r}; it has {list(self._dims)}")
        return self._layout.slices[name]

    def check_genomes(self, genomes: Any) -> np.ndarray:
        """``genomes`` as an ``int64`` array ``(n, P)``, every value a valid choice index
        of its position.

        Raises:
            ValueError: not a 2-D array of P columns, not integers, or an index outside
                its position's choices (the message names the position and the range).
        """
        g = np.asarray(genomes)
        P = self.genome_length
        if g.ndim != 2 or g.shape[1] != P:
            raise ValueError(f"{self.name} genomes must have shape (n, {P}), got {g.shape}")
        if g.dtype.kind not in "iu" and g.size:
            raise ValueError(f"{self.name} genomes must be integer choice indices, got "
                             f"dtype {g.dtype}")
        g = g.astype(np.int64, copy=False)
        if g.size and (g.min() < 0 or (g >= self._layout.cards).any()):
            row, pos = (int(x[0]) for x in np.nonzero((g < 0) | (g >= self._layout.cards)))
            raise ValueError(f"{self.name} genome row {row}: {self._position_name(pos)}="
                             f"{int(g[row, pos])} is not a choice index; allowed 0.."
                             f"{int(self._layout.cards[pos]) - 1}")
        return g

    def _position_name(self, pos: int) -> str:
        for n, sl in self._layout.slices.items():
            if sl.start <= pos < sl.stop:
                return n if self._dims[n].scalar else f"{n}[{pos - sl.start}]"
        raise IndexError(pos)

    def genome_values(self, genomes: Any, name: str) -> np.ndarray:
        """The values of dimension ``name`` in each genome: ``(n, L)`` (``int64`` when all
        its choices are ints, ``float64`` when all floats, else ``object``)."""
        self.positions(name)  # a clear error for an unknown name
        return self._values(self.check_genomes(genomes), name)

    def _values(self, genomes: np.ndarray, name: str) -> np.ndarray:
        """:meth:`genome_values` of already checked genomes (subclasses' vectorised rules)."""
        table = self._layout.values[name]
        return table[np.arange(table.shape[0]), genomes[:, self._layout.slices[name]]]

    def to_genomes(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Genomes of ``configs``: ``int64`` array ``(n, P)``. Configs are taken as they
        are (not made canonical: see :meth:`canonical_genomes`).

        Raises:
            ValueError: a config lacks a dimension, has a list of the wrong length, or a
                value outside its position's choices (named, with the allowed ones).
        """
        n = len(configs)
        out = np.zeros((n, self.genome_length), dtype=np.int64)
        for name, d in self._dims.items():
            try:
                raw = [c[name] for c in configs]
            except KeyError:
                row = next(i for i, c in enumerate(configs) if name not in c)
                raise ValueError(f"{self.name} config {row} has no {name!r}; expected "
                                 f"{sorted(self._dims)}") from None
            if d.scalar:
                raw = [[v] for v in raw]
            for row, v in enumerate(raw):
                if not isinstance(v, (list, tuple)) or len(v) != d.length:
                    raise ValueError(f"{self.name} config {row}: {name!r} must be a list of "
                                     f"{d.length} values, got {v!r}")
            sl = self._layout.slices[name]
            numeric = self._layout.numeric[name] and all(
                _is_number(x) for v in raw for x in v)
            vals = np.asarray(raw, dtype=np.float64) if numeric and n else None
            for i, choices in enumerate(d.choices):
                if vals is not None:
                    ch = np.asarray(choices, dtype=np.float64)
                    idx = np.minimum(np.searchsorted(ch, vals[:, i]), len(ch) - 1)
                    ok = ch[idx] == vals[:, i]
                else:
                    lookup = {x: j for j, x in enumerate(choices)}
                    got = [lookup.get(v[i], -1) if _hashable(v[i]) else -1 for v in raw]
                    idx = np.asarray(got, dtype=np.int64).reshape(n)
                    ok = idx >= 0
                if not ok.all():
                    row = int(np.flatnonzero(~ok)[0])
                    where = name if d.scalar else f"{name}[{i}]"
                    raise ValueError(f"{self.name} config {row}: {where}={raw[row][i]!r} is "
                                     f"not allowed; choose from {list(choices)}")
                out[:, sl.start + i] = idx
        return out

    def from_genomes(self, genomes: Any) -> list[Config]:
        """Configs of ``genomes``: plain JSON-serialisable dicts with Python ints/floats,
        for a canonical genome exactly what :meth:`validate` returns for its config.

        Raises:
            ValueError: see :meth:`check_genomes`.
        """
        g = self.check_genomes(genomes)
        cols: list[list[Any]] = []
        for name, d in self._dims.items():
            table = self._layout.values[name]
            vals = table[np.arange(d.length), g[:, self._layout.slices[name]]]
            cols.append(vals[:, 0].tolist() if d.scalar else vals.tolist())
        names = list(self._dims)
        return [dict(zip(names, row, strict=True)) for row in zip(*cols, strict=True)]

    def canonical_genomes(self, genomes: Any) -> np.ndarray:
        """The canonical genome of each row (a new array): :meth:`canonical`, vectorised.

        Identity here. A subclass that overrides :meth:`canonical` but not this method
        gets a correct per-config fallback (slow); it should override both.
        """
        g = self.check_genomes(genomes)
        if type(self).canonical is ChoiceSpace.canonical:
            return g.copy()
        return self.to_genomes([self.canonical(c) for c in self.from_genomes(g)])

    def sample_genomes(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` genomes drawn uniformly per position, then made canonical: ``(n, P)``."""
        if n < 0:
            raise ValueError(f"n={n}: the number of genomes must be >= 0")
        g = rng.integers(0, self._layout.cards, size=(int(n), self.genome_length),
                         dtype=np.int64)
        return self.canonical_genomes(g)

    def encode_genomes(self, genomes: Any) -> np.ndarray:
        """:meth:`encode` of the genomes' configs, vectorised: ``float64`` ``(n, P)``
        (of their canonical forms, as :meth:`encode`)."""
        lay = self._layout
        if not all(lay.numeric.values()):
            return self.encode(self.from_genomes(genomes))
        g = self.check_genomes(genomes)
        if type(self).canonical is not ChoiceSpace.canonical:
            g = self.canonical_genomes(g)
        return lay.scaled[g + np.arange(g.shape[1], dtype=np.int64) * lay.width]

    def one_hot_genomes(self, genomes: Any) -> np.ndarray:
        """One column per (position, choice), 1.0 where the genome takes that choice:
        ``float64`` ``(n, sum(cardinalities()))``, positions in genome order."""
        g = self.check_genomes(genomes)
        lay = self._layout
        width = int(lay.cards.sum())
        out = np.zeros((g.shape[0], width))
        rows = np.arange(g.shape[0], dtype=np.int64)[:, None] * width
        out.ravel()[rows + lay.one_hot_offsets + g] = 1.0
        return out

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


def _hashable(x: Any) -> bool:
    try:
        hash(x)
    except TypeError:
        return False
    return True


def _plain(cfg: Config) -> Config:
    """Numpy scalars to Python ints/floats so configs stay JSON-serialisable."""
    def conv(x: Any) -> Any:
        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, list):
            return [conv(y) for y in x]
        return x

    return {k: conv(v) for k, v in cfg.items()}
