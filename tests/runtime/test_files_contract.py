"""The exact contract of runtime/files.py: temporary names, folders, JSON layout, modes."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from switchnas.runtime import files
from switchnas.runtime.files import atomic_path, atomic_write_json, default_file_mode


def test_the_temporary_is_a_hidden_sibling_with_only_the_suffix_asked_for(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "x.json") as tmp:
        assert re.fullmatch(r"\.x\.json\.[A-Za-z0-9_]{8}", tmp.name), tmp.name
        tmp.write_text("1")
    with atomic_path(tmp_path / "w.safetensors", suffix=".safetensors") as tmp:
        assert re.fullmatch(r"\.w\.safetensors\.[A-Za-z0-9_]{8}\.safetensors", tmp.name)
        tmp.write_text("2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors", "x.json"]


def test_missing_folders_are_created_at_any_depth(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c" / "x.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("deep")
    assert target.read_text() == "deep"


def test_an_error_after_the_writer_removed_its_temporary_is_the_one_raised(tmp_path: Path) -> None:
    """The clean-up tolerates a temporary that is already gone: the caller sees its own
    error, not a FileNotFoundError from the clean-up."""
    with pytest.raises(RuntimeError, match="^boom$"), atomic_path(tmp_path / "x") as tmp:
        tmp.unlink()
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_json_layout_defaults_to_two_space_indent_and_passes_dumps_options(tmp_path: Path) -> None:
    p = tmp_path / "a.json"
    atomic_write_json(p, {"b": 1, "a": [1, 2]})
    assert p.read_text() == '{\n  "b": 1,\n  "a": [\n    1,\n    2\n  ]\n}\n'
    atomic_write_json(p, {"b": 1, "a": 2}, indent=None, sort_keys=True)
    assert p.read_text() == '{"a": 2, "b": 1}\n'
    assert json.loads(p.read_text()) == {"a": 2, "b": 1}


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_the_mode_is_read_from_proc_without_touching_the_umask(umask_022: None,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    if not Path("/proc/self/status").is_file():
        pytest.skip("no /proc/self/status on this system")

    def no_umask(mask: int) -> int:
        raise AssertionError("default_file_mode() changed the process umask although /proc "
                             "tells it")

    monkeypatch.setattr(files.os, "umask", no_umask)
    assert default_file_mode() == 0o644


class _NoProc:
    """Stands in for pathlib.Path in files.py: /proc cannot be read."""

    def __init__(self, *parts: object) -> None:
        self.path = Path(*map(str, parts))

    def read_text(self) -> str:
        raise OSError(2, "no such file", str(self.path))


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_without_proc_the_umask_is_read_and_restored(monkeypatch: pytest.MonkeyPatch,
                                                      mask: int) -> None:
    monkeypatch.setattr(files, "Path", _NoProc)
    old = os.umask(mask)
    try:
        assert default_file_mode() == 0o666 & ~mask
        assert os.umask(mask) == mask  # put back as it was
    finally:
        os.umask(old)
