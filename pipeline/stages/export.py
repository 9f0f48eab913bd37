"""Stage ``export``: the family as one switchable bundle in ``<run dir>/bundle``
(``manifest.json`` + ``weights.safetensors``, see ``switchnas.runtime``), with an ``io``
section that says what input the members take (image normalisation and resolution,
labels; or the translation vocabularies, written as bundle files, and decoding settings),
so that ``bundle.classify(image)`` / ``bundle.translate(text)`` work on a device."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from safetensors.torch import load_file

from ..artifacts import Artifact
from ..context import Context
from . import family, train
from ._util import memo, read_json
from .explore import front_source

__all__ = ["bundle_io", "run"]

log = logging.getLogger(__name__)


def bundle_io(data: Any, task: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The bundle's ``io`` request for a run's data (``None`` when the data does not say
    how its inputs were made, with a warning).

    Translation data (``src_dict``/``tgt_dict``): its word vocabularies, or its shared
    sentencepiece model, and the task's ``beam``. Image data: its ``mean``/``std`` (per
    channel, pixels in [0, 1]) and ``class_names``.

    Args:
        data: the run's data object.
        task: the super-network's task config (``beam`` is read from it).

    Returns:
        An argument for ``write_bundle(io=...)``, or ``None``.
    """
    from switchnas.runtime import image_classification_io, translation_io

    src, tgt = getattr(data, "src_dict", None), getattr(data, "tgt_dict", None)
    if src is not None and tgt is not None:
        beam = int((task or {}).get("beam", 5))
        if isinstance(getattr(src, "itos", None), list) and isinstance(
                getattr(tgt, "itos", None), list):
            return translation_io(src_vocab=src.itos, tgt_vocab=tgt.itos, beam=beam)
        model = getattr(src, "path", None)
        if src is tgt and model is not None:
            return translation_io(sentencepiece_model=model, beam=beam)
    else:
        mean, std = getattr(data, "mean", None), getattr(data, "std", None)
        if mean is not None and std is not None:
            return image_classification_io(mean=mean, std=std,
                                           labels=getattr(data, "class_names", None))
    log.warning("export: the data (%s) does not say how its inputs were made; the bundle "
                "has no io section, so bundle.classify/translate will refuse it",
                type(data).__name__)
    return None


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
            # the bundle's per-hardware latency table: every target explore measured
            for key, src in (("latency", "latencies"), ("energy_mj", "energy_mj")):
                if m.get(src):
                    entry[key] = m[src]
            if bn:
                entry["bn_state"] = bn
            members.append(entry)
        staging = tmp / "_bundle"
        task = ctx.section("supernet.task")["supernet.task"]
        write_bundle(staging, supernet=ctx.supernet, members=members,
                     io=bundle_io(ctx.data, task if isinstance(task, Mapping) else None),
                     hardware={**fam["hardware"], "key": ctx.plugin.name},
                     extra={"metric": fam["metric"], "train_digest": tr.digest,
                            "supernet": str(ctx.cfg.supernet.name)})
        for p in staging.iterdir():
            shutil.move(str(p), tmp / p.name)
        staging.rmdir()
        size = sum(p.stat().st_size for p in tmp.iterdir() if p.is_file())
        return {"members": len(members), "bytes": size}

    from switchnas.runtime import FORMAT_VERSION

    # the bundle format is part of the key: a bundle of an older format is rebuilt
    return ctx.artifacts.produce("export", config={**ctx.section("export"),
                                                   "bundle_format": FORMAT_VERSION},
                                 inputs={"family": fa.digest, va.manifest["stage"]: va.digest,
                                         "train": tr.digest},
                                 build=build, dirname=dirname)
