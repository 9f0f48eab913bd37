"""Operator-level encodings of OFA-ResNet50 and OFA-ProxylessNAS sub-networks.

The counterparts of :func:`~switchnas.predictors.encodings.mbv3_operator_features` for the
two other OFA spaces: per stage, the amount of work the active operators do (MACs by
operator kind, memory traffic, operator counts) at the config's resolution. Every column
is a non-negative amount of work, so a non-negative linear model of them
(:class:`~switchnas.predictors.models.AdditiveBlockModel`) is a sum of per-operator costs.
Each comes twice: per config (``*_operator_features``) and for a population of value
arrays (``*_operator_features_arrays``, a gather from a table built once); the two agree.

* ResNet50 (``ofa``'s ``OFAResNets``): ``d`` = [stem kept?] + 4 stage depths, ``e`` one
  expand ratio per bottleneck block, ``w`` 6 width indices (2 stem convolutions, 4
  stages) into the sorted ``width_mult_list``, ``r``. Groups: the stem, then the 4 stages,
  each ``(count, 1x1 MACs, 3x3 MACs, memory)``; then the head's MACs and memory:
  ``5 * 4 + 2 = 22`` columns.
* ProxylessNAS (``OFAProxylessNASNets``): MobileNetV2-style MBConv blocks (ReLU6, no SE),
  stage widths ``[24, 40, 80, 96, 192, 320]``, strides ``[2, 2, 2, 1, 2, 1]``, the last
  stage a single block. Per stage ``(count, pointwise MACs, depthwise MACs for kernels
  3/5/7, memory)``; then the fixed operators' (stem, first block, head) MACs and memory:
  ``6 * len(groups) + 2`` columns (38 for the default layout).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .encodings import Operator, _make_divisible

__all__ = ["PROXYLESS_GROUPS", "RESNET50_BASE_DEPTH", "ProxylessOperatorTable",
           "ResNet50OperatorTable", "proxyless_operator_features",
           "proxyless_operator_features_arrays", "proxyless_operator_table",
           "proxyless_operators", "resnet50_operator_features",
           "resnet50_operator_features_arrays", "resnet50_operator_table"]

# -- ResNet50 ---------------------------------------------------------------------------
RESNET50_BASE_DEPTH = (2, 2, 4, 2)
RESNET50_STAGE_WIDTHS = (256, 512, 1024, 2048)
RESNET50_STRIDES = (1, 2, 2, 2)
_RN_F = 4  # count, 1x1 MACs, 3x3 MACs, memory


def _down(hw: int, stride: int) -> int:
    """Output size of a 3x3 convolution (padding 1) or pooling of this stride."""
    return (hw - 1) // stride + 1


@dataclass(frozen=True)
class _ResNetWidths:
    stem_mid: tuple[int, ...]  # by w[0]
    stem_out: tuple[int, ...]  # by w[1]
    stages: tuple[tuple[int, ...], ...]  # [stage][w index]


def _resnet_widths(width_mult_list: Sequence[float]) -> _ResNetWidths:
    wl = sorted(float(w) for w in width_mult_list)  # ofa sorts them; w indexes the sorted list
    if not wl or any(not 0 < w <= 2 for w in wl):
        raise ValueError(f"width_mult_list={list(width_mult_list)}: each must be in (0, 2]")
    out = tuple(_make_divisible(64 * w) for w in wl)
    return _ResNetWidths(tuple(_make_divisible(c // 2) for c in out), out,
                         tuple(tuple(_make_divisible(b * w) for w in wl)
                               for b in RESNET50_STAGE_WIDTHS))


def _bottleneck(cin: int, cout: int, e: float, hw: int, stride: int, first: bool
                ) -> tuple[float, float, float, float]:
    """``(1, 1x1 MACs, 3x3 MACs, memory)`` of one bottleneck block; the first block of a
    stage has an (average pool +) 1x1 convolution on its shortcut."""
    mid = _make_divisible(round(cout * e))
    out = _down(hw, stride)
    pw = hw * hw * cin * mid + out * out * mid * cout + (out * out * cin * cout if first else 0)
    k3 = out * out * mid * mid * 9
    weights = cin * mid + 9 * mid * mid + mid * cout + (cin * cout if first else 0)
    memory = (2 * hw * hw * cin + 2 * hw * hw * mid + 2 * out * out * mid
              + (3 if first else 2) * out * out * cout + weights)
    return 1.0, float(pw), float(k3), float(memory)


def _stem(mid: int, cout: int, r: int, kept: bool) -> tuple[float, float, float, float]:
    """The input stem: 3x3 stride-2 convolution, the optional residual 3x3 block, a 3x3
    convolution, then the 3x3 stride-2 max pool."""
    hw = _down(r, 2)
    k3 = hw * hw * mid * 3 * 9 + hw * hw * mid * cout * 9
    memory = r * r * 3 + 2 * hw * hw * mid + hw * hw * cout + 27 * mid + 9 * mid * cout
    count = 2
    if kept:
        k3 += hw * hw * mid * mid * 9
        memory += 3 * hw * hw * mid + 9 * mid * mid
        count += 1
    pooled = _down(hw, 2)
    memory += hw * hw * cout + pooled * pooled * cout
    return float(count), 0.0, float(k3), float(memory)


def _resnet_layout(n_e: int) -> tuple[int, list[int], list[int]]:
    """``(max depth, stage of each block, slot of each block)`` from the number of ``e``."""
    extra, rem = divmod(n_e - sum(RESNET50_BASE_DEPTH), len(RESNET50_BASE_DEPTH))
    if n_e < sum(RESNET50_BASE_DEPTH) or rem:
        raise ValueError(f"an OFA-ResNet50 config needs {sum(RESNET50_BASE_DEPTH)} + 4 * "
                         f"max depth values of e; got {n_e}")
    stage = [s for s, b in enumerate(RESNET50_BASE_DEPTH) for _ in range(b + extra)]
    slot = [j for b in RESNET50_BASE_DEPTH for j in range(b + extra)]
    return extra, stage, slot


def resnet50_operator_features(configs: Sequence[Mapping[str, Any]], *,
                               width_mult_list: Sequence[float] = (0.65, 0.8, 1.0),
                               n_classes: int = 1000) -> np.ndarray:
    """Per group (stem, stage 1..4) ``(count, 1x1 MACs, 3x3 MACs, memory)`` of the active
    operators, then the head's MACs and memory: ``(n, 22)``.

    Args:
        configs: ``{"d": [stem, d1..d4], "e": [...], "w": [6 indices], "r": int}``;
            ``e`` entries of blocks beyond a stage's depth are ignored.
        width_mult_list: the super-network's width multipliers (``w`` indexes them sorted).
        n_classes: the classifier's outputs.

    Raises:
        ValueError: a config of the wrong shape, a depth outside ``0..max depth`` or a
            width index outside the list.
    """
    widths = _resnet_widths(width_mult_list)
    out = np.zeros((len(configs), 5 * _RN_F + 2))
    for row, cfg in enumerate(configs):
        d, e, w, r = list(cfg["d"]), list(cfg["e"]), list(cfg["w"]), int(cfg["r"])
        extra, stage, slot = _resnet_layout(len(e))
        if len(d) != 5 or len(w) != 6:
            raise ValueError(f"an OFA-ResNet50 config needs 5 d and 6 w values; got {len(d)}, "
                             f"{len(w)}")
        if any(not 0 <= x <= extra for x in d):
            raise ValueError(f"depths {d} must lie in 0..{extra}")
        if any(not 0 <= x < len(widths.stem_out) for x in w):
            raise ValueError(f"width indices {w} must lie in 0..{len(widths.stem_out) - 1}")
        out[row, :_RN_F] = _stem(widths.stem_mid[w[0]], widths.stem_out[w[1]], r,
                                 kept=d[0] == extra)
        hw, cin = _down(_down(r, 2), 2), widths.stem_out[w[1]]
        for b, (s, j) in enumerate(zip(stage, slot, strict=True)):
            if j >= RESNET50_BASE_DEPTH[s] + d[s + 1]:
                continue
            cout = widths.stages[s][w[s + 2]]
            stride = RESNET50_STRIDES[s] if j == 0 else 1
            g = (s + 1) * _RN_F
            out[row, g:g + _RN_F] += _bottleneck(cin, cout, float(e[b]), hw, stride, j == 0)
            hw, cin = _down(hw, stride), cout
        out[row, -2:] = cin * n_classes, hw * hw * cin + cin * n_classes + cin + n_classes
    return out


@dataclass(frozen=True)
class ResNet50OperatorTable:
    """Work of every OFA-ResNet50 part for every choice, so that a population's
    :func:`resnet50_operator_features` is a gather and a sum.

    ``blocks[b, e, w_in, w_out, r]`` are block ``b``'s 4 features with expand ratio
    ``expand[e]``, input width index ``w_in`` and output width index ``w_out`` at
    resolution ``resolutions[r]``; ``stem[w0, w1, kept, r]`` the stem's; ``head[w, r]``
    the head's MACs and memory after a last stage of width index ``w``.
    """

    expand: tuple[float, ...]
    resolutions: tuple[int, ...]
    max_depth: int
    blocks: np.ndarray  # (n_blocks, n_e, n_w, n_w, n_r, 4)
    stem: np.ndarray  # (n_w, n_w, 2, n_r, 4)
    head: np.ndarray  # (n_w, n_r, 2)


def resnet50_operator_table(*, expand: Sequence[float], resolutions: Sequence[int],
                            max_depth: int, width_mult_list: Sequence[float] = (0.65, 0.8, 1.0),
                            n_classes: int = 1000) -> ResNet50OperatorTable:
    """The :class:`ResNet50OperatorTable` over these choices."""
    widths = _resnet_widths(width_mult_list)
    ex = tuple(sorted({float(x) for x in expand}))
    rs = tuple(sorted({int(x) for x in resolutions}))
    if not ex or not rs or max_depth < 0:
        raise ValueError(f"expand={list(expand)}, resolutions={list(resolutions)}, "
                         f"max_depth={max_depth}: need values and max_depth >= 0")
    _, stage, slot = _resnet_layout(sum(RESNET50_BASE_DEPTH) + 4 * max_depth)
    nw = len(widths.stem_out)
    blocks = np.zeros((len(stage), len(ex), nw, nw, len(rs), _RN_F))
    stem = np.zeros((nw, nw, 2, len(rs), _RN_F))
    head = np.zeros((nw, len(rs), 2))
    for ri, r in enumerate(rs):
        hw0 = _down(_down(r, 2), 2)
        for a in range(nw):
            for c in range(nw):
                for kept in (0, 1):
                    stem[a, c, kept, ri] = _stem(widths.stem_mid[a], widths.stem_out[c], r,
                                                 bool(kept))
        hw_in = [hw0]  # input size of each stage's first block
        for s in range(len(RESNET50_BASE_DEPTH)):
            hw_in.append(_down(hw_in[-1], RESNET50_STRIDES[s]))
        for b, (s, j) in enumerate(zip(stage, slot, strict=True)):
            stride = RESNET50_STRIDES[s] if j == 0 else 1
            hw = hw_in[s] if j == 0 else hw_in[s + 1]
            cins = widths.stem_out if s == 0 else widths.stages[s - 1]
            for ei, x in enumerate(ex):
                for wi in range(nw):
                    for wo in range(nw):
                        cin = cins[wi] if j == 0 else widths.stages[s][wo]
                        blocks[b, ei, wi, wo, ri] = _bottleneck(
                            cin, widths.stages[s][wo], x, hw, stride, j == 0)
        for w in range(nw):
            cin, hw = widths.stages[-1][w], hw_in[-1]
            head[w, ri] = cin * n_classes, hw * hw * cin + cin * n_classes + cin + n_classes
    return ResNet50OperatorTable(ex, rs, int(max_depth), blocks, stem, head)


def resnet50_operator_features_arrays(d: Any, e: Any, w: Any, r: Any, /, *,
                                      table: ResNet50OperatorTable) -> np.ndarray:
    """:func:`resnet50_operator_features` of a population given as value arrays: ``d``
    ``(n, 5)``, ``e`` ``(n, n_blocks)``, ``w`` ``(n, 6)``, ``r`` ``(n,)``; the same columns.

    Raises:
        ValueError: shapes, or a value the table does not cover.
    """
    from .encodings import _indices

    d_, e_, w_ = (np.asarray(v) for v in (d, e, w))
    r_ = np.asarray(r).reshape(-1)
    n = len(r_)
    _, stage, slot = _resnet_layout(table.blocks.shape[0])
    nb, nw = len(stage), table.stem.shape[0]
    if d_.shape != (n, 5) or e_.shape != (n, nb) or w_.shape != (n, 6):
        raise ValueError(f"expected d (n, 5), e (n, {nb}), w (n, 6) and r (n,); got "
                         f"{d_.shape}, {e_.shape}, {w_.shape}, {r_.shape}")
    if n and (d_.min() < 0 or d_.max() > table.max_depth or w_.min() < 0 or w_.max() >= nw):
        raise ValueError(f"depths must lie in 0..{table.max_depth} and width indices in "
                         f"0..{nw - 1}")
    ri = _indices(r_, table.resolutions, "r")
    ei = _indices(e_.astype(np.float64), table.expand, "e")
    st, sl = np.asarray(stage), np.asarray(slot)
    w_in = np.where(sl == 0, st + 1, st + 2)  # the w position of each block's input
    blk = table.blocks[np.arange(nb)[None, :], ei, w_[:, w_in], w_[:, st + 2], ri[:, None]]
    active = sl[None, :] < np.asarray(RESNET50_BASE_DEPTH)[st][None, :] + d_[:, st + 1]
    blk = blk * active[:, :, None]
    out = np.zeros((n, 5 * _RN_F + 2))
    out[:, :_RN_F] = table.stem[w_[:, 0], w_[:, 1], (d_[:, 0] == table.max_depth).astype(int),
                                ri]
    for s in range(len(RESNET50_BASE_DEPTH)):
        out[:, (s + 1) * _RN_F:(s + 2) * _RN_F] = blk[:, st == s].sum(axis=1)
    out[:, -2:] = table.head[w_[:, 5], ri]
    return out


# -- ProxylessNAS -------------------------------------------------------------------------
PROXYLESS_BASE_WIDTHS = (32, 16, 24, 40, 80, 96, 192, 320, 1280)
PROXYLESS_STRIDES = (2, 2, 2, 1, 2, 1)
PROXYLESS_GROUPS = (4, 4, 4, 4, 4, 1)
_PX_F = 6  # count, pointwise MACs, depthwise MACs (k 3, 5, 7), memory


def proxyless_operators(config: Mapping[str, Any], *, width_mult: float = 1.0,
                        groups: Sequence[int] = PROXYLESS_GROUPS, n_classes: int = 1000
                        ) -> list[Operator]:
    """The operators of the OFA-ProxylessNAS sub-network ``config``, in order (``stage``
    and ``block`` set on the elastic blocks; blocks beyond a stage's depth are left out).

    Raises:
        ValueError: a config whose lists do not match ``groups``, or a depth outside
            ``1..groups[s]``.
    """
    ks, e, d, r = list(config["ks"]), list(config["e"]), list(config["d"]), int(config["r"])
    nb = sum(groups)
    if len(ks) != nb or len(e) != nb or len(d) != len(groups) or len(groups) != 6:
        raise ValueError(f"an OFA-ProxylessNAS config of stages {list(groups)} needs {nb} ks, "
                         f"{nb} e and {len(groups)} d values; got {len(ks)}, {len(e)}, {len(d)}")
    if any(not 1 <= x <= g for x, g in zip(d, groups, strict=True)):
        raise ValueError(f"depths {d} must lie in 1..{list(groups)} per stage")
    w = [_make_divisible(b * width_mult) for b in PROXYLESS_BASE_WIDTHS]
    hw = _down(r, 2)
    ops = [Operator("Conv", r, hw, 3, w[0], kernel=3, stride=2),
           Operator("expanded_conv", hw, hw, w[0], w[1], mid=w[0], kernel=3)]
    cin, start = w[1], 0
    for s, g in enumerate(groups):
        cout = w[s + 2]
        for j in range(d[s]):
            b = start + j
            stride = PROXYLESS_STRIDES[s] if j == 0 else 1
            out = _down(hw, stride)
            if ks[b] not in (3, 5, 7):
                raise ValueError(f"ks[{b}]={ks[b]} is not an OFA kernel size (3, 5, 7)")
            ops.append(Operator("expanded_conv", hw, out, cin, cout,
                                mid=_make_divisible(round(cin * e[b])), kernel=ks[b],
                                stride=stride, idskip=stride == 1 and cin == cout,
                                stage=s, block=b))
            hw, cin = out, cout
        start += g
    ops.append(Operator("Conv_1", hw, hw, cin, w[8]))
    ops.append(Operator("AvgPool2D", hw, 1, w[8], w[8]))
    ops.append(Operator("Logits", 1, 1, w[8], n_classes))
    return ops


def _px_row(op: Operator) -> tuple[float, ...]:
    dw = [op.macs_dw if op.kernel == k else 0 for k in (3, 5, 7)]
    return (1.0, float(op.macs_pw), *(float(x) for x in dw), float(op.memory))


def proxyless_operator_features(configs: Sequence[Mapping[str, Any]], *,
                                width_mult: float = 1.0,
                                groups: Sequence[int] = PROXYLESS_GROUPS,
                                n_classes: int = 1000) -> np.ndarray:
    """Per stage ``(count, pointwise MACs, depthwise MACs for kernels 3/5/7, memory)`` of
    the active blocks, then the fixed operators' MACs and memory:
    ``(n, 6 * len(groups) + 2)``. Values of blocks beyond a stage's depth are ignored."""
    out = np.zeros((len(configs), _PX_F * len(groups) + 2))
    for row, cfg in enumerate(configs):
        for op in proxyless_operators(cfg, width_mult=width_mult, groups=groups,
                                      n_classes=n_classes):
            if op.block < 0:
                out[row, -2:] += op.macs, op.memory
            else:
                out[row, op.stage * _PX_F:(op.stage + 1) * _PX_F] += _px_row(op)
    return out


@dataclass(frozen=True)
class ProxylessOperatorTable:
    """``blocks[b, k, e, r]``: block ``b``'s 6 features with kernel ``ks[k]``, expand
    ``e[e]`` at resolution ``resolutions[r]`` (a block's operator does not depend on the
    depths); ``fixed[r]`` the fixed operators' MACs and memory."""

    ks: tuple[int, ...]
    e: tuple[int, ...]
    resolutions: tuple[int, ...]
    groups: tuple[int, ...]
    blocks: np.ndarray  # (n_blocks, n_ks, n_e, n_r, 6)
    fixed: np.ndarray  # (n_r, 2)


def proxyless_operator_table(*, ks: Sequence[int] = (3, 5, 7), e: Sequence[int] = (3, 4, 6),
                             resolutions: Sequence[int] = (224,), width_mult: float = 1.0,
                             groups: Sequence[int] = PROXYLESS_GROUPS, n_classes: int = 1000
                             ) -> ProxylessOperatorTable:
    """The :class:`ProxylessOperatorTable` over these choices."""
    ks_, e_, rs = (tuple(sorted({int(x) for x in v})) for v in (ks, e, resolutions))
    if not (ks_ and e_ and rs):
        raise ValueError(f"ks={list(ks)}, e={list(e)}, resolutions={list(resolutions)}: each "
                         "needs at least one value")
    gs = tuple(int(g) for g in groups)
    blocks = np.zeros((sum(gs), len(ks_), len(e_), len(rs), _PX_F))
    fixed = np.zeros((len(rs), 2))
    for ki, k in enumerate(ks_):
        for ei, x in enumerate(e_):
            for ri, r in enumerate(rs):
                cfg = {"ks": [k] * sum(gs), "e": [x] * sum(gs), "d": list(gs), "r": r}
                fixed[ri] = 0
                for op in proxyless_operators(cfg, width_mult=width_mult, groups=gs,
                                              n_classes=n_classes):
                    if op.block < 0:
                        fixed[ri] += op.macs, op.memory
                    else:
                        blocks[op.block, ki, ei, ri] = _px_row(op)
    return ProxylessOperatorTable(ks_, e_, rs, gs, blocks, fixed)


def proxyless_operator_features_arrays(ks: Any, e: Any, d: Any, r: Any, /, *,
                                       table: ProxylessOperatorTable) -> np.ndarray:
    """:func:`proxyless_operator_features` of a population given as value arrays
    (``ks``/``e`` ``(n, n_blocks)``, ``d`` ``(n, n_stages)``, ``r`` ``(n,)``).

    Raises:
        ValueError: shapes, or a value the table does not cover.
    """
    from .encodings import _indices

    ks_, e_, d_ = (np.asarray(v) for v in (ks, e, d))
    r_ = np.asarray(r).reshape(-1)
    n, gs = len(r_), np.asarray(table.groups)
    nb = int(gs.sum())
    if ks_.shape != (n, nb) or e_.shape != (n, nb) or d_.shape != (n, len(gs)):
        raise ValueError(f"expected ks and e (n, {nb}), d (n, {len(gs)}) and r (n,); got "
                         f"{ks_.shape}, {e_.shape}, {d_.shape}, {r_.shape}")
    if n and ((d_ < 1) | (d_ > gs[None, :])).any():
        raise ValueError(f"depths must lie in 1..{list(table.groups)} per stage")
    ki, ei = _indices(ks_, table.ks, "ks"), _indices(e_, table.e, "e")
    ri = _indices(r_, table.resolutions, "r")
    stage = np.repeat(np.arange(len(gs)), gs)
    slot = np.arange(nb) - np.repeat(np.cumsum(gs) - gs, gs)
    blk = table.blocks[np.arange(nb)[None, :], ki, ei, ri[:, None]]
    blk = blk * (slot[None, :] < d_[:, stage])[:, :, None]
    feats = np.stack([blk[:, stage == s].sum(axis=1) for s in range(len(gs))], axis=1)
    return np.hstack([feats.reshape(n, _PX_F * len(gs)), table.fixed[ri]])
