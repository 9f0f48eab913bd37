"""The ``trainer`` section (data-parallel processes, device, mixed precision, checkpoints)
is checked up front like every other section, and the checkpoint folder follows the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import DictConfig

from switchnas.pipeline.context import ConfigError, Context
from switchnas.pipeline.schema import validate_config
from switchnas.pipeline.stages.train import checkpoint_dir


def _cfg(tmp_path: Path, *overrides: str) -> DictConfig:
    with initialize_config_module("switchnas.conf", version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    return Context(cfg, tmp_path).cfg


def test_defaults_and_good_values_pass(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "trainer.nproc=2", "trainer.device=cpu", "trainer.checkpoint_every=0")
    validate_config(cfg, command="train")
    assert cfg.trainer.nproc == 2 and cfg.trainer.amp is True


@pytest.mark.parametrize(("override", "message"), [
    ("trainer.nproc=0", "trainer.nproc=0: must be an integer from 1"),
    ("trainer.nproc=two", "trainer.nproc=two: must be an integer"),
    ("trainer.device=tpu", "trainer.device=tpu: must be auto, cpu, cuda or cuda:<index>"),
    ("trainer.amp=maybe", "trainer.amp=maybe: must be true or false"),
    ("trainer.checkpoint_every=-1", "trainer.checkpoint_every=-1: must be an integer from 0"),
    ("+trainer.nprocs=2", "trainer.nprocs: unknown key (did you mean 'nproc'?)"),
])
def test_bad_values_are_named(tmp_path: Path, override: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_config(_cfg(tmp_path, override), command="train")
    assert message in str(info.value)


def test_checkpoint_dir_follows_the_stage_key(tmp_path: Path) -> None:
    a = checkpoint_dir(tmp_path, {"seed": 0}, {})
    assert a == checkpoint_dir(tmp_path, {"seed": 0}, {})
    assert a != checkpoint_dir(tmp_path, {"seed": 1}, {})
    assert a.parent == tmp_path / ".checkpoints" and a.name.startswith("train-")
