"""Contract of :mod:`switchnas.predictors.encodings`: exact values on hand-checked
inputs, the agreement of per-config and array paths, defaults and error messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from switchnas.predictors.encodings import (
    BASE_WIDTHS,
    ENCODINGS,
    HAT_FEATURES,
    Operator,
    encode,
    hat_operator_features,
    load_ofa_lut,
    mbv3_block_features,
    mbv3_configs_from_table,
    mbv3_lut_features,
    mbv3_one_hot,
    mbv3_one_hot_arrays,
    mbv3_operator_features,
    mbv3_operator_features_arrays,
    mbv3_operator_table,
    mbv3_operators,
)

CFG = {"ks": [3, 5, 7, 3] * 5, "e": [3, 4, 6, 6, 4] * 4, "d": [2, 3, 4, 1, 2], "r": 192}
CFG_STAGE = [2, 20348928, 995328, 5529600, 0, 0, 2368656, 3, 20422656, 497664, 1728000,
             4515840, 25088, 1454904, 4, 28569600, 725760, 1152000, 1693440, 0, 1185120, 1,
             13271040, 622080, 0, 0, 115200, 400608, 2, 20865024, 145152, 864000, 0, 561152,
             795776, 15706112, 4660520]
CFG_NETWORK = [12, 103477248, 2985984, 9273600, 6209280, 701440, 6205064, 15706112, 4660520]
CFG_OH = dict(CFG, d=[2, 3, 4, 2, 2])
BIG = {"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5, "r": 224}


def _arrays(cfgs):
    return (np.array([c["ks"] for c in cfgs]), np.array([c["e"] for c in cfgs]),
            np.array([c["d"] for c in cfgs]), np.array([c["r"] for c in cfgs]))


def _random_cfgs(n, seed=0, rs=(160, 192, 224)):
    rng = np.random.default_rng(seed)
    return [{"ks": rng.choice([3, 5, 7], 20).tolist(), "e": rng.choice([3, 4, 6], 20).tolist(),
             "d": rng.integers(1, 5, 5).tolist(), "r": int(rng.choice(rs))} for _ in range(n)]


# -- configs -------------------------------------------------------------------------------
def test_configs_from_table_layouts() -> None:
    lists = {"ks": [str([3] * 20), [5] * 20], "e": [[4] * 20, str([6] * 20)],
             "d": ["[1, 2, 3, 4, 2]", [4] * 5], "resolution": [160.0, 224]}
    out = mbv3_configs_from_table(lists)
    assert out == [{"ks": [3] * 20, "e": [4] * 20, "d": [1, 2, 3, 4, 2], "r": 160},
                   {"ks": [5] * 20, "e": [6] * 20, "d": [4] * 5, "r": 224}]
    scal = {f"ks{i}": [3 + 2 * (i % 3)] for i in range(20)}
    scal.update({f"e{i}": [6.0] for i in range(20)})
    scal.update({f"d{i}": [i % 4 + 1] for i in range(5)})
    scal["r"] = [176]
    scal["resolution"] = [999]  # r wins
    (c,) = mbv3_configs_from_table(scal)
    assert c == {"ks": [3 + 2 * (i % 3) for i in range(20)], "e": [6] * 20,
                 "d": [1, 2, 3, 4, 1], "r": 176}
    assert all(type(v) is int for v in c["ks"] + c["e"] + c["d"]) and type(c["r"]) is int
    with pytest.raises(ValueError, match=r"^no resolution column \('r' or 'resolution'\) "
                                         r"among \['d', 'e', 'ks'\]$"):
        mbv3_configs_from_table({"ks": [], "e": [], "d": []})
    with pytest.raises(ValueError, match=r"^expected columns ks, e, d \(lists\) or "
                                         r"ks0\.\.ks19, e0\.\.e19, d0\.\.d4; got \['e', 'ks', "
                                         r"'r'\]$"):
        mbv3_configs_from_table({"ks": [], "e": [], "r": []})


def test_config_checks() -> None:
    with pytest.raises(ValueError, match=r"^an OFA-MobileNetV3 config needs 20 ks, 20 e and 5 "
                                         r"d values; got 19, 20, 5$"):
        mbv3_operators(dict(CFG, ks=CFG["ks"][:19]))
    with pytest.raises(ValueError, match=r"got 20, 21, 5$"):
        mbv3_one_hot([dict(CFG, e=CFG["e"] + [3])])
    with pytest.raises(ValueError, match=r"got 20, 20, 4$"):
        mbv3_operators(dict(CFG, d=[1] * 4))
    with pytest.raises(ValueError, match=r"^depths \[0, 1, 1, 1, 1\] must lie in 1\.\.4$"):
        mbv3_operators(dict(CFG, d=[0, 1, 1, 1, 1]))
    with pytest.raises(ValueError, match=r"^depths \[1, 1, 1, 1, 5\] must lie in 1\.\.4$"):
        mbv3_operators(dict(CFG, d=[1, 1, 1, 1, 5]))
    ks = list(CFG["ks"])
    ks[8] = 4
    with pytest.raises(ValueError, match=r"^ks\[8\]=4 is not an OFA kernel size \(3, 5, 7\)$"):
        mbv3_operators(dict(CFG, ks=ks))
    ks[8], ks[3] = 7, 4  # block 3 is beyond stage 0's depth 2
    assert len(mbv3_operators(dict(CFG, ks=ks))) == len(mbv3_operators(CFG))


# -- one-hot -------------------------------------------------------------------------------
def test_one_hot_layout() -> None:
    out = mbv3_one_hot([CFG_OH])
    assert out.shape == (1, 20 * 6 + 15 + 1)
    row = out[0]
    # block 0: ks 3 (index 0), e 3 (index 0); block 1: ks 5, e 4; block 2 inactive
    assert row[0:6].tolist() == [1, 0, 0, 1, 0, 0]
    assert row[6:12].tolist() == [0, 1, 0, 0, 1, 0]
    assert row[12:18].tolist() == [0] * 6
    # stage 1 (blocks 4..7) depth 3: block 4 (ks 3, e 4), block 6 (ks 7, e 4) active
    assert row[24:30].tolist() == [1, 0, 0, 0, 1, 0]
    assert row[36:42].tolist() == [0, 0, 1, 0, 1, 0]
    assert row[42:48].tolist() == [0] * 6
    assert row.sum() == pytest.approx(2 * (2 + 3 + 4 + 2 + 2) + 5 + 192 / 224)
    # depths 2, 3, 4 one-hot
    assert row[120:135].tolist() == [1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 1, 0, 0]
    assert row[135] == pytest.approx(192 / 224)
    res = mbv3_one_hot([CFG_OH], resolutions=[224, 192, 160])
    assert res.shape == (1, 138) and res[0, 135:].tolist() == [0, 1, 0]
    custom = mbv3_one_hot([CFG_OH], ks=(7, 5, 3), e=(6, 4, 3), d=(1, 2, 3, 4))
    assert custom.shape == (1, 20 * 6 + 20 + 1)
    assert custom[0, 0:6].tolist() == [0, 0, 1, 0, 0, 1]
    assert custom[0, 120:140].tolist() == [0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0,
                                           0, 1, 0, 0]


def test_one_hot_errors() -> None:
    with pytest.raises(ValueError, match=r"^ks=3 is not among the encoded choices \[5, 7\]$"):
        mbv3_one_hot([CFG], ks=(7, 5))
    with pytest.raises(ValueError, match=r"^e=3 is not among the encoded choices \[4, 6\]$"):
        mbv3_one_hot([CFG], e=(4, 6))
    with pytest.raises(ValueError, match=r"^d=1 is not among the encoded choices \[2, 3, "
                                         r"4\]$"):
        mbv3_one_hot([dict(CFG, d=[1, 2, 2, 2, 2])])
    with pytest.raises(ValueError, match=r"^r=192 is not among the encoded choices \[160, "
                                         r"224\]$"):
        mbv3_one_hot([CFG_OH], resolutions=(224, 160))


def test_one_hot_arrays_match() -> None:
    cfgs = _random_cfgs(8) + [BIG]
    cfgs = [dict(c, d=[max(x, 2) for x in c["d"]]) for c in cfgs]
    np.testing.assert_array_equal(mbv3_one_hot_arrays(*_arrays(cfgs)), mbv3_one_hot(cfgs))
    kw = {"ks": (7, 3, 5), "e": (6, 3, 4), "d": (4, 2, 3), "resolutions": (224, 160, 192)}
    np.testing.assert_array_equal(mbv3_one_hot_arrays(*_arrays(cfgs), **kw),
                                  mbv3_one_hot(cfgs, **kw))
    # float choices for int values
    ks, e, d, r = _arrays(cfgs)
    np.testing.assert_array_equal(mbv3_one_hot_arrays(ks, e, d, r, e=(3.0, 4.0, 6.0)),
                                  mbv3_one_hot(cfgs))
    # an inactive block's values are not checked
    ks2 = ks.copy()
    d1 = d.copy()
    d1[:, 0] = 2
    ks2[:, 3] = 4
    np.testing.assert_array_equal(mbv3_one_hot_arrays(ks2, e, d1, r),
                                  mbv3_one_hot_arrays(ks, e, d1, r))
    ks2[:, 0] = 4
    with pytest.raises(ValueError, match=r"^ks=4 is not among the encoded choices \[3, 5, "
                                         r"7\]$"):
        mbv3_one_hot_arrays(ks2, e, d1, r)
    with pytest.raises(ValueError, match=r"^r=192 is not among"):
        mbv3_one_hot_arrays(ks, e, d, np.full_like(r, 192), resolutions=(160, 224))
    with pytest.raises(ValueError, match=r"^expected ks and e of shape \(n, 20\), d of shape "
                                         r"\(n, 5\) and r of shape \(n,\); got \(9, 19\), "
                                         r"\(9, 20\), \(9, 5\), \(9,\)$"):
        mbv3_one_hot_arrays(ks[:, :19], e, d, r)
    with pytest.raises(ValueError, match=r"^depths must lie in 1\.\.4, got 0\.\.4$"):
        mbv3_one_hot_arrays(ks, e, np.where(d == 2, 0, d), r)
    with pytest.raises(ValueError, match=r"^depths must lie in 1\.\.4, got 2\.\.5$"):
        mbv3_one_hot_arrays(ks, e, np.where(d == 4, 5, d), r)
    assert mbv3_one_hot_arrays(np.zeros((0, 20), int), np.zeros((0, 20), int),
                               np.zeros((0, 5), int), np.zeros(0, int)).shape == (0, 136)


# -- operators -----------------------------------------------------------------------------
def test_operator_work_by_hand() -> None:
    conv = Operator("Conv", 224, 112, 3, 16, kernel=3, stride=2)
    assert conv.macs_pw == 112 * 112 * 16 * 3 * 9 and conv.macs_dw == 0 and conv.macs_se == 0
    assert conv.memory == 224 * 224 * 3 + 112 * 112 * 16 + 3 * 16 * 9
    blk = Operator("expanded_conv", 8, 4, 16, 24, mid=48, kernel=5, stride=2, se=True)
    assert blk.macs_pw == 64 * 16 * 48 + 16 * 48 * 24
    assert blk.macs_dw == 16 * 48 * 25
    assert blk.macs_se == 2 * 48 * 16  # make_divisible(48 // 4 = 12) = 16
    assert blk.macs == blk.macs_pw + blk.macs_dw + blk.macs_se
    assert blk.memory == (64 * 16 + 2 * 64 * 48 + 2 * 16 * 48 + 16 * 24
                          + 16 * 48 + 48 * (25 + 24))
    skip = Operator("expanded_conv", 4, 4, 24, 24, mid=72, kernel=3, idskip=True)
    assert skip.memory == (16 * 24 + 2 * 16 * 72 + 2 * 16 * 72 + 2 * 16 * 24
                           + 24 * 72 + 72 * (9 + 24))
    noexp = Operator("expanded_conv", 4, 4, 16, 16, mid=16, kernel=3)
    assert noexp.macs_pw == 16 * 16 * 16
    assert noexp.memory == 16 * 16 + 2 * 16 * 16 + 16 * 16 + 16 * (9 + 16)
    pool = Operator("AvgPool2D", 7, 1, 960, 960)
    assert pool.macs_pw == 0 and pool.macs == 0 and pool.memory == 49 * 960 + 960 + 960 * 960
    dense = Operator("Conv_1", 7, 7, 160, 960)
    assert dense.macs_pw == 49 * 160 * 960 and dense.macs_dw == 0
    assert Operator("Logits", 1, 1, 1280, 1000).macs == 1280 * 1000


def test_operator_lut_keys() -> None:
    assert (Operator("Conv", 224, 112, 3, 16, kernel=3, stride=2).lut_key()
            == "Conv-input:224x224x3-output:112x112x16")
    assert (Operator("expanded_conv", 56, 28, 24, 40, mid=72, kernel=5, stride=2, se=True,
                     hswish=False, idskip=False).lut_key()
            == "expanded_conv-input:56x56x24-output:28x28x40-expand:72-kernel:5-stride:2"
               "-idskip:0-se:1-hs:0")
    assert (Operator("expanded_conv", 7, 7, 160, 160, mid=960, kernel=3, hswish=True,
                     idskip=True).lut_key()
            == "expanded_conv-input:7x7x160-output:7x7x160-expand:960-kernel:3-stride:1"
               "-idskip:1-se:0-hs:1")
    assert Operator("Logits", 1, 1, 1280, 1000).lut_key() == "Logits-input:1x1x1280-output:1000"


def test_mbv3_operators_structure() -> None:
    ops = mbv3_operators(BIG)
    assert len(ops) == 2 + 20 + 4
    assert ops[0] == Operator("Conv", 224, 112, 3, 16, kernel=3, stride=2, hswish=True)
    assert ops[1] == Operator("expanded_conv", 112, 112, 16, 16, mid=16, kernel=3, stride=1,
                              idskip=True)
    blk = ops[2:22]
    assert [op.block for op in blk] == list(range(20))
    assert [op.stage for op in blk] == [s for s in range(5) for _ in range(4)]
    assert [op.stride for op in blk[::4]] == [2, 2, 2, 1, 2]
    assert [op.se for op in blk[::4]] == [False, True, False, True, True]
    assert [op.hswish for op in blk[::4]] == [False, False, True, True, True]
    assert [op.cout for op in blk[::4]] == [24, 40, 80, 112, 160]
    assert [op.idskip for op in blk[:4]] == [False, True, True, True]
    assert blk[12].stride == 1 and blk[12].idskip is False  # 80 -> 112
    assert blk[0] == Operator("expanded_conv", 112, 56, 16, 24, mid=96, kernel=7, stride=2,
                              stage=0, block=0)
    assert [op.out_hw for op in blk[::4]] == [56, 28, 14, 14, 7]
    assert ops[-4] == Operator("Conv_1", 7, 7, 160, 960, hswish=True)
    assert ops[-3] == Operator("AvgPool2D", 7, 1, 960, 960)
    assert ops[-2] == Operator("Conv_2", 1, 1, 960, 1280, hswish=True)
    assert ops[-1] == Operator("Logits", 1, 1, 1280, 1000)
    # odd resolution: (r + 1) // 2
    assert mbv3_operators(dict(BIG, r=161))[0].out_hw == 81
    # width: make_divisible rounds 16 * 1.2 = 19.2 down to 16, then bumps by 8 (16 < 17.28)
    wide = mbv3_operators(BIG, width_mult=1.2)
    assert wide[0].cout == 24 and wide[-1].cin == 1536
    assert mbv3_operators(BIG, width_mult=2.0)[0].cout == 32
    assert BASE_WIDTHS == (16, 16, 24, 40, 80, 112, 160, 960, 1280)
    mids = [op.mid for op in mbv3_operators(CFG) if op.block >= 0]
    assert mids[:3] == [48, 96, 96]  # 16 * 3, 24 * 4, then block 4: 24 * 4


def test_operator_features_pinned() -> None:
    out = mbv3_operator_features([CFG])
    assert out.shape == (1, 37) and out[0].tolist() == CFG_STAGE
    net = mbv3_operator_features([CFG], level="network")
    assert net.shape == (1, 9) and net[0].tolist() == CFG_NETWORK
    blk = mbv3_operator_features([CFG], level="block")
    assert blk.shape == (1, 142)
    assert blk[0, :7].tolist() == [1, 9732096, 995328, 0, 0, 0, 1311024]
    assert blk[0, 7:14].tolist() == [1, 10616832, 0, 5529600, 0, 0, 1057632]
    np.testing.assert_array_equal(blk[0, 14:28], 0)
    np.testing.assert_array_equal(blk[0, -2:], out[0, -2:])
    with pytest.raises(ValueError, match=r"^level='stages'; choose one of \['block', "
                                         r"'network', 'stage'\]$"):
        mbv3_operator_features([CFG], level="stages")


def test_block_features() -> None:
    out = mbv3_block_features([CFG])
    assert out.shape == (1, 143)
    assert out[0, :14].tolist() == [1, 9732096, 995328, 0, 1311024, 3, 3,
                                    1, 10616832, 5529600, 0, 1057632, 5, 4]
    np.testing.assert_array_equal(out[0, 14:28], 0)
    assert out[0, -3:].tolist() == [15706112, 4660520, 192]
    # SE block (stage 1) and width
    se = out[0, 4 * 7:5 * 7]
    assert se[0] == 1 and se[3] > 0 and se[5] == 3 and se[6] == 4
    wide = mbv3_block_features([CFG], width_mult=1.2)
    assert wide[0, 1] > out[0, 1]


def test_operator_table_and_arrays() -> None:
    t = mbv3_operator_table()
    assert (t.ks, t.e, t.resolutions, t.width_mult) == ((3, 5, 7), (3, 4, 6), (224,), 1.0)
    assert t.blocks.shape == (20, 3, 3, 1, 7) and t.fixed.shape == (1, 2)
    big = mbv3_operator_features([BIG])[0]
    assert t.fixed[0].tolist() == big[-2:].tolist()
    t2 = mbv3_operator_table(ks=[7, 3, 3], e=[6, 4], resolutions=[224, 160], width_mult=1.2)
    assert (t2.ks, t2.e, t2.resolutions, t2.width_mult) == ((3, 7), (4, 6), (160, 224), 1.2)
    with pytest.raises(ValueError, match=r"^ks=\[\], e=\[3\], resolutions=\[224\]: each needs "
                                         r"at least one value$"):
        mbv3_operator_table(ks=[], e=[3])
    with pytest.raises(ValueError, match=r"^ks=\[3\], e=\[\], resolutions=\[224\]"):
        mbv3_operator_table(ks=[3], e=[])
    with pytest.raises(ValueError, match=r"resolutions=\[\]: each needs"):
        mbv3_operator_table(resolutions=[])
    cfgs = _random_cfgs(8) + [CFG, BIG]
    for wm in (1.0, 1.2):
        table = mbv3_operator_table(resolutions=[160, 192, 224], width_mult=wm)
        for level in ("stage", "network", "block"):
            np.testing.assert_allclose(
                mbv3_operator_features_arrays(*_arrays(cfgs), table=table, level=level),
                mbv3_operator_features(cfgs, level=level, width_mult=wm), rtol=1e-12)
    table = mbv3_operator_table(resolutions=[160, 192, 224])
    assert mbv3_operator_features_arrays(*_arrays([CFG]), table=table)[0].tolist() == CFG_STAGE
    with pytest.raises(ValueError, match=r"^level='x'; choose one of \['block', 'network', "
                                         r"'stage'\]$"):
        mbv3_operator_features_arrays(*_arrays([CFG]), table=table, level="x")
    ks, e, d, r = _arrays([CFG])
    with pytest.raises(ValueError, match=r"^e=5 is not among the encoded choices \[3, 4, 6\]$"):
        mbv3_operator_features_arrays(ks, np.where(e == 4, 5, e), d, r, table=table)
    with pytest.raises(ValueError, match=r"^r=176 is not among"):
        mbv3_operator_features_arrays(ks, e, d, np.array([176]), table=table)


# -- lookup tables -------------------------------------------------------------------------
def test_load_ofa_lut(tmp_path: Path) -> None:
    p = tmp_path / "lut.yaml"
    p.write_text("a: {count: 3, mean: 1.5, std: 0.1}\nb: {mean: 0}\n3: {mean: 2}\n")
    lut = load_ofa_lut(p)
    assert lut == {"a": 1.5, "b": 0.0, "3": 2.0}
    assert all(type(v) is float for v in lut.values())
    assert load_ofa_lut(str(p)) == lut
    for text, bad in (("a: {mean: -1}\n", "'a'"), ("a: {mean: .nan}\n", "'a'"),
                      ("a: {mean: true}\n", "'a'"), ("a: {mean: x}\n", "'a'"),
                      ("a: 3\n", "'a'"), ("a: {mean: .inf}\n", "'a'")):
        p.write_text(text)
        with pytest.raises(ValueError, match=rf"^lookup table '.*lut\.yaml': entry {bad} has "
                                             r"no finite mean >= 0 \(got "):
            load_ofa_lut(p)
    p.write_text("a: 3\n")
    with pytest.raises(ValueError, match=r"\(got 3\)$"):
        load_ofa_lut(p)
    for text in ("[1, 2]\n", "{}\n", ""):
        p.write_text(text)
        with pytest.raises(ValueError, match=r"^lookup table '.*lut\.yaml' is not a non-empty "
                                             r"mapping$"):
            load_ofa_lut(p)
    with pytest.raises(ValueError, match=r"^cannot read lookup table '.*missing\.yaml': "):
        load_ofa_lut(tmp_path / "missing.yaml")
    p.write_text("a: [unclosed\n")
    with pytest.raises(ValueError, match=r"^cannot read lookup table"):
        load_ofa_lut(p)


def test_lut_features() -> None:
    cfg = dict(BIG, d=[2, 4, 4, 4, 1])
    ops = mbv3_operators(cfg)
    table = {op.lut_key(): float(i + 1) for i, op in enumerate(ops)}
    out = mbv3_lut_features([cfg], table)
    assert out.shape == (1, 26)
    row = out[0]
    assert row[:2].tolist() == [1.0, 2.0]
    assert row[2:4].tolist() == [3.0, 4.0] and row[4:6].tolist() == [0.0, 0.0]
    assert row[6:10].tolist() == [5.0, 8.0, 8.0, 8.0]  # blocks 5..7 share a key
    assert row[18:22].tolist() == [17.0, 0.0, 0.0, 0.0]
    assert row[22:].tolist() == [18.0, 19.0, 20.0, 21.0]
    missing = dict(table)
    del missing[ops[-1].lut_key()]
    with pytest.raises(KeyError, match=r"operator 'Logits-input:1x1x1280-output:1000' of "
                                       r"config \{'ks': "):
        mbv3_lut_features([cfg], missing)


# -- HAT -----------------------------------------------------------------------------------
def test_hat_operator_features() -> None:
    x = [512, 6, 2048, 8, 640, 3, 1024, 4, 8, 2.5]
    out = hat_operator_features(np.array([x]))
    assert out.shape == (1, 26)
    assert out[0].tolist() == [6.0, 1572864.0, 6291456.0, 48.0, 3072.0, 3.0, 1228800.0,
                               1966080.0, 12.0, 24.0, 2457600.0, 4800.0, 1920.0, 640.0, 512.0,
                               7.5, *map(float, x)]
    assert hat_operator_features([x, x]).shape == (2, 26)
    assert len(HAT_FEATURES) == 10 and HAT_FEATURES[0] == "encoder_embed_dim"
    with pytest.raises(ValueError, match=r"^expected \(n, 10\) HAT features \['encoder_embed_"
                                         r"dim', .*\], got shape \(1, 9\)$"):
        hat_operator_features(np.ones((1, 9)))
    with pytest.raises(ValueError, match=r"got shape \(10,\)$"):
        hat_operator_features(np.ones(10))


# -- by name -------------------------------------------------------------------------------
def test_encode_by_name() -> None:
    assert sorted(ENCODINGS) == ["ofa_mbv3_onehot", "ofa_mbv3_onehot_ops",
                                 "ofa_mbv3_ops_block", "ofa_mbv3_ops_network",
                                 "ofa_mbv3_ops_stage"]
    np.testing.assert_array_equal(encode("ofa_mbv3_onehot", [CFG_OH]), mbv3_one_hot([CFG_OH]))
    for name, level in (("ofa_mbv3_ops_network", "network"), ("ofa_mbv3_ops_stage", "stage"),
                        ("ofa_mbv3_ops_block", "block")):
        np.testing.assert_array_equal(encode(name, [CFG_OH]),
                                      mbv3_operator_features([CFG_OH], level=level))
    both = encode("ofa_mbv3_onehot_ops", [CFG_OH, BIG])
    assert both.shape == (2, 136 + 37)
    np.testing.assert_array_equal(both[:, :136], mbv3_one_hot([CFG_OH, BIG]))
    # the largest network at 224 is all ones where it has work, zero elsewhere
    big_ops = mbv3_operator_features([BIG])[0]
    np.testing.assert_array_equal(both[1, 136:], (big_ops > 0).astype(float))
    np.testing.assert_allclose(both[0, 136:],
                               mbv3_operator_features([CFG_OH])[0] / np.where(big_ops > 0, big_ops, 1.0))
    with pytest.raises(ValueError, match=r"^unknown encoding 'x'; choose one of "
                                         r"\['ofa_mbv3_onehot', "):
        encode("x", [CFG])


def test_hat_features_are_float_for_int_input() -> None:
    x = [[512, 6, 2048, 8, 640, 3, 1024, 4, 8, 2]]
    out = hat_operator_features(x)
    assert out.dtype == np.float64
    big = hat_operator_features(np.array([[2 ** 40] * 10], dtype=np.int64))
    assert big[0, 1] == float(2 ** 40) ** 3  # no integer overflow


def test_one_hot_arrays_name_an_unencoded_depth() -> None:
    ks, e, d, r = _arrays([dict(CFG_OH, d=[1, 3, 4, 2, 2])])
    with pytest.raises(ValueError, match=r"^d=1 is not among the encoded choices \[2, 3, "
                                         r"4\]$"):
        mbv3_one_hot_arrays(ks, e, d, r)


def test_one_hot_arrays_float_choices_for_int_values() -> None:
    cfgs = [CFG_OH, dict(BIG, r=160)]
    ks, e, d, r = _arrays(cfgs)
    want = mbv3_one_hot_arrays(ks, e, d, r, resolutions=(160, 192, 224))
    got = mbv3_one_hot_arrays(ks, e, d, r, d=(2.0, 3.0, 4.0), resolutions=(160.0, 192.0, 224.0))
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(want, mbv3_one_hot(cfgs, resolutions=(160, 192, 224)))
