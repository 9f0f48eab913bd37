"""``switchnas plugins``: list the installed hardware plugins and what they describe."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .registry import available_plugins, load_plugin

__all__ = ["main", "plugin_rows"]


def plugin_rows(construct: bool = True) -> list[dict[str, Any]]:
    """One row per installed plugin: ``name``, ``source``, ``target``, ``config`` and either
    ``describe`` (the constructed plugin's description) or ``error`` (why it could not be
    constructed, e.g. no CUDA device)."""
    rows = []
    for name, info in sorted(available_plugins().items()):
        row: dict[str, Any] = {"name": name, "source": info["source"],
                               "target": info["target"], "config": info["config"]}
        if info.get("distribution"):
            row["distribution"] = info["distribution"]
        if construct:
            try:
                row["describe"] = load_plugin(name).describe()
            except Exception as exc:  # noqa: BLE001 - every failure is reported, not raised
                row["error"] = f"{type(exc).__name__}: {exc}"
        rows.append(row)
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    head = ("name", "source", "target", "describe() / why not available")
    body = []
    for r in rows:
        if "describe" in r:
            last = ", ".join(f"{k}={v}" for k, v in r["describe"].items() if k != "plugin")
        else:
            last = "unavailable: " + r.get("error", "not constructed")
        body.append((r["name"], r["source"], str(r["target"]), last))
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(3)]
    lines = []
    for cells in [head, tuple("-" * w for w in widths) + ("-" * 30,), *body]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=False)) + "  " + cells[3])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the installed hardware plugins; return 0 (1 if none is installed)."""
    parser = argparse.ArgumentParser(
        prog="switchnas plugins",
        description="List installed hardware plugins (built-in configs and entry points of "
                    "the group switchnas.hardware) with each one's describe().")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--no-construct", action="store_true",
                        help="do not construct plugins (no describe())")
    args = parser.parse_args(argv)
    rows = plugin_rows(construct=not args.no_construct)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    else:
        print(_table(rows))
    return 0 if rows else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
