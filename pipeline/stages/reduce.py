"""Stage ``reduce``: a reduced design space from the validated Pareto front (Dynamic-HAT),
written as ``reduce/space.json`` for ``supernet.space_file=`` (fine-tuning and search)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from switchnas.search.reduce import allowed_choices, write_space_file

from ..artifacts import Artifact
from ..context import Context
from . import validate
from ._util import memo, read_json

__all__ = ["run"]


def run(ctx: Context) -> Artifact:
    return memo(ctx, "reduce", lambda: _run(ctx))


def _run(ctx: Context) -> Artifact:
    va = validate.run(ctx)
    rcfg = ctx.cfg.reduce

    def build(tmp: Path) -> dict[str, Any]:
        space = ctx.new_supernet().space
        rows = read_json(va / "measured.json")["rows"]
        configs = [r["config"] for r in rows if r["pareto"] or not rcfg.pareto_only]
        allowed = allowed_choices(space, configs, per_position=bool(rcfg.per_position),
                                  keep=list(rcfg.keep))
        reduced = space.restrict(allowed)
        write_space_file(tmp / "space.json", reduced,
                         source={"validate": va.digest, "configs": len(configs)})
        before, after = space.size(), reduced.size()
        print(f"reduce: {len(configs)} Pareto sub-networks keep "
              f"{after:.3g} of {before:.3g} configs ({after / before:.2e})")
        return {"configs": len(configs), "size_before": before, "size_after": after,
                "allowed": {k: sorted({x for pos in v for x in pos}) for k, v in allowed.items()}}

    return ctx.artifacts.produce("reduce", config=ctx.section("reduce"),
                                 inputs={"validate": va.digest}, build=build)
