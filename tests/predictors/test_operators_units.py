"""Unit values of the OFA-ResNet50 and OFA-ProxylessNAS operator encodings, computed by
hand from the definitions in :mod:`switchnas.predictors.ofa_operators`."""

from __future__ import annotations

import numpy as np
import pytest

from switchnas.predictors.ofa_operators import (
    _bottleneck,
    _stem,
    proxyless_operators,
    resnet50_operator_features_arrays,
    resnet50_operator_table,
)


@pytest.mark.parametrize("first", [False, True])
def test_bottleneck_work_by_hand(first: bool) -> None:
    """cin 16, cout 32, expand 0.5 (mid 16), 4x4 input, stride 1."""
    count, pw, k3, memory = _bottleneck(16, 32, 0.5, 4, 1, first)
    mid, hw, cin, cout = 16, 4, 16, 32
    assert count == 1.0
    assert pw == hw * hw * cin * mid + hw * hw * mid * cout + (hw * hw * cin * cout if first
                                                               else 0)
    assert k3 == hw * hw * mid * mid * 9
    weights = 16 * 16 + 9 * 16 * 16 + 16 * 32 + (16 * 32 if first else 0)
    assert weights == (3584 if first else 3072)
    acts = 2 * 16 * 16 + 2 * 16 * 16 + 2 * 16 * 16 + (3 if first else 2) * 16 * 32
    assert memory == acts + weights


@pytest.mark.parametrize("kept", [False, True])
def test_stem_work_by_hand(kept: bool) -> None:
    """mid 8, cout 16 at resolution 8: 4x4 after the stride-2 conv, 2x2 after the pool."""
    count, pw, k3, memory = _stem(8, 16, 8, kept)
    assert count == (3.0 if kept else 2.0) and pw == 0.0
    assert k3 == 16 * 8 * 3 * 9 + 16 * 8 * 16 * 9 + (16 * 8 * 8 * 9 if kept else 0)
    expected = 8 * 8 * 3 + 2 * 16 * 8 + 16 * 16 + 27 * 8 + 9 * 8 * 16
    expected += (3 * 16 * 8 + 9 * 8 * 8) if kept else 0
    expected += 16 * 16 + 4 * 16  # pool input and output
    assert memory == expected


def test_proxyless_ends_with_named_logits() -> None:
    cfg = {"ks": [3] * 21, "e": [3] * 21, "d": [4, 4, 4, 4, 4, 1], "r": 224}
    ops = proxyless_operators(cfg, n_classes=10)
    assert [op.kind for op in ops[-3:]] == ["Conv_1", "AvgPool2D", "Logits"]
    assert ops[-1].lut_key() == "Logits-input:1x1x1280-output:10"


def test_resnet50_arrays_refuse_a_width_index_past_the_list() -> None:
    """Width index ``len(width_mult_list)`` is one past the end: a ValueError naming the
    range, not an IndexError from the table."""
    table = resnet50_operator_table(expand=[0.25], resolutions=[32], max_depth=0,
                                    width_mult_list=[0.65, 0.8, 1.0])
    d, e, r = np.zeros((1, 5), int), np.full((1, 10), 0.25), np.array([32])
    ok = resnet50_operator_features_arrays(d, e, np.full((1, 6), 2), r, table=table)
    assert ok.shape == (1, 22)
    w = np.full((1, 6), 2)
    w[0, 3] = 3
    with pytest.raises(ValueError, match=r"width indices in 0\.\.2"):
        resnet50_operator_features_arrays(d, e, w, r, table=table)
