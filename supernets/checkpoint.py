"""Resumable training checkpoints: tensors in safetensors, everything else in JSON, no pickle.

A checkpoint is any nested structure of dicts, lists, tuples, numbers, strings and tensors
(a model's, an optimiser's and a scheduler's ``state_dict()``, random-number states, the
sampler's position). :func:`pack` splits it into flat tensors and a JSON tree that names
them; :class:`CheckpointDir` writes the pair atomically: first ``tensors-<n>.safetensors``
(a new name each time), then ``checkpoint.json`` (temporary file + ``os.replace``) naming
that file and its SHA-256. A kill at any moment leaves the previous complete pair.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from switchnas.runtime.files import atomic_write_json

__all__ = ["CheckpointDir", "capture_rng", "pack", "restore_optimisation", "restore_rng",
           "training_state", "unpack"]

_FORMAT = 1


def pack(obj: Any) -> tuple[dict[str, torch.Tensor], Any]:
    """Split ``obj`` into flat tensors (copied to the CPU) and a JSON-able tree naming them.

    Raises:
        TypeError: a value that is neither a tensor nor JSON-able data.
    """
    tensors: dict[str, torch.Tensor] = {}

    def walk(v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            name = f"t{len(tensors)}"
            tensors[name] = v.detach().to("cpu", copy=True).contiguous()
            return {"__tensor__": name}
        if isinstance(v, dict):
            if all(isinstance(k, str) for k in v) and "__tensor__" not in v:
                return {k: walk(x) for k, x in v.items()}
            return {"__items__": [[walk(k), walk(x)] for k, x in v.items()]}
        if isinstance(v, tuple):
            return {"__tuple__": [walk(x) for x in v]}
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, np.generic):
            return v.item()
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        raise TypeError(f"cannot checkpoint a {type(v).__name__} (only tensors and JSON data)")

    return tensors, walk(obj)


def unpack(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`pack`."""
    if isinstance(tree, dict):
        if "__tensor__" in tree:
            return tensors[tree["__tensor__"]]
        if "__items__" in tree:
            return {unpack(k, tensors): unpack(v, tensors) for k, v in tree["__items__"]}
        if "__tuple__" in tree:
            return tuple(unpack(x, tensors) for x in tree["__tuple__"])
        return {k: unpack(v, tensors) for k, v in tree.items()}
    if isinstance(tree, list):
        return [unpack(x, tensors) for x in tree]
    return tree


def capture_rng(rng: np.random.Generator | None = None) -> dict[str, Any]:
    """Every random-number state training reads: torch (CPU and CUDA), numpy's global
    and ``rng``'s bit generator, Python's ``random``."""
    legacy: Any = np.random.get_state()
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy_global": [legacy[0], [int(k) for k in legacy[1]], *map(_plain, legacy[2:])],
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    if rng is not None:
        out["generator"] = rng.bit_generator.state
    return out


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def restore_rng(state: dict[str, Any], rng: np.random.Generator | None = None) -> None:
    """Set the states :func:`capture_rng` recorded (``rng`` in place)."""
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy_global"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))
    if rng is not None and "generator" in state:
        rng.bit_generator.state = state["generator"]


def training_state(*, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                   scaler: torch.amp.GradScaler | None, rng: np.random.Generator | None,
                   **extra: Any) -> dict[str, Any]:
    """The state every training loop checkpoints: the model's, optimiser's, scheduler's and
    (mixed precision) grad scaler's ``state_dict()``, the random-number states
    (:func:`capture_rng`), and the loop's own ``extra`` entries (position, losses ...).

    :func:`restore_optimisation` puts the optimisation part back."""
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "rng": capture_rng(rng), **extra}


def restore_optimisation(state: dict[str, Any], *, optimizer: torch.optim.Optimizer,
                         scheduler: Any, scaler: torch.amp.GradScaler | None) -> None:
    """Load the optimiser, scheduler and grad scaler states of a :func:`training_state`
    (the model and random states are the caller's: loops restore them at different
    moments)."""
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class CheckpointDir:
    """The latest checkpoint of one training run, kept in ``path``.

    Args:
        path: the folder (created on the first save).
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    def save(self, state: Any) -> None:
        """Replace the checkpoint by ``state`` (see :func:`pack`), atomically."""
        tensors, tree = pack(state)
        self.path.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".tensors.", suffix=".safetensors")
        os.close(fd)
        try:
            save_file(tensors, tmp)
            name = f"tensors-{_sha256(Path(tmp))[:16]}.safetensors"
            os.replace(tmp, self.path / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        meta = {"format": _FORMAT, "tensors": name, "sha256": _sha256(self.path / name),
                "state": tree}
        atomic_write_json(self.path / "checkpoint.json", meta, indent=None)
        for old in self.path.glob("tensors-*.safetensors"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def load(self) -> Any | None:
        """The saved state, or ``None`` when there is no checkpoint.

        Raises:
            ValueError: a checkpoint whose format or tensor file does not match.
        """
        index = self.path / "checkpoint.json"
        if not index.is_file():
            return None
        meta = json.loads(index.read_text())
        if meta.get("format") != _FORMAT:
            raise ValueError(f"{index}: checkpoint format {meta.get('format')!r}, expected "
                             f"{_FORMAT}")
        tensors_path = self.path / str(meta["tensors"])
        if Path(meta["tensors"]).name != meta["tensors"] or not tensors_path.is_file() \
                or _sha256(tensors_path) != meta["sha256"]:
            raise ValueError(f"{index}: its tensor file {meta['tensors']!r} is missing or "
                             "changed")
        return unpack(meta["state"], load_file(str(tensors_path)))

    def clear(self) -> None:
        """Delete the checkpoint folder (after the run it belongs to has finished)."""
        shutil.rmtree(self.path, ignore_errors=True)
