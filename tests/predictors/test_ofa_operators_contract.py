"""Contract of :mod:`switchnas.predictors.ofa_operators`: exact feature values, the
agreement of the per-config and the array (table) paths, defaults and error messages."""

from __future__ import annotations

import numpy as np
import pytest

from switchnas.predictors.encodings import Operator
from switchnas.predictors.ofa_operators import (
    PROXYLESS_GROUPS,
    RESNET50_BASE_DEPTH,
    proxyless_operator_features,
    proxyless_operator_features_arrays,
    proxyless_operator_table,
    proxyless_operators,
    resnet50_operator_features,
    resnet50_operator_features_arrays,
    resnet50_operator_table,
)

RN_A = {"d": [2, 0, 1, 2, 0],
        "e": [0.2, 0.25, 0.35, 0.2, 0.25, 0.35, 0.2, 0.25] * 2 + [0.35, 0.2],
        "w": [0, 2, 1, 0, 2, 1], "r": 224}
RN_B = {"d": [1, 2, 2, 1, 1], "e": [0.35] * 18, "w": [2, 0, 2, 1, 0, 2], "r": 160}
RN_A_FEATS = [3, 0, 246564864, 3481800, 2, 148922368, 133668864, 6261760, 3, 232314880,
              185149440, 5946752, 6, 742002688, 841075200, 14546944, 2, 240051392, 120855168,
              7562440, 1640000, 1723000]
RN_B_FEATS = [2, 0, 79257600, 1074784, 4, 274329600, 446054400, 8975040, 4, 265267200,
              298598400, 5833472, 5, 203596800, 242208000, 6365280, 3, 266124800, 349920000,
              24227552, 2048000, 2102248]

PX_A = {"ks": [3, 5, 7, 3, 5, 7, 3, 5, 7, 3, 5, 7, 3, 3, 5, 5, 7, 7, 3, 3, 5],
        "e": [3, 4, 6, 3, 4, 6, 3, 4, 6, 3, 4, 6, 3, 3, 4, 4, 6, 6, 3, 3, 4],
        "d": [1, 2, 3, 4, 2, 1], "r": 224}
PX_B = {"ks": [7] * 21, "e": [6] * 21, "d": [4, 4, 4, 4, 4, 1], "r": 192}
PX_A_FEATS = [1, 13246464, 1354752, 0, 0, 1783600, 2, 25288704, 0, 1881600, 9219840, 1745488,
              3, 28851200, 423360, 1568000, 2304960, 1190880, 4, 48018432, 931392, 3763200,
              0, 1488848, 2, 37933056, 0, 0, 4148928, 1257408, 1, 19267584, 0, 940800, 0,
              588032, 42223616, 5431208]
PX_B_FEATS = [4, 67239936, 0, 0, 59609088, 6944016, 4, 44457984, 0, 0, 24385536, 2883168, 4,
              41472000, 0, 0, 11854080, 1654800, 4, 59940864, 0, 0, 15579648, 1946016, 4,
              59719680, 0, 0, 7112448, 2478528, 1, 21233664, 0, 0, 2032128, 830592, 31361024,
              4874600]


def _rn_arrays(cfgs):
    d = np.array([c["d"] for c in cfgs])
    e = np.array([c["e"] for c in cfgs], dtype=float)
    w = np.array([c["w"] for c in cfgs])
    r = np.array([c["r"] for c in cfgs])
    return d, e, w, r


def _px_arrays(cfgs):
    return (np.array([c["ks"] for c in cfgs]), np.array([c["e"] for c in cfgs]),
            np.array([c["d"] for c in cfgs]), np.array([c["r"] for c in cfgs]))


# -- ResNet50 ------------------------------------------------------------------------------
def test_resnet50_features_pinned_values() -> None:
    out = resnet50_operator_features([RN_A, RN_B])
    assert out.shape == (2, 22)
    assert out[0].tolist() == RN_A_FEATS
    assert out[1].tolist() == RN_B_FEATS


def test_resnet50_arrays_match_per_config_and_pinned() -> None:
    table = resnet50_operator_table(expand=[0.35, 0.2, 0.25, 0.2], resolutions=[224, 160],
                                    max_depth=2)
    assert table.expand == (0.2, 0.25, 0.35)
    assert table.resolutions == (160, 224)
    assert table.max_depth == 2
    assert table.blocks.shape == (18, 3, 3, 3, 2, 4)
    assert table.stem.shape == (3, 3, 2, 2, 4)
    assert table.head.shape == (3, 2, 2)
    out = resnet50_operator_features_arrays(*_rn_arrays([RN_A, RN_B]), table=table)
    assert out.tolist() == [RN_A_FEATS, RN_B_FEATS]


def test_resnet50_arrays_match_per_config_random() -> None:
    rng = np.random.default_rng(3)
    ex, rs = [0.2, 0.25, 0.35], [128, 160, 193, 224]
    cfgs = [{"d": rng.integers(0, 3, 5).tolist(), "e": rng.choice(ex, 18).tolist(),
             "w": rng.integers(0, 3, 6).tolist(), "r": int(rng.choice(rs))} for _ in range(12)]
    cfgs.append({"d": [2] * 5, "e": [0.35] * 18, "w": [2] * 6, "r": 224})
    cfgs.append({"d": [0] * 5, "e": [0.2] * 18, "w": [0] * 6, "r": 128})
    for wl, nc in (((0.65, 0.8, 1.0), 1000), ((1.0, 0.5), 10)):
        cfg_w = [dict(c, w=[min(x, len(wl) - 1) for x in c["w"]]) for c in cfgs]
        ref = resnet50_operator_features(cfg_w, width_mult_list=wl, n_classes=nc)
        table = resnet50_operator_table(expand=ex, resolutions=rs, max_depth=2,
                                        width_mult_list=wl, n_classes=nc)
        got = resnet50_operator_features_arrays(*_rn_arrays(cfg_w), table=table)
        np.testing.assert_array_equal(got, ref)


def test_resnet50_stem_uses_w0_for_mid_and_w1_for_out() -> None:
    """Stem by hand (default widths: stem out 40/48/64, stem mid 24/24/32), r 224:
    112x112 after the stride-2 conv, 56x56 after the pool."""
    base = {"d": [0, 0, 0, 0, 0], "e": [0.25] * 14, "r": 224}
    a = resnet50_operator_features([dict(base, w=[2, 0, 0, 0, 0, 0])])[0]
    b = resnet50_operator_features([dict(base, w=[0, 2, 0, 0, 0, 0])])[0]
    hw, pooled = 112, 56
    for row, mid, cout in ((a, 32, 40), (b, 24, 64)):
        k3 = hw * hw * mid * 3 * 9 + hw * hw * mid * cout * 9
        mem = (224 * 224 * 3 + 2 * hw * hw * mid + hw * hw * cout + 27 * mid + 9 * mid * cout
               + hw * hw * cout + pooled * pooled * cout)
        assert row[:4].tolist() == [2.0, 0.0, k3, mem]
    # max depth 0: the stem block counts as kept (d[0] == max depth)
    c = resnet50_operator_features([dict(base, d=[0] * 5, e=[0.25] * 10, w=[0] * 6)])[0]
    assert c[0] == 3.0


def test_resnet50_stem_kept_only_at_max_depth() -> None:
    base = {"e": [0.25] * 14, "w": [1] * 6, "r": 128}
    kept = resnet50_operator_features([dict(base, d=[1, 0, 0, 0, 0])])[0]
    dropped = resnet50_operator_features([dict(base, d=[0, 0, 0, 0, 0])])[0]
    assert kept[0] == 3.0 and dropped[0] == 2.0
    hw, mid = 64, 24
    assert kept[2] - dropped[2] == hw * hw * mid * mid * 9
    assert kept[3] - dropped[3] == 3 * hw * hw * mid + 9 * mid * mid
    np.testing.assert_array_equal(kept[4:], dropped[4:])


def test_resnet50_first_stage_by_hand() -> None:
    """max depth 0, all width index 0, e 0.25, r 32: stage 1 is 2 blocks from 8x8."""
    cfg = {"d": [0] * 5, "e": [0.25] * 10, "w": [0] * 6, "r": 32}
    row = resnet50_operator_features([cfg])[0]
    cin, cout, hw = 40, 168, 8  # stem out 40; stage width 256 * 0.65 -> 168
    mid = 40  # make_divisible(round(168 * 0.25) = 42) -> 40
    b1 = (hw * hw * cin * mid + hw * hw * mid * cout + hw * hw * cin * cout,
          hw * hw * mid * mid * 9,
          2 * hw * hw * cin + 4 * hw * hw * mid + 3 * hw * hw * cout
          + cin * mid + 9 * mid * mid + mid * cout + cin * cout)
    b2 = (hw * hw * cout * mid + hw * hw * mid * cout, hw * hw * mid * mid * 9,
          2 * hw * hw * cout + 4 * hw * hw * mid + 2 * hw * hw * cout
          + cout * mid + 9 * mid * mid + mid * cout)
    assert row[4:8].tolist() == [2.0, b1[0] + b2[0], b1[1] + b2[1], b1[2] + b2[2]]
    # head after a 1x1 (32 -> 16 -> 16 -> 8 -> 4 -> 2 -> 1) last stage of width 1336
    last = 1328  # make_divisible(2048 * 0.65 = 1331.2)
    assert row[-2:].tolist() == [last * 1000, last + last * 1000 + last + 1000]


def test_resnet50_ignores_e_beyond_depth_and_sorts_width_list() -> None:
    cfg = {"d": [1, 1, 0, 1, 0], "e": [0.25] * 14, "w": [0, 1, 2, 0, 1, 2], "r": 128}
    other_e = list(cfg["e"])
    other_e[5] = 0.35  # stage 2 slot 2: beyond depth 2 + 0
    other_e[13] = 0.35  # stage 4 slot 2: beyond depth 2 + 0
    a = resnet50_operator_features([cfg])
    b = resnet50_operator_features([dict(cfg, e=other_e)])
    np.testing.assert_array_equal(a, b)
    c = resnet50_operator_features([cfg], width_mult_list=[1.0, 0.65, 0.8])
    np.testing.assert_array_equal(a, c)
    other_e[2] = 0.35  # stage 1 slot 2: active (depth 2 + 1)
    assert not np.array_equal(a, resnet50_operator_features([dict(cfg, e=other_e)]))


def test_resnet50_n_classes_default_and_head() -> None:
    cfg = {"d": [0] * 5, "e": [0.25] * 10, "w": [2] * 6, "r": 224}
    a = resnet50_operator_features([cfg])[0]
    b = resnet50_operator_features([cfg], n_classes=10)[0]
    assert a[-2:].tolist() == [2048 * 1000, 7 * 7 * 2048 + 2048 * 1000 + 2048 + 1000]
    assert b[-2:].tolist() == [2048 * 10, 7 * 7 * 2048 + 2048 * 10 + 2048 + 10]
    np.testing.assert_array_equal(a[:-2], b[:-2])


def test_resnet50_width_list_bounds() -> None:
    cfg = {"d": [0] * 5, "e": [0.25] * 10, "w": [0] * 6, "r": 64}
    assert resnet50_operator_features([cfg], width_mult_list=[2.0]).shape == (1, 22)
    for bad in ([0.0], [2.5], [], [-1.0, 1.0]):
        with pytest.raises(ValueError, match=r"^width_mult_list=\[.*\]: each must be in "
                                             r"\(0, 2\]$"):
            resnet50_operator_features([cfg], width_mult_list=bad)


def test_resnet50_config_errors() -> None:
    ok = {"d": [0] * 5, "e": [0.25] * 10, "w": [0] * 6, "r": 64}
    with pytest.raises(ValueError, match=r"^an OFA-ResNet50 config needs 10 \+ 4 \* max depth "
                                         r"values of e; got 11$"):
        resnet50_operator_features([dict(ok, e=[0.25] * 11)])
    with pytest.raises(ValueError, match=r"got 9$"):
        resnet50_operator_features([dict(ok, e=[0.25] * 9)])
    with pytest.raises(ValueError, match=r"^an OFA-ResNet50 config needs 5 d and 6 w values; "
                                         r"got 4, 6$"):
        resnet50_operator_features([dict(ok, d=[0] * 4)])
    with pytest.raises(ValueError, match=r"got 5, 7$"):
        resnet50_operator_features([dict(ok, w=[0] * 7)])
    with pytest.raises(ValueError, match=r"^depths \[0, 0, 1, 0, 0\] must lie in 0\.\.0$"):
        resnet50_operator_features([dict(ok, d=[0, 0, 1, 0, 0])])
    with pytest.raises(ValueError, match=r"^depths \[0, -1, 0, 0, 0\] must lie in 0\.\.0$"):
        resnet50_operator_features([dict(ok, d=[0, -1, 0, 0, 0])])
    with pytest.raises(ValueError, match=r"^width indices \[0, 0, 0, 0, 0, 7\] must lie in "
                                         r"0\.\.2$"):
        resnet50_operator_features([dict(ok, w=[0, 0, 0, 0, 0, 7])])
    with pytest.raises(ValueError, match=r"^width indices \[0, 0, 0, 0, 0, 3\] must lie"):
        resnet50_operator_features([dict(ok, w=[0, 0, 0, 0, 0, 3])])
    with pytest.raises(ValueError, match=r"^width indices \[-1, 0, 0, 0, 0, 0\] must lie"):
        resnet50_operator_features([dict(ok, w=[-1, 0, 0, 0, 0, 0])])
    # upper bounds are inclusive for depths
    assert resnet50_operator_features([dict(ok, e=[0.25] * 14, d=[1] * 5)]).shape == (1, 22)


def test_resnet50_table_errors() -> None:
    with pytest.raises(ValueError, match=r"^expand=\[\], resolutions=\[224\], max_depth=1: "
                                         r"need values and max_depth >= 0$"):
        resnet50_operator_table(expand=[], resolutions=[224], max_depth=1)
    with pytest.raises(ValueError, match=r"^expand=\[0\.25\], resolutions=\[\], max_depth=1"):
        resnet50_operator_table(expand=[0.25], resolutions=[], max_depth=1)
    with pytest.raises(ValueError, match=r"max_depth=-1: need values"):
        resnet50_operator_table(expand=[0.25], resolutions=[224], max_depth=-1)
    t = resnet50_operator_table(expand=[0.25], resolutions=[64], max_depth=0)
    assert t.blocks.shape == (10, 1, 3, 3, 1, 4)


def test_resnet50_arrays_errors() -> None:
    table = resnet50_operator_table(expand=[0.25, 0.35], resolutions=[64], max_depth=1)
    d, e, w, r = _rn_arrays([{"d": [1, 0, 1, 0, 1], "e": [0.25] * 14, "w": [0] * 6, "r": 64}])
    assert resnet50_operator_features_arrays(d, e, w, r, table=table).shape == (1, 22)
    with pytest.raises(ValueError, match=r"^expected d \(n, 5\), e \(n, 14\), w \(n, 6\) and "
                                         r"r \(n,\); got \(1, 4\), \(1, 14\), \(1, 6\), "
                                         r"\(1,\)$"):
        resnet50_operator_features_arrays(d[:, :4], e, w, r, table=table)
    with pytest.raises(ValueError, match=r"got \(1, 5\), \(1, 13\), \(1, 6\), \(1,\)$"):
        resnet50_operator_features_arrays(d, e[:, :13], w, r, table=table)
    with pytest.raises(ValueError, match=r"got \(1, 5\), \(1, 14\), \(1, 5\), \(1,\)$"):
        resnet50_operator_features_arrays(d, e, w[:, :5], r, table=table)
    msg = r"^depths must lie in 0\.\.1 and width indices in 0\.\.2$"
    for dd, ww in ((d + 1, w), (d - 1, w), (d, w + 3), (d, w - 1)):
        with pytest.raises(ValueError, match=msg):
            resnet50_operator_features_arrays(dd, e, ww, r, table=table)
    with pytest.raises(ValueError, match=r"^e=0\.5 is not among"):
        resnet50_operator_features_arrays(d, np.full_like(e, 0.5), w, r, table=table)
    with pytest.raises(ValueError, match=r"^r=96 is not among"):
        resnet50_operator_features_arrays(d, e, w, np.array([96]), table=table)
    empty = resnet50_operator_features_arrays(np.zeros((0, 5), int), np.zeros((0, 14)),
                                              np.zeros((0, 6), int), np.zeros(0, int),
                                              table=table)
    assert empty.shape == (0, 22)


# -- ProxylessNAS --------------------------------------------------------------------------
def test_proxyless_features_pinned_values() -> None:
    out = proxyless_operator_features([PX_A, PX_B])
    assert out.shape == (2, 38)
    assert out[0].tolist() == PX_A_FEATS
    assert out[1].tolist() == PX_B_FEATS


def test_proxyless_arrays_match_pinned_and_random() -> None:
    table = proxyless_operator_table(resolutions=[192, 224])
    out = proxyless_operator_features_arrays(*_px_arrays([PX_A, PX_B]), table=table)
    assert out.tolist() == [PX_A_FEATS, PX_B_FEATS]
    rng = np.random.default_rng(5)
    cfgs = [{"ks": rng.choice([3, 5, 7], 21).tolist(), "e": rng.choice([3, 4, 6], 21).tolist(),
             "d": [int(rng.integers(1, g + 1)) for g in PROXYLESS_GROUPS],
             "r": int(rng.choice([160, 192, 224]))} for _ in range(10)]
    for wm, nc in ((1.0, 1000), (1.3, 10)):
        ref = proxyless_operator_features(cfgs, width_mult=wm, n_classes=nc)
        t = proxyless_operator_table(resolutions=[160, 192, 224], width_mult=wm, n_classes=nc)
        np.testing.assert_array_equal(
            proxyless_operator_features_arrays(*_px_arrays(cfgs), table=t), ref)


def test_proxyless_table_defaults() -> None:
    t = proxyless_operator_table()
    assert (t.ks, t.e, t.resolutions, t.groups) == ((3, 5, 7), (3, 4, 6), (224,),
                                                     (4, 4, 4, 4, 4, 1))
    assert t.blocks.shape == (21, 3, 3, 1, 6)
    assert t.fixed.shape == (1, 2)
    assert t.fixed[0].tolist() == PX_A_FEATS[-2:]
    t2 = proxyless_operator_table(ks=[7, 3, 3], e=[6, 4], resolutions=[224, 160])
    assert (t2.ks, t2.e, t2.resolutions) == ((3, 7), (4, 6), (160, 224))


def test_proxyless_operators_structure() -> None:
    ops = proxyless_operators(PX_B)
    assert len(ops) == 2 + 21 + 3
    assert ops[0] == Operator("Conv", 192, 96, 3, 32, kernel=3, stride=2)
    assert ops[1] == Operator("expanded_conv", 96, 96, 32, 16, mid=32, kernel=3)
    blk = ops[2:-3]
    assert [op.stage for op in blk] == [s for s, g in enumerate(PROXYLESS_GROUPS)
                                       for _ in range(g)]
    assert [op.block for op in blk] == list(range(21))
    # first block of stage 0: 16 -> 24, stride 2, mid = 16 * 6
    assert blk[0] == Operator("expanded_conv", 96, 48, 16, 24, mid=96, kernel=7, stride=2,
                              idskip=False, stage=0, block=0)
    # second block: stride 1 and cin == cout: identity skip
    assert blk[1] == Operator("expanded_conv", 48, 48, 24, 24, mid=144, kernel=7, stride=1,
                              idskip=True, stage=0, block=1)
    # stage 3 (96 wide, stride 1): its first block changes width, no skip
    assert blk[12].stride == 1 and blk[12].cin == 80 and blk[12].cout == 96
    assert blk[12].idskip is False and blk[13].idskip is True
    assert [op.stride for op in blk if op.block in (0, 4, 8, 12, 16, 20)] == [2, 2, 2, 1, 2, 1]
    assert ops[-3] == Operator("Conv_1", 6, 6, 320, 1280)
    assert ops[-2] == Operator("AvgPool2D", 6, 1, 1280, 1280)
    assert ops[-1] == Operator("Logits", 1, 1, 1280, 1000)


def test_proxyless_operators_depths_and_width_mult() -> None:
    ops = proxyless_operators(PX_A)
    blk = [op for op in ops if op.block >= 0]
    assert [op.block for op in blk] == [0, 4, 5, 8, 9, 10, 12, 13, 14, 15, 16, 17, 20]
    assert [op.kernel for op in blk] == [PX_A["ks"][b] for b in
                                         [0, 4, 5, 8, 9, 10, 12, 13, 14, 15, 16, 17, 20]]
    wide = proxyless_operators(PX_A, width_mult=1.5)
    assert wide[0].cout == 48 and wide[-1].cin == 1920
    assert proxyless_operators(PX_A, n_classes=7)[-1].cout == 7


def test_proxyless_stage0_columns_by_hand() -> None:
    cfg = dict(PX_B, ks=[3] * 21, e=[3] * 21, d=[2, 1, 1, 1, 1, 1], r=224)
    row = proxyless_operator_features([cfg])[0]
    # stage 0: 16 -> 24 stride 2 (112 -> 56), mid 48; then 24 -> 24, mid 72, identity skip
    pw = 112 * 112 * 16 * 48 + 56 * 56 * 48 * 24 + 56 * 56 * 24 * 72 + 56 * 56 * 72 * 24
    dw = 56 * 56 * 48 * 9 + 56 * 56 * 72 * 9
    mem1 = (112 * 112 * 16 + 2 * 112 * 112 * 48 + 2 * 56 * 56 * 48 + 56 * 56 * 24
            + 16 * 48 + 48 * (9 + 24))
    mem2 = (56 * 56 * 24 + 2 * 56 * 56 * 72 + 2 * 56 * 56 * 72 + 2 * 56 * 56 * 24
            + 24 * 72 + 72 * (9 + 24))
    assert row[:6].tolist() == [2, pw, dw, 0, 0, mem1 + mem2]
    ops = proxyless_operators(cfg)
    fixed = [op for op in ops if op.block < 0]
    assert row[-2:].tolist() == [sum(op.macs for op in fixed), sum(op.memory for op in fixed)]
    k5 = proxyless_operator_features([dict(cfg, ks=[5] * 21)])[0]
    assert k5[2] == 0 and k5[3] == 56 * 56 * 48 * 25 + 56 * 56 * 72 * 25 and k5[4] == 0
    k7 = proxyless_operator_features([dict(cfg, ks=[7] * 21)])[0]
    assert k7[2] == 0 and k7[3] == 0 and k7[4] == 56 * 56 * 48 * 49 + 56 * 56 * 72 * 49


def test_proxyless_custom_groups() -> None:
    groups = (1, 2, 1, 1, 1, 1)
    cfg = {"ks": [3] * 7, "e": [3] * 7, "d": [1, 2, 1, 1, 1, 1], "r": 64}
    f = proxyless_operator_features([cfg], groups=groups)
    assert f.shape == (1, 38)
    t = proxyless_operator_table(ks=[3], e=[3], resolutions=[64], groups=groups)
    assert t.groups == groups and t.blocks.shape == (7, 1, 1, 1, 6)
    np.testing.assert_array_equal(proxyless_operator_features_arrays(*_px_arrays([cfg]),
                                                                     table=t), f)


def test_proxyless_errors() -> None:
    with pytest.raises(ValueError, match=r"^an OFA-ProxylessNAS config of stages \[4, 4, 4, "
                                         r"4, 4, 1\] needs 21 ks, 21 e and 6 d values; got "
                                         r"20, 21, 6$"):
        proxyless_operators(dict(PX_A, ks=PX_A["ks"][:20]))
    with pytest.raises(ValueError, match=r"got 21, 22, 6$"):
        proxyless_operators(dict(PX_A, e=PX_A["e"] + [3]))
    with pytest.raises(ValueError, match=r"got 21, 21, 5$"):
        proxyless_operators(dict(PX_A, d=PX_A["d"][:5]))
    with pytest.raises(ValueError, match=r"^an OFA-ProxylessNAS config of stages \[4, 4, 4, "
                                         r"4, 5\] needs 21 ks"):
        proxyless_operators(dict(PX_A, d=[1] * 5), groups=(4, 4, 4, 4, 5))
    with pytest.raises(ValueError, match=r"^depths \[0, 2, 3, 4, 2, 1\] must lie in "
                                         r"1\.\.\[4, 4, 4, 4, 4, 1\] per stage$"):
        proxyless_operators(dict(PX_A, d=[0, 2, 3, 4, 2, 1]))
    with pytest.raises(ValueError, match=r"^depths \[1, 2, 3, 4, 2, 2\] must lie"):
        proxyless_operators(dict(PX_A, d=[1, 2, 3, 4, 2, 2]))
    ks = list(PX_A["ks"])
    ks[4] = 4
    with pytest.raises(ValueError, match=r"^ks\[4\]=4 is not an OFA kernel size \(3, 5, 7\)$"):
        proxyless_operators(dict(PX_A, ks=ks))
    ks[4], ks[1] = 3, 4  # block 1 is beyond stage 0's depth: ignored
    assert len(proxyless_operators(dict(PX_A, ks=ks))) == len(proxyless_operators(PX_A))
    with pytest.raises(ValueError, match=r"^ks=\[\], e=\[3\], resolutions=\[224\]: each needs "
                                         r"at least one value$"):
        proxyless_operator_table(ks=[], e=[3])
    with pytest.raises(ValueError, match=r"^ks=\[3\], e=\[\], resolutions=\[224\]"):
        proxyless_operator_table(ks=[3], e=[])
    with pytest.raises(ValueError, match=r"resolutions=\[\]: each needs"):
        proxyless_operator_table(ks=[3], e=[3], resolutions=[])


def test_proxyless_arrays_errors() -> None:
    table = proxyless_operator_table(ks=[3, 5, 7], e=[3, 4, 6], resolutions=[224])
    ks, e, d, r = _px_arrays([PX_A])
    with pytest.raises(ValueError, match=r"^expected ks and e \(n, 21\), d \(n, 6\) and r "
                                         r"\(n,\); got \(1, 20\), \(1, 21\), \(1, 6\), "
                                         r"\(1,\)$"):
        proxyless_operator_features_arrays(ks[:, :20], e, d, r, table=table)
    with pytest.raises(ValueError, match=r"got \(1, 21\), \(1, 20\), \(1, 6\)"):
        proxyless_operator_features_arrays(ks, e[:, :20], d, r, table=table)
    with pytest.raises(ValueError, match=r"got \(1, 21\), \(1, 21\), \(1, 5\)"):
        proxyless_operator_features_arrays(ks, e, d[:, :5], r, table=table)
    msg = r"^depths must lie in 1\.\.\[4, 4, 4, 4, 4, 1\] per stage$"
    for bad in (0, 2):
        dd = d.copy()
        dd[0, 5] = bad
        with pytest.raises(ValueError, match=msg):
            proxyless_operator_features_arrays(ks, e, dd, r, table=table)
    dd = d.copy()
    dd[0, 0] = 5
    with pytest.raises(ValueError, match=msg):
        proxyless_operator_features_arrays(ks, e, dd, r, table=table)
    e5 = e.copy()
    e5[0, 3] = 5
    with pytest.raises(ValueError, match=r"^e=5 is not among the encoded choices \[3, 4, 6\]$"):
        proxyless_operator_features_arrays(ks, e5, d, r, table=table)
    k4 = ks.copy()
    k4[0, 0] = 4
    with pytest.raises(ValueError, match=r"^ks=4 is not among"):
        proxyless_operator_features_arrays(k4, e, d, r, table=table)
    with pytest.raises(ValueError, match=r"^r=160 is not among"):
        proxyless_operator_features_arrays(ks, e, d, np.array([160]), table=table)
    empty = proxyless_operator_features_arrays(np.zeros((0, 21), int), np.zeros((0, 21), int),
                                               np.zeros((0, 6), int), np.zeros(0, int),
                                               table=table)
    assert empty.shape == (0, 38)


def test_base_depth_constant() -> None:
    assert RESNET50_BASE_DEPTH == (2, 2, 4, 2)
    assert PROXYLESS_GROUPS == (4, 4, 4, 4, 4, 1)


def test_arrays_accept_r_of_any_shape() -> None:
    """``r`` is flattened: a column ``(n, 1)`` or, for one config, a scalar work too."""
    rt = resnet50_operator_table(expand=[0.2, 0.25, 0.35], resolutions=[160, 224],
                                 max_depth=2)
    d, e, w, r = _rn_arrays([RN_A, RN_B])
    want = resnet50_operator_features_arrays(d, e, w, r, table=rt)
    np.testing.assert_array_equal(
        resnet50_operator_features_arrays(d, e, w, r[:, None], table=rt), want)
    np.testing.assert_array_equal(
        resnet50_operator_features_arrays(d[:1], e[:1], w[:1], 224, table=rt), want[:1])
    pt = proxyless_operator_table(resolutions=[192, 224])
    ks, e, d, r = _px_arrays([PX_A, PX_B])
    want = proxyless_operator_features_arrays(ks, e, d, r, table=pt)
    np.testing.assert_array_equal(
        proxyless_operator_features_arrays(ks, e, d, r[:, None], table=pt), want)
    np.testing.assert_array_equal(
        proxyless_operator_features_arrays(ks[:1], e[:1], d[:1], 224, table=pt), want[:1])
