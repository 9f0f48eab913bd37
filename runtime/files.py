"""Atomic file writes, shared by every package (``runtime`` is the bottom layer).

Each function writes a temporary file beside the target (``.<name>.<random>``), then
renames it over the target: a reader sees the old file or the new one, never half of
one, and a write that fails or is interrupted removes its temporary. The file gets the
mode an ordinary ``open(path, "w")`` would give it (``0o666`` less the process's umask),
not the ``0o600`` of :func:`tempfile.mkstemp`, so run directories, reports and tables stay
readable by whoever may read the folder.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_json", "atomic_write_text",
           "default_file_mode"]

_UMASK_LOCK = threading.Lock()


def default_file_mode() -> int:
    """``0o666`` less the process's umask: the mode ``open(path, "w")`` creates files with."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:  # no /proc: read the umask by setting it (and putting it back)
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that needs a file name (e.g.
    ``safetensors.torch.save_file``); when the block ends normally it is renamed over
    ``path``, and when it raises it is removed. The folder is created if missing."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path`` as a :class:`Path`."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, *,
                      encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns ``path`` as a :class:`Path`."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2,
                      **dumps: Any) -> Path:
    """Write ``obj`` as JSON (``json.dumps(obj, indent=indent, **dumps)`` and a newline)
    atomically. Raises what ``json.dumps`` raises before anything is written."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, **dumps) + "\n")
