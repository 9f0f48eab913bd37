"""Saving and loading fitted predictors without pickle.

A predictor is stored as two files: ``<path>`` in skops' format (a zip of JSON and
``.npy`` arrays read with ``allow_pickle=False``; loading builds objects only of types
on an allow-list) and ``<path>.json``, the metadata needed to use it: the encoding its
features come from, its class and the SHA-256 of the model file.

:func:`load_predictor` refuses, with :class:`PredictorFileError`, a file that is not
such a pair, whose checksum does not match, that is larger than it may be, or that
names any type outside :data:`TRUSTED_TYPES` (our estimators and the scikit-learn,
numpy and scipy types they hold; everything else skops trusts by default is plain
scikit-learn or builtin data). A pickle renamed to ``.skops`` is not a zip and is
refused before anything is read from it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["FORMAT", "MAX_BYTES", "TRUSTED_TYPES", "PredictorFileError", "SavedPredictor",
           "load_predictor", "save_predictor"]

#: Name and version of the metadata file's format.
FORMAT = {"name": "switchnas-predictor", "version": 1}
#: The most bytes a model file may hold once unpacked (a GBM of 200 trees is ~1 MB).
MAX_BYTES = 256 * 1024 * 1024

#: Types that skops does not trust by default and a predictor file may contain.
TRUSTED_TYPES: tuple[str, ...] = (
    "switchnas.predictors.models.AdditiveBlockModel",
    "switchnas.predictors.models.Ensemble",
    "switchnas.predictors.models.LUTSum",
    "switchnas.predictors.models.OneHotRidge",
    "switchnas.predictors.models.ResidualBoosted",
    "switchnas.predictors.mlp.HatMLP",
    "sklearn.tree._tree.Tree",
)


class PredictorFileError(ValueError):
    """A predictor file that is missing, malformed, tampered with or names untrusted types."""


@dataclass(frozen=True)
class SavedPredictor:
    """A loaded predictor and what it needs to be used.

    Attributes:
        model: the fitted estimator (``predict(X)``).
        encoding: the name of the encoding its features come from (e.g. ``"space"``).
        meta: the rest of the metadata file (format, class, sha256, user entries).
    """

    model: Any
    encoding: str
    meta: dict[str, Any]

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The model's predictions for rows ``X`` of :attr:`encoding`."""
        return np.asarray(self.model.predict(X))


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_predictor(model: Any, path: str | Path, *, encoding: str,
                   extra: dict[str, Any] | None = None) -> Path:
    """Write a fitted predictor to ``path`` (skops) and its metadata to ``path + ".json"``.

    Args:
        model: a fitted estimator whose types are all in :data:`TRUSTED_TYPES` or trusted
            by skops by default.
        path: the model file to write (``.skops`` by convention); its folder is created.
        encoding: the encoding of the model's features, stored so it can be used later.
        extra: JSON-able entries added to the metadata.

    Returns:
        The model file's path.

    Raises:
        PredictorFileError: ``model`` holds a type that :func:`load_predictor` would refuse.
    """
    import skops.io as sio

    target = Path(path)
    if not isinstance(encoding, str) or not encoding:
        raise ValueError(f"encoding={encoding!r}: must be a non-empty string")
    data = _canonical_zip(sio.dumps(model))
    untrusted = [t for t in sio.get_untrusted_types(data=data) if t not in TRUSTED_TYPES]
    if untrusted:
        raise PredictorFileError(f"cannot save {type(model).__name__}: it holds types outside "
                                 f"the allow-list: {untrusted}")
    meta = {**(extra or {}), "format": FORMAT, "encoding": encoding,
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "sha256": _sha256(data), "bytes": len(data)}
    target.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(target, data)
    _atomic_write(_meta_path(target), (json.dumps(meta, indent=2) + "\n").encode())
    return target


def _read_meta(path: Path) -> dict[str, Any]:
    mpath = _meta_path(path)
    try:
        if mpath.stat().st_size > 1 << 20:
            raise PredictorFileError(f"{str(mpath)!r}: metadata file larger than 1 MiB")
        meta = json.loads(mpath.read_text())
    except FileNotFoundError as exc:
        raise PredictorFileError(f"{str(mpath)!r}: missing (every predictor file has one)"
                                 ) from exc
    except (OSError, ValueError, RecursionError) as exc:
        raise PredictorFileError(f"{str(mpath)!r}: not a predictor metadata file: {exc}"
                                 ) from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise PredictorFileError(f"{str(mpath)!r}: not a predictor metadata file of format "
                                 f"{FORMAT}")
    if not isinstance(meta.get("encoding"), str) or not isinstance(meta.get("sha256"), str):
        raise PredictorFileError(f"{str(mpath)!r}: 'encoding' and 'sha256' must be strings")
    return meta


def load_predictor(path: str | Path) -> SavedPredictor:
    """Load a predictor written by :func:`save_predictor`, running no code from the file.

    Args:
        path: the model file (its ``.json`` metadata lies beside it).

    Returns:
        The model with its encoding and metadata.

    Raises:
        PredictorFileError: a file is missing or malformed, the model's SHA-256 differs
            from the metadata's, it unpacks to more than :data:`MAX_BYTES`, or it holds a
            type outside :data:`TRUSTED_TYPES` and skops' defaults (named in the message).
    """
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    target = Path(path)
    meta = _read_meta(target)
    try:
        if target.stat().st_size > MAX_BYTES:
            raise PredictorFileError(f"{str(target)!r}: larger than {MAX_BYTES} bytes")
        data = target.read_bytes()
    except OSError as exc:
        raise PredictorFileError(f"{str(target)!r}: cannot read: {exc}") from exc
    if _sha256(data) != meta["sha256"]:
        raise PredictorFileError(f"{str(target)!r}: SHA-256 does not match its metadata")
    _check_zip(target, data)
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:  # noqa: BLE001 - any parse failure means "not a predictor file"
        raise PredictorFileError(f"{str(target)!r}: not a skops file: {exc}") from exc
    refused = [t for t in untrusted if t not in TRUSTED_TYPES]
    if refused:
        raise PredictorFileError(f"{str(target)!r}: refusing types outside the allow-list: "
                                 f"{refused}")
    try:
        model = sio.loads(data, trusted=list(TRUSTED_TYPES))
    except UntrustedTypesFoundException as exc:
        raise PredictorFileError(f"{str(target)!r}: {exc}") from exc
    except (ValueError, TypeError, KeyError, AttributeError, ImportError,
            RecursionError) as exc:
        raise PredictorFileError(f"{str(target)!r}: malformed predictor file: {exc}") from exc
    if not callable(getattr(model, "predict", None)):
        raise PredictorFileError(f"{str(target)!r}: holds a {type(model).__name__}, "
                                 "not an estimator with predict()")
    return SavedPredictor(model=model, encoding=str(meta["encoding"]), meta=dict(meta))


_IDS = re.compile(r'("__id__": )(\d+)|("file": ")(\d+)(\.npy")')


def _canonical_zip(data: bytes) -> bytes:
    """The same archive, byte-stable: skops names arrays and shared objects by ``id()``
    and zip entries carry the time; both are renumbered/fixed here, so equal models give
    equal bytes (and equal stage digests) whenever and wherever they are saved."""
    import io

    with zipfile.ZipFile(io.BytesIO(data)) as src:
        members = {i.filename: src.read(i) for i in src.infolist()}
    numbers: dict[str, str] = {}

    def renumber(m: re.Match[str]) -> str:
        old = m.group(2) or m.group(4)
        new = numbers.setdefault(old, str(len(numbers) + 1))
        return m.group(1) + new if m.group(1) else m.group(3) + new + m.group(5)

    schema = _IDS.sub(renumber, members.pop("schema.json").decode())
    renamed = {f"{numbers.get(n[:-4], n[:-4])}.npy" if n.endswith(".npy") else n: b
               for n, b in members.items()}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as dst:
        for name, body in [*sorted(renamed.items()), ("schema.json", schema.encode())]:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            dst.writestr(info, body)
    return out.getvalue()


def _check_zip(path: Path, data: bytes) -> None:
    import io

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            total = sum(i.file_size for i in zf.infolist())
    except zipfile.BadZipFile as exc:
        raise PredictorFileError(f"{str(path)!r}: not a skops file (not a zip archive; "
                                 "pickles are refused)") from exc
    if total > MAX_BYTES:
        raise PredictorFileError(f"{str(path)!r}: unpacks to {total} bytes, more than "
                                 f"{MAX_BYTES}")
