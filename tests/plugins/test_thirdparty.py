"""Install the fixture package of tests/fixtures/thirdparty_plugin and find it by entry point."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from switchnas.plugins import registry

from .suite import HardwarePluginTestSuite

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "thirdparty_plugin"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """pip-install the fixture into a temporary --target folder put on sys.path."""
    tmp = tmp_path_factory.mktemp("thirdparty")
    src, target = tmp / "src", tmp / "site"
    shutil.copytree(FIXTURE, src)  # building writes into the source tree: keep the repo clean
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
         "--no-index", "--quiet", "--target", str(target), str(src)],
        capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"pip install of the fixture failed:\n{proc.stdout}\n{proc.stderr}")
    sys.path.insert(0, str(target))
    yield target
    sys.path.remove(str(target))
    for mod in [m for m in sys.modules if m.startswith("switchnas_thirdparty")]:
        del sys.modules[mod]


@pytest.mark.slow
def test_found_through_its_entry_point(installed):
    eps = registry.entry_point_plugins()
    assert eps["thirdparty"].value == "switchnas_thirdparty.plugin:ThirdPartyPlugin"
    info = registry.available_plugins()["thirdparty"]
    assert info["source"] == "entry point"
    assert info["distribution"] == "switchnas-thirdparty-plugin 0.0.1"
    assert info["defaults"] == {"label": "from-yaml", "repeats": 3}
    plugin = registry.load_plugin("thirdparty")
    assert plugin.describe()["device"] == "fixture-from-yaml"


@pytest.mark.slow
def test_its_config_folder_joins_hydras_search_path(installed):
    from hydra import compose, initialize_config_module
    from hydra.utils import instantiate

    entries = registry.hydra_searchpath_entries()
    assert "pkg://switchnas_thirdparty.conf" in entries
    with initialize_config_module(config_module="switchnas.conf", version_base="1.3"):
        cfg = compose(overrides=["+hardware=thirdparty",
                                 "hydra.searchpath=[" + ",".join(entries) + "]"])
    plugin = registry.validate_plugin(instantiate(cfg.hardware))
    assert plugin.describe()["device"] == "fixture-from-yaml"


@pytest.mark.slow
def test_listed_by_the_cli(installed, capsys):
    from switchnas.plugins.cli import main

    assert main([]) == 0
    out = capsys.readouterr().out
    assert "thirdparty" in out and "entry point" in out


@pytest.mark.slow
class TestThirdPartyPlugin(HardwarePluginTestSuite):
    @pytest.fixture
    def plugin(self, installed):
        return registry.load_plugin("thirdparty")
