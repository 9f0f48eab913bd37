"""Contract tests of ``switchnas.runtime.onnx``: what ``load_onnx`` checks before it opens
any session (exact messages), what it hands onnxruntime, and the ``OnnxBundle`` interface
(members, active member, input shapes, switching, selectors)."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from switchnas.runtime import BundleError
from switchnas.runtime import onnx as O
from switchnas.runtime.selectors import FeedbackSelector, MemberInfo, StaticSelector


class _Session:
    def __init__(self, path: str, providers: list[str]):
        self.path, self.providers = path, providers
        self.feeds: list[dict[str, np.ndarray]] = []

    def run(self, names: Any, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        assert names is None
        self.feeds.append(feed)
        return [np.full((feed["x"].shape[0], 2), float(len(self.feeds))), np.zeros(1)]


@pytest.fixture()
def fake_ort(monkeypatch: pytest.MonkeyPatch) -> list[_Session]:
    made: list[_Session] = []

    def session(path: str, providers: list[str]) -> _Session:
        s = _Session(path, providers)
        made.append(s)
        return s

    monkeypatch.setitem(sys.modules, "onnxruntime", SimpleNamespace(InferenceSession=session))
    return made


def _bundle(root: Path, monkeypatch: pytest.MonkeyPatch, *, onnx: bool = True,
            blobs: tuple[bytes, ...] = (b"model-zero", b"model-one!!")) -> dict[str, Any]:
    """Write the ONNX files of a two-member bundle and serve its manifest."""
    root.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {}
    members = []
    for i, blob in enumerate(blobs):
        m: dict[str, Any] = {"id": f"m{i}", "accuracy": 0.5 + i / 10, "latency_ms": 2 + 3 * i,
                             "config": {"r": 8 + 8 * i}}
        if i == 1:
            m["energy_mj"] = 1.5
        if onnx:
            name = f"member-{i}.onnx"
            (root / name).write_bytes(blob)
            files[name] = {"bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}
            m["onnx"] = name
        members.append(m)
    manifest = {"members": members, "files": files}
    seen: list[Path] = []

    def read(path: Any) -> dict[str, Any]:
        seen.append(Path(path))
        return manifest

    monkeypatch.setattr(O, "read_manifest", read)
    manifest["_seen"] = seen
    return manifest


def test_load_onnx_builds_one_session_per_member(tmp_path: Path, fake_ort: list[_Session],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = _bundle(tmp_path / "b", monkeypatch)
    b = O.load_onnx(str(tmp_path / "b"))
    assert manifest["_seen"] == [tmp_path / "b"]
    assert isinstance(b, O.OnnxBundle) and b.path == tmp_path / "b" and b.manifest is manifest
    assert [(s.path, s.providers) for s in fake_ort] == [
        (str(tmp_path / "b" / "member-0.onnx"), ["CPUExecutionProvider"]),
        (str(tmp_path / "b" / "member-1.onnx"), ["CPUExecutionProvider"])]
    assert b.members == [MemberInfo("m0", 0.5, 2.0, None), MemberInfo("m1", 0.6, 5.0, 1.5)]
    assert all(type(m.latency_ms) is float and type(m.accuracy) is float for m in b.members)
    assert b.configs == {"m0": {"r": 8}, "m1": {"r": 16}}
    assert b.ids == ["m0", "m1"] and b.active == "m0"
    fake_ort.clear()
    O.load_onnx(tmp_path / "b", providers=["CUDAExecutionProvider"])
    assert [s.providers for s in fake_ort] == [["CUDAExecutionProvider"]] * 2


def test_onnx_bundle_switching_and_calls(tmp_path: Path, fake_ort: list[_Session],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _bundle(tmp_path / "b", monkeypatch)
    b = O.load_onnx(tmp_path / "b")
    assert b.input_shape("m0") == (1, 3, 8, 8)
    assert b.input_shape("m1", batch=4) == (4, 3, 16, 16)
    b.configs["m1"] = {"r": 16.0}  # a resolution read as a float is still an int size
    shape = b.input_shape("m1", batch=2)
    assert shape == (2, 3, 16, 16) and all(type(v) is int for v in shape)
    x = np.zeros((2, 3, 8, 8), dtype=np.float64)
    out = b(x)
    assert out.shape == (2, 2) and fake_ort[0].feeds and not fake_ort[1].feeds
    assert fake_ort[0].feeds[0]["x"].dtype == np.float32
    b.activate("m1")
    assert b.active == "m1"
    b(np.zeros((1, 3, 16, 16), dtype=np.float32))
    assert len(fake_ort[1].feeds) == 1 and len(fake_ort[0].feeds) == 1
    with pytest.raises(KeyError) as err:
        b.activate("zz")
    assert err.value.args[0] == "unknown bundle member 'zz'; members are ['m0', 'm1']"
    assert b.active == "m1"


def test_onnx_bundle_selector(tmp_path: Path, fake_ort: list[_Session],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    _bundle(tmp_path / "b", monkeypatch)
    b = O.load_onnx(tmp_path / "b")
    sel = b.selector(10.0)
    assert isinstance(sel, FeedbackSelector) and sel.target_ms == 10.0
    assert sel.current == "m1"  # 5 ms fits 9 ms, the more accurate
    sel = b.selector(target_ms=10.0, policy="static", member="m0")
    assert isinstance(sel, StaticSelector) and sel.current == "m0"
    assert b.selector(3.0, margin=0.0).current == "m0"


def test_load_onnx_needs_onnx_members(tmp_path: Path, fake_ort: list[_Session],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _bundle(tmp_path / "b", monkeypatch, onnx=False)
    with pytest.raises(BundleError) as err:
        O.load_onnx(tmp_path / "b")
    assert str(err.value) == (f"bundle {str(tmp_path / 'b')!r} has no ONNX file for members "
                              "['m0', 'm1']; write it with write_bundle(..., onnx=True)")
    assert fake_ort == []


def _refused(root: Path) -> str:
    return (f"bundle file {str(root)!r} is missing, truncated or modified (size or SHA-256 "
            "differs from the manifest)")


def test_load_onnx_checks_every_file(tmp_path: Path, fake_ort: list[_Session],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "b"
    _bundle(root, monkeypatch)
    f = root / "member-1.onnx"
    good = f.read_bytes()
    cases = {
        "truncated": lambda: f.write_bytes(good[:-1]),
        "longer": lambda: f.write_bytes(good + b"x"),
        "modified": lambda: f.write_bytes(good[:-1] + b"?"),
        "missing": lambda: f.unlink(),
        "folder": lambda: (f.unlink(), f.mkdir()),
    }
    for name, spoil in cases.items():
        spoil()
        with pytest.raises(BundleError) as err:
            O.load_onnx(root)
        assert str(err.value) == _refused(f), name
        if f.is_dir():
            f.rmdir()
        f.write_bytes(good)
    assert fake_ort == []  # nothing opened before every file is checked
    O.load_onnx(root)
    assert len(fake_ort) == 2


def test_load_onnx_refuses_a_symlink_even_with_the_right_bytes(
        tmp_path: Path, fake_ort: list[_Session], monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "b"
    _bundle(root, monkeypatch)
    f = root / "member-0.onnx"
    target = tmp_path / "elsewhere.onnx"
    target.write_bytes(f.read_bytes())
    f.unlink()
    f.symlink_to(target)
    with pytest.raises(BundleError) as err:
        O.load_onnx(root)
    assert str(err.value) == _refused(f)


def test_load_onnx_reads_the_file_bytes_it_checks(tmp_path: Path, fake_ort: list[_Session],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A right-sized file with the wrong digest is refused (the digest is of its bytes)."""
    root = tmp_path / "b"
    manifest = _bundle(root, monkeypatch)
    manifest["files"]["member-0.onnx"]["sha256"] = hashlib.sha256(b"other-----").hexdigest()
    with pytest.raises(BundleError, match="missing, truncated or modified"):
        O.load_onnx(root)
