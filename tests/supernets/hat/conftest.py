from __future__ import annotations

import pytest
import torch

from switchnas.supernets.hat.data import ToyTranslation
from switchnas.supernets.hat.supernet import SuperTransformer


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def toy() -> ToyTranslation:
    return ToyTranslation(src_vocab=24, tgt_vocab=28, n_train=400, n_valid=16, n_test=16,
                          max_clauses=1, max_adjectives=1, seed=0)


def tiny_net(space: str = "space0", **kw) -> SuperTransformer:
    """space's shape at 1/32 of its widths (embed 16/20, qkv 16) and small vocabularies."""
    torch.manual_seed(0)
    args = dict(src_vocab=24, tgt_vocab=28, space=space, width_divisor=32, dropout=0.0)
    args.update(kw)
    return SuperTransformer(**args).eval()
