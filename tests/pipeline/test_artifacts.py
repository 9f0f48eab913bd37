"""Stage artifacts: reuse when unchanged, rebuild when changed, nothing half-written."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from switchnas.pipeline.artifacts import Artifact, Artifacts


def test_reuse_and_rebuild(tmp_path: Path) -> None:
    arts = Artifacts(tmp_path)
    calls = []

    def build(tmp: Path) -> dict[str, int]:
        calls.append(1)
        (tmp / "out.txt").write_text("x")
        return {"n": len(calls)}

    a = arts.produce("s", config={"a": 1}, inputs={}, build=build)
    b = arts.produce("s", config={"a": 1}, inputs={}, build=build)
    assert len(calls) == 1 and b.reused and a.digest == b.digest
    c = arts.produce("s", config={"a": 2}, inputs={}, build=build)
    assert len(calls) == 2 and not c.reused and c.digest != a.digest
    d = arts.produce("s", config={"a": 2}, inputs={"up": "changed"}, build=build)
    assert len(calls) == 3 and d.summary() == {"n": 3}
    assert set(d.manifest["files"]) == {"out.txt"} and "versions" in d.manifest


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    arts = Artifacts(tmp_path)
    arts.produce("s", config={"a": 1}, inputs={}, build=lambda t: (t / "f").write_text("ok") and None)

    def broken(tmp: Path) -> None:
        (tmp / "f").write_text("half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        arts.produce("s", config={"a": 2}, inputs={}, build=broken)
    assert (tmp_path / "s" / "f").read_text() == "ok"  # the previous artifact is intact
    assert [p.name for p in tmp_path.iterdir()] == ["s"]  # no temporary folder left


def _finished(tmp_path: Path) -> tuple[Artifacts, list[int], Callable[[], Artifact]]:
    arts = Artifacts(tmp_path)
    calls: list[int] = []

    def build(tmp: Path) -> None:
        calls.append(1)
        (tmp / "latency.json").write_text('{"rows": [1, 2, 3]}')
        (tmp / "sub").mkdir()
        (tmp / "sub" / "model.bin").write_bytes(b"\0\1\2")

    def produce() -> Artifact:
        return arts.produce("profile", config={"n": 3}, inputs={}, build=build)

    produce()
    assert len(calls) == 1 and produce().reused and len(calls) == 1
    return arts, calls, produce


@pytest.mark.parametrize(("tamper", "named"), [
    (lambda d: (d / "latency.json").write_text('{"rows": [1, 2, 4]}'), "latency.json: SHA-256"),
    (lambda d: (d / "sub" / "model.bin").unlink(), "model.bin: listed in stage.json but missing"),
    (lambda d: (d / "predictors.pkl").write_bytes(b"\x80\x04."), "predictors.pkl: not listed"),
    (lambda d: (d / "sub" / "extra").mkdir() or (d / "sub" / "extra" / "x").write_text(""),
     "x: not listed"),
    (lambda d: (d / "latency.json").unlink() or (d / "latency.json").symlink_to("/etc/hostname"),
     "latency.json: symbolic link"),
    (lambda d: (d / "stage.json").write_text(
        (d / "stage.json").read_text().replace('"digest": "', '"digest": "0')),
     "digest does not match"),
    (lambda d: (d / "stage.json").write_text("[]"), "unreadable"),
])
def test_tampered_artifact_is_rebuilt_with_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, tamper: Callable[[Path], object],
        named: str) -> None:
    arts, calls, produce = _finished(tmp_path)
    before = (tmp_path / "profile" / "stage.json").read_text()
    tamper(tmp_path / "profile")
    with caplog.at_level(logging.WARNING, logger="switchnas"):
        art = produce()
    assert len(calls) == 2 and not art.reused
    assert any(named in r.getMessage() and "rebuilding" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]
    assert json.loads((tmp_path / "profile" / "latency.json").read_text()) == {"rows": [1, 2, 3]}
    assert not (tmp_path / "profile" / "predictors.pkl").exists()
    assert json.loads(before)["digest"] == art.digest  # the same inputs give the same artifact
    art.verify()
    assert produce().reused and len(calls) == 2


def test_stale_temporaries_are_removed(tmp_path: Path) -> None:
    arts, _, produce = _finished(tmp_path)
    stale = [tmp_path / ".train.k2j4_x9a", tmp_path / ".export.abc12345"]
    for d in stale:
        (d / "deep").mkdir(parents=True)
        (d / "deep" / "half.safetensors").write_bytes(b"half")
    keep = [tmp_path / ".hydra", tmp_path / ".lock", tmp_path / "notes.txt"]
    keep[0].mkdir()
    keep[1].write_text("")
    keep[2].write_text("mine")
    assert sorted(arts.remove_stale_temporaries()) == sorted(stale)
    assert not any(d.exists() for d in stale) and all(p.exists() for p in keep)
    assert produce().reused


def test_store_shares_artifacts_between_run_directories(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = tmp_path / "store"
    calls: list[str] = []

    def build(tmp: Path) -> dict[str, int]:
        calls.append("built")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "w.bin").write_bytes(b"weights")
        return {"n": len(calls)}

    a = Artifacts(tmp_path / "job0", store=store).produce("train", config={"a": 1}, inputs={},
                                                           build=build)
    entry = store / "train" / a.manifest["key"]
    assert (entry / "sub" / "w.bin").read_bytes() == b"weights"
    b = Artifacts(tmp_path / "job1", store=store).produce("train", config={"a": 1}, inputs={},
                                                           build=build)
    assert calls == ["built"] and b.reused and b.digest == a.digest
    assert (tmp_path / "job1" / "train" / "sub" / "w.bin").read_bytes() == b"weights"
    Artifact(tmp_path / "job1" / "train").verify()
    # another key is built, not taken from the store
    Artifacts(tmp_path / "job2", store=store).produce("train", config={"a": 2}, inputs={},
                                                       build=build)
    assert calls == ["built", "built"]
    # a damaged store entry is never copied: the stage is rebuilt, with a warning
    (entry / "sub" / "w.bin").write_bytes(b"tampered")
    with caplog.at_level(logging.WARNING, logger="switchnas"):
        c = Artifacts(tmp_path / "job3", store=store).produce("train", config={"a": 1},
                                                               inputs={}, build=build)
    assert calls == ["built"] * 3 and not c.reused
    assert "damaged" in caplog.text and "w.bin" in caplog.text
    assert (tmp_path / "job3" / "train" / "sub" / "w.bin").read_bytes() == b"weights"
    # without a store nothing is shared
    Artifacts(tmp_path / "job4").produce("train", config={"a": 1}, inputs={}, build=build)
    assert len(calls) == 4
    with pytest.raises(ValueError, match="is the run directory"):
        Artifacts(tmp_path / "job5", store=tmp_path / "job5")


def test_key_does_not_depend_on_config_key_order(tmp_path: Path) -> None:
    """The stage key hashes the config canonically: the same config written in another key
    order (as Hydra or a reloaded JSON may give it) reuses the artifact."""
    arts = Artifacts(tmp_path)
    calls: list[int] = []

    def build(tmp: Path) -> None:
        calls.append(1)
        (tmp / "b.txt").write_text("b")
        (tmp / "a.txt").write_text("a")

    a = arts.produce("s", config={"x": 1, "y": {"p": 1, "q": 2}}, inputs={"u": "1", "v": "2"},
                     build=build)
    b = arts.produce("s", config={"y": {"q": 2, "p": 1}, "x": 1}, inputs={"v": "2", "u": "1"},
                     build=build)
    assert len(calls) == 1 and b.reused and a.manifest["key"] == b.manifest["key"]


def test_manifest_records_library_versions() -> None:
    """``library_versions`` names python and the importable libraries with their versions."""
    import platform

    import numpy as np

    from switchnas.pipeline.artifacts import library_versions

    v = library_versions()
    assert v["python"] == platform.python_version()
    assert v["numpy"] == np.__version__
    assert v["torch"] == str(__import__("torch").__version__)


def test_removed_temporaries_are_logged(tmp_path: Path,
                                        caplog: pytest.LogCaptureFixture) -> None:
    """Each removed build folder is named in an info line saying why it was removed."""
    arts = Artifacts(tmp_path)
    (tmp_path / ".s.abc123").mkdir()
    with caplog.at_level(logging.INFO, logger="switchnas"):
        assert arts.remove_stale_temporaries() == [tmp_path / ".s.abc123"]
    msgs = [r.getMessage() for r in caplog.records]
    assert f"removed {tmp_path / '.s.abc123'}, left by an interrupted run" in msgs
