"""Stage ``explore``: the search loop whose budget is real evaluations (the default of
``switchnas run``; ``explore.enabled=false`` runs the one-pass profile, fit, search,
validate chain instead).

Each round measures a batch of sub-networks for real (latency on the hardware plugin as one
interleaved batch in the units of the study's first batch; the task's score on the ``val``
split of the task), refits surrogates on everything measured, searches them and picks the next batch
from the predicted front and where the surrogates are least sure
(:func:`switchnas.search.loop.run_loop`). Every evaluation is a trial of a persistent Optuna
study (``explore.storage``; SQLite ``<run dir>/study.db`` by default) named after the
super-network's weights and the hardware, so a killed run resumes where it stopped, several
workers can share one study, and the family is chosen from everything ever measured for
that super-network on that hardware.

The measured Pareto front is then scored on the ``test`` split (with each member's
batch-norm statistics) and written as ``measured.json`` in the format of ``validate``, so
``family``, ``export`` and ``reduce`` read either stage.

More than two objectives and several targets: ``explore.targets`` names extra hardware
plugins (``conf/hardware`` files or installed entry points) that measure the same
sub-networks in every batch; ``explore.objectives`` chooses what the loop minimises
together (:func:`objective_columns`: ``accuracy``, ``latency``, ``energy`` of the run's
hardware, ``latency@<target>``, ``energy@<target>``); ``explore.constraints`` bounds
objectives (:func:`constraint_bounds`): violating sub-networks are measured and recorded
but never on the front. Every row records ``latencies`` (``{target: ms}``, the run's
hardware under its plugin name) and, where a plugin reports it, ``energy_mj`` (the run's
hardware) and ``energies_mj`` (``{target: mJ}``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from switchnas.plugins.measure import MeasurementError
from switchnas.predictors.dataset import describe_key
from switchnas.search.loop import run_loop
from switchnas.search.pareto import nondominated_mask, pareto_mask
from switchnas.search.strategies import upper_bounds
from switchnas.search.study import open_study

from ..artifacts import Artifact
from ..context import ConfigError, Context
from . import train, validate
from ._measure import measure_configs
from ._util import memo, say, write_json
from .search import strategy_from_config

__all__ = ["DEFAULT_OBJECTIVES", "Objective", "constraint_bounds", "front_source",
           "load_targets", "objective_columns", "run", "study_name"]

log = logging.getLogger("switchnas")

#: ``explore.objectives`` of a plain run: the study keeps its two-objective name.
DEFAULT_OBJECTIVES = ("accuracy", "latency")
_KINDS = ("accuracy", "latency", "energy")
_NAME = re.compile(r"(latency|energy)@([A-Za-z0-9_.-]+)")


@dataclass(frozen=True)
class Objective:
    """One minimised column of the loop.

    Attributes:
        name: as configured (``"latency"``, ``"energy@cuda"`` ...).
        kind: ``"accuracy"`` (recorded as ``-score``), ``"latency"`` (ms) or ``"energy"`` (mJ).
        target: an ``explore.targets`` name; ``None``: the run's own hardware.
    """

    name: str
    kind: str
    target: str | None = None


def _allowed(targets: Sequence[str]) -> list[str]:
    return [*_KINDS, *(f"{k}@{t}" for t in targets for k in ("latency", "energy"))]


def objective_columns(objectives: Sequence[str], targets: Sequence[str]) -> list[Objective]:
    """The loop's columns for ``explore.objectives``: ``latency`` first and ``accuracy``
    second (the order of a plain run's study), then the others in the order given.

    Args:
        objectives: names: ``accuracy``, ``latency``, ``energy`` (the run's hardware),
            ``latency@<target>``, ``energy@<target>`` (``<target>`` in ``targets``).
        targets: the ``explore.targets`` names.

    Returns:
        One :class:`Objective` per column.

    Raises:
        ConfigError: an unknown or repeated name, a target not in ``targets``, or
            ``accuracy`` or ``latency`` missing; the message lists what is allowed.
    """
    allowed = _allowed(targets)
    names = list(objectives)
    out: list[Objective] = []
    for name in names:
        m = _NAME.fullmatch(str(name))
        if name in _KINDS:
            out.append(Objective(str(name), str(name)))
        elif m and m.group(2) in targets:
            out.append(Objective(str(name), m.group(1), m.group(2)))
        else:
            hint = (f" ({m.group(2)!r} is not in explore.targets={list(targets)}; add it "
                    "there)") if m else ""
            raise ConfigError(f"explore.objectives: unknown objective {name!r}{hint}; "
                              f"allowed: {allowed}")
    if len(set(names)) != len(names):
        raise ConfigError(f"explore.objectives={names}: an objective is named twice")
    for need in DEFAULT_OBJECTIVES:
        if need not in names:
            raise ConfigError(f"explore.objectives={names}: must include {need!r} (the "
                              f"family is spread over latency and accuracy); allowed: {allowed}")
    first = [next(o for o in out if o.name == n) for n in ("latency", "accuracy")]
    return [*first, *(o for o in out if o not in first)]


def constraint_bounds(constraints: Mapping[str, Any], columns: Sequence[Objective]
                      ) -> list[float | None]:
    """Upper bounds on the loop's columns (``None``: unbounded) from ``explore.constraints``.

    ``latency``/``energy`` keys are the most ms/mJ allowed; ``accuracy`` is the least score
    allowed (the column holds ``-score``, so its bound is ``-value``).

    Raises:
        ConfigError: a key that is not one of the objectives, or a value that is not a
            finite number.
    """
    names = [c.name for c in columns]
    bounds: list[float | None] = [None] * len(columns)
    for key, value in dict(constraints or {}).items():
        if key not in names:
            raise ConfigError(f"explore.constraints: {key!r} is not an objective; constrain "
                              f"one of explore.objectives={names} (add it there first)")
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not np.isfinite(value)):
            raise ConfigError(f"explore.constraints.{key}={value!r}: must be a finite number "
                              f"(the most ms or mJ allowed; for accuracy the least score)")
        j = names.index(key)
        bounds[j] = -float(value) if columns[j].kind == "accuracy" else float(value)
    return bounds


def load_targets(names: Sequence[str], main: str) -> dict[str, Any]:
    """The ``explore.targets`` plugins, built from their configs like ``hardware=<name>``.

    Raises:
        ConfigError: a name that is not an installed plugin, repeated, the run's own
            hardware, or a plugin that cannot be constructed.
    """
    from switchnas.plugins.registry import available_plugins, load_plugin

    installed = sorted(available_plugins())
    out: dict[str, Any] = {}
    for name in names:
        if name not in installed:
            raise ConfigError(f"explore.targets: unknown hardware target {name!r}; "
                              f"installed: {installed}")
        if name in out or name == main:
            raise ConfigError(f"explore.targets: {name!r} is "
                              + ("named twice" if name in out else "the run's own hardware")
                              + "; list each extra target once")
        try:
            out[name] = load_plugin(name)
        except (ValueError, TypeError, ImportError, RuntimeError) as exc:
            raise ConfigError(f"explore.targets: hardware target {name!r}: {exc}") from exc
    return out


def run(ctx: Context) -> Artifact:
    return memo(ctx, "explore", lambda: _run(ctx))


def front_source(ctx: Context) -> Artifact:
    """The stage whose ``measured.json`` holds the run's measured front: ``explore`` when
    ``explore.enabled`` (the default), else ``validate``."""
    return run(ctx) if bool(ctx.cfg.explore.enabled) else validate.run(ctx)


def study_name(supernet: str, train_digest: str, describe: dict[str, Any], *,
               objectives: Sequence[str] = ("latency", "accuracy"),
               targets: Mapping[str, dict[str, Any]] | None = None) -> str:
    """The study every run of this super-network (these weights) on this hardware shares.

    Args:
        supernet, train_digest, describe: the super-network, its weights' digest and the
            hardware's ``describe()``.
        objectives: the loop's column names in order (:func:`objective_columns`); a plain
            run's ``("latency", "accuracy")`` keeps the two-objective name.
        targets: the extra targets' ``describe()`` by name; they are part of the name, so
            another set of objectives or targets never mixes with a plain run's study.
    """
    base = f"explore/{supernet}/{train_digest[:16]}/{describe_key(describe)}"
    if tuple(objectives) == ("latency", "accuracy") and not targets:
        return base
    name = f"{base}/{','.join(objectives)}"
    if targets:
        name += "/" + ",".join(f"{t}={describe_key(d)}" for t, d in sorted(targets.items()))
    return name


def _storage(ctx: Context) -> str:
    value = ctx.cfg.explore.get("storage")
    return str(value) if value else f"sqlite:///{(ctx.run_dir / 'study.db').resolve()}"


def _run(ctx: Context) -> Artifact:
    ecfg = ctx.cfg.explore
    budget, batch = int(ecfg.budget), int(ecfg.batch)
    if batch > budget:
        raise ConfigError(f"explore.batch={batch} must not exceed explore.budget={budget}")
    main = str(ctx.plugin.name)
    target_names = [str(t) for t in (ecfg.get("targets") or [])]
    columns = objective_columns([str(o) for o in ecfg.get("objectives", DEFAULT_OBJECTIVES)],
                                target_names)
    bounds = constraint_bounds(_plain(ecfg.get("constraints")) or {}, columns)
    targets = load_targets(target_names, main)
    plugins: dict[str | None, Any] = {None: ctx.plugin}
    plugins.update(targets)
    for c in columns:
        if c.kind == "energy" and getattr(plugins[c.target], "energy", None) is False:
            name = main if c.target is None else c.target
            raise ConfigError(f"explore.objectives: {c.name!r} needs energy, and hardware "
                              f"plugin {name!r} measures none (energy: false)"
                              + ("; set hardware.energy=true" if c.target is None else ""))
    tr = train.run(ctx)
    desc = ctx.plugin.describe()
    descs = {t: p.describe() for t, p in targets.items()}
    storage = _storage(ctx)
    strategy = strategy_from_config(ctx.cfg.search)
    constraints = upper_bounds(bounds) if any(b is not None for b in bounds) else None
    # more than a plain run: the files say which objectives, targets and constraints
    multi = len(columns) > 2 or bool(targets) or constraints is not None

    def build(tmp: Path) -> dict[str, Any]:
        net = ctx.supernet
        space = net.space
        name = study_name(str(ctx.cfg.supernet.name), tr.digest, desc,
                          objectives=[c.name for c in columns], targets=descs)
        metric_names = [f"-{ctx.task.metric}" if c.kind == "accuracy" else
                        ("latency_ms" if c.kind == "latency" else "energy_mj")
                        + (f"@{c.target}" if c.target else "") for c in columns]
        study = open_study(storage, name, space, ["minimize"] * len(columns),
                           metric_names=metric_names)
        levels: dict[str | None, Any] = {t: study.user_attrs.get(_level_key(t))
                                          for t in plugins}
        batches: list[dict[str, Any]] = []
        energy_seen: set[str | None] = set()

        def evaluate(configs: list[dict[str, Any]]) -> tuple[np.ndarray, list[dict[str, Any]]]:
            results: dict[str | None, Any] = {}
            for j, (t, plugin) in enumerate(plugins.items()):
                level = levels[t]
                res = measure_configs(ctx, net, configs, salt=100 + len(batches) + 7919 * j,
                                      level_ms=float(level) if level else None,
                                      plugin=plugin)
                if level is None and res.protocol.get("reference_level_ms"):
                    levels[t] = float(res.protocol["reference_level_ms"])
                    study.set_user_attr(_level_key(t), levels[t])
                results[t] = res
            _check_energy(columns, results, energy_seen, main)
            # the task's own held-out split (what the evaluate stage scores: val, valid ...)
            scores = np.asarray(ctx.task.evaluate(net, configs, ctx.data), float)
            out = np.full((len(configs), len(columns)), np.nan)
            extras: list[dict[str, Any]] = []
            for i, s in enumerate(scores):
                row, extra = _row(columns, results, i, float(s), main)
                if row is not None:
                    out[i] = row
                    extra["reference_level_ms"] = levels[None]
                extras.append(extra)
            res = results[None]
            batches.append({"n": len(configs), "kept": int(np.isfinite(out).all(axis=1).sum()),
                            "repeatability": res.repeatability, "warnings": res.warnings,
                            "overloaded": bool(res.conditions.get("overloaded", False)),
                            "seconds": res.elapsed_s,
                            **({"targets": {t: {"repeatability": r.repeatability,
                                                "warnings": r.warnings,
                                                "seconds": r.elapsed_s}
                                            for t, r in results.items() if t is not None}}
                               if targets else {})})
            return out, extras

        def features(genomes: np.ndarray) -> np.ndarray:
            return space.one_hot_genomes(genomes)

        try:
            res = run_loop(space, evaluate, budget=budget, batch_size=batch,
                           initial=int(ecfg.initial), encode=features, strategy=strategy,
                           study=study, seed=int(ctx.cfg.seed), progress=ctx.progress,
                           kappa=float(ecfg.kappa), constraints=constraints)
        finally:
            study.close()
        if len(res.objectives) < 2:
            raise MeasurementError(f"explore: only {len(res.objectives)} sub-networks could "
                                   f"be measured on {ctx.plugin.name}")
        front = [int(i) for i in res.front()]
        if not front:
            raise MeasurementError(f"explore: none of the {len(res.objectives)} measured "
                                   f"sub-networks meets explore.constraints="
                                   f"{_plain(ecfg.get('constraints'))}; loosen them")
        configs = [res.configs[i] for i in front]
        lat = res.objectives[front, 0]
        scores, bns = validate.score_with_bn(ctx, net, configs, "test")
        attrs = [res.attrs[i] if i < len(res.attrs) else {} for i in front]
        rows = [{"config": c, "latency_ms": float(la), "accuracy": float(s),
                 "val_accuracy": float(-res.objectives[i, 1]),
                 "latency_low_ms": float(a.get("latency_low_ms", la)),
                 "latency_high_ms": float(a.get("latency_high_ms", la)),
                 "predicted_latency_ms": float(la), "predicted_accuracy": float(s),
                 **_measured(a, main, float(la))}
                for c, la, s, i, a in zip(configs, lat, scores, front, attrs, strict=True)]
        if len(columns) == 2:
            mask = pareto_mask(np.asarray(lat), np.asarray(scores, float))
        else:  # on every objective, with the test split's score
            obj = res.objectives[front].copy()
            obj[:, 1] = -np.asarray(scores, float)
            mask = nondominated_mask(obj)
        for r, m in zip(rows, mask, strict=True):
            r["pareto"] = bool(m)
        feasible = res.feasible
        header: dict[str, Any] = {"metric": ctx.task.metric, "hardware": desc}
        if multi:
            header.update(hardware_key=main, objectives=[c.name for c in columns],
                          targets=descs,
                          constraints=_plain(ecfg.get("constraints")) or {})
        write_json(tmp / "measured.json", {**header, "rows": rows, "study": name})
        every = []
        for i, (c, o) in enumerate(zip(res.configs, res.objectives, strict=True)):
            item: dict[str, Any] = {"config": c, "objectives": list(o)}
            if multi:
                a = res.attrs[i] if i < len(res.attrs) else {}
                item.update(_measured(a, main, float(o[0])), feasible=bool(feasible[i]))
            every.append(item)
        write_json(tmp / "all.json", {"metric": ctx.task.metric, "objectives":
                                      [_column_label(c, ctx.task.metric) for c in columns],
                                      "rows": every})
        write_json(tmp / "history.json", {"rounds": res.rounds, "batches": batches,
                                          "stopped": res.stopped})
        flat = {f"{i}/{k}": v.contiguous() for i, bn in enumerate(bns) for k, v in bn.items()}
        save_file(flat or {"empty": torch.zeros(0)}, str(tmp / "bn_states.safetensors"))
        _plot(tmp / "pareto.png", res.objectives, rows, ctx.task.metric, desc,
              feasible=feasible, n_objectives=len(columns))
        floors = [b["repeatability"].get("noise_floor") for b in batches
                  if _number(b["repeatability"].get("noise_floor"))]
        taus = [b["repeatability"].get("kendall") for b in batches
                if _number(b["repeatability"].get("kendall"))]
        summary = {"evaluations": res.evaluations, "measured": len(res.objectives),
                   "front": len(rows), "pareto": int(mask.sum()), "stopped": res.stopped,
                   "rounds": len(res.rounds), "study": name, "storage": _redact(storage),
                   "noise_floor": float(np.median(floors)) if floors else None,
                   "split_half_kendall": float(np.median(taus)) if taus else None,
                   "overloaded": any(b["overloaded"] for b in batches)}
        if multi:
            summary.update(objectives=[c.name for c in columns],
                           infeasible=int((~feasible).sum()))
        say(f"explore: {res.evaluations} new evaluations ({len(res.objectives)} in the study "
            f"{name!r}), {len(rows)} on the measured front, stopped: {res.stopped}")
        return summary

    config = {**ctx.section("explore", "measure", "seed", "hardware", "search"),
              "describe": desc, "storage": _redact(storage)}
    plain: dict[str, tuple[Any, ...]] = {
        "targets": ([],), "objectives": (list(DEFAULT_OBJECTIVES),), "constraints": (None, {})}
    for key, defaults in plain.items():
        # a plain run's stage key stays what it was before these keys existed
        if key in config["explore"] and config["explore"][key] in defaults:
            del config["explore"][key]
    if descs:
        config["targets_describe"] = descs
    return ctx.artifacts.produce("explore", config=config, inputs={"train": tr.digest},
                                 build=build)


def _plain(node: Any) -> Any:
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node


def _level_key(target: str | None) -> str:
    return "reference_level_ms" if target is None else f"reference_level_ms@{target}"


def _column_label(c: Objective, metric: str) -> str:
    if c.kind == "accuracy":
        return f"-{metric} (held-out split)"
    unit = "latency_ms" if c.kind == "latency" else "energy_mj"
    return unit if c.target is None else f"{unit}@{c.target}"


def _check_energy(columns: Sequence[Objective], results: Mapping[str | None, Any],
                  seen: set[str | None], main: str) -> None:
    """An energy objective on a plugin whose first batch came back without any energy is
    a configuration error (naming the plugin and why it reported none)."""
    for c in columns:
        if c.kind != "energy" or c.target in seen:
            continue
        kept = [m for m in results[c.target].measurements if m is not None]
        if any(m.energy_mj is not None for m in kept):
            seen.add(c.target)
            continue
        if not kept:
            continue
        why = next((str(m.meta["energy_unavailable"]) for m in kept
                    if m.meta.get("energy_unavailable")), "it reports no energy_mj")
        name = main if c.target is None else c.target
        raise ConfigError(f"explore.objectives: {c.name!r} needs energy, and hardware plugin "
                          f"{name!r} measured none ({why}); use a plugin that reports "
                          f"energy_mj (cuda; cpu with energy: true where RAPL is readable) "
                          f"or drop {c.name!r}")


def _row(columns: Sequence[Objective], results: Mapping[str | None, Any], i: int,
         score: float, main: str) -> tuple[list[float] | None, dict[str, Any]]:
    """One sub-network's objectives (``None`` when one is missing) and its extras."""
    ms = {t: r.measurements[i] for t, r in results.items()}
    m = ms[None]
    if m is None:
        return None, {"dropped": results[None].failures[i]}
    latencies = {(main if t is None else t): x.median_ms for t, x in ms.items()
                 if x is not None}
    energies = {(main if t is None else t): float(x.energy_mj) for t, x in ms.items()
                if x is not None and x.energy_mj is not None}
    extra: dict[str, Any] = {"latency_low_ms": float(m.meta.get("ci_low_ms", m.median_ms)),
                             "latency_high_ms": float(m.meta.get("ci_high_ms", m.median_ms))}
    if len(results) > 1 or energies:
        extra.update(latencies=latencies, energies_mj=energies)
    row: list[float] = []
    for c in columns:
        key = main if c.target is None else c.target
        if c.kind == "accuracy":
            row.append(-score)
            continue
        value = (latencies if c.kind == "latency" else energies).get(key)
        if value is None:
            why = results[c.target].failures[i] or "no energy reported"
            return None, {"dropped": f"{c.name}: {why}"}
        row.append(float(value))
    return row, extra


def _measured(attrs: Mapping[str, Any], main: str, latency_ms: float) -> dict[str, Any]:
    """A row's per-target latencies and energies (a plain study's rows: the main latency)."""
    out: dict[str, Any] = {"latencies": dict(attrs.get("latencies") or {main: latency_ms})}
    energies = dict(attrs.get("energies_mj") or {})
    if energies:
        out["energies_mj"] = energies
        if main in energies:
            out["energy_mj"] = float(energies[main])
    return out


def _redact(url: str) -> str:
    """A storage URL without its password (stage manifests are shared)."""
    if "://" in url and "@" in url.split("://", 1)[1]:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


def _plot(path: Path, objectives: np.ndarray, rows: list[dict[str, Any]], metric: str,
          desc: dict[str, Any], *, feasible: np.ndarray | None = None,
          n_objectives: int = 2) -> None:
    """Latency on the run's hardware against the score; with constraints, violating
    points as crosses; with more than two objectives, the points Pareto on all of them
    ringed (a step line only connects a two-objective front)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    ok = np.all(np.isfinite(objectives), axis=1)
    feas = np.ones(len(objectives), bool) if feasible is None else np.asarray(feasible, bool)
    ax.plot(objectives[ok & feas, 0], -objectives[ok & feas, 1], ".", color="0.6",
            label=f"measured ({metric}, held-out split)")
    if (ok & ~feas).any():
        ax.plot(objectives[ok & ~feas, 0], -objectives[ok & ~feas, 1], "x", color="0.75",
                ms=4, label="measured, violates explore.constraints")
    lat = np.asarray([r["latency_ms"] for r in rows])
    err = np.asarray([[r["latency_ms"] - r["latency_low_ms"] for r in rows],
                      [r["latency_high_ms"] - r["latency_ms"] for r in rows]])
    ax.errorbar(lat, [r["accuracy"] for r in rows], xerr=np.clip(err, 0, None), fmt="s",
                color="C1", ms=4, capsize=2, label="measured front (test, 95 % interval)")
    par = sorted((r for r in rows if r["pareto"]), key=lambda r: r["latency_ms"])
    if n_objectives == 2:
        ax.step([r["latency_ms"] for r in par], [r["accuracy"] for r in par], where="post",
                color="C1", lw=1)
    elif par:
        ax.plot([r["latency_ms"] for r in par], [r["accuracy"] for r in par], "o", mfc="none",
                color="C3", ms=9, label=f"Pareto on all {n_objectives} objectives (test)")
    ax.set_xlabel(f"latency (ms) on {desc.get('name', desc.get('plugin', 'hardware'))}")
    ax.set_ylabel(metric)
    ax.set_title("Sub-networks measured by the search loop")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x)
