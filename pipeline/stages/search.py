"""Stage ``search``: the predicted Pareto front, found by a search strategy scoring
candidates in batches against the two predictors, under optional constraints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from switchnas.search.strategies import InfeasibleConstraintError, SearchStrategy

from ..artifacts import Artifact
from ..context import ConfigError, Context, instantiate_config
from . import fit
from ._util import memo, write_json

__all__ = ["run"]


def run(ctx: Context) -> Artifact:
    return memo(ctx, "search", lambda: _run(ctx))


def _run(ctx: Context) -> Artifact:
    ft = fit.run(ctx)
    strategy: SearchStrategy = instantiate_config(ctx.cfg.search,
                                                  f"search {ctx.cfg.search.get('name')}")

    def build(tmp: Path) -> dict[str, Any]:
        net = ctx.new_supernet()
        space = net.space
        models = fit.load_predictors(ft)
        lat, acc = models["latency"], models["accuracy"]

        def score(configs: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
            Xs = fit.encodings(net, configs)
            return lat.predict(Xs[lat.encoding]), acc.predict(Xs[acc.encoding])

        max_lat = ctx.cfg.search.get("max_latency_ms")
        if max_lat is not None:
            fastest = float(score([space.smallest()])[0][0])
            if fastest > float(max_lat):
                raise ConfigError(
                    f"search.max_latency_ms={max_lat} is infeasible: the smallest sub-network "
                    f"is predicted at {fastest:.3g} ms on this hardware")
        try:
            res = strategy.run(space, score, seed=int(ctx.cfg.seed), progress=ctx.progress)
        except InfeasibleConstraintError as exc:
            raise ConfigError(str(exc)) from exc
        front = res.front
        rows = [{"config": res.configs[i], "latency_ms": float(res.latency_ms[i]),
                 "accuracy": float(res.accuracy[i])} for i in front]
        write_json(tmp / "front.json", {"rows": rows, "evaluated": res.evaluations,
                                        "history": res.history})
        return {"evaluated": res.evaluations, "front": len(rows),
                "latency_ms": [rows[0]["latency_ms"], rows[-1]["latency_ms"]]}

    return ctx.artifacts.produce("search", config=ctx.section("search", "seed"),
                                 inputs={"fit": ft.digest}, build=build)
