"""A bundle's ``io`` section: what its members take and give, so that a device can turn
raw input into a member's input and its output into an answer with the bundle alone.

Two tasks:

* ``"image_classification"``: per member the input shape ``[C, H, W]`` (OFA: the
  resolution is the member's ``r``), the channel order, per-channel ``mean``/``std``
  applied to pixels scaled to [0, 1], the resize mode and the class labels.
  :meth:`ImageIO.preprocess` takes an ``HxWxC`` / ``HxW`` numpy array or a ``CxHxW`` /
  ``NxCxHxW`` / ``HxW`` torch tensor (``uint8`` is divided by 255, floats are taken as
  already in [0, 1]), normalises it and resizes it to the active member's resolution with
  ``torch.nn.functional.interpolate``; :meth:`ImageIO.postprocess` turns logits into
  ``(label, probability)`` per row.
* ``"translation"``: the tokenizer (word-level vocabularies, one token per line, line
  ``i`` is id ``i``, stored as bundle files with checksums like every other file; or a
  sentencepiece model, which needs the ``sentencepiece`` package), the special ids
  (pad 0, bos 1, eos 2, unk 3: a source is its tokens followed by EOS, decoding starts
  from BOS and stops at EOS) and the decoding settings (beam, length penalty, maximum
  length ``a * source length + b`` capped at ``max_positions``).

The tokenizer is pure Python. Validation (:func:`validate_io`) runs on the parsed
manifest, before anything else is read; this module imports torch only when a tensor is
made.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ._manifest import BundleError

__all__ = [
    "ImageIO",
    "TranslationIO",
    "WordTokenizer",
    "image_classification_io",
    "load_io",
    "prepare_io",
    "translation_io",
    "validate_io",
]

TASKS = ("image_classification", "translation")
SPECIALS = {"pad": 0, "bos": 1, "eos": 2, "unk": 3}
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>")
CHANNEL_ORDERS = ("RGB", "BGR")
INTERPOLATIONS = ("bilinear", "nearest", "bicubic")
TOKENIZER_KINDS = ("words", "sentencepiece")
SRC_VOCAB_FILE = "vocab-src.txt"
TGT_VOCAB_FILE = "vocab-tgt.txt"
SPM_FILE = "tokenizer.model"
#: limits on what an ``io`` section and its files may hold
MAX_LABELS = 100_000
MAX_LABEL_CHARS = 256
MAX_VOCAB = 1_000_000
MAX_TOKEN_CHARS = 256
MAX_VOCAB_BYTES = 32 << 20
MAX_BEAM = 64


# -- writing ---------------------------------------------------------------------------------
def image_classification_io(*, mean: Sequence[float], std: Sequence[float],
                            labels: Sequence[str] | None = None, channel_order: str = "RGB",
                            interpolation: str = "bilinear") -> dict[str, Any]:
    """The ``io`` request of an image classifier, for ``write_bundle(io=...)``.

    Args:
        mean: per-channel mean subtracted from pixels scaled to [0, 1].
        std: per-channel standard deviation (positive) they are divided by.
        labels: class names by output index (default: the index as a string).
        channel_order: the order the members' input channels are in (``"RGB"``/``"BGR"``).
        interpolation: how an image is resized to a member's resolution
            (``torch.nn.functional.interpolate`` mode).

    Returns:
        A dict that :func:`write_bundle` completes with each member's input shape.

    Raises:
        ValueError: a bad value, named with what is allowed.
    """
    req = {"task": "image_classification", "channel_order": channel_order,
           "interpolation": interpolation, "mean": [float(v) for v in mean],
           "std": [float(v) for v in std]}
    if labels is not None:
        req["labels"] = [str(v) for v in labels]
    _check_image(req, "io", ValueError)
    return req


def translation_io(*, src_vocab: Sequence[str] | None = None,
                   tgt_vocab: Sequence[str] | None = None,
                   sentencepiece_model: str | os.PathLike[str] | None = None, beam: int = 5,
                   len_penalty: float = 1.0, max_len_a: float = 1.2,
                   max_len_b: int = 10) -> dict[str, Any]:
    """The ``io`` request of a translation model, for ``write_bundle(io=...)``.

    Args:
        src_vocab: word-level source vocabulary, id order, specials
            (``<pad> <s> </s> <unk>``) first; text is split on whitespace.
        tgt_vocab: target vocabulary likewise.
        sentencepiece_model: instead of the vocabularies, a sentencepiece model file shared
            by both sides (a device then needs the ``sentencepiece`` package).
        beam: beam size (1: greedy).
        len_penalty: hypotheses are scored by log-probability / length ** len_penalty.
        max_len_a, max_len_b: at most ``a * source tokens + b`` target tokens.

    Returns:
        A dict for ``write_bundle(io=...)``.

    Raises:
        ValueError: neither or both tokenizers given, or a bad setting.
    """
    words = src_vocab is not None or tgt_vocab is not None
    if words == (sentencepiece_model is not None) or (words and (src_vocab is None
                                                                 or tgt_vocab is None)):
        raise ValueError("translation_io needs either src_vocab and tgt_vocab (word "
                         "vocabularies) or sentencepiece_model, not both")
    req: dict[str, Any] = {"task": "translation",
                           "decoding": {"beam": beam, "len_penalty": float(len_penalty),
                                        "max_len_a": float(max_len_a), "max_len_b": max_len_b}}
    if words:
        assert src_vocab is not None and tgt_vocab is not None
        req["tokenizer"] = {"kind": "words", "src_vocab": list(src_vocab),
                            "tgt_vocab": list(tgt_vocab)}
        for side in ("src_vocab", "tgt_vocab"):
            _check_vocab(req["tokenizer"][side], side, ValueError)
    else:
        p = Path(str(sentencepiece_model))
        if not p.is_file():
            raise ValueError(f"sentencepiece_model={str(p)!r} is not a file")
        req["tokenizer"] = {"kind": "sentencepiece", "model": str(p)}
    _check_decoding(req["decoding"], "io.decoding", ValueError, need_positions=False)
    return req


def prepare_io(request: Mapping[str, Any], *, supernet: Any,
               members: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest's ``io`` section and the files it names, from a request made by
    :func:`image_classification_io` or :func:`translation_io`.

    Args:
        request: the request.
        supernet: the super-net being exported (its ``example_input`` gives each member's
            input shape; ``src_vocab``/``tgt_vocab``/``max_positions`` are checked).
        members: the manifest's member entries (``id``, ``config``).

    Returns:
        ``(io section, {file name: bytes})``.

    Raises:
        BundleError: a request that does not fit the super-net or its members.
    """
    task = request.get("task") if isinstance(request, Mapping) else None
    if task == "image_classification":
        io = {k: request[k] for k in ("task", "channel_order", "interpolation", "mean", "std")}
        if "labels" in request:
            io["labels"] = list(request["labels"])
        shapes = {}
        for m in members:
            shape = [int(n) for n in supernet.example_input(m["config"], batch=1).shape[1:]]
            if len(shape) != 3 or shape[0] != len(io["mean"]):
                raise BundleError(f"io: member {m['id']!r} takes input of shape {shape}, not "
                                  f"[{len(io['mean'])}, H, W] (one mean/std per channel)")
            shapes[m["id"]] = shape
        io["input_shapes"] = shapes
        return io, {}
    if task != "translation":
        raise BundleError(f"io request task {task!r:.80} is not one of {list(TASKS)}; make "
                          "it with image_classification_io() or translation_io()")
    files: dict[str, bytes] = {}
    tok = request["tokenizer"]
    if tok["kind"] == "words":
        tokenizer: dict[str, Any] = {"kind": "words", "src_vocab": SRC_VOCAB_FILE,
                                     "tgt_vocab": TGT_VOCAB_FILE}
        for side, name in (("src_vocab", SRC_VOCAB_FILE), ("tgt_vocab", TGT_VOCAB_FILE)):
            words = list(tok[side])
            want = getattr(supernet, side, None)
            if isinstance(want, int) and want != len(words):
                raise BundleError(f"io: {side} has {len(words)} tokens, the super-net's "
                                  f"embedding {want}")
            files[name] = ("\n".join(words) + "\n").encode("utf-8")
            tokenizer[side.replace("vocab", "size")] = len(words)
    else:
        tokenizer = {"kind": "sentencepiece", "model": SPM_FILE}
        files[SPM_FILE] = Path(tok["model"]).read_bytes()
    positions = getattr(supernet, "max_positions", None)
    if not isinstance(positions, int):
        raise BundleError("io: a translation bundle needs a super-net with max_positions")
    decoding = dict(request["decoding"], max_positions=positions)
    io = {"task": "translation", "tokenizer": tokenizer, "specials": dict(SPECIALS),
          "source_suffix": "eos", "decoding": decoding}
    return io, files


# -- validation ------------------------------------------------------------------------------
def _err(exc: type[Exception], where: str, msg: str) -> Exception:
    if exc is BundleError:
        return BundleError(f"invalid bundle manifest: {where} {msg}")
    return exc(f"{where} {msg}")


def _finite(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v)


def _check_image(io: Mapping[str, Any], where: str, exc: type[Exception]) -> None:
    if io.get("channel_order") not in CHANNEL_ORDERS:
        raise _err(exc, f"{where}.channel_order", f"must be one of {list(CHANNEL_ORDERS)}, got "
                   f"{str(io.get('channel_order'))[:40]!r}")
    if io.get("interpolation") not in INTERPOLATIONS:
        raise _err(exc, f"{where}.interpolation", f"must be one of {list(INTERPOLATIONS)}, "
                   f"got {str(io.get('interpolation'))[:40]!r}")
    mean, std = io.get("mean"), io.get("std")
    if (not isinstance(mean, list) or not 1 <= len(mean) <= 16
            or not all(_finite(v) and abs(v) <= 1e6 for v in mean)):
        raise _err(exc, f"{where}.mean", f"must be 1 to 16 finite numbers, got {mean!r:.80}")
    if (not isinstance(std, list) or len(std) != len(mean)
            or not all(_finite(v) and 0 < v <= 1e6 for v in std)):
        raise _err(exc, f"{where}.std", f"must be {len(mean)} positive finite numbers (one "
                   f"per mean), got {std!r:.80}")
    labels = io.get("labels")
    if labels is not None and (
            not isinstance(labels, list) or not 0 < len(labels) <= MAX_LABELS
            or not all(isinstance(s, str) and len(s) <= MAX_LABEL_CHARS for s in labels)):
        raise _err(exc, f"{where}.labels", f"must be 1 to {MAX_LABELS} strings of at most "
                   f"{MAX_LABEL_CHARS} characters")


def _check_decoding(d: Any, where: str, exc: type[Exception], *, need_positions: bool) -> None:
    if not isinstance(d, Mapping):
        raise _err(exc, where, "must be an object")
    beam = d.get("beam")
    if isinstance(beam, bool) or not isinstance(beam, int) or not 1 <= beam <= MAX_BEAM:
        raise _err(exc, f"{where}.beam", f"must be an integer in [1, {MAX_BEAM}], got {beam!r}")
    for k, lo, hi in (("len_penalty", -10, 10), ("max_len_a", 0, 100)):
        if not _finite(d.get(k)) or not lo <= d[k] <= hi:
            raise _err(exc, f"{where}.{k}", f"must be a number in [{lo}, {hi}], got "
                       f"{d.get(k)!r:.40}")
    keys = ("max_len_b", "max_positions") if need_positions else ("max_len_b",)
    for k in keys:
        v = d.get(k)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 100_000:
            raise _err(exc, f"{where}.{k}", f"must be an integer in [0, 100000], got {v!r:.40}")


def _check_vocab(words: Any, where: str, exc: type[Exception]) -> None:
    if not isinstance(words, list) or not len(SPECIAL_TOKENS) < len(words) <= MAX_VOCAB:
        raise _err(exc, where, f"must list {len(SPECIAL_TOKENS) + 1} to {MAX_VOCAB} tokens")
    if tuple(words[:len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
        raise _err(exc, where, f"must start with the specials {list(SPECIAL_TOKENS)}, got "
                   f"{words[:len(SPECIAL_TOKENS)]!r:.80}")
    seen: set[str] = set()
    for i, w in enumerate(words):
        if (not isinstance(w, str) or not w or len(w) > MAX_TOKEN_CHARS
                or any(c.isspace() for c in w) or w in seen):
            raise _err(exc, f"{where}[{i}]", f"{str(w)[:40]!r} is empty, repeated, too long "
                       "or holds whitespace")
        seen.add(w)


def validate_io(io: Any, members: Sequence[Mapping[str, Any]],
                files: Mapping[str, Any]) -> None:
    """Check a manifest's ``io`` section (format version 3): its fields, bounds, one input
    shape per member, and that every file it names is listed in ``files`` (so it is
    checksummed like every other file).

    Raises:
        BundleError: naming the first bad field.
    """
    if not isinstance(io, Mapping):
        raise _err(BundleError, "io", "must be an object")
    task = io.get("task")
    if task == "image_classification":
        _check_image(io, "io", BundleError)
        shapes = io.get("input_shapes")
        ids = [m["id"] for m in members]
        if not isinstance(shapes, Mapping) or sorted(shapes) != sorted(ids):
            raise _err(BundleError, "io.input_shapes", f"must give one shape per member {ids}")
        for mid, s in shapes.items():
            if (not isinstance(s, list) or len(s) != 3 or s[0] != len(io["mean"])
                    or not all(not isinstance(n, bool) and isinstance(n, int)
                               and 0 < n <= 1 << 16 for n in s)):
                raise _err(BundleError, f"io.input_shapes[{mid[:40]!r}]",
                           f"must be [{len(io['mean'])}, H, W], got {s!r:.80}")
        return
    if task != "translation":
        raise _err(BundleError, "io.task", f"must be one of {list(TASKS)}, got {str(task)[:40]!r}")
    tok = io.get("tokenizer")
    if not isinstance(tok, Mapping) or tok.get("kind") not in TOKENIZER_KINDS:
        raise _err(BundleError, "io.tokenizer.kind", f"must be one of {list(TOKENIZER_KINDS)}")
    names = ("src_vocab", "tgt_vocab") if tok["kind"] == "words" else ("model",)
    for k in names:
        name = tok.get(k)
        if not isinstance(name, str) or name not in files:
            raise _err(BundleError, f"io.tokenizer.{k}", f"names {str(name)[:80]!r}, which is "
                       "not in 'files'")
    if tok["kind"] == "words":
        for k in ("src_size", "tgt_size"):
            v = tok.get(k)
            if isinstance(v, bool) or not isinstance(v, int) or not 4 < v <= MAX_VOCAB:
                raise _err(BundleError, f"io.tokenizer.{k}", f"must be an integer in "
                           f"[5, {MAX_VOCAB}], got {v!r:.40}")
    if io.get("specials") != SPECIALS or io.get("source_suffix") != "eos":
        raise _err(BundleError, "io", f"must use the specials {SPECIALS} with source_suffix "
                   "'eos' (the only convention this switchnas reads)")
    _check_decoding(io.get("decoding"), "io.decoding", BundleError, need_positions=True)


# -- tokenizers ------------------------------------------------------------------------------
class WordTokenizer:
    """Word-level tokenizer over a vocabulary file's tokens (pure Python).

    Args:
        words: tokens in id order, the specials first.
    """

    def __init__(self, words: Sequence[str]):
        self.itos = list(words)
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def from_bytes(cls, data: bytes, where: str, size: int) -> WordTokenizer:
        """Parse a vocabulary file: UTF-8, one token per line, exactly ``size`` tokens.

        Raises:
            BundleError: naming ``where`` and the problem.
        """
        if len(data) > MAX_VOCAB_BYTES:
            raise BundleError(f"vocabulary {where!r} has {len(data)} bytes, more than "
                              f"{MAX_VOCAB_BYTES}")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BundleError(f"vocabulary {where!r} is not UTF-8 text ({exc})") from None
        words = text.split("\n")
        if words and words[-1] == "":
            words.pop()
        if len(words) != size:
            raise BundleError(f"vocabulary {where!r} has {len(words)} tokens, the manifest "
                              f"says {size}")
        _check_vocab(words, f"vocabulary {where!r}", BundleError)
        return cls(words)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` split on whitespace (unknown words: ``<unk>``)."""
        return [self.stoi.get(w, SPECIALS["unk"]) for w in text.split()]

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids`` (special and out-of-range ids are left out)."""
        return " ".join(self.itos[i] for i in ids if len(SPECIALS) <= i < len(self.itos))


class _SentencePiece:
    def __init__(self, data: bytes, where: str):
        try:
            import sentencepiece as spm
        except ImportError:
            raise BundleError(f"bundle tokenizer {where!r} is a sentencepiece model: install "
                              "the 'sentencepiece' package to translate with it") from None
        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.LoadFromSerializedProto(data)
        except Exception as exc:  # noqa: BLE001 - any parse failure of the model
            raise BundleError(f"bundle tokenizer {where!r} is not a sentencepiece model "
                              f"({exc})") from exc

    def __len__(self) -> int:
        return int(self.sp.get_piece_size())

    def encode(self, text: str) -> list[int]:
        return [int(i) for i in self.sp.encode(text)]

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.sp.decode([int(i) for i in ids if len(SPECIALS) <= i < len(self)]))


# -- pre- and post-processing ----------------------------------------------------------------
class ImageIO:
    """Pre- and post-processing of an image classifier bundle (see the module docstring)."""

    task = "image_classification"

    def __init__(self, io: Mapping[str, Any]):
        self.mean: list[float] = list(io["mean"])
        self.std: list[float] = list(io["std"])
        self.channels = len(self.mean)
        self.channel_order: str = io["channel_order"]
        self.interpolation: str = io["interpolation"]
        self.labels: list[str] | None = list(io["labels"]) if "labels" in io else None
        self.input_shapes: dict[str, list[int]] = {k: list(v)
                                                   for k, v in io["input_shapes"].items()}

    def preprocess(self, image: Any, member: str, device: Any = "cpu") -> Any:
        """``image`` as member ``member``'s input ``(N, C, H, W)`` float32 tensor.

        Raises:
            ValueError: an image of another kind, shape or dtype, naming what is allowed.
        """
        import numpy as np
        import torch
        import torch.nn.functional as F

        if isinstance(image, np.ndarray):
            if image.ndim not in (2, 3):
                raise ValueError(f"an image array must be HxW or HxWxC, got shape "
                                 f"{image.shape}")
            x = torch.from_numpy(np.ascontiguousarray(image))
            x = x[None] if x.ndim == 2 else x.permute(2, 0, 1)
        elif isinstance(image, torch.Tensor):
            x = image if image.ndim != 2 else image[None]
            if x.ndim not in (3, 4):
                raise ValueError(f"an image tensor must be CxHxW, NxCxHxW or HxW, got shape "
                                 f"{tuple(image.shape)}")
        else:
            raise ValueError(f"image must be a numpy array (HxWxC) or a torch tensor "
                             f"(CxHxW), got {type(image).__name__}")
        if x.dtype == torch.uint8:
            x = x.to(torch.float32) / 255.0
        elif x.is_floating_point():
            x = x.to(torch.float32)
        else:
            dtype = str(x.dtype).removeprefix("torch.")
            raise ValueError(f"image dtype {dtype} is not allowed: use uint8 (0-255) or "
                             "floats in [0, 1]")
        if x.ndim == 3:
            x = x[None]
        c = x.shape[1]
        if c == 1 and self.channels != 1:
            x = x.expand(-1, self.channels, -1, -1)
        elif c != self.channels:
            raise ValueError(f"image has {c} channels; this bundle's members take "
                             f"{self.channels} (or 1, repeated)")
        if self.channel_order == "BGR":
            x = x.flip(1)
        mean = torch.tensor(self.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(1, -1, 1, 1)
        x = (x - mean) / std
        _, h, w = self.input_shapes[member]
        if tuple(x.shape[-2:]) != (h, w):
            kw = {} if self.interpolation == "nearest" else {"align_corners": False}
            x = F.interpolate(x, size=(h, w), mode=self.interpolation, **kw)
        return x.to(device)

    def postprocess(self, output: Any) -> list[tuple[str, float]]:
        """``(label, probability)`` of the most likely class, per row of logits."""
        import torch

        logits = output if isinstance(output, torch.Tensor) else torch.as_tensor(output)
        if logits.ndim == 1:
            logits = logits[None]
        if logits.ndim != 2:
            raise ValueError(f"expected logits (N, classes), got shape {tuple(logits.shape)}")
        if self.labels is not None and logits.shape[1] != len(self.labels):
            raise ValueError(f"logits have {logits.shape[1]} classes, the bundle labels "
                             f"{len(self.labels)}")
        probs = torch.softmax(logits.detach().to("cpu", torch.float64), dim=1)
        p, idx = probs.max(dim=1)
        return [(self.labels[i] if self.labels is not None else str(i), float(q))
                for i, q in zip(idx.tolist(), p.tolist(), strict=True)]


class TranslationIO:
    """Tokenizer and decoding settings of a translation bundle."""

    task = "translation"

    def __init__(self, io: Mapping[str, Any], src: Any, tgt: Any):
        self.src, self.tgt = src, tgt
        d = io["decoding"]
        self.beam: int = int(d["beam"])
        self.len_penalty = float(d["len_penalty"])
        self.max_len_a, self.max_len_b = float(d["max_len_a"]), int(d["max_len_b"])
        self.max_positions = int(d["max_positions"])

    def preprocess(self, text: str, device: Any = "cpu") -> Any:
        """Source ids of ``text`` followed by EOS, as a ``(1, n)`` long tensor.

        Raises:
            ValueError: ``text`` is not a string or has more tokens than the model's
                positions.
        """
        import torch

        if not isinstance(text, str):
            raise ValueError(f"text must be a str, got {type(text).__name__}")
        ids = self.src.encode(text) + [SPECIALS["eos"]]
        if len(ids) > self.max_positions:
            raise ValueError(f"text has {len(ids) - 1} tokens; this bundle's members take at "
                             f"most {self.max_positions - 1}")
        return torch.tensor([ids], dtype=torch.long, device=device)

    def max_len(self, src_len: int) -> int:
        """Target tokens allowed for a source of ``src_len`` ids (EOS included)."""
        return min(int(self.max_len_a * src_len + self.max_len_b), self.max_positions)

    def postprocess(self, output: Any) -> str:
        """Text of target ids (a list or 1-D tensor): up to EOS, specials left out."""
        ids = output.tolist() if hasattr(output, "tolist") else list(output)
        out = []
        for t in ids:
            if t == SPECIALS["eos"]:
                break
            out.append(int(t))
        return str(self.tgt.decode(out))


def load_io(io: Mapping[str, Any] | None, read: Callable[[str], bytes], net: Any
            ) -> ImageIO | TranslationIO | None:
    """The pre- and post-processing of a validated ``io`` section (``None`` without one);
    ``read(name)`` gives a bundle file's checked bytes.

    Raises:
        BundleError: a vocabulary file that does not parse or does not fit ``net``.
    """
    if io is None:
        return None
    if io["task"] == "image_classification":
        return ImageIO(io)
    tok = io["tokenizer"]
    src: Any
    tgt: Any
    if tok["kind"] == "words":
        src = WordTokenizer.from_bytes(read(tok["src_vocab"]), tok["src_vocab"], tok["src_size"])
        tgt = WordTokenizer.from_bytes(read(tok["tgt_vocab"]), tok["tgt_vocab"], tok["tgt_size"])
    else:
        src = tgt = _SentencePiece(read(tok["model"]), tok["model"])
    for side, t in (("src_vocab", src), ("tgt_vocab", tgt)):
        want = getattr(net, side, None)
        if isinstance(want, int) and want != len(t):
            raise BundleError(f"bundle tokenizer has {len(t)} {side[:3]} tokens, the "
                              f"super-net's embedding {want}")
    return TranslationIO(io, src, tgt)
