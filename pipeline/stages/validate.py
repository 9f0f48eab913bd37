"""Stage ``validate``: measure the predicted front for real (latency on the plugin,
score on the ``test`` split) and keep the measured Pareto front. Measurements are
recorded as trials of an Optuna study in ``study.db`` (SQLite); a Pareto plot with
predicted and measured points is saved as ``pareto.png``."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm

from switchnas.search.pareto import pareto_mask
from switchnas.search.study import record_measurements

from ..artifacts import Artifact
from ..context import ConfigError, Context
from . import search, train
from ._util import memo, read_json, workload, write_json

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
        configs = [r["config"] for r in picked]
        lat = []
        for cfg in tqdm(configs, desc=f"validate latency ({ctx.plugin.name})",
                        disable=not ctx.progress, leave=False):
            module, x = workload(net, cfg)
            lat.append(ctx.plugin.measure(module, x).median_ms)
        scores, bns = score_with_bn(ctx, net, configs, "test")
        rows = [{"config": c, "latency_ms": float(la), "accuracy": float(s),
                 "predicted_latency_ms": r["latency_ms"], "predicted_accuracy": r["accuracy"]}
                for c, la, s, r in zip(configs, lat, scores, picked, strict=True)]
        mask = pareto_mask(np.asarray(lat), scores)
        for r, m in zip(rows, mask, strict=True):
            r["pareto"] = bool(m)
        write_json(tmp / "measured.json", {"metric": ctx.task.metric, "hardware": desc,
                                           "rows": rows})
        flat = {f"{i}/{k}": v.contiguous() for i, bn in enumerate(bns) for k, v in bn.items()}
        save_file(flat or {"empty": torch.zeros(0)}, str(tmp / "bn_states.safetensors"))
        n_trials = record_measurements(tmp / "study.db", "validate", net.space,
                                       [{k: v for k, v in r.items()} for r in rows])
        _plot(tmp / "pareto.png", front, rows, ctx.task.metric, desc)
        return {"measured": len(rows), "pareto": int(mask.sum()), "trials": n_trials}

    return ctx.artifacts.produce("validate", config={**ctx.section("validate", "seed",
                                                                   "hardware"),
                                                     "describe": desc},
                                 inputs={"search": sr.digest, "train": tr.digest}, build=build)


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
    ax.plot([r["latency_ms"] for r in rows], [r["accuracy"] for r in rows], "s", color="C1",
            label="measured")
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
