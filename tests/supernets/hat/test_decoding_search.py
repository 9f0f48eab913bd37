"""Beam search against exhaustive search, and BLEU's asymmetry.

The toy models read the whole history of each beam from the incremental cache, so a beam
whose cache rows are not reordered with it continues someone else's sentence; and their
best sentence under length normalisation is not the best by summed log-probability.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from switchnas.supernets.hat.decoding import beam_search
from switchnas.supernets.hat.training import bleu
from switchnas.supernets.hat.transformer import BOS, EOS, EncoderOut, Transformer

A, B, C = 4, 5, 6
VOCAB = 7


class HistoryModel:
    """Next-token log-probabilities as a function of the whole generated prefix, which
    the model keeps in the incremental cache (one row per beam), as a Transformer keeps
    its keys and values. ``table`` maps a prefix (tuple of tokens after BOS) to
    ``{token: probability}``; a prefix not in the table gets ``unknown``."""

    max_positions = 64

    def __init__(self, table: dict[tuple[int, ...], dict[int, float]],
                 unknown: dict[int, float]) -> None:
        self.table, self.unknown = table, unknown

    def encode(self, src: torch.Tensor) -> EncoderOut:
        return EncoderOut([src.float()[..., None]], src.eq(0))

    def new_cache(self) -> list[dict[str, dict[str, torch.Tensor]]]:
        return [{"self": {}}]

    reorder_cache = staticmethod(Transformer.reorder_cache)

    def decode(self, tok: torch.Tensor, enc: EncoderOut, *, cache: list[dict[str, dict[str, torch.Tensor]]],
               start: int = 0) -> torch.Tensor:
        hist = cache[0]["self"]
        hist["h"] = tok if "h" not in hist else torch.cat([hist["h"], tok], 1)
        assert hist["h"].shape[1] == start + 1
        out = torch.full((tok.shape[0], 1, VOCAB), -math.inf)
        for r, row in enumerate(hist["h"].tolist()):
            assert row[0] == BOS
            for nxt, p in self.table.get(tuple(row[1:]), self.unknown).items():
                out[r, 0, nxt] = math.log(p)
        return out


def _src(n: int = 1) -> torch.Tensor:
    return torch.tensor([[7, 8, EOS]] * n)


def test_beams_carry_their_own_cache_rows() -> None:
    """After the second step the best beam (B C) comes from the second row of the first:
    a cache left in place makes it continue A's history, where EOS is unlikely."""
    m = HistoryModel({
        (): {A: 0.6, B: 0.4},
        (A,): {A: 0.5, B: 0.5},
        (B,): {C: 0.99, EOS: 0.01},
        (B, C): {EOS: 0.99, A: 0.01},
        (A, A): {EOS: 0.5, A: 0.5},
        (A, B): {EOS: 0.5, A: 0.5},
    }, unknown={A: 0.95, EOS: 0.05})
    assert beam_search(m, _src(2), beam=2, max_len=5, len_penalty=1.0) == [[B, C], [B, C]]
    assert beam_search(m, _src(), beam=3, max_len=5, len_penalty=0.0) == [[B, C]]


def test_length_normalisation_picks_the_longer_sentence() -> None:
    """B EOS has the higher summed log-probability (-0.92 against -1.18); per token,
    A C A EOS is better (-0.29 against -0.46), so it wins with len_penalty=1 only."""
    m = HistoryModel({
        (): {A: 0.6, B: 0.4},
        (B,): {EOS: 1.0},
        (A,): {C: 0.8, A: 0.2},
        (A, C): {A: 0.8, EOS: 0.2},
        (A, C, A): {EOS: 0.8, B: 0.2},
    }, unknown={A: 1.0})
    assert beam_search(m, _src(), beam=4, max_len=6, len_penalty=1.0) == [[A, C, A]]
    assert beam_search(m, _src(), beam=4, max_len=6, len_penalty=0.0) == [[B]]


def _exhaustive_best(m: HistoryModel, max_len: int, len_penalty: float) -> list[int]:
    """The sentence (then EOS) of at most ``max_len`` tokens in all with the best
    length-normalised score."""
    best, best_s = [], -math.inf
    for n in range(max_len):
        for words in itertools.product((A, B, C), repeat=n):
            s, prefix = 0.0, ()
            for w in (*words, EOS):
                p = m.table.get(prefix, m.unknown).get(w, 0.0)
                s += math.log(p) if p > 0 else -math.inf
                prefix = (*prefix, w)
            score = s / (n + 1) ** len_penalty
            if score > best_s:
                best, best_s = list(words), score
    return best


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), len_penalty=st.sampled_from([0.0, 0.5, 1.0, 2.0]))
def test_a_wide_beam_is_exhaustive_search(seed: int, len_penalty: float) -> None:
    """With more beams than prefixes, beam search must return the exhaustive optimum of
    the length-normalised score, for any history-dependent model."""
    rng = np.random.default_rng(seed)
    max_len = 4
    table: dict[tuple[int, ...], dict[int, float]] = {}
    for n in range(max_len):
        for prefix in itertools.product((A, B, C), repeat=n):
            p = rng.dirichlet(np.full(4, 0.7))
            table[prefix] = dict(zip((A, B, C, EOS), p.tolist(), strict=True))
    m = HistoryModel(table, unknown={EOS: 1.0})
    got = beam_search(m, _src(), beam=64, max_len=max_len, len_penalty=len_penalty)
    assert got == [_exhaustive_best(m, max_len, len_penalty)]


# -- BLEU ---------------------------------------------------------------------------------
WORDS = [f"w{i}" for i in range(30)]


@settings(max_examples=50, deadline=None)
@given(ref=st.lists(st.sampled_from(WORDS), min_size=8, max_size=40), data=st.data())
def test_a_piece_of_the_reference_scores_its_brevity_penalty(ref: list[str],
                                                             data: st.DataObject) -> None:
    """A hypothesis that is a contiguous piece of the reference has every n-gram
    precision 1, so its BLEU is exactly 100 * exp(1 - r / c) (brevity penalty); the same
    pair the other way round has no brevity penalty and lower precision."""
    c = data.draw(st.integers(4, len(ref) - 1), label="hypothesis length")
    at = data.draw(st.integers(0, len(ref) - c), label="offset")
    hyp, reference = " ".join(ref[at:at + c]), " ".join(ref)
    want = 100 * math.exp(1 - len(ref) / c)
    assert bleu([hyp], [reference]) == pytest.approx(want, abs=1e-6)
    assert bleu([reference], [hyp]) < 100.0


def test_short_hypotheses_score_about_zero() -> None:
    reference = "the quick brown fox jumps over the lazy dog near the old bank of the river " * 3
    assert bleu(["the quick brown fox"], [reference.strip()]) < 0.01
    # corpus-level: lengths add up over sentences before the brevity penalty
    refs = ["a b c d e f g h", "p q r s t u v w"]
    assert bleu(["a b c d", "p q r s"], refs) == pytest.approx(100 * math.exp(1 - 16 / 8))
    with pytest.raises(ValueError, match="1 hypotheses for 2 references"):
        bleu(["a b c d"], refs)
