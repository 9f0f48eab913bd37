"""Stage ``validate``: measure the predicted front for real (latency on the plugin,
score on the ``test`` split) and keep the measured Pareto front. Measurements are
recorded as trials of the persistent Optuna study ``validate`` (``validate.storage``;
SQLite ``<run dir>/study.db`` by default, outside the stage's folder, so measurements
accumulate across runs instead of being replaced when the stage is rebuilt); a Pareto plot
with predicted and measured points is saved as ``pareto.png``."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from switchnas.plugins.measure import MeasurementError
from switchnas.predictors.dataset import MeasurementDataset
from switchnas.search.pareto import pareto_mask
from switchnas.search.study import SpaceMismatchError, record_measurements

from ..artifacts import Artifact
from ..context import ConfigError, Context
from . import profile, search, train
from ._measure import measure_configs
from ._util import memo, read_json, write_json

__all__ = ["run", "score_with_bn"]


def run(ctx: Context) -> Artifact:
    return memo(ctx, "validate", lambda: _run(ctx))


def _spread(rows: list[dict[str, Any]], n: int) -> list[int]:
    """Indices of ``n`` front rows evenly spread over the predicted latency range."""
    if len(rows) <= n:
        return list(range(len(rows)))
    lat = np.asarray([r["latency_ms"] for r in rows])
    picks: list[int] = []
    for t in np.linspace(lat.min(), lat.max(), n):
        free = [i for i in range(len(rows)) if i not in picks]
        picks.append(min(free, key=lambda i: abs(lat[i] - t)))
    return sorted(picks)


def score_with_bn(ctx: Context, net: Any, configs: list[dict[str, Any]], split: str
                  ) -> tuple[np.ndarray, list[dict[str, torch.Tensor]]]:
    """The task's score on ``split`` and, where the task recalibrates BN, each config's
    BN statistics."""
    params = inspect.signature(ctx.task.evaluate).parameters
    if "return_bn" in params and "split" in params:
        scores, bns = ctx.task.evaluate(net, configs, ctx.data, split=split, return_bn=True)
        return np.asarray(scores, float), bns
    if "split" in params:
        return np.asarray(ctx.task.evaluate(net, configs, ctx.data, split=split), float), [
            {} for _ in configs]
    return np.asarray(ctx.task.evaluate(net, configs, ctx.data), float), [{} for _ in configs]


def _run(ctx: Context) -> Artifact:
    sr, tr = search.run(ctx), train.run(ctx)
    n = int(ctx.cfg.validate.n)
    if n < 1:
        raise ConfigError(f"validate.n={n}: must be >= 1")
    desc = ctx.plugin.describe()

    def build(tmp: Path) -> dict[str, Any]:
        net = ctx.supernet
        front = read_json(sr / "front.json")["rows"]
        picked = [front[i] for i in _spread(front, n)]
        # the candidates are measured together, interleaved, as one batch, in the
        # profile's units (same reference sub-network, the profile's level)
        level = MeasurementDataset.load(profile.run(ctx) / "latency.json").meta.get(
            "protocol", {}).get("reference_level_ms")
        result = measure_configs(ctx, net, [r["config"] for r in picked], salt=2,
                                 level_ms=float(level) if level else None)
        kept = [i for i, m in enumerate(result.measurements) if m is not None]
        if not kept:
            raise MeasurementError(f"validate: none of the {len(picked)} candidates could be "
                               f"measured on {ctx.plugin.name}: {result.failures[:3]}")
        picked = [picked[i] for i in kept]
        meas = [result.measurements[i] for i in kept]
        configs = [r["config"] for r in picked]
        lat = [m.median_ms for m in meas]  # type: ignore[union-attr]
        write_json(tmp / "batch.json", result.to_dict())
        scores, bns = score_with_bn(ctx, net, configs, "test")
        rows = [{"config": c, "latency_ms": float(la), "accuracy": float(s),
                 "latency_low_ms": float(m.meta.get("ci_low_ms", la)),  # type: ignore[union-attr]
                 "latency_high_ms": float(m.meta.get("ci_high_ms", la)),  # type: ignore[union-attr]
                 "predicted_latency_ms": r["latency_ms"], "predicted_accuracy": r["accuracy"]}
                for c, la, s, r, m in zip(configs, lat, scores, picked, meas, strict=True)]
        mask = pareto_mask(np.asarray(lat), scores)
        for r, m in zip(rows, mask, strict=True):
            r["pareto"] = bool(m)
        write_json(tmp / "measured.json", {"metric": ctx.task.metric, "hardware": desc,
                                           "rows": rows})
        flat = {f"{i}/{k}": v.contiguous() for i, bn in enumerate(bns) for k, v in bn.items()}
        save_file(flat or {"empty": torch.zeros(0)}, str(tmp / "bn_states.safetensors"))
        n_trials = _record(ctx, net.space, rows)
        _plot(tmp / "pareto.png", front, rows, ctx.task.metric, desc)
        return {"measured": len(rows), "dropped": len(result.measurements) - len(rows),
                "pareto": int(mask.sum()), "trials": n_trials,
                "repeatability": result.repeatability, "warnings": result.warnings,
                "overloaded": bool(result.conditions.get("overloaded", False))}

    return ctx.artifacts.produce("validate", config={**ctx.section("validate", "measure",
                                                                   "seed", "hardware"),
                                                     "describe": desc},
                                 inputs={"search": sr.digest, "train": tr.digest}, build=build)


def _record(ctx: Context, space: Any, rows: list[dict[str, Any]]) -> int:
    """Add the measured rows to the run's persistent study; returns the sub-networks it
    holds. A study created for another space (a reduced one, say) is left alone: the rows
    go to a study named after this space."""
    value = ctx.cfg.validate.get("storage")
    storage = str(value) if value else str(ctx.run_dir / "study.db")
    names = ["latency_ms", str(ctx.task.metric)]
    try:
        return record_measurements(storage, "validate", space, rows, metric_names=names)
    except SpaceMismatchError:
        import hashlib
        import json

        digest = hashlib.sha256(json.dumps(space.to_dict(), sort_keys=True).encode())
        return record_measurements(storage, f"validate-{digest.hexdigest()[:12]}", space, rows,
                                   metric_names=names)


def _plot(path: Path, front: list[dict[str, Any]], rows: list[dict[str, Any]], metric: str,
          desc: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    ax.plot([r["latency_ms"] for r in front], [r["accuracy"] for r in front], ".",
            color="0.6", label="predicted front")
    ax.plot([r["predicted_latency_ms"] for r in rows], [r["predicted_accuracy"] for r in rows],
            "o", mfc="none", color="C0", label="predicted (validated members)")
    lat = np.asarray([r["latency_ms"] for r in rows])
    err = np.asarray([[r["latency_ms"] - r.get("latency_low_ms", r["latency_ms"]) for r in rows],
                      [r.get("latency_high_ms", r["latency_ms"]) - r["latency_ms"] for r in rows]])
    ax.errorbar(lat, [r["accuracy"] for r in rows], xerr=np.clip(err, 0, None), fmt="s",
                color="C1", ms=4, capsize=2, label="measured (95 % interval)")
    par = sorted((r for r in rows if r["pareto"]), key=lambda r: r["latency_ms"])
    ax.step([r["latency_ms"] for r in par], [r["accuracy"] for r in par], where="post",
            color="C1", lw=1)
    ax.set_xlabel(f"latency (ms) on {desc.get('name', desc.get('plugin', 'hardware'))}")
    ax.set_ylabel(metric)
    ax.set_title("Predicted vs measured Pareto front")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
