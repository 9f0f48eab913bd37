"""The export stage's ``io`` section: from the run's data to a bundle that classifies and
translates on its own."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import torch

from switchnas.pipeline.stages.export import bundle_io


def test_digits_io_states_the_normalisation_and_labels() -> None:
    from switchnas.supernets.ofa.data import DigitsData

    data = DigitsData()
    io = bundle_io(data)
    assert io is not None and io["task"] == "image_classification"
    assert io["labels"] == [str(i) for i in range(10)]
    # the stored images are the raw ones (0-16, i.e. 16 * [0, 1]) normalised with them
    raw = data.images["train"] * torch.tensor(io["std"]).view(3, 1, 1) * 16 \
        + torch.tensor(io["mean"]).view(3, 1, 1) * 16
    assert torch.allclose(raw, raw.round(), atol=1e-3) and raw.min() > -1e-3
    assert raw.max() < 16 + 1e-3


def test_toy_translation_io_and_its_warning(caplog: pytest.LogCaptureFixture) -> None:
    from switchnas.supernets.hat.data import ToyTranslation

    with caplog.at_level(logging.WARNING):
        data = ToyTranslation(src_vocab=32, tgt_vocab=36, n_train=4, n_valid=2, n_test=2)
    assert "generated toy language pair" in caplog.text and "not WMT'14" in caplog.text
    io = bundle_io(data, {"beam": 4})
    assert io is not None and io["task"] == "translation"
    assert io["tokenizer"]["src_vocab"] == data.src_dict.itos
    assert io["tokenizer"]["tgt_vocab"] == data.tgt_dict.itos
    assert io["decoding"]["beam"] == 4


def test_data_without_a_description_gets_no_io(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert bundle_io(object()) is None
    assert "no io section" in caplog.text


def check_hat_bundle_translates(run_dir: Path, output: str) -> None:
    """The bundle of a finished tiny HAT run translates the test split exactly as the
    pipeline's own decoding does, for every member (called by ``test_hat_tiny_run``, which
    makes the run once for the whole suite)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf
    from safetensors.torch import load_file

    from switchnas.runtime import load
    from switchnas.supernets.hat.supernet import SuperTransformer
    from switchnas.supernets.hat.training import translate

    tmp_path = run_dir
    assert "generated toy language pair" in output
    bundle = load(tmp_path / "bundle")
    manifest: dict[str, Any] = bundle.manifest
    beam = manifest["io"]["decoding"]["beam"]
    cfg = OmegaConf.load(tmp_path / ".hydra" / "config.yaml")
    assert beam == cfg.supernet.presets.tiny.task.beam
    data = instantiate(cfg.data)
    net = SuperTransformer(**manifest["supernet"]["kwargs"])
    net.load_state_dict(load_file(str(tmp_path / "train" / "supernet.safetensors")))
    net.eval()
    pairs = data.split("test")[:4]
    for member in bundle.members:
        bundle.activate(member.id)
        net.activate(member.config)
        want = translate(net, data, "test", beam=beam, limit=len(pairs), batch_size=1)
        got = [bundle.translate(data.src_dict.decode(s)) for s, _ in pairs]
        assert got == want, member.id
    assert json.loads((tmp_path / "bundle" / "manifest.json").read_text())["files"][
        "vocab-tgt.txt"]["bytes"] > 0
