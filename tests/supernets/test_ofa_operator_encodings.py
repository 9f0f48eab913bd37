"""Operator encodings of OFA-ResNet50 and OFA-ProxylessNAS: the MACs they count are the
MACs the extracted sub-network runs, the vectorised genome path equals the config path,
and values a sub-network does not use change nothing. Also: ``encode`` canonicalises."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from switchnas.predictors.ofa_operators import (
    proxyless_operator_features,
    resnet50_operator_features,
)
from switchnas.supernets.ofa.common import OFASuperNet
from switchnas.supernets.ofa.mbv3 import OFAMobileNetV3Net
from switchnas.supernets.ofa.proxyless import OFAProxylessNet
from switchnas.supernets.ofa.resnet50 import OFAResNet50Net

NETS = {
    "ofa_resnet50": lambda: OFAResNet50Net(n_classes=10, width_mult_list=[0.1, 0.15, 0.2],
                                           resolutions=[24, 32]),
    "ofa_proxyless": lambda: OFAProxylessNet(n_classes=10, width_mult=0.5,
                                             resolutions=[24, 32]),
}
#: Columns of the operator encoding that count MACs.
MAC_COLUMNS = {
    "ofa_resnet50": [c for g in range(5) for c in (4 * g + 1, 4 * g + 2)] + [20],
    "ofa_proxyless": [c for g in range(6) for c in range(6 * g + 1, 6 * g + 5)] + [36],
}


@pytest.fixture(scope="module", params=sorted(NETS))
def net(request: pytest.FixtureRequest) -> OFASuperNet:
    torch.manual_seed(0)
    return NETS[request.param]().eval()


def _macs(module: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of every convolution and linear layer in one forward pass."""
    total = [0]

    def hook(m: nn.Module, _inp: Any, out: torch.Tensor) -> None:
        if isinstance(m, nn.Conv2d):
            total[0] += out[0].numel() * (m.in_channels // m.groups) * int(
                np.prod(m.kernel_size))
        else:
            assert isinstance(m, nn.Linear)
            total[0] += m.in_features * m.out_features

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            module(x)
    finally:
        for h in handles:
            h.remove()
    return total[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_counted_macs_are_the_subnetworks_macs(net: OFASuperNet, seed: int) -> None:
    cfg = net.space.sample(np.random.default_rng(seed))
    ops = net.predictor_encodings([cfg])["operators"][0]
    name = net.space.name
    sub = net.extract(cfg).eval()
    assert ops[MAC_COLUMNS[name]].sum() == _macs(sub, net.example_input(cfg, 1))


def test_the_smallest_subnetwork_does_least_work(net: OFASuperNet) -> None:
    ops = net.predictor_encodings([net.space.smallest(), net.space.largest()])["operators"]
    macs = ops[:, MAC_COLUMNS[net.space.name]].sum(axis=1)
    memory = ops[:, -1]  # the fixed (head) memory, and each group's last column
    assert np.all(ops >= 0) and macs[0] < macs[1] and memory[0] <= memory[1]


def test_genomes_path_equals_config_path(net: OFASuperNet) -> None:
    rng = np.random.default_rng(3)
    sp = net.space
    g = np.vstack([sp.sample_genomes(rng, 40),  # canonical, and raw (inactive values set)
                   rng.integers(0, sp.cardinalities(), size=(40, sp.genome_length))])
    by_genome = net.predictor_encodings_genomes(g)
    by_config = net.predictor_encodings(sp.from_genomes(g))
    assert sorted(by_genome) == sorted(by_config) == ["operators", "space"]
    for k in by_config:
        np.testing.assert_allclose(by_genome[k], by_config[k], rtol=1e-12, atol=0)


def test_genomes_path_of_a_restricted_space(net: OFASuperNet) -> None:
    sp = net.space
    small = sp.restrict({"r": [32], "e": [min(sp.dimension("e").choices[0])]})
    net.space = small
    try:
        g = small.sample_genomes(np.random.default_rng(0), 20)
        a, b = net.predictor_encodings_genomes(g), net.predictor_encodings(small.from_genomes(g))
        np.testing.assert_allclose(a["operators"], b["operators"], rtol=1e-12)
    finally:
        net.space = sp


def test_values_of_inactive_blocks_change_nothing(net: OFASuperNet) -> None:
    sp = net.space
    rng = np.random.default_rng(7)
    raw = rng.integers(0, sp.cardinalities(), size=(60, sp.genome_length))
    canon = sp.canonical_genomes(raw)
    assert (raw != canon).any()  # some rows had values beyond their depth
    for enc in ("operators", "space"):
        np.testing.assert_array_equal(net.predictor_encodings_genomes(raw)[enc],
                                      net.predictor_encodings_genomes(canon)[enc])
        np.testing.assert_array_equal(net.predictor_encodings(sp.from_genomes(raw))[enc],
                                      net.predictor_encodings(sp.from_genomes(canon))[enc])


def test_space_encode_canonicalises() -> None:
    net = OFAMobileNetV3Net(n_classes=10, width_mult=0.5, resolutions=[24, 32])
    sp = net.space
    cfg = sp.largest()
    cfg["d"] = [2] * 5
    other = {**cfg, "ks": list(cfg["ks"]), "e": tuple(cfg["e"])}  # a tuple is fine too
    other["ks"][3] = 3  # block 3 is beyond stage 0's depth 2
    assert sp.canonical(other) == sp.canonical(cfg) and other["ks"] != cfg["ks"]
    np.testing.assert_array_equal(sp.encode([other]), sp.encode([sp.canonical(cfg)]))
    assert other["ks"][3] == 3  # the caller's config is left as it was
    g = sp.to_genomes([other])
    np.testing.assert_array_equal(sp.encode_genomes(g), sp.encode([other]))
    with pytest.raises(ValueError, match=r"config 0 lacks \['r'\]"):
        sp.encode([{k: v for k, v in cfg.items() if k != "r"}])


def test_bad_configs_are_refused() -> None:
    base = {"d": [2, 2, 2, 2, 2], "e": [0.25] * 18, "w": [0] * 6, "r": 32}
    with pytest.raises(ValueError, match="depths .* must lie in 0..2"):
        resnet50_operator_features([{**base, "d": [3, 2, 2, 2, 2]}])
    with pytest.raises(ValueError, match="width indices .* must lie in 0..2"):
        resnet50_operator_features([{**base, "w": [3] + [0] * 5}])
    with pytest.raises(ValueError, match="needs 10 \\+ 4 \\* max depth values of e; got 17"):
        resnet50_operator_features([{**base, "e": [0.25] * 17}])
    px = {"ks": [3] * 21, "e": [3] * 21, "d": [4] * 5 + [1], "r": 32}
    with pytest.raises(ValueError, match=r"ks\[0\]=9 is not an OFA kernel size"):
        proxyless_operator_features([{**px, "ks": [9] + [3] * 20}])
    with pytest.raises(ValueError, match="depths .* must lie in 1..\\[4, 4, 4, 4, 4, 1\\]"):
        proxyless_operator_features([{**px, "d": [4] * 6}])
