from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from switchnas.predictors.encodings import (
    hat_operator_features,
    load_ofa_lut,
    mbv3_block_features,
    mbv3_configs_from_table,
    mbv3_lut_features,
    mbv3_one_hot,
    mbv3_operator_features,
    mbv3_operators,
)


def _cfgs(n: int, seed: int = 0, r: tuple[int, ...] = (128, 160, 192, 224)) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"ks": rng.choice([3, 5, 7], 20).tolist(), "e": rng.choice([3, 4, 6], 20).tolist(),
             "d": rng.choice([2, 3, 4], 5).tolist(), "r": int(rng.choice(r))} for _ in range(n)]


def test_one_hot_zeroes_inactive_blocks() -> None:
    cfg = _cfgs(1)[0]
    cfg["d"] = [2, 2, 2, 2, 2]
    other = {**cfg, "ks": list(cfg["ks"]), "e": list(cfg["e"])}
    other["ks"][3], other["e"][3] = 7 if cfg["ks"][3] != 7 else 3, 6 if cfg["e"][3] != 6 else 3
    X = mbv3_one_hot([cfg, other])
    assert X.shape == (2, 20 * 6 + 5 * 3 + 1)
    assert np.array_equal(X[0], X[1])  # block 3 is inactive: its values carry no meaning
    assert X[0, : 20 * 6].sum() == 2 * 10  # 10 active blocks, one ks and one e each
    assert mbv3_one_hot([cfg], resolutions=[128, 224] if cfg["r"] in (128, 224) else
                        [cfg["r"]]).shape[1] == 135 + (2 if cfg["r"] in (128, 224) else 1)
    with pytest.raises(ValueError, match="ks=9"):
        mbv3_one_hot([{**cfg, "ks": [9] * 20}])


def test_operator_features_are_additive_and_consistent() -> None:
    cfgs = _cfgs(5)
    net = mbv3_operator_features(cfgs, level="network")
    stage = mbv3_operator_features(cfgs, level="stage")
    block = mbv3_operator_features(cfgs, level="block")
    assert net.shape == (5, 9) and stage.shape == (5, 37) and block.shape == (5, 142)
    assert np.all(net >= 0)
    np.testing.assert_allclose(stage[:, :35].reshape(5, 5, 7).sum(1), net[:, :7])
    np.testing.assert_allclose(block[:, :140].reshape(5, 20, 7).sum(1), net[:, :7])
    total = np.array([sum(op.macs for op in mbv3_operators(c)) for c in cfgs])
    np.testing.assert_allclose(net[:, 1:6].sum(1) + net[:, 7], total)
    assert net[:, 0].tolist() == [sum(c["d"]) for c in cfgs]
    assert mbv3_block_features(cfgs).shape == (5, 143)
    with pytest.raises(ValueError, match="level"):
        mbv3_operator_features(cfgs, level="layer")


def test_operators_follow_ofa_mobilenetv3_shapes() -> None:
    cfg = {"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5, "r": 224}
    ops = mbv3_operators(cfg)
    blocks = [op for op in ops if op.block >= 0]
    assert [op.out_hw for op in blocks[::4]] == [56, 28, 14, 14, 7]
    assert [op.cout for op in blocks[::4]] == [24, 40, 80, 112, 160]
    assert [op.se for op in blocks[::4]] == [False, True, False, True, True]
    assert blocks[0].mid == 16 * 6 and not blocks[0].idskip and blocks[1].idskip
    assert ops[0].out_hw == 112 and ops[-1].cout == 1000


@pytest.mark.slow
def test_macs_match_the_ofa_network() -> None:
    torch = pytest.importorskip("torch")
    nets = pytest.importorskip("ofa.imagenet_classification.elastic_nn.networks")
    net = nets.OFAMobileNetV3(ks_list=[3, 5, 7], expand_ratio_list=[3, 4, 6],
                              depth_list=[2, 3, 4], dropout_rate=0)
    for cfg in _cfgs(2, seed=4):
        net.set_active_subnet(ks=cfg["ks"], e=cfg["e"], d=cfg["d"])
        sub = net.get_active_subnet().eval()
        total = [0]

        def hook(mod, inp, out, total=total):  # type: ignore[no-untyped-def]
            if isinstance(mod, torch.nn.Conv2d):
                total[0] += out.numel() * mod.in_channels // mod.groups * mod.kernel_size[0] ** 2
            elif isinstance(mod, torch.nn.Linear):
                total[0] += mod.in_features * mod.out_features

        hs = [m.register_forward_hook(hook) for m in sub.modules()]
        with torch.no_grad():
            sub(torch.zeros(1, 3, cfg["r"], cfg["r"]))
        for h in hs:
            h.remove()
        assert sum(op.macs for op in mbv3_operators(cfg)) == total[0]


def test_configs_from_both_table_layouts() -> None:
    cfg = _cfgs(1)[0]
    wide = {f"ks{i}": [cfg["ks"][i]] for i in range(20)}
    wide.update({f"e{i}": [cfg["e"][i]] for i in range(20)})
    wide.update({f"d{i}": [cfg["d"][i]] for i in range(5)})
    wide["r"] = [cfg["r"]]
    lists = {"ks": [str(cfg["ks"])], "e": [str(cfg["e"])], "d": [str(cfg["d"])],
             "resolution": [str(cfg["r"])]}
    assert mbv3_configs_from_table(wide) == mbv3_configs_from_table(lists) == [cfg]
    with pytest.raises(ValueError, match="resolution"):
        mbv3_configs_from_table({"ks": []})


def test_lut_features_and_malformed_tables(tmp_path: Path) -> None:
    cfg = _cfgs(1, r=(224,))[0]
    table = {op.lut_key(): 1.0 for op in mbv3_operators(cfg)}
    F = mbv3_lut_features([cfg], table)
    assert F.shape == (1, 26) and F.sum() == len(mbv3_operators(cfg))
    with pytest.raises(KeyError, match="not in the table"):
        mbv3_lut_features([cfg], dict(list(table.items())[1:]))
    bad = tmp_path / "t.yaml"
    bad.write_text("Conv-input:1x1x1-output:1x1x1:\n  mean: -3\n")
    with pytest.raises(ValueError, match="Conv-input"):
        load_ofa_lut(bad)
    bad.write_text("[1, 2]\n")
    with pytest.raises(ValueError, match="mapping"):
        load_ofa_lut(bad)


def test_hat_operator_features() -> None:
    X = np.array([[640, 6, 2048, 8, 512, 3, 1024, 4, 4, 2.0]])
    F = hat_operator_features(X)
    assert F.shape == (1, 26) and np.all(F >= 0)
    assert F[0, 1] == 6 * 640 * 640  # encoder layers x embed^2
    with pytest.raises(ValueError, match="HAT features"):
        hat_operator_features(X[:, :9])


@pytest.mark.refdata
def test_note10_tables_cover_the_w12_space(shared_data: Path) -> None:
    for r in (160, 224):
        table = load_ofa_lut(shared_data / "ofa_note10_lut" / f"{r}_lookup_table.yaml")
        F = mbv3_lut_features(_cfgs(30, r=(r,)), table, width_mult=1.2)
        assert np.all(F[:, :2] > 0) and np.all(F[:, -4:] > 0)


@pytest.mark.refdata
def test_macs_match_dynast(shared_data: Path) -> None:
    with (shared_data / "ofa_mbv3_imagenet" / "dynast_ofa_mbv3_w10_top1.csv").open() as f:
        rows = [r for _, r in zip(range(40), csv.DictReader(f), strict=False)]
    cfgs = mbv3_configs_from_table({k: [r[k] for r in rows] for k in rows[0]})
    ours = [sum(op.macs for op in mbv3_operators(c)) for c in cfgs]
    assert ours == [int(r["macs"]) for r in rows]


def test_encodings_by_name() -> None:
    from switchnas.predictors.encodings import ENCODINGS, encode

    cfgs = _cfgs(3)
    for name in ENCODINGS:
        X = encode(name, cfgs)
        assert X.shape[0] == 3 and np.all(np.isfinite(X))
        assert np.array_equal(encode(name, cfgs[:1]), X[:1])  # rows encode independently
    with pytest.raises(ValueError, match="ofa_mbv3_onehot"):
        encode("nope", cfgs)


def test_lut_features_put_each_block_in_its_own_column() -> None:
    """Column 0 the stem, 1 the first block, ``2 + b`` elastic block ``b`` (0 where
    inactive), then the 4 head operators in order."""
    cfg = {"ks": [3, 5, 7, 5] * 5, "e": [3, 4, 6, 4] * 5, "d": [4, 4, 4, 4, 3], "r": 160}
    ops = mbv3_operators(cfg)
    table = {op.lut_key(): float(i + 1) for i, op in enumerate(ops)}
    F = mbv3_lut_features([cfg], table)[0]
    assert F[0] == table[ops[0].lut_key()] and F[1] == table[ops[1].lut_key()]
    for op in ops:
        if op.block >= 0:
            assert F[2 + op.block] == table[op.lut_key()], op.block
    assert F[21] == 0.0  # block 19 is beyond stage 5's depth of 3
    np.testing.assert_array_equal(F[22:], [table[op.lut_key()] for op in ops[-4:]])


def test_one_hot_names_an_unencoded_resolution() -> None:
    cfg = {**_cfgs(1)[0], "r": 200}
    with pytest.raises(ValueError, match=r"^r=200 is not among the encoded choices \[128, 224\]"):
        mbv3_one_hot([cfg], resolutions=[128, 224])
