"""The table that ends a Hydra sweep (``switchnas run -m ...``): one row per job.

:func:`sweep_rows` reads the jobs' run directories under a sweep directory (each job's
overrides from ``.hydra/overrides.yaml``, its family, its stages' times and which stages
it reused); :func:`format_sweep_table` renders them as Markdown. :class:`SweepTable` is
the Hydra callback that writes ``sweep.md`` and ``sweep.json`` into the sweep directory
and prints the table when the sweep ends (registered in ``conf/config.yaml``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from .artifacts import atomic_write_text

__all__ = ["SweepTable", "format_sweep_table", "sweep_rows"]

#: Stages whose manifests a job's row reads, in pipeline order.
_STAGES = ("train", "profile", "evaluate", "fit", "search", "validate", "family", "explore")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _overrides(job: Path) -> list[str]:
    import yaml

    try:
        data = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return []
    return [str(x) for x in data] if isinstance(data, list) else []


def _job_row(job: Path) -> dict[str, Any]:
    row: dict[str, Any] = {"job": job.name, "overrides": _overrides(job), "status": "ok"}
    stages: dict[str, dict[str, Any]] = {}
    for stage in _STAGES:
        man = _read_json(job / stage / "stage.json")
        if isinstance(man, dict):
            stages[stage] = {"seconds": float(man.get("seconds", 0.0)),
                             "summary": man.get("summary") or {},
                             "shared": bool(man.get("from_store"))}
    row["stages"] = sorted(stages)
    # what this job spent: the stages it built itself, not those copied from the store
    row["shared"] = sorted(k for k, s in stages.items() if s["shared"])
    row["built_seconds"] = round(sum(s["seconds"] for s in stages.values()
                                     if not s["shared"]), 1)
    fam = _read_json(job / "family" / "family.json")
    members = fam.get("members", []) if isinstance(fam, dict) else []
    if members:
        lat = [float(m["latency_ms"]) for m in members]
        acc = [float(m["accuracy"]) for m in members]
        row.update(members=len(members), latency_min_ms=min(lat), latency_max_ms=max(lat),
                   best_accuracy=max(acc), metric=fam.get("metric", "accuracy"))
    else:
        row["status"] = "no family"
    ev = stages.get("explore", {}).get("summary", {})
    if ev:  # real evaluations in the job's study (the loop's budget)
        row["evaluations"] = ev.get("measured")
    val = stages.get("validate", {}).get("summary", {})
    if val:
        row.setdefault("evaluations", val.get("measured"))
    return row


def sweep_rows(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """One row per job folder of ``sweep_dir`` (a folder holding ``.hydra/``), in job order.

    Returns:
        Rows with ``job``, ``overrides``, ``status`` (``ok`` or ``no family``), ``stages``,
        ``shared`` (stages copied from the artifact store), ``built_seconds`` (the time of
        the stages the job built itself) and, where the job got that far, ``members``,
        ``latency_min_ms``, ``latency_max_ms``, ``best_accuracy``, ``metric``,
        ``evaluations`` (sub-networks measured for real by ``explore`` or ``validate``).
    """
    root = Path(sweep_dir)
    jobs = [p for p in root.iterdir() if p.is_dir() and (p / ".hydra").is_dir()] \
        if root.is_dir() else []

    def order(p: Path) -> tuple[int, str]:
        return (int(p.name), "") if p.name.isdigit() else (1 << 30, p.name)

    return [_job_row(p) for p in sorted(jobs, key=order)]


def _cell(v: Any, fmt: str = "") -> str:
    if v is None:
        return "-"
    return format(v, fmt) if fmt else str(v)


def format_sweep_table(rows: list[dict[str, Any]]) -> str:
    """The rows of :func:`sweep_rows` as a Markdown table (one line per job)."""
    if not rows:
        return "sweep: no job folders found"
    lines = ["| job | overrides | status | evaluations | members | latency ms | best score "
             "| seconds | shared stages |", "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lat = (f"{r['latency_min_ms']:.3g}-{r['latency_max_ms']:.3g}"
               if "latency_min_ms" in r else "-")
        lines.append(f"| {r['job']} | {' '.join(r['overrides']) or '(none)'} | {r['status']} "
                     f"| {_cell(r.get('evaluations'))} | {_cell(r.get('members'))} | {lat} "
                     f"| {_cell(r.get('best_accuracy'), '.2f')} "
                     f"| {_cell(r.get('built_seconds'), '.1f')} "
                     f"| {', '.join(r.get('shared', [])) or '-'} |")
    return "\n".join(lines)


class SweepTable(Callback):
    """Hydra callback: at the end of a multirun, write ``sweep.json`` and ``sweep.md`` into
    the sweep directory and print the table."""

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        rows = sweep_rows(sweep_dir)
        table = format_sweep_table(rows)
        atomic_write_text(sweep_dir / "sweep.json", json.dumps({"jobs": rows}, indent=2) + "\n")
        atomic_write_text(sweep_dir / "sweep.md", f"# sweep {sweep_dir}\n\n{table}\n")
        print(f"\nsweep ({len(rows)} jobs, {sweep_dir}):\n{table}\n\ntable: "
              f"{sweep_dir / 'sweep.md'}")
