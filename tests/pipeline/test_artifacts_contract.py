"""The contract of stage artifacts: manifest fields, exact messages, the store's layout."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from switchnas.pipeline import artifacts as A
from switchnas.pipeline.artifacts import (
    MANIFEST,
    Artifact,
    ArtifactError,
    Artifacts,
    file_sha256,
    library_versions,
)

_HEAVY = ("torch", "sklearn", "ofa", "hydra", "safetensors")


@pytest.fixture(autouse=True)
def _light_libraries(monkeypatch: pytest.MonkeyPatch) -> None:
    """``library_versions`` imports torch & co.; stand-ins keep these tests fast (a module
    already imported by another test is left as it is)."""
    for name in _HEAVY:
        if name not in sys.modules:
            fake = types.ModuleType(name)
            fake.__version__ = f"{name}-stub"  # type: ignore[attr-defined]
            monkeypatch.setitem(sys.modules, name, fake)


def _h(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _write(tmp: Path) -> dict[str, int]:
    (tmp / "a.txt").write_text("a")
    (tmp / "d").mkdir()
    (tmp / "d" / "b.bin").write_bytes(b"\x00b")
    return {"n": 1}


class _Clock:
    """A stand-in for the ``time`` module: perf_counter from a list, fixed strftime."""

    def __init__(self, ticks: list[float]):
        self.ticks = list(ticks)
        self.formats: list[str] = []

    def perf_counter(self) -> float:
        return self.ticks.pop(0)

    def strftime(self, fmt: str) -> str:
        self.formats.append(fmt)
        return "STAMP"


def _make(path: Path, files: dict[str, Any], *, key: Any = "k", digest: Any = None,
          **extra: Any) -> Artifact:
    path.mkdir(parents=True, exist_ok=True)
    d = _h({"key": key, "files": files}) if digest is None else digest
    (path / MANIFEST).write_text(json.dumps({"key": key, "files": files, "digest": d,
                                             **extra}))
    return Artifact(path)


# -- helpers ----------------------------------------------------------------------------------
def test_file_sha256_reads_every_chunk(tmp_path: Path) -> None:
    data = bytes(range(256)) * ((3 << 20) // 256 + 7)  # over three 1 MiB chunks
    (tmp_path / "big").write_bytes(data)
    (tmp_path / "empty").write_bytes(b"")
    assert file_sha256(tmp_path / "big") == hashlib.sha256(data).hexdigest()
    assert file_sha256(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


def test_library_versions_skips_missing_and_marks_unversioned(monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    import platform

    import numpy as np
    import optuna

    fakes = {"torch": "2.0.1", "sklearn": None, "ofa": None, "hydra": 1.3, "safetensors": None}
    for name, version in fakes.items():
        mod = types.ModuleType(name)
        if version is not None:
            mod.__version__ = version  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setitem(sys.modules, "safetensors", None)  # importing it raises ImportError
    v = library_versions()
    assert v == {"python": platform.python_version(), "torch": "2.0.1",
                 "numpy": np.__version__, "sklearn": "?", "optuna": optuna.__version__,
                 "ofa": "?", "hydra": "1.3"}
    assert list(v) == ["python", "torch", "numpy", "sklearn", "optuna", "ofa", "hydra"]
    assert all(isinstance(x, str) for x in v.values())
    # a library that cannot be imported is skipped, the later ones are still listed
    monkeypatch.setitem(sys.modules, "hydra", None)
    st = types.ModuleType("safetensors")
    st.__version__ = "0.4.5"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "safetensors", st)
    v = library_versions()
    assert "hydra" not in v and v["safetensors"] == "0.4.5" and v["ofa"] == "?"


# -- Artifact ---------------------------------------------------------------------------------
def test_artifact_accessors(tmp_path: Path) -> None:
    art = _make(tmp_path / "s", {}, summary={"x": 1})
    assert art.path == tmp_path / "s"
    assert art / "f.txt" == tmp_path / "s" / "f.txt"
    assert art.digest == _h({"key": "k", "files": {}})
    assert art.reused is False
    s = art.summary()
    assert s == {"x": 1}
    s["y"] = 2
    assert art.summary() == {"x": 1}  # a copy
    art.manifest["_reused"] = 1
    assert art.reused is True
    bare = _make(tmp_path / "t", {})
    assert bare.summary() == {}
    bare.manifest["digest"] = 123
    assert bare.digest == "123"
    art.verify()


@pytest.mark.parametrize("manifest", [
    {"files": [], "key": "k"},
    {"files": None, "key": "k"},
    {"files": {}, "key": 3},
    {"files": {}},
    {"files": {"a": 1}, "key": "k"},
    {"key": "k"},
])
def test_verify_malformed_manifest(tmp_path: Path, manifest: dict[str, Any]) -> None:
    (tmp_path / MANIFEST).write_text(json.dumps(
        {**manifest, "digest": _h({"key": manifest.get("key"), "files": manifest.get("files")})}))
    art = Artifact(tmp_path)
    with pytest.raises(ArtifactError, match=f"^{re.escape(str(tmp_path / MANIFEST))}: "
                                            "malformed manifest$"):
        art.verify()


def test_verify_malformed_non_str_key_in_memory(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"1")
    art = _make(tmp_path, {"a.bin": file_sha256(tmp_path / "a.bin")})
    art.verify()
    files = {1: file_sha256(tmp_path / "a.bin")}
    art.manifest["files"] = files
    art.manifest["digest"] = _h({"key": "k", "files": files})
    with pytest.raises(ArtifactError, match="^.*stage.json: malformed manifest$"):
        art.verify()


def test_verify_non_str_digest_value_is_malformed(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"1")
    art = _make(tmp_path, {"a.bin": 123})
    with pytest.raises(ArtifactError, match="malformed manifest"):
        art.verify()


def test_verify_digest_mismatch(tmp_path: Path) -> None:
    art = _make(tmp_path, {}, digest="0" * 64)
    with pytest.raises(ArtifactError, match=f"^{re.escape(str(tmp_path / MANIFEST))}: digest "
                                            "does not match its files$"):
        art.verify()
    # the digest hashes the key too
    art2 = _make(tmp_path / "b", {}, key="k2", digest=_h({"key": "k", "files": {}}))
    with pytest.raises(ArtifactError, match="digest does not match"):
        art2.verify()


def test_verify_rejects_a_linked_folder(tmp_path: Path) -> None:
    _make(tmp_path / "real", {})
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    art = Artifact(tmp_path / "link")
    with pytest.raises(ArtifactError, match=f"^{re.escape(str(tmp_path / 'link'))}: is a "
                                            "symbolic link$"):
        art.verify()


def test_verify_rejects_links_inside(tmp_path: Path) -> None:
    art = _make(tmp_path / "s", {})
    (tmp_path / "s" / "sub").mkdir()
    (tmp_path / "s" / "sub" / "ln").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(ArtifactError, match=f"^{re.escape(str(tmp_path / 's' / 'sub' / 'ln'))}"
                                            ": symbolic link not listed in stage.json$"):
        art.verify()


def test_verify_names_the_first_extra_file(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    art = _make(tmp_path, {"a.txt": file_sha256(tmp_path / "a.txt")})
    art.verify()
    (tmp_path / "z").write_text("")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "c").write_text("")
    (tmp_path / "empty_dir").mkdir()  # an empty folder is not a file
    with pytest.raises(ArtifactError, match=f"^{re.escape(str(tmp_path / 'm' / 'c'))}: not "
                                            "listed in stage.json$"):
        art.verify()


def test_verify_missing_and_changed_files_in_sorted_order(tmp_path: Path) -> None:
    (tmp_path / "b").write_text("b")
    (tmp_path / "c").write_text("c")
    files = {"c": file_sha256(tmp_path / "c"), "b": _h("x"), "a": _h("y")}
    art = _make(tmp_path, files)
    with pytest.raises(ArtifactError, match=f"^{re.escape(str(tmp_path / 'a'))}: listed in "
                                            "stage.json but missing$"):
        art.verify()
    files = {"c": file_sha256(tmp_path / "c"), "b": _h("x")}
    art = _make(tmp_path, files)
    with pytest.raises(ArtifactError, match=f"^{re.escape(str(tmp_path / 'b'))}: SHA-256 "
                                            "differs from stage.json$"):
        art.verify()
    # a listed name that is a folder is missing as a file
    (tmp_path / "b").unlink()
    (tmp_path / "b").mkdir()
    with pytest.raises(ArtifactError, match="b: listed in stage.json but missing$"):
        art.verify()


# -- Artifacts --------------------------------------------------------------------------------
def test_artifacts_creates_folders(tmp_path: Path) -> None:
    arts = Artifacts(tmp_path / "x" / "run", store=tmp_path / "y" / "store")
    assert arts.run_dir == tmp_path / "x" / "run" and arts.run_dir.is_dir()
    assert arts.store == tmp_path / "y" / "store" and arts.store.is_dir()
    assert Artifacts(tmp_path / "r2").store is None


def test_store_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    store = tmp_path / "file" / "store"
    with pytest.raises(ValueError, match=f"^artifact store {re.escape(repr(str(store)))} cannot "
                                         "be created: .+") as err:
        Artifacts(tmp_path / "run", store=store)
    assert isinstance(err.value.__cause__, OSError)


def test_store_equal_to_run_dir(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with pytest.raises(ValueError, match=f"^artifact store {re.escape(repr(str(run)))} is the "
                                         "run directory; use a folder outside it$"):
        Artifacts(run, store=tmp_path / "." / "run")


def test_remove_stale_temporaries_only_matching_folders(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    arts = Artifacts(tmp_path)
    stale = [tmp_path / ".b.1", tmp_path / ".a_x.Z-9", tmp_path / ".c-d.e_f"]
    for d in stale:
        d.mkdir()
    (stale[0] / "f").write_text("")
    keep_dirs = [tmp_path / ".a", tmp_path / "a.b", tmp_path / ".a.b.c", tmp_path / ".a.",
                 tmp_path / "..b", tmp_path / ".a b.c"]
    for d in keep_dirs:
        d.mkdir()
    (tmp_path / ".file.x").write_text("")  # a file, not a build folder
    (tmp_path / ".link.x").symlink_to(tmp_path / "a.b", target_is_directory=True)
    with caplog.at_level(logging.INFO, logger="switchnas"):
        removed = arts.remove_stale_temporaries()
    assert removed == sorted(stale)
    assert not any(d.exists() for d in stale)
    assert all(d.is_dir() for d in keep_dirs)
    assert (tmp_path / ".file.x").is_file() and (tmp_path / ".link.x").is_symlink()
    assert [r.getMessage() for r in caplog.records] == [
        f"removed {d}, left by an interrupted run" for d in sorted(stale)]
    assert Artifacts(tmp_path / "empty").remove_stale_temporaries() == []


def test_produce_writes_the_documented_manifest(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    clock = _Clock([10.0, 12.3456789])
    monkeypatch.setattr(A, "time", clock)
    arts = Artifacts(tmp_path)
    with caplog.at_level(logging.INFO, logger="switchnas"):
        art = arts.produce("s", config={"a": 1}, inputs={"x": "d"}, build=_write)
    final = tmp_path / "s"
    assert art.path == final
    text = (final / MANIFEST).read_text()
    assert text.endswith("}\n") and text.startswith('{\n  "stage": "s",\n')
    m = json.loads(text)
    assert m == art.manifest
    key = _h({"stage": "s", "config": {"a": 1}, "inputs": {"x": "d"}})
    files = {"a.txt": hashlib.sha256(b"a").hexdigest(),
             "d/b.bin": hashlib.sha256(b"\x00b").hexdigest()}
    assert list(m) == ["stage", "key", "digest", "inputs", "config", "files", "versions",
                       "seconds", "created", "summary"]
    assert m["stage"] == "s" and m["key"] == key
    assert m["digest"] == _h({"key": key, "files": files}) == art.digest
    assert m["inputs"] == {"x": "d"} and m["config"] == {"a": 1}
    assert m["files"] == files
    assert m["versions"] == library_versions()
    assert m["seconds"] == 2.346 and isinstance(m["seconds"], float)
    assert m["created"] == "STAMP" and clock.formats == ["%Y-%m-%dT%H:%M:%S%z"]
    assert m["summary"] == {"n": 1}
    assert not art.reused and "_reused" not in m
    assert f"stage s: done in 2.3 s -> {final}" in [r.getMessage() for r in caplog.records]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_produce_seconds_is_a_float_below_half_a_second(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    monkeypatch.setattr(A, "time", _Clock([1.0, 1.01]))
    art = Artifacts(tmp_path).produce("s", config={}, inputs={}, build=lambda t: None)
    assert isinstance(art.manifest["seconds"], float) and art.manifest["seconds"] == 0.01
    assert art.manifest["summary"] == {} and art.manifest["files"] == {}


def test_produce_created_timestamp_format(tmp_path: Path) -> None:
    art = Artifacts(tmp_path).produce("s", config={}, inputs={}, build=_write)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}", art.manifest["created"])
    assert art.manifest["seconds"] >= 0


def test_produce_reuse_logs_and_marks_in_memory_only(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    arts = Artifacts(tmp_path)
    calls: list[int] = []

    def build(t: Path) -> dict[str, int]:
        calls.append(1)
        return _write(t)

    a = arts.produce("s", config={"a": 1}, inputs={"x": "d"}, build=build, dirname="folder")
    assert a.path == tmp_path / "folder" and not (tmp_path / "s").exists()
    with caplog.at_level(logging.INFO, logger="switchnas"):
        b = arts.produce("s", config={"a": 1}, inputs={"x": "d"}, build=build,
                         dirname="folder")
    assert calls == [1] and b.reused is True and b.manifest["_reused"] is True
    assert "_reused" not in json.loads((tmp_path / "folder" / MANIFEST).read_text())
    assert [r.getMessage() for r in caplog.records] == [
        f"stage s: inputs unchanged, reusing {tmp_path / 'folder'}"]
    # a changed key rebuilds quietly (no warning)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="switchnas"):
        c = arts.produce("s", config={"a": 2}, inputs={"x": "d"}, build=build,
                         dirname="folder")
    assert calls == [1, 1] and not c.reused and caplog.records == []
    # the inputs are part of the key
    arts.produce("s", config={"a": 2}, inputs={"x": "e"}, build=build, dirname="folder")
    assert len(calls) == 3
    # so is the stage name, even in the same folder
    arts.produce("t", config={"a": 2}, inputs={"x": "e"}, build=build, dirname="folder")
    assert len(calls) == 4


def test_produce_warns_on_a_damaged_folder(tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    arts = Artifacts(tmp_path)
    arts.produce("s", config={}, inputs={}, build=_write)
    (tmp_path / "s" / "a.txt").write_text("changed")
    with caplog.at_level(logging.WARNING, logger="switchnas"):
        art = arts.produce("s", config={}, inputs={}, build=_write)
    assert not art.reused
    assert [r.getMessage() for r in caplog.records] == [
        f"stage s: {tmp_path / 's' / 'a.txt'}: SHA-256 differs from stage.json; "
        "rebuilding the stage"]
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '"str"', "{bad"])
def test_produce_warns_on_an_unreadable_manifest(tmp_path: Path, text: str,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    arts = Artifacts(tmp_path)
    arts.produce("s", config={}, inputs={}, build=_write)
    (tmp_path / "s" / MANIFEST).write_text(text)
    with caplog.at_level(logging.WARNING, logger="switchnas"):
        art = arts.produce("s", config={}, inputs={}, build=_write)
    assert not art.reused and (tmp_path / "s" / "a.txt").read_text() == "a"
    (msg,) = [r.getMessage() for r in caplog.records]
    assert msg.startswith(f"stage s: unreadable {tmp_path / 's' / MANIFEST} (")
    assert msg.endswith("); rebuilding the stage") and "(None)" not in msg
    if text == "not json":
        assert msg == (f"stage s: unreadable {tmp_path / 's' / MANIFEST} (Expecting value: "
                       "line 1 column 1 (char 0)); rebuilding the stage")


@pytest.mark.parametrize("kind", ["file", "link", "dir"])
def test_produce_replaces_whatever_is_in_the_way(tmp_path: Path, kind: str) -> None:
    arts = Artifacts(tmp_path)
    final = tmp_path / "s"
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "keep").write_text("k")
    if kind == "file":
        final.write_text("x")
    elif kind == "link":
        final.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    else:
        final.mkdir()
        (final / "junk").write_text("j")
    art = arts.produce("s", config={}, inputs={}, build=_write)
    assert final.is_dir() and not final.is_symlink()
    assert sorted(p.name for p in final.iterdir()) == ["a.txt", "d", MANIFEST]
    assert (tmp_path / "elsewhere" / "keep").read_text() == "k"
    art.verify()


def test_interrupted_build_leaves_no_temporary(tmp_path: Path) -> None:
    arts = Artifacts(tmp_path)

    def build(t: Path) -> None:
        (t / "half").write_text("h")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        arts.produce("s", config={}, inputs={}, build=build)
    assert list(tmp_path.iterdir()) == []


def test_build_gets_a_temporary_folder_named_after_the_stage(tmp_path: Path) -> None:
    seen: list[Path] = []

    def build(t: Path) -> None:
        seen.append(t)
        assert list(t.iterdir()) == []

    Artifacts(tmp_path).produce("stage_x", config={}, inputs={}, build=build)
    assert seen[0].parent == tmp_path and seen[0].name.startswith(".stage_x.")
    assert A._TEMPORARY.match(seen[0].name)


# -- the store --------------------------------------------------------------------------------
def test_stored_lookup(tmp_path: Path) -> None:
    key = "a" * 64
    assert Artifacts(tmp_path / "r0").stored("s", key) is None
    arts = Artifacts(tmp_path / "run", store=tmp_path / "store")
    assert arts.stored("s", key) is None
    (tmp_path / "store" / "s" / key).mkdir(parents=True)
    assert arts.stored("s", key) is None  # no manifest
    (tmp_path / "store" / "s" / key / MANIFEST).write_text("{}")
    assert arts.stored("s", key) == tmp_path / "store" / "s" / key
    for bad in ["A" * 64, "a" * 63, "a" * 65, "g" * 64, "../" + "a" * 61]:
        (tmp_path / "store" / "s" / bad).mkdir(parents=True, exist_ok=True)
        (tmp_path / "store" / "s" / bad / MANIFEST).write_text("{}")
        assert arts.stored("s", bad) is None, bad


def test_store_round_trip(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = tmp_path / "store"
    calls: list[int] = []

    def build(t: Path) -> dict[str, int]:
        calls.append(1)
        return _write(t)

    a = Artifacts(tmp_path / "j0", store=store).produce("s", config={"a": 1},
                                                         inputs={"x": "d"}, build=build)
    key = _h({"stage": "s", "config": {"a": 1}, "inputs": {"x": "d"}})
    entry = store / "s" / key
    assert sorted(p.name for p in (store / "s").iterdir()) == [key]  # no temporary left
    stored = json.loads((entry / MANIFEST).read_text())
    assert stored == a.manifest
    assert "from_store" not in stored and "copied" not in stored
    with caplog.at_level(logging.INFO, logger="switchnas"):
        b = Artifacts(tmp_path / "j1", store=store).produce("s", config={"a": 1},
                                                             inputs={"x": "d"}, build=build)
    assert calls == [1] and b.reused is True
    assert b.path == tmp_path / "j1" / "s"
    m = json.loads((b.path / MANIFEST).read_text())
    assert m["from_store"] == str(entry)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}", m["copied"])
    assert "_reused" not in m
    assert {k: v for k, v in m.items() if k not in ("from_store", "copied")} == stored
    assert m["created"] == stored["created"]
    assert (entry / MANIFEST).read_text() == json.dumps(stored, indent=2) + "\n"
    assert (b.path / MANIFEST).read_text() == json.dumps(m, indent=2) + "\n"
    b.verify()
    assert f"stage s: inputs unchanged, copied from the artifact store {entry}" in [
        r.getMessage() for r in caplog.records]
    assert sorted(p.name for p in (tmp_path / "j1").iterdir()) == ["s"]
    # a copy is reused from its own folder afterwards, and the store is left alone
    c = Artifacts(tmp_path / "j1", store=store).produce("s", config={"a": 1},
                                                         inputs={"x": "d"}, build=build)
    assert c.reused and calls == [1] and json.loads((entry / MANIFEST).read_text()) == stored
    # storing a copied run again keeps the store's manifest free of the copy's fields
    (tmp_path / "j1" / "s" / "a.txt").write_text("changed")
    Artifacts(tmp_path / "j1", store=store).produce("s", config={"a": 1},
                                                    inputs={"x": "d"}, build=build)
    assert calls == [1]  # the damaged folder was replaced from the store


def test_store_replaces_whatever_is_in_the_way(tmp_path: Path) -> None:
    store = tmp_path / "store"
    Artifacts(tmp_path / "j0", store=store).produce("s", config={}, inputs={}, build=_write)
    for kind in ("file", "link", "dir"):
        run = tmp_path / f"j_{kind}"
        run.mkdir()
        final = run / "s"
        if kind == "file":
            final.write_text("x")
        elif kind == "link":
            final.symlink_to(tmp_path / "j0", target_is_directory=True)
        else:
            final.mkdir()
            (final / MANIFEST).write_text("junk")
            (final / "junk").write_text("j")

        def boom(t: Path) -> None:
            raise AssertionError("must come from the store")

        art = Artifacts(run, store=store).produce("s", config={}, inputs={}, build=boom)
        assert art.reused and final.is_dir() and not final.is_symlink()
        assert sorted(p.name for p in final.iterdir()) == ["a.txt", "d", MANIFEST]
        assert (tmp_path / "j0" / "s" / "a.txt").read_text() == "a"


def test_store_entry_with_another_key_is_not_used(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    store = tmp_path / "store"
    Artifacts(tmp_path / "j0", store=store).produce("s", config={}, inputs={}, build=_write)
    key = _h({"stage": "s", "config": {}, "inputs": {}})
    entry = store / "s" / key
    m = json.loads((entry / MANIFEST).read_text())
    m["key"] = "b" * 64
    m["digest"] = _h({"key": m["key"], "files": m["files"]})
    (entry / MANIFEST).write_text(json.dumps(m))
    calls: list[int] = []
    with caplog.at_level(logging.WARNING, logger="switchnas"):
        art = Artifacts(tmp_path / "j1", store=store).produce(
            "s", config={}, inputs={}, build=lambda t: calls.append(1) or _write(t))
    assert calls == [1] and not art.reused
    assert [r.getMessage() for r in caplog.records] == [
        f"stage s: store entry {entry} is damaged ({entry / MANIFEST}: key does not match its "
        "folder name); rebuilding the stage"]


def test_unreadable_store_entry_is_rebuilt(tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    store = tmp_path / "store"
    Artifacts(tmp_path / "j0", store=store).produce("s", config={}, inputs={}, build=_write)
    entry = store / "s" / _h({"stage": "s", "config": {}, "inputs": {}})
    (entry / MANIFEST).write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="switchnas"):
        art = Artifacts(tmp_path / "j1", store=store).produce("s", config={}, inputs={},
                                                              build=_write)
    assert not art.reused
    assert any(r.getMessage().startswith(f"stage s: store entry {entry} is damaged (")
               for r in caplog.records)
    # a damaged entry is not replaced (someone may be looking at it)
    assert (entry / MANIFEST).read_text() == "{not json"


def test_store_that_cannot_take_the_stage(tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    store = tmp_path / "store"
    arts = Artifacts(tmp_path / "run", store=store)
    (store / "s").write_text("a file where the stage's folder goes")
    with caplog.at_level(logging.WARNING, logger="switchnas"):
        art = arts.produce("s", config={}, inputs={}, build=_write)
    assert art.path == tmp_path / "run" / "s" and not art.reused
    (msg,) = [r.getMessage() for r in caplog.records]
    assert msg.startswith("stage s: not kept in the artifact store (") and msg.endswith(")")
    assert "File exists" in msg and str(store / "s") in msg


def test_store_temporary_is_named_after_the_key(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "store"
    made: list[tuple[Any, Any]] = []
    real = A.tempfile.mkdtemp

    def spy(*, dir: Any, prefix: str) -> str:  # noqa: A002 - tempfile's own name
        made.append((Path(dir), prefix))
        return real(dir=dir, prefix=prefix)

    monkeypatch.setattr(A.tempfile, "mkdtemp", spy)
    Artifacts(tmp_path / "run", store=store).produce("s", config={}, inputs={}, build=_write)
    key = _h({"stage": "s", "config": {}, "inputs": {}})
    assert made == [(tmp_path / "run", ".s."), (store / "s", f".{key[:12]}.")]


def test_store_write_failure_removes_its_temporary(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    store = tmp_path / "store"

    def fail(*a: Any, **k: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(A.os, "rename", fail)
    with caplog.at_level(logging.WARNING, logger="switchnas"):
        Artifacts(tmp_path / "run", store=store).produce("s", config={}, inputs={},
                                                         build=_write)
    assert list((store / "s").iterdir()) == []
    assert [r.getMessage() for r in caplog.records] == [
        "stage s: not kept in the artifact store (disk full)"]


def test_store_race_lost_is_quiet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  caplog: pytest.LogCaptureFixture) -> None:
    """Another job stored the same key meanwhile: the rename fails, nothing is logged."""
    store = tmp_path / "store"
    real_rename = A.os.rename

    def other_job_first(src: Any, dst: Any) -> None:
        Path(dst).mkdir()
        (Path(dst) / MANIFEST).write_text("{}")
        real_rename(src, dst)

    monkeypatch.setattr(A.os, "rename", other_job_first)
    with caplog.at_level(logging.WARNING, logger="switchnas"):
        Artifacts(tmp_path / "run", store=store).produce("s", config={}, inputs={},
                                                         build=_write)
    assert caplog.records == []
    key = _h({"stage": "s", "config": {}, "inputs": {}})
    assert sorted(p.name for p in (store / "s").iterdir()) == [key]


def test_store_folders_are_made_as_needed(tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    store = tmp_path / "store"
    arts = Artifacts(tmp_path / "run", store=store)
    store.rmdir()  # removed after the run started (a cleaned cache)
    with caplog.at_level(logging.WARNING, logger="switchnas"):
        a = arts.produce("s", config={"a": 1}, inputs={}, build=_write)
        b = arts.produce("s", config={"a": 2}, inputs={}, build=_write)
    assert caplog.records == []
    assert sorted(p.name for p in (store / "s").iterdir()) == sorted(
        [a.manifest["key"], b.manifest["key"]])


def test_a_failed_copy_from_the_store_leaves_nothing(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "store"
    Artifacts(tmp_path / "j0", store=store).produce("s", config={}, inputs={}, build=_write)
    arts = Artifacts(tmp_path / "j1", store=store)

    def broken(*a: Any, **k: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(A.shutil, "copytree", broken)
    with pytest.raises(KeyboardInterrupt):
        arts.produce("s", config={}, inputs={}, build=_write)
    assert list((tmp_path / "j1").iterdir()) == []


def test_non_json_config_values_are_hashed_as_text(tmp_path: Path) -> None:
    """A config may hold paths (Hydra's resolved paths): they are keyed and stored as str."""
    store = tmp_path / "store"
    cfg = {"data": Path("/d/x"), "n": 1}
    a = Artifacts(tmp_path / "j0", store=store).produce("s", config=cfg, inputs={},
                                                         build=_write)
    key = _h({"stage": "s", "config": {"data": "/d/x", "n": 1}, "inputs": {}})
    assert a.manifest["key"] == key and a.manifest["config"] == {"data": "/d/x", "n": 1}
    b = Artifacts(tmp_path / "j1", store=store).produce("s", config=cfg, inputs={},
                                                         build=_write)
    assert b.reused and b.manifest["key"] == key


def test_copy_from_the_store_is_built_beside_the_stage(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "store"
    Artifacts(tmp_path / "j0", store=store).produce("s", config={}, inputs={}, build=_write)
    made: list[tuple[Any, Any]] = []
    real = A.tempfile.mkdtemp

    def spy(*, dir: Any, prefix: str) -> str:  # noqa: A002 - tempfile's own name
        made.append((Path(dir), prefix))
        return real(dir=dir, prefix=prefix)

    monkeypatch.setattr(A.tempfile, "mkdtemp", spy)
    art = Artifacts(tmp_path / "j1", store=store).produce("stage_s", config={}, inputs={},
                                                          build=_write)
    assert not art.reused  # another stage name: another key
    made.clear()
    art = Artifacts(tmp_path / "j2", store=store).produce("s", config={}, inputs={},
                                                          build=_write)
    assert art.reused and made == [(tmp_path / "j2", ".s.")]


@pytest.fixture
def undeletable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Folders cannot be removed (a busy NFS mount, a file held open elsewhere)."""
    def refuse(*a: Any, **k: Any) -> None:
        raise OSError("Device or resource busy")

    monkeypatch.setattr(A.shutil.os, "rmdir", refuse)


def test_a_stale_temporary_that_cannot_be_removed_does_not_stop_the_run(
        tmp_path: Path, undeletable: None) -> None:
    (tmp_path / ".s.abc").mkdir()
    assert Artifacts(tmp_path).remove_stale_temporaries() == [tmp_path / ".s.abc"]


def test_the_build_error_is_raised_even_if_cleanup_fails(tmp_path: Path,
                                                         undeletable: None) -> None:
    def broken(t: Path) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="^boom$"):
        Artifacts(tmp_path).produce("s", config={}, inputs={}, build=broken)


def test_store_failures_with_a_failing_cleanup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    store = tmp_path / "store"
    Artifacts(tmp_path / "j0", store=store).produce("s", config={}, inputs={}, build=_write)

    def refuse(*a: Any, **k: Any) -> None:
        raise OSError("Device or resource busy")

    def interrupted(*a: Any, **k: Any) -> None:
        raise KeyboardInterrupt

    real_copytree = A.shutil.copytree
    monkeypatch.setattr(A.shutil.os, "rmdir", refuse)
    monkeypatch.setattr(A.shutil, "copytree", interrupted)
    with pytest.raises(KeyboardInterrupt):  # copying from the store was interrupted
        Artifacts(tmp_path / "j1", store=store).produce("s", config={}, inputs={},
                                                        build=_write)
    monkeypatch.setattr(A.shutil, "copytree", real_copytree)

    def full(*a: Any, **k: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(A.os, "rename", full)
    with caplog.at_level(logging.WARNING, logger="switchnas"):
        art = Artifacts(tmp_path / "j2", store=store).produce("t", config={}, inputs={},
                                                              build=_write)
    assert art.path == tmp_path / "j2" / "t"
    assert [r.getMessage() for r in caplog.records] == [
        "stage t: not kept in the artifact store (disk full)"]


@pytest.mark.parametrize("where", ["top", "nested"])
def test_a_build_that_writes_a_symbolic_link_is_refused(tmp_path: Path, where: str) -> None:
    """verify() refuses links, so a stage holding one could never be reused: produce says
    so at once, names the link, and keeps nothing (no stage folder, no temporary)."""
    (tmp_path / "target.txt").write_text("t")
    run = tmp_path / "run"

    def build(d: Path) -> None:
        (d / "a.txt").write_text("a")
        folder = d / "sub" if where == "nested" else d
        folder.mkdir(exist_ok=True)
        (folder / "ln").symlink_to(tmp_path / "target.txt")

    name = "sub/ln" if where == "nested" else "ln"
    with pytest.raises(ArtifactError, match=re.escape(f"stage s: the build wrote symbolic "
                                                      f"link(s) ['{name}']")):
        Artifacts(run, store=tmp_path / "store").produce("s", config={}, inputs={}, build=build)
    assert sorted(p.name for p in run.iterdir()) == []
    assert list((tmp_path / "store").iterdir()) == []
