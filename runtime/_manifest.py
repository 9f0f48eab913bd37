"""The bundle format: names, the manifest schema and file checksums.

A bundle is a folder::

    manifest.json         this module's schema (JSON, no pickle)
    member-<index>.onnx   optional: member <index> as an ONNX graph
    weights.safetensors   "shared/<name>": leading slices of the super-net's tensors that
                          the union of the members reads; "bn/<index>/<name>": member
                          <index>'s batch-norm running statistics, sliced to what it reads

The manifest records the SHA-256 and size of every other file, so a reader can refuse a
truncated or tampered file before it parses a byte of it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "WEIGHTS",
    "BundleError",
    "sha256_file",
    "validate_manifest",
]

FORMAT = "switchnas-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
SHARED_PREFIX = "shared/"


def bn_prefix(index: int) -> str:
    return f"bn/{index}/"


class BundleError(ValueError):
    """A bundle that cannot be written or loaded: the message says which file and why."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _fail(where: str, msg: str) -> BundleError:
    return BundleError(f"invalid bundle manifest: {where} {msg}")


def _need(obj: Mapping[str, Any], key: str, types: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise _fail(where, f"lacks the required field {key!r}")
    v = obj[key]
    # bool is an int subclass: never accept it where a number is meant
    if isinstance(v, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise _fail(f"{where}.{key}", f"must be {_names(types)}, got a bool")
    if not isinstance(v, types):
        raise _fail(f"{where}.{key}", f"must be {_names(types)}, got {type(v).__name__}")
    return v


def _names(types: type | tuple[type, ...]) -> str:
    ts = types if isinstance(types, tuple) else (types,)
    return " or ".join(t.__name__ for t in ts)


def _positive(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise _fail(where, f"must be a positive finite number, got {v!r}")
    return float(v)


def validate_manifest(m: Any) -> dict[str, Any]:
    """Check ``m`` (parsed ``manifest.json``) against the format; return it unchanged.

    Raises:
        BundleError: naming the first field that is missing or of the wrong kind, a
            foreign file (``format`` is not ``"switchnas-bundle"``) or another format
            version.
    """
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        found = m.get("format") if isinstance(m, dict) else type(m).__name__
        raise BundleError(f"not a switchnas bundle: manifest 'format' is {found!r}, "
                          f"expected {FORMAT!r}")
    version = m.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(f"bundle format version {version!r} is not supported; this "
                          f"switchnas reads version {FORMAT_VERSION}")
    _need(m, "space", dict, "manifest")
    sn = _need(m, "supernet", dict, "manifest")
    target = _need(sn, "target", str, "supernet")
    if ":" not in target:
        raise _fail("supernet.target", f"must be 'module:Class', got {target!r}")
    _need(sn, "kwargs", dict, "supernet")
    _need(m, "hardware", dict, "manifest")
    members = _need(m, "members", list, "manifest")
    if not members:
        raise _fail("members", "is empty; a bundle holds at least one member")
    seen: set[str] = set()
    for i, mem in enumerate(members):
        w = f"members[{i}]"
        if not isinstance(mem, dict):
            raise _fail(w, f"must be an object, got {type(mem).__name__}")
        mid = _need(mem, "id", str, w)
        if not mid or mid in seen:
            raise _fail(f"{w}.id", f"{mid!r} is empty or repeated")
        seen.add(mid)
        _need(mem, "config", dict, w)
        acc = _need(mem, "accuracy", (int, float), w)
        if not math.isfinite(acc):
            raise _fail(f"{w}.accuracy", f"must be finite, got {acc!r}")
        _positive(_need(mem, "latency_ms", (int, float), w), f"{w}.latency_ms")
        for hw, ms in _need(mem, "latency", dict, w).items():
            _positive(ms, f"{w}.latency[{hw!r}]")
        if mem.get("energy_mj") is not None:
            _positive(mem["energy_mj"], f"{w}.energy_mj")
        if _need(mem, "index", int, w) != i:
            raise _fail(f"{w}.index", f"must be {i}, got {mem['index']!r}")
    files = _need(m, "files", dict, "manifest")
    if WEIGHTS not in files:
        raise _fail("files", f"lacks {WEIGHTS!r}")
    for i, mem in enumerate(members):
        if "onnx" in mem and mem["onnx"] not in files:
            raise _fail(f"members[{i}].onnx", f"names {mem['onnx']!r}, which is not in 'files'")
    for name, entry in files.items():
        w = f"files[{name!r}]"
        if not isinstance(entry, dict):
            raise _fail(w, "must be an object")
        if "/" in name or "\\" in name or name.startswith(".") or name == MANIFEST:
            raise _fail(w, "must name a plain file of the bundle folder")
        digest = _need(entry, "sha256", str, w)
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise _fail(f"{w}.sha256", f"is not a hex SHA-256 digest: {digest!r}")
        if _need(entry, "bytes", int, w) < 0:
            raise _fail(f"{w}.bytes", "must be >= 0")
    extra = m.get("extra", {})
    if not isinstance(extra, dict):
        raise _fail("extra", "must be an object")
    return m
