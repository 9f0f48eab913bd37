"""``load`` and :class:`Bundle`: a bundle folder as a switchable network."""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import os
import tarfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from ._manifest import (
    MANIFEST,
    SHARED_PREFIX,
    WEIGHTS,
    BundleError,
    bn_prefix,
    sha256_file,
    validate_manifest,
)

__all__ = ["Bundle", "Member", "load", "pack_bundle"]

SwitchMode = Literal["extracted", "inplace"]
_MAX_MANIFEST_BYTES = 64 << 20


@dataclass(frozen=True)
class Member:
    """One sub-network of a bundle, as the manifest describes it."""

    id: str
    index: int
    config: dict[str, Any]
    accuracy: float
    latency_ms: float  #: measured on the search hardware
    latency: Mapping[str, float] = field(default_factory=dict)  #: per hardware key
    energy_mj: float | None = None

    def latency_on(self, hardware: str | None) -> float:
        if hardware is None:
            return self.latency_ms
        try:
            return float(self.latency[hardware])
        except KeyError:
            raise KeyError(f"member {self.id!r} has no latency for hardware {hardware!r}; "
                           f"it has {sorted(self.latency)}") from None


class Bundle:
    """A loaded bundle: one super-net's shared weights, per-member batch-norm statistics
    and a switch between members. Create it with :func:`load`.

    Two ways to switch, chosen at load time:

    * ``"extracted"`` (default): every member is extracted once at load time into a
      standalone module (its own copy of the sliced weights, batch-norm statistics folded
      in), so :meth:`activate` only swaps a reference (microseconds) and the active member
      runs exactly as fast as its extracted sub-network. Costs the members' weights once
      more in memory (:meth:`memory_bytes`).
      ``cache=N`` keeps only the N most recently used extracted members: a switch to
      another one extracts it first (tens of milliseconds) and evicts the oldest.
    * ``"inplace"``: :meth:`activate` calls the super-net's ``set_active_subnet`` and copies
      the member's batch-norm statistics in; no memory beyond the super-net, but the
      dynamic super-net computes slices on every forward and runs slower.

    Switching is thread-safe: a call runs entirely with the member that was active when it
    started. In ``"extracted"`` mode calls run concurrently; in ``"inplace"`` mode a call
    holds the lock, since the super-net itself is what a switch changes.
    """

    def __init__(self, *, supernet: nn.Module, members: list[Member],
                 bn: dict[str, dict[str, torch.Tensor]], manifest: dict[str, Any],
                 path: Path | None, device: torch.device, switch: SwitchMode,
                 cache: int | None = None):
        self.supernet: Any = supernet
        self.members: tuple[Member, ...] = tuple(members)
        self.manifest = manifest
        self.path = path
        self.device = device
        self.switch = switch
        self._by_id = {m.id: m for m in members}
        self._bn = bn
        self._lock = threading.RLock()
        self._modules: dict[str, nn.Module] = {}  # in least-recently-used order
        self.cache = len(members) if cache is None else int(cache)
        if self.cache < 1:
            raise ValueError(f"cache must be >= 1 (members kept extracted), got {cache!r}")
        # (destination view, source) pairs per member: a switch is then only copies
        self._bn_views = {m.id: _slice_views(supernet, bn[m.id]) for m in members}
        if switch == "extracted":
            for m in members[:self.cache]:
                self._modules[m.id] = self._extract(m)
        self._active = members[0].id
        self._module: nn.Module = supernet
        self.activate(self._active)

    # -- members -------------------------------------------------------------------------
    @property
    def ids(self) -> list[str]:
        return [m.id for m in self.members]

    def member(self, member_id: str) -> Member:
        try:
            return self._by_id[member_id]
        except (KeyError, TypeError):
            raise KeyError(f"unknown bundle member {member_id!r}; members are "
                           f"{self.ids}") from None

    @property
    def active(self) -> str:
        """Id of the member that ``__call__`` runs."""
        return self._active

    @property
    def active_member(self) -> Member:
        return self._by_id[self._active]

    # -- switching and inference ---------------------------------------------------------
    def activate(self, member_id: str) -> None:
        """Make ``member_id`` the active member, in place; waits for running calls in
        ``"inplace"`` mode. Raises ``KeyError`` listing the ids for an unknown id."""
        m = self.member(member_id)
        with self._lock:
            if self.switch == "extracted":
                module = self._modules.pop(m.id, None)
                if module is None:
                    module = self._extract(m)
                    while len(self._modules) >= self.cache:
                        self._modules.pop(next(iter(self._modules)))
                self._modules[m.id] = module
                self._module = module
            else:
                self.supernet.activate(m.config)
                with torch.no_grad():
                    for dst, src in self._bn_views[m.id]:
                        dst.copy_(src)
            self._active = m.id

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Run the active member on ``x`` (eval mode, no autograd)."""
        if x.device != self.device:
            x = x.to(self.device)
        if self.switch == "extracted":
            with self._lock:
                module = self._module
            with torch.no_grad():
                return module(x)
        with self._lock, torch.no_grad():
            return self.supernet(x)

    def extract(self, member_id: str) -> nn.Module:
        """A standalone module (eval mode) computing what member ``member_id`` computes;
        a new copy, independent of the bundle."""
        m = self.member(member_id)
        with self._lock:
            if self.switch == "extracted" and m.id in self._modules:
                return copy.deepcopy(self._modules[m.id])
            try:
                return self._extract(m)
            finally:
                copy_slices(self.supernet, self._bn[self._active])

    def _extract(self, m: Member) -> nn.Module:
        copy_slices(self.supernet, self._bn[m.id])
        module = self.supernet.extract(m.config)  # type: ignore[operator]
        module.eval()
        for p in module.parameters():
            p.requires_grad_(False)
        return module

    def selector(self, target_ms: float, policy: str = "feedback", *,
                 hardware: str | None = None, **kwargs: Any) -> Any:
        """A selector of policy ``policy`` over this bundle's members.

        Args:
            target_ms: the latency target per request.
            policy: a registered selector name (``feedback``, ``static``, ``step``,
                ``oracle`` or one from the ``switchnas.selectors`` entry-point group).
            hardware: which latency table to use (default: the search hardware's).
            **kwargs: the policy's own options.

        Returns:
            An object whose ``step(observed_ms)`` returns the id of the member to run next.
        """
        from .selectors import MemberInfo, make_selector

        infos = [MemberInfo(id=m.id, accuracy=m.accuracy, latency_ms=m.latency_on(hardware),
                            energy_mj=m.energy_mj) for m in self.members]
        return make_selector(policy, infos, target_ms=target_ms, **kwargs)

    def memory_bytes(self) -> dict[str, int]:
        """Bytes of tensors held: the super-net, the per-member batch-norm statistics and
        the extracted members (``"extracted"`` mode only)."""
        def size(tensors: Any) -> int:
            return sum(t.numel() * t.element_size() for t in tensors)

        return {
            "supernet": size(self.supernet.state_dict().values()),
            "bn_stats": size(t for d in self._bn.values() for t in d.values()),
            "extracted": sum(size(m.state_dict().values()) for m in self._modules.values()),
        }

    def __repr__(self) -> str:
        return (f"Bundle({str(self.path)!r}, members={self.ids}, active={self._active!r}, "
                f"switch={self.switch!r})")


# -- loading -------------------------------------------------------------------------------
def load(path: str | os.PathLike[str], device: str | torch.device = "cpu", *,
         switch: SwitchMode = "extracted", cache: int | None = None,
         trust_target: bool = False) -> Bundle:
    """Load a bundle folder written by :func:`switchnas.runtime.write_bundle`.

    The manifest's schema and format version and every file's size and SHA-256 are checked
    before any weight is read; nothing is kept from a bundle that fails a check.

    Args:
        path: the bundle folder, or a single-file archive of it (:func:`pack_bundle`).
        device: where the weights go.
        switch: ``"extracted"`` or ``"inplace"`` (see :class:`Bundle`).
        cache: in ``"extracted"`` mode, how many members to keep extracted (default all).
        trust_target: allow a super-net class outside ``switchnas.*`` and the
            ``switchnas.supernets`` entry points (importing it runs its module's code).

    Raises:
        BundleError: a missing, truncated, tampered, foreign or wrong-version bundle, or
            weights that do not fit the super-net the manifest names.
    """
    if switch not in ("extracted", "inplace"):
        raise ValueError(f"switch={switch!r}; choose 'extracted' or 'inplace'")
    root = Path(path)
    src: _Folder | _Archive = _Archive(root) if root.is_file() else _Folder(root)
    try:
        manifest = json.loads(src.manifest().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"not a switchnas bundle: {src.where(MANIFEST)!r} is not valid "
                          f"JSON ({exc})") from exc
    validate_manifest(manifest)
    for name, entry in manifest["files"].items():
        size, digest = src.stat(name)
        if size != entry["bytes"]:
            raise BundleError(f"bundle file {src.where(name)!r} has {size} bytes, the "
                              f"manifest says {entry['bytes']}: truncated or replaced")
        if digest != entry["sha256"]:
            raise BundleError(f"bundle file {src.where(name)!r} fails its SHA-256 check: it "
                              "was modified or corrupted after the bundle was written")
    tensors = src.tensors(WEIGHTS)

    net = build_supernet(manifest["supernet"], trust_target=trust_target)
    members = []
    for e in manifest["members"]:
        try:
            cfg = net.space.validate(e["config"])
        except ValueError as exc:
            raise BundleError(f"member {e['id']!r}: {exc}") from exc
        members.append(Member(id=e["id"], index=e["index"], config=cfg,
                              accuracy=float(e["accuracy"]),
                              latency_ms=float(e["latency_ms"]),
                              latency={k: float(v) for k, v in e["latency"].items()},
                              energy_mj=e.get("energy_mj")))
    restore_weights(net, tensors, manifest)
    dev = torch.device(device)
    net.to(dev).eval()
    bn = {m.id: {k[len(bn_prefix(m.index)):]: v.to(dev) for k, v in tensors.items()
                 if k.startswith(bn_prefix(m.index))} for m in members}
    return Bundle(supernet=net, members=members, bn=bn, manifest=manifest, path=root,
                  device=dev, switch=switch, cache=cache)


class _Folder:
    """A bundle folder: files are checked and read from disk."""

    def __init__(self, root: Path):
        self.root = root
        if not root.is_dir() or not (root / MANIFEST).is_file():
            raise BundleError(f"{str(root)!r} is not a bundle folder (no {MANIFEST}) nor a "
                              "bundle archive")

    def where(self, name: str) -> str:
        return str(self.root / name)

    def manifest(self) -> bytes:
        p = self.root / MANIFEST
        if p.stat().st_size > _MAX_MANIFEST_BYTES:
            raise BundleError(f"{str(p)!r} is too large to be a bundle manifest")
        return p.read_bytes()

    def stat(self, name: str) -> tuple[int, str]:
        f = self.root / name
        if not f.is_file():
            raise BundleError(f"bundle file {str(f)!r} is missing")
        return f.stat().st_size, sha256_file(f)

    def tensors(self, name: str) -> dict[str, torch.Tensor]:
        from safetensors import safe_open

        try:
            with safe_open(str(self.root / name), framework="pt", device="cpu") as f:
                return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
        except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same message
            raise BundleError(f"cannot read bundle weights {self.where(name)!r}: "
                              f"{exc}") from exc


class _Archive:
    """A single-file bundle (an uncompressed tar of the folder's files), read in memory."""

    def __init__(self, path: Path):
        self.path = path
        self.files: dict[str, bytes] = {}
        try:
            with tarfile.open(path, mode="r:") as tar:
                for info in tar:
                    if not info.isfile() or "/" in info.name or info.name.startswith("."):
                        raise BundleError(f"bundle archive {str(path)!r} holds {info.name!r},"
                                          " which is not a plain file of a bundle")
                    f = tar.extractfile(info)
                    if f is not None:
                        self.files[info.name] = f.read()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise BundleError(f"{str(path)!r} is not a bundle folder nor a readable bundle "
                              f"archive ({exc})") from exc
        if MANIFEST not in self.files:
            raise BundleError(f"bundle archive {str(path)!r} has no {MANIFEST}")

    def where(self, name: str) -> str:
        return f"{self.path}:{name}"

    def manifest(self) -> bytes:
        return self.files[MANIFEST]

    def stat(self, name: str) -> tuple[int, str]:
        if name not in self.files:
            raise BundleError(f"bundle file {self.where(name)!r} is missing")
        data = self.files[name]
        return len(data), hashlib.sha256(data).hexdigest()

    def tensors(self, name: str) -> dict[str, torch.Tensor]:
        from safetensors.torch import load as load_bytes

        try:
            return load_bytes(self.files[name])
        except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same message
            raise BundleError(f"cannot read bundle weights {self.where(name)!r}: "
                              f"{exc}") from exc


def pack_bundle(folder: str | os.PathLike[str], archive: str | os.PathLike[str]) -> Path:
    """Write the bundle ``folder`` as one uncompressed tar file ``archive`` (atomically;
    the folder is checked first). :func:`load` reads either form."""
    src = _Folder(Path(folder))
    validate_manifest(json.loads(src.manifest()))
    out = Path(archive)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    try:
        with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in [MANIFEST, *sorted(p.name for p in src.root.iterdir()
                                           if p.is_file() and p.name != MANIFEST
                                           and not p.name.startswith("."))]:
                tar.add(src.root / name, arcname=name, recursive=False)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


def build_supernet(spec: Mapping[str, Any], *, trust_target: bool = False) -> Any:
    """Import ``spec["target"]`` ("module:Class") and build it with ``spec["kwargs"]``."""
    target = str(spec["target"])
    module_name, _, qualname = target.partition(":")
    if not (trust_target or module_name.startswith("switchnas.")
            or target in _entry_point_targets()):
        raise BundleError(f"bundle names super-net class {target!r}, which is neither in "
                          "switchnas nor registered in the 'switchnas.supernets' entry-point "
                          "group; pass trust_target=True to import it anyway")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        net = obj(**spec["kwargs"])
    except Exception as exc:  # noqa: BLE001 - report any failure as a bad bundle
        raise BundleError(f"cannot build the bundle's super-net {target!r} with "
                          f"{spec['kwargs']!r}: {type(exc).__name__}: {exc}") from exc
    for attr in ("activate", "extract", "space"):
        if not hasattr(net, attr):
            raise BundleError(f"bundle super-net {target!r} has no {attr!r}; it is not a "
                              "switchnas SuperNet")
    return net


def _entry_point_targets() -> set[str]:
    from importlib.metadata import entry_points

    return {ep.value for ep in entry_points(group="switchnas.supernets")}


def restore_weights(net: nn.Module, tensors: Mapping[str, torch.Tensor],
                    manifest: Mapping[str, Any]) -> None:
    """Copy the bundle's shared tensors into ``net``'s leading slices."""
    shared = {k[len(SHARED_PREFIX):]: v for k, v in tensors.items()
              if k.startswith(SHARED_PREFIX)}
    n = len(manifest["members"])
    stray = [k for k in tensors if not k.startswith(SHARED_PREFIX)
             and not any(k.startswith(bn_prefix(i)) for i in range(n))]
    if stray:
        raise BundleError(f"bundle weights hold tensors of no member: {stray[:5]}")
    copy_slices(net, shared)
    state = net.state_dict()
    for i in range(n):
        p = bn_prefix(i)
        _check_slices(state, {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)})


def _check_slices(state: Mapping[str, torch.Tensor],
                  tensors: Mapping[str, torch.Tensor]) -> None:
    for k, t in tensors.items():
        if k not in state:
            raise BundleError(f"bundle tensor {k!r} names no tensor of the super-net")
        full = tuple(state[k].shape)
        if t.dim() != len(full) or any(a > b for a, b in zip(t.shape, full, strict=True)):
            raise BundleError(f"bundle tensor {k!r} has shape {tuple(t.shape)}, which does "
                              f"not fit the super-net's {full}")


def _slice_views(net: nn.Module, tensors: Mapping[str, torch.Tensor]
                 ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    state = net.state_dict()
    _check_slices(state, tensors)
    return [(state[k][tuple(slice(0, n) for n in t.shape)], t) for k, t in tensors.items()]


def copy_slices(net: nn.Module, tensors: Mapping[str, torch.Tensor]) -> None:
    """Copy each tensor into the leading slice of ``net``'s same-named state tensor."""
    state = net.state_dict()
    _check_slices(state, tensors)
    with torch.no_grad():
        for k, t in tensors.items():
            dst = state[k]
            if dst.shape == t.shape:
                dst.copy_(t)
            else:
                dst[tuple(slice(0, n) for n in t.shape)].copy_(t)
