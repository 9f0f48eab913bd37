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


# -- genomes ------------------------------------------------------------------------------
@pytest.fixture
def mixed() -> ChoiceSpace:
    """Per-position choices of different sizes, floats, strings and a scalar."""
    return ChoiceSpace("mixed", [
        Dimension("a", [[1, 2, 3], [4, 5]]),
        Dimension("f", [[0.25, 0.5, 0.35]]),
        Dimension("act", [["relu", "gelu"]] * 2),
        Dimension("r", [[32, 24]], scalar=True),
    ])


def test_genome_layout(mixed: ChoiceSpace) -> None:
    assert mixed.genome_length == 6
    assert mixed.cardinalities().tolist() == [3, 2, 3, 2, 2, 2]
    assert mixed.positions("act") == slice(3, 5)
    with pytest.raises(KeyError, match="no dimension 'b'"):
        mixed.positions("b")
    cfg = {"a": [3, 4], "f": 0.35, "act": ["gelu", "relu"], "r": 32}
    with pytest.raises(ValueError, match="list of 1 values"):  # f is not scalar
        mixed.to_genomes([cfg])
    cfg["f"] = [0.35]
    g = mixed.to_genomes([cfg])
    # indices into the sorted choices: f (0.25, 0.35, 0.5), act (gelu, relu), r (24, 32)
    assert g.tolist() == [[2, 0, 1, 0, 1, 1]]
    back = mixed.from_genomes(g)
    assert back == [cfg] == [mixed.validate(cfg)]
    assert type(back[0]["a"][0]) is int and type(back[0]["f"][0]) is float
    assert type(back[0]["r"]) is int
    assert mixed.genome_values(g, "f").tolist() == [[0.35]]
    with pytest.raises(ValueError, match="gelu"):  # as ``encode``: strings have no scale
        mixed.encode_genomes(g)
    assert mixed.one_hot_genomes(g).tolist() == [[0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1]]
    with pytest.raises(ValueError, match=r"config 0: act\[1\]='tanh' is not allowed"):
        mixed.to_genomes([{**cfg, "act": ["gelu", "tanh"]}])


def test_encode_and_one_hot_genomes(space: MobileNetV3Space) -> None:
    g = space.sample_genomes(np.random.default_rng(0), 50)
    assert np.array_equal(space.encode_genomes(g), space.encode(space.from_genomes(g)))
    oh = space.one_hot_genomes(g)
    assert oh.shape == (50, int(space.cardinalities().sum()))
    assert (oh.sum(axis=1) == space.genome_length).all()
    starts = np.concatenate([[0], np.cumsum(space.cardinalities())[:-1]])
    assert (oh[np.arange(50)[:, None], starts + g] == 1).all()
    assert space.to_genomes([]).shape == (0, space.genome_length)
    assert space.from_genomes(np.zeros((0, space.genome_length), dtype=np.int64)) == []


def test_sample_genomes_and_canonical(space: MobileNetV3Space) -> None:
    rng = np.random.default_rng(1)
    g = space.sample_genomes(rng, 500)
    d = space.genome_values(g, "d")
    ks_idx = g[:, space.positions("ks")]
    for s in range(5):
        for b in range(4):
            inactive = d[:, s] <= b
            assert (ks_idx[inactive, s * 4 + b] == 0).all()
            assert (ks_idx[~inactive, s * 4 + b] > 0).any()  # active blocks do vary
    with pytest.raises(ValueError, match="n=-1"):
        space.sample_genomes(rng, -1)


def test_a_subclass_overriding_only_canonical_still_gets_canonical_genomes() -> None:
    class Tied(ChoiceSpace):
        def canonical(self, config):  # type: ignore[no-untyped-def]
            return {**config, "b": config["a"]}

    sp = Tied("tied", [Dimension("a", [[1, 2, 3]], scalar=True),
                       Dimension("b", [[1, 2, 3]], scalar=True)])
    g = np.array([[0, 2], [2, 1], [1, 1]])
    assert sp.canonical_genomes(g).tolist() == [[0, 0], [2, 2], [1, 1]]
    assert all(row[0] == row[1] for row in sp.sample_genomes(np.random.default_rng(0), 20))
    plain = ChoiceSpace("plain", [Dimension("a", [[1, 2, 3]], scalar=True)])
    gg = np.array([[2], [0]])
    out = plain.canonical_genomes(gg)
    assert out.tolist() == [[2], [0]] and out is not gg


def test_check_genomes_errors(space: MobileNetV3Space) -> None:
    P = space.genome_length
    with pytest.raises(ValueError, match=rf"shape \(n, {P}\), got \({P},\)"):
        space.check_genomes(np.zeros(P, dtype=int))
    with pytest.raises(ValueError, match="integer choice indices"):
        space.check_genomes(np.zeros((1, P), dtype=float))
    bad = np.zeros((2, P), dtype=int)
    bad[1, space.positions("r").start] = 7
    with pytest.raises(ValueError, match=r"row 1: r=7 is not a choice index; allowed 0..1"):
        space.check_genomes(bad)
    bad[1, space.positions("r").start] = 0
    bad[0, space.positions("ks").start + 3] = 3
    with pytest.raises(ValueError, match=r"row 0: ks\[3\]=3 is not a choice index; allowed 0..2"):
        space.from_genomes(bad)
