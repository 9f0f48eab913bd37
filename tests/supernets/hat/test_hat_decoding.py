from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from switchnas.supernets.hat.decoding import beam_search, greedy_decode, strip
from switchnas.supernets.hat.training import bleu
from switchnas.supernets.hat.transformer import EOS, EncoderOut, Transformer

from .conftest import tiny_net

A, B = 4, 5


class MarkovModel:
    """Next-token distribution depends on the first generated token; greedy is misled.

    BOS -> A 0.55, B 0.45;  after A: A 0.34, B 0.33, EOS 0.33;  after B: EOS 0.95, A 0.05.
    Greedy: A A A ... (never ends); best sequence: B EOS (p = 0.4275).
    """

    max_positions = 64
    table = {1: {A: 0.55, B: 0.45}, A: {A: 0.34, B: 0.33, EOS: 0.33}, B: {EOS: 0.95, A: 0.05}}

    def encode(self, src):
        return EncoderOut([src.float()[..., None]], src.eq(0))

    def new_cache(self):
        return [{"self": {}, "ende": {}}]

    reorder_cache = staticmethod(Transformer.reorder_cache)

    def decode(self, tok, enc, *, cache=None, start=0):
        # the rule reads the first generated token from the cache, so beams must carry
        # their own cache rows through reordering
        hist = cache[0]["self"]
        hist["h"] = tok if "h" not in hist else torch.cat([hist["h"], tok], 1)
        assert hist["h"].shape[1] == start + 1
        out = torch.full((tok.shape[0], 1, 6), -1e9)
        for r, t in enumerate(tok[:, 0].tolist()):
            key = t if t == 1 else int(hist["h"][r, 1])
            for nxt, p in self.table.get(key, {EOS: 1.0}).items():
                out[r, 0, nxt] = math.log(p)
        return out


def test_greedy_and_beam_on_known_toy_model():
    m = MarkovModel()
    src = torch.tensor([[7, 8, EOS], [9, EOS, 0]])
    greedy = [strip(r) for r in greedy_decode(m, src, max_len=6).tolist()]
    assert greedy == [[A] * 6, [A] * 6]
    assert beam_search(m, src, beam=5, max_len=6) == [[B], [B]]
    assert beam_search(m, src, beam=1, max_len=6) == [[A] * 5, [A] * 5]  # EOS forced at the end


def test_beam_one_matches_greedy_on_a_network():
    net = tiny_net()
    net.activate(net.space.sample(np.random.default_rng(0)))
    src = net.example_input(None, 4, src_len=6)
    greedy = [strip(r) for r in greedy_decode(net, src, max_len=8).tolist()]
    beam1 = beam_search(net, src, beam=1, max_len=9)
    for g, b in zip(greedy, beam1, strict=True):
        assert b[: len(g)] == g


def test_bleu_perfect_and_wrong():
    refs = ["the cat sat on the mat", "a dog ran in the park today"]
    assert bleu(refs, refs) == pytest.approx(100.0)
    assert bleu(["x y z w v u", "p q r s t o n"], refs) == 0.0
