"""Stage artifacts: reuse when unchanged, rebuild when changed, nothing half-written."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchnas.pipeline.artifacts import Artifacts


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
