import sys
from importlib.metadata import EntryPoint

import pytest

from switchnas.plugins import registry
from switchnas.plugins.base import Measurement
from switchnas.plugins.registry import (
    available_plugins,
    builtin_config_dir,
    hydra_searchpath_entries,
    load_plugin,
    validate_plugin,
)

from ._fakepkg import write_package

BUILTINS = sorted(p.stem for p in builtin_config_dir().glob("*.yaml"))


class Good:
    name = "good"

    def describe(self):
        return {"device": "x", "batch_size": 1}

    def measure(self, module, example_input):
        return Measurement(samples_ms=(1.0,))


class NoDescribe:
    name = "nd"

    def measure(self, module, example_input):
        return None


class MeasureNotCallable:
    name = "mnc"
    measure = 3

    def describe(self):
        return {}


class MeasureWrongSignature:
    name = "mws"

    def describe(self):
        return {}

    def measure(self, module):
        return None


class NoName:
    def describe(self):
        return {}

    def measure(self, module, example_input):
        return None


def test_validate_accepts_a_good_plugin():
    g = Good()
    assert validate_plugin(g) is g


@pytest.mark.parametrize("obj, match", [
    (NoDescribe(), r"hardware plugin NoDescribe is missing describe\(\)"),
    (MeasureNotCallable(), "MeasureNotCallable: measure is not callable"),
    (MeasureWrongSignature(), r"MeasureWrongSignature: measure\(module\) does not accept"),
    (NoName(), "NoName needs a non-empty string attribute 'name'"),
    (Good, "is a class, not an instance"),
    (object(), r"object is missing describe\(\)"),
])
def test_validate_names_the_problem(obj, match):
    with pytest.raises(TypeError, match=match):
        validate_plugin(obj)


def test_builtins_are_listed():
    plugins = available_plugins()
    assert {"cpu", "onnxruntime", "cuda", "lut", "flops"} <= set(plugins)
    assert plugins["cpu"]["source"] == "built-in"
    assert plugins["cpu"]["target"] == "switchnas.plugins.cpu.CPUPlugin"


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_config_targets_an_importable_class(name):
    info = available_plugins()[name]
    cls = registry._import_object(info["target"])
    assert getattr(cls, "name", None) == name, "the YAML file name must be the plugin name"
    import inspect

    params = inspect.signature(cls).parameters
    unknown = set(info["defaults"]) - set(params)
    assert not unknown, f"{name}.yaml sets arguments {unknown} that {cls.__name__} lacks"


def test_load_plugin_applies_overrides():
    p = load_plugin("cpu", threads=3, max_repeats=17)
    assert p.threads == 3 and p.policy.max_repeats == 17


def test_unknown_plugin_lists_the_installed_ones():
    with pytest.raises(ValueError, match=r"unknown hardware plugin 'tpu'; installed: \[.*'cpu'"):
        load_plugin("tpu")


def test_bad_keyword_names_the_plugin():
    with pytest.raises(TypeError, match="cannot construct hardware plugin 'cpu'"):
        load_plugin("cpu", turbo=True)


@pytest.fixture
def fake_entry_point(tmp_path, monkeypatch):
    write_package(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [EntryPoint(name="acme", value="acme_board.plugin:AcmePlugin",
                      group=registry.ENTRY_POINT_GROUP),
           EntryPoint(name="broken", value="acme_board.plugin:NotAPlugin",
                      group=registry.ENTRY_POINT_GROUP)]
    # the fake answers only the hardware group: a registry asking another group finds nothing
    monkeypatch.setattr(registry, "entry_points",
                        lambda group: eps if group == "switchnas.hardware" else [])
    yield
    for mod in [m for m in sys.modules if m.startswith("acme_board")]:
        del sys.modules[mod]


def test_entry_point_plugin_with_its_config(fake_entry_point):
    info = available_plugins()["acme"]
    assert info["source"] == "entry point"
    assert info["defaults"]["board"] == "acme-2"
    assert info["searchpath"] == "pkg://acme_board.conf"
    assert hydra_searchpath_entries() == ["pkg://acme_board.conf"]
    p = load_plugin("acme", max_seconds=0.2)
    assert p.name == "acme" and p.board == "acme-2" and p.policy.max_seconds == 0.2


def test_broken_entry_point_fails_at_load(fake_entry_point):
    assert available_plugins()["broken"]["config"] is None
    with pytest.raises(TypeError, match=r"NotAPlugin is missing describe\(\)"):
        load_plugin("broken")


def test_entry_point_config_resolves_in_hydra(fake_entry_point):
    from hydra import compose, initialize_config_module
    from hydra.utils import instantiate

    with initialize_config_module(config_module="switchnas.conf", version_base="1.3"):
        cfg = compose(overrides=["+hardware=acme",
                                 "hydra.searchpath=[" + ",".join(hydra_searchpath_entries()) + "]"])
    plugin = validate_plugin(instantiate(cfg.hardware))
    assert plugin.describe()["board"] == "acme-2"


def test_builtin_shadows_entry_point(monkeypatch):
    ep = EntryPoint(name="cpu", value="somewhere:Else", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points",
                        lambda group: [ep] if group == "switchnas.hardware" else [])
    with pytest.warns(UserWarning, match="shadowed"):
        assert available_plugins()["cpu"]["source"] == "built-in"


def test_malformed_entry_point_config_fails_only_that_plugin(fake_entry_point, tmp_path):
    cfg = tmp_path / "acme_board" / "conf" / "hardware" / "acme.yaml"
    cfg.write_text("- not\n- a mapping\n")
    plugins = available_plugins()
    assert "must be a mapping" in plugins["acme"]["error"]
    assert "error" not in plugins["cpu"]
    with pytest.raises(ValueError, match=r"hardware plugin 'acme': .*acme.yaml must be a mapping"):
        load_plugin("acme")
