"""Stage ``family``: up to K members spread over the measured Pareto front's widest latency
range, no two of them within each other's measurement interval. The front is ``explore``'s
(the search loop, by default) or ``validate``'s (``explore.enabled=false``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from switchnas.search.family import pick_family

from ..artifacts import Artifact
from ..context import Context
from ._util import memo, read_json, write_json
from .explore import front_source

__all__ = ["run"]

log = logging.getLogger("switchnas")


def run(ctx: Context) -> Artifact:
    return memo(ctx, "family", lambda: _run(ctx))


def _run(ctx: Context) -> Artifact:
    va = front_source(ctx)

    def build(tmp: Path) -> dict[str, Any]:
        measured = read_json(va / "measured.json")
        rows = measured["rows"]
        lat = np.asarray([r["latency_ms"] for r in rows])
        # members whose measurement intervals overlap cannot be told apart: keep one
        idx = pick_family(lat, np.asarray([r["accuracy"] for r in rows]), int(ctx.cfg.family.k),
                          low_ms=np.asarray([r.get("latency_low_ms", r["latency_ms"])
                                             for r in rows]),
                          high_ms=np.asarray([r.get("latency_high_ms", r["latency_ms"])
                                              for r in rows]),
                          accuracy_tolerance=float(ctx.cfg.family.get("accuracy_tolerance", 0)))
        members = [{"id": f"m{j}", "validated_index": int(i), **rows[i]}
                   for j, i in enumerate(idx)]
        k = int(ctx.cfg.family.k)
        if len(members) < k:
            log.warning("family: the measured Pareto front has %d point(s) whose latency "
                        "intervals do not overlap, fewer than family.k=%d; measure more of "
                        "the predicted front (validate.n) or more rounds (measure.rounds) "
                        "for a larger family", len(members), k)
        write_json(tmp / "family.json", {"metric": measured["metric"],
                                         "hardware": measured["hardware"], "members": members})
        span = members[-1]["latency_ms"] / members[0]["latency_ms"] if members else 1.0
        return {"k": len(members), "latency_span": round(float(span), 4)}

    return ctx.artifacts.produce("family", config=ctx.section("family"),
                                 inputs={va.manifest["stage"]: va.digest}, build=build)
