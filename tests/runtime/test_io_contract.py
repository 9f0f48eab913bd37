"""Contract tests of a bundle's ``io`` section (``switchnas.runtime._io``): the request
builders, ``prepare_io``, ``validate_io`` with its exact messages and bounds, the word and
sentencepiece tokenizers, ``ImageIO``/``TranslationIO`` and ``load_io``."""

from __future__ import annotations

import io as _bytesio
import math
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from switchnas.runtime import BundleError
from switchnas.runtime._io import (
    MAX_VOCAB,
    SPECIAL_TOKENS,
    SPECIALS,
    ImageIO,
    TranslationIO,
    WordTokenizer,
    _SentencePiece,
    image_classification_io,
    load_io,
    prepare_io,
    translation_io,
    validate_io,
)

VOCAB = [*SPECIAL_TOKENS, "a", "b"]
PREFIX = "invalid bundle manifest: "
SPEC_LIST = "['<pad>', '<s>', '</s>', '<unk>']"


def _raises(exc: type[Exception], text: str) -> Any:
    """``pytest.raises`` on the exact, whole message ``text``."""
    import re
    return pytest.raises(exc, match="^" + re.escape(text) + "$")


# -- image_classification_io -------------------------------------------------------------------
def test_image_request_defaults_and_conversion() -> None:
    req = image_classification_io(mean=[1, 2, 3], std=(0.5, 1, 2))
    assert req == {"task": "image_classification", "channel_order": "RGB",
                   "interpolation": "bilinear", "mean": [1.0, 2.0, 3.0],
                   "std": [0.5, 1.0, 2.0]}
    assert all(type(v) is float for v in req["mean"] + req["std"])
    req = image_classification_io(mean=[0.5], std=[0.5], labels=[1, "b"],
                                   channel_order="BGR", interpolation="nearest")
    assert req["labels"] == ["1", "b"]
    assert req["channel_order"] == "BGR" and req["interpolation"] == "nearest"
    assert image_classification_io(mean=[0.5], std=[0.5],
                                   interpolation="bicubic")["interpolation"] == "bicubic"


def test_image_request_channel_order_message() -> None:
    with _raises(ValueError, "io.channel_order must be one of ['RGB', 'BGR'], got 'rgb'"):
        image_classification_io(mean=[0.5], std=[0.5], channel_order="rgb")
    bad = "0123456789" * 5
    with _raises(ValueError, f"io.channel_order must be one of ['RGB', 'BGR'], got "
                 f"{bad[:40]!r}"):
        image_classification_io(mean=[0.5], std=[0.5], channel_order=bad)


def test_image_request_interpolation_message() -> None:
    with _raises(ValueError, "io.interpolation must be one of ['bilinear', 'nearest', "
                 "'bicubic'], got 'area'"):
        image_classification_io(mean=[0.5], std=[0.5], interpolation="area")


def test_image_request_mean_bounds() -> None:
    image_classification_io(mean=[0.0] * 16, std=[1.0] * 16)
    image_classification_io(mean=[1e6, -1e6], std=[1.0, 1.0])
    with _raises(ValueError, "io.mean must be 1 to 16 finite numbers, got []"):
        image_classification_io(mean=[], std=[])
    with pytest.raises(ValueError, match=r"^io\.mean must be 1 to 16 finite numbers, got "):
        image_classification_io(mean=[0.0] * 17, std=[1.0] * 17)
    for bad in (1e6 + 1, -1e6 - 1, math.nan, math.inf):
        with pytest.raises(ValueError, match=r"^io\.mean must be 1 to 16 finite numbers"):
            image_classification_io(mean=[bad], std=[1.0])
    long_mean = [0.123456789] * 40
    with pytest.raises(ValueError) as err:
        validate_io({"task": "image_classification", "channel_order": "RGB",
                     "interpolation": "bilinear", "mean": long_mean, "std": [1.0]}, [], {})
    assert str(err.value) == (PREFIX + "io.mean must be 1 to 16 finite numbers, got "
                              + repr(long_mean)[:80])


def test_image_request_std_bounds() -> None:
    image_classification_io(mean=[0.0], std=[1e6])
    image_classification_io(mean=[0.0], std=[1e-9])
    with _raises(ValueError, "io.std must be 1 positive finite numbers (one per mean), "
                 "got [0.0]"):
        image_classification_io(mean=[0.0], std=[0.0])
    with _raises(ValueError, "io.std must be 1 positive finite numbers (one per mean), "
                 "got [-1.0]"):
        image_classification_io(mean=[0.0], std=[-1.0])
    with _raises(ValueError, "io.std must be 1 positive finite numbers (one per mean), "
                 "got [1000001.0]"):
        image_classification_io(mean=[0.0], std=[1e6 + 1])
    with _raises(ValueError, "io.std must be 2 positive finite numbers (one per mean), "
                 "got [1.0]"):
        image_classification_io(mean=[0.0, 0.0], std=[1.0])
    with pytest.raises(ValueError, match=r"^io\.std must be 1 positive"):
        image_classification_io(mean=[0.0], std=[math.nan])


def test_image_request_labels_bounds() -> None:
    msg = "io.labels must be 1 to 100000 strings of at most 256 characters"
    with _raises(ValueError, msg):
        image_classification_io(mean=[0.0], std=[1.0], labels=[])
    assert image_classification_io(mean=[0.0], std=[1.0], labels=["x" * 256])["labels"]
    with _raises(ValueError, msg):
        image_classification_io(mean=[0.0], std=[1.0], labels=["x" * 257])
    with _raises(ValueError, msg):
        image_classification_io(mean=[0.0], std=[1.0], labels=["a"] * 100_001)
    assert len(image_classification_io(mean=[0.0], std=[1.0],
                                       labels=["a"] * 100_000)["labels"]) == 100_000


# -- translation_io ----------------------------------------------------------------------------
NEITHER = ("translation_io needs either src_vocab and tgt_vocab (word vocabularies) or "
           "sentencepiece_model, not both")


def test_translation_request_needs_exactly_one_tokenizer(tmp_path: Path) -> None:
    model = tmp_path / "m.model"
    model.write_bytes(b"x")
    for kw in ({}, {"src_vocab": VOCAB}, {"tgt_vocab": VOCAB},
               {"src_vocab": VOCAB, "tgt_vocab": VOCAB, "sentencepiece_model": model},
               {"src_vocab": VOCAB, "sentencepiece_model": model}):
        with _raises(ValueError, NEITHER):
            translation_io(**kw)


def test_translation_request_settings(tmp_path: Path) -> None:
    req = translation_io(src_vocab=tuple(VOCAB), tgt_vocab=VOCAB + ["c"], beam=1,
                         len_penalty=2, max_len_a=0, max_len_b=0)
    assert req == {"task": "translation",
                   "decoding": {"beam": 1, "len_penalty": 2.0, "max_len_a": 0.0,
                                "max_len_b": 0},
                   "tokenizer": {"kind": "words", "src_vocab": VOCAB,
                                 "tgt_vocab": VOCAB + ["c"]}}
    assert type(req["decoding"]["len_penalty"]) is float
    assert type(req["decoding"]["max_len_a"]) is float
    with _raises(ValueError, f"sentencepiece_model={str(tmp_path / 'no')!r} is not a file"):
        translation_io(sentencepiece_model=tmp_path / "no")
    with pytest.raises(ValueError, match="is not a file"):
        translation_io(sentencepiece_model=tmp_path)
    model = tmp_path / "m.model"
    model.write_bytes(b"x")
    req = translation_io(sentencepiece_model=str(model))
    assert req == {"task": "translation",
                   "decoding": {"beam": 5, "len_penalty": 1.0, "max_len_a": 1.2,
                                "max_len_b": 10},
                   "tokenizer": {"kind": "sentencepiece", "model": str(model)}}


@pytest.mark.parametrize("kw,text", [
    ({"beam": 0}, "io.decoding.beam must be an integer in [1, 64], got 0"),
    ({"beam": 65}, "io.decoding.beam must be an integer in [1, 64], got 65"),
    ({"beam": True}, "io.decoding.beam must be an integer in [1, 64], got True"),
    ({"beam": 2.0}, "io.decoding.beam must be an integer in [1, 64], got 2.0"),
    ({"len_penalty": 10.5}, "io.decoding.len_penalty must be a number in [-10, 10], got 10.5"),
    ({"len_penalty": -10.5},
     "io.decoding.len_penalty must be a number in [-10, 10], got -10.5"),
    ({"len_penalty": math.nan}, "io.decoding.len_penalty must be a number in [-10, 10], got nan"),
    ({"max_len_a": -0.5}, "io.decoding.max_len_a must be a number in [0, 100], got -0.5"),
    ({"max_len_a": 100.5}, "io.decoding.max_len_a must be a number in [0, 100], got 100.5"),
    ({"max_len_b": -1}, "io.decoding.max_len_b must be an integer in [0, 100000], got -1"),
    ({"max_len_b": 100_001},
     "io.decoding.max_len_b must be an integer in [0, 100000], got 100001"),
    ({"max_len_b": 3.0}, "io.decoding.max_len_b must be an integer in [0, 100000], got 3.0"),
    ({"max_len_b": False},
     "io.decoding.max_len_b must be an integer in [0, 100000], got False"),
])
def test_translation_request_bad_decoding(kw: dict[str, Any], text: str) -> None:
    with _raises(ValueError, text):
        translation_io(src_vocab=VOCAB, tgt_vocab=VOCAB, **kw)


def test_translation_request_decoding_bounds_are_inclusive() -> None:
    for kw in ({"beam": 1}, {"beam": 64}, {"len_penalty": -10}, {"len_penalty": 10},
               {"max_len_a": 0}, {"max_len_a": 100}, {"max_len_b": 0},
               {"max_len_b": 100_000}):
        translation_io(src_vocab=VOCAB, tgt_vocab=VOCAB, **kw)


def test_translation_request_vocab_checks() -> None:
    with _raises(ValueError, "src_vocab must list 5 to 1000000 tokens"):
        translation_io(src_vocab=list(SPECIAL_TOKENS), tgt_vocab=VOCAB)
    with _raises(ValueError, "tgt_vocab must list 5 to 1000000 tokens"):
        translation_io(src_vocab=VOCAB, tgt_vocab=list(SPECIAL_TOKENS))
    translation_io(src_vocab=[*SPECIAL_TOKENS, "a"], tgt_vocab=[*SPECIAL_TOKENS, "a"])
    with _raises(ValueError, f"src_vocab must start with the specials {SPEC_LIST}, got "
                 "['<s>', '<pad>', '</s>', '<unk>']"):
        translation_io(src_vocab=["<s>", "<pad>", "</s>", "<unk>", "a"], tgt_vocab=VOCAB)
    with _raises(ValueError, "tgt_vocab[5] '' is empty, repeated, too long or holds "
                 "whitespace"):
        translation_io(src_vocab=VOCAB, tgt_vocab=[*SPECIAL_TOKENS, "a", ""])
    with _raises(ValueError, "src_vocab[6] 'a' is empty, repeated, too long or holds "
                 "whitespace"):
        translation_io(src_vocab=[*SPECIAL_TOKENS, "a", "b", "a"], tgt_vocab=VOCAB)
    with _raises(ValueError, "src_vocab[4] 'a b' is empty, repeated, too long or holds "
                 "whitespace"):
        translation_io(src_vocab=[*SPECIAL_TOKENS, "a b"], tgt_vocab=VOCAB)
    with _raises(ValueError, "src_vocab[4] 'a\\tb' is empty, repeated, too long or holds "
                 "whitespace"):
        translation_io(src_vocab=[*SPECIAL_TOKENS, "a\tb"], tgt_vocab=VOCAB)
    with _raises(ValueError, "src_vocab[4] '7' is empty, repeated, too long or holds "
                 "whitespace"):
        translation_io(src_vocab=[*SPECIAL_TOKENS, 7], tgt_vocab=VOCAB)
    translation_io(src_vocab=[*SPECIAL_TOKENS, "x" * 256], tgt_vocab=VOCAB)
    with _raises(ValueError, f"src_vocab[4] {'x' * 40!r} is empty, repeated, too long or "
                 "holds whitespace"):
        translation_io(src_vocab=[*SPECIAL_TOKENS, "x" * 257], tgt_vocab=VOCAB)


# -- prepare_io --------------------------------------------------------------------------------
class _ImageNet:
    def __init__(self, channels: int = 3):
        self.channels = channels

    def example_input(self, config: Any, batch: int = 7) -> Any:
        assert batch == 1
        return SimpleNamespace(shape=(batch, self.channels, config["r"], config["r"]))


MEMBERS = [{"id": "m0", "config": {"r": 8}}, {"id": "m1", "config": {"r": 12}}]


def test_prepare_image_io() -> None:
    req = image_classification_io(mean=[0.1, 0.2, 0.3], std=[1, 1, 1], labels=["a", "b"])
    io, files = prepare_io(req, supernet=_ImageNet(), members=MEMBERS)
    assert files == {}
    assert io == {"task": "image_classification", "channel_order": "RGB",
                  "interpolation": "bilinear", "mean": [0.1, 0.2, 0.3], "std": [1.0] * 3,
                  "labels": ["a", "b"],
                  "input_shapes": {"m0": [3, 8, 8], "m1": [3, 12, 12]}}
    validate_io(io, MEMBERS, files)
    io, _ = prepare_io(image_classification_io(mean=[0.1] * 3, std=[1] * 3),
                       supernet=_ImageNet(), members=MEMBERS)
    assert "labels" not in io
    with _raises(BundleError, "io: member 'm0' takes input of shape [1, 8, 8], not "
                 "[3, H, W] (one mean/std per channel)"):
        prepare_io(req, supernet=_ImageNet(1), members=MEMBERS)


def test_prepare_io_refuses_other_tasks() -> None:
    tail = "is not one of ['image_classification', 'translation']; make it with " \
           "image_classification_io() or translation_io()"
    with _raises(BundleError, f"io request task 'speech' {tail}"):
        prepare_io({"task": "speech"}, supernet=None, members=[])
    with _raises(BundleError, f"io request task None {tail}"):
        prepare_io(["translation"], supernet=None, members=[])  # type: ignore[arg-type]
    with _raises(BundleError, f"io request task {repr('s' * 100)[:80]} {tail}"):
        prepare_io({"task": "s" * 100}, supernet=None, members=[])


def test_prepare_translation_io_words() -> None:
    req = translation_io(src_vocab=VOCAB, tgt_vocab=VOCAB + ["c"], beam=2)
    net = SimpleNamespace(max_positions=64)  # no src_vocab/tgt_vocab attributes at all
    io, files = prepare_io(req, supernet=net, members=[])
    assert files == {"vocab-src.txt": b"<pad>\n<s>\n</s>\n<unk>\na\nb\n",
                     "vocab-tgt.txt": b"<pad>\n<s>\n</s>\n<unk>\na\nb\nc\n"}
    assert io == {"task": "translation",
                  "tokenizer": {"kind": "words", "src_vocab": "vocab-src.txt",
                                "tgt_vocab": "vocab-tgt.txt", "src_size": 6, "tgt_size": 7},
                  "specials": {"pad": 0, "bos": 1, "eos": 2, "unk": 3},
                  "source_suffix": "eos",
                  "decoding": {"beam": 2, "len_penalty": 1.0, "max_len_a": 1.2,
                               "max_len_b": 10, "max_positions": 64}}
    assert "max_positions" not in req["decoding"]  # the request is not changed
    validate_io(io, [], files)
    ok = SimpleNamespace(max_positions=64, src_vocab=6, tgt_vocab=7)
    assert prepare_io(req, supernet=ok, members=[])[0] == io
    with _raises(BundleError, "io: src_vocab has 6 tokens, the super-net's embedding 7"):
        prepare_io(req, supernet=SimpleNamespace(max_positions=64, src_vocab=7),
                   members=[])
    with _raises(BundleError, "io: tgt_vocab has 7 tokens, the super-net's embedding 6"):
        prepare_io(req, supernet=SimpleNamespace(max_positions=64, tgt_vocab=6),
                   members=[])
    msg = "io: a translation bundle needs a super-net with max_positions"
    with _raises(BundleError, msg):
        prepare_io(req, supernet=SimpleNamespace(), members=[])
    with _raises(BundleError, msg):
        prepare_io(req, supernet=SimpleNamespace(max_positions=64.0), members=[])


# -- a tiny sentencepiece model ----------------------------------------------------------------
SENTENCES = ["hello world", "the cat sat on the mat", "hello cat", "world of the mat"] * 5


@pytest.fixture(scope="module")
def spm_bytes() -> bytes:
    spm = pytest.importorskip("sentencepiece")
    out = _bytesio.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(SENTENCES), model_writer=out,
                                   vocab_size=30, pad_id=0, bos_id=1, eos_id=2, unk_id=3,
                                   model_type="word", minloglevel=2, hard_vocab_limit=False)
    return out.getvalue()


def test_prepare_translation_io_sentencepiece(tmp_path: Path, spm_bytes: bytes) -> None:
    model = tmp_path / "spm.model"
    model.write_bytes(spm_bytes)
    req = translation_io(sentencepiece_model=model)
    io, files = prepare_io(req, supernet=SimpleNamespace(max_positions=32), members=[])
    assert io["tokenizer"] == {"kind": "sentencepiece", "model": "tokenizer.model"}
    assert files == {"tokenizer.model": spm_bytes}
    assert io["decoding"]["max_positions"] == 32
    validate_io(io, [], files)
    t = load_io(io, files.__getitem__, SimpleNamespace())
    assert isinstance(t, TranslationIO) and t.src is t.tgt
    assert t.postprocess(t.src.encode("hello world") + [2, 5]) == "hello world"


def test_sentencepiece_tokenizer(spm_bytes: bytes) -> None:
    sp = _SentencePiece(spm_bytes, "t")
    n = len(sp)
    assert isinstance(n, int) and n > 4
    ids = sp.encode("hello world")
    assert all(type(i) is int and 4 <= i < n for i in ids)
    assert sp.decode(ids) == "hello world"
    assert sp.decode([0, 1, *ids, 2, 3, n, n + 5]) == "hello world"
    assert sp.decode([]) == ""
    with pytest.raises(BundleError, match=r"^bundle tokenizer 't' is not a sentencepiece "
                       r"model \("):
        _SentencePiece(b"not a model", "t")


def test_sentencepiece_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentencepiece", None)
    with _raises(BundleError, "bundle tokenizer 'tok.model' is a sentencepiece model: "
                 "install the 'sentencepiece' package to translate with it"):
        _SentencePiece(b"", "tok.model")


def test_load_io_sentencepiece_size_must_fit_the_net(spm_bytes: bytes) -> None:
    io = {"task": "translation", "tokenizer": {"kind": "sentencepiece", "model": "t.model"},
          "decoding": {"beam": 1, "len_penalty": 1.0, "max_len_a": 1.0, "max_len_b": 0,
                       "max_positions": 8}}
    n = len(_SentencePiece(spm_bytes, "x"))
    assert isinstance(load_io(io, lambda _: spm_bytes, SimpleNamespace(src_vocab=n,
                                                                       tgt_vocab=n)),
                      TranslationIO)
    with _raises(BundleError, f"bundle tokenizer has {n} src tokens, the super-net's "
                 f"embedding {n + 1}"):
        load_io(io, lambda _: spm_bytes, SimpleNamespace(src_vocab=n + 1))


# -- validate_io -------------------------------------------------------------------------------
def _image(**extra: Any) -> dict[str, Any]:
    base = {"task": "image_classification", "channel_order": "RGB",
            "interpolation": "bilinear", "mean": [0.5], "std": [0.25],
            "input_shapes": {"m0": [1, 4, 4]}}
    base.update(extra)
    return base


M0 = [{"id": "m0"}]


def test_validate_io_top_level() -> None:
    with _raises(BundleError, PREFIX + "io must be an object"):
        validate_io([], [], {})
    with _raises(BundleError, PREFIX + "io.task must be one of ['image_classification', "
                 "'translation'], got 'speech'"):
        validate_io({"task": "speech"}, [], {})
    with _raises(BundleError, PREFIX + "io.task must be one of ['image_classification', "
                 f"'translation'], got {'s' * 40!r}"):
        validate_io({"task": "s" * 50}, [], {})
    with _raises(BundleError, PREFIX + "io.task must be one of ['image_classification', "
                 "'translation'], got 'None'"):
        validate_io({}, [], {})


def test_validate_image_io_shapes() -> None:
    validate_io(_image(), M0, {})
    validate_io(_image(input_shapes={"m0": [1, 65536, 1]}), M0, {})
    with _raises(BundleError, PREFIX + "io.input_shapes must give one shape per member "
                 "['m0']"):
        validate_io(_image(input_shapes={}), M0, {})
    with _raises(BundleError, PREFIX + "io.input_shapes must give one shape per member "
                 "['m0']"):
        validate_io(_image(input_shapes=[[1, 4, 4]]), M0, {})
    with _raises(BundleError, PREFIX + "io.input_shapes must give one shape per member "
                 "['m0']"):
        validate_io(_image(input_shapes={"m0": [1, 4, 4], "m1": [1, 4, 4]}), M0, {})
    for bad in ([1, 4], [2, 4, 4], [1, 0, 4], [1, 4, 65537], [1, True, 4], [1, 4.0, 4],
                (1, 4, 4), [1, 4, 4, 4]):
        with _raises(BundleError, PREFIX + f"io.input_shapes['m0'] must be [1, H, W], got "
                     f"{bad!r:.80}"):
            validate_io(_image(input_shapes={"m0": bad}), M0, {})
    long_id = "x" * 60
    with _raises(BundleError, PREFIX + f"io.input_shapes[{long_id[:40]!r}] must be [1, H, W],"
                 " got [1]"):
        validate_io(_image(input_shapes={long_id: [1]}), [{"id": long_id}], {})


def test_validate_image_io_fields() -> None:
    with _raises(BundleError, PREFIX + "io.channel_order must be one of ['RGB', 'BGR'], "
                 "got 'None'"):
        validate_io(_image(channel_order=None), M0, {})
    with pytest.raises(BundleError, match=r"^invalid bundle manifest: io\.mean must be"):
        validate_io(_image(mean=[True], std=[1.0]), M0, {})
    with pytest.raises(BundleError, match=r"^invalid bundle manifest: io\.mean must be"):
        validate_io(_image(mean=(0.5,)), M0, {})
    with pytest.raises(BundleError, match=r"^invalid bundle manifest: io\.std must be"):
        validate_io(_image(std=[True]), M0, {})
    with pytest.raises(BundleError, match=r"^invalid bundle manifest: io\.std must be"):
        validate_io(_image(std=(0.25,)), M0, {})
    with pytest.raises(BundleError, match=r"^invalid bundle manifest: io\.labels must be"):
        validate_io(_image(labels=["a", 1]), M0, {})
    with pytest.raises(BundleError, match=r"^invalid bundle manifest: io\.labels must be"):
        validate_io(_image(labels=("a",)), M0, {})
    validate_io(_image(labels=["a"]), M0, {})


def _translation(**tok: Any) -> dict[str, Any]:
    t = {"kind": "words", "src_vocab": "vocab-src.txt", "tgt_vocab": "vocab-tgt.txt",
         "src_size": 6, "tgt_size": 6}
    t.update(tok)
    return {"task": "translation", "tokenizer": t, "specials": dict(SPECIALS),
            "source_suffix": "eos",
            "decoding": {"beam": 5, "len_penalty": 1.0, "max_len_a": 1.2, "max_len_b": 10,
                         "max_positions": 64}}


FILES = {"vocab-src.txt": {}, "vocab-tgt.txt": {}}


def test_validate_translation_tokenizer() -> None:
    validate_io(_translation(), [], FILES)
    kinds = PREFIX + "io.tokenizer.kind must be one of ['words', 'sentencepiece']"
    with _raises(BundleError, kinds):
        validate_io(_translation(kind="bpe"), [], FILES)
    with _raises(BundleError, kinds):
        validate_io(dict(_translation(), tokenizer=["words"]), [], FILES)
    with _raises(BundleError, PREFIX + "io.tokenizer.src_vocab names 'vocab-src.txt', which "
                 "is not in 'files'"):
        validate_io(_translation(), [], {"vocab-tgt.txt": {}})
    with _raises(BundleError, PREFIX + "io.tokenizer.tgt_vocab names 'vocab-tgt.txt', which "
                 "is not in 'files'"):
        validate_io(_translation(), [], {"vocab-src.txt": {}})
    with _raises(BundleError, PREFIX + "io.tokenizer.src_vocab names '3', which is not in "
                 "'files'"):
        validate_io(_translation(src_vocab=3), [], {"3": {}, **FILES})
    with _raises(BundleError, PREFIX + f"io.tokenizer.src_vocab names {'x' * 80!r}, which is "
                 "not in 'files'"):
        validate_io(_translation(src_vocab="x" * 100), [], FILES)
    spm = {"kind": "sentencepiece", "model": "tokenizer.model"}
    io = dict(_translation(), tokenizer=spm)
    validate_io(io, [], {"tokenizer.model": {}})  # no sizes needed
    with _raises(BundleError, PREFIX + "io.tokenizer.model names 'tokenizer.model', which is "
                 "not in 'files'"):
        validate_io(io, [], FILES)


def test_validate_translation_sizes() -> None:
    validate_io(_translation(src_size=5, tgt_size=MAX_VOCAB), [], FILES)
    for k in ("src_size", "tgt_size"):
        for bad in (4, MAX_VOCAB + 1, None, True):
            with _raises(BundleError, PREFIX + f"io.tokenizer.{k} must be an integer in "
                         f"[5, 1000000], got {bad!r}"):
                validate_io(_translation(**{k: bad}), [], FILES)


def test_validate_translation_conventions() -> None:
    msg = (PREFIX + "io must use the specials {'pad': 0, 'bos': 1, 'eos': 2, 'unk': 3} with "
           "source_suffix 'eos' (the only convention this switchnas reads)")
    with _raises(BundleError, msg):
        validate_io(dict(_translation(), specials={"pad": 1, "bos": 0, "eos": 2, "unk": 3}),
                    [], FILES)
    with _raises(BundleError, msg):
        validate_io(dict(_translation(), source_suffix="bos"), [], FILES)
    io = _translation()
    del io["specials"]
    with _raises(BundleError, msg):
        validate_io(io, [], FILES)


def test_validate_translation_decoding() -> None:
    with _raises(BundleError, PREFIX + "io.decoding must be an object"):
        validate_io(dict(_translation(), decoding=[5]), [], FILES)
    for k, bad, text in (("max_positions", -1, "an integer in [0, 100000], got -1"),
                         ("max_positions", 100_001, "an integer in [0, 100000], got 100001"),
                         ("max_positions", None, "an integer in [0, 100000], got None"),
                         ("max_len_b", 1.5, "an integer in [0, 100000], got 1.5"),
                         ("beam", 65, "an integer in [1, 64], got 65"),
                         ("len_penalty", "1", "a number in [-10, 10], got '1'"),
                         ("max_len_a", 101, "a number in [0, 100], got 101")):
        io = _translation()
        io["decoding"][k] = bad
        with _raises(BundleError, PREFIX + f"io.decoding.{k} must be {text}"):
            validate_io(io, [], FILES)
    io = _translation()
    del io["decoding"]["max_positions"]
    with _raises(BundleError, PREFIX + "io.decoding.max_positions must be an integer in "
                 "[0, 100000], got None"):
        validate_io(io, [], FILES)
    io = _translation()
    io["decoding"]["max_positions"] = 100_000
    validate_io(io, [], FILES)
    io["decoding"]["max_len_a"] = "x" * 100
    with _raises(BundleError, PREFIX + "io.decoding.max_len_a must be a number in [0, 100], "
                 f"got {repr('x' * 100)[:40]}"):
        validate_io(io, [], FILES)


# -- WordTokenizer -----------------------------------------------------------------------------
def test_word_tokenizer_from_bytes() -> None:
    data = "\n".join(VOCAB).encode()
    for blob in (data, data + b"\n"):
        t = WordTokenizer.from_bytes(blob, "v.txt", 6)
        assert t.itos == VOCAB and len(t) == 6
        assert t.stoi == {w: i for i, w in enumerate(VOCAB)}
    with _raises(BundleError, "vocabulary 'v.txt' has 6 tokens, the manifest says 7"):
        WordTokenizer.from_bytes(data + b"\n", "v.txt", 7)
    with _raises(BundleError, "vocabulary 'v.txt' has 7 tokens, the manifest says 6"):
        WordTokenizer.from_bytes(data + b"\n\n", "v.txt", 6)
    with pytest.raises(BundleError, match=r"^vocabulary 'v\.txt' is not UTF-8 text \("):
        WordTokenizer.from_bytes(b"\xff\xfe", "v.txt", 1)
    with _raises(BundleError, PREFIX + f"vocabulary 'v.txt' must start with the specials "
                 f"{SPEC_LIST}, got ['a', 'b', 'c', 'd']"):
        WordTokenizer.from_bytes(b"a\nb\nc\nd\ne\n", "v.txt", 5)
    with _raises(BundleError, PREFIX + "vocabulary 'v.txt'[5] 'a' is empty, repeated, too "
                 "long or holds whitespace"):
        WordTokenizer.from_bytes(b"<pad>\n<s>\n</s>\n<unk>\na\na\n", "v.txt", 6)


def test_word_tokenizer_size_limit() -> None:
    limit = 32 << 20
    with _raises(BundleError, f"vocabulary 'v' has {limit + 1} bytes, more than {limit}"):
        WordTokenizer.from_bytes(b"a" * (limit + 1), "v", 1)
    with _raises(BundleError, "vocabulary 'v' has 1 tokens, the manifest says 2"):
        WordTokenizer.from_bytes(b"a" * limit, "v", 2)


def test_word_tokenizer_encode_decode() -> None:
    t = WordTokenizer(VOCAB)
    assert t.encode("  a b\tzz\nb ") == [4, 5, 3, 5]
    assert t.encode("") == []
    assert t.decode([0, 1, 4, 2, 3, 5, 6, 99, -1]) == "a b"
    assert t.decode([5, 4]) == "b a"
    assert t.decode([]) == ""


# -- ImageIO -----------------------------------------------------------------------------------
def _img(**extra: Any) -> ImageIO:
    io = {"task": "image_classification", "channel_order": "RGB",
          "interpolation": "bilinear", "mean": [0.0, 0.5, 1.0], "std": [1.0, 0.5, 2.0],
          "input_shapes": {"m": [3, 2, 2]}}
    io.update(extra)
    return ImageIO(io)


def test_image_io_attributes() -> None:
    io = {"task": "image_classification", "channel_order": "BGR", "interpolation": "nearest",
          "mean": [0.1, 0.2], "std": [1.0, 2.0], "labels": ["x"],
          "input_shapes": {"a": [2, 3, 4]}}
    im = ImageIO(io)
    assert (im.mean, im.std, im.channels) == ([0.1, 0.2], [1.0, 2.0], 2)
    assert (im.channel_order, im.interpolation) == ("BGR", "nearest")
    assert im.labels == ["x"] and im.input_shapes == {"a": [2, 3, 4]}
    assert im.task == "image_classification"
    io["input_shapes"]["a"].append(9)
    assert im.input_shapes == {"a": [2, 3, 4]}


def test_image_preprocess_normalises_exactly() -> None:
    im = _img()
    arr = np.zeros((2, 2, 3), dtype=np.uint8)
    arr[..., 0] = 255
    arr[..., 1] = 51
    x = im.preprocess(arr, "m")
    assert x.dtype == torch.float32 and tuple(x.shape) == (1, 3, 2, 2)
    want = torch.tensor([1.0, (0.2 - 0.5) / 0.5, (0.0 - 1.0) / 2.0]).view(1, 3, 1, 1)
    assert torch.allclose(x, want.expand(1, 3, 2, 2), atol=1e-6)
    bgr = _img(channel_order="BGR").preprocess(arr, "m")
    want = torch.tensor([0.0, (0.2 - 0.5) / 0.5, (1.0 - 1.0) / 2.0]).view(1, 3, 1, 1)
    assert torch.allclose(bgr, want.expand(1, 3, 2, 2), atol=1e-6)


def test_image_preprocess_input_forms() -> None:
    im = _img()
    gray = np.full((2, 2), 0.5, dtype=np.float64)
    x = im.preprocess(gray, "m")
    want = torch.tensor([0.5, 0.0, -0.25]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    assert x.dtype == torch.float32 and torch.allclose(x, want)
    assert torch.allclose(im.preprocess(torch.full((2, 2), 0.5), "m"), want)
    assert torch.allclose(im.preprocess(torch.full((1, 2, 2), 0.5, dtype=torch.float64),
                                        "m"), want)
    batch = torch.full((2, 3, 2, 2), 0.5)
    out = im.preprocess(batch, "m")
    assert tuple(out.shape) == (2, 3, 2, 2)
    assert torch.allclose(out[1], torch.tensor([0.5, 0.0, -0.25]).view(3, 1, 1).expand(3, 2, 2))
    chw = torch.zeros((3, 2, 2), dtype=torch.uint8)
    assert tuple(im.preprocess(chw, "m").shape) == (1, 3, 2, 2)


def test_image_preprocess_resizes() -> None:
    im = _img(input_shapes={"m": [3, 2, 2]})
    img = torch.zeros((3, 4, 4))
    img[:, :2, :2] = 1.0
    x = im.preprocess(img, "m")
    assert tuple(x.shape) == (1, 3, 2, 2)
    one = torch.zeros((1, 3, 4, 4))
    one[:, :, :2, :2] = 1.0
    mean = torch.tensor([0.0, 0.5, 1.0]).view(1, 3, 1, 1)
    std = torch.tensor([1.0, 0.5, 2.0]).view(1, 3, 1, 1)
    want = torch.nn.functional.interpolate((one - mean) / std, size=(2, 2), mode="bilinear",
                                           align_corners=False)
    assert torch.allclose(x, want)
    im = _img(input_shapes={"m": [3, 3, 5]}, interpolation="nearest")
    x = im.preprocess(np.zeros((4, 4, 3), dtype=np.uint8), "m")
    assert tuple(x.shape) == (1, 3, 3, 5)
    ramp = torch.arange(4.0).view(1, 1, 4).expand(3, 4, 4) / 4
    got = _img(input_shapes={"m": [3, 4, 2]}, interpolation="nearest").preprocess(ramp, "m")
    assert torch.allclose(got[0, 0, 0], torch.tensor([0.0, 0.5]))
    bic = _img(input_shapes={"m": [3, 4, 2]}, interpolation="bicubic").preprocess(ramp, "m")
    wantb = torch.nn.functional.interpolate(((ramp[None] - mean) / std), size=(4, 2),
                                            mode="bicubic", align_corners=False)
    assert torch.allclose(bic, wantb)


def test_image_preprocess_errors() -> None:
    im = _img()
    with _raises(ValueError, "an image array must be HxW or HxWxC, got shape (2, 2, 2, 3)"):
        im.preprocess(np.zeros((2, 2, 2, 3), dtype=np.uint8), "m")
    with _raises(ValueError, "an image array must be HxW or HxWxC, got shape (4,)"):
        im.preprocess(np.zeros(4, dtype=np.uint8), "m")
    with _raises(ValueError, "an image tensor must be CxHxW, NxCxHxW or HxW, got shape (4,)"):
        im.preprocess(torch.zeros(4), "m")
    with _raises(ValueError, "an image tensor must be CxHxW, NxCxHxW or HxW, got shape "
                 "(1, 1, 3, 2, 2)"):
        im.preprocess(torch.zeros((1, 1, 3, 2, 2)), "m")
    with _raises(ValueError, "image must be a numpy array (HxWxC) or a torch tensor (CxHxW), "
                 "got list"):
        im.preprocess([[0.0]], "m")
    with _raises(ValueError, "image dtype int32 is not allowed: use uint8 (0-255) or floats "
                 "in [0, 1]"):
        im.preprocess(np.zeros((2, 2, 3), dtype=np.int32), "m")
    with _raises(ValueError, "image dtype int64 is not allowed: use uint8 (0-255) or floats "
                 "in [0, 1]"):
        im.preprocess(torch.zeros((3, 2, 2), dtype=torch.int64), "m")
    with _raises(ValueError, "image has 2 channels; this bundle's members take 3 (or 1, "
                 "repeated)"):
        im.preprocess(torch.zeros((2, 2, 2)), "m")
    one = ImageIO({"task": "image_classification", "channel_order": "RGB",
                   "interpolation": "bilinear", "mean": [0.0], "std": [1.0],
                   "input_shapes": {"m": [1, 2, 2]}})
    assert tuple(one.preprocess(torch.zeros((1, 2, 2)), "m").shape) == (1, 1, 2, 2)
    with _raises(ValueError, "image has 3 channels; this bundle's members take 1 (or 1, "
                 "repeated)"):
        one.preprocess(torch.zeros((3, 2, 2)), "m")


def test_image_postprocess() -> None:
    im = _img(labels=["cat", "dog", "eel"])
    out = im.postprocess(torch.tensor([[0.0, 0.0, math.log(2.0)], [5.0, 0.0, 0.0]]))
    assert [lab for lab, _ in out] == ["eel", "cat"]
    assert out[0][1] == pytest.approx(0.5, abs=1e-6)
    assert out[1][1] == pytest.approx(math.exp(5) / (math.exp(5) + 2), abs=1e-6)
    assert all(type(p) is float for _, p in out)
    assert im.postprocess([0.0, 1.0, 0.0]) == [("dog", pytest.approx(
        math.e / (math.e + 2), abs=1e-6))]
    assert _img().postprocess(np.array([[0.0, 0.0, 0.0, 1.0]]))[0][0] == "3"
    with _raises(ValueError, "expected logits (N, classes), got shape (1, 1, 3)"):
        im.postprocess(torch.zeros((1, 1, 3)))
    with _raises(ValueError, "logits have 2 classes, the bundle labels 3"):
        im.postprocess(torch.zeros((1, 2)))


# -- TranslationIO / load_io ---------------------------------------------------------------------
DEC = {"beam": 3, "len_penalty": 0.5, "max_len_a": 1.5, "max_len_b": 2, "max_positions": 4}


def test_translation_io_settings_and_max_len() -> None:
    t = TranslationIO({"decoding": DEC}, WordTokenizer(VOCAB), WordTokenizer(VOCAB))
    assert (t.beam, t.len_penalty, t.max_len_a, t.max_len_b, t.max_positions) == \
        (3, 0.5, 1.5, 2, 4)
    assert t.task == "translation"
    assert t.max_len(0) == 2
    assert t.max_len(1) == 3  # int(1.5 + 2)
    assert t.max_len(2) == 4  # 5 capped at max_positions
    t2 = TranslationIO({"decoding": dict(DEC, max_positions=100)}, None, None)
    assert t2.max_len(3) == 6  # int(4.5 + 2)


def test_translation_io_pre_and_postprocess() -> None:
    t = TranslationIO({"decoding": DEC}, WordTokenizer(VOCAB), WordTokenizer(VOCAB))
    x = t.preprocess("a b zz")
    assert x.dtype == torch.long and x.tolist() == [[4, 5, 3, 2]]
    with _raises(ValueError, "text has 4 tokens; this bundle's members take at most 3"):
        t.preprocess("a b a b")
    with _raises(ValueError, "text must be a str, got bytes"):
        t.preprocess(b"a")
    assert t.postprocess([4, 5, 2, 4]) == "a b"
    assert t.postprocess(torch.tensor([1, 5, 0, 4])) == "b a"
    assert t.postprocess([2, 4]) == ""
    assert t.postprocess((5,)) == "b"


def test_load_io_words() -> None:
    assert load_io(None, lambda _: b"", None) is None
    files = {"s.txt": "\n".join(VOCAB).encode() + b"\n",
             "t.txt": "\n".join(VOCAB + ["c"]).encode() + b"\n"}
    io = {"task": "translation",
          "tokenizer": {"kind": "words", "src_vocab": "s.txt", "tgt_vocab": "t.txt",
                        "src_size": 6, "tgt_size": 7}, "decoding": DEC}
    t = load_io(io, files.__getitem__, SimpleNamespace(src_vocab=6, tgt_vocab=7))
    assert isinstance(t, TranslationIO)
    assert t.src.itos == VOCAB and t.tgt.itos == VOCAB + ["c"]
    assert t.postprocess([6, 4]) == "c a"
    with _raises(BundleError, "bundle tokenizer has 7 tgt tokens, the super-net's embedding 8"):
        load_io(io, files.__getitem__, SimpleNamespace(src_vocab=6, tgt_vocab=8))
    with _raises(BundleError, "bundle tokenizer has 6 src tokens, the super-net's embedding 5"):
        load_io(io, files.__getitem__, SimpleNamespace(src_vocab=5))
    with _raises(BundleError, "vocabulary 't.txt' has 7 tokens, the manifest says 6"):
        load_io(dict(io, tokenizer=dict(io["tokenizer"], tgt_size=6)), files.__getitem__,
                None)
    img = load_io(_image(), files.__getitem__, None)
    assert isinstance(img, ImageIO) and img.input_shapes == {"m0": [1, 4, 4]}


def test_image_preprocess_is_float32_whatever_the_default_dtype() -> None:
    """The documented output is float32, also under ``torch.set_default_dtype(float64)``."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        x = _img().preprocess(np.full((2, 2, 3), 0.5), "m")
    finally:
        torch.set_default_dtype(before)
    assert x.dtype == torch.float32
    assert torch.allclose(x, torch.tensor([0.5, 0.0, -0.25],
                                          dtype=torch.float32).view(1, 3, 1, 1).expand(1, 3, 2, 2))


def test_load_io_names_a_bad_sentencepiece_file() -> None:
    pytest.importorskip("sentencepiece")
    io = {"task": "translation", "tokenizer": {"kind": "sentencepiece", "model": "t.model"},
          "decoding": DEC}
    with pytest.raises(BundleError, match=r"^bundle tokenizer 't\.model' is not a "
                       r"sentencepiece model \("):
        load_io(io, lambda name: b"garbage", None)
