"""Stage artifacts: one folder per stage in the run directory, with a JSON manifest
(``stage.json``: the stage's key, inputs' digests, config, files' SHA-256, versions).

A stage's *key* hashes its resolved config and the digests of the artifacts it reads.
``Artifacts.produce`` reuses the folder when its manifest carries the same key, and
otherwise builds the artifact in a temporary folder that is renamed into place only
when complete, so a crashed or interrupted stage never leaves a half-written artifact.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["Artifact", "Artifacts", "atomic_write_text", "file_sha256", "library_versions"]

log = logging.getLogger("switchnas")

MANIFEST = "stage.json"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder + rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for mod in ("torch", "numpy", "sklearn", "optuna", "ofa", "hydra", "safetensors"):
        try:
            out[mod] = str(getattr(__import__(mod), "__version__", "?"))
        except Exception:  # noqa: BLE001 - optional
            continue
    return out


def _stable_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


class Artifact:
    """A finished stage folder and its manifest."""

    def __init__(self, path: Path):
        self.path = path
        self.manifest: dict[str, Any] = json.loads((path / MANIFEST).read_text())

    @property
    def digest(self) -> str:
        """Hash of the stage key and its output files: what downstream stages depend on."""
        return str(self.manifest["digest"])

    @property
    def reused(self) -> bool:
        return bool(self.manifest.get("_reused", False))

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def summary(self) -> dict[str, Any]:
        return dict(self.manifest.get("summary", {}))


class Artifacts:
    """The artifacts of one run directory."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)

    def produce(self, stage: str, *, config: Mapping[str, Any], inputs: Mapping[str, str],
                build: Callable[[Path], dict[str, Any] | None],
                dirname: str | None = None) -> Artifact:
        """Return the artifact of ``stage``, rebuilding it only if its key changed.

        ``build(tmp_dir)`` writes the stage's files into ``tmp_dir`` and returns a
        JSON-able summary stored in the manifest.
        """
        key = _stable_hash({"stage": stage, "config": config, "inputs": dict(inputs)})
        final = self.run_dir / (dirname or stage)
        if (final / MANIFEST).is_file():
            try:
                old = Artifact(final)
                if old.manifest.get("key") == key:
                    log.info("stage %s: inputs unchanged, reusing %s", stage, final)
                    old.manifest["_reused"] = True
                    return old
            except (ValueError, KeyError, OSError):
                pass
        tmp = Path(tempfile.mkdtemp(dir=self.run_dir, prefix=f".{stage}."))
        try:
            t0 = time.perf_counter()
            summary = build(tmp) or {}
            seconds = time.perf_counter() - t0
            files = {p.relative_to(tmp).as_posix(): file_sha256(p)
                     for p in sorted(tmp.rglob("*")) if p.is_file()}
            manifest = {
                "stage": stage,
                "key": key,
                "digest": _stable_hash({"key": key, "files": files}),
                "inputs": dict(inputs),
                "config": config,
                "files": files,
                "versions": library_versions(),
                "seconds": round(seconds, 3),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "summary": summary,
            }
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log.info("stage %s: done in %.1f s -> %s", stage, seconds, final)
        return Artifact(final)
