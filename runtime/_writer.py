"""``write_bundle``: a family of sub-networks of one super-net as one bundle folder."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import uuid
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from ._integrity import fingerprint, plan_layout, probe_input
from ._io import prepare_io
from ._manifest import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    SHARED_PREFIX,
    WEIGHTS,
    BundleError,
    bn_prefix,
    sha256_file,
    validate_manifest,
)
from ._registry import check_kwargs, get_supernet, supernet_name
from ._slices import copy_slices

__all__ = ["write_bundle"]

_RESERVED = {"bn_state", "index", "onnx", "latency", "energy_mj"}


def write_bundle(path: str | os.PathLike[str], *, supernet: Any,
                 members: Sequence[Mapping[str, Any]], space: dict[str, Any] | None = None,
                 hardware: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
                 overwrite: bool = True, verify: bool = True, onnx: bool = False,
                 io: Mapping[str, Any] | None = None) -> Path:
    """Write ``members`` of ``supernet`` as a bundle folder at ``path``, atomically.

    Args:
        path: the bundle folder to create. Everything is written into a temporary folder
            next to it and renamed into place at the end, so ``path`` is either the old
            bundle or the complete new one, never a half-written one.
        supernet: a ``SuperNet`` of a registered class (entry-point group
            ``switchnas.supernets`` or :func:`register_supernet`): the manifest names it by
            that name and its ``spec()["kwargs"]``; with ``used_extents`` /
            ``used_weight_slices`` (OFA super-nets) only the weight slices the members
            read are stored, otherwise its whole state.
        members: dicts ``{"id", "config", "accuracy", "latency_ms"}`` with optional
            ``"bn_state"`` (the member's batch-norm statistics; default: the super-net's
            current ones), ``"latency"`` (``{hardware_key: ms}``) and ``"energy_mj"``;
            other JSON-able fields (``"predicted_latency_ms"`` ...) are kept in the manifest.
        space: the search space as a dict (default ``supernet.space.to_dict()``).
        hardware: description of the hardware the members were measured on; its ``"key"``
            (default ``"search"``) names ``latency_ms`` in each member's latency table.
        extra: free JSON-able metadata (the producing run, its hashes ...).
        overwrite: replace an existing bundle at ``path`` (never a folder that is not one).
        verify: also check that every member, rebuilt from the written tensors alone
            (everything else NaN), computes what ``supernet`` computes. Either way each
            member's fingerprint (its output on a fixed probe input, computed from the
            written tensors on the CPU) is recorded for :func:`load` to check.
        onnx: also export every member as ``member-<index>.onnx`` (its extracted
            sub-network with its batch-norm statistics; input ``x`` of shape
            ``(batch, 3, r, r)``, output ``y``), runnable with onnxruntime alone
            (:mod:`switchnas.runtime.onnx`).
        io: what the members take and give, made by
            :func:`~switchnas.runtime.image_classification_io` (normalisation, labels;
            each member's input shape is added here) or
            :func:`~switchnas.runtime.translation_io` (vocabularies, written as bundle
            files with checksums, and decoding settings). It becomes the manifest's ``io``
            section, which :meth:`Bundle.preprocess`, ``classify`` and ``translate`` use.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        BundleError: bad members, a target folder that exists and is not a bundle, or a
            failed verification; nothing is left behind.
    """
    target = Path(path)
    hw = dict(hardware or {})
    hw_key = str(hw.get("key", "search"))
    entries, bn_states = _check_members(supernet, members, hw_key)
    configs = [e["config"] for e in entries]
    sn_spec = _supernet_spec(supernet)

    sliced = hasattr(supernet, "used_weight_slices") and hasattr(supernet, "used_extents")
    shared, bn_plan, dtypes = plan_layout(supernet, configs, sliced=sliced)
    state = supernet.state_dict()
    tensors: dict[str, torch.Tensor] = {
        SHARED_PREFIX + k: state[k][_leading(s)] for k, s in shared.items()}
    for i, (plan, bn) in enumerate(zip(bn_plan, bn_states, strict=True)):
        for k, s in plan.items():
            tensors[bn_prefix(i) + k] = bn[k].to(dtypes[k])[_leading(s)]
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}

    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "space": dict(space) if space is not None else supernet.space.to_dict(),
        "supernet": sn_spec,
        "hardware": hw,
        "weights": {"layout": "slices" if sliced else "full", "shared_prefix": SHARED_PREFIX,
                    "bn_prefix": "bn/<index>/"},
        "members": entries,
        "created_with": _versions(),
        "extra": dict(extra or {}),
        "files": {},
    }
    io_files: dict[str, bytes] = {}
    if io is not None:
        manifest["io"], io_files = prepare_io(io, supernet=supernet, members=entries)
    _fingerprint_and_verify(supernet, manifest, tensors, bn_states, verify=verify)

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        wpath = tmp / WEIGHTS
        save_file(tensors, str(wpath), metadata={"format": FORMAT,
                                                 "format_version": str(FORMAT_VERSION)})
        _fsync(wpath)
        if onnx:
            _export_onnx(supernet, manifest, bn_states, tmp)
        for name, data in io_files.items():
            (tmp / name).write_bytes(data)
        for f in sorted(tmp.iterdir()):
            _fsync(f)
            manifest["files"][f.name] = {"sha256": sha256_file(f), "bytes": f.stat().st_size}
        try:
            text = json.dumps(validate_manifest(manifest), indent=1, sort_keys=True,
                              allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise BundleError(f"bundle manifest is not JSON-serialisable: {exc}") from exc
        (tmp / MANIFEST).write_text(text + "\n")
        _fsync(tmp / MANIFEST)
        _replace(tmp, target, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _check_members(supernet: Any, members: Sequence[Mapping[str, Any]],
                   hw_key: str) -> tuple[list[dict[str, Any]], list[dict[str, torch.Tensor]]]:
    if not members:
        raise BundleError("a bundle needs at least one member; got none")
    entries: list[dict[str, Any]] = []
    bn_states: list[dict[str, torch.Tensor]] = []
    seen: set[str] = set()
    for i, m in enumerate(members):
        missing = [k for k in ("id", "config", "accuracy", "latency_ms") if k not in m]
        if missing:
            raise BundleError(f"member {i} lacks {missing}; a member needs id, config, "
                              "accuracy, latency_ms (and optionally bn_state, latency, "
                              "energy_mj)")
        mid = m["id"]
        if not isinstance(mid, str) or not mid or mid in seen:
            raise BundleError(f"member {i}: id {mid!r} must be a non-empty string, unique "
                              f"in the bundle (ids so far: {sorted(seen)})")
        seen.add(mid)
        try:
            cfg = supernet.space.validate(m["config"])
        except ValueError as exc:
            raise BundleError(f"member {mid!r}: {exc}") from exc
        lat = _number(m["latency_ms"], f"member {mid!r} latency_ms", positive=True)
        table = {str(k): _number(v, f"member {mid!r} latency[{k!r}]", positive=True)
                 for k, v in dict(m.get("latency") or {}).items()}
        table.setdefault(hw_key, lat)
        entry: dict[str, Any] = {
            "id": mid, "index": i, "config": cfg,
            "accuracy": _number(m["accuracy"], f"member {mid!r} accuracy"),
            "latency_ms": lat, "latency": table,
        }
        if m.get("energy_mj") is not None:
            entry["energy_mj"] = _number(m["energy_mj"], f"member {mid!r} energy_mj",
                                         positive=True)
        for k, v in m.items():  # anything else (predicted latency, notes) is kept as is
            if k not in entry and k not in _RESERVED:
                try:
                    json.dumps(v, allow_nan=False)
                except (TypeError, ValueError) as exc:
                    raise BundleError(f"member {mid!r}: field {k!r} is not JSON-serialisable "
                                      f"({exc})") from exc
                entry[k] = v
        entries.append(entry)
        bn_states.append(_member_bn(supernet, mid, m.get("bn_state")))
    return entries, bn_states


def _member_bn(supernet: Any, mid: str, given: Mapping[str, torch.Tensor] | None
               ) -> dict[str, torch.Tensor]:
    """The member's batch-norm statistics: ``given`` over the super-net's current ones."""
    full = supernet.bn_state()
    if given is None:
        return full
    unknown = sorted(set(given) - set(full))
    if unknown:
        raise BundleError(f"member {mid!r}: bn_state names {unknown[:5]}, which are not "
                          "batch-norm statistics of the super-net")
    for k, v in given.items():
        if not isinstance(v, torch.Tensor) or tuple(v.shape) != tuple(full[k].shape):
            raise BundleError(f"member {mid!r}: bn_state[{k!r}] must be a tensor of shape "
                              f"{tuple(full[k].shape)}, got {getattr(v, 'shape', v)!r:.80}")
    return {**full, **given}


def _number(v: Any, what: str, *, positive: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        raise BundleError(f"{what} must be a finite number, got {v!r}")
    if positive and v <= 0:
        raise BundleError(f"{what} must be > 0, got {v!r}")
    return float(v)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"torch": str(torch.__version__)}
    with contextlib.suppress(PackageNotFoundError):
        out["switchnas"] = version("switchnas")
    return out


def _leading(shape: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(0, n) for n in shape)


def _supernet_spec(supernet: Any) -> dict[str, Any]:
    """``{"name", "kwargs"}`` for the manifest: the registered name, never an import path
    (an unregistered class gets ``{"target", "kwargs"}``, loadable only with
    ``trust_target=True``). The kwargs are checked as :func:`load` will check them."""
    spec = supernet.spec()
    if not isinstance(spec, Mapping) or not isinstance(spec.get("kwargs"), Mapping):
        raise BundleError(f"{type(supernet).__qualname__}.spec() must return "
                          f"{{'name', 'kwargs'}}, got {spec!r:.200}")
    kwargs = check_kwargs(type(supernet), dict(spec["kwargs"]),
                          f"super-net {type(supernet).__qualname__}")
    name = spec.get("name") or supernet_name(type(supernet))
    if name is not None:
        if get_supernet(str(name)) is not type(supernet):
            raise BundleError(f"super-net name {name!r} is registered to another class than "
                              f"{type(supernet).__qualname__}")
        return {"name": str(name), "kwargs": kwargs}
    cls = type(supernet)
    warnings.warn(f"{cls.__qualname__} is not a registered super-net (entry-point group "
                  "'switchnas.supernets' or register_supernet): the bundle names its import "
                  "path and loads only with trust_target=True", stacklevel=3)
    return {"target": f"{cls.__module__}:{cls.__qualname__}", "kwargs": kwargs}


@torch.no_grad()
def _fingerprint_and_verify(supernet: Any, manifest: dict[str, Any],
                            tensors: dict[str, torch.Tensor],
                            bn_states: list[dict[str, torch.Tensor]], *, verify: bool) -> None:
    """Rebuild the super-net on the CPU from ``tensors`` alone (everything else NaN), as
    :func:`load` will, and record each member's fingerprint on its probe input; with
    ``verify``, also compare each member's output with ``supernet``'s own."""
    fresh = type(supernet)(**manifest["supernet"]["kwargs"])
    for t in fresh.state_dict().values():
        if t.is_floating_point():
            t.fill_(float("nan"))
    shared = {k[len(SHARED_PREFIX):]: v for k, v in tensors.items()
              if k.startswith(SHARED_PREFIX)}
    copy_slices(fresh, shared)
    fresh.eval()
    previous, was_training, saved_bn = supernet.active, supernet.training, supernet.bn_state()
    supernet.eval()
    device = next((t.device for t in supernet.state_dict().values()), torch.device("cpu"))
    try:
        for entry, bn in zip(manifest["members"], bn_states, strict=True):
            cfg = entry["config"]
            p = bn_prefix(entry["index"])
            copy_slices(fresh, {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)})
            fresh.activate(cfg)
            x = probe_input(fresh, cfg)
            got = fresh(x)
            try:
                entry["fingerprint"] = fingerprint(x, got)
            except ValueError as exc:
                raise BundleError(f"bundle verification failed for member {entry['id']!r}: "
                                  f"the stored weights do not reproduce it ({exc})") from exc
            if verify:
                supernet.activate(cfg)
                supernet.load_bn_state(bn)
                want = supernet(x.to(device)).to("cpu")
                if want.shape != got.shape:
                    why = f"output shape {tuple(got.shape)}, expected {tuple(want.shape)}"
                elif not torch.allclose(want, got, atol=1e-5, rtol=1e-4):
                    why = f"max abs diff {(want - got).abs().max().item():.3g}"
                else:
                    continue
                raise BundleError(f"bundle verification failed for member {entry['id']!r}: "
                                  f"the stored weights do not reproduce its outputs ({why})")
    finally:
        supernet.load_bn_state(saved_bn)
        supernet.activate(previous)
        supernet.train(was_training)


def _export_onnx(supernet: Any, manifest: dict[str, Any],
                 bn_states: list[dict[str, torch.Tensor]], folder: Path) -> None:
    import warnings

    saved_bn = supernet.bn_state()
    try:
        for entry, bn in zip(manifest["members"], bn_states, strict=True):
            supernet.load_bn_state(bn)
            module = supernet.extract(entry["config"]).eval()
            x = supernet.example_input(entry["config"], batch=1)
            name = f"member-{entry['index']}.onnx"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the exporter's tracer and deprecation chatter
                torch.onnx.export(module, (x,), str(folder / name), dynamo=False,
                                  input_names=["x"], output_names=["y"],
                                  dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
            entry["onnx"] = name
    finally:
        supernet.load_bn_state(saved_bn)


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _replace(tmp: Path, target: Path, overwrite: bool) -> None:
    if not target.exists():
        os.replace(tmp, target)
        return
    if not overwrite:
        raise BundleError(f"{str(target)!r} exists; pass overwrite=True to replace it")
    if not target.is_dir() or not ((target / MANIFEST).is_file() or not any(target.iterdir())):
        raise BundleError(f"{str(target)!r} exists and is not a bundle folder; refusing to "
                          "replace it")
    old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
    os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
