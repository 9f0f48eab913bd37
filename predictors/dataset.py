"""Datasets of latency measurements, keyed by the hardware plugin's ``describe()``.

A :class:`MeasurementDataset` holds one row per measured sub-network: its config and the
latency summary (``median_ms``, ``p10_ms``, ``p90_ms``, ``samples_ms``, optional
``energy_mj``). The ``key`` is the plugin description the numbers came from; datasets
with different keys never merge, so numbers from different machines, thread counts or
library versions never end up in one fit.

``meta`` records how the rows were measured: the protocol, the reference's drift, the
repeatability (noise floor), the machine's conditions and the counted warnings of the batch
(:meth:`MeasurementDataset.from_batch`). Files written before ``meta`` existed still load.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..plugins.base import describe_key
from ..runtime.files import atomic_write_json

if TYPE_CHECKING:  # supernets.base imports torch; a dataset does not need it
    from ..plugins.batch import BatchResult
    from ..supernets.base import SearchSpace

__all__ = ["MeasurementDataset", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_REQUIRED = ("config", "median_ms", "p10_ms", "p90_ms", "samples_ms")


class MeasurementDataset:
    """Measured latencies of sub-networks on one hardware target.

    Args:
        key: the plugin's ``describe()`` (JSON-able dict) the rows were measured with.
        rows: dicts with at least ``config``, ``median_ms``, ``p10_ms``, ``p90_ms`` and
            ``samples_ms``; other entries (``energy_mj``, ``meta``) are kept.
        meta: how the rows were measured (JSON-able; see :meth:`from_batch`).
    """

    def __init__(self, key: Mapping[str, Any], rows: Sequence[Mapping[str, Any]] | None = None,
                 meta: Mapping[str, Any] | None = None):
        self.key: dict[str, Any] = json.loads(json.dumps(dict(key), sort_keys=True, default=str))
        self.rows: list[dict[str, Any]] = []
        for i, r in enumerate(rows or []):
            self.rows.append(_check_row(r, i))
        if meta is not None and not isinstance(meta, Mapping):
            raise ValueError(f"dataset meta must be a mapping, got {type(meta).__name__}")
        self.meta: dict[str, Any] = json.loads(json.dumps(dict(meta or {}), default=str))

    @classmethod
    def from_batch(cls, key: Mapping[str, Any], configs: Sequence[Mapping[str, Any]],
                   result: BatchResult) -> MeasurementDataset:
        """A dataset of the rows a batch kept, with the batch's record as ``meta``.

        Args:
            key: the plugin's ``describe()``.
            configs: one config per workload of the batch, in its order.
            result: the :class:`~switchnas.plugins.batch.BatchResult`.

        Returns:
            A dataset with one row per kept workload (dropped ones are skipped) and ``meta``
            holding ``protocol``, ``reference_ms`` (the drift record), ``repeatability``,
            ``conditions``, ``warnings``, ``elapsed_s``, ``dropped`` (their number) and
            ``failures`` (``{"index", "config", "reason"}`` per dropped row).

        Raises:
            ValueError: ``configs`` and the batch's rows differ in number.
        """
        if len(configs) != len(result.measurements):
            raise ValueError(f"from_batch: {len(configs)} configs for a batch of "
                             f"{len(result.measurements)} workloads; they must match")
        record = result.to_dict()
        failures = [{"index": i, "config": dict(c), "reason": result.failures[i]}
                    for i, (c, m) in enumerate(zip(configs, result.measurements, strict=True))
                    if m is None]
        meta = {k: record[k] for k in ("protocol", "reference_ms", "repeatability",
                                       "conditions", "warnings", "elapsed_s")}
        ds = cls(key, [], meta={**meta, "dropped": len(failures), "failures": failures})
        for c, m in zip(configs, result.measurements, strict=True):
            if m is not None:
                ds.add(c, m)
        return ds

    # -- building -------------------------------------------------------------------------
    def add(self, config: Mapping[str, Any], measurement: Any) -> None:
        """Append one measurement: a :class:`~switchnas.plugins.base.Measurement` or a
        mapping with ``median_ms``/``p10_ms``/``p90_ms``/``samples_ms``."""
        if hasattr(measurement, "summary"):
            summary = dict(measurement.summary())
        elif isinstance(measurement, Mapping):
            summary = dict(measurement)
        else:
            raise TypeError(f"measurement must be a Measurement or a mapping, got "
                            f"{type(measurement).__name__}")
        summary["config"] = json.loads(json.dumps(dict(config)))
        self.rows.append(_check_row(summary, len(self.rows)))

    def merge(self, other: MeasurementDataset) -> MeasurementDataset:
        """A new dataset with the rows of both; refuses datasets of different keys. The
        ``meta`` of both is kept (``{"merged": [a, b]}`` when both have one)."""
        if other.key != self.key:
            raise ValueError(
                "cannot merge measurements from different hardware descriptions: "
                f"{json.dumps(self.key, sort_keys=True)} (key {describe_key(self.key)}) vs "
                f"{json.dumps(other.key, sort_keys=True)} (key {describe_key(other.key)})")
        metas = [m for m in (self.meta, other.meta) if m]
        meta = metas[0] if len(metas) == 1 else {"merged": metas} if metas else {}
        return MeasurementDataset(self.key, self.rows + other.rows, meta)

    # -- access ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    @property
    def key_hash(self) -> str:
        return describe_key(self.key)

    def configs(self) -> list[dict[str, Any]]:
        return [r["config"] for r in self.rows]

    def X(self, encoding: SearchSpace | Callable[[list[dict[str, Any]]], np.ndarray]
          ) -> np.ndarray:
        """The rows' configs encoded: ``encoding.encode(configs)`` for a search space, or
        ``encoding(configs)`` for a function such as those in
        :data:`switchnas.predictors.encodings.ENCODINGS`."""
        configs = self.configs()
        out = encoding.encode(configs) if hasattr(encoding, "encode") else encoding(configs)
        return np.asarray(out, dtype=float)

    def y(self, field: str = "median_ms") -> np.ndarray:
        """One number per row (``median_ms`` by default; ``p90_ms``, ``energy_mj`` ...)."""
        missing = [i for i, r in enumerate(self.rows) if r.get(field) is None]
        if missing:
            raise KeyError(f"{len(missing)} row(s) have no {field!r} (first: row {missing[0]})")
        return np.asarray([float(r[field]) for r in self.rows], dtype=float)

    def rel_spread(self) -> np.ndarray:
        """(p90 - p10) / median per row: the measurement noise floor."""
        return np.asarray([(r["p90_ms"] - r["p10_ms"]) / r["median_ms"] if r["median_ms"] > 0
                           else 0.0 for r in self.rows])

    # -- files ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT_VERSION, "key": self.key, "key_hash": self.key_hash,
                "meta": self.meta, "rows": self.rows}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write JSON atomically (temporary file in the same folder, then rename)."""
        return atomic_write_json(path, self.to_dict(), indent=1)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MeasurementDataset:
        p = Path(path)
        try:
            data = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read measurement dataset {str(p)!r}: {exc}") from exc
        if not isinstance(data, dict) or "key" not in data or "rows" not in data:
            raise ValueError(f"{str(p)!r} is not a measurement dataset (needs 'key' and 'rows')")
        if data.get("format", FORMAT_VERSION) != FORMAT_VERSION:
            raise ValueError(f"{str(p)!r} has format {data.get('format')!r}; this version "
                             f"reads format {FORMAT_VERSION}")
        meta = data.get("meta") or {}  # files written before meta existed have none
        if not isinstance(meta, dict):
            raise ValueError(f"{str(p)!r}: 'meta' must be an object, got {type(meta).__name__}")
        return cls(data["key"], data["rows"], meta)

    def __repr__(self) -> str:
        return f"MeasurementDataset(key={self.key_hash}, rows={len(self.rows)})"


def _check_row(row: Mapping[str, Any], i: int) -> dict[str, Any]:
    missing = [k for k in _REQUIRED if k not in row]
    if missing:
        raise ValueError(f"measurement row {i} lacks {missing}; a row needs {list(_REQUIRED)}")
    out = dict(row)
    for k in ("median_ms", "p10_ms", "p90_ms"):
        v = out[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
            raise ValueError(f"measurement row {i}: {k}={v!r} is not a finite latency >= 0 ms")
        out[k] = float(v)
    samples = out["samples_ms"]
    if not isinstance(samples, (list, tuple)) or not all(
            isinstance(s, (int, float)) and not isinstance(s, bool) and np.isfinite(s) and s >= 0
            for s in samples):
        raise ValueError(f"measurement row {i}: samples_ms must be a list of finite "
                         f"latencies >= 0 ms, got {samples!r}")
    out["samples_ms"] = [float(s) for s in samples]
    if not isinstance(out["config"], Mapping):
        raise ValueError(f"measurement row {i}: config must be a mapping, got "
                         f"{type(out['config']).__name__}")
    out["config"] = dict(out["config"])
    return out
