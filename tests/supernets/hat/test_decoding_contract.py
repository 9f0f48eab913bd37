"""Decoding's contract beyond the best sentence: batches whose sentences end at different
steps, the default lengths and options, early stopping, ties, and the source's device.

The toy model's next-token distribution depends on the source sentence (its first token)
and on the whole generated prefix, which it keeps in the incremental cache like a
Transformer keeps keys and values; it records every prefix it is asked to extend.
"""

from __future__ import annotations

import math

import pytest
import torch

from switchnas.supernets.hat.decoding import beam_search, greedy_decode, max_target_len, strip
from switchnas.supernets.hat.transformer import BOS, EOS, PAD, EncoderOut, Transformer

A, B, C, D = 4, 5, 6, 7
VOCAB = 12
Table = dict[tuple[int, ...], dict[int, float]]


class SourceModel:
    """``tables[source id][prefix] -> {token: probability}``; unknown prefixes get
    ``unknown``. ``calls`` counts decode steps; ``seen`` holds (source id, prefix) pairs."""

    def __init__(self, tables: dict[int, Table], unknown: dict[int, float],
                 max_positions: int = 64) -> None:
        self.tables, self.unknown, self.max_positions = tables, unknown, max_positions
        self.calls = 0
        self.seen: list[tuple[int, tuple[int, ...]]] = []

    def encode(self, src: torch.Tensor) -> EncoderOut:
        return EncoderOut([src.float()[..., None]], src.eq(PAD))

    def new_cache(self) -> list[dict[str, dict[str, torch.Tensor]]]:
        return [{"self": {}}]

    reorder_cache = staticmethod(Transformer.reorder_cache)

    def decode(self, tok: torch.Tensor, enc: EncoderOut, *, cache: list[dict[str, dict[str, torch.Tensor]]],
               start: int = 0) -> torch.Tensor:
        assert start < self.max_positions, f"decode step {start} >= max_positions"
        self.calls += 1
        hist = cache[0]["self"]
        hist["h"] = tok if "h" not in hist else torch.cat([hist["h"], tok], 1)
        assert hist["h"].shape[1] == start + 1
        out = torch.full((tok.shape[0], 1, VOCAB), -math.inf, device=tok.device)
        for r, row in enumerate(hist["h"].tolist()):
            assert row[0] == BOS
            sid, prefix = int(enc.states[0][r, 0, 0]), tuple(row[1:])
            self.seen.append((sid, prefix))
            for nxt, p in self.tables.get(sid, {}).get(prefix, self.unknown).items():
                out[r, 0, nxt] = math.log(p)
        return out


def _src(*ids: int) -> torch.Tensor:
    return torch.tensor([[i, 9, EOS] for i in ids])


#: Source 7 ends at once (nothing, C, B or B A D); source 8 says A C A then ends.
QUICK: Table = {(): {EOS: 0.5, B: 0.3, C: 0.2}, (B,): {EOS: 0.6, A: 0.4}, (C,): {EOS: 1.0},
                (B, A): {D: 0.5, EOS: 0.5}}
LONG: Table = {(): {A: 1.0}, (A,): {C: 1.0}, (A, C): {A: 1.0}, (A, C, A): {EOS: 0.9, B: 0.1},
               (A, C, A, B): {EOS: 1.0}}


def _two_sources() -> SourceModel:
    return SourceModel({7: QUICK, 8: LONG}, unknown={EOS: 1.0})


def test_max_target_len_is_a_times_source_plus_b_capped() -> None:
    src = torch.zeros(3, 5, dtype=torch.long)
    assert max_target_len(src) == 16  # int(1.2 * 5 + 10)
    assert max_target_len(src, limit=12) == 12
    assert max_target_len(src, limit=40) == 16
    assert max_target_len(src, max_len_a=2.0, max_len_b=1) == 11
    assert max_target_len(torch.zeros(1, 7, dtype=torch.long), max_len_a=0.5, max_len_b=0) == 3


def test_strip_drops_specials_and_stops_at_the_first_eos() -> None:
    assert strip([A, B, EOS, C]) == [A, B]
    assert strip([PAD, BOS, A, PAD, B]) == [A, B]
    assert strip([EOS, A]) == []
    assert strip([]) == []


def test_greedy_pads_a_finished_sentence_and_stops_when_all_have_ended() -> None:
    m = _two_sources()
    out = greedy_decode(m, _src(7, 8), max_len=20)
    # source 7 ends at step 0; source 8 at step 3; nothing is decoded after that
    assert out.tolist() == [[EOS, PAD, PAD, PAD], [A, C, A, EOS]]
    assert m.calls == 4
    assert out.dtype == torch.long


def test_greedy_batch_rows_equal_single_sentence_decoding() -> None:
    batch = greedy_decode(_two_sources(), _src(8, 7, 8), max_len=20)
    for row, sid in zip(batch.tolist(), (8, 7, 8), strict=True):
        alone = greedy_decode(_two_sources(), _src(sid), max_len=20).tolist()[0]
        assert strip(row) == strip(alone)


def test_beam_batch_rows_equal_single_sentence_decoding() -> None:
    for lp in (0.0, 1.0):
        batch = beam_search(_two_sources(), _src(7, 8, 7), beam=2, max_len=8, len_penalty=lp)
        alone = [beam_search(_two_sources(), _src(s), beam=2, max_len=8, len_penalty=lp)[0]
                 for s in (7, 8, 7)]
        assert batch == alone
    # by hand: source 7 finishes EOS (log .5 = -0.69) at step 0 and C EOS (log .2 = -1.61,
    # -0.80 a token) at step 1, which beats B EOS (-1.71) to the second place
    for lp in (0.0, 1.0):
        assert beam_search(_two_sources(), _src(7, 8), beam=2, max_len=8, len_penalty=lp) \
            == [[], [A, C, A]]
    assert beam_search(_two_sources(), _src(7, 8), beam=3, max_len=8, len_penalty=1.0) \
        == [[], [A, C, A]]


def test_beam_search_stops_as_soon_as_every_sentence_has_beam_endings() -> None:
    m = SourceModel({7: QUICK}, unknown={EOS: 1.0})
    beam_search(m, _src(7), beam=2, max_len=30)
    assert m.calls == 2  # EOS at step 0, B EOS at step 1: two endings, stop


def test_default_beam_is_five() -> None:
    """The 6th most likely first token (9) is the only one that ends cheaply: five beams
    never keep it, six do."""
    first = {A: 0.2, B: 0.18, C: 0.16, D: 0.14, 8: 0.12, 9: 0.11, 10: 0.09}
    table: Table = {(): first, (9,): {EOS: 1.0}}
    for t in (A, B, C, D, 8, 10):
        table[(t,)] = {11: 1.0}
    m = SourceModel({1: table}, unknown={EOS: 0.01, 11: 0.99})
    default = beam_search(m, _src(1), max_len=6, len_penalty=0.0)
    assert default == beam_search(m, _src(1), beam=5, max_len=6, len_penalty=0.0)
    assert beam_search(m, _src(1), beam=6, max_len=6, len_penalty=0.0) == [[9]]
    assert default != [[9]]


def test_default_length_penalty_is_one() -> None:
    """Ending at once scores log .5 (-0.69); A B EOS scores -2.43 in all: -0.81 a token
    (len_penalty 1: the short one wins) but -0.27 with len_penalty 2 (the long one)."""
    table: Table = {(): {EOS: 0.5, A: 0.5}, (A,): {B: 0.5, C: 0.5},
                    (A, B): {EOS: 0.35, D: 0.65}, (A, C): {D: 1.0}}
    m = SourceModel({1: table}, unknown={EOS: 0.01, D: 0.99})
    default = beam_search(m, _src(1), beam=4, max_len=5)
    assert default == beam_search(m, _src(1), beam=4, max_len=5, len_penalty=1.0) == [[]]
    assert beam_search(m, _src(1), beam=4, max_len=5, len_penalty=2.0) == [[A, B]]


def test_without_max_len_the_length_is_capped_by_max_positions() -> None:
    m = SourceModel({}, unknown={A: 0.99, EOS: 0.01}, max_positions=3)
    out = greedy_decode(m, _src(1, 2))
    assert out.tolist() == [[A, A, A], [A, A, A]]
    m = SourceModel({}, unknown={A: 0.99, EOS: 0.01}, max_positions=3)
    assert beam_search(m, _src(1), beam=1) == [[A, A]]  # EOS forced at the 3rd step
    assert m.calls == 3
    m = SourceModel({}, unknown={A: 0.99, EOS: 0.01}, max_positions=64)
    assert greedy_decode(m, _src(1)).shape == (1, 13)  # int(1.2 * 3 + 10)


def test_a_model_without_positions_decodes_empty_sentences() -> None:
    m = SourceModel({}, unknown={A: 1.0}, max_positions=0)
    assert beam_search(m, _src(1, 2, 3), beam=2) == [[], [], []]
    assert m.calls == 0


def test_on_a_tie_the_first_ending_wins() -> None:
    """A EOS (step 1), then B C EOS and A D EOS (step 2) have exactly the same summed
    log-probability (three beams keep every candidate, whatever order topk gives ties)."""
    table: Table = {(): {A: 0.5, B: 0.5}, (A,): {EOS: 0.5, D: 0.5}, (B,): {C: 1.0},
                    (B, C): {EOS: 0.5, D: 0.5}}
    m = SourceModel({1: table}, unknown={EOS: 1.0})
    assert beam_search(m, _src(1), beam=3, max_len=6, len_penalty=0.0) == [[A]]


def test_decoding_keeps_the_sources_device_whatever_the_default_device() -> None:
    """Every tensor decoding makes lives on the source's device: a user whose default
    device is elsewhere (here "meta") still gets a CPU result from a CPU model."""
    expected_beam = beam_search(_two_sources(), _src(7, 8), beam=2, max_len=8)
    expected_greedy = greedy_decode(_two_sources(), _src(7, 8), max_len=8).tolist()
    src = _src(7, 8)
    with torch.device("meta"):
        assert beam_search(_two_sources(), src, beam=2, max_len=8) == expected_beam
        out = greedy_decode(_two_sources(), src, max_len=8)
    assert out.device == src.device and out.tolist() == expected_greedy


@pytest.mark.parametrize("beam", [1, 3])
def test_beam_search_returns_one_list_of_ints_per_source(beam: int) -> None:
    out = beam_search(_two_sources(), _src(8, 7), beam=beam, max_len=8)
    assert len(out) == 2 and all(isinstance(t, int) for row in out for t in row)
