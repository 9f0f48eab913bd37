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

from switchnas.runtime.files import atomic_write_json
from switchnas.supernets.space import ChoiceSpace

__all__ = ["allowed_choices", "allowed_choices_from_fronts", "read_space_file", "reduce_space",
           "write_space_file"]


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


def allowed_choices_from_fronts(space: ChoiceSpace,
                                fronts: Sequence[Sequence[Mapping[str, Any]]], *,
                                min_size: float = 1, per_position: bool = False,
                                keep: Sequence[str] = ()) -> tuple[dict[str, Any], int]:
    """Choices used by the first fronts whose reduced space holds at least ``min_size``
    configs.

    A front of one or two points (a noisy tiny run) spans a space too small to profile
    or search; the next fronts (the next non-dominated layers of the measured points) are
    added one at a time until the reduced space is large enough or the fronts run out.

    Args:
        fronts: configs grouped by front, best first (``fronts[0]``: the Pareto front).
        min_size: the smallest acceptable :meth:`ChoiceSpace.size` of the reduced space.
        per_position, keep: as for :func:`allowed_choices`.

    Returns:
        ``(allowed, n_fronts)``: the choices (for :meth:`ChoiceSpace.restrict`) and how many
        fronts they come from. When every front together stays below ``min_size``, all of
        them are used and the caller decides what to do with the small space.

    Raises:
        ValueError: ``fronts`` holds no config, or ``min_size`` is not a positive number.
    """
    if not (isinstance(min_size, (int, float)) and min_size >= 1):
        raise ValueError(f"reduce: min_size={min_size!r} must be a number >= 1")
    fronts = [list(f) for f in fronts if len(f)]
    if not fronts:
        raise ValueError("reduce: no configs to derive a reduced space from")
    used: list[Mapping[str, Any]] = []
    allowed: dict[str, Any] = {}
    for i, front in enumerate(fronts):
        used += front
        allowed = allowed_choices(space, used, per_position=per_position, keep=keep)
        if space.restrict(allowed).size() >= min_size:
            return allowed, i + 1
    return allowed, len(fronts)


def reduce_space(space: ChoiceSpace, configs: Sequence[Mapping[str, Any]], *,
                 per_position: bool = False, keep: Sequence[str] = ()) -> ChoiceSpace:
    """The sub-space of ``space`` that ``configs`` span (see :func:`allowed_choices`)."""
    return space.restrict(allowed_choices(space, configs, per_position=per_position,
                                          keep=keep))


def write_space_file(path: Path, space: ChoiceSpace, *, source: Mapping[str, Any] | None = None
                     ) -> Path:
    """Write ``{"space": ..., "source": ...}`` as JSON (atomically)."""
    payload = {"space": space.to_dict(), "source": dict(source or {})}
    return atomic_write_json(path, payload)


#: The largest space file read (a reduced space of any real super-network is a few KB).
MAX_SPACE_FILE_BYTES = 1 << 20


def read_space_file(path: str | Path) -> dict[str, Any]:
    """The space dict of a file written by :func:`write_space_file` (JSON or YAML).

    The content is checked, not just parsed: ``{"space": {"name": str, "dimensions":
    {name: {"choices": [[value, ...], ...], "scalar": bool}}}}`` with at least one
    dimension, every position with at least one choice, and choices that are numbers,
    strings or booleans.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        ValueError: the file is larger than :data:`MAX_SPACE_FILE_BYTES`, is not JSON or
            YAML, or is not a space file (the message says what is wrong).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"space file {str(p)!r} does not exist")
    if p.stat().st_size > MAX_SPACE_FILE_BYTES:
        raise ValueError(f"{str(p)!r} is larger than {MAX_SPACE_FILE_BYTES} bytes; "
                         "not a space file")
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{str(p)!r} cannot be read as text: {exc}") from exc
    try:
        data = json.loads(text)
    except RecursionError as exc:
        raise ValueError(f"{str(p)!r} is nested too deeply; not a space file") from exc
    except json.JSONDecodeError:
        import yaml

        try:
            data = yaml.safe_load(text)
        except (yaml.YAMLError, RecursionError) as exc:
            raise ValueError(f"{str(p)!r} is neither JSON nor YAML; not a space file") from exc
    problem = _space_problem(data)
    if problem:
        raise ValueError(f"{str(p)!r} is not a space file: {problem} (expected "
                         "{'space': {'name': ..., 'dimensions': {name: {'choices': "
                         "[[...], ...], 'scalar': bool}}}} as written by `switchnas reduce`)")
    return dict(data["space"])


def _space_problem(data: Any) -> str | None:
    """What is wrong with a loaded space file, or ``None``."""
    if not isinstance(data, dict) or not isinstance(data.get("space"), dict):
        return "no 'space' mapping at the top"
    space = data["space"]
    if not isinstance(space.get("name"), str):
        return "'space.name' must be a string"
    dims = space.get("dimensions")
    if not isinstance(dims, dict) or not dims:
        return "'space.dimensions' must be a non-empty mapping"
    for name, dim in dims.items():
        if not isinstance(name, str) or not isinstance(dim, dict):
            return f"dimension {name!r} must be a mapping with 'choices'"
        choices = dim.get("choices")
        if not isinstance(choices, list) or not choices:
            return f"dimension {name!r}: 'choices' must be a non-empty list of lists"
        for i, pos in enumerate(choices):
            if not isinstance(pos, list) or not pos or not all(
                    isinstance(v, (int, float, str)) for v in pos):
                return (f"dimension {name!r} position {i}: choices must be a non-empty list "
                        "of numbers or strings")
        if not isinstance(dim.get("scalar", False), bool):
            return f"dimension {name!r}: 'scalar' must be true or false"
        if dim.get("scalar") and len(choices) != 1:
            return f"dimension {name!r}: a scalar dimension has exactly one position"
    return None
