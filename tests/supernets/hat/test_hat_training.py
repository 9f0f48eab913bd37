from __future__ import annotations

import numpy as np
import pytest

from switchnas.supernets.base import Task, check_protocol
from switchnas.supernets.hat.data import ParallelText, ToyTranslation
from switchnas.supernets.hat.training import HATTask

from .conftest import tiny_net


def test_toy_task_is_deterministic_and_reorders(toy):
    again = ToyTranslation(src_vocab=24, tgt_vocab=28, n_train=400, n_valid=16, n_test=16,
                           max_clauses=1, max_adjectives=1, seed=0)
    assert again.split("train")[:5] == toy.split("train")[:5]
    assert toy.src_vocab == 24 and toy.tgt_vocab == 28
    # SOV: the verb (third-to-last or later in the source) comes last in the target
    src, tgt = toy.split("train")[0]
    assert len(tgt) == len(src)
    with pytest.raises(ValueError, match="tgt_vocab=20 must be at least src_vocab \\+ 4 = 28"):
        ToyTranslation(src_vocab=24, tgt_vocab=20)


def test_tiny_training_loss_falls_and_evaluate_scores(toy):
    net = tiny_net()
    task = HATTask(steps=24, batch_size=32, lr=3e-3, warmup=4, log_every=4, beam=2,
                   eval_sentences=8)
    check_protocol(task, Task, "task")
    log = task.train(net, toy, seed=0)
    assert log["steps"] == 24 and len(log["losses"]) == 6
    assert log["last_loss"] < log["first_loss"] - 0.3
    assert net.vocab_hash == toy.vocab_hash()
    cfgs = [net.space.largest(), net.space.smallest()]
    scores = task.evaluate(net, cfgs, toy)
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 100))
    assert task.evaluate(net, cfgs, toy, split="test").shape == (2,)
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        task.evaluate(net, cfgs, toy, split="dev")
    task.metric = "neg_valid_loss"
    losses = task.evaluate(net, cfgs, toy)
    assert np.all(losses < 0) and np.all(-losses < log["first_loss"])


def test_unknown_metric():
    with pytest.raises(ValueError, match="unknown metric 'acc'"):
        HATTask(metric="acc")


def test_parallel_text_with_local_sentencepiece(tmp_path, toy):
    src = [toy.src_dict.decode(s) for s, _ in toy.split("train")]
    tgt = [toy.tgt_dict.decode(t) for _, t in toy.split("train")]
    (tmp_path / "train.src").write_text("\n".join(src) + "\n")
    (tmp_path / "train.tgt").write_text("\n".join(tgt) + "\n")
    data = ParallelText(train=[str(tmp_path / "train.src"), str(tmp_path / "train.tgt")],
                        vocab_size=30)
    assert (tmp_path / "spm30.model").is_file()
    assert data.src_vocab == data.tgt_vocab == 30
    s, t = data.split("train")[0]
    assert data.tgt_dict.decode(t) == tgt[0]
    assert data.references("valid", 2) == [data.tgt_dict.decode(x) for _, x in data.split("valid")[:2]]
    b = next(data.batches("train", 4))
    assert b.src.shape[0] == 4
    with pytest.raises(ValueError, match="src_vocab=64 but the sentencepiece model"):
        ParallelText(train=[str(tmp_path / "train.src"), str(tmp_path / "train.tgt")],
                     vocab_size=30, src_vocab=64)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ParallelText(train=[str(tmp_path / "nope.src"), str(tmp_path / "train.tgt")])
