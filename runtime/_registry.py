"""The super-net registry: the only way from a bundle's manifest to code.

A manifest names its super-net by a registered name. Names come from the entry-point
group ``switchnas.supernets`` (switchnas registers its own super-nets there too) and from
:func:`register_supernet` at run time. A looked-up object must be a class implementing the
``SuperNet`` protocol (checked on the class, before anything is instantiated), and the
manifest's keyword arguments are checked against its ``__init__`` signature and against
bounds (:func:`check_kwargs`) before it is constructed.
"""

from __future__ import annotations

import inspect
import math
import threading
from collections.abc import Mapping
from typing import Any

from ._manifest import NAME_PATTERN, BundleError

__all__ = [
    "ENTRY_POINT_GROUP",
    "PROTOCOL_METHODS",
    "available_supernets",
    "check_kwargs",
    "check_supernet_class",
    "get_supernet",
    "register_supernet",
    "supernet_name",
]

ENTRY_POINT_GROUP = "switchnas.supernets"
#: methods a super-net class must have (checked on the class, never on an instance)
PROTOCOL_METHODS = ("activate", "extract", "example_input", "recalibrate_bn", "bn_state",
                    "load_bn_state", "spec", "forward", "state_dict")

#: generic bounds on a manifest's super-net keyword arguments (a class may narrow or widen
#: the numeric range of its own top-level arguments with ``bundle_kwargs_bounds``)
INT_RANGE = (0, 100_000)
FLOAT_RANGE = (-1e6, 1e6)
MAX_STR = 256
MAX_LIST = 256
MAX_DICT = 64
MAX_DEPTH = 8
MAX_NODES = 20_000

_REGISTRY: dict[str, type] = {}
_LOCK = threading.Lock()


def check_supernet_class(obj: Any, what: str) -> type:
    """Return ``obj`` if it is a class implementing the ``SuperNet`` protocol.

    Checks the class itself (``inspect.isclass``, a ``torch.nn.Module`` subclass, every
    method of :data:`PROTOCOL_METHODS` present and callable); nothing is instantiated.

    Raises:
        BundleError: naming ``what`` and each missing method.
    """
    if not inspect.isclass(obj):
        raise BundleError(f"{what} is {type(obj).__name__} {obj!r:.80}, not a class; a "
                          "super-net must be a class implementing SuperNet")
    from torch import nn

    if not issubclass(obj, nn.Module):
        raise BundleError(f"{what} ({obj.__qualname__}) is not a torch.nn.Module subclass")
    missing = [m for m in PROTOCOL_METHODS if not callable(getattr(obj, m, None))]
    if missing:
        raise BundleError(f"{what} ({obj.__qualname__}) does not implement SuperNet: missing "
                          f"{', '.join(missing)}")
    return obj


def register_supernet(name: str, cls: type, *, replace: bool = False) -> type:
    """Register ``cls`` under ``name`` so that bundles naming ``name`` load it.

    Args:
        name: letters, digits, ``_ . -``; at most 64 characters.
        cls: a class implementing ``SuperNet`` (checked now).
        replace: allow replacing another class registered under ``name`` at run time.

    Returns:
        ``cls``.

    Raises:
        ValueError: a malformed name, or a name taken at run time without ``replace``.
        BundleError: ``cls`` is not a super-net class.
    """
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(f"super-net name {name!r} must be letters, digits, '_', '.', '-' "
                         "(at most 64, starting with a letter or digit)")
    check_supernet_class(cls, f"super-net {name!r}")
    with _LOCK:
        if name in _REGISTRY and _REGISTRY[name] is not cls and not replace:
            raise ValueError(f"super-net name {name!r} is already registered to "
                             f"{_REGISTRY[name].__qualname__}; pass replace=True")
        _REGISTRY[name] = cls
    return cls


def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_supernets() -> list[str]:
    """Every registered super-net name (run-time registrations and entry points)."""
    with _LOCK:
        names = set(_REGISTRY)
    return sorted(names | set(_entry_points()))


def get_supernet(name: str) -> type:
    """The class registered under ``name``: run-time registrations first, then the
    ``switchnas.supernets`` entry points (loading one imports its installed module).

    Raises:
        BundleError: an unknown name (the message lists the registered ones), an entry
            point that cannot be imported, or an object that is not a super-net class.
    """
    with _LOCK:
        cls = _REGISTRY.get(name)
    if cls is not None:
        return cls
    eps = _entry_points()
    if name not in eps:
        raise BundleError(f"bundle names super-net {name[:80]!r}, which is not registered; "
                          f"registered: {available_supernets()} (entry-point group "
                          f"{ENTRY_POINT_GROUP!r} or switchnas.runtime.register_supernet)")
    try:
        obj = eps[name].load()
    except Exception as exc:  # noqa: BLE001 - an installed plugin that fails to import
        raise BundleError(f"super-net {name!r} (entry point {eps[name].value!r}) cannot be "
                          f"imported: {type(exc).__name__}: {exc}") from exc
    return check_supernet_class(obj, f"super-net {name!r} (entry point {eps[name].value!r})")


def supernet_name(cls: type) -> str | None:
    """The name ``cls`` is registered under (run time, or an entry point whose value is
    ``"<cls.__module__>:<cls.__qualname__>"``), or ``None``."""
    with _LOCK:
        for name, c in _REGISTRY.items():
            if c is cls:
                return name
    target = f"{cls.__module__}:{cls.__qualname__}"
    for name, ep in sorted(_entry_points().items()):
        if ep.value.replace(" ", "") == target:
            return name
    return None


def import_target(target: str) -> type:
    """Import ``"module:Class"`` (only for ``trust_target=True``) and check the class."""
    import importlib

    module_name, _, qualname = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # noqa: BLE001 - report any failure as a bad bundle
        raise BundleError(f"cannot import the bundle's super-net {target!r}: "
                          f"{type(exc).__name__}: {exc}") from exc
    return check_supernet_class(obj, f"super-net {target!r}")


# -- keyword arguments -----------------------------------------------------------------------
def _check_value(v: Any, where: str, depth: int, budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise BundleError(f"{where}: super-net arguments hold more than {MAX_NODES} values")
    if v is None or isinstance(v, bool):
        return
    if isinstance(v, int):
        lo, hi = INT_RANGE
        if not lo <= v <= hi:
            raise BundleError(f"{where}={v!r:.40} is outside [{lo}, {hi}]")
    elif isinstance(v, float):
        lo_f, hi_f = FLOAT_RANGE
        if not (math.isfinite(v) and lo_f <= v <= hi_f):
            raise BundleError(f"{where}={v!r} is not a finite number in [{lo_f:g}, {hi_f:g}]")
    elif isinstance(v, str):
        if len(v) > MAX_STR:
            raise BundleError(f"{where} is a string of {len(v)} characters (at most {MAX_STR})")
    elif isinstance(v, list):
        if depth >= MAX_DEPTH or len(v) > MAX_LIST:
            raise BundleError(f"{where} is a list too long ({len(v)} > {MAX_LIST}) or nested "
                              f"deeper than {MAX_DEPTH}")
        for i, x in enumerate(v):
            _check_value(x, f"{where}[{i}]", depth + 1, budget)
    elif isinstance(v, dict):
        if depth >= MAX_DEPTH or len(v) > MAX_DICT:
            raise BundleError(f"{where} is an object too large ({len(v)} > {MAX_DICT} keys) "
                              f"or nested deeper than {MAX_DEPTH}")
        for k, x in v.items():
            if not isinstance(k, str) or len(k) > 64:
                raise BundleError(f"{where} has a key that is not a short string: {k!r:.80}")
            _check_value(x, f"{where}.{k}", depth + 1, budget)
    else:
        raise BundleError(f"{where} is a {type(v).__name__}; only JSON values are allowed")


def check_kwargs(cls: type, kwargs: Any, what: str) -> dict[str, Any]:
    """Check a manifest's keyword arguments for ``cls`` before it is constructed.

    Every key must be a named parameter of ``cls.__init__`` (a ``**kwargs`` catch-all
    accepts nothing extra), every required parameter present, every value a bounded JSON
    value (ints in :data:`INT_RANGE`, finite floats in :data:`FLOAT_RANGE`, strings up to
    :data:`MAX_STR`, lists up to :data:`MAX_LIST`, objects up to :data:`MAX_DICT` keys,
    depth :data:`MAX_DEPTH`). The class may declare ``bundle_kwargs_bounds`` (a mapping
    ``name -> (low, high)`` replacing the generic numeric range of a top-level argument)
    and ``check_bundle_kwargs(kwargs)`` (a classmethod raising ``ValueError``), e.g. to
    bound an estimate of its parameter count.

    Returns:
        a copy of ``kwargs``.

    Raises:
        BundleError: naming the argument, its value and what is allowed.
    """
    if not isinstance(kwargs, dict):
        raise BundleError(f"{what}: kwargs must be an object, got {type(kwargs).__name__}")
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError) as exc:
        raise BundleError(f"{what}: cannot read the signature of {cls.__qualname__}: "
                          f"{exc}") from exc
    named = {n: p for n, p in params.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    unknown = sorted(set(kwargs) - set(named))
    if unknown:
        raise BundleError(f"{what}: unknown arguments {[u[:40] for u in unknown[:10]]} for "
                          f"{cls.__qualname__}; it takes {sorted(named)}")
    missing = sorted(n for n, p in named.items() if p.default is p.empty and n not in kwargs)
    if missing:
        raise BundleError(f"{what}: {cls.__qualname__} needs the arguments {missing}")
    bounds: Mapping[str, tuple[float, float]] = getattr(cls, "bundle_kwargs_bounds", None) or {}
    budget = [MAX_NODES]
    for k, v in kwargs.items():
        where = f"{what} argument {k}"
        if k in bounds and isinstance(v, int | float) and not isinstance(v, bool):
            lo, hi = bounds[k]
            if not (math.isfinite(v) and lo <= v <= hi):
                raise BundleError(f"{where}={v!r:.40} is outside [{lo}, {hi}]")
            continue
        _check_value(v, where, 0, budget)
    hook = getattr(cls, "check_bundle_kwargs", None)
    if hook is not None:
        try:
            hook(dict(kwargs))
        except (ValueError, TypeError) as exc:
            raise BundleError(f"{what}: {exc}") from exc
    return dict(kwargs)
