"""``lut``: OFA-format operator lookup tables, read and built.

A table is one YAML file per input resolution, ``<resolution>_lookup_table.yaml``, mapping
an operator key to ``{count, mean, std}`` (ms), as OFA and Dynamic-OFA ship them. For
OFA-MobileNetV3 the keys are::

    Conv-input:224x224x3-output:112x112x24                      first conv
    expanded_conv-input:HxWxC-output:HxWxC-expand:M-kernel:K-stride:S-idskip:0|1-se:0|1-hs:0|1
    Conv_1-input:7x7x192-output:7x7x1152                        final expand layer
    AvgPool2D-input:7x7x1152-output:1x1x1152                    global pooling
    Conv_2-input:1x1x1152-output:1x1x1536                       feature mix layer
    Logits-input:1x1x1536-output:1000                           classifier

(``expand`` is the number of middle channels, not the ratio.) A sub-network's latency is
predicted as the sum of its operators' means. :func:`build_lut` makes such a table for
any hardware plugin by measuring each distinct operator of a space once.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from .base import HardwarePlugin, Measurement
from .measure import MeasurementError

__all__ = ["LUTError", "LUTPlugin", "Operator", "build_lut", "mbv3_operators", "read_lut"]

_PARTS = ("first_conv", "blocks", "final_expand_layer", "global_avg_pool",
          "feature_mix_layer", "classifier")


class LUTError(ValueError):
    """A lookup table is malformed, missing, or lacks an operator."""


class Operator(NamedTuple):
    """One operator of a sub-network: its table key, the module and its input shape."""

    key: str
    module: Any
    input_shape: tuple[int, ...]


def mbv3_operators(module: Any, resolution: int | None = None) -> list[Operator]:
    """The operators of an OFA-MobileNetV3 sub-network with OFA's lookup-table keys.

    Args:
        module: an ``ofa`` ``MobileNetV3`` or what ``OFAMobileNetV3Net.extract`` returns.
        resolution: input resolution; defaults to ``module.resolution``.

    Shapes follow from the layers' channels and strides (no forward pass), the way OFA's
    own ``MBv3LatencyTable`` computes them.
    """
    net = getattr(module, "body", module)
    missing = [p for p in _PARTS if not hasattr(net, p)]
    if missing:
        raise TypeError(f"lut plugin: {type(net).__name__} is not an OFA MobileNetV3 "
                        f"(it lacks {missing}); only that space has a lookup-table layout")
    r = resolution if resolution is not None else getattr(module, "resolution", None)
    if r is None:
        raise ValueError("lut plugin: pass the resolution; the module does not record one")
    r = int(r)

    def io(cin: int, f_in: int, cout: int, f_out: int) -> str:
        return f"input:{f_in}x{f_in}x{cin}-output:{f_out}x{f_out}x{cout}"

    first = net.first_conv
    f = (r - 1) // int(first.stride) + 1
    ops = [Operator(f"Conv-{io(3, r, first.out_channels, f)}", first, (1, 3, r, r))]
    for b in net.blocks:
        conv = b.conv
        if conv is None:
            continue
        f_out = int((f - 1) / conv.stride + 1)
        key = (f"expanded_conv-{io(conv.in_channels, f, conv.out_channels, f_out)}"
               f"-expand:{conv.depth_conv.conv.in_channels}"
               f"-kernel:{conv.kernel_size}-stride:{conv.stride}"
               f"-idskip:{int(b.shortcut is not None)}-se:{int(bool(conv.use_se))}"
               f"-hs:{int(conv.act_func == 'h_swish')}")
        ops.append(Operator(key, b, (1, conv.in_channels, f, f)))
        f = f_out
    fe, fm, cl = net.final_expand_layer, net.feature_mix_layer, net.classifier
    c = fe.out_channels
    ops += [
        Operator(f"Conv_1-{io(fe.in_channels, f, c, f)}", fe, (1, fe.in_channels, f, f)),
        Operator(f"AvgPool2D-{io(c, f, c, 1)}", net.global_avg_pool, (1, c, f, f)),
        Operator(f"Conv_2-{io(fm.in_channels, 1, fm.out_channels, 1)}", fm,
                 (1, fm.in_channels, 1, 1)),
        Operator(f"Logits-input:1x1x{cl.in_features}-output:{cl.out_features}", cl,
                 (1, cl.in_features)),
    ]
    return ops


def read_lut(path: str | Path) -> dict[str, dict[str, float]]:
    """Load and check one table file; raise :class:`LUTError` naming the file and key."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LUTError(f"cannot read lookup table {p}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise LUTError(f"lookup table {p} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not data:
        raise LUTError(f"lookup table {p} must be a non-empty mapping of operator keys to "
                       f"{{count, mean, std}}, got {type(data).__name__}")
    table: dict[str, dict[str, float]] = {}
    for key, entry in data.items():
        if not isinstance(key, str):
            raise LUTError(f"lookup table {p}: key {key!r} is not a string")
        if not isinstance(entry, dict) or "mean" not in entry:
            raise LUTError(f"lookup table {p}: entry {key!r} must be a mapping with 'mean' "
                           f"(and optionally 'count', 'std'), got {entry!r}")
        row: dict[str, float] = {}
        for field in ("mean", "std", "count"):
            if field not in entry:
                continue
            v = entry[field]
            ok = (isinstance(v, (int, float)) and not isinstance(v, bool)
                  and math.isfinite(float(v)) and float(v) >= 0)
            if not ok:
                raise LUTError(f"lookup table {p}: entry {key!r}: {field!r} must be a finite "
                               f"number >= 0, got {v!r}")
            row[field] = float(v)
        table[key] = row
    return table


def _table_path(directory: Path, resolution: int) -> Path:
    return directory / f"{int(resolution)}_lookup_table.yaml"


class LUTPlugin:
    """Predicts latency as the sum of an OFA-MobileNetV3 sub-network's operator means.

    Nothing runs on the target: ``measure`` returns one predicted sample;
    ``meta["std_ms"]`` is the root sum of the operators' variances (as if independent)
    and ``meta["predicted"]`` is ``True``.

    Args:
        tables: folder of ``<resolution>_lookup_table.yaml`` files; a relative path is
            tried against the working directory, then the project root.
        device: a label for the device the tables were measured on (``describe()``).
    """

    name = "lut"
    #: computed, not timed: batches skip the reference and the rounds
    deterministic = True

    def __init__(self, *, tables: str, device: str = "unknown"):
        self.tables = tables
        self.device = device
        self._cache: dict[int, dict[str, dict[str, float]]] = {}

    @property
    def _dir(self) -> Path:
        d = Path(self.tables).expanduser()
        if d.is_dir():
            return d
        # A relative path is also tried against the project root of a source checkout, so
        # the default ``../shared/data/...`` works from any working directory.
        alt = Path(__file__).resolve().parents[1] / d
        if not d.is_absolute() and alt.is_dir():
            return alt
        raise LUTError(f"lut plugin: tables folder {str(d)!r} does not exist")

    def resolutions(self) -> list[int]:
        """Resolutions with a table file."""
        out = []
        for f in self._dir.glob("*_lookup_table.yaml"):
            head = f.name.split("_", 1)[0]
            if head.isdigit():
                out.append(int(head))
        return sorted(out)

    def table(self, resolution: int) -> dict[str, dict[str, float]]:
        """The table for ``resolution`` (read once, then cached)."""
        r = int(resolution)
        if r not in self._cache:
            path = _table_path(self._dir, r)
            if not path.is_file():
                raise LUTError(f"lut plugin: no table for resolution {r} in {self._dir}; "
                               f"tables exist for {self.resolutions()}")
            self._cache[r] = read_lut(path)
        return self._cache[r]

    def describe(self) -> dict[str, Any]:
        d = self._dir
        h = hashlib.sha256()
        for f in sorted(d.glob("*_lookup_table.yaml")):
            h.update(f.name.encode())
            h.update(f.read_bytes())
        desc: dict[str, Any] = {"plugin": self.name, "device": self.device,
                                "tables_sha256": h.hexdigest()[:16], "batch_size": 1}
        source = d / "describe.json"
        if source.is_file():
            desc["measured_with"] = json.loads(source.read_text(encoding="utf-8"))
        return desc

    def predict(self, module: Any, resolution: int | None = None) -> dict[str, Any]:
        """``{"latency_ms", "std_ms", "operators": {key: mean}}`` for a sub-network."""
        r = resolution if resolution is not None else getattr(module, "resolution", None)
        if r is None:
            raise ValueError("lut plugin: pass the resolution; the module does not record one")
        table = self.table(int(r))
        total, var, used = 0.0, 0.0, []
        for op in mbv3_operators(module, int(r)):
            if op.key not in table:
                raise LUTError(f"lookup table {_table_path(self._dir, int(r))} has no entry "
                               f"{op.key!r} ({len(table)} entries; is it for this space and "
                               "width?)")
            total += table[op.key]["mean"]
            var += table[op.key].get("std", 0.0) ** 2
            used.append(op.key)
        return {"latency_ms": total, "std_ms": math.sqrt(var), "operators": used}

    def measure(self, module: Any, example_input: Any) -> Measurement:
        x = example_input[0] if isinstance(example_input, tuple) else example_input
        r = getattr(module, "resolution", None) or int(x.shape[-1])
        try:
            pred = self.predict(module, int(r))
        except LUTError:
            raise
        except Exception as exc:
            raise MeasurementError(f"hardware plugin {self.name}: cannot enumerate the "
                                   f"operators of {type(module).__name__}: {exc}") from exc
        return Measurement(samples_ms=(pred["latency_ms"],),
                           meta={"predicted": True, "std_ms": pred["std_ms"],
                                 "n_operators": len(pred["operators"]), "resolution": int(r)})


def _distinct_configs(space: Any) -> list[dict[str, Any]]:
    """Configs that together use every (kernel, expand) choice at every block position,
    at full depth: every distinct operator shape of the space appears in one of them."""
    dims = space.dimensions
    ks, es, ds = dims["ks"], dims["e"], dims["d"]
    n_k = max(len(c) for c in ks)
    n_e = max(len(c) for c in es)
    configs = []
    for ki, ei in itertools.product(range(n_k), range(n_e)):
        configs.append({
            "ks": [c[ki % len(c)] for c in ks],
            "e": [c[ei % len(c)] for c in es],
            "d": [max(c) for c in ds],
        })
    return configs


def build_lut(plugin: HardwarePlugin, supernet: Any, resolutions: Sequence[int],
              out_dir: str | Path | None = None) -> dict[int, dict[str, dict[str, float]]]:
    """Measure each distinct operator of an OFA-MobileNetV3 space with ``plugin``.

    Args:
        plugin: the plugin that measures each operator (batch 1 input of its shape).
        supernet: an ``OFAMobileNetV3Net`` (its space says which operators exist).
        resolutions: input resolutions to tabulate.
        out_dir: where to write ``<r>_lookup_table.yaml`` and ``describe.json`` (the
            measuring plugin's description); nothing is written if ``None``.

    Returns:
        ``{resolution: {key: {"count", "mean", "std"}}}`` (mean and std of the kept samples).
    """
    import numpy as np
    import torch

    tables: dict[int, dict[str, dict[str, float]]] = {}
    for r in resolutions:
        table: dict[str, dict[str, float]] = {}
        for cfg in _distinct_configs(supernet.space):
            sub = supernet.extract({**cfg, "r": int(r)})
            for op in mbv3_operators(sub, int(r)):
                if op.key in table:
                    continue
                m = plugin.measure(op.module, torch.randn(*op.input_shape))
                s = np.asarray(m.samples_ms, dtype=float)
                table[op.key] = {"count": int(s.size), "mean": float(s.mean()),
                                 "std": float(s.std())}
        tables[int(r)] = dict(sorted(table.items()))
    if out_dir is not None:
        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
        for r, table in tables.items():
            _table_path(d, r).write_text(yaml.safe_dump(table, sort_keys=True),
                                         encoding="utf-8")
        (d / "describe.json").write_text(json.dumps(plugin.describe(), indent=2,
                                                    sort_keys=True, default=str),
                                         encoding="utf-8")
    return tables
