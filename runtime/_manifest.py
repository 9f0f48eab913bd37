"""The bundle format: names, limits, the manifest schema and file checksums.

A bundle is a folder::

    manifest.json         this module's schema (JSON, no pickle, no code names)
    vocab-src.txt, ...    optional (version 3): files the ``io`` section names (see
                          ``_io.py``: tokenizer vocabularies), checksummed like the rest
    member-<index>.onnx   optional: member <index> as an ONNX graph
    weights.safetensors   "shared/<name>": leading slices of the super-net's tensors that
                          the union of the members reads; "bn/<index>/<name>": member
                          <index>'s batch-norm running statistics, sliced to what it reads

The manifest names its super-net by a registered name (``{"name": "ofa_mbv3",
"kwargs": {...}}``), never by an import path, and records the SHA-256 and size of every
other file, so a reader can refuse a truncated or tampered file before it parses a byte
of it. Every number read from it is bounded here, before anything is allocated.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "READABLE_VERSIONS",
    "WEIGHTS",
    "BundleError",
    "parse_manifest",
    "read_manifest",
    "sha256_file",
    "validate_manifest",
]

FORMAT = "switchnas-bundle"
FORMAT_VERSION = 3
#: versions this switchnas reads: 2 (no ``io`` section) and 3 (optional ``io`` section)
READABLE_VERSIONS = (2, 3)
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
SHARED_PREFIX = "shared/"

#: limits on what a manifest may hold (documented in SECURITY.md)
MAX_MANIFEST_BYTES = 16 << 20
MAX_JSON_DEPTH = 32
MAX_INT_DIGITS = 30
MAX_FLOAT_CHARS = 64
MAX_MEMBERS = 256
MAX_FILES = 2 * MAX_MEMBERS + 8
MAX_CHUNKS = 64
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_HEX = frozenset("0123456789abcdef")


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


# -- bounded JSON ----------------------------------------------------------------------------
def _parse_int(s: str) -> int:
    if len(s.lstrip("-")) > MAX_INT_DIGITS:
        raise BundleError(f"a number of {len(s)} digits (at most {MAX_INT_DIGITS} allowed)")
    return int(s)


def _parse_float(s: str) -> float:
    if len(s) > MAX_FLOAT_CHARS:
        raise BundleError(f"a number of {len(s)} characters (at most {MAX_FLOAT_CHARS} allowed)")
    v = float(s)
    if not math.isfinite(v):
        raise BundleError(f"the number {s[:20]!r} overflows a float")
    return v


def _parse_constant(s: str) -> Any:
    raise BundleError(f"{s} is not a JSON number")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise BundleError(f"the key {k[:64]!r} appears twice in one object")
        out[k] = v
    return out


def _check_depth(obj: Any, limit: int) -> None:
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, dict | list):
            if d > limit:
                raise BundleError(f"nested more than {limit} levels deep")
            stack.extend((v, d + 1) for v in (o.values() if isinstance(o, dict) else o))


def loads_bounded(data: bytes, where: str, *, max_bytes: int = MAX_MANIFEST_BYTES,
                  max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON ``data`` with limits: size, nesting depth, digits per number, no NaN or
    infinity, no repeated key.

    Raises:
        BundleError: naming ``where`` and the limit or syntax error; never ``ValueError``
            from Python's int-size limit nor ``RecursionError``.
    """
    if len(data) > max_bytes:
        raise BundleError(f"{where!r} has {len(data)} bytes, more than the {max_bytes} a "
                          "bundle's JSON may have")
    try:
        text = data.decode("utf-8")
        obj = json.loads(text, parse_int=_parse_int, parse_float=_parse_float,
                         parse_constant=_parse_constant, object_pairs_hook=_pairs)
        _check_depth(obj, max_depth)
    except BundleError as exc:
        raise BundleError(f"{where!r} is refused: {exc}") from None
    except RecursionError:
        raise BundleError(f"{where!r} is refused: nested more than {max_depth} levels "
                          "deep") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise BundleError(f"not a switchnas bundle: {where!r} is not valid JSON "
                          f"({exc})") from None
    return obj


def parse_manifest(data: bytes, where: str) -> dict[str, Any]:
    """Parse and validate the bytes of ``manifest.json`` (:func:`loads_bounded`, then
    :func:`validate_manifest`)."""
    return validate_manifest(loads_bounded(data, where))


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Read, parse and validate the manifest of the bundle folder ``path`` (regular file,
    size-capped: never reads more than the limit).

    Raises:
        BundleError: a missing, oversized or invalid manifest.
    """
    import os
    import stat

    p = Path(path) / MANIFEST
    try:
        st = os.lstat(p)
        if not stat.S_ISREG(st.st_mode):
            raise BundleError(f"cannot read bundle manifest {str(p)!r}: not a regular file")
        with open(p, "rb") as f:
            data = f.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise BundleError(f"cannot read bundle manifest {str(p)!r}: {exc}") from exc
    return parse_manifest(data, str(p))


# -- schema ----------------------------------------------------------------------------------
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
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
        raise _fail(where, f"must be a positive finite number, got {v!r}")
    return float(v)


def _number(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise _fail(where, f"must be a finite number, got {v!r}")
    return float(v)


def _shape(v: Any, where: str) -> list[int]:
    if (not isinstance(v, list) or len(v) > 8
            or any(isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 1 << 40
                   for n in v)):
        raise _fail(where, f"must be a list of at most 8 sizes, got {v!r}"[:200])
    return v


def _check_supernet(sn: Mapping[str, Any]) -> None:
    keys = set(sn)
    if keys - {"name", "target", "kwargs"}:
        raise _fail("supernet", f"has unknown fields {sorted(keys - {'name', 'target', 'kwargs'})}"
                    "; allowed: name, kwargs (or target, kwargs)")
    if ("name" in sn) == ("target" in sn):
        raise _fail("supernet", "must have exactly one of 'name' (a registered super-net) "
                    "and 'target' (an import path, loaded only with trust_target=True)")
    if "name" in sn:
        name = _need(sn, "name", str, "supernet")
        if not NAME_PATTERN.match(name):
            raise _fail("supernet.name", f"{name[:80]!r} is not a registered-name form "
                        "(letters, digits, '_', '.', '-'; at most 64)")
    else:
        target = _need(sn, "target", str, "supernet")
        if ":" not in target or len(target) > 256:
            raise _fail("supernet.target", f"must be 'module:Class', got {target[:80]!r}")
    _need(sn, "kwargs", dict, "supernet")


def _check_fingerprint(fp: Any, where: str) -> None:
    if not isinstance(fp, dict):
        raise _fail(where, "must be an object")
    probe = _need(fp, "probe", dict, where)
    for k in ("seed", "batch"):
        v = _need(probe, k, int, f"{where}.probe")
        if not 0 <= v <= 1 << 31:
            raise _fail(f"{where}.probe.{k}", f"is out of range: {v!r}")
    _shape(_need(probe, "shape", list, f"{where}.probe"), f"{where}.probe.shape")
    _need(probe, "dtype", str, f"{where}.probe")
    for k in ("sum", "sq_sum"):
        _number(_need(probe, k, (int, float), f"{where}.probe"), f"{where}.probe.{k}")
    out = _need(fp, "output", dict, where)
    _shape(_need(out, "shape", list, f"{where}.output"), f"{where}.output.shape")
    _need(out, "dtype", str, f"{where}.output")
    for k in ("sum", "abs_sum", "sq_sum"):
        _number(_need(out, k, (int, float), f"{where}.output"), f"{where}.output.{k}")
    chunks = _need(out, "chunks", list, f"{where}.output")
    if not 0 < len(chunks) <= MAX_CHUNKS:
        raise _fail(f"{where}.output.chunks", f"must hold 1 to {MAX_CHUNKS} numbers")
    for j, s in enumerate(chunks):
        _number(s, f"{where}.output.chunks[{j}]")


def validate_manifest(m: Any) -> dict[str, Any]:
    """Check ``m`` (parsed ``manifest.json``) against the format; return it unchanged.

    Raises:
        BundleError: naming the first field that is missing or of the wrong kind, a
            foreign file (``format`` is not ``"switchnas-bundle"``), another format
            version (version 1 named code to import: re-export such bundles; versions 2
            and 3 are read, 3 may carry an ``io`` section), or more members or files than
            the limits allow.
    """
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        found = m.get("format") if isinstance(m, dict) else type(m).__name__
        raise BundleError(f"not a switchnas bundle: manifest 'format' is {str(found)[:80]!r}, "
                          f"expected {FORMAT!r}")
    version = m.get("format_version")
    if version == 1:
        raise BundleError("bundle format version 1 is no longer loaded: its manifest names "
                          "code to import. Re-export it with this switchnas (format version "
                          f"{FORMAT_VERSION} names its super-net by a registered name)")
    if (version not in READABLE_VERSIONS or isinstance(version, bool)
            or not isinstance(version, int)):
        raise BundleError(f"bundle format version {str(version)[:40]} is not supported; this "
                          f"switchnas reads versions {', '.join(map(str, READABLE_VERSIONS))}")
    _need(m, "space", dict, "manifest")
    _check_supernet(_need(m, "supernet", dict, "manifest"))
    _need(m, "hardware", dict, "manifest")
    weights = _need(m, "weights", dict, "manifest")
    if weights.get("layout") not in ("slices", "full"):
        raise _fail("weights.layout", f"must be 'slices' or 'full', got "
                    f"{str(weights.get('layout'))[:40]!r}")
    members = _need(m, "members", list, "manifest")
    if not members:
        raise _fail("members", "is empty; a bundle holds at least one member")
    if len(members) > MAX_MEMBERS:
        raise _fail("members", f"has {len(members)} entries; at most {MAX_MEMBERS} allowed")
    seen: set[str] = set()
    for i, mem in enumerate(members):
        w = f"members[{i}]"
        if not isinstance(mem, dict):
            raise _fail(w, f"must be an object, got {type(mem).__name__}")
        mid = _need(mem, "id", str, w)
        if not mid or mid in seen or len(mid) > 128:
            raise _fail(f"{w}.id", f"{mid[:80]!r} is empty, too long or repeated")
        seen.add(mid)
        _need(mem, "config", dict, w)
        _number(_need(mem, "accuracy", (int, float), w), f"{w}.accuracy")
        _positive(_need(mem, "latency_ms", (int, float), w), f"{w}.latency_ms")
        for hw, ms in _need(mem, "latency", dict, w).items():
            _positive(ms, f"{w}.latency[{hw[:40]!r}]")
        if mem.get("energy_mj") is not None:
            _positive(mem["energy_mj"], f"{w}.energy_mj")
        if _need(mem, "index", int, w) != i:
            raise _fail(f"{w}.index", f"must be {i}, got {mem['index']!r}")
        _check_fingerprint(_need(mem, "fingerprint", dict, w), f"{w}.fingerprint")
    files = _need(m, "files", dict, "manifest")
    if len(files) > MAX_FILES:
        raise _fail("files", f"has {len(files)} entries; at most {MAX_FILES} allowed")
    if WEIGHTS not in files:
        raise _fail("files", f"lacks {WEIGHTS!r}")
    for i, mem in enumerate(members):
        if "onnx" in mem and (not isinstance(mem["onnx"], str) or mem["onnx"] not in files):
            raise _fail(f"members[{i}].onnx", f"names {str(mem['onnx'])[:80]!r}, which is not "
                        "in 'files'")
    for name, entry in files.items():
        w = f"files[{name[:80]!r}]"
        if not isinstance(entry, dict):
            raise _fail(w, "must be an object")
        if ("/" in name or "\\" in name or "\x00" in name or name.startswith(".")
                or name == MANIFEST or not 0 < len(name) <= 128):
            raise _fail(w, "must name a plain file of the bundle folder")
        digest = _need(entry, "sha256", str, w)
        if len(digest) != 64 or not set(digest) <= _HEX:
            raise _fail(f"{w}.sha256", f"is not a hex SHA-256 digest: {digest[:80]!r}")
        if _need(entry, "bytes", int, w) < 0:
            raise _fail(f"{w}.bytes", "must be >= 0")
    extra = m.get("extra", {})
    if not isinstance(extra, dict):
        raise _fail("extra", "must be an object")
    if "io" in m:
        if version < 3:
            raise _fail("io", f"needs format version 3; this manifest says {version}")
        from ._io import validate_io

        validate_io(m["io"], members, files)
    return m
