"""Reading a bundle's bytes: a folder or a single-file tar archive, and safetensors
headers, with every size checked against the manifest before anything is read or
allocated."""

from __future__ import annotations

import hashlib
import math
import os
import stat
import tarfile
from pathlib import Path
from typing import Any

import torch

from ._manifest import MANIFEST, MAX_MANIFEST_BYTES, BundleError, loads_bounded, parse_manifest

__all__ = ["Archive", "Folder", "TensorInfo", "open_source", "parse_safetensors_header"]

MAX_ARCHIVE_BYTES = 64 << 30
MAX_HEADER_BYTES = 64 << 20
_CHUNK = 1 << 20

#: safetensors dtype names and their torch dtypes
DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}

TensorInfo = tuple[str, tuple[int, ...]]  # (dtype name, shape)


def parse_safetensors_header(head: bytes, file_size: int, where: str
                             ) -> dict[str, TensorInfo]:
    """Check a safetensors file's header (its first ``8 + n`` bytes) against the file size.

    Every tensor's dtype must be known, its byte range inside the data section, its size
    ``numel * itemsize`` exactly that range, and the ranges may not overlap; so the file
    can be read afterwards without any allocation the file does not back.

    Returns:
        ``{name: (dtype, shape)}`` (the ``__metadata__`` entry left out).

    Raises:
        BundleError: naming ``where`` and the first bad entry.
    """
    if len(head) < 8 or file_size < 8:
        raise BundleError(f"cannot read bundle weights {where!r}: shorter than a header")
    n = int.from_bytes(head[:8], "little")
    if n > min(file_size - 8, MAX_HEADER_BYTES) or len(head) < 8 + n:
        raise BundleError(f"cannot read bundle weights {where!r}: header length {n} does not "
                          f"fit the file's {file_size} bytes")
    header = loads_bounded(bytes(head[8:8 + n]), f"{where} header", max_bytes=MAX_HEADER_BYTES,
                           max_depth=4)
    if not isinstance(header, dict):
        raise BundleError(f"cannot read bundle weights {where!r}: header is not an object")
    data_len = file_size - 8 - n
    out: dict[str, TensorInfo] = {}
    ranges: list[tuple[int, int, str]] = []
    for name, e in header.items():
        if name == "__metadata__":
            if not isinstance(e, dict) or not all(isinstance(v, str) for v in e.values()):
                raise BundleError(f"bundle weights {where!r}: __metadata__ must map strings "
                                  "to strings")
            continue
        bad = f"bundle weights {where!r}: tensor {name[:80]!r}"
        if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
            raise BundleError(f"{bad} has a malformed entry")
        dtype, shape, offs = e["dtype"], e["shape"], e["data_offsets"]
        if dtype not in DTYPES:
            raise BundleError(f"{bad} has dtype {str(dtype)[:20]!r}; allowed: {sorted(DTYPES)}")
        if (not isinstance(shape, list) or len(shape) > 8
                or any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in shape)):
            raise BundleError(f"{bad} has a malformed shape {str(shape)[:80]}")
        if (not isinstance(offs, list) or len(offs) != 2
                or any(isinstance(o, bool) or not isinstance(o, int) for o in offs)
                or not 0 <= offs[0] <= offs[1] <= data_len):
            raise BundleError(f"{bad} has data offsets {str(offs)[:80]} outside the file's "
                              f"{data_len} data bytes")
        size = math.prod(shape) * DTYPES[dtype].itemsize
        if size != offs[1] - offs[0]:
            raise BundleError(f"{bad} of shape {shape} {dtype} needs {size} bytes, its "
                              f"offsets span {offs[1] - offs[0]}")
        out[name] = (dtype, tuple(shape))
        ranges.append((offs[0], offs[1], name))
    ranges.sort()
    for (_, e0, a), (b1, _, b) in zip(ranges, ranges[1:], strict=False):
        if b1 < e0:
            raise BundleError(f"bundle weights {where!r}: tensors {a[:40]!r} and {b[:40]!r} "
                              "overlap")
    return out


def _load_tensors(read: Any, where: str) -> dict[str, torch.Tensor]:
    try:
        out: dict[str, torch.Tensor] = read()
        return out
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same message
        raise BundleError(f"cannot read bundle weights {where!r}: {exc}") from exc


class Folder:
    """A bundle folder: every file must be a regular file (no symlink, device or pipe);
    no more bytes than the manifest declares are ever read."""

    def __init__(self, root: Path):
        self.root = root
        if not root.is_dir() or not (root / MANIFEST).is_file():
            raise BundleError(f"{str(root)!r} is not a bundle folder (no {MANIFEST}) nor a "
                              "bundle archive")
        self.manifest = parse_manifest(self._read(MANIFEST, MAX_MANIFEST_BYTES, cap=True),
                                       self.where(MANIFEST))

    def where(self, name: str) -> str:
        return str(self.root / name)

    def _regular(self, name: str) -> int:
        try:
            st = os.lstat(self.root / name)
        except FileNotFoundError:
            raise BundleError(f"bundle file {self.where(name)!r} is missing") from None
        except OSError as exc:
            raise BundleError(f"bundle file {self.where(name)!r}: {exc}") from exc
        if not stat.S_ISREG(st.st_mode):
            raise BundleError(f"bundle file {self.where(name)!r} is not a regular file "
                              "(a link, folder or device)")
        return st.st_size

    def _read(self, name: str, limit: int, *, cap: bool = False) -> bytes:
        size = self._regular(name)
        if size > limit:
            raise BundleError(f"{self.where(name)!r} has {size} bytes, more than "
                              f"{'the limit of' if cap else 'the manifest declares,'} {limit}")
        with open(self.root / name, "rb") as f:
            return f.read(limit + 1)

    def check(self, name: str, size: int, digest: str) -> None:
        """Size (before reading) and SHA-256 (reading at most ``size`` bytes)."""
        actual = self._regular(name)
        if actual != size:
            raise BundleError(f"bundle file {self.where(name)!r} has {actual} bytes, the "
                              f"manifest says {size}: truncated or replaced")
        h = hashlib.sha256()
        left = size
        with open(self.root / name, "rb") as f:
            while left > 0 and (block := f.read(min(_CHUNK, left))):
                h.update(block)
                left -= len(block)
        if left or h.hexdigest() != digest:
            raise BundleError(f"bundle file {self.where(name)!r} fails its SHA-256 check: it "
                              "was modified or corrupted after the bundle was written")

    def header(self, name: str) -> dict[str, TensorInfo]:
        size = self._regular(name)
        with open(self.root / name, "rb") as f:
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else 0
            if len(head) == 8 and n <= min(size - 8, MAX_HEADER_BYTES):
                head += f.read(n)
        return parse_safetensors_header(head, size, self.where(name))

    def tensors(self, name: str) -> dict[str, torch.Tensor]:
        from safetensors import safe_open

        def read() -> dict[str, torch.Tensor]:
            with safe_open(str(self.root / name), framework="pt", device="cpu") as f:
                return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict

        return _load_tensors(read, self.where(name))

    def bytes(self, name: str) -> bytes:
        return self._read(name, int(self.manifest["files"][name]["bytes"]))


class Archive:
    """A single-file bundle: an uncompressed tar whose first member is ``manifest.json``
    and whose other members are exactly the files the manifest lists.

    Refused before their bytes are read: anything but a regular file (links, folders,
    devices), sparse members, names with a path, repeated names, names the manifest does
    not list, members of another size than the manifest declares; a member's bytes are
    read only up to its declared size.
    """

    def __init__(self, path: Path):
        self.path = path
        self.files: dict[str, bytes] = {}
        try:
            size = path.stat().st_size
            if size > MAX_ARCHIVE_BYTES:
                raise BundleError(f"bundle archive {str(path)!r} has {size} bytes, more than "
                                  f"the limit of {MAX_ARCHIVE_BYTES}")
            with tarfile.open(path, mode="r:") as tar:
                self._read(tar, size)
        except BundleError:
            raise
        except Exception as exc:  # noqa: BLE001 - a malformed archive, whatever tarfile says
            raise BundleError(f"{str(path)!r} is not a bundle folder nor a readable bundle "
                              f"archive ({type(exc).__name__}: {exc})") from exc

    def _read(self, tar: tarfile.TarFile, archive_size: int) -> None:
        declared: dict[str, int] | None = None
        while (info := tar.next()) is not None:
            name = info.name
            if (not info.isreg() or info.issparse() or "/" in name or "\\" in name
                    or name.startswith(".") or not name):
                raise BundleError(f"bundle archive {str(self.path)!r} holds {name[:80]!r}, "
                                  "which is not a plain file of a bundle")
            if name in self.files:
                raise BundleError(f"bundle archive {str(self.path)!r} holds {name[:80]!r} "
                                  "twice")
            if declared is None:
                if name != MANIFEST:
                    raise BundleError(f"bundle archive {str(self.path)!r} starts with "
                                      f"{name[:80]!r}, not {MANIFEST} (write archives with "
                                      "pack_bundle)")
                if info.size > MAX_MANIFEST_BYTES:
                    raise BundleError(f"bundle archive {str(self.path)!r}: {MANIFEST} has "
                                      f"{info.size} bytes, more than {MAX_MANIFEST_BYTES}")
                self.files[name] = self._member(tar, info, info.size)
                self.manifest = parse_manifest(self.files[name], self.where(MANIFEST))
                declared = {k: int(v["bytes"]) for k, v in self.manifest["files"].items()}
                if sum(declared.values()) > archive_size:
                    raise BundleError(f"bundle archive {str(self.path)!r}: the manifest "
                                      f"declares {sum(declared.values())} bytes of files, the "
                                      f"archive has {archive_size}")
                continue
            if name not in declared:
                raise BundleError(f"bundle archive {str(self.path)!r} holds {name[:80]!r}, "
                                  "which its manifest does not list")
            if info.size != declared[name]:
                raise BundleError(f"bundle file {self.where(name)!r} has {info.size} bytes, "
                                  f"the manifest says {declared[name]}: truncated or replaced")
            self.files[name] = self._member(tar, info, declared[name])
        if declared is None:
            raise BundleError(f"bundle archive {str(self.path)!r} has no {MANIFEST}")

    def _member(self, tar: tarfile.TarFile, info: tarfile.TarInfo, n: int) -> bytes:
        f = tar.extractfile(info)
        data = f.read(n) if f is not None else b""
        if len(data) != n:
            raise BundleError(f"bundle file {self.where(info.name)!r} is truncated in the "
                              "archive")
        return data

    def where(self, name: str) -> str:
        return f"{self.path}:{name}"

    def check(self, name: str, size: int, digest: str) -> None:
        if name not in self.files:
            raise BundleError(f"bundle file {self.where(name)!r} is missing")
        data = self.files[name]
        if len(data) != size:
            raise BundleError(f"bundle file {self.where(name)!r} has {len(data)} bytes, the "
                              f"manifest says {size}: truncated or replaced")
        if hashlib.sha256(data).hexdigest() != digest:
            raise BundleError(f"bundle file {self.where(name)!r} fails its SHA-256 check: it "
                              "was modified or corrupted after the bundle was written")

    def header(self, name: str) -> dict[str, TensorInfo]:
        data = self.files[name]
        return parse_safetensors_header(data[:8 + MAX_HEADER_BYTES], len(data),
                                        self.where(name))

    def tensors(self, name: str) -> dict[str, torch.Tensor]:
        from safetensors.torch import load as load_bytes

        return _load_tensors(lambda: load_bytes(self.files[name]), self.where(name))

    def bytes(self, name: str) -> bytes:
        return self.files[name]


def open_source(path: Path) -> Folder | Archive:
    """A bundle folder or archive at ``path``, its manifest parsed and validated."""
    try:
        is_file = path.is_file()
    except OSError as exc:
        raise BundleError(f"{str(path)!r} cannot be read: {exc}") from exc
    return Archive(path) if is_file else Folder(path)
