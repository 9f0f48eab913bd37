"""Data-parallel training on ``torch.distributed``: process groups, batch shards, gradient
all-reduce, synchronised batch norm, and launching workers.

Every rank runs the same training loop with the same seed, so every rank samples the same
sub-network and reads the same *global* batch; each rank forwards only its shard
(:func:`shard`) and the ranks' gradients are summed (:func:`all_reduce_gradients`). Losses
are sums over the shard divided by the *global* count, so the summed gradient is exactly
the gradient of the global batch's mean loss, whatever the number of ranks. Batch norm
must see the global batch too: :func:`synced_batch_norm` makes every training-mode
``F.batch_norm`` (OFA's dynamic batch norms call it with sliced weights, which
``nn.SyncBatchNorm`` cannot wrap) use statistics all-reduced over the ranks, with
gradients that flow back through the reduction. Parameters that the sampled sub-network
does not use have no gradient on every rank alike (same sub-network), so they are left
alone, exactly as in one process.

We reduce gradients ourselves (one flat all-reduce per step) rather than wrapping the
super-network in ``DistributedDataParallel``: DDP's hooks fire once per backward pass
(HAT's sandwich step runs three), re-broadcast buffers, and its ``find_unused_parameters``
search costs a graph walk per step; the flat reduction gives bit-identical gradients on
every rank, which is what keeps the replicas' weights equal.

Launching: :func:`launch` spawns ``nproc`` local workers (``torch.multiprocessing``, gloo
on CPU, NCCL on GPUs, one GPU per rank); under ``torchrun`` the process group comes from
the environment (:func:`init_from_env`).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

__all__ = ["Trainer", "all_reduce_gradients", "launch", "launched_by_torchrun", "init_from_env",
           "rank", "resolve_device", "shard", "shard_bounds", "synced_batch_norm",
           "world_size"]


@dataclass(frozen=True, kw_only=True)
class Trainer:
    """How a task trains, beyond its own recipe: device, mixed precision, checkpoints.

    Args:
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:<i>"`` (see :func:`resolve_device`).
        amp: mixed precision (``torch.autocast`` float16 + ``GradScaler``) when ``device``
            is a CUDA device; ignored on CPU.
        checkpoint_dir: folder of resumable checkpoints (``None``: none).
        checkpoint_every: save a checkpoint every this many optimiser steps (0: never).
    """

    device: str = "cpu"
    amp: bool = True
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0

    def __post_init__(self) -> None:
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every={self.checkpoint_every} must be >= 0 "
                             "(0: no checkpoints)")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"device={self.device!r}: use cpu, cuda or cuda:<index>")

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)

    @property
    def use_amp(self) -> bool:
        """Mixed precision is on: ``amp`` and a CUDA device."""
        return self.amp and self.torch_device.type == "cuda"


def resolve_device(device: str, *, local_rank: int = 0) -> str:
    """The torch device of one rank: ``auto`` is CUDA when available, else CPU; a plain
    ``cuda`` becomes ``cuda:<local_rank>``.

    Raises:
        ValueError: an unknown device, or CUDA asked for but not available.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return "cpu"
    if not device.startswith("cuda"):
        raise ValueError(f"device={device!r}: choose from auto, cpu, cuda")
    if not torch.cuda.is_available():
        raise ValueError(f"device={device!r}: CUDA is not available on this machine")
    return f"cuda:{local_rank}" if device == "cuda" else device


# -- the process group ----------------------------------------------------------------------
def world_size() -> int:
    """Ranks in the default process group (1 when none is initialised)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 when no process group is initialised)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def launched_by_torchrun() -> bool:
    """Whether ``torchrun`` (or another launcher setting ``RANK``/``WORLD_SIZE``) started
    this process as one of several ranks."""
    return "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(*, device: str = "auto") -> str:
    """Join the process group that ``torchrun`` describes in the environment.

    Returns:
        This rank's device (``cuda:<LOCAL_RANK>`` with NCCL, else ``cpu`` with gloo).
    """
    local = int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0")))
    dev = resolve_device(device, local_rank=local)
    if dev.startswith("cuda"):
        torch.cuda.set_device(torch.device(dev))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.startswith("cuda") else "gloo", init_method="env://")
    return dev


def shard_bounds(n: int, *, rank_: int | None = None, world: int | None = None) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of a global batch of ``n`` rows that rank ``rank_`` forwards
    (contiguous, sizes differing by at most one)."""
    r = rank() if rank_ is None else rank_
    w = world_size() if world is None else world
    return r * n // w, (r + 1) * n // w


def shard(tensor: torch.Tensor) -> torch.Tensor:
    """This rank's rows of a global batch (the whole batch in one process)."""
    lo, hi = shard_bounds(len(tensor))
    return tensor[lo:hi]


def all_reduce_gradients(parameters: Iterable[torch.nn.Parameter],
                         extra: Sequence[float] = ()) -> list[float]:
    """Sum the gradients of ``parameters`` over the ranks, in place, in one collective.

    Parameters without a gradient are skipped (the same ones on every rank, since every
    rank trains the same sub-network). ``extra`` numbers (losses to log) ride along.

    Returns:
        ``extra`` summed over the ranks (unchanged in one process).
    """
    if world_size() == 1:
        return list(extra)
    grads = [p.grad for p in parameters if p.grad is not None]
    device = grads[0].device if grads else torch.device("cpu")
    dtype = grads[0].dtype if grads else torch.float32
    flat = torch.cat([g.reshape(-1).to(dtype) for g in grads]
                     + [torch.tensor(list(extra), dtype=dtype, device=device)])
    dist.all_reduce(flat)
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()
    return flat[offset:].tolist()


def _all_reduce(t: torch.Tensor) -> torch.Tensor:
    import torch.distributed.nn.functional as dist_nn

    with warnings.catch_warnings():  # deprecated in favour of a private module: keep it
        warnings.simplefilter("ignore", FutureWarning)
        return dist_nn.all_reduce(t)  # differentiable: the backward all-reduces the gradient


def _global_batch_norm(x: torch.Tensor, running_mean: torch.Tensor | None,
                       running_var: torch.Tensor | None, weight: torch.Tensor | None,
                       bias: torch.Tensor | None, momentum: float, eps: float) -> torch.Tensor:
    """Training-mode batch norm over the rows of every rank (two-pass statistics)."""
    xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    dims = [0, *range(2, x.dim())]
    shape = [1, -1] + [1] * (x.dim() - 2)
    count = torch.tensor([x.numel() // x.shape[1]], dtype=xf.dtype, device=x.device)
    s = _all_reduce(torch.cat([xf.sum(dims), count]))
    n = s[-1]
    mean = s[:-1] / n
    centred = xf - mean.view(shape)
    var = _all_reduce((centred * centred).sum(dims)) / n
    y = centred * torch.rsqrt(var + eps).view(shape)
    if weight is not None:
        y = y * weight.to(xf.dtype).view(shape)
    if bias is not None:
        y = y + bias.to(xf.dtype).view(shape)
    with torch.no_grad():
        if running_mean is not None:
            running_mean.mul_(1 - momentum).add_(mean.detach().to(running_mean.dtype), alpha=momentum)
        if running_var is not None:
            unbiased = var.detach() * n / torch.clamp(n - 1, min=1)
            running_var.mul_(1 - momentum).add_(unbiased.to(running_var.dtype), alpha=momentum)
    return y.to(x.dtype)


class _SyncBatchNorm(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if func is F.batch_norm:
            names = ("input", "running_mean", "running_var", "weight", "bias", "training",
                     "momentum", "eps")
            a = {**dict(zip(names, args, strict=False)), **kwargs}
            a.setdefault("weight", None)
            a.setdefault("bias", None)
            if a.get("training", False):
                return _global_batch_norm(a["input"], a["running_mean"], a["running_var"],
                                          a["weight"], a["bias"], float(a.get("momentum", 0.1)),
                                          float(a.get("eps", 1e-5)))
        return func(*args, **kwargs)


@contextlib.contextmanager
def synced_batch_norm() -> Iterator[None]:
    """Within the block, training-mode batch norm uses the statistics of the global batch
    (all ranks' shards). Nothing changes in one process."""
    if world_size() == 1:
        yield
        return
    with _SyncBatchNorm():
        yield


# -- launching ------------------------------------------------------------------------------
def _worker(local_rank: int, world: int, device: str, init_file: str, result: str,
            fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    dev = resolve_device(device, local_rank=local_rank)
    if dev.startswith("cuda"):
        torch.cuda.set_device(torch.device(dev))
    else:  # the ranks share the cores
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    dist.init_process_group("nccl" if dev.startswith("cuda") else "gloo",
                            init_method=f"file://{init_file}", rank=local_rank, world_size=world)
    try:
        out = fn(dev, *args)
        if local_rank == 0:
            Path(result).write_text(json.dumps(out, default=str))
    finally:
        dist.destroy_process_group()


def launch(fn: Callable[..., Any], args: tuple[Any, ...] = (), *, nproc: int,
           device: str = "auto") -> Any:
    """Run ``fn(device, *args)`` in ``nproc`` new processes that form one process group.

    ``fn`` and ``args`` must be picklable (a module-level function). Rank ``r`` gets
    ``cuda:r`` with NCCL when ``device`` resolves to CUDA, else the CPU with gloo (and its
    share of the cores as torch threads).

    Args:
        fn: the work of one rank; its return value on rank 0 must be JSON-able.
        args: further arguments of ``fn``.
        nproc: number of ranks (>= 1).
        device: ``auto``, ``cpu`` or ``cuda``.

    Returns:
        What ``fn`` returned on rank 0.

    Raises:
        ValueError: ``nproc`` < 1, or more CUDA ranks than GPUs.
        torch.multiprocessing.ProcessRaisedException: a rank failed (its traceback).
    """
    import torch.multiprocessing as mp

    if nproc < 1:
        raise ValueError(f"nproc={nproc} must be >= 1")
    dev = resolve_device(device)
    if dev.startswith("cuda") and nproc > torch.cuda.device_count():
        raise ValueError(f"nproc={nproc}: only {torch.cuda.device_count()} CUDA devices here")
    with tempfile.TemporaryDirectory(prefix="switchnas-dist-") as tmp:
        init_file, result = str(Path(tmp) / "init"), str(Path(tmp) / "result.json")
        mp.spawn(_worker, args=(nproc, "cuda" if dev.startswith("cuda") else "cpu", init_file,
                                result, fn, args), nprocs=nproc, join=True)
        return json.loads(Path(result).read_text())
