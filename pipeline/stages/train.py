"""Stage ``train``: the super-network's weights: trained here, loaded from a file
(``supernet.weights``), or loaded and fine-tuned (``supernet.finetune=true``), possibly on
a reduced design space (``supernet.space_file``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from ..artifacts import Artifact, file_sha256
from ..context import ConfigError, Context
from ._util import memo, write_json

__all__ = ["run"]


def run(ctx: Context) -> Artifact:
    return memo(ctx, "train", lambda: _run(ctx))


def _run(ctx: Context) -> Artifact:
    config = ctx.section("supernet.name", "supernet.net", "supernet.task", "data", "seed")
    weights = ctx.cfg.supernet.get("weights")
    finetune = bool(ctx.cfg.supernet.get("finetune", False))
    inputs: dict[str, str] = {}
    if ctx.space_override:
        config["space"] = ctx.space_override
    if weights:
        p = Path(str(weights)).expanduser()
        if not p.is_file():
            raise ConfigError(f"supernet.weights={weights!r}: no such file")
        inputs["weights"] = file_sha256(p)
        if not finetune:
            config = ctx.section("supernet.name", "supernet.net", "seed")

    def build(tmp: Path) -> dict[str, Any]:
        net = ctx.new_supernet()
        log: dict[str, Any] = {}
        if weights:
            net.load_weights(str(weights))  # type: ignore[attr-defined]
            log["loaded"] = str(weights)
        if finetune or not weights:  # train from scratch, or fine-tune loaded weights
            log.update(ctx.task.train(net, ctx.data, seed=int(ctx.cfg.seed)))
        state = {k: v.detach().contiguous().clone()
                 for k, v in net.state_dict().items()}  # type: ignore[attr-defined]
        save_file(state, str(tmp / "supernet.safetensors"))
        write_json(tmp / "train_log.json", log)
        return log

    return ctx.artifacts.produce("train", config=config, inputs=inputs, build=build)
