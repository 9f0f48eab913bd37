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
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from switchnas.plugins.measure import MeasurementError
from switchnas.predictors.dataset import describe_key
from switchnas.search.loop import run_loop
from switchnas.search.pareto import pareto_mask
from switchnas.search.study import open_study

from ..artifacts import Artifact
from ..context import ConfigError, Context
from . import train, validate
from ._measure import measure_configs
from ._util import memo, say, write_json
from .search import strategy_from_config

__all__ = ["front_source", "run", "study_name"]

log = logging.getLogger("switchnas")


def run(ctx: Context) -> Artifact:
    return memo(ctx, "explore", lambda: _run(ctx))


def front_source(ctx: Context) -> Artifact:
    """The stage whose ``measured.json`` holds the run's measured front: ``explore`` when
    ``explore.enabled`` (the default), else ``validate``."""
    return run(ctx) if bool(ctx.cfg.explore.enabled) else validate.run(ctx)


def study_name(supernet: str, train_digest: str, describe: dict[str, Any]) -> str:
    """The study every run of this super-network (these weights) on this hardware shares."""
    return f"explore/{supernet}/{train_digest[:16]}/{describe_key(describe)}"


def _storage(ctx: Context) -> str:
    value = ctx.cfg.explore.get("storage")
    return str(value) if value else f"sqlite:///{(ctx.run_dir / 'study.db').resolve()}"


def _run(ctx: Context) -> Artifact:
    ecfg = ctx.cfg.explore
    budget, batch = int(ecfg.budget), int(ecfg.batch)
    if batch > budget:
        raise ConfigError(f"explore.batch={batch} must not exceed explore.budget={budget}")
    tr = train.run(ctx)
    desc = ctx.plugin.describe()
    storage = _storage(ctx)
    strategy = strategy_from_config(ctx.cfg.search)

    def build(tmp: Path) -> dict[str, Any]:
        net = ctx.supernet
        space = net.space
        name = study_name(str(ctx.cfg.supernet.name), tr.digest, desc)
        study = open_study(storage, name, space, ["minimize", "minimize"])
        level = study.user_attrs.get("reference_level_ms")
        batches: list[dict[str, Any]] = []

        def evaluate(configs: list[dict[str, Any]]) -> tuple[np.ndarray, list[dict[str, Any]]]:
            nonlocal level
            res = measure_configs(ctx, net, configs, salt=100 + len(batches),
                                  level_ms=float(level) if level else None)
            if level is None:
                level = res.protocol.get("reference_level_ms")
                if level:
                    study.set_user_attr("reference_level_ms", float(level))
            # the task's own held-out split (what the evaluate stage scores: val, valid ...)
            scores = np.asarray(ctx.task.evaluate(net, configs, ctx.data), float)
            out = np.full((len(configs), 2), np.nan)
            extras: list[dict[str, Any]] = []
            for i, (m, s) in enumerate(zip(res.measurements, scores, strict=True)):
                if m is None:
                    extras.append({"dropped": res.failures[i]})
                    continue
                out[i] = (m.median_ms, -float(s))
                extras.append({"latency_low_ms": float(m.meta.get("ci_low_ms", m.median_ms)),
                               "latency_high_ms": float(m.meta.get("ci_high_ms", m.median_ms)),
                               "reference_level_ms": level})
            batches.append({"n": len(configs), "kept": int(np.isfinite(out[:, 0]).sum()),
                            "repeatability": res.repeatability, "warnings": res.warnings,
                            "overloaded": bool(res.conditions.get("overloaded", False)),
                            "seconds": res.elapsed_s})
            return out, extras

        def features(genomes: np.ndarray) -> np.ndarray:
            return space.one_hot_genomes(genomes)

        try:
            res = run_loop(space, evaluate, budget=budget, batch_size=batch,
                           initial=int(ecfg.initial), encode=features, strategy=strategy,
                           study=study, seed=int(ctx.cfg.seed), progress=ctx.progress,
                           kappa=float(ecfg.kappa))
        finally:
            study.close()
        if len(res.objectives) < 2:
            raise MeasurementError(f"explore: only {len(res.objectives)} sub-networks could "
                                   f"be measured on {ctx.plugin.name}")
        front = [int(i) for i in res.front()]
        configs = [res.configs[i] for i in front]
        lat = res.objectives[front, 0]
        scores, bns = validate.score_with_bn(ctx, net, configs, "test")
        attrs = [res.attrs[i] if i < len(res.attrs) else {} for i in front]
        rows = [{"config": c, "latency_ms": float(la), "accuracy": float(s),
                 "val_accuracy": float(-res.objectives[i, 1]),
                 "latency_low_ms": float(a.get("latency_low_ms", la)),
                 "latency_high_ms": float(a.get("latency_high_ms", la)),
                 "predicted_latency_ms": float(la), "predicted_accuracy": float(s)}
                for c, la, s, i, a in zip(configs, lat, scores, front, attrs, strict=True)]
        mask = pareto_mask(np.asarray(lat), np.asarray(scores, float))
        for r, m in zip(rows, mask, strict=True):
            r["pareto"] = bool(m)
        write_json(tmp / "measured.json", {"metric": ctx.task.metric, "hardware": desc,
                                           "rows": rows, "study": name})
        write_json(tmp / "all.json", {"metric": ctx.task.metric, "objectives":
                                      ["latency_ms", f"-{ctx.task.metric} (held-out split)"],
                                      "rows": [{"config": c, "objectives": list(o)}
                                               for c, o in zip(res.configs, res.objectives,
                                                               strict=True)]})
        write_json(tmp / "history.json", {"rounds": res.rounds, "batches": batches,
                                          "stopped": res.stopped})
        flat = {f"{i}/{k}": v.contiguous() for i, bn in enumerate(bns) for k, v in bn.items()}
        save_file(flat or {"empty": torch.zeros(0)}, str(tmp / "bn_states.safetensors"))
        _plot(tmp / "pareto.png", res.objectives, rows, ctx.task.metric, desc)
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
        say(f"explore: {res.evaluations} new evaluations ({len(res.objectives)} in the study "
            f"{name!r}), {len(rows)} on the measured front, stopped: {res.stopped}")
        return summary

    config = {**ctx.section("explore", "measure", "seed", "hardware", "search"),
              "describe": desc, "storage": _redact(storage)}
    return ctx.artifacts.produce("explore", config=config, inputs={"train": tr.digest},
                                 build=build)


def _redact(url: str) -> str:
    """A storage URL without its password (stage manifests are shared)."""
    if "://" in url and "@" in url.split("://", 1)[1]:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


def _plot(path: Path, objectives: np.ndarray, rows: list[dict[str, Any]], metric: str,
          desc: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    ok = np.all(np.isfinite(objectives), axis=1)
    ax.plot(objectives[ok, 0], -objectives[ok, 1], ".", color="0.6",
            label=f"measured ({metric}, held-out split)")
    lat = np.asarray([r["latency_ms"] for r in rows])
    err = np.asarray([[r["latency_ms"] - r["latency_low_ms"] for r in rows],
                      [r["latency_high_ms"] - r["latency_ms"] for r in rows]])
    ax.errorbar(lat, [r["accuracy"] for r in rows], xerr=np.clip(err, 0, None), fmt="s",
                color="C1", ms=4, capsize=2, label="measured front (test, 95 % interval)")
    par = sorted((r for r in rows if r["pareto"]), key=lambda r: r["latency_ms"])
    ax.step([r["latency_ms"] for r in par], [r["accuracy"] for r in par], where="post",
            color="C1", lw=1)
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
