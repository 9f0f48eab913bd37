"""Genomes of every registered super-network's space: round trips, vectorised
canonicalisation, encodings and predictor encodings equal to the config path."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

import numpy as np
import pytest

from switchnas.predictors.encodings import (
    mbv3_one_hot,
    mbv3_one_hot_arrays,
    mbv3_operator_features,
    mbv3_operator_features_arrays,
    mbv3_operator_table,
)
from switchnas.supernets.ofa.mbv3 import MobileNetV3Space, OFAMobileNetV3Net

#: Small constructor arguments of each registered super-network (the registry's tests
#: fail for a super-network registered without an entry here).
SMALL: dict[str, dict[str, Any]] = {
    "ofa_mbv3": dict(n_classes=10, width_mult=0.5, resolutions=[24, 32]),
    "ofa_proxyless": dict(n_classes=10, width_mult=0.5, resolutions=[24, 32]),
    "ofa_resnet50": dict(n_classes=10, width_mult_list=[0.1, 0.15, 0.2], resolutions=[24, 32]),
    "groupnet": dict(n_classes=10, groups=4, widths=[8, 8, 8, 8, 8]),
    "hat": dict(src_vocab=24, tgt_vocab=28, space="space0", width_divisor=32, dropout=0.0),
    "fluid": dict(n_classes=10, devices=3, channels=[4, 8, 8], widths=[0.5, 1.0]),
}
REGISTERED = sorted(ep.name for ep in entry_points(group="switchnas.supernets"))


def test_every_registered_supernet_is_covered() -> None:
    assert REGISTERED, "no super-network is registered (is switchnas installed?)"
    assert set(REGISTERED) <= set(SMALL), f"add small arguments for {set(REGISTERED) - set(SMALL)}"


@pytest.fixture(scope="module", params=REGISTERED)
def net(request: pytest.FixtureRequest) -> Any:
    import torch

    torch.manual_seed(0)
    ep = next(e for e in entry_points(group="switchnas.supernets") if e.name == request.param)
    return ep.load()(**SMALL[request.param])


def _raw(space: Any, n: int, seed: int) -> np.ndarray:
    """Uniform genomes, not canonical."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, space.cardinalities(), size=(n, space.genome_length))


def test_configs_round_trip(net: Any) -> None:
    space = net.space
    rng = np.random.default_rng(0)
    configs = [space.sample(rng) for _ in range(100)] + [space.largest(), space.smallest()]
    g = space.to_genomes(configs)
    assert g.dtype == np.int64 and g.shape == (len(configs), space.genome_length)
    assert space.genome_length == int(sum(len(c) for c in space.dimensions.values()))
    back = space.from_genomes(g)
    assert back == configs
    assert [space.validate(c) for c in back] == back
    assert json.loads(json.dumps(back)) == back  # plain Python values
    assert np.array_equal(space.to_genomes(back), g)


def test_canonical_genomes_equal_canonical(net: Any) -> None:
    space = net.space
    raw = _raw(space, 300, 1)
    vectorised = space.canonical_genomes(raw)
    rowwise = space.to_genomes([space.canonical(c) for c in space.from_genomes(raw)])
    assert np.array_equal(vectorised, rowwise)
    assert not np.array_equal(raw, vectorised)  # every registered space has inactive parts
    assert np.array_equal(space.canonical_genomes(vectorised), vectorised)  # idempotent


def test_sampled_genomes_are_canonical_and_valid(net: Any) -> None:
    space = net.space
    g = space.sample_genomes(np.random.default_rng(2), 200)
    assert np.array_equal(space.canonical_genomes(g), g)
    configs = space.from_genomes(g)
    assert [space.validate(c) for c in configs] == configs
    assert (g.min(axis=0) >= 0).all() and (g < space.cardinalities()).all()
    # every choice of every position shows up in 200 samples of a uniform draw
    assert (g.max(axis=0) == space.cardinalities() - 1).mean() > 0.5


def test_encodings_equal_the_config_path(net: Any) -> None:
    space = net.space
    g = space.sample_genomes(np.random.default_rng(3), 150)
    configs = space.from_genomes(g)
    assert np.array_equal(space.encode_genomes(g), space.encode(configs))
    if not hasattr(net, "predictor_encodings"):
        assert not hasattr(net, "predictor_encodings_genomes")
        return
    by_config = net.predictor_encodings(configs)
    by_genome = net.predictor_encodings_genomes(g)
    assert by_genome.keys() == by_config.keys()
    for name, X in by_config.items():
        assert by_genome[name].shape == X.shape, name
        np.testing.assert_allclose(by_genome[name], X, rtol=1e-9, atol=0, err_msg=name)


def test_mbv3_predictor_encodings_of_a_restricted_space() -> None:
    """Per-position choices (a reduced space) map to the right table entries."""
    full = MobileNetV3Space.build([3, 5, 7], [3, 4, 6], [2, 3, 4], [24, 32])
    ks = [[3, 5]] * 10 + [[5, 7]] * 10
    small = full.restrict({"ks": ks, "e": [4, 6], "r": [32]})
    net = OFAMobileNetV3Net(n_classes=10, width_mult=0.5, resolutions=[24, 32],
                            space=small.to_dict())
    g = net.space.sample_genomes(np.random.default_rng(4), 100)
    configs = net.space.from_genomes(g)
    assert all(c["ks"][15] in (5, 7) and c["r"] == 32 for c in configs)
    a, b = net.predictor_encodings(configs), net.predictor_encodings_genomes(g)
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-9, atol=0, err_msg=name)


@pytest.mark.parametrize("level", ["stage", "network", "block"])
def test_mbv3_operator_table_matches_operators_at_full_width(level: str) -> None:
    resolutions = [160, 176, 192, 208, 224]
    space = MobileNetV3Space.build([3, 5, 7], [3, 4, 6], [2, 3, 4], resolutions)
    g = space.sample_genomes(np.random.default_rng(5), 120)
    configs = space.from_genomes(g)
    table = mbv3_operator_table(resolutions=resolutions, width_mult=1.0)
    ks, e, d, r = (space.genome_values(g, n) for n in ("ks", "e", "d", "r"))
    got = mbv3_operator_features_arrays(ks, e, d, r[:, 0], table=table, level=level)
    want = mbv3_operator_features(configs, level=level, width_mult=1.0)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=0)
    oh = mbv3_one_hot_arrays(ks, e, d, r[:, 0], resolutions=resolutions)
    assert np.array_equal(oh, mbv3_one_hot(configs, resolutions=resolutions))
    assert np.array_equal(mbv3_one_hot_arrays(ks, e, d, r[:, 0]), mbv3_one_hot(configs))
    with pytest.raises(ValueError, match="r=232 is not among the encoded choices"):
        mbv3_operator_features_arrays(ks, e, d, np.full(len(g), 232), table=table)
    with pytest.raises(ValueError, match="level='layer'"):
        mbv3_operator_features_arrays(ks, e, d, r[:, 0], table=table, level="layer")
    with pytest.raises(ValueError, match="shape"):
        mbv3_one_hot_arrays(ks[:, :5], e, d, r[:, 0])


BAD: list[tuple[Callable[[Any], Any], str]] = [
    (lambda s: s.from_genomes(np.zeros((2, s.genome_length + 1), dtype=int)), "shape"),
    (lambda s: s.from_genomes(np.zeros((2, s.genome_length))), "integer"),
    (lambda s: s.from_genomes(np.full((1, s.genome_length), -1)), "is not a choice index"),
    (lambda s: s.encode_genomes(s.cardinalities()[None, :]), "is not a choice index"),
    (lambda s: s.genome_values(np.zeros((1, s.genome_length), dtype=int), "nope"), "nope"),
]


@pytest.mark.parametrize(("call", "message"), BAD)
def test_bad_genomes_are_named(net: Any, call: Callable[[Any], Any], message: str) -> None:
    with pytest.raises((ValueError, KeyError), match=message):
        call(net.space)


def test_to_genomes_names_the_bad_value(net: Any) -> None:
    space = net.space
    cfg = space.largest()
    name = next(n for n in space.dimensions if not space.dimension(n).scalar)
    cfg[name] = list(cfg[name])
    cfg[name][0] = -12345
    with pytest.raises(ValueError, match=rf"config 1: {name}\[0\]=-12345 is not allowed"):
        space.to_genomes([space.smallest(), cfg])
    with pytest.raises(ValueError, match=f"has no {name!r}"):
        space.to_genomes([{k: v for k, v in space.largest().items() if k != name}])
