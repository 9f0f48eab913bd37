"""Stage ``reduce``: a reduced design space from the measured Pareto front (Dynamic-HAT),
written as ``reduce/space.json`` for ``supernet.space_file=`` (fine-tuning and search)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from switchnas.search.pareto import nondominated_ranks
from switchnas.search.reduce import allowed_choices_from_fronts, write_space_file

from ..artifacts import Artifact
from ..context import Context
from ._util import memo, read_json, say
from .explore import front_source

__all__ = ["run"]

log = logging.getLogger("switchnas")


def run(ctx: Context) -> Artifact:
    return memo(ctx, "reduce", lambda: _run(ctx))


def _run(ctx: Context) -> Artifact:
    va = front_source(ctx)
    rcfg = ctx.cfg.reduce

    def build(tmp: Path) -> dict[str, Any]:
        space = ctx.new_supernet().space
        if (va / "all.json").is_file():  # explore: every sub-network the loop measured
            rows = [{"config": r["config"], "latency_ms": r["objectives"][0],
                     "accuracy": -r["objectives"][1]} for r in read_json(va / "all.json")["rows"]
                    if all(np.isfinite(r["objectives"]))]
        else:
            rows = read_json(va / "measured.json")["rows"]
        if rcfg.pareto_only:
            # successive non-dominated layers of the measured points, added only while the
            # reduced space is smaller than reduce.min_size
            ranks = nondominated_ranks(np.array([[r["latency_ms"], -r["accuracy"]]
                                                 for r in rows]))
            fronts = [[r["config"] for r, k in zip(rows, ranks, strict=True) if k == f]
                      for f in range(int(ranks.max()) + 1)]
        else:
            fronts = [[r["config"] for r in rows]]
        allowed, used = allowed_choices_from_fronts(
            space, fronts, min_size=float(rcfg.min_size),
            per_position=bool(rcfg.per_position), keep=list(rcfg.keep))
        configs = [c for f in fronts[:used] for c in f]
        reduced = space.restrict(allowed)
        write_space_file(tmp / "space.json", reduced,
                         source={va.manifest["stage"]: va.digest, "configs": len(configs),
                                 "fronts": used})
        before, after = space.size(), reduced.size()
        widened = (f" (the Pareto front alone spans fewer than reduce.min_size="
                   f"{rcfg.min_size:g}: {used} fronts used)" if rcfg.pareto_only and used > 1
                   else "")
        say(f"reduce: {len(configs)} measured sub-networks keep "
            f"{after:.3g} of {before:.3g} configs ({after / before:.2e}){widened}")
        if after < float(rcfg.min_size):
            log.warning("reduce: the reduced space holds only %.3g configs, fewer than "
                        "reduce.min_size=%g, even with every validated sub-network; validate "
                        "more (validate.n) for a wider space", after, rcfg.min_size)
        return {"configs": len(configs), "size_before": before, "size_after": after,
                "fronts": used,
                "allowed": {k: sorted({x for pos in v for x in pos}) for k, v in allowed.items()}}

    return ctx.artifacts.produce("reduce", config=ctx.section("reduce"),
                                 inputs={va.manifest["stage"]: va.digest}, build=build)
