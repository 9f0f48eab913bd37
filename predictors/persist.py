"""Saving and loading fitted predictors without pickle.

A predictor is stored as two files: ``<path>`` in skops' format (a zip of JSON and
``.npy`` arrays read with ``allow_pickle=False``; loading builds objects only of types
on an allow-list) and ``<path>.json``, the metadata needed to use it: the encoding its
features come from (``encoding``), the width of those features (``n_features``) and the
space they encode (``space``) where known, its class and the SHA-256 of the model file.
:func:`load_predictor` gives back a
:class:`~switchnas.predictors.fitted.FittedPredictor`, which encodes configs or genomes
itself (files written before ``n_features``/``space`` existed still load).

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
import re
import zipfile
from pathlib import Path
from typing import Any

from ..runtime.files import atomic_write_bytes
from .fitted import FittedPredictor

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


#: What :func:`load_predictor` returns (the name older callers use).
SavedPredictor = FittedPredictor


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_predictor(model: Any, path: str | Path, *, encoding: str | None = None,
                   extra: dict[str, Any] | None = None) -> Path:
    """Write a fitted predictor to ``path`` (skops) and its metadata to ``path + ".json"``.

    Args:
        model: a :class:`~switchnas.predictors.fitted.FittedPredictor` (its encoding,
            ``n_features`` and ``space`` are stored), or a bare fitted estimator with
            ``encoding`` given; either way every type it holds must be in
            :data:`TRUSTED_TYPES` or trusted by skops by default.
        path: the model file to write (``.skops`` by convention); its folder is created.
        encoding: the encoding of the model's features; for a ``FittedPredictor`` it must
            be ``None`` or equal its own.
        extra: JSON-able entries added to the metadata.

    Returns:
        The model file's path.

    Raises:
        PredictorFileError: ``model`` holds a type that :func:`load_predictor` would refuse.
    """
    import skops.io as sio

    target = Path(path)
    known: dict[str, Any] = {}
    if isinstance(model, FittedPredictor):
        if encoding is not None and encoding != model.encoding:
            raise ValueError(f"encoding={encoding!r} contradicts the predictor's own "
                             f"{model.encoding!r}; leave it out")
        encoding = model.encoding
        known = {k: model.meta[k] for k in _KNOWN if k in model.meta}
        model = model.model
    if not isinstance(encoding, str) or not encoding:
        raise ValueError(f"encoding={encoding!r}: must be a non-empty string")
    if "n_features" not in known and hasattr(model, "n_features_in_"):
        known["n_features"] = int(model.n_features_in_)
    data = _canonical_zip(sio.dumps(model))
    untrusted = [t for t in sio.get_untrusted_types(data=data) if t not in TRUSTED_TYPES]
    if untrusted:
        raise PredictorFileError(f"cannot save {type(model).__name__}: it holds types outside "
                                 f"the allow-list: {untrusted}")
    meta = {**(extra or {}), **known, "format": FORMAT, "encoding": encoding,
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "sha256": _sha256(data), "bytes": len(data)}
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, data)
    atomic_write_bytes(_meta_path(target), (json.dumps(meta, indent=2) + "\n").encode())
    return target


#: Metadata entries a ``FittedPredictor`` checks, stored when known.
_KNOWN = ("n_features", "space")


def _read_meta(path: Path) -> dict[str, Any]:
    mpath = _meta_path(path)
    try:
        if mpath.stat().st_size > 1 << 20:
            raise PredictorFileError(f"{str(mpath)!r}: metadata file larger than 1 MiB")
        meta = json.loads(mpath.read_text())
    except PredictorFileError:
        raise
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
    nf = meta.get("n_features")
    if nf is not None and (isinstance(nf, bool) or not isinstance(nf, int) or nf < 1):
        raise PredictorFileError(f"{str(mpath)!r}: 'n_features'={nf!r} must be an int >= 1")
    if meta.get("space") is not None and not isinstance(meta["space"], str):
        raise PredictorFileError(f"{str(mpath)!r}: 'space' must be a string")
    return meta


def load_predictor(path: str | Path) -> FittedPredictor:
    """Load a predictor written by :func:`save_predictor`, running no code from the file.

    Args:
        path: the model file (its ``.json`` metadata lies beside it).

    Returns:
        The predictor with its encoding and metadata (it encodes configs itself).

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
    return FittedPredictor(model=model, encoding=str(meta["encoding"]), meta=dict(meta))


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
