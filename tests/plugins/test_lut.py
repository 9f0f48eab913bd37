from pathlib import Path

import numpy as np
import pytest
import yaml

from switchnas.plugins.flops import FlopsPlugin
from switchnas.plugins.lut import LUTError, LUTPlugin, build_lut, mbv3_operators, read_lut

from .suite import HardwarePluginTestSuite

NOTE10 = Path(__file__).resolve().parents[3] / "shared" / "data" / "ofa_note10_lut"


@pytest.fixture(scope="module")
def flops_lut(tmp_path_factory, mbv3_small):
    """A table built with the (deterministic) flops plugin over a 1-kernel, 1-expand space."""
    net, _ = mbv3_small
    small = type(net)(n_classes=10, width_mult=0.5, ks=[3], expand=[3], depth=[2, 3, 4],
                      resolutions=[32])
    out = tmp_path_factory.mktemp("lut")
    tables = build_lut(FlopsPlugin(), small, [32], out)
    return small, out, tables


class TestLUTPlugin(HardwarePluginTestSuite):
    runs_module = False

    @pytest.fixture
    def plugin(self, flops_lut):
        return LUTPlugin(tables=str(flops_lut[1]), device="flops-proxy")

    @pytest.fixture
    def module(self, flops_lut):
        net = flops_lut[0]
        return net.extract(net.space.sample(np.random.default_rng(1)))

    @pytest.fixture
    def example_input(self):
        import torch

        return torch.randn(1, 3, 32, 32)


def test_operator_keys_follow_ofa_format(mbv3_small):
    net, cfg = mbv3_small
    keys = [op.key for op in mbv3_operators(net.extract(cfg))]
    assert keys[0].startswith("Conv-input:32x32x3-output:16x16x")
    assert keys[-4].startswith("Conv_1-input:1x1x")  # 32 px / 32 after five strides
    assert keys[-3].startswith("AvgPool2D-input:1x1x") and keys[-2].startswith("Conv_2-")
    assert keys[-1].startswith("Logits-input:1x1x") and keys[-1].endswith("-output:10")
    blocks = [k for k in keys if k.startswith("expanded_conv-")]
    assert len(blocks) == 1 + sum(cfg["d"])
    assert all("-kernel:" in k and "-idskip:" in k and "-hs:" in k for k in blocks)


def test_built_table_sums_to_whole_network_macs(flops_lut):
    net, out, tables = flops_lut
    assert (out / "32_lookup_table.yaml").is_file() and (out / "describe.json").is_file()
    # 1 fixed block + 2 shapes per stage (first / later blocks) x 5 stages + 5 others
    assert len(tables[32]) == 1 + 2 * 5 + 5
    lut, flops = LUTPlugin(tables=str(out)), FlopsPlugin()
    rng = np.random.default_rng(0)
    for _ in range(3):
        cfg = net.space.sample(rng)
        sub, x = net.extract(cfg), net.example_input(cfg)
        assert lut.measure(sub, x).median_ms == pytest.approx(flops.measure(sub, x).median_ms)
    assert lut.describe()["measured_with"]["plugin"] == "flops"


def _write(path, content):
    path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize("content, match", [
    ("- a\n- b\n", "must be a non-empty mapping"),
    ("", "must be a non-empty mapping"),
    ("key: [1, 2\n", "not valid YAML"),
    ("Conv-x: {count: 3}\n", "entry 'Conv-x' must be a mapping with 'mean'"),
    ("Conv-x: {mean: -1.0}\n", "entry 'Conv-x': 'mean' must be a finite number"),
    ("Conv-x: {mean: .nan}\n", "entry 'Conv-x': 'mean' must be a finite number"),
    ("Conv-x: {mean: fast}\n", "entry 'Conv-x': 'mean' must be a finite number"),
    ("Conv-x: {mean: 1.0, std: -2}\n", "'std' must be a finite number"),
])
def test_malformed_tables_name_file_and_key(tmp_path, content, match):
    path = _write(tmp_path / "32_lookup_table.yaml", content)
    with pytest.raises(LUTError, match=match) as info:
        read_lut(path)
    assert str(path) in str(info.value)


def test_missing_resolution_and_missing_key(tmp_path, mbv3_small):
    net, cfg = mbv3_small
    _write(tmp_path / "64_lookup_table.yaml", "Conv-x: {mean: 1.0}\n")
    plugin = LUTPlugin(tables=str(tmp_path))
    sub, x = net.extract(cfg), net.example_input(cfg)
    with pytest.raises(LUTError, match=r"no table for resolution 32 .*\[64\]"):
        plugin.measure(sub, x)
    _write(tmp_path / "32_lookup_table.yaml", "Conv-x: {mean: 1.0}\n")
    with pytest.raises(LUTError, match="has no entry 'Conv-input:32x32x3"):
        plugin.measure(sub, x)


def test_missing_folder(tmp_path):
    with pytest.raises(LUTError, match="does not exist"):
        LUTPlugin(tables=str(tmp_path / "nope")).describe()


def test_non_mbv3_module_is_refused():
    import torch

    with pytest.raises(TypeError, match="not an OFA MobileNetV3"):
        mbv3_operators(torch.nn.Linear(2, 2), 32)


@pytest.mark.refdata
@pytest.mark.slow
@pytest.mark.skipif(not NOTE10.is_dir(), reason="needs ../shared/data/ofa_note10_lut")
def test_note10_tables_match_ofa_predictor():
    from ofa.nas.efficiency_predictor.latency_lookup_table import MBv3LatencyTable

    from switchnas.supernets.ofa.mbv3 import OFAMobileNetV3Net

    net = OFAMobileNetV3Net(width_mult=1.2, resolutions=list(range(160, 228, 4)))
    plugin = LUTPlugin(tables=str(NOTE10), device="note10")
    assert plugin.resolutions() == list(range(160, 228, 4))
    rng = np.random.default_rng(0)
    for _ in range(3):
        cfg = net.space.sample(rng)
        sub = net.extract(cfg)
        ofa_table = MBv3LatencyTable.__new__(MBv3LatencyTable)
        ofa_table.lut = yaml.safe_load((NOTE10 / f"{cfg['r']}_lookup_table.yaml").read_text())
        want = ofa_table.predict_network_latency(sub.body, cfg["r"])
        assert plugin.measure(sub, net.example_input(cfg)).median_ms == pytest.approx(want)
