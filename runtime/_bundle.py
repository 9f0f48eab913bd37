"""``load`` and :class:`Bundle`: a bundle folder as a switchable network."""

from __future__ import annotations

import copy
import json
import os
import tarfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from ._integrity import compare_fingerprints, fingerprint, plan_layout, probe_input
from ._io import ImageIO, TranslationIO, load_io
from ._lean import LeanSwitch, bases, storage_bytes, trace_layouts
from ._manifest import MANIFEST, SHARED_PREFIX, WEIGHTS, BundleError, bn_prefix
from ._registry import check_kwargs, get_supernet, import_target
from ._slices import copy_slices, slice_views
from ._source import DTYPE_NAMES, Folder, open_source

__all__ = ["Bundle", "Member", "load", "pack_bundle", "resolve_supernet"]

SwitchMode = Literal["lean", "extracted", "inplace"]
#: the switching modes :func:`load` accepts
SWITCH_MODES: tuple[str, ...] = ("lean", "extracted", "inplace")


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

    Three ways to switch, chosen at load time:

    * ``"lean"`` (default): each member is a module of the same classes as its extracted
      sub-network whose tensors are views of the bundle's shared weights (the union of
      the members' slices, held once) and of its own batch-norm statistics. Slices that
      cannot be views (fewer input channels than the shared tensor) are copied at switch
      time into one of two preallocated arenas; the few tensors extraction computes (OFA's
      transformed kernels) are kept per member, equal ones once. Memory stays near the
      union of the members' weights, the active member runs on contiguous tensors as fast
      as its extracted sub-network, and a switch swaps a reference when the member's
      copies are in an arena (it was active before, or :meth:`prefetch` prepared it), or
      copies its slices first (a fraction of a millisecond). The super-net object keeps
      its structure but no weights (``meta`` device); :meth:`extract` copies the member.
    * ``"extracted"``: every member is extracted once at load time into a
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
    started. In ``"extracted"`` and ``"lean"`` modes calls run concurrently (a lean switch
    that must refill an arena waits for the calls still running on it); in ``"inplace"``
    mode a call holds the lock, since the super-net itself is what a switch changes.

    A bundle written with an ``io`` section (format version 3) also turns raw input into
    answers: :meth:`classify` (an image to ``(label, probability)``), :meth:`translate`
    (text to text), and the steps they are made of, :meth:`preprocess` and
    :meth:`postprocess`, all with the active member.
    """

    def __init__(self, *, supernet: nn.Module, members: list[Member],
                 bn: dict[str, dict[str, torch.Tensor]], manifest: dict[str, Any],
                 path: Path | None, device: torch.device, switch: SwitchMode,
                 cache: int | None = None, io: ImageIO | TranslationIO | None = None,
                 bank: Mapping[str, torch.Tensor] | None = None,
                 layouts: Sequence[Any] | None = None):
        self.supernet: Any = supernet
        #: pre- and post-processing from the manifest's ``io`` section (``None`` without)
        self.io = io
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
        self._bn_views = {m.id: slice_views(supernet, bn[m.id]) for m in members} \
            if switch == "inplace" else {}
        if switch == "extracted":
            for m in members[:self.cache]:
                self._modules[m.id] = self._extract(m)
        self._lean: LeanSwitch | None = None
        if switch == "lean":
            if bank is None:
                bank = {k: v.detach() for k, v in supernet.state_dict().items()
                        if k not in {k for d in bn.values() for k in d}}
            self._lean = LeanSwitch(supernet=supernet, members=[(m.id, m.config) for m in members],
                                    bank=bank, bn=bn,
                                    extract=lambda mid: self._extract(self._by_id[mid]),
                                    layouts=layouts)
            # the members view the bank: the super-net keeps its structure, not its weights
            supernet.to("meta")
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
        ``"inplace"`` mode (in ``"lean"`` mode, for those on the arena it refills).
        Raises ``KeyError`` listing the ids for an unknown id."""
        m = self.member(member_id)
        with self._lock:
            if self._lean is not None:
                self._lean.activate(m.id)
            elif self.switch == "extracted":
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

    def prefetch(self, member_id: str) -> Future[None]:
        """Prepare member ``member_id`` off the request path, so that a later
        :meth:`activate` of it only swaps a reference: in ``"lean"`` mode its copied
        slices go into the spare arena in a background thread; other modes have nothing
        to prepare.

        Returns:
            The future of the preparation (already done where there is nothing to do).

        Raises:
            KeyError: an unknown id (the message lists the ids).
        """
        m = self.member(member_id)
        if self._lean is not None:
            return self._lean.prefetch(m.id)
        done: Future[None] = Future()
        done.set_result(None)
        return done

    @contextmanager
    def _running(self) -> Iterator[tuple[str, Any]]:
        """(active member id, module that computes it) for the length of one call."""
        if self._lean is not None:
            with self._lean.use() as (member, module):
                yield member, module
        elif self.switch == "extracted":
            with self._lock:
                member, module = self._active, self._module
            yield member, module
        else:
            with self._lock:  # the super-net itself is what a switch changes
                yield self._active, self.supernet

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Run the active member on ``x`` (eval mode, no autograd)."""
        if x.device != self.device:
            x = x.to(self.device)
        with self._running() as (_, module), torch.no_grad():
            return module(x)  # type: ignore[no-any-return]

    # -- pre- and post-processing ------------------------------------------------------------
    def _need_io(self, task: str | None, call: str) -> Any:
        if self.io is None:
            raise BundleError(
                f"{call}: bundle {str(self.path)!r} has no 'io' section (format version "
                f"{self.manifest.get('format_version')}, or written without "
                "write_bundle(io=...)), so it does not say what input its members take. "
                "Re-export it with this switchnas (switchnas export), or build the members' "
                "input yourself and call the bundle directly")
        if task is not None and self.io.task != task:
            raise BundleError(f"{call}: bundle {str(self.path)!r} is a {self.io.task} bundle, "
                              f"not {task}")
        return self.io

    def preprocess(self, raw: Any) -> torch.Tensor:
        """The active member's input for ``raw``: an image (see :meth:`classify`) as a
        normalised ``(N, C, H, W)`` tensor at the member's resolution, or a text as source
        token ids followed by EOS, ``(1, n)``.

        Raises:
            BundleError: the bundle has no ``io`` section.
            ValueError: ``raw`` is not what the bundle's task takes.
        """
        io = self._need_io(None, "preprocess()")
        if isinstance(io, ImageIO):
            return io.preprocess(raw, self._active, self.device)
        return io.preprocess(raw, self.device)  # type: ignore[no-any-return]

    def postprocess(self, output: Any) -> Any:
        """An answer from a member's output: ``[(label, probability), ...]`` per row of
        logits, or the text of target token ids (a list or 1-D tensor).

        Raises:
            BundleError: the bundle has no ``io`` section.
        """
        return self._need_io(None, "postprocess()").postprocess(output)

    def classify(self, image: Any) -> tuple[str, float]:
        """The active member's most likely class for one image, and its probability.

        Args:
            image: ``HxWxC`` or ``HxW`` numpy array, or ``CxHxW`` / ``HxW`` torch tensor;
                ``uint8`` pixels (0-255) or floats in [0, 1]; resized to the member's
                resolution and normalised as the bundle says.

        Returns:
            ``(label, probability)``.

        Raises:
            BundleError: no ``io`` section, or not an image classifier.
            ValueError: an image of another shape, channel count or dtype.
        """
        io = self._need_io("image_classification", "classify()")

        def run(member: str, module: Any) -> Any:
            x = io.preprocess(image, member, self.device)
            if x.shape[0] != 1:
                raise ValueError(f"classify() takes one image, got a batch of {x.shape[0]}; "
                                 "use preprocess/postprocess for batches")
            with torch.no_grad():
                return module(x)

        # the input is sized for the member that then runs it, even if another thread
        # switches meanwhile
        with self._running() as (member, module):
            logits = run(member, module)
        return io.postprocess(logits)[0]  # type: ignore[no-any-return]

    def translate(self, text: str, *, beam: int | None = None) -> str:
        """``text`` translated by the active member: tokenized with the bundle's
        vocabulary, decoded (beam search, or greedy with ``beam=1``; default the bundle's
        beam) with the super-net's ``generate``, detokenized.

        Raises:
            BundleError: no ``io`` section, not a translation bundle, or a super-net
                without ``generate``.
            ValueError: ``text`` longer than the members' positions, or a bad ``beam``.
        """
        io = self._need_io("translation", "translate()")
        k = io.beam if beam is None else beam
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"beam={beam!r} must be a positive integer")
        src = io.preprocess(text, self.device)
        max_len = io.max_len(int(src.shape[1]))

        def run(module: Any) -> list[list[int]]:
            generate = getattr(module, "generate", None)
            if not callable(generate):
                raise BundleError(f"translate(): {type(module).__name__} has no generate() "
                                  "method to decode with")
            return generate(src, beam=k, max_len=max_len,  # type: ignore[no-any-return]
                            len_penalty=io.len_penalty)

        with self._running() as (_, module):
            ids = run(module)
        return io.postprocess(ids[0])  # type: ignore[no-any-return]

    def extract(self, member_id: str) -> nn.Module:
        """A standalone module (eval mode) computing what member ``member_id`` computes;
        a new copy, independent of the bundle."""
        m = self.member(member_id)
        if self._lean is not None:
            return self._lean.extract(m.id)
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
        """Bytes of tensors held.

        Returns:
            ``"supernet"``, ``"bn_stats"`` (the per-member batch-norm statistics),
            ``"extracted"`` (the extracted members' own copies, ``"extracted"`` mode),
            ``"lean"`` (``"lean"`` mode: the shared weights the members view, the two
            arenas for copied slices and the tensors kept per member as extracted), and
            ``"resident"``: every distinct storage behind all of these, counted once (a
            view costs nothing; the super-net itself holds no weights in lean mode).
        """
        def size(tensors: Any) -> int:
            return sum(t.numel() * t.element_size() for t in tensors)

        bn = [t for d in self._bn.values() for t in d.values()]
        modules = [t for m in self._modules.values() for t in m.state_dict().values()]
        supernet = [t for t in self.supernet.state_dict().values() if not t.is_meta]
        lean = [] if self._lean is None else list(self._lean.tensors())
        return {
            "supernet": size(supernet),
            "bn_stats": size(bn),
            "extracted": size(modules),
            "lean": 0 if self._lean is None else sum(self._lean.memory_bytes().values()),
            "resident": storage_bytes([*supernet, *bn, *modules, *lean]),
        }

    def __repr__(self) -> str:
        return (f"Bundle({str(self.path)!r}, members={self.ids}, active={self._active!r}, "
                f"switch={self.switch!r})")


# -- loading -------------------------------------------------------------------------------
#: the super-net built from a manifest may hold at most this many bytes, or
#: SIZE_RATIO times the bundle's weights file, whichever is larger
MIN_SUPERNET_BYTES = 512 << 20
SIZE_RATIO = 64
#: elements of one member's probe input (batch 2)
MAX_PROBE_ELEMENTS = 1 << 24


def load(path: str | os.PathLike[str], device: str | torch.device = "cpu", *,
         switch: SwitchMode = "lean", cache: int | None = None, verify: bool = True,
         trust_target: bool = False) -> Bundle:
    """Load a bundle folder written by :func:`switchnas.runtime.write_bundle`.

    Nothing the bundle names is imported or called: its super-net is a registered name
    (``switchnas.supernets`` entry points, :func:`register_supernet`). In order, before
    any weight is read: the manifest is parsed with limits and validated; every file's
    size and SHA-256 are checked; the super-net class is looked up and checked, its
    keyword arguments checked against its signature and bounds; it is built on the
    ``meta`` device (no memory) to size it, validate every member's config and compute
    the exact shape and dtype of every tensor the members read; the weights file's
    header is checked against those before safetensors reads it. Then the super-net is
    built, filled, and (``verify``) each member's output on its probe input is compared
    with the fingerprint recorded at export. See ``SECURITY.md``.

    Args:
        path: the bundle folder, or a single-file archive of it (:func:`pack_bundle`).
        device: where the weights go.
        switch: ``"lean"``, ``"extracted"`` or ``"inplace"`` (see :class:`Bundle`).
        cache: in ``"extracted"`` mode, how many members to keep extracted (default all).
        verify: compare each member's output on its probe input (one forward per member,
            on the CPU) with the fingerprint recorded at export; ``False`` skips it.
        trust_target: also accept a manifest naming its super-net by import path
            (``{"target": "module:Class"}``). Importing runs that module's code: pass
            ``True`` only for bundles from a source you trust as much as your own code.

    Raises:
        ValueError: ``switch`` is not one of :data:`SWITCH_MODES`, or ``cache`` with
            another mode than ``"extracted"``.
        BundleError: a missing, truncated, tampered, foreign, malformed or wrong-version
            bundle, an unregistered super-net, arguments it does not take or out of
            bounds, weights that do not cover its members exactly, or a member whose
            output differs from its fingerprint. The message names the file, field or
            member.
    """
    if switch not in SWITCH_MODES:
        raise ValueError(f"switch={switch!r} is not a switching mode; choose one of "
                         f"{', '.join(repr(m) for m in SWITCH_MODES)}")
    if cache is not None and switch != "extracted":
        raise ValueError(f"cache={cache!r} applies to switch='extracted' only (members kept "
                         f"extracted), not switch={switch!r}")
    root = Path(path)
    src = open_source(root)
    manifest = src.manifest
    for name, entry in manifest["files"].items():
        src.check(name, entry["bytes"], entry["sha256"])

    cls, kwargs, what = resolve_supernet(manifest["supernet"], trust_target=trust_target)
    plan = _plan(cls, kwargs, what, manifest)
    header = src.header(WEIGHTS)
    _check_header(header, plan, src.where(WEIGHTS), manifest)
    tensors = src.tensors(WEIGHTS)
    _check_loaded(tensors, header, src.where(WEIGHTS))

    try:
        net = cls(**kwargs)
    except Exception as exc:  # noqa: BLE001 - registered code refusing the arguments
        raise BundleError(f"cannot build {what} with {kwargs!r:.300}: "
                          f"{type(exc).__name__}: {exc}") from exc
    shared = {k[len(SHARED_PREFIX):]: v for k, v in tensors.items()
              if k.startswith(SHARED_PREFIX)}
    copy_slices(net, shared)
    members = []
    bn: dict[str, dict[str, torch.Tensor]] = {}
    for e, cfg in zip(manifest["members"], plan.configs, strict=True):
        members.append(Member(id=e["id"], index=e["index"], config=cfg,
                              accuracy=float(e["accuracy"]),
                              latency_ms=float(e["latency_ms"]),
                              latency={k: float(v) for k, v in e["latency"].items()},
                              energy_mj=e.get("energy_mj")))
        p = bn_prefix(e["index"])
        bn[e["id"]] = {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}
    net.eval()
    io = load_io(manifest.get("io"), src.bytes, net)
    if verify:
        _verify(net, members, bn, manifest)
    dev = torch.device(device)
    layouts, bank = None, None
    if switch == "lean":
        layouts = _layouts(net, members, shared, bn, _plan_key(cls, kwargs, manifest))
        bank = {k: _fresh(v, dev) for k, v in shared.items()}
    del tensors, shared
    net.to(dev)
    bn = {mid: {k: _fresh(v, dev) for k, v in d.items()} for mid, d in bn.items()}
    return Bundle(supernet=net, members=members, bn=bn, manifest=manifest, path=root,
                  device=dev, switch=switch, cache=cache, io=io, bank=bank, layouts=layouts)


def _fresh(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` copied into its own allocation on ``device``. Tensors read from the weights
    file share one buffer at arbitrary byte offsets, and lean members compute on views of
    these: a BLAS kernel given a misaligned operand may sum in another order (seen on AMD
    EPYC), so a member would no longer equal its extracted sub-network bit for bit."""
    out = torch.empty(t.shape, dtype=t.dtype, device=device)
    out.copy_(t)
    return out


def resolve_supernet(spec: Mapping[str, Any], *, trust_target: bool = False
                     ) -> tuple[type, dict[str, Any], str]:
    """The class a manifest's ``supernet`` entry names and its checked keyword arguments.

    ``{"name": ...}`` is looked up in the registry; ``{"target": "module:Class"}`` is
    imported only with ``trust_target``. Nothing is instantiated.

    Returns:
        ``(class, kwargs, description for messages)``.

    Raises:
        BundleError: see :func:`load`.
    """
    if "name" in spec:
        what = f"super-net {spec['name']!r}"
        cls = get_supernet(str(spec["name"]))
    else:
        target = str(spec["target"])
        what = f"super-net {target!r}"
        if not trust_target:
            raise BundleError(f"bundle names its super-net by the import path {target!r:.100}"
                              " instead of a registered name; loading it would import and run "
                              "that code. Pass trust_target=True only if you trust the "
                              "bundle's source, or register the class and re-export")
        cls = import_target(target)
    return cls, check_kwargs(cls, spec["kwargs"], what), what


@dataclass
class _Plan:
    configs: list[dict[str, Any]]
    shared: dict[str, tuple[int, ...]]
    bn: list[dict[str, tuple[int, ...]]]
    dtypes: dict[str, torch.dtype]


_PLANS: dict[tuple[Any, ...], _Plan] = {}  # a few recent plans: loading a bundle again is cheap
_PLANS_LOCK = threading.Lock()


def _plan_key(cls: type, kwargs: dict[str, Any], manifest: Mapping[str, Any]
              ) -> tuple[Any, ...]:
    return (cls, json.dumps(kwargs, sort_keys=True),
            json.dumps([e["config"] for e in manifest["members"]], sort_keys=True),
            manifest["weights"]["layout"], manifest["files"][WEIGHTS]["bytes"])


_LAYOUTS: dict[tuple[Any, ...], list[Any]] = {}  # lean mode's traced layouts, as _PLANS


def _layouts(net: nn.Module, members: list[Member], bank: Mapping[str, torch.Tensor],
             bn: Mapping[str, Mapping[str, torch.Tensor]], key: tuple[Any, ...]) -> list[Any]:
    """Where each member's tensors come from (``"lean"`` mode); kept like plans."""
    member_bases = [bases(bank, bn[m.id]) for m in members]
    key = (*key, json.dumps([sorted(b.items()) for b in member_bases]))
    with _PLANS_LOCK:
        cached = _LAYOUTS.get(key)
    if cached is not None:
        return cached
    try:
        layouts = trace_layouts(net, [m.config for m in members], member_bases)
    except Exception as exc:  # noqa: BLE001 - registered code failing to extract
        raise BundleError(f"switch='lean': cannot trace the members' weights: "
                          f"{type(exc).__name__}: {exc}") from exc
    with _PLANS_LOCK:
        while len(_LAYOUTS) >= 8:
            _LAYOUTS.pop(next(iter(_LAYOUTS)))
        _LAYOUTS[key] = layouts
    return layouts


def _plan(cls: type, kwargs: dict[str, Any], what: str, manifest: Mapping[str, Any]) -> _Plan:
    """Build ``cls`` on the meta device: size it, validate the members' configs and
    compute the tensors the bundle must hold, all before any allocation. The result
    depends only on the class, its arguments, the configs, the layout and the weights'
    size, and is kept for the next load of the same bundle."""
    key = _plan_key(cls, kwargs, manifest)
    with _PLANS_LOCK:
        cached = _PLANS.get(key)
    if cached is not None:
        return copy.deepcopy(cached)
    plan = _make_plan(cls, kwargs, what, manifest)
    with _PLANS_LOCK:
        while len(_PLANS) >= 8:
            _PLANS.pop(next(iter(_PLANS)))
        _PLANS[key] = plan
    return copy.deepcopy(plan)


def _make_plan(cls: type, kwargs: dict[str, Any], what: str,
               manifest: Mapping[str, Any]) -> _Plan:
    sliced = callable(getattr(cls, "used_extents", None)) and callable(
        getattr(cls, "used_weight_slices", None))
    layout = manifest["weights"]["layout"]
    if layout != ("slices" if sliced else "full"):
        raise BundleError(f"bundle weights layout {layout!r} does not fit {what}, whose "
                          f"bundles are {'slices' if sliced else 'full'!r}")
    budget = max(MIN_SUPERNET_BYTES, SIZE_RATIO * int(manifest["files"][WEIGHTS]["bytes"]))
    with torch.device("meta"):
        try:
            meta = cls(**kwargs)
        except Exception as exc:  # noqa: BLE001 - registered code refusing the arguments
            raise BundleError(f"cannot build {what} with {kwargs!r:.300}: "
                              f"{type(exc).__name__}: {exc}") from exc
        nbytes = sum(t.numel() * t.element_size() for t in meta.state_dict().values())
        if nbytes > budget:
            raise BundleError(f"{what} with {kwargs!r:.300} would hold {nbytes} bytes, more "
                              f"than {budget} (the larger of {MIN_SUPERNET_BYTES} and "
                              f"{SIZE_RATIO}x the bundle's weights)")
        configs = []
        for e in manifest["members"]:
            try:
                cfg = meta.space.validate(e["config"])
                n = probe_input(meta, cfg).numel()
            except Exception as exc:  # noqa: BLE001 - any refusal of a config
                raise BundleError(f"member {e['id']!r}: {exc}") from exc
            if n > MAX_PROBE_ELEMENTS:
                raise BundleError(f"member {e['id']!r}: its input has {n} elements, more "
                                  f"than {MAX_PROBE_ELEMENTS}")
            configs.append(cfg)
        try:
            shared, bn, dtypes = plan_layout(meta, configs, sliced=sliced)
        except Exception as exc:  # noqa: BLE001 - a super-net that cannot trace a member
            raise BundleError(f"{what}: cannot compute what the members read: "
                              f"{type(exc).__name__}: {exc}") from exc
    return _Plan(configs, shared, bn, dtypes)


def _check_header(header: Mapping[str, tuple[str, tuple[int, ...]]], plan: _Plan, where: str,
                  manifest: Mapping[str, Any]) -> None:
    """Every tensor the members read, present with exactly its shape and dtype, and
    nothing else."""
    ids = [e["id"] for e in manifest["members"]]
    expected: dict[str, tuple[tuple[int, ...], str, str]] = {}  # name -> shape, dtype, who
    for k, s in plan.shared.items():
        expected[SHARED_PREFIX + k] = (s, DTYPE_NAMES.get(plan.dtypes[k], "?"), "the members")
    for i, member_bn in enumerate(plan.bn):
        for k, s in member_bn.items():
            expected[bn_prefix(i) + k] = (s, DTYPE_NAMES.get(plan.dtypes[k], "?"),
                                          f"member {ids[i]!r}")
    stray = sorted(set(header) - set(expected))
    if stray:
        k = stray[0]
        if k.startswith(SHARED_PREFIX) and k[len(SHARED_PREFIX):] not in plan.dtypes:
            why = "names no tensor of the super-net"
        else:
            why = "belongs to no member: no member reads it"
        raise BundleError(f"bundle weights {where!r}: tensor {k[:80]!r} {why} "
                          f"({len(stray)} such tensors)")
    missing = sorted(set(expected) - set(header))
    if missing:
        k = missing[0]
        raise BundleError(f"bundle weights {where!r} lack tensor {k!r}, which "
                          f"{expected[k][2]} read ({len(missing)} missing)")
    for k, (shape, dtype, who) in expected.items():
        got_dtype, got_shape = header[k]
        if got_shape != shape:
            raise BundleError(f"bundle weights {where!r}: tensor {k!r} has shape "
                              f"{list(got_shape)}, which does not fit what {who} read: "
                              f"{list(shape)}")
        if got_dtype != dtype:
            raise BundleError(f"bundle weights {where!r}: tensor {k!r} is {got_dtype}, "
                              f"expected {dtype}")


def _check_loaded(tensors: Mapping[str, torch.Tensor],
                  header: Mapping[str, tuple[str, tuple[int, ...]]], where: str) -> None:
    if set(tensors) != set(header) or any(
            (DTYPE_NAMES.get(t.dtype), tuple(t.shape)) != header[k] for k, t in tensors.items()):
        raise BundleError(f"bundle weights {where!r} changed while being read")


@torch.no_grad()
def _verify(net: Any, members: list[Member], bn: Mapping[str, Mapping[str, torch.Tensor]],
            manifest: Mapping[str, Any]) -> None:
    for m, e in zip(members, manifest["members"], strict=True):
        copy_slices(net, bn[m.id])
        try:
            net.activate(m.config)
            x = probe_input(net, m.config)
            got = fingerprint(x, net(x))
        except Exception as exc:  # noqa: BLE001 - registered code failing on this bundle
            raise BundleError(f"bundle member {m.id!r} fails its fingerprint check: "
                              f"{type(exc).__name__}: {exc}") from exc
        why = compare_fingerprints(e["fingerprint"], got)
        if why is not None:
            raise BundleError(f"bundle member {m.id!r} fails its fingerprint check: {why}")


def pack_bundle(folder: str | os.PathLike[str], archive: str | os.PathLike[str]) -> Path:
    """Write the bundle ``folder`` as one uncompressed tar file ``archive`` (atomically;
    the folder's manifest and checksums are checked first). :func:`load` reads either
    form."""
    src = Folder(Path(folder))
    for name, entry in src.manifest["files"].items():
        src.check(name, entry["bytes"], entry["sha256"])
    out = Path(archive)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    try:
        with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in [MANIFEST, *sorted(src.manifest["files"])]:
                tar.add(src.root / name, arcname=name, recursive=False)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out
