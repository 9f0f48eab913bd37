"""Feature encodings of OFA-MobileNetV3 sub-networks for predictors.

Configs are our dicts ``{"ks": [20], "e": [20], "d": [5], "r": int}``;
:func:`mbv3_configs_from_table` also reads the reference tables' layouts (HELP's
``ks0..ks19, e0..e19, d0..d4, r`` columns; DyNAS-T's ``ks``/``e``/``d`` lists, possibly
as strings, with ``resolution``).

* :func:`mbv3_one_hot` - per block one-hot kernel and expand (inactive blocks all zero),
  per stage one-hot depth, resolution: what ridge and boosting fit on.
* :func:`mbv3_operators` - the operators of a sub-network with their shapes, from OFA's
  MobileNetV3 definition (base widths ``[16,16,24,40,80,112,160,960,1280]``, strides
  ``[1,2,2,2,1,2]``, SE in stages 3, 5, 6, h-swish from stage 4, stride-2 first conv);
  their analytic MACs and memory traffic, and their OFA lookup-table keys.
* :func:`mbv3_operator_features` - operator features summed per stage (or over the whole
  network, or kept per block), for :class:`~switchnas.predictors.models.AdditiveBlockModel`.
* :func:`hat_operator_features` - work terms of a HAT SuperTransformer from HAT's 10
  averaged features, for the same additive model.
* :func:`load_ofa_lut` and :func:`mbv3_lut_features` - per-operator latencies read from
  an OFA-format lookup table, for :class:`~switchnas.predictors.models.LUTSum`.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BASE_WIDTHS", "ENCODINGS", "HAT_FEATURES", "encode", "Operator", "hat_operator_features", "load_ofa_lut",
           "MBv3OperatorTable", "mbv3_block_features",
           "mbv3_configs_from_table", "mbv3_lut_features", "mbv3_one_hot", "mbv3_one_hot_arrays",
           "mbv3_operator_features", "mbv3_operator_features_arrays", "mbv3_operator_table",
           "mbv3_operators"]

BASE_WIDTHS = (16, 16, 24, 40, 80, 112, 160, 960, 1280)
STRIDES = (1, 2, 2, 2, 1, 2)
SE_STAGES = (False, False, True, False, True, True)
HSWISH_STAGES = (False, False, False, True, True, True)
N_STAGES, MAX_DEPTH = 5, 4
N_BLOCKS = N_STAGES * MAX_DEPTH
Config = dict[str, Any]


def _make_divisible(v: float, divisor: int = 8) -> int:
    """OFA's channel rounding (from the TensorFlow MobileNet code)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


# -- configs ----------------------------------------------------------------------------
def _as_list(v: Any) -> list[int]:
    if isinstance(v, str):
        v = ast.literal_eval(v)
    return [int(x) for x in v]


def mbv3_configs_from_table(table: Mapping[str, Sequence[Any]]) -> list[Config]:
    """Configs from a column table (``dict`` of columns, or a pandas ``DataFrame``).

    Accepts ``ks0..ks19``/``e0..e19``/``d0..d4`` scalar columns or ``ks``/``e``/``d``
    list columns (Python lists or their string form); resolution from ``r`` or
    ``resolution``.
    """
    cols = set(table.keys())
    rcol = "r" if "r" in cols else "resolution" if "resolution" in cols else None
    if rcol is None:
        raise ValueError(f"no resolution column ('r' or 'resolution') among {sorted(cols)}")
    n = len(table[rcol])
    if {"ks", "e", "d"} <= cols:
        lists = {k: [_as_list(v) for v in table[k]] for k in ("ks", "e", "d")}
    elif {f"ks{i}" for i in range(N_BLOCKS)} <= cols:
        lists = {
            "ks": [[int(table[f"ks{i}"][j]) for i in range(N_BLOCKS)] for j in range(n)],
            "e": [[int(table[f"e{i}"][j]) for i in range(N_BLOCKS)] for j in range(n)],
            "d": [[int(table[f"d{i}"][j]) for i in range(N_STAGES)] for j in range(n)],
        }
    else:
        raise ValueError("expected columns ks, e, d (lists) or ks0..ks19, e0..e19, d0..d4; "
                         f"got {sorted(cols)}")
    return [{"ks": lists["ks"][j], "e": lists["e"][j], "d": lists["d"][j],
             "r": int(table[rcol][j])} for j in range(n)]


def _check(cfg: Mapping[str, Any]) -> tuple[list[int], list[int], list[int], int]:
    ks, e, d, r = list(cfg["ks"]), list(cfg["e"]), list(cfg["d"]), int(cfg["r"])
    if len(ks) != N_BLOCKS or len(e) != N_BLOCKS or len(d) != N_STAGES:
        raise ValueError(f"an OFA-MobileNetV3 config needs {N_BLOCKS} ks, {N_BLOCKS} e and "
                         f"{N_STAGES} d values; got {len(ks)}, {len(e)}, {len(d)}")
    if any(not 1 <= x <= MAX_DEPTH for x in d):
        raise ValueError(f"depths {d} must lie in 1..{MAX_DEPTH}")
    return ks, e, d, r


def _active(d: Sequence[int]) -> list[bool]:
    return [b < d[s] for s in range(N_STAGES) for b in range(MAX_DEPTH)]


# -- one-hot ----------------------------------------------------------------------------
def mbv3_one_hot(configs: Sequence[Mapping[str, Any]], *, ks: Sequence[int] = (3, 5, 7),
                 e: Sequence[int] = (3, 4, 6), d: Sequence[int] = (2, 3, 4),
                 resolutions: Sequence[int] | None = None) -> np.ndarray:
    """Per block one-hot ``ks`` then ``e`` (all zero for inactive blocks), per stage
    one-hot ``d``, then the resolution: one-hot over ``resolutions`` if given, else one
    column ``r / 224``. Width ``20 * (len(ks) + len(e)) + 5 * len(d) + (1 or len(res))``."""
    ks_i = {v: i for i, v in enumerate(ks)}
    e_i = {v: i for i, v in enumerate(e)}
    d_i = {v: i for i, v in enumerate(d)}
    r_i = {v: i for i, v in enumerate(resolutions)} if resolutions is not None else None
    nk, ne, nd = len(ks), len(e), len(d)
    width = N_BLOCKS * (nk + ne) + N_STAGES * nd + (len(r_i) if r_i else 1)
    out = np.zeros((len(configs), width))
    for row, cfg in enumerate(configs):
        k_, e_, d_, r = _check(cfg)
        for b, on in enumerate(_active(d_)):
            if on:
                out[row, b * (nk + ne) + _index(ks_i, k_[b], "ks")] = 1.0
                out[row, b * (nk + ne) + nk + _index(e_i, e_[b], "e")] = 1.0
        base = N_BLOCKS * (nk + ne)
        for s, v in enumerate(d_):
            out[row, base + s * nd + _index(d_i, v, "d")] = 1.0
        base += N_STAGES * nd
        if r_i is None:
            out[row, base] = r / 224.0
        else:
            out[row, base + _index(r_i, r, "r")] = 1.0
    return out


def _index(table: Mapping[int, int], v: int, what: str) -> int:
    if v not in table:
        raise ValueError(f"{what}={v} is not among the encoded choices {sorted(table)}")
    return table[v]


# -- operators --------------------------------------------------------------------------
@dataclass(frozen=True)
class Operator:
    """One operator of a sub-network with its shapes (square feature maps)."""

    kind: str  # Conv (stem), expanded_conv, Conv_1, AvgPool2D, Conv_2, Logits
    in_hw: int
    out_hw: int
    cin: int
    cout: int
    mid: int = 0
    kernel: int = 1
    stride: int = 1
    se: bool = False
    hswish: bool = False
    idskip: bool = False
    stage: int = -1  # elastic stage 0..4; -1 for fixed operators
    block: int = -1  # elastic block 0..19; -1 for fixed operators

    @property
    def macs_pw(self) -> int:
        """Pointwise (1x1) and dense MACs."""
        if self.kind == "expanded_conv":
            expand = self.in_hw ** 2 * self.cin * self.mid if self.mid != self.cin else 0
            return expand + self.out_hw ** 2 * self.mid * self.cout
        if self.kind == "Conv":
            return self.out_hw ** 2 * self.cout * self.cin * self.kernel ** 2
        if self.kind == "AvgPool2D":
            return 0
        return self.out_hw ** 2 * self.cin * self.cout

    @property
    def macs_dw(self) -> int:
        return self.out_hw ** 2 * self.mid * self.kernel ** 2 if self.kind == "expanded_conv" else 0

    @property
    def macs_se(self) -> int:
        return 2 * self.mid * _make_divisible(self.mid // 4) if self.se else 0

    @property
    def macs(self) -> int:
        return self.macs_pw + self.macs_dw + self.macs_se

    @property
    def memory(self) -> int:
        """Activation elements read and written (per image), weights included."""
        a_in, a_out = self.in_hw ** 2 * self.cin, self.out_hw ** 2 * self.cout
        if self.kind != "expanded_conv":
            return a_in + a_out + self.cin * self.cout * self.kernel ** 2
        expanded = 2 * self.in_hw ** 2 * self.mid if self.mid != self.cin else 0
        depthwise = 2 * self.out_hw ** 2 * self.mid
        weights = (self.cin * self.mid if self.mid != self.cin else 0) + self.mid * (
            self.kernel ** 2 + self.cout)
        return a_in + expanded + depthwise + a_out * (2 if self.idskip else 1) + weights

    def lut_key(self) -> str:
        """The key of this operator in an OFA MobileNetV3 lookup table."""
        i = f"{self.in_hw}x{self.in_hw}x{self.cin}"
        if self.kind == "Logits":
            return f"Logits-input:1x1x{self.cin}-output:{self.cout}"
        o = f"{self.out_hw}x{self.out_hw}x{self.cout}"
        key = f"{self.kind}-input:{i}-output:{o}"
        if self.kind == "expanded_conv":
            key += (f"-expand:{self.mid}-kernel:{self.kernel}-stride:{self.stride}"
                    f"-idskip:{int(self.idskip)}-se:{int(self.se)}-hs:{int(self.hswish)}")
        return key


def mbv3_operators(config: Mapping[str, Any], *, width_mult: float = 1.0) -> list[Operator]:
    """The operators of the OFA-MobileNetV3 sub-network ``config``, in order."""
    ks, e, d, r = _check(config)
    w = [_make_divisible(b * width_mult) for b in BASE_WIDTHS]
    hw = (r + 1) // 2
    ops = [Operator("Conv", r, hw, 3, w[0], kernel=3, stride=2, hswish=True)]
    ops.append(Operator("expanded_conv", hw, hw, w[0], w[1], mid=w[0], kernel=3, stride=1,
                        idskip=w[0] == w[1]))
    cin = w[1]
    for s in range(N_STAGES):
        cout = w[s + 2]
        for b in range(d[s]):
            blk = s * MAX_DEPTH + b
            stride = STRIDES[s + 1] if b == 0 else 1
            out_hw = (hw - 1) // stride + 1
            if ks[blk] not in (3, 5, 7):
                raise ValueError(f"ks[{blk}]={ks[blk]} is not an OFA kernel size (3, 5, 7)")
            mid = _make_divisible(round(cin * e[blk]))
            ops.append(Operator("expanded_conv", hw, out_hw, cin, cout, mid=mid, kernel=ks[blk],
                                stride=stride, se=SE_STAGES[s + 1], hswish=HSWISH_STAGES[s + 1],
                                idskip=stride == 1 and cin == cout, stage=s, block=blk))
            hw, cin = out_hw, cout
    ops.append(Operator("Conv_1", hw, hw, cin, w[7], hswish=True))
    ops.append(Operator("AvgPool2D", hw, 1, w[7], w[7]))
    ops.append(Operator("Conv_2", 1, 1, w[7], w[8], hswish=True))
    ops.append(Operator("Logits", 1, 1, w[8], 1000))
    return ops


_BLOCK_FIELDS = ("active", "macs_pw", "macs_dw", "macs_se", "memory", "kernel", "expand")


def mbv3_block_features(configs: Sequence[Mapping[str, Any]], *,
                        width_mult: float = 1.0) -> np.ndarray:
    """Per elastic block ``(active, pointwise MACs, depthwise MACs, SE MACs, memory,
    kernel, expand)``, all zero for inactive blocks, then the fixed operators' MACs and
    memory and the resolution: ``(n, 20 * 7 + 3)``."""
    nf = len(_BLOCK_FIELDS)
    out = np.zeros((len(configs), N_BLOCKS * nf + 3))
    for row, cfg in enumerate(configs):
        fixed_macs = fixed_mem = 0
        for op in mbv3_operators(cfg, width_mult=width_mult):
            if op.block < 0:
                fixed_macs += op.macs
                fixed_mem += op.memory
                continue
            out[row, op.block * nf:(op.block + 1) * nf] = (
                1, op.macs_pw, op.macs_dw, op.macs_se, op.memory, op.kernel,
                cfg["e"][op.block])
        out[row, -3:] = fixed_macs, fixed_mem, int(cfg["r"])
    return out


def mbv3_operator_features(configs: Sequence[Mapping[str, Any]], *, level: str = "stage",
                           width_mult: float = 1.0) -> np.ndarray:
    """Additive operator features: for each group of elastic blocks, the number of
    blocks, pointwise MACs, depthwise MACs by kernel size (3, 5, 7), SE MACs and memory
    traffic; then the fixed operators' MACs and memory.

    ``level`` picks the groups: ``"stage"`` (5 groups, 7 features each: 37 columns),
    ``"network"`` (one group: 9 columns) or ``"block"`` (20 groups: 142 columns).
    Every column is a non-negative amount of work, so a non-negative linear model of
    them is a sum of per-operator costs.
    """
    groups = {"stage": N_STAGES, "network": 1, "block": N_BLOCKS}
    if level not in groups:
        raise ValueError(f"level={level!r}; choose one of {sorted(groups)}")
    ng, nf = groups[level], 7
    out = np.zeros((len(configs), ng * nf + 2))
    for row, cfg in enumerate(configs):
        for op in mbv3_operators(cfg, width_mult=width_mult):
            if op.block < 0:
                out[row, -2:] += op.macs, op.memory
                continue
            g = {"stage": op.stage, "network": 0, "block": op.block}[level]
            dw = [op.macs_dw if op.kernel == k else 0 for k in (3, 5, 7)]
            out[row, g * nf:(g + 1) * nf] += (1, op.macs_pw, *dw, op.macs_se, op.memory)
    return out


# -- vectorised (whole populations as arrays) ------------------------------------------
@dataclass(frozen=True)
class MBv3OperatorTable:
    """Operator features of every elastic block for every (kernel, expand, resolution)
    choice, so a population's :func:`mbv3_operator_features` is a gather and a sum.

    ``blocks[b, k, e, r]`` are block ``b``'s 7 features (count, pointwise MACs, depthwise
    MACs for kernels 3/5/7, SE MACs, memory) with kernel ``ks[k]``, expand ``e[e]`` at
    resolution ``resolutions[r]``; ``fixed[r]`` the fixed operators' MACs and memory. A
    block's operator does not depend on the depths: only a stage's first block strides.
    """

    ks: tuple[int, ...]
    e: tuple[int, ...]
    resolutions: tuple[int, ...]
    width_mult: float
    blocks: np.ndarray  # (20, len(ks), len(e), len(resolutions), 7)
    fixed: np.ndarray  # (len(resolutions), 2)


def mbv3_operator_table(*, ks: Sequence[int] = (3, 5, 7), e: Sequence[int] = (3, 4, 6),
                        resolutions: Sequence[int] = (224,),
                        width_mult: float = 1.0) -> MBv3OperatorTable:
    """The :class:`MBv3OperatorTable` over these choices (``len(ks) * len(e) *
    len(resolutions)`` calls of :func:`mbv3_operators`)."""
    ks_, e_, rs = (tuple(sorted({int(x) for x in v})) for v in (ks, e, resolutions))
    if not (ks_ and e_ and rs):
        raise ValueError(f"ks={list(ks)}, e={list(e)}, resolutions={list(resolutions)}: each "
                         "needs at least one value")
    blocks = np.zeros((N_BLOCKS, len(ks_), len(e_), len(rs), 7))
    fixed = np.zeros((len(rs), 2))
    for ki, k in enumerate(ks_):
        for ei, x in enumerate(e_):
            for ri, r in enumerate(rs):
                cfg = {"ks": [k] * N_BLOCKS, "e": [x] * N_BLOCKS, "d": [MAX_DEPTH] * N_STAGES,
                       "r": r}
                fixed[ri] = 0
                for op in mbv3_operators(cfg, width_mult=width_mult):
                    if op.block < 0:
                        fixed[ri] += op.macs, op.memory
                        continue
                    dw = [op.macs_dw if op.kernel == kk else 0 for kk in (3, 5, 7)]
                    blocks[op.block, ki, ei, ri] = (1, op.macs_pw, *dw, op.macs_se, op.memory)
    return MBv3OperatorTable(ks_, e_, rs, float(width_mult), blocks, fixed)


def _indices(values: np.ndarray, choices: Sequence[Any], what: str) -> np.ndarray:
    """Index of each value in the sorted ``choices``; ``ValueError`` names a stray value."""
    ch = np.asarray(choices)
    small = (values.dtype.kind in "iu" and ch.dtype.kind in "iu" and values.size > 0
             and min(values.min(), ch.min()) >= 0 and max(values.max(), ch.max()) <= 4096)
    if small:
        lut = np.full(max(int(values.max()), int(ch.max())) + 1, -1, dtype=np.int64)
        lut[ch] = np.arange(len(ch))  # small non-negative ints: a lookup table
        idx = lut[values]
        bad = idx < 0
    else:
        idx = np.minimum(np.searchsorted(ch, values), len(ch) - 1)
        bad = ch[idx] != values
    if bad.any():
        stray = values[bad].ravel()[0]
        stray = stray.item() if isinstance(stray, np.generic) else stray
        raise ValueError(f"{what}={stray!r} is not among the encoded "
                         f"choices {list(choices)}")
    return idx


def _mbv3_arrays(ks: Any, e: Any, d: Any, r: Any
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    ks_, e_, d_ = (np.asarray(v) for v in (ks, e, d))
    r_ = np.asarray(r).reshape(-1)
    n = len(r_)
    if ks_.shape != (n, N_BLOCKS) or e_.shape != (n, N_BLOCKS) or d_.shape != (n, N_STAGES):
        raise ValueError(f"expected ks and e of shape (n, {N_BLOCKS}), d of shape "
                         f"(n, {N_STAGES}) and r of shape (n,); got {ks_.shape}, {e_.shape}, "
                         f"{d_.shape}, {r_.shape}")
    if n and (d_.min() < 1 or d_.max() > MAX_DEPTH):
        raise ValueError(f"depths must lie in 1..{MAX_DEPTH}, got {d_.min()}..{d_.max()}")
    return ks_, e_, d_, r_


def _active_blocks(d: np.ndarray) -> np.ndarray:
    """``(n, 20)``: whether each elastic block is within its stage's depth."""
    slot = np.tile(np.arange(MAX_DEPTH), N_STAGES)
    return slot[None, :] < np.repeat(d, MAX_DEPTH, axis=1)


def mbv3_operator_features_arrays(ks: Any, e: Any, d: Any, r: Any, /, *,
                                  table: MBv3OperatorTable,
                                  level: str = "stage") -> np.ndarray:
    """:func:`mbv3_operator_features` of a population given as value arrays: ``ks`` and
    ``e`` ``(n, 20)``, ``d`` ``(n, 5)``, ``r`` ``(n,)``; the same columns, to rounding.

    Args:
        ks, e, d, r: the configs' values.
        table: from :func:`mbv3_operator_table`, covering every value and the width.
        level: ``"stage"``, ``"network"`` or ``"block"``.

    Raises:
        ValueError: shapes, a value the table does not cover, or an unknown ``level``.
    """
    groups = {"stage": N_STAGES, "network": 1, "block": N_BLOCKS}
    if level not in groups:
        raise ValueError(f"level={level!r}; choose one of {sorted(groups)}")
    ks_, e_, d_, r_ = _mbv3_arrays(ks, e, d, r)
    ki, ei = _indices(ks_, table.ks, "ks"), _indices(e_, table.e, "e")
    ri = _indices(r_, table.resolutions, "r")
    blk = table.blocks[np.arange(N_BLOCKS)[None, :], ki, ei, ri[:, None]]  # (n, 20, 7)
    blk = blk * _active_blocks(d_)[:, :, None]
    n = len(r_)
    per = {"stage": MAX_DEPTH, "network": N_BLOCKS, "block": 1}[level]
    feats = blk.reshape(n, groups[level], per, 7).sum(axis=2).reshape(n, -1)
    return np.hstack([feats, table.fixed[ri]])


def mbv3_one_hot_arrays(ks_values: Any, e_values: Any, d_values: Any, r_values: Any, /, *,
                        ks: Sequence[int] = (3, 5, 7), e: Sequence[int] = (3, 4, 6),
                        d: Sequence[int] = (2, 3, 4),
                        resolutions: Sequence[int] | None = None) -> np.ndarray:
    """:func:`mbv3_one_hot` of a population given as value arrays (``ks``/``e``
    ``(n, 20)``, ``d`` ``(n, 5)``, ``r`` ``(n,)``): the same matrix.

    Raises:
        ValueError: shapes, or a value outside the encoded choices.
    """
    ks_, e_, d_, r_ = _mbv3_arrays(ks_values, e_values, d_values, r_values)
    nk, ne, nd = len(ks), len(e), len(d)
    n = len(r_)
    width = N_BLOCKS * (nk + ne) + N_STAGES * nd + (len(resolutions) if resolutions else 1)
    out = np.zeros((n, width))
    rows = np.arange(n)[:, None]
    active = _active_blocks(d_)
    ki = _unsorted_indices(np.where(active, ks_, ks[0]), ks, "ks")  # inactive: any value
    ei = _unsorted_indices(np.where(active, e_, e[0]), e, "e")
    base = np.arange(N_BLOCKS)[None, :] * (nk + ne)
    out[rows, base + ki] = active
    out[rows, base + nk + ei] = active
    base0 = N_BLOCKS * (nk + ne)
    out[rows, base0 + np.arange(N_STAGES)[None, :] * nd + _unsorted_indices(d_, d, "d")] = 1.0
    base0 += N_STAGES * nd
    if resolutions is None:
        out[:, base0] = r_ / 224.0
    else:
        out[np.arange(n), base0 + _unsorted_indices(r_, resolutions, "r")] = 1.0
    return out


def _unsorted_indices(values: np.ndarray, choices: Sequence[int], what: str) -> np.ndarray:
    """Index of each value in ``choices`` (any order); ``ValueError`` names a stray one."""
    order = np.argsort(np.asarray(choices), kind="stable")
    return order[_indices(values, [choices[i] for i in order], what)]


# -- lookup tables ----------------------------------------------------------------------
def load_ofa_lut(path: str | Path) -> dict[str, float]:
    """Read an OFA-format lookup table (YAML ``key: {count, mean, std}``) as
    ``{key: mean ms}``; refuses a malformed table with a message naming the bad entry."""
    import yaml

    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read lookup table {str(p)!r}: {exc}") from exc
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"lookup table {str(p)!r} is not a non-empty mapping")
    out: dict[str, float] = {}
    for k, v in raw.items():
        mean = v.get("mean") if isinstance(v, dict) else None
        if isinstance(mean, bool) or not isinstance(mean, (int, float)) or not (
                np.isfinite(mean) and mean >= 0):
            raise ValueError(f"lookup table {str(p)!r}: entry {k!r} has no finite mean >= 0 "
                             f"(got {v!r})")
        out[str(k)] = float(mean)
    return out


def mbv3_lut_features(configs: Sequence[Mapping[str, Any]], table: Mapping[str, float], *,
                      width_mult: float = 1.0) -> np.ndarray:
    """Per-operator table latencies, one column per operator position (stem, first
    block, 20 elastic blocks with 0 where inactive, 4 head operators): ``(n, 26)``.

    Raises ``KeyError`` naming the first operator missing from ``table``."""
    out = np.zeros((len(configs), N_BLOCKS + 6))
    for row, cfg in enumerate(configs):
        ops = mbv3_operators(cfg, width_mult=width_mult)
        head = 0
        for i, op in enumerate(ops):
            key = op.lut_key()
            if key not in table:
                raise KeyError(f"operator {key!r} of config {dict(cfg)} is not in the table")
            if op.block >= 0:
                col = 2 + op.block
            elif i < 2:
                col = i
            else:
                col = 2 + N_BLOCKS + head
                head += 1
            out[row, col] = table[key]
    return out


# -- HAT SuperTransformer ---------------------------------------------------------------
#: HAT's latency-dataset feature columns, in order.
HAT_FEATURES = ("encoder_embed_dim", "encoder_layer_num", "encoder_ffn_embed_dim_avg",
                "encoder_self_attention_heads_avg", "decoder_embed_dim", "decoder_layer_num",
                "decoder_ffn_embed_dim_avg", "decoder_self_attention_heads_avg",
                "decoder_ende_attention_heads_avg", "decoder_arbitrary_ende_attn_avg")


def hat_operator_features(X: np.ndarray) -> np.ndarray:
    """Work terms of a SuperTransformer from HAT's 10 averaged features (columns in
    :data:`HAT_FEATURES` order), followed by the 10 raw features: ``(n, 26)``.

    Per layer, attention projections cost ``~ embed^2``, the feed-forward net
    ``~ embed * ffn``, per-head overheads ``~ heads``; the decoder's cross-attention
    projects the encoder output (``~ dec_embed * enc_embed``) for as many encoder layers
    as it attends to. Multiplied by the layer counts, these are non-negative amounts of
    work whose costs add up, so an additive non-negative model fits them from few rows.
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != len(HAT_FEATURES):
        raise ValueError(f"expected (n, {len(HAT_FEATURES)}) HAT features "
                         f"{list(HAT_FEATURES)}, got shape {X.shape}")
    ee, le, fe, he, ed, ld, fd, hd, hx, ax = X.T
    work = np.stack([le, le * ee * ee, le * ee * fe, le * he, le * ee,
                     ld, ld * ed * ed, ld * ed * fd, ld * hd, ld * hx, ld * ed * ee * ax,
                     ld * ed * ax, ld * ed, ed, ee, ld * ax], axis=1)
    return np.hstack([work, X])


# -- by name ----------------------------------------------------------------------------
def _onehot_ops(configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """One-hot plus stage operator features, the latter divided by fixed per-column scales
    (the largest network at 224) so that every row is encoded independently."""
    ops = mbv3_operator_features(configs, level="stage")
    ref = mbv3_operator_features([{"ks": [7] * N_BLOCKS, "e": [6] * N_BLOCKS,
                                   "d": [MAX_DEPTH] * N_STAGES, "r": 224}], level="stage")[0]
    return np.hstack([mbv3_one_hot(configs), ops / np.where(ref > 0, ref, 1.0)])


#: Encodings of OFA-MobileNetV3 configs by name (for configs and the ``fit`` stage).
ENCODINGS: dict[str, Callable[[Sequence[Mapping[str, Any]]], np.ndarray]] = {
    "ofa_mbv3_onehot": mbv3_one_hot,
    "ofa_mbv3_ops_network": lambda c: mbv3_operator_features(c, level="network"),
    "ofa_mbv3_ops_stage": lambda c: mbv3_operator_features(c, level="stage"),
    "ofa_mbv3_ops_block": lambda c: mbv3_operator_features(c, level="block"),
    "ofa_mbv3_onehot_ops": _onehot_ops,
}


def encode(name: str, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """``ENCODINGS[name](configs)``, with an error naming the known encodings."""
    if name not in ENCODINGS:
        raise ValueError(f"unknown encoding {name!r}; choose one of {sorted(ENCODINGS)}")
    return ENCODINGS[name](configs)
