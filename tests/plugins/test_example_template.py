"""The plugin template in examples/hardware_plugin keeps passing the shared suite."""

import sys
from pathlib import Path

import pytest

from .suite import HardwarePluginTestSuite

TEMPLATE = Path(__file__).resolve().parents[2] / "examples" / "hardware_plugin"


@pytest.fixture(scope="module")
def template_plugin_class():
    sys.path.insert(0, str(TEMPLATE))
    try:
        from switchnas_myboard import MyBoardPlugin
    finally:
        sys.path.remove(str(TEMPLATE))
    yield MyBoardPlugin
    for mod in [m for m in sys.modules if m.startswith("switchnas_myboard")]:
        del sys.modules[mod]


class TestTemplatePlugin(HardwarePluginTestSuite):
    @pytest.fixture
    def plugin(self, template_plugin_class):
        return template_plugin_class(warmup=1, min_repeats=3, max_repeats=5, max_seconds=0.5)


def test_template_config_matches_its_class(template_plugin_class):
    import inspect

    import yaml

    cfg = yaml.safe_load((TEMPLATE / "switchnas_myboard" / "conf" / "hardware" /
                          "myboard.yaml").read_text())
    assert cfg.pop("_target_") == "switchnas_myboard.plugin.MyBoardPlugin"
    assert set(cfg) <= set(inspect.signature(template_plugin_class).parameters)
