"""The configuration, checked up front: every user error is found before any work starts.

:func:`validate_config` checks the composed config (after the supernet's preset is merged
in) against :data:`SECTIONS`, an explicit table of our own keys with their types and
bounds, and the ``_target_`` sections (``data``, ``supernet.net``, ``supernet.task``,
``hardware``, ``search``) against the signature of the class they name: unknown keys are
errors (with a "did you mean" where one is close), plain numbers, booleans and strings
must have the annotated type, ``???`` values must be filled in. Files the config names
(``supernet.weights``, ``supernet.space_file``) must exist, and a space file must be one.

Every error is a :class:`~switchnas.pipeline.context.ConfigError` whose message starts
with ``<key>=<value>:`` and says what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
import inspect
import json
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .context import ConfigError

__all__ = ["SECTIONS", "TARGETS", "Rule", "needs", "validate_config"]

#: The stages each stage reads (and so runs first); ``run`` is every stage. ``FRONT`` is
#: the stage that measured the front: ``explore`` (the loop) or ``validate`` (one pass).
_ORDER = {"train": (), "explore": ("train",), "profile": (), "evaluate": ("train",),
          "fit": ("profile", "evaluate"), "search": ("fit",), "validate": ("search", "train"),
          "family": ("FRONT",), "export": ("family", "FRONT", "train"),
          "demo": ("export",), "reduce": ("FRONT",), "run": ("export", "demo")}
#: Folders the stages write into the run directory (export.dir must not be one of them).
_STAGE_DIRS = frozenset({"train", "explore", "profile", "evaluate", "fit", "search",
                         "validate", "family", "reduce", ".hydra"})
_HYDRA_KEYS = frozenset({"_target_", "_recursive_", "_convert_", "_partial_", "_args_"})


@functools.cache
def needs(command: str, *, loop: bool = True) -> frozenset[str]:
    """The stages ``command`` runs (itself and, transitively, what it reads); ``loop``:
    the front comes from ``explore`` (``explore.enabled``), else from ``validate``."""
    out: set[str] = set()
    todo = [command]
    while todo:
        s = todo.pop()
        if s == "FRONT":
            s = "explore" if loop else "validate"
        if s not in out:
            out.add(s)
            todo.extend(_ORDER.get(s, ()))
    return frozenset(out)


@dataclasses.dataclass(frozen=True)
class Rule:
    """One key: a check returning ``None`` when the value is fine, else what is allowed."""

    check: Callable[[Any], str | None]
    optional: bool = False  # the key may be absent


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    return str(value)


def _fail(key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"{key}={_show(value)}: {allowed}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(float(v)))


def integer(lo: int, hi: int = 10**9) -> Callable[[Any], str | None]:
    """An integer in ``[lo, hi]``."""
    return lambda v: None if _is_int(v) and lo <= v <= hi else \
        f"must be an integer from {lo} to {hi}"


def number(lo: float, hi: float = math.inf, *, lo_open: bool = False, hi_open: bool = False,
           nullable: bool = False) -> Callable[[Any], str | None]:
    """A finite number in the interval from ``lo`` to ``hi`` (open ends as flagged)."""
    interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"

    def check(v: Any) -> str | None:
        if v is None and nullable:
            return None
        if _is_number(v):
            x = float(v)
            if (x > lo if lo_open else x >= lo) and (x < hi if hi_open else x <= hi):
                return None
        return f"must be a finite number in {interval}" + (" or null" if nullable else "")
    return check


def boolean(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def string(v: Any) -> str | None:
    return None if isinstance(v, str) and v else "must be a non-empty string"


def _load_factors(v: Any) -> str | None:
    ok = isinstance(v, list) and 0 < len(v) <= 100_000 and all(
        _is_number(x) and 0 < float(x) <= 1e6 for x in v)
    return None if ok else "must be a non-empty list of load factors > 0 (e.g. [1.0, 1.6])"


def _strings(v: Any) -> str | None:
    ok = isinstance(v, list) and all(isinstance(x, str) for x in v)
    return None if ok else "must be a list of names, e.g. [r]"


def _candidates(v: Any) -> str | None:
    from switchnas.predictors.models import REGISTRY

    if v is None:
        return None
    if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
        bad = [x for x in v if x not in REGISTRY]
        if not bad:
            return None
        hint = difflib.get_close_matches(bad[0], list(REGISTRY), n=1)
        return (f"unknown predictor {bad[0]!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + f"; choose from {sorted(REGISTRY)} or null for the defaults")
    return f"must be null (the default candidates) or a non-empty list from {sorted(REGISTRY)}"


def _export_dir(v: Any) -> str | None:
    ok = (isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", v) is not None
          and v not in _STAGE_DIRS)
    return None if ok else ("must be a plain folder name inside the run directory (letters, "
                            f"digits, '_', '-', '.'), not one of {sorted(_STAGE_DIRS)}")


def _weights(v: Any) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or not Path(v).expanduser().is_file():
        return "no such file (give a .safetensors or OFA checkpoint file, or null)"
    return None


def _store(v: Any) -> str | None:
    if v is None or v == "auto":
        return None
    if not isinstance(v, str) or not v.strip():
        return "must be auto, null or the path of a folder"
    p = Path(v).expanduser()
    if p.exists() and not p.is_dir():
        return "exists and is not a folder (give auto, null or a folder path)"
    return None


def _storage_url(v: Any) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or not v.strip():
        return ("must be null (SQLite <run dir>/study.db), an SQLite file path, or a "
                "database URL such as sqlite:///study.db or postgresql://user@host/db")
    if "://" in v and not v.split("://", 1)[0].startswith(("sqlite", "postgresql", "mysql")):
        return (f"unsupported database scheme {v.split('://', 1)[0]!r}; use sqlite:///..., "
                "postgresql://... or mysql://...")
    return None


def _explore_targets(v: Any) -> str | None:
    from switchnas.plugins.registry import available_plugins

    installed = sorted(available_plugins())
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        return f"must be a list of hardware targets from {installed}"
    bad = [x for x in v if x not in installed]
    if bad:
        hint = difflib.get_close_matches(bad[0], installed, n=1)
        return (f"unknown hardware target {bad[0]!r}"
                + (f" (did you mean {hint[0]!r}?)" if hint else "") + f"; installed: {installed}")
    return None if len(set(v)) == len(v) else "names a target twice"


def _explore_objectives(v: Any) -> str | None:
    ok = isinstance(v, list) and all(isinstance(x, str) for x in v)
    return None if ok else ("must be a list of objectives: accuracy, latency, energy, "
                            "latency@<target>, energy@<target>")


def _explore_constraints(v: Any) -> str | None:
    if v is None:
        return None
    ok = isinstance(v, dict) and all(isinstance(k, str) and _is_number(x) for k, x in v.items())
    return None if ok else ("must be null or map objective names to finite numbers, e.g. "
                            "{latency: 12}")


def _check_explore(cfg: DictConfig) -> None:
    """``explore.objectives`` / ``constraints`` against ``explore.targets`` (and the run's
    own hardware, which is not an extra target)."""
    if OmegaConf.select(cfg, "explore") is None:
        return
    from .stages.explore import DEFAULT_OBJECTIVES, constraint_bounds, objective_columns

    targets = _plain(cfg, "explore.targets") or []
    columns = objective_columns(_plain(cfg, "explore.objectives") or list(DEFAULT_OBJECTIVES),
                                targets)
    constraint_bounds(_plain(cfg, "explore.constraints") or {}, columns)
    try:
        from hydra.core.hydra_config import HydraConfig

        main = HydraConfig.get().runtime.choices.get("hardware")
    except ValueError:  # not inside a Hydra app
        main = None
    if main in targets:
        raise _fail("explore.targets", targets, f"holds {main!r}, the run's own hardware "
                    f"(hardware={main}); list only extra targets")


def _space_file(v: Any) -> str | None:
    if v is None:
        return None
    from switchnas.search.reduce import read_space_file

    if not isinstance(v, str):
        return "must be the path of a space file written by `switchnas reduce`, or null"
    try:
        read_space_file(v)
    except (FileNotFoundError, ValueError) as exc:
        return str(exc)
    return None


def _device(v: Any) -> str | None:
    ok = isinstance(v, str) and re.fullmatch(r"auto|cpu|cuda(:[0-9]+)?", v) is not None
    return None if ok else "must be auto, cpu, cuda or cuda:<index>"


#: Our own sections: ``{section: {key: Rule}}``; ``""`` holds the top-level keys.
SECTIONS: dict[str, dict[str, Rule]] = {
    "": {"stage": Rule(string), "seed": Rule(integer(0, 2**32 - 1)),
         "progress": Rule(boolean), "preset_name": Rule(string),
         "lock_timeout": Rule(number(0, 7 * 24 * 3600), optional=True),
         "store": Rule(_store, optional=True)},
    "train": {},
    "trainer": {"nproc": Rule(integer(1, 4096)), "device": Rule(_device),
                "amp": Rule(boolean), "checkpoint_every": Rule(integer(0, 10**9))},
    "profile": {"n": Rule(integer(4, 1_000_000)), "batch_size": Rule(integer(1, 1_000_000))},
    "evaluate": {"n": Rule(integer(4, 1_000_000))},
    "fit": {"holdout": Rule(number(0, 0.9, hi_open=True))},
    "validate": {"n": Rule(integer(1, 100_000)), "storage": Rule(_storage_url, optional=True)},
    "explore": {"enabled": Rule(boolean), "budget": Rule(integer(2, 10_000_000)),
                "batch": Rule(integer(1, 1_000_000)), "initial": Rule(integer(2, 1_000_000)),
                "storage": Rule(_storage_url), "kappa": Rule(number(0, 100)),
                "targets": Rule(_explore_targets, optional=True),
                "objectives": Rule(_explore_objectives, optional=True),
                "constraints": Rule(_explore_constraints, optional=True)},
    "family": {"k": Rule(integer(1, 10_000)),
               "accuracy_tolerance": Rule(number(0, 100), optional=True)},
    "runtime_demo": {"enabled": Rule(boolean), "requests": Rule(integer(1, 10_000_000)),
                     "target_ms": Rule(number(0, lo_open=True, nullable=True)),
                     "load": Rule(_load_factors)},
    "reduce": {"pareto_only": Rule(boolean), "per_position": Rule(boolean),
               "keep": Rule(_strings), "min_size": Rule(number(1, 1e300))},
    "export": {"dir": Rule(_export_dir)},
    "predictor": {"latency_candidates": Rule(_candidates),
                  "accuracy_candidates": Rule(_candidates), "cv": Rule(integer(2, 100))},
    "supernet": {"name": Rule(string), "weights": Rule(_weights, optional=True),
                 "finetune": Rule(boolean, optional=True),
                 "space_file": Rule(_space_file, optional=True)},
}
#: Sections that construct a class (``_target_``) and sections that are only merged.
TARGETS = ("data", "supernet.net", "supernet.task", "hardware", "search")
_OPAQUE = {"supernet": ("net", "task", "presets")}
#: Keys of a ``_target_`` section that its stage reads itself (not constructor options).
_STAGE_KEYS: dict[str, dict[str, Rule]] = {
    "search": {"name": Rule(string, optional=True),
               "max_latency_ms": Rule(number(0, lo_open=True, nullable=True), optional=True),
               "min_accuracy": Rule(number(-math.inf, nullable=True), optional=True)},
}
_TOP_GROUPS = ("data", "supernet", "hardware", "search")


def _check_measure(cfg: DictConfig) -> None:
    """``measure``: the timing policy, checked by constructing it (it validates itself)."""
    section = _plain(cfg, "measure")
    if section is None:
        return
    if not isinstance(section, dict):
        raise _fail("measure", section, "must be a mapping of the batch policy's keys")
    try:
        from switchnas.plugins.batch import BatchPolicy
    except ImportError:  # an older plugins package: nothing to check against
        return
    known = [f.name for f in dataclasses.fields(BatchPolicy) if f.name != "seed"]
    for key in section:
        if key not in known:
            raise _unknown("measure", str(key), known)
    try:
        BatchPolicy(**section)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"measure: {exc}") from exc


#: Sections owned by another component, checked by that component's own validation.
_DELEGATED: dict[str, Callable[[DictConfig], None]] = {"measure": _check_measure}


def _plain(cfg: DictConfig, key: str) -> Any:
    node = OmegaConf.select(cfg, key, throw_on_missing=False)
    try:
        return OmegaConf.to_container(node, resolve=True) if isinstance(
            node, (DictConfig, ListConfig)) else node
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{key}: cannot be resolved: {exc}") from exc


def _missing(cfg: DictConfig, section: str) -> list[str]:
    node = OmegaConf.select(cfg, section)
    if not isinstance(node, DictConfig):
        return []
    return [k for k in node if isinstance(k, str) and OmegaConf.is_missing(node, k)]


def _unknown(section: str, key: str, known: list[str]) -> ConfigError:
    where = f"{section}.{key}" if section else key
    hint = difflib.get_close_matches(key, known, n=1)
    return ConfigError(f"{where}: unknown key" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                       + f"; {section or 'the config'} has {sorted(known)}")


def _check_section(cfg: DictConfig, section: str, rules: Mapping[str, Rule]) -> None:
    node = cfg if not section else OmegaConf.select(cfg, section)
    if node is None and section:
        raise ConfigError(f"{section}: missing section")
    if not isinstance(node, DictConfig):
        raise ConfigError(f"{section}={_show(node)}: must be a mapping of keys")
    allowed = [*rules, *(_OPAQUE.get(section, ()))]
    if not section:
        allowed = list(dict.fromkeys([*allowed, *SECTIONS, *_TOP_GROUPS, *_DELEGATED]))
    for key in node:
        if key not in allowed:
            raise _unknown(section, str(key), [k for k in allowed if k])
    for key, rule in rules.items():
        full = f"{section}.{key}" if section else key
        if key not in node:
            if rule.optional:
                continue
            raise ConfigError(f"{full}: missing; it must be set")
        if OmegaConf.is_missing(node, key):
            raise ConfigError(f"{full}=???: a value is required ({full}=...)")
        value = _plain(cfg, full)
        problem = rule.check(value)
        if problem:
            raise _fail(full, value, problem)


# -- _target_ sections: checked against the signature of the class they name --------------

_SIMPLE = {"int": _is_int, "float": _is_number, "bool": lambda v: isinstance(v, bool),
           "str": lambda v: isinstance(v, str)}
_WORDS = {"int": "an integer", "float": "a finite number", "bool": "true or false",
          "str": "a string"}


def _list_of(elem: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, list) and all(elem(x) for x in v)


def _annotation_check(annotation: Any) -> tuple[Callable[[Any], bool], str] | None:
    """A value test and its description for simple annotations; ``None`` if not simple."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    if not text or annotation is inspect.Parameter.empty:
        return None
    tests: list[Callable[[Any], bool]] = []
    words: list[str] = []
    for part in (p.strip() for p in text.split("|")):
        if part == "None":
            tests.append(lambda v: v is None)
            words.append("null")
        elif part in _SIMPLE:
            tests.append(_SIMPLE[part])
            words.append(_WORDS[part])
        elif (m := re.fullmatch(r"(?:Sequence|list|tuple)\[(int|float|str)(?:, \.\.\.)?\]",
                                part)):
            tests.append(_list_of(_SIMPLE[m.group(1)]))
            words.append(f"a list of {m.group(1)}s")
        else:
            return None
    return (lambda v: any(t(v) for t in tests)), " or ".join(words)


def _parameters(cls: type) -> tuple[dict[str, inspect.Parameter], bool]:
    """Keyword parameters of ``cls(...)``, following ``**kwargs`` up the MRO; and whether
    it still takes arbitrary keywords at the end of that chain."""
    params: dict[str, inspect.Parameter] = {}
    open_ended = False
    for klass in cls.__mro__:
        if klass is object or "__init__" not in vars(klass):
            continue
        try:
            sig = inspect.signature(vars(klass)["__init__"])
        except (TypeError, ValueError):
            return params, True
        open_ended = False
        for p in list(sig.parameters.values())[1:]:
            if p.kind is p.VAR_KEYWORD:
                open_ended = True
            elif p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
                params.setdefault(p.name, p)
        if not open_ended:
            break
    return params, open_ended


def _check_target(cfg: DictConfig, section: str) -> None:
    node = OmegaConf.select(cfg, section)
    if not isinstance(node, DictConfig):
        raise ConfigError(f"{section}={_show(_plain(cfg, section))}: must be a mapping with "
                          "_target_")
    for key in _missing(cfg, section):
        raise ConfigError(f"{section}.{key}=???: a value is required ({section}.{key}=...)")
    target = node.get("_target_")
    if not isinstance(target, str) or not target:
        raise ConfigError(f"{section}._target_={_show(target)}: must name a class")
    mod, _, name = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(mod), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"{section}._target_={target}: cannot be imported ({exc})") from exc
    if not inspect.isclass(cls):
        return
    params, open_ended = _parameters(cls)
    ours = cls.__module__.startswith("switchnas.")
    values = _plain(cfg, section)
    for key, value in values.items():
        if key in _HYDRA_KEYS:
            continue
        if key in _STAGE_KEYS.get(section, {}):
            problem = _STAGE_KEYS[section][key].check(value)
            if problem:
                raise _fail(f"{section}.{key}", value, problem)
            continue
        if key not in params:
            if open_ended and not ours:
                continue
            raise _unknown(section, key, [*params, *_STAGE_KEYS.get(section, {})])
        simple = _annotation_check(params[key].annotation)
        if simple is not None and not simple[0](value):
            raise _fail(f"{section}.{key}", value, f"must be {simple[1]}")
    required = [k for k, p in params.items() if p.default is p.empty and k not in values
                and not (section == "supernet.net" and k == "space")]
    if required and ours:
        raise ConfigError(f"{section}.{required[0]}: missing; {target} needs it")


def validate_config(cfg: DictConfig, *, command: str = "run") -> None:
    """Check ``cfg`` (the composed config, supernet preset merged) before any work.

    Args:
        cfg: the configuration.
        command: the command about to run (``run`` or a stage name): minimums that only
            matter to a later stage (rows ``fit`` needs) apply when that stage will run.

    Raises:
        ConfigError: the first problem, as ``<key>=<value>: <what is allowed>``.
    """
    for section, rules in SECTIONS.items():
        _check_section(cfg, section, rules)
    for section in TARGETS:
        _check_target(cfg, section)
    for check in _DELEGATED.values():
        check(cfg)
    stages = needs(command, loop=bool(OmegaConf.select(cfg, "explore.enabled", default=True)))
    if "fit" in stages:
        from .stages.fit import MIN_TRAIN_ROWS, holdout_rows, min_rows

        holdout = float(cfg.fit.holdout)
        least = min_rows(holdout)
        for key in ("profile.n", "evaluate.n"):
            n = int(OmegaConf.select(cfg, key))
            if n < least:
                raise _fail(key, n, f"must be at least {least}: fit cross-validates on "
                                    f"{MIN_TRAIN_ROWS} or more rows after holding out "
                                    f"{holdout_rows(least, holdout)} (fit.holdout={holdout:g})")
    if "search" in stages:
        from .stages.search import strategy_from_config

        strategy_from_config(cfg.search)
    if "explore" in stages:
        _check_explore(cfg)
