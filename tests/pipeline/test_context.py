"""Stage keys: what changes an artifact and what does not."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_module

from switchnas.pipeline.context import Context


def _ctx(tmp_path: Path, *overrides: str) -> Context:
    with initialize_config_module("switchnas.conf", version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    return Context(cfg, tmp_path)


def test_progress_flag_is_not_part_of_a_key(tmp_path: Path) -> None:
    a = _ctx(tmp_path, "progress=true").section("supernet.task", "hardware")
    b = _ctx(tmp_path, "progress=false").section("supernet.task", "hardware")
    assert a == b and "progress" not in a["supernet.task"]


def test_preset_merges_supernet_budget(tmp_path: Path) -> None:
    tiny = _ctx(tmp_path, "preset=tiny")
    assert tiny.cfg.supernet.task.epochs_per_phase == 1
    assert list(tiny.cfg.supernet.net.resolutions) == [24, 32]
    assert tiny.cfg.profile.n == 20
    default = _ctx(tmp_path)
    assert default.cfg.supernet.task.epochs_per_phase == 6


def test_command_line_beats_the_preset(tmp_path: Path) -> None:
    """``supernet.task.X=`` on the command line wins over ``presets.tiny``'s ``X``."""
    from hydra.core.hydra_config import HydraConfig

    overrides = ["preset=tiny", "supernet.task.epochs_per_phase=0.3",
                 "supernet.task.lr=0.05"]
    with initialize_config_module("switchnas.conf", version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    try:
        ctx = Context(cfg, tmp_path)
        assert ctx.cfg.supernet.task.epochs_per_phase == 0.3   # the preset says 1
        assert ctx.cfg.supernet.task.lr == 0.05
        assert list(ctx.cfg.supernet.net.resolutions) == [24, 32]  # the rest of the preset
        assert ctx.cfg.supernet.task.kd_ratio == 0.0
    finally:
        HydraConfig.instance().cfg = None  # type: ignore[assignment]
    assert _ctx(tmp_path, "preset=tiny").cfg.supernet.task.epochs_per_phase == 1


def test_hat_brings_its_own_data(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "supernet=hat_wmt14ende")
    assert ctx.cfg.data._target_.endswith("ToyTranslation")
    ctx = _ctx(tmp_path)
    assert ctx.cfg.data._target_.endswith("DigitsData")
