"""Stage ``train``: the super-network's weights: trained here, loaded from a file
(``supernet.weights``), or loaded and fine-tuned (``supernet.finetune=true``), possibly on
a reduced design space (``supernet.space_file``).

Training follows the ``trainer`` section: ``trainer.nproc`` data-parallel processes
(:mod:`switchnas.supernets.distributed`; under ``torchrun`` the launcher's ranks), the
device, mixed precision on CUDA, and a resumable checkpoint every
``trainer.checkpoint_every`` steps in ``<run dir>/.checkpoints/train-<key>/``, outside the
stage's temporary build folder so that it survives a killed run: the same command
continues from it, and it is deleted once the stage's artifact is in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import shutil
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from safetensors.torch import save_file

from switchnas.supernets import distributed

from ..artifacts import Artifact, file_sha256
from ..context import ConfigError, Context
from ._util import memo, write_json

__all__ = ["checkpoint_dir", "run"]


def run(ctx: Context) -> Artifact:
    return memo(ctx, "train", lambda: _run(ctx))


def checkpoint_dir(run_dir: Path, config: dict[str, Any], inputs: dict[str, str]) -> Path:
    """Where the train stage with this key keeps its resumable checkpoint."""
    key = hashlib.sha256(json.dumps({"config": config, "inputs": inputs}, sort_keys=True,
                                    default=str).encode()).hexdigest()
    return Path(run_dir) / ".checkpoints" / f"train-{key[:16]}"


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
    trainer = dict(OmegaConf.to_container(ctx.cfg.trainer, resolve=True)  # type: ignore[arg-type]
                   if "trainer" in ctx.cfg else {})
    nproc, device = int(trainer.get("nproc", 1)), str(trainer.get("device", "auto"))
    try:
        resolved = distributed.resolve_device(device)
    except ValueError as exc:
        raise ConfigError(f"trainer.device={device}: {exc}") from exc
    amp = bool(trainer.get("amp", True)) and resolved.startswith("cuda")
    if amp:  # float16 training gives other weights than float32: another artifact
        config["trainer"] = {"amp": True}
    ckpt = checkpoint_dir(ctx.run_dir, config, inputs)
    options = {"amp": amp, "checkpoint_dir": str(ckpt),
               "checkpoint_every": int(trainer.get("checkpoint_every", 0))}
    training = finetune or not weights  # train from scratch, or fine-tune loaded weights
    if training and (nproc > 1 or distributed.launched_by_torchrun()) \
            and "trainer" not in inspect.signature(ctx.task.train).parameters:
        raise ConfigError(f"trainer.nproc={nproc}: the task {type(ctx.task).__name__} of "
                          f"supernet {ctx.cfg.supernet.name} does not support data-parallel "
                          "training (its train() takes no trainer=)")

    def build(tmp: Path) -> dict[str, Any]:
        out = tmp / "supernet.safetensors"
        if not training:
            log = _train_into(ctx, resolved, str(weights), False, options, out)
        elif nproc > 1 and not distributed.launched_by_torchrun():
            plain = OmegaConf.to_container(ctx.cfg, resolve=True)
            log = distributed.launch(_train_rank, (plain, str(ctx.run_dir), weights, options,
                                                   str(out)), nproc=nproc, device=device)
        else:
            if distributed.launched_by_torchrun():
                resolved_here = distributed.init_from_env(device=device)
            else:
                resolved_here = resolved
            log = _train_into(ctx, resolved_here, weights, True, options, out)
        write_json(tmp / "train_log.json", log)
        return log

    art = ctx.artifacts.produce("train", config=config, inputs=inputs, build=build)
    shutil.rmtree(ckpt, ignore_errors=True)  # the artifact is in place: nothing to resume
    with contextlib.suppress(OSError):  # .checkpoints, unless another key's is left in it
        ckpt.parent.rmdir()
    return art


def _train_rank(device: str, cfg: dict[str, Any], run_dir: str, weights: str | None,
                options: dict[str, Any], out: str) -> dict[str, Any]:
    """One rank of ``trainer.nproc`` (a spawned process): rebuild the context and train."""
    ctx = Context(OmegaConf.create(cfg), Path(run_dir))
    return _train_into(ctx, device, weights, True, options, Path(out))


def _train_into(ctx: Context, device: str, weights: str | None, train: bool,
                options: dict[str, Any], out: Path) -> dict[str, Any]:
    """Build the super-network, load ``weights``, train it when ``train``; rank 0 writes
    its state to ``out``. Returns the training log."""
    net = ctx.new_supernet()
    log: dict[str, Any] = {}
    if weights:
        net.load_weights(str(weights))  # type: ignore[attr-defined]
        log["loaded"] = str(weights)
    if train:
        kwargs: dict[str, Any] = {}
        if "trainer" in inspect.signature(ctx.task.train).parameters:
            kwargs["trainer"] = distributed.Trainer(device=device, **options)
        log.update(ctx.task.train(net, ctx.data, seed=int(ctx.cfg.seed), **kwargs))
    if distributed.rank() == 0:
        state = {k: v.detach().to("cpu").contiguous().clone()
                 for k, v in net.state_dict().items()}  # type: ignore[attr-defined]
        save_file(state, str(out))
    return log
