"""Run a bundle's ONNX members with onnxruntime alone (no torch, no safetensors).

A bundle written with ``write_bundle(..., onnx=True)`` holds ``member-<index>.onnx`` per
member. :func:`load_onnx` checks the manifest and the checksums of those files, then runs
them with the same switching and selector interface as :class:`switchnas.runtime.Bundle`,
on numpy arrays of shape ``(batch, 3, r, r)``, ``r`` the member's resolution.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ._manifest import BundleError, read_manifest
from .selectors import MemberInfo, Selector, make_selector

__all__ = ["OnnxBundle", "load_onnx"]


class OnnxBundle:
    """ONNX members of a bundle: ``activate(id)``, ``__call__(x)``, ``selector(...)``."""

    def __init__(self, root: Path, manifest: dict[str, Any], providers: list[str]):
        import onnxruntime as ort

        self.path = root
        self.manifest = manifest
        self.members = [MemberInfo(m["id"], float(m["accuracy"]), float(m["latency_ms"]),
                                   m.get("energy_mj")) for m in manifest["members"]]
        self.configs = {m["id"]: m["config"] for m in manifest["members"]}
        self._sessions = {m["id"]: ort.InferenceSession(str(root / m["onnx"]),
                                                        providers=providers)
                          for m in manifest["members"]}
        self._lock = threading.Lock()
        self._active = self.members[0].id

    @property
    def ids(self) -> list[str]:
        return [m.id for m in self.members]

    @property
    def active(self) -> str:
        return self._active

    def input_shape(self, member_id: str, batch: int = 1) -> tuple[int, int, int, int]:
        r = int(self.configs[member_id]["r"])
        return (batch, 3, r, r)

    def activate(self, member_id: str) -> None:
        if member_id not in self._sessions:
            raise KeyError(f"unknown bundle member {member_id!r}; members are {self.ids}")
        with self._lock:
            self._active = member_id

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with self._lock:
            session = self._sessions[self._active]
        out: np.ndarray = session.run(None, {"x": np.ascontiguousarray(x, np.float32)})[0]
        return out

    def selector(self, target_ms: float, policy: str = "feedback", **kwargs: Any) -> Selector:
        return make_selector(policy, self.members, target_ms=target_ms, **kwargs)


def load_onnx(path: str | os.PathLike[str], *,
              providers: list[str] | None = None) -> OnnxBundle:
    """Load the ONNX members of the bundle folder ``path`` (checksums verified first).

    Raises:
        BundleError: an invalid manifest, a bundle without ONNX members, or an ONNX file
            that is missing, truncated or modified.
    """
    root = Path(path)
    manifest = read_manifest(root)
    missing = [m["id"] for m in manifest["members"] if "onnx" not in m]
    if missing:
        raise BundleError(f"bundle {str(root)!r} has no ONNX file for members {missing}; "
                          "write it with write_bundle(..., onnx=True)")
    for m in manifest["members"]:
        entry = manifest["files"][m["onnx"]]
        f = root / m["onnx"]
        ok = f.is_file() and not f.is_symlink() and f.stat().st_size == entry["bytes"]
        data = f.read_bytes()[:entry["bytes"] + 1] if ok else None
        if data is None or len(data) != entry["bytes"] \
                or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise BundleError(f"bundle file {str(f)!r} is missing, truncated or modified "
                              "(size or SHA-256 differs from the manifest)")
    return OnnxBundle(root, manifest, providers or ["CPUExecutionProvider"])
