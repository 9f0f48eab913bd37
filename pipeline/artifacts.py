"""Stage artifacts: one folder per stage in the run directory, with a JSON manifest
(``stage.json``: the stage's key, inputs' digests, config, files' SHA-256, versions).

A stage's *key* hashes its resolved config and the digests of the artifacts it reads.
``Artifacts.produce`` reuses the folder when its manifest carries the same key and the
folder still holds exactly the files the manifest lists, with their SHA-256 (anything
else is logged as a warning naming the file and the stage is rebuilt), and otherwise
builds the artifact in a temporary folder (``.<stage>.*``) that is renamed into place
only when complete, so a crashed or interrupted stage never leaves a half-written
artifact. Temporary folders are only created while the run directory's lock is held
(:mod:`switchnas.pipeline.lock`), so any present when a command starts are stale:
:meth:`Artifacts.remove_stale_temporaries` deletes them.

With a *store* (``store=``: a folder outside the run directory, shared by the jobs of a
Hydra sweep or by every run of a machine), finished artifacts are also kept there,
content-addressed as ``<store>/<stage>/<key>/``. A stage whose key is in the store is
copied from it (after the same verification) instead of being rebuilt: two jobs of a
sweep that differ only in the hardware share one trained super-network.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from switchnas.runtime.files import atomic_write_text

__all__ = ["Artifact", "ArtifactError", "Artifacts", "atomic_write_text", "file_sha256",
           "library_versions"]

log = logging.getLogger("switchnas")

MANIFEST = "stage.json"
#: A stage's temporary build folder in the run directory: ``.<stage>.<random>``.
_TEMPORARY = re.compile(r"^\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")


class ArtifactError(ValueError):
    """A stage folder that does not match its manifest (missing, extra or changed file)."""


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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

    def verify(self) -> None:
        """Check the folder against its manifest.

        Every file listed in ``files`` must exist as a regular file with the recorded
        SHA-256, no other file or link may be present (besides ``stage.json``), and the
        manifest's ``digest`` must be the hash of its key and files.

        Raises:
            ArtifactError: the first mismatch, naming the file.
        """
        files = self.manifest.get("files")
        key = self.manifest.get("key")
        if not isinstance(files, dict) or not isinstance(key, str) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
            raise ArtifactError(f"{self.path / MANIFEST}: malformed manifest")
        if self.manifest.get("digest") != _stable_hash({"key": key, "files": files}):
            raise ArtifactError(f"{self.path / MANIFEST}: digest does not match its files")
        if self.path.is_symlink():
            raise ArtifactError(f"{self.path}: is a symbolic link")
        present: set[str] = set()
        for root, dirs, names in os.walk(self.path):
            for name in [*dirs, *names]:
                p = Path(root) / name
                rel = p.relative_to(self.path).as_posix()
                if p.is_symlink():
                    raise ArtifactError(f"{p}: symbolic link not listed in {MANIFEST}")
                if name in names and rel != MANIFEST:
                    present.add(rel)
        extra = sorted(present - files.keys())
        if extra:
            raise ArtifactError(f"{self.path / extra[0]}: not listed in {MANIFEST}")
        for rel, sha in sorted(files.items()):
            p = self.path / rel
            if rel not in present:
                raise ArtifactError(f"{p}: listed in {MANIFEST} but missing")
            if file_sha256(p) != sha:
                raise ArtifactError(f"{p}: SHA-256 differs from {MANIFEST}")


class Artifacts:
    """The artifacts of one run directory, optionally backed by a content-addressed store.

    Args:
        run_dir: the run directory (created if missing).
        store: a folder shared between run directories (created if missing); ``None``: no
            store. Its entries are written atomically (copied into a temporary folder, then
            renamed), so concurrent jobs at worst build the same artifact twice.
    """

    def __init__(self, run_dir: Path, *, store: Path | None = None):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.store = None if store is None else Path(store)
        if self.store is not None:
            try:
                self.store.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ValueError(f"artifact store {str(self.store)!r} cannot be created: "
                                 f"{exc}") from exc
            if self.store.resolve() == self.run_dir.resolve():
                raise ValueError(f"artifact store {str(self.store)!r} is the run directory; "
                                 "use a folder outside it")

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete the ``.<stage>.*`` build folders that killed runs left behind.

        Call it only while holding the run directory's lock: then no build is in progress.

        Returns:
            The folders removed.
        """
        removed = []
        for p in sorted(self.run_dir.iterdir()):
            if _TEMPORARY.match(p.name) and p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
                log.info("removed %s, left by an interrupted run", p)
                removed.append(p)
        return removed

    def produce(self, stage: str, *, config: Mapping[str, Any], inputs: Mapping[str, str],
                build: Callable[[Path], dict[str, Any] | None],
                dirname: str | None = None) -> Artifact:
        """Return the artifact of ``stage``, rebuilding it only if its key changed.

        ``build(tmp_dir)`` writes the stage's files into ``tmp_dir`` and returns a
        JSON-able summary stored in the manifest.

        Raises:
            ArtifactError: the build wrote a symbolic link (nothing is kept; a link could
                not be verified, so the stage would never be reused).
        """
        key = _stable_hash({"stage": stage, "config": config, "inputs": dict(inputs)})
        final = self.run_dir / (dirname or stage)
        if (final / MANIFEST).is_file():
            try:
                old = Artifact(final)
                if old.manifest.get("key") == key:
                    old.verify()
                    log.info("stage %s: inputs unchanged, reusing %s", stage, final)
                    old.manifest["_reused"] = True
                    return old
            except ArtifactError as exc:
                log.warning("stage %s: %s; rebuilding the stage", stage, exc)
            except (ValueError, KeyError, OSError, AttributeError, RecursionError) as exc:
                log.warning("stage %s: unreadable %s (%s); rebuilding the stage", stage,
                            final / MANIFEST, exc)
        stored = self._from_store(stage, key, final)
        if stored is not None:
            return stored
        tmp = Path(tempfile.mkdtemp(dir=self.run_dir, prefix=f".{stage}."))
        try:
            t0 = time.perf_counter()
            summary = build(tmp) or {}
            seconds = time.perf_counter() - t0
            written = sorted(tmp.rglob("*"))
            links = [p.relative_to(tmp).as_posix() for p in written if p.is_symlink()]
            if links:  # verify() refuses links: such a stage could never be reused
                raise ArtifactError(f"stage {stage}: the build wrote symbolic link(s) {links}; "
                                    "a stage folder holds regular files and folders only "
                                    "(copy the target instead)")
            files = {p.relative_to(tmp).as_posix(): file_sha256(p)
                     for p in written if p.is_file()}
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
            if final.is_symlink() or final.is_file():
                final.unlink()
            elif final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log.info("stage %s: done in %.1f s -> %s", stage, seconds, final)
        self._to_store(stage, key, final)
        return Artifact(final)

    # -- the content-addressed store ------------------------------------------------------
    def stored(self, stage: str, key: str) -> Path | None:
        """The store's folder for ``stage`` with ``key``, if the store holds it."""
        if self.store is None or not re.fullmatch(r"[0-9a-f]{64}", key):
            return None
        path = self.store / stage / key
        return path if (path / MANIFEST).is_file() else None

    def _from_store(self, stage: str, key: str, final: Path) -> Artifact | None:
        src = self.stored(stage, key)
        if src is None:
            return None
        try:
            art = Artifact(src)
            if art.manifest.get("key") != key:
                raise ArtifactError(f"{src / MANIFEST}: key does not match its folder name")
            art.verify()
        except (ArtifactError, ValueError, KeyError, OSError, RecursionError) as exc:
            log.warning("stage %s: store entry %s is damaged (%s); rebuilding the stage",
                        stage, src, exc)
            return None
        tmp = Path(tempfile.mkdtemp(dir=self.run_dir, prefix=f".{stage}."))
        try:
            shutil.copytree(src, tmp, dirs_exist_ok=True, symlinks=True)
            # where it came from (the manifest itself is not one of the hashed files)
            manifest = {**art.manifest, "from_store": str(src),
                        "copied": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
            if final.is_symlink() or final.is_file():
                final.unlink()
            elif final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log.info("stage %s: inputs unchanged, copied from the artifact store %s", stage, src)
        out = Artifact(final)
        out.manifest["_reused"] = True
        return out

    def _to_store(self, stage: str, key: str, final: Path) -> None:
        if self.store is None or self.stored(stage, key) is not None:
            return
        folder = self.store / stage
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=folder, prefix=f".{key[:12]}."))
        except OSError as exc:
            log.warning("stage %s: not kept in the artifact store (%s)", stage, exc)
            return
        try:
            shutil.copytree(final, tmp, dirs_exist_ok=True, symlinks=True)
            (tmp / MANIFEST).write_text(json.dumps(
                {k: v for k, v in Artifact(final).manifest.items()
                 if k not in ("from_store", "copied")}, indent=2, default=str) + "\n")
            os.rename(tmp, folder / key)  # fails if another job stored it meanwhile: fine
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if self.stored(stage, key) is None:
                log.warning("stage %s: not kept in the artifact store (%s)", stage, exc)
