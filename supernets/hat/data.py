"""Translation data: a generated toy language pair (the default) and parallel text files
tokenised with a locally trained sentencepiece model.

Both give the same interface (:class:`TranslationData`): token-id sentence pairs for the
``train``/``valid``/``test`` splits, padded batches, and detokenised references for BLEU.
Special ids are shared with the model: 0 pad, 1 bos, 2 eos, 3 unk.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .transformer import BOS, EOS, PAD, UNK

__all__ = ["Batch", "ParallelText", "ToyTranslation", "TranslationData", "Vocab"]

log = logging.getLogger(__name__)

Pair = tuple[list[int], list[int]]
SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")


@dataclass
class Batch:
    src: torch.Tensor  #: (batch, src_len) source ids + EOS, right-padded
    prev: torch.Tensor  #: (batch, tgt_len) BOS + target ids (decoder input)
    target: torch.Tensor  #: (batch, tgt_len) target ids + EOS, right-padded

    @property
    def ntokens(self) -> int:
        return int(self.target.ne(PAD).sum())


class Vocab:
    """Word-level vocabulary: ids 0-3 are the specials, then ``words``."""

    def __init__(self, words: Sequence[str]):
        self.itos = list(SPECIALS) + list(words)
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(w, UNK) for w in text.split()]

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join(self.itos[i] for i in ids if i >= len(SPECIALS))

    def fingerprint(self) -> str:
        return hashlib.sha256("\n".join(self.itos).encode()).hexdigest()[:16]


class _SentencePieceVocab:
    def __init__(self, model_file: Path):
        import sentencepiece as spm

        self.path = model_file
        self.sp = spm.SentencePieceProcessor(model_file=str(model_file))

    def __len__(self) -> int:
        return int(self.sp.get_piece_size())

    def encode(self, text: str) -> list[int]:
        return list(self.sp.encode(text))

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.sp.decode([int(i) for i in ids if i >= len(SPECIALS)]))

    def fingerprint(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]


class TranslationData:
    """Sentence pairs per split plus the two vocabularies."""

    src_dict: Vocab | _SentencePieceVocab
    tgt_dict: Vocab | _SentencePieceVocab
    splits: dict[str, list[Pair]]

    @property
    def src_vocab(self) -> int:
        return len(self.src_dict)

    @property
    def tgt_vocab(self) -> int:
        return len(self.tgt_dict)

    def vocab_hash(self) -> str:
        return f"{self.src_dict.fingerprint()}-{self.tgt_dict.fingerprint()}"

    def split(self, name: str) -> list[Pair]:
        if name not in self.splits:
            raise ValueError(f"unknown split {name!r}; available: {sorted(self.splits)}")
        return self.splits[name]

    def batches(self, split: str, batch_size: int, *, rng: np.random.Generator | None = None,
                limit: int | None = None) -> Iterator[Batch]:
        """Batches of ``split`` in order (shuffled when ``rng`` is given), at most ``limit`` pairs."""
        pairs = self.split(split)[:limit]
        order = rng.permutation(len(pairs)) if rng is not None else np.arange(len(pairs))
        for i in range(0, len(pairs), batch_size):
            yield collate([pairs[j] for j in order[i: i + batch_size]])

    def references(self, split: str, limit: int | None = None) -> list[str]:
        return [self.tgt_dict.decode(t) for _, t in self.split(split)[:limit]]


def collate(pairs: Sequence[Pair]) -> Batch:
    s_len = max(len(s) for s, _ in pairs) + 1
    t_len = max(len(t) for _, t in pairs) + 1
    src = torch.full((len(pairs), s_len), PAD, dtype=torch.long)
    prev = torch.full((len(pairs), t_len), PAD, dtype=torch.long)
    tgt = torch.full((len(pairs), t_len), PAD, dtype=torch.long)
    for i, (s, t) in enumerate(pairs):
        src[i, : len(s) + 1] = torch.tensor(s + [EOS])
        prev[i, : len(t) + 1] = torch.tensor([BOS] + t)
        tgt[i, : len(t) + 1] = torch.tensor(t + [EOS])
    return Batch(src, prev, tgt)


class ToyTranslation(TranslationData):
    """A deterministic generated language pair with reordering, agreement and a word map.

    Source sentences are one or two clauses joined by a conjunction; a clause is
    ``NP verb NP`` with ``NP = determiner adjective{0..max_adjectives} noun``. The target
    language puts the verb last (SOV), nouns before their adjectives (in reverse order),
    and inflects the determiner by the noun's gender (3 genders); every word is mapped
    through a fixed random bijection. Small models learn the word map quickly; the
    reordering and agreement need more capacity.

    Args:
        src_vocab: source vocabulary size, specials included (the number of words follows).
        tgt_vocab: target vocabulary size; at least ``src_vocab + 4`` (determiner forms).
        n_train, n_valid, n_test: sentence pairs per split.
        max_clauses, max_adjectives: sentence complexity.
        seed: fixes the language (word map, genders) and the sentences.
    """

    def __init__(self, *, src_vocab: int = 64, tgt_vocab: int = 68, n_train: int = 20000,
                 n_valid: int = 200, n_test: int = 200, max_clauses: int = 2,
                 max_adjectives: int = 2, seed: int = 0):
        n = src_vocab - len(SPECIALS)
        if n < 12:
            raise ValueError(f"src_vocab={src_vocab} is too small for the toy language (need >= 16)")
        if tgt_vocab < src_vocab + 4:
            raise ValueError(f"tgt_vocab={tgt_vocab} must be at least src_vocab + 4 = {src_vocab + 4} "
                             "(determiners take one target form per gender)")
        # the HAT configs (supernet=hat_wmt14ende) default to this data: say it is not text
        log.warning("translation data: a generated toy language pair (%d source, %d target "
                    "words; data=toy_translation), not WMT'14 En-De or any real text, so its "
                    "BLEU says nothing about real translation quality; for real text use "
                    "data=parallel_text", src_vocab - len(SPECIALS), tgt_vocab - len(SPECIALS))
        rng = np.random.default_rng(seed)
        n_adj, n_verb = n // 4, n // 4
        n_noun = n - 3 - n_adj - n_verb  # 2 determiners + 1 conjunction
        self._dets = ["the", "a"]
        self._adjs = [f"adj{i}" for i in range(n_adj)]
        self._verbs = [f"verb{i}" for i in range(n_verb)]
        self._nouns = [f"noun{i}" for i in range(n_noun)]
        src_words = self._dets + ["and"] + self._adjs + self._verbs + self._nouns
        self._gender = {w: int(rng.integers(3)) for w in self._nouns}
        tgt_needed = [f"{d}_{g}" for d in self._dets for g in range(3)] + ["und"] + \
            self._adjs + self._verbs + self._nouns
        n_tgt_words = tgt_vocab - len(SPECIALS)
        ids = rng.permutation(n_tgt_words)[: len(tgt_needed)]
        tgt_words = [f"w{i}" for i in range(n_tgt_words)]
        self._map = {w: tgt_words[int(i)] for w, i in zip(tgt_needed, ids, strict=True)}
        self.src_dict, self.tgt_dict = Vocab(src_words), Vocab(tgt_words)
        self._max_clauses, self._max_adj = max_clauses, max_adjectives
        self.splits = {}
        for name, count in (("train", n_train), ("valid", n_valid), ("test", n_test)):
            pairs = [self._sentence(rng) for _ in range(count)]
            self.splits[name] = [(self.src_dict.encode(s), self.tgt_dict.encode(t)) for s, t in pairs]

    def _np(self, rng: np.random.Generator) -> tuple[list[str], list[str]]:
        det = self._dets[int(rng.integers(len(self._dets)))]
        adjs = [self._adjs[int(rng.integers(len(self._adjs)))]
                for _ in range(int(rng.integers(self._max_adj + 1)))]
        noun = self._nouns[int(rng.integers(len(self._nouns)))]
        src = [det, *adjs, noun]
        tgt = [f"{det}_{self._gender[noun]}", noun, *adjs[::-1]]
        return src, [self._map[w] for w in tgt]

    def _sentence(self, rng: np.random.Generator) -> tuple[str, str]:
        src: list[str] = []
        tgt: list[str] = []
        for c in range(int(rng.integers(1, self._max_clauses + 1))):
            if c:
                src.append("and")
                tgt.append(self._map["und"])
            (s1, t1), (s2, t2) = self._np(rng), self._np(rng)
            verb = self._verbs[int(rng.integers(len(self._verbs)))]
            src += [*s1, verb, *s2]
            tgt += [*t1, *t2, self._map[verb]]
        return " ".join(src), " ".join(tgt)


class ParallelText(TranslationData):
    """Parallel text files (one sentence per line) tokenised with sentencepiece.

    A joint sentencepiece model is trained on the training files (source and target) unless
    ``spm_model`` names an existing one; it is cached as ``<cache_dir>/spm<vocab_size>.model``
    (default: the training source's folder).

    Args:
        train: ``[source_file, target_file]``; ``valid`` and ``test`` likewise (optional).
        vocab_size: sentencepiece vocabulary size (shared by both sides).
        max_len: pairs with a side longer than this (in pieces) are dropped from training.
        max_sentences: read at most this many lines per file.
        src_vocab, tgt_vocab: expected vocabulary sizes (checked against the model).
    """

    def __init__(self, *, train: Sequence[str], valid: Sequence[str] | None = None,
                 test: Sequence[str] | None = None, vocab_size: int = 8000,
                 spm_model: str | None = None, cache_dir: str | None = None,
                 max_len: int = 128, max_sentences: int | None = None,
                 model_type: str = "unigram", src_vocab: int | None = None,
                 tgt_vocab: int | None = None):
        files = {"train": train, "valid": valid, "test": test}
        texts: dict[str, tuple[list[str], list[str]]] = {}
        for name, pair in files.items():
            if pair is None:
                continue
            if len(pair) != 2:
                raise ValueError(f"{name} must be [source_file, target_file], got {pair!r}")
            src_lines, tgt_lines = (_read_lines(Path(p), max_sentences) for p in pair)
            if len(src_lines) != len(tgt_lines):
                raise ValueError(f"{name}: {pair[0]} has {len(src_lines)} lines, {pair[1]} has "
                                 f"{len(tgt_lines)}; parallel files need one sentence per line each")
            texts[name] = (src_lines, tgt_lines)
        model = Path(spm_model) if spm_model else \
            Path(cache_dir or Path(train[0]).parent) / f"spm{vocab_size}.model"
        if not model.is_file():
            if spm_model:
                raise FileNotFoundError(f"sentencepiece model {spm_model!r} does not exist")
            _train_spm(texts["train"][0] + texts["train"][1], model, vocab_size, model_type)
        vocab = _SentencePieceVocab(model)
        for name, want in (("src_vocab", src_vocab), ("tgt_vocab", tgt_vocab)):
            if want is not None and int(want) != len(vocab):
                raise ValueError(f"{name}={want} but the sentencepiece model {str(model)!r} has "
                                 f"{len(vocab)} pieces")
        self.src_dict = self.tgt_dict = vocab
        self.splits = {}
        for name, (s_lines, t_lines) in texts.items():
            pairs = [(vocab.encode(s), vocab.encode(t)) for s, t in zip(s_lines, t_lines, strict=True)]
            if name == "train":
                pairs = [(s, t) for s, t in pairs if 0 < len(s) <= max_len and 0 < len(t) <= max_len]
            self.splits[name] = pairs
        if "valid" not in self.splits:
            self.splits["valid"] = self.splits["train"][:200]
        self._refs = {name: t for name, (_, t) in texts.items()}

    def references(self, split: str, limit: int | None = None) -> list[str]:
        if split in self._refs:
            return self._refs[split][:limit]
        return super().references(split, limit)


def _read_lines(path: Path, limit: int | None) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"parallel text file {str(path)!r} does not exist")
    with path.open(encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    return lines[:limit]


def _train_spm(lines: list[str], model: Path, vocab_size: int, model_type: str) -> None:
    import io

    import sentencepiece as spm

    model.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=buf, vocab_size=vocab_size,
        model_type=model_type, pad_id=PAD, bos_id=BOS, eos_id=EOS, unk_id=UNK,
        character_coverage=1.0, minloglevel=2)
    tmp = model.with_suffix(".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(model)
