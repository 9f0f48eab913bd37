"""Helpers every benchmark script shares: the machine's description and result files.

Each benchmark prints a Markdown table, then writes ``results/<name>.json`` and
``results/<name>.md`` (both stating the machine) next to this file, atomically.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from switchnas.runtime.files import atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, Python and key library versions, date."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        mem_gib = round(pages / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    versions: dict[str, str] = {}
    for mod in ("torch", "numpy", "sklearn", "optuna", "onnxruntime"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - optional libraries
            continue
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "versions": versions,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def markdown_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    if not rows:
        return "(no rows)\n"
    cols = columns or list(rows[0])

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(out) + "\n"


def save_results(name: str, data: dict[str, Any], markdown: str,
                 out_dir: Path | None = None) -> tuple[Path, Path]:
    """Write ``<name>.json`` (``data`` plus the machine) and ``<name>.md``."""
    out = out_dir or RESULTS
    m = machine()
    payload = {"benchmark": name, "machine": m, **data}
    jpath, mpath = out / f"{name}.json", out / f"{name}.md"
    atomic_write_text(jpath, json.dumps(payload, indent=2, default=str) + "\n")
    header = (f"# {name}\n\nMachine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, "
              f"Python {m['python']}, {m['versions']} ({m['date']})\n\n")
    atomic_write_text(mpath, header + markdown)
    return jpath, mpath
