"""Stage ``evaluate``: the task's score (top-1, BLEU ...) of M random sub-networks on the
held-out ``val`` split, after batch-norm recalibration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..artifacts import Artifact
from ..context import ConfigError, Context
from . import train
from ._util import memo, unique_sample, write_json

__all__ = ["run"]


def run(ctx: Context) -> Artifact:
    return memo(ctx, "evaluate", lambda: _run(ctx))


def _run(ctx: Context) -> Artifact:
    n = int(ctx.cfg.evaluate.n)
    if n < 4:
        raise ConfigError(f"evaluate.n={n}: at least 4 sub-networks are needed to fit a predictor")
    tr = train.run(ctx)

    def build(tmp: Path) -> dict[str, Any]:
        net = ctx.supernet
        configs = unique_sample(net.space, n, ctx.rng(2))
        scores = ctx.task.evaluate(net, configs, ctx.data)
        rows = [{"config": c, "score": float(s)} for c, s in zip(configs, scores, strict=True)]
        write_json(tmp / "accuracy.json", {"metric": ctx.task.metric, "split": "val",
                                           "rows": rows})
        return {"n": len(rows), "metric": ctx.task.metric, "min": float(min(scores)),
                "max": float(max(scores))}

    return ctx.artifacts.produce("evaluate", config=ctx.section("evaluate", "seed"),
                                 inputs={"train": tr.digest}, build=build)
