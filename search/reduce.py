"""Reduced design spaces (Dynamic-HAT): keep, per dimension, the choices that the
validated Pareto families of a hardware target actually use.

Works for any :class:`~switchnas.supernets.space.ChoiceSpace` through ``restrict``. The
result is written as a space file (JSON or YAML: ``{"space": space.to_dict()}``) that
``supernet.space_file=`` gives to the trainer (fine-tuning) and to the search.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from switchnas.supernets.space import ChoiceSpace

__all__ = ["allowed_choices", "read_space_file", "reduce_space", "write_space_file"]


def allowed_choices(space: ChoiceSpace, configs: Sequence[Mapping[str, Any]], *,
                    per_position: bool = False, keep: Sequence[str] = ()
                    ) -> dict[str, Any]:
    """Choices used by ``configs``, per dimension.

    Args:
        per_position: keep a separate set for each position (layer/block) instead of
            one set shared by every position of a dimension.
        keep: dimensions left as they are (e.g. ``["r"]``).
    """
    if not configs:
        raise ValueError("reduce: no configs to derive a reduced space from")
    out: dict[str, Any] = {}
    for name, choices in space.dimensions.items():
        if name in keep:
            continue
        scalar = space.dimension(name).scalar
        cols = [[c[name]] if scalar else list(c[name]) for c in configs]
        if per_position:
            out[name] = [sorted({row[i] for row in cols}) for i in range(len(choices))]
        else:
            used = sorted({v for row in cols for v in row})
            # a position whose choices miss every used value keeps its own choices
            out[name] = [[v for v in used if v in ch] or list(ch) for ch in choices]
    return out


def reduce_space(space: ChoiceSpace, configs: Sequence[Mapping[str, Any]], *,
                 per_position: bool = False, keep: Sequence[str] = ()) -> ChoiceSpace:
    """The sub-space of ``space`` that ``configs`` span (see :func:`allowed_choices`)."""
    return space.restrict(allowed_choices(space, configs, per_position=per_position,
                                          keep=keep))


def write_space_file(path: Path, space: ChoiceSpace, *, source: Mapping[str, Any] | None = None
                     ) -> Path:
    """Write ``{"space": ..., "source": ...}`` as JSON (atomically)."""
    import os
    import tempfile

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {"space": space.to_dict(), "source": dict(source or {})}
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, target)
    return target


def read_space_file(path: str | Path) -> dict[str, Any]:
    """The space dict of a file written by :func:`write_space_file` (JSON or YAML)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"space file {str(p)!r} does not exist")
    text = p.read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        import yaml

        data = yaml.safe_load(text)
    if not isinstance(data, dict) or not isinstance(data.get("space"), dict) or \
            "dimensions" not in data["space"]:
        raise ValueError(f"{str(p)!r} is not a space file (expected a 'space' mapping with "
                         "'dimensions')")
    return dict(data["space"])
