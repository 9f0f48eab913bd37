from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from switchnas.supernets.hat.data import ParallelText, ToyTranslation
from switchnas.supernets.hat.supernet import SuperTransformer
from switchnas.supernets.hat.training import HATTask

CONF = Path(__file__).resolve().parents[3] / "conf"


@pytest.fixture()
def conf_dir(tmp_path: Path) -> Path:
    """Our group configs under a minimal primary config (data listed before supernet)."""
    for group, pattern in (("supernet", "hat_*.yaml"), ("data", "*.yaml")):
        (tmp_path / group).mkdir()
        for f in (CONF / group).glob(pattern):
            shutil.copy(f, tmp_path / group / f.name)
    (tmp_path / "config.yaml").write_text(
        "defaults:\n  - data: parallel_text\n  - supernet: hat_wmt14ende\n  - _self_\n"
        "progress: false\n")
    return tmp_path


@pytest.mark.parametrize(("name", "space", "ffn"), [("hat_wmt14ende", "space0", 3072 // 32),
                                                    ("hat_iwslt14deen", "space1", 2048 // 32)])
def test_supernet_configs_compose_and_instantiate(conf_dir, name, space, ffn):
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = compose("config", overrides=[f"supernet={name}", "supernet.net.width_divisor=32",
                                           "data.n_train=50", "supernet.task.steps=2"])
    data = instantiate(cfg.data)
    assert isinstance(data, ToyTranslation)  # the supernet's embedded default data
    net = instantiate(cfg.supernet.net)
    assert isinstance(net, SuperTransformer) and net.space.name == space
    assert max(net.space.dimensions["encoder_ffn_embed_dim"][0]) == ffn
    assert (net.src_vocab, net.tgt_vocab) == (data.src_vocab, data.tgt_vocab)
    task = instantiate(cfg.supernet.task)
    assert isinstance(task, HATTask) and task.metric == "bleu" and task.steps == 2


def test_parallel_text_config_can_be_chosen(conf_dir):
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = compose("config", overrides=["data=parallel_text", "data.train=[a.src,a.tgt]"])
    assert cfg.data._target_.endswith(ParallelText.__name__)
    assert cfg.supernet.net.src_vocab == 8000
