from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from switchnas.supernets.base import SearchSpace
from switchnas.supernets.hat.space import HAT_FEATURE_NAMES, HATSpace, hat_features

CSV_DIR = Path(__file__).resolve().parents[4] / "shared" / "data" / "hat_latency"


def test_space0_and_space1_choices():
    s0, s1 = HATSpace.build("space0"), HATSpace.build("space1")
    assert isinstance(s0, SearchSpace)
    assert s0.dimensions["encoder_embed_dim"] == ((512, 640),)
    assert s0.dimensions["encoder_ffn_embed_dim"] == ((1024, 2048, 3072),) * 6
    assert s0.dimensions["decoder_ende_attention_heads"] == ((4, 8),) * 6
    assert s0.dimensions["decoder_layer_num"] == ((1, 2, 3, 4, 5, 6),)
    assert s0.dimensions["decoder_arbitrary_ende_attn"] == ((-1, 1, 2),) * 6
    assert s1.dimensions["decoder_ffn_embed_dim"] == ((512, 1024, 2048),) * 6
    assert s1.dimensions["encoder_self_attention_heads"] == ((2, 4),) * 6


def test_unknown_space_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown HAT space 'space9'.*space0"):
        HATSpace.build("space9")


def test_canonical_sets_inactive_decoder_layers_to_min():
    sp = HATSpace.build("space0")
    cfg = sp.largest()
    cfg["decoder_layer_num"] = 2
    out = sp.validate(cfg)
    assert out["decoder_ffn_embed_dim"] == [3072, 3072, 1024, 1024, 1024, 1024]
    assert out["decoder_arbitrary_ende_attn"] == [2, 2, -1, -1, -1, -1]
    rng = np.random.default_rng(0)
    for _ in range(20):
        c = sp.sample(rng)
        assert sp.validate(c) == c


def test_config_outside_space_names_key_and_choices():
    sp = HATSpace.build("space0")
    cfg = sp.largest()
    cfg["encoder_ffn_embed_dim"] = [3072] * 5 + [999]
    with pytest.raises(ValueError, match=r"encoder_ffn_embed_dim\[5\]=999.*\[1024, 2048, 3072\]"):
        sp.validate(cfg)
    with pytest.raises(ValueError, match="unknown.*'bogus'"):
        sp.validate({**sp.largest(), "bogus": 1})


def _row_config():
    # First row of wmt14ende_cpu_xeon_all.csv, built by hand; inactive decoder layers hold
    # values that must not enter the averages.
    return {
        "encoder_embed_dim": 640, "encoder_layer_num": 6,
        "encoder_ffn_embed_dim": [3072, 1024, 1024, 1024, 512, 512],
        "encoder_self_attention_heads": [8, 4, 4, 4, 4, 4],
        "decoder_embed_dim": 640, "decoder_layer_num": 3,
        "decoder_ffn_embed_dim": [3072, 2048, 512, 3072, 3072, 3072],
        "decoder_self_attention_heads": [4, 4, 4, 8, 8, 8],
        "decoder_ende_attention_heads": [8, 4, 4, 2, 2, 2],
        "decoder_arbitrary_ende_attn": [-1, 1, 2, 2, 2, 2],
    }


def test_hat_features_hand_computed_row():
    expected = [640, 6, 7168 / 6, 28 / 6, 640, 3, 5632 / 3, 4.0, 16 / 3, 2.0]
    np.testing.assert_allclose(hat_features(_row_config()), expected)
    assert len(HAT_FEATURE_NAMES) == 10


@pytest.mark.refdata
def test_hat_features_match_csv_row():
    path = CSV_DIR / "wmt14ende_cpu_xeon_all.csv"
    if not path.is_file():
        pytest.skip("shared/data/hat_latency is not available")
    with path.open() as f:
        reader = csv.reader(f)
        header = next(reader)
        row = [float(x) for x in next(reader)]
    assert tuple(header[:10]) == HAT_FEATURE_NAMES
    np.testing.assert_allclose(hat_features(_row_config()), row[:10])


def test_hat_features_rows_for_space_configs():
    sp = HATSpace.build("space0")
    rng = np.random.default_rng(1)
    cfgs = [sp.sample(rng) for _ in range(5)]
    x = sp.hat_features(cfgs)
    assert x.shape == (5, 10)
    assert set(x[:, 9]) <= {v / n for n in range(1, 7) for v in range(n, 3 * n + 1)}
    assert sp.encode(cfgs).shape == (5, sp.encode([sp.largest()]).shape[1])


def test_restrict_round_trip():
    sp = HATSpace.build("space0")
    small = sp.restrict({"encoder_ffn_embed_dim": [1024, 2048], "decoder_layer_num": [1, 2, 3],
                         "decoder_arbitrary_ende_attn": [-1, 1]})
    back = HATSpace.from_dict(small.to_dict())
    assert isinstance(back, HATSpace) and back.dimensions == small.dimensions
    rng = np.random.default_rng(0)
    for _ in range(20):
        c = back.sample(rng)
        assert max(c["encoder_ffn_embed_dim"]) <= 2048 and c["decoder_layer_num"] <= 3
        sp.validate(c)  # a reduced space's configs are configs of the full space
    with pytest.raises(ValueError, match=r"decoder_layer_num=6 is not allowed; choose from \[1, 2, 3\]"):
        back.validate({**back.largest(), "decoder_layer_num": 6})


def test_reduced_space_accepts_configs_whose_active_part_fits():
    sp = HATSpace.build("space0")
    reduced = sp.restrict({"decoder_ffn_embed_dim": [2048, 3072]})
    cfg = sp.validate({**sp.largest(), "decoder_layer_num": 2})  # inactive layers at 1024
    assert reduced.validate(cfg)["decoder_ffn_embed_dim"] == [3072, 3072] + [2048] * 4
    with pytest.raises(ValueError, match=r"decoder_ffn_embed_dim\[0\]=1024"):
        reduced.validate({**cfg, "decoder_ffn_embed_dim": [1024] * 6})
