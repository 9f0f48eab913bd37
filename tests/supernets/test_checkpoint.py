"""Resumable checkpoints: safetensors + JSON (no pickle), written atomically; a run killed at
step k and started again ends with the weights of an uninterrupted run."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors import safe_open

from switchnas.supernets.checkpoint import CheckpointDir, capture_rng, pack, restore_rng, unpack
from switchnas.supernets.distributed import Trainer

from .test_distributed import build


class Killed(RuntimeError):
    pass


class KilledAfter:
    """``data`` whose training batches stop with :class:`Killed` after ``n`` of them."""

    def __init__(self, data: Any, n: int):
        self.data, self.left = data, n

    def __getattr__(self, name: str) -> Any:
        return getattr(self.data, name)

    def batches(self, split: str, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for b in self.data.batches(split, *args, **kwargs):
            if split == "train":
                if self.left == 0:
                    raise Killed("killed")
                self.left -= 1
            yield b


def test_pack_round_trip_of_optimiser_state() -> None:
    p = torch.nn.Parameter(torch.randn(3, 2))
    opt = torch.optim.Adam([p], lr=0.1, betas=(0.9, 0.98))
    p.grad = torch.ones_like(p)
    opt.step()
    tensors, tree = pack({"opt": opt.state_dict(), "t": (1, 2.5, None), "s": "x"})
    json.dumps(tree)  # JSON-able
    back = unpack(json.loads(json.dumps(tree)), tensors)
    assert back["t"] == (1, 2.5, None) and back["s"] == "x"
    assert back["opt"]["param_groups"][0]["betas"] == (0.9, 0.98)
    assert torch.equal(back["opt"]["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    opt2 = torch.optim.Adam([torch.nn.Parameter(p.detach().clone())], lr=0.1)
    opt2.load_state_dict(back["opt"])
    with pytest.raises(TypeError, match="object"):
        pack({"x": object()})


def test_rng_states_round_trip() -> None:
    rng = np.random.default_rng(5)
    state = capture_rng(rng)
    tensors, tree = pack(state)
    first = (torch.rand(3), np.random.rand(), random.random(), rng.random())
    restore_rng(unpack(json.loads(json.dumps(tree)), tensors), rng)
    again = (torch.rand(3), np.random.rand(), random.random(), rng.random())
    assert torch.equal(first[0], again[0]) and first[1:] == again[1:]


def test_checkpoint_files_are_safetensors_and_json(tmp_path: Path) -> None:
    ck = CheckpointDir(tmp_path / "ck")
    assert ck.load() is None
    ck.save({"w": torch.arange(4.0), "step": 1})
    ck.save({"w": torch.arange(5.0), "step": 2})
    names = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert len(names) == 2 and names[0] == "checkpoint.json"  # the older tensors are gone
    assert names[1].startswith("tensors-") and names[1].endswith(".safetensors")
    meta = json.loads((tmp_path / "ck" / "checkpoint.json").read_text())
    assert meta["state"]["step"] == 2
    with safe_open(str(tmp_path / "ck" / names[1]), framework="pt") as f:  # no pickle inside
        assert list(f.keys()) == ["t0"]
    state = ck.load()
    assert state["step"] == 2 and torch.equal(state["w"], torch.arange(5.0))
    (tmp_path / "ck" / names[1]).write_bytes(b"changed")
    with pytest.raises(ValueError, match="missing or changed"):
        ck.load()
    ck.clear()
    assert not (tmp_path / "ck").exists()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["ofa", "hat"])
def test_killed_run_resumes_to_the_uninterrupted_weights(kind: str, tmp_path: Path) -> None:
    steps = 3 if kind == "ofa" else 8  # OFA: per phase (full, kernel + KD, expand + KD)
    kill_at = 5
    net, data, task = build(kind, kd=1.0, steps=steps)
    task.train(net, data, seed=2)
    reference = {k: v.clone() for k, v in net.state_dict().items()}

    trainer = Trainer(device="cpu", checkpoint_dir=str(tmp_path / "ck"), checkpoint_every=2)
    net, data, task = build(kind, kd=1.0, steps=steps)
    with pytest.raises(Killed):
        task.train(net, KilledAfter(data, kill_at), seed=2, trainer=trainer)
    saved = CheckpointDir(tmp_path / "ck").load()
    assert saved is not None and saved["position"]["step"] == (2 if kind == "ofa" else 4)
    net, data, task = build(kind, kd=1.0, steps=steps)  # a new process: fresh weights
    log = task.train(net, data, seed=2, trainer=trainer)
    after = net.state_dict()
    worst = max(float((reference[k].double() - after[k].double()).abs().max()) for k in reference)
    assert worst <= 1e-6, f"resumed weights differ by up to {worst:g}"
    if kind == "ofa":
        assert log["resumed"][0]["phase"] == 1
