"""ChoiceSpace: sampling, validation errors, encoding, restriction, round trip."""

from __future__ import annotations

import numpy as np
import pytest

from switchnas.supernets.ofa.mbv3 import MobileNetV3Space
from switchnas.supernets.space import ChoiceSpace, Dimension


@pytest.fixture
def space() -> MobileNetV3Space:
    return MobileNetV3Space.build([3, 5, 7], [3, 4, 6], [2, 3, 4], [32, 40])


def test_sample_is_valid_and_canonical(space: MobileNetV3Space) -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        cfg = space.sample(rng)
        assert space.validate(cfg) == cfg
        for s, d in enumerate(cfg["d"]):
            for b in range(s * 4 + d, (s + 1) * 4):
                assert cfg["ks"][b] == 3 and cfg["e"][b] == 3


def test_validate_names_bad_value(space: MobileNetV3Space) -> None:
    cfg = space.largest()
    cfg["ks"][2] = 9
    with pytest.raises(ValueError, match=r"ks\[2\]=9 is not allowed; choose from \[3, 5, 7\]"):
        space.validate(cfg)
    with pytest.raises(ValueError, match="unknown"):
        space.validate({**space.largest(), "width": 1})
    with pytest.raises(ValueError, match="r"):
        space.validate({**space.largest(), "r": 33})


def test_encode_fixed_width_and_range(space: MobileNetV3Space) -> None:
    X = space.encode([space.largest(), space.smallest()])
    assert X.shape == (2, 20 + 20 + 5 + 1)
    assert X[0].max() == 1.0 and X[1].min() == 0.0


def test_restrict_and_round_trip(space: MobileNetV3Space) -> None:
    small = space.restrict({"ks": [3, 5], "r": [32]})
    assert small.dimensions["ks"][0] == (3, 5)
    assert isinstance(small, MobileNetV3Space)
    rng = np.random.default_rng(1)
    assert all(max(small.sample(rng)["ks"]) <= 5 for _ in range(10))
    again = MobileNetV3Space.from_dict(small.to_dict())
    assert again.dimensions == small.dimensions
    with pytest.raises(ValueError, match="cannot restrict"):
        space.restrict({"ks": [9]})
    with pytest.raises(ValueError, match="unknown dimensions"):
        space.restrict({"width": [1]})


def test_scalar_dimension_rules() -> None:
    with pytest.raises(ValueError, match="exactly one position"):
        Dimension("r", [[1], [2]], scalar=True)
    sp = ChoiceSpace("toy", [Dimension("a", [[1, 2]], scalar=True)])
    with pytest.raises(ValueError, match="scalar"):
        sp.validate({"a": [1]})
