"""Atomic writes (``switchnas.runtime.files``): all or nothing, ordinary file modes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from switchnas.runtime.files import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    default_file_mode,
)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_files_get_the_mode_open_would_give(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        assert default_file_mode() == 0o666 & ~umask
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
        for i, write in enumerate((atomic_write_text, atomic_write_bytes)):
            target = tmp_path / f"atomic{i}"
            assert write(target, "x" if write is atomic_write_text else b"x") == target
            assert target.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
    finally:
        os.umask(old)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "t.json"
    atomic_write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1} and target.read_text().endswith("\n")
    with pytest.raises(TypeError):
        atomic_write_json(target, {"a": object()})  # not JSON: refused before writing
    with pytest.raises(RuntimeError, match="writer died"), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer died")
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in target.parent.iterdir()) == ["t.json"]


def test_atomic_path_is_beside_the_target_and_renamed_over_it(tmp_path: Path) -> None:
    target = tmp_path / "w.safetensors"
    with atomic_path(target, suffix=".safetensors") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".w.safetensors.")
        assert tmp.name.endswith(".safetensors") and not target.exists()
        tmp.write_bytes(b"abc")
    assert target.read_bytes() == b"abc" and not tmp.exists()
    assert atomic_write_text(tmp_path / "u.txt", "é", encoding="latin-1").read_bytes() == b"\xe9"
