"""Stage ``family``: up to K members spread over the measured Pareto front's widest latency
range, no two of them within each other's measurement interval. The front is ``explore``'s
(the search loop, by default) or ``validate``'s (``explore.enabled=false``).

When ``explore`` minimised more than latency and accuracy (``explore.objectives``: latency
on other targets, energy), the members are chosen among the points that are Pareto-good on
all those objectives together, and ``family.json`` lists each member's per-target
``latencies`` (and ``energies_mj`` where measured)."""

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

__all__ = ["extra_columns", "run"]

log = logging.getLogger("switchnas")


def run(ctx: Context) -> Artifact:
    return memo(ctx, "family", lambda: _run(ctx))


def extra_columns(measured: dict[str, Any]) -> np.ndarray | None:
    """The minimised columns of a ``measured.json`` beyond the run's latency and accuracy:
    one per other ``explore.objectives`` entry (``latency@t`` from the rows' ``latencies``,
    ``energy``/``energy@t`` from ``energies_mj``); ``None`` for a plain two-objective front.

    Raises:
        ValueError: a row lacks a value the objectives name.
    """
    names = [n for n in measured.get("objectives") or [] if n not in ("latency", "accuracy")]
    if not names:
        return None
    main = measured.get("hardware_key") or measured["hardware"].get("plugin")
    out = np.empty((len(measured["rows"]), len(names)))
    for j, name in enumerate(names):
        kind, _, target = name.partition("@")
        key = target or main
        table = "latencies" if kind == "latency" else "energies_mj"
        for i, r in enumerate(measured["rows"]):
            value = (r.get(table) or {}).get(key)
            if value is None:
                raise ValueError(f"family: measured row {i} has no {table}[{key!r}] for the "
                                 f"objective {name!r}")
            out[i, j] = float(value)
    return out


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
                          accuracy_tolerance=float(ctx.cfg.family.get("accuracy_tolerance", 0)),
                          extra_objectives=extra_columns(measured))
        members = [{"id": f"m{j}", "validated_index": int(i), **rows[i],
                    "latencies": dict(rows[i].get("latencies") or {
                        str(measured["hardware"].get("plugin", "hardware")):
                        rows[i]["latency_ms"]})}
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
