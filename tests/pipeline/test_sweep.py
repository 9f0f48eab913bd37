"""The sweep table: rows read from job folders, Markdown rendering."""

from __future__ import annotations

import json
from pathlib import Path

from switchnas.pipeline.sweep import format_sweep_table, sweep_rows


def _job(root: Path, name: str, overrides: list[str], members: list[tuple[float, float]] | None,
         shared: bool = False) -> None:
    job = root / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (job / "train").mkdir()
    man = {"seconds": 12.5, "summary": {}, **({"from_store": "/s/train/k"} if shared else {})}
    (job / "train" / "stage.json").write_text(json.dumps(man))
    if members is not None:
        (job / "family").mkdir()
        (job / "family" / "stage.json").write_text(json.dumps({"seconds": 1.0}))
        (job / "family" / "family.json").write_text(json.dumps({"metric": "top1", "members": [
            {"latency_ms": la, "accuracy": ac} for la, ac in members]}))


def test_rows_and_table(tmp_path: Path) -> None:
    _job(tmp_path, "0", ["hardware=cpu"], [(2.0, 80.0), (4.0, 90.5)])
    _job(tmp_path, "1", ["hardware=flops"], None, shared=True)
    _job(tmp_path, "10", ["hardware=lut"], [(1.0, 70.0)])
    (tmp_path / "not_a_job").mkdir()
    rows = sweep_rows(tmp_path)
    assert [r["job"] for r in rows] == ["0", "1", "10"]  # numeric order, non-jobs skipped
    assert rows[0]["members"] == 2 and rows[0]["best_accuracy"] == 90.5
    assert rows[0]["latency_min_ms"] == 2.0 and rows[0]["built_seconds"] == 13.5
    assert rows[1]["status"] == "no family" and rows[1]["shared"] == ["train"]
    assert rows[1]["built_seconds"] == 0.0  # copied from the store: this job spent nothing
    table = format_sweep_table(rows)
    assert "| 0 | hardware=cpu | ok | - | 2 | 2-4 | 90.50 | 13.5 | - |" in table
    assert "| 1 | hardware=flops | no family | - | - | - | - | 0.0 | train |" in table
    assert format_sweep_table([]) == "sweep: no job folders found"
    assert sweep_rows(tmp_path / "missing") == []
