"""Unit tests of a bundle's ``io`` section: request builders, validation, ImageIO."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from switchnas.runtime import BundleError
from switchnas.runtime._io import (
    SPECIAL_TOKENS,
    SPECIALS,
    ImageIO,
    image_classification_io,
    translation_io,
    validate_io,
)

VOCAB = [*SPECIAL_TOKENS, "a", "b"]


def test_bad_interpolation_is_quoted_to_40_characters() -> None:
    """The error names the refused interpolation, cut to its first 40 characters."""
    bad = "abcdefghij" * 5
    with pytest.raises(ValueError, match="interpolation") as err:
        image_classification_io(mean=[0.5], std=[0.5], interpolation=bad)
    assert str(err.value).endswith(f"got {bad[:40]!r}")


def test_translation_io_defaults() -> None:
    """The documented decoding defaults: beam 5, length penalty 1, ``1.2 * n + 10``."""
    req = translation_io(src_vocab=VOCAB, tgt_vocab=VOCAB)
    assert req["decoding"] == {"beam": 5, "len_penalty": 1.0, "max_len_a": 1.2, "max_len_b": 10}
    assert req["tokenizer"] == {"kind": "words", "src_vocab": VOCAB, "tgt_vocab": VOCAB}


def test_translation_io_sentencepiece(tmp_path: Path) -> None:
    """A sentencepiece model gives a tokenizer of kind ``sentencepiece`` naming the file."""
    model = tmp_path / "spm.model"
    model.write_bytes(b"not parsed here")
    req = translation_io(sentencepiece_model=model)
    assert req["tokenizer"] == {"kind": "sentencepiece", "model": str(model)}
    with pytest.raises(ValueError, match="is not a file"):
        translation_io(sentencepiece_model=tmp_path / "missing.model")


def _translation(src_size: Any) -> dict[str, Any]:
    return {"task": "translation",
            "tokenizer": {"kind": "words", "src_vocab": "vocab-src.txt",
                          "tgt_vocab": "vocab-tgt.txt", "src_size": src_size, "tgt_size": 6},
            "specials": dict(SPECIALS), "source_suffix": "eos",
            "decoding": {"beam": 5, "len_penalty": 1.0, "max_len_a": 1.2, "max_len_b": 10,
                         "max_positions": 64}}


FILES = {"vocab-src.txt": {}, "vocab-tgt.txt": {}}


@pytest.mark.parametrize("size", [10.0, 6.5, "10", None, True, [10]])
def test_vocab_sizes_must_be_integers(size: Any) -> None:
    """``src_size`` must be an int (not a bool, a float or a string) in [5, MAX_VOCAB]."""
    validate_io(_translation(10), [], FILES)  # an integer is accepted
    with pytest.raises(BundleError, match=r"io\.tokenizer\.src_size must be an integer"):
        validate_io(_translation(size), [], FILES)


def _image(**extra: Any) -> dict[str, Any]:
    return {"task": "image_classification", "channel_order": "RGB",
            "interpolation": "bilinear", "mean": [0.5], "std": [0.25],
            "input_shapes": {"m0": [1, 4, 4]}, **extra}


def test_image_io_labels() -> None:
    """ImageIO keeps the section's labels, and has none when the section has none."""
    assert ImageIO(_image(labels=["cat", "dog"])).labels == ["cat", "dog"]
    assert ImageIO(_image()).labels is None
    assert ImageIO(_image()).postprocess([[0.0, 1.0]])[0][0] == "1"
