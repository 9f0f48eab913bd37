"""Small helpers the stages share."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import Artifact, atomic_write_text
from ..context import Context

__all__ = ["memo", "read_json", "say", "unique_sample", "workload", "write_json"]


def memo(ctx: Context, stage: str, fn: Callable[[], Artifact]) -> Artifact:
    """Run a stage at most once per process."""
    cache: dict[str, Artifact] = ctx.__dict__.setdefault("_stage_memo", {})
    if stage not in cache:
        cache[stage] = fn()
    return cache[stage]


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=_default) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def _default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def unique_sample(space: Any, n: int, rng: np.random.Generator, *,
                  extremes: bool = True) -> list[dict[str, Any]]:
    """``n`` distinct canonical configs (largest and smallest first when ``extremes``)."""
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    pool = [space.largest(), space.smallest()] if extremes else []
    tries = 0
    while len(out) < n and tries < 50 * n:
        cfg = pool.pop(0) if pool else space.sample(rng)
        tries += 1
        key = json.dumps(cfg, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(cfg)
    return out


def workload(net: Any, config: Mapping[str, Any]) -> tuple[Any, Any]:
    """What a hardware plugin times for ``config``: the supernet's own latency workload
    when it defines one (HAT: encoder + autoregressive decoder), else the extracted
    sub-network on an example input."""
    if hasattr(net, "latency_workload"):
        return net.latency_workload(config, batch=1)
    return net.extract(config).eval(), net.example_input(config, 1)


def say(text: str, *, level: int = logging.INFO) -> None:
    """Print ``text`` for the user and write it to the run's log file(s) too.

    The terminal gets the plain text (no timestamps); every file handler of the root
    logger (Hydra's ``<run dir>/cli.log``) gets one record per non-blank line, logged as
    logger ``switchnas``, so the log holds everything the terminal summary shows without
    the console handler printing it a second time.

    Args:
        text: one or more lines.
        level: the records' level (``logging.WARNING`` for a report with warnings).
    """
    print(text)
    files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    for line in text.splitlines():
        if not line.strip():
            continue
        record = logging.LogRecord("switchnas", level, __file__, 0, "%s", (line,), None)
        for h in files:
            if record.levelno >= h.level:
                h.handle(record)
