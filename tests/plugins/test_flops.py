import pytest
import torch
from torch import nn

from switchnas.plugins.flops import FlopsPlugin, count_cost

from .suite import HardwarePluginTestSuite


class TestFlopsPlugin(HardwarePluginTestSuite):
    @pytest.fixture
    def plugin(self):
        return FlopsPlugin()


def test_counts_match_hand_computation():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8),
                        nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Flatten(),
                        nn.Linear(8 * 4 * 4, 10))
    c = count_cost(net, torch.randn(1, 3, 4, 4))
    assert c["macs"] == 16 * 8 * 3 * 9 + 16 * 8 * 9 + 128 * 10
    assert c["params"] == sum(p.numel() for p in net.parameters())
    assert c["activation_bytes"] == 4 * (128 * 3 + 10)  # two convs + bn + linear outputs
    assert c["layers"] == 4


def test_proxy_latency_and_meta(mbv3_small):
    from ofa.utils.pytorch_utils import count_net_flops, count_parameters

    net, cfg = mbv3_small
    sub = net.extract(cfg)
    m = FlopsPlugin(gmacs_per_s=2.0).measure(sub, net.example_input(cfg))
    assert m.meta["macs"] == count_net_flops(sub.body, (1, 3, 32, 32))  # OFA's own count
    assert m.meta["params"] == count_parameters(sub.body)
    assert m.samples_ms == (m.meta["macs"] / 2e6,) and m.meta["proxy"] is True


def test_batch_size_scales_macs():
    lin = nn.Linear(4, 4)
    one = FlopsPlugin().measure(lin, torch.randn(1, 4)).meta["macs"]
    assert FlopsPlugin(batch_size=8).measure(lin, torch.randn(1, 4)).meta["macs"] == 8 * one


def test_bad_throughput():
    with pytest.raises(ValueError, match="gmacs_per_s"):
        FlopsPlugin(gmacs_per_s=0)
