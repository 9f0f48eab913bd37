"""Finding, loading and validating hardware plugins.

Two ways to register a plugin, one way to load it (:func:`load_plugin`):

* **Built-in**: a YAML file ``conf/hardware/<name>.yaml`` in this package's config tree,
  with ``_target_`` naming the plugin class and its keyword arguments as defaults. The same
  file is what ``hardware=<name>`` selects in a Hydra run.
* **Separate package**: an entry point in the group ``switchnas.hardware`` whose *name* is
  the plugin name and whose *value* names the plugin class (or any callable returning a
  plugin), e.g. in the package's ``pyproject.toml``::

      [project.entry-points."switchnas.hardware"]
      myboard = "myboard_switchnas.plugin:MyBoardPlugin"

  The package may ship a Hydra config folder: a package ``conf`` (with an ``__init__.py``)
  next to the module the entry point names, holding ``hardware/<name>.yaml``. For the entry
  point above that is ``myboard_switchnas/conf/hardware/myboard.yaml``. Its values are the
  defaults :func:`load_plugin` uses, and :func:`hydra_searchpath_entries` returns
  ``pkg://myboard_switchnas.conf`` so that ``hardware=myboard`` resolves in Hydra runs.

A built-in name wins over an entry point of the same name (with a warning).

Every loaded plugin goes through :func:`validate_plugin`, so a plugin with a missing or
mis-typed method fails when it is loaded, with a message that names the method.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import warnings
from importlib.metadata import EntryPoint, entry_points
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from .base import HardwarePlugin

__all__ = [
    "ENTRY_POINT_GROUP",
    "available_plugins",
    "builtin_config_dir",
    "entry_point_plugins",
    "hydra_searchpath_entries",
    "load_plugin",
    "validate_plugin",
]

ENTRY_POINT_GROUP = "switchnas.hardware"

# method name -> positional parameters it must accept
_METHODS: dict[str, tuple[str, ...]] = {"describe": (), "measure": ("module", "example_input")}


def validate_plugin(obj: Any) -> HardwarePlugin:
    """Return ``obj`` if it implements :class:`HardwarePlugin`, else raise ``TypeError``.

    Checks that ``obj`` is an instance (not a class), that ``name`` is a non-empty string,
    and that ``describe()`` and ``measure(module, example_input)`` exist, are callable and
    accept those arguments. The message names the first problem found, e.g.
    ``hardware plugin Foo is missing describe()``.
    """
    label = type(obj).__name__
    if inspect.isclass(obj):
        raise TypeError(f"hardware plugin {obj.__name__} is a class, not an instance; "
                        "construct it first (e.g. with load_plugin or hydra.utils.instantiate)")
    for meth, params in _METHODS.items():
        sig = f"{meth}({', '.join(params)})"
        if not hasattr(obj, meth):
            raise TypeError(f"hardware plugin {label} is missing {sig}")
        fn = getattr(obj, meth)
        if not callable(fn):
            raise TypeError(f"hardware plugin {label}: {meth} is not callable "
                            f"(got {type(fn).__name__}); it must be a method {sig}")
        try:
            inspect.signature(fn).bind(*params)
        except TypeError:
            raise TypeError(f"hardware plugin {label}: {meth}{inspect.signature(fn)} "
                            f"does not accept the arguments of {sig}") from None
        except ValueError:  # no signature (builtins): cannot check, accept
            pass
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"hardware plugin {label} needs a non-empty string attribute 'name', "
                        f"got {name!r}")
    return obj  # type: ignore[no-any-return]


def builtin_config_dir() -> Path:
    """The folder of built-in plugin configs (``switchnas/conf/hardware``)."""
    return Path(str(files("switchnas.conf").joinpath("hardware")))


def _builtin_configs() -> dict[str, Path]:
    d = builtin_config_dir()
    return {p.stem: p for p in sorted(d.glob("*.yaml"))} if d.is_dir() else {}


def entry_point_plugins() -> dict[str, EntryPoint]:
    """Entry points of the group ``switchnas.hardware`` by name (nothing is imported)."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found and found[ep.name].value != ep.value:
            warnings.warn(f"hardware plugin {ep.name!r} is registered twice "
                          f"({found[ep.name].value} and {ep.value}); using the first",
                          stacklevel=2)
            continue
        found.setdefault(ep.name, ep)
    return found


def _config_package(ep: EntryPoint) -> str:
    """Dotted name of the ``conf`` package that belongs to entry point ``ep``."""
    module = ep.value.split(":")[0].strip()
    spec = importlib.util.find_spec(module)
    is_package = spec is not None and spec.submodule_search_locations is not None
    pkg = module if is_package else module.rpartition(".")[0]
    return f"{pkg}.conf" if pkg else "conf"


def _entry_point_config(ep: EntryPoint) -> tuple[str | None, Path | None]:
    """(``conf`` package, its ``hardware/<name>.yaml``) for ``ep``; ``None`` where absent."""
    try:
        pkg = _config_package(ep)
        root = files(pkg)
    except Exception:  # noqa: BLE001 - a broken package must not break the listing
        return None, None
    cfg = root.joinpath("hardware", f"{ep.name}.yaml")
    return pkg, (Path(str(cfg)) if cfg.is_file() else None)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"hardware plugin config {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"hardware plugin config {path} must be a mapping, "
                         f"got {type(data).__name__}")
    return data


def available_plugins() -> dict[str, dict[str, Any]]:
    """Every installed plugin by name, without constructing any.

    Each value holds ``source`` (``"built-in"`` or ``"entry point"``), ``target`` (the
    class path), ``config`` (the path of its YAML or ``None``), ``defaults`` (the YAML's
    keyword arguments) and, for entry points, ``distribution`` and ``searchpath``. A
    plugin whose config cannot be read has an ``error`` entry (and fails in
    :func:`load_plugin`) instead of breaking the listing.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, path in _builtin_configs().items():
        data, error = _read_yaml_or_error(path)
        out[name] = {
            "source": "built-in",
            "target": data.get("_target_"),
            "config": str(path),
            "defaults": {k: v for k, v in data.items() if not k.startswith("_")},
        }
        if error:
            out[name]["error"] = error
    for name, ep in entry_point_plugins().items():
        if name in out:
            warnings.warn(f"entry point hardware plugin {name!r} ({ep.value}) is shadowed by "
                          "the built-in plugin of the same name", stacklevel=2)
            continue
        pkg, cfg = _entry_point_config(ep)
        data, error = _read_yaml_or_error(cfg) if cfg else ({}, None)
        dist = getattr(ep, "dist", None)
        out[name] = {
            "source": "entry point",
            "target": ep.value.replace(":", "."),
            "config": str(cfg) if cfg else None,
            "defaults": {k: v for k, v in data.items() if not k.startswith("_")},
            "distribution": f"{dist.name} {dist.version}" if dist is not None else None,
            "searchpath": f"pkg://{pkg}" if cfg and pkg and not error else None,
        }
        if error:
            out[name]["error"] = error
    return out


def _read_yaml_or_error(path: Path) -> tuple[dict[str, Any], str | None]:
    """One malformed config is reported for its plugin, not raised for the whole listing."""
    try:
        return _read_yaml(path), None
    except (OSError, ValueError) as exc:
        return {}, str(exc)


def hydra_searchpath_entries() -> list[str]:
    """``pkg://`` search-path entries of installed plugin packages that ship configs."""
    entries = [info["searchpath"] for info in available_plugins().values()
               if info.get("searchpath")]
    return sorted(set(entries))


def _import_object(target: str) -> Any:
    """``"pkg.mod.Class"`` or ``"pkg.mod:Class"`` -> the object."""
    if ":" in target:
        mod, _, attr = target.partition(":")
    else:
        mod, _, attr = target.rpartition(".")
    try:
        obj: Any = importlib.import_module(mod)
    except ImportError as exc:
        raise ImportError(f"cannot import {mod!r} for hardware plugin target {target!r}: "
                          f"{exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImportError(f"hardware plugin target {target!r}: module {mod!r} has no "
                              f"attribute {attr!r}") from None
    return obj


def load_plugin(name: str, **kwargs: Any) -> HardwarePlugin:
    """Construct and validate the installed plugin ``name``.

    Keyword arguments override the defaults of the plugin's YAML config.

    Raises:
        ValueError: ``name`` is not installed (the message lists what is).
        TypeError: the constructed object is not a valid plugin.
    """
    plugins = available_plugins()
    if name not in plugins:
        raise ValueError(f"unknown hardware plugin {name!r}; installed: {sorted(plugins)}")
    info = plugins[name]
    if info.get("error"):
        raise ValueError(f"hardware plugin {name!r}: {info['error']}")
    params = {**info["defaults"], **kwargs}
    if info["source"] == "built-in":
        if not info["target"]:
            raise ValueError(f"hardware plugin config {info['config']} has no _target_")
        factory = _import_object(str(info["target"]))
    else:
        factory = entry_point_plugins()[name].load()
    try:
        plugin = factory(**params)
    except TypeError as exc:
        raise TypeError(f"cannot construct hardware plugin {name!r} with {params}: {exc}") from exc
    return validate_plugin(plugin)
