"""Stage ``export``: the family as one switchable bundle in ``<run dir>/bundle``
(``manifest.json`` + ``weights.safetensors``, see ``switchnas.runtime``)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from safetensors.torch import load_file

from ..artifacts import Artifact
from ..context import Context
from . import family, train
from ._util import memo, read_json
from .explore import front_source

__all__ = ["run"]


def run(ctx: Context) -> Artifact:
    return memo(ctx, "export", lambda: _run(ctx))


def _run(ctx: Context) -> Artifact:
    fa, va, tr = family.run(ctx), front_source(ctx), train.run(ctx)
    dirname = str(ctx.cfg.export.dir)

    def build(tmp: Path) -> dict[str, Any]:
        from switchnas.runtime import write_bundle

        fam = read_json(fa / "family.json")
        bn_flat = load_file(str(va / "bn_states.safetensors"))
        members = []
        for m in fam["members"]:
            prefix = f"{m['validated_index']}/"
            bn = {k[len(prefix):]: v for k, v in bn_flat.items() if k.startswith(prefix)}
            entry = {"id": m["id"], "config": m["config"], "accuracy": m["accuracy"],
                     "latency_ms": m["latency_ms"],
                     "predicted_latency_ms": m["predicted_latency_ms"]}
            if bn:
                entry["bn_state"] = bn
            members.append(entry)
        staging = tmp / "_bundle"
        write_bundle(staging, supernet=ctx.supernet, members=members,
                     hardware={**fam["hardware"], "key": ctx.plugin.name},
                     extra={"metric": fam["metric"], "train_digest": tr.digest,
                            "supernet": str(ctx.cfg.supernet.name)})
        for p in staging.iterdir():
            shutil.move(str(p), tmp / p.name)
        staging.rmdir()
        size = sum(p.stat().st_size for p in tmp.iterdir() if p.is_file())
        return {"members": len(members), "bytes": size}

    return ctx.artifacts.produce("export", config=ctx.section("export"),
                                 inputs={"family": fa.digest, va.manifest["stage"]: va.digest,
                                         "train": tr.digest},
                                 build=build, dirname=dirname)
