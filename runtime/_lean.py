"""Lean switching: members whose weights are views of the super-net's tensors.

A member's extracted sub-network reads most of its weights as plain leading slices of the
super-net's tensors. Where such a slice is contiguous (a slice of the first dimension, a
whole tensor, any 1-D slice) the member's module holds a view of the super-net's tensor:
no memory. Its batch-norm statistics are views of the bundle's per-member statistics. A
slice that is not contiguous (fewer input channels than the super-net's tensor) is copied
at switch time into one of two preallocated arenas, so no switch allocates and the member
runs on contiguous tensors, exactly as its extracted sub-network does. What is neither (OFA's
kernel transforms, tensors extraction creates) is kept per member, as extracted.

Which tensor of the super-net each of a member's tensors comes from is found without
knowing the super-net: extraction runs once on a copy of the super-net whose elements hold
codes (their position among all its elements; for a super-net too large for exact float32
codes, two copies: each element's index in its tensor, each tensor's number), and the codes
read back from the extracted tensors give the source tensor and the strides of the slice. Every view is then
checked against the real extracted tensor (``torch.equal``), so a wrong guess only costs
memory, never an output.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["LeanSwitch", "bases", "storage_bytes", "trace_layouts"]

#: arena slices start at multiples of this many elements (64 bytes for float32)
_ALIGN = 16
#: largest element index a float32 code holds exactly
_EXACT_F32 = 1 << 24
_FOREACH_COPY: Callable[..., Any] | None = getattr(torch, "_foreach_copy_", None)


def storage_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of the distinct storages behind ``tensors``: a storage that several tensors
    view (a slice, a tied weight) is counted once, and whole (a view keeps all of it)."""
    seen: dict[tuple[str, int], int] = {}
    for t in tensors:
        if t.is_meta:
            continue  # holds no memory
        s = t.untyped_storage()
        seen[(str(t.device), s.data_ptr())] = s.nbytes()
    return sum(seen.values())


def _named_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = dict(module.named_parameters(remove_duplicate=False))
    out.update(module.named_buffers(remove_duplicate=False))
    return out


# -- where each tensor of a member comes from -------------------------------------------------
@dataclass(frozen=True)
class _Source:
    """A member tensor as ``as_strided`` of a source tensor (contiguous, own layout)."""

    key: str  #: super-net state key
    bn: bool  #: from the member's batch-norm statistics, not the super-net
    strides: tuple[int, ...]
    offset: int


_Layout = dict[str, _Source | None]  # member tensor name -> source (None: kept as extracted)


def _fill(net: nn.Module, codes: Callable[[int, int], torch.Tensor]) -> None:
    """Fill each state tensor ``i`` (of ``n`` elements) with ``codes(i, n)``."""
    with torch.no_grad():
        for i, t in enumerate(net.state_dict().values()):
            t.copy_(codes(i, t.numel()).reshape(t.shape))


def _integers(t: torch.Tensor, high: int) -> torch.Tensor | None:
    """``t``'s values as int64 if all are integers in ``[1, high]``, else None."""
    c = t.detach().reshape(-1).double().cpu()
    if c.numel() == 0 or not bool((c == c.round()).all()):
        return None
    if float(c.min()) < 1 or float(c.max()) > high:
        return None
    return c.long()


def _strided(pos: torch.Tensor) -> tuple[tuple[int, ...], int] | None:
    """(strides, offset) such that ``pos`` is ``arange(n).as_strided(shape, strides,
    offset)``, or None."""
    if pos.numel() == 0:
        return None
    flat = pos.reshape(-1)
    offset = int(flat[0])
    strides = []
    for d, n in enumerate(pos.shape):
        if n > 1:
            idx = [0] * pos.dim()
            idx[d] = 1
            strides.append(int(pos[tuple(idx)]) - offset)
        else:
            strides.append(0)
    if any(s < 0 for s in strides):
        return None
    expect = torch.full(pos.shape, offset, dtype=torch.int64)
    for d, (n, s) in enumerate(zip(pos.shape, strides, strict=True)):
        shape = [1] * pos.dim()
        shape[d] = n
        expect = expect + (torch.arange(n, dtype=torch.int64) * s).reshape(shape)
    if not torch.equal(expect, pos):
        return None
    return tuple(strides), offset


def _locate(k: int, pos: torch.Tensor, shape: tuple[int, ...], keys: Sequence[str],
            full: Mapping[str, tuple[int, ...]], bases: Mapping[str, tuple[tuple[int, ...], bool]],
            ) -> _Source | None:
    """The source of a member tensor of ``shape`` whose elements are elements ``pos`` (flat
    positions) of the super-net's tensor number ``k``, or None."""
    key = keys[k]
    if key not in bases:
        return None
    (own, is_bn), whole = bases[key], full[key]
    if own != whole:  # position in the base: a leading slice of the super-net's tensor
        if len(own) != len(whole):
            return None
        multi = torch.stack(torch.unravel_index(pos, whole), dim=1)
        if not bool((multi < torch.tensor(own)).all()):
            return None
        pos = torch.zeros_like(pos)
        for d, n in enumerate(own):
            pos = pos * n + multi[:, d]
    found = _strided(pos.reshape(shape))
    if found is None:
        return None
    return _Source(key=key, bn=is_bn, strides=found[0], offset=found[1])


def trace_layouts(supernet: nn.Module, configs: Sequence[Mapping[str, Any]],
                  bases: Sequence[Mapping[str, tuple[tuple[int, ...], bool]]]
                  ) -> list[_Layout]:
    """Per config, where each tensor of its extracted sub-network comes from (see the
    module's docstring).

    Args:
        supernet: copied once or twice (its values do not matter).
        configs: the members' configs.
        bases: per config, the tensors its tensors may view: super-net state key ->
            (shape of that tensor, a leading slice of the super-net's; whether it is the
            member's own batch-norm statistics rather than a shared weight).

    Returns:
        Per config, member tensor name -> where it comes from (None: not a view of any
        base). Depends only on the super-net's class and arguments, the configs and
        ``bases``, never on weight values.
    """
    state = supernet.state_dict()
    keys = list(state)
    full = {k: tuple(t.shape) for k, t in state.items()}
    sizes = [t.numel() for t in state.values()]
    starts = torch.tensor([0, *sizes]).cumsum(0)
    total = int(starts[-1])
    exact = all(t.dtype in (torch.float32, torch.float64) or not t.is_floating_point()
                for t in state.values())
    if exact and total < _EXACT_F32:
        # one copy: each element's code is its position among all the super-net's elements
        one = copy.deepcopy(supernet)
        _fill(one, lambda i, n: torch.arange(int(starts[i]) + 1, int(starts[i]) + n + 1,
                                             dtype=torch.float64))

        def decode(cfg: Mapping[str, Any]) -> dict[str, tuple[int, torch.Tensor] | None]:
            out: dict[str, tuple[int, torch.Tensor] | None] = {}
            for name, t in _named_tensors(one.extract(cfg)).items():  # type: ignore[operator]
                g = _integers(t, total)
                if g is None:
                    out[name] = None
                    continue
                g = g - 1
                ks = torch.searchsorted(starts, g, right=True) - 1
                k = int(ks[0])
                out[name] = ((k, (g - int(starts[k])).reshape(t.shape))
                             if bool((ks == k).all()) else None)
            return out
    else:
        # two copies: each element's index in its tensor; each tensor's number
        by_idx, by_tid = copy.deepcopy(supernet), copy.deepcopy(supernet)
        _fill(by_idx, lambda i, n: torch.arange(1, n + 1, dtype=torch.float64))
        _fill(by_tid, lambda i, n: torch.full((n,), i + 1, dtype=torch.float64))

        def decode(cfg: Mapping[str, Any]) -> dict[str, tuple[int, torch.Tensor] | None]:
            a = _named_tensors(by_idx.extract(cfg))  # type: ignore[operator]
            b = _named_tensors(by_tid.extract(cfg))  # type: ignore[operator]
            out: dict[str, tuple[int, torch.Tensor] | None] = {}
            for name, t in a.items():
                ids = _integers(b[name], len(keys)) if name in b else None
                if ids is None or t.shape != b[name].shape or not bool((ids == ids[0]).all()):
                    out[name] = None
                    continue
                k = int(ids[0]) - 1
                n = sizes[k]
                pos = _integers(t, n) if n < _EXACT_F32 or t.dtype == torch.float64 else None
                out[name] = None if pos is None else (k, (pos - 1).reshape(t.shape))
            return out

    layouts = []
    for cfg, member_bases in zip(configs, bases, strict=True):
        layouts.append({name: None if d is None else
                        _locate(d[0], d[1].reshape(-1), tuple(d[1].shape), keys, full,
                                member_bases)
                        for name, d in decode(cfg).items()})
    return layouts


# -- the switch ----------------------------------------------------------------------------------
@dataclass
class _Arena:
    """Contiguous buffers (one per dtype) holding one member's copied slices."""

    buffers: dict[torch.dtype, torch.Tensor]
    holder: str | None = None  #: member whose slices it holds
    filling: str | None = None  #: member being copied in (not usable yet)
    readers: int = 0  #: calls running on it
    used: int = 0  #: switch counter when last made active (least recently used)


@dataclass
class _Lean:
    """One member: its modules (one per arena, or one) and the copies that fill an arena."""

    modules: list[nn.Module]
    #: per arena, (destination in the arena, source view) pairs
    gathers: list[list[tuple[torch.Tensor, torch.Tensor]]] = field(default_factory=list)
    own: list[torch.Tensor] = field(default_factory=list)  #: tensors kept as extracted


class LeanSwitch:
    """Members as modules of views (see the module's docstring) and a thread-safe switch.

    Switching to a member whose copied slices are already in an arena (it was active
    before, or :meth:`prefetch` prepared it) only swaps a reference; otherwise the
    slices are copied into the arena that the active member does not use, after the calls
    still running on that arena end. A call runs entirely with the member that was active
    when it started.

    Args:
        supernet: the super-net, traced when ``layouts`` is omitted (not kept).
        members: ``(id, config)`` per member.
        bank: the shared weights the members' modules view: super-net state key ->
            a contiguous leading slice of that tensor (or all of it); must not change.
        bn: per member id, its batch-norm statistics (state key -> contiguous tensor of
            the leading slice the member reads), viewed likewise.
        extract: a standalone module (eval mode) of a member id, with its real weights.
        layouts: :func:`trace_layouts` of the members (computed when omitted).
    """

    def __init__(self, *, supernet: nn.Module, members: Sequence[tuple[str, Mapping[str, Any]]],
                 bank: Mapping[str, torch.Tensor], bn: Mapping[str, Mapping[str, torch.Tensor]],
                 extract: Callable[[str], nn.Module], layouts: Sequence[_Layout] | None = None):
        state = self._bank = dict(bank)
        if layouts is None:
            layouts = trace_layouts(supernet, [c for _, c in members],
                                    [bases(bank, bn[i]) for i, _ in members])
        self._cond = threading.Condition(threading.Lock())
        self._members: dict[str, _Lean] = {}
        gathers: dict[str, list[tuple[str, torch.Tensor]]] = {}  # (name, source view)
        sizes: dict[torch.dtype, int] = {}
        found: dict[str, tuple[nn.Module, list[tuple[str, torch.Tensor]],
                               list[tuple[str, torch.Tensor]]]] = {}
        for (mid, _), layout in zip(members, layouts, strict=True):
            module = extract(mid)
            views: list[tuple[str, torch.Tensor]] = []
            own: list[tuple[str, torch.Tensor]] = []
            gathers[mid] = []
            need: dict[torch.dtype, int] = {}
            seen: set[int] = set()
            for name, t in _named_tensors(module).items():
                if id(t) in seen:
                    continue  # a tied weight: rebinding it once rebinds every name
                seen.add(id(t))
                view = _view(t, layout.get(name), state, bn[mid])
                if view is None:
                    own.append((name, t))
                elif view.is_contiguous():
                    views.append((name, view))
                else:
                    gathers[mid].append((name, view))
                    need[t.dtype] = need.get(t.dtype, 0) + _aligned(t.numel())
            for dt, n in need.items():
                sizes[dt] = max(sizes.get(dt, 0), n)
            found[mid] = (module, views, own)
        _share_equal([t for _, _, own in found.values() for _, t in own])
        for mid, (module, views, own) in found.items():
            named = _named_tensors(module)
            for name, v in views:
                named[name].data = v
            modules = [module]
            if gathers[mid]:
                # a second module for the second arena: the same tensor objects, but
                # its own copied slices
                copied = {id(named[name]) for name, _ in gathers[mid]}
                memo: dict[int, Any] = {id(t): t for t in named.values() if id(t) not in copied}
                modules.append(copy.deepcopy(module, memo))
            self._members[mid] = _Lean(modules=modules, own=[t for _, t in own])
        device = next(iter(state.values())).device if state else torch.device("cpu")
        self._arenas = [_Arena({dt: torch.empty(n, dtype=dt, device=device)
                                for dt, n in sizes.items()}) for _ in range(2 if sizes else 0)]
        for mid, lean in self._members.items():
            if not gathers[mid]:
                continue
            for module, arena in zip(lean.modules, self._arenas, strict=True):
                named = _named_tensors(module)
                offsets = dict.fromkeys(arena.buffers, 0)
                copies = []
                for name, src in gathers[mid]:
                    dt, n = src.dtype, src.numel()
                    dst = arena.buffers[dt][offsets[dt]:offsets[dt] + n].view(src.shape)
                    offsets[dt] += _aligned(n)
                    copies.append((dst, src))
                    named[name].data = dst
                lean.gathers.append(copies)
        self._switches = 0
        self._active = members[0][0]
        self._slot: int | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.activate(self._active)

    # -- switching ---------------------------------------------------------------------------
    @property
    def active(self) -> str:
        return self._active

    def _find(self, mid: str) -> int | None:
        for i, a in enumerate(self._arenas):
            if a.holder == mid and a.filling is None:
                return i
        return None

    def _spare(self) -> int:
        """The arena to fill next: not the active member's; the least recently used."""
        free = [i for i in range(len(self._arenas)) if i != self._slot]
        return min(free, key=lambda i: self._arenas[i].used)

    def _claim(self, mid: str) -> int | None:
        """Under the lock: an arena holding ``mid``, or one claimed to be filled with it
        (marked ``filling``, no readers), waiting for running calls or another thread's
        copy as needed; None if ``mid`` needs no arena."""
        if not self._members[mid].gathers:
            return None
        while True:
            i = self._find(mid)
            if i is not None:
                return i
            if any(a.filling == mid for a in self._arenas):
                self._cond.wait()
                continue
            i = self._spare()
            a = self._arenas[i]
            if a.readers or a.filling is not None:
                self._cond.wait()
                continue
            a.holder, a.filling = None, mid
            return i

    def _fill(self, i: int, mid: str) -> None:
        pairs = self._members[mid].gathers[i]
        with torch.no_grad():
            if _FOREACH_COPY is not None:  # one call for all the slices: less overhead
                _FOREACH_COPY([d for d, _ in pairs], [s for _, s in pairs])
                return
            for dst, src in pairs:
                dst.copy_(src)

    def _finish(self, i: int, mid: str, ok: bool) -> None:
        a = self._arenas[i]
        a.holder, a.filling = (mid if ok else None), None
        self._cond.notify_all()

    def activate(self, mid: str) -> None:
        """Make ``mid`` (a known member id) the active member."""
        with self._cond:
            i = self._claim(mid)
            if i is not None and self._arenas[i].filling == mid:
                ok = False
                try:  # under the lock: a call never sees a half-filled arena
                    self._fill(i, mid)
                    ok = True
                finally:
                    self._finish(i, mid, ok)
            self._switches += 1
            if i is not None:
                self._arenas[i].used = self._switches
            self._active, self._slot = mid, i

    def prefetch(self, mid: str) -> Future[None]:
        """Copy ``mid``'s slices into the spare arena in a background thread, so that a
        later :meth:`activate` of it only swaps a reference. Returns the future of the
        copy (done at once if nothing needs copying)."""
        done: Future[None] = Future()
        with self._cond:
            if (not self._members[mid].gathers or self._find(mid) is not None
                    or any(a.filling == mid for a in self._arenas)):
                done.set_result(None)
                return done
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="lean-prefetch")
            executor = self._executor

        def work() -> None:
            with self._cond:
                i = self._claim(mid)
                if i is None or self._arenas[i].filling != mid:
                    return
            ok = False
            try:  # outside the lock: the claimed arena has no readers and is not active
                self._fill(i, mid)
                ok = True
            finally:
                with self._cond:
                    self._finish(i, mid, ok)

        return executor.submit(work)

    @contextmanager
    def use(self) -> Iterator[tuple[str, nn.Module]]:
        """``(member id, module)`` of the active member; its arena is not refilled until
        the block ends."""
        with self._cond:
            mid, i = self._active, self._slot
            lean = self._members[mid]
            if i is not None:
                self._arenas[i].readers += 1
        try:
            yield mid, lean.modules[i or 0]
        finally:
            if i is not None:
                with self._cond:
                    self._arenas[i].readers -= 1
                    self._cond.notify_all()

    def extract(self, mid: str) -> nn.Module:
        """A standalone copy of member ``mid``'s module: compact copies of its tensors,
        independent of the bank and the arenas."""
        with self._cond:
            lean = self._members[mid]
            module = lean.modules[0]
            # module 0's arena tensors may hold another member's slices: copy the sources
            gathered = {(dst.data_ptr(), tuple(dst.shape)): src
                        for dst, src in (lean.gathers[0] if lean.gathers else [])}
            memo: dict[int, Any] = {}
            for t in _named_tensors(module).values():
                if id(t) in memo:
                    continue
                src = gathered.get((t.data_ptr(), tuple(t.shape)), t)
                data = src.detach().clone(memory_format=torch.contiguous_format)
                memo[id(t)] = (nn.Parameter(data, requires_grad=t.requires_grad)
                               if isinstance(t, nn.Parameter) else data)
            return copy.deepcopy(module, memo)

    # -- memory ------------------------------------------------------------------------------
    def tensors(self) -> Iterator[torch.Tensor]:
        """Every tensor the members' modules and the arenas hold (views included)."""
        for lean in self._members.values():
            for module in lean.modules:
                yield from _named_tensors(module).values()
        for a in self._arenas:
            yield from a.buffers.values()
        yield from self._bank.values()

    def memory_bytes(self) -> dict[str, int]:
        """``{"bank": ..., "arenas": ..., "own": ...}``: bytes of the shared weights, of
        the two arenas, and of the tensors kept per member as extracted (the members'
        batch-norm statistics are not counted here)."""
        return {"bank": storage_bytes(self._bank.values()),
                "arenas": sum(b.numel() * b.element_size() for a in self._arenas
                              for b in a.buffers.values()),
                "own": storage_bytes(t for lean in self._members.values() for t in lean.own)}

    def close(self) -> None:
        """Stop the prefetch thread (a pending copy finishes first)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


def bases(bank: Mapping[str, torch.Tensor], bn: Mapping[str, torch.Tensor]
          ) -> dict[str, tuple[tuple[int, ...], bool]]:
    """The ``bases`` argument of :func:`trace_layouts` for one member."""
    out = {k: (tuple(v.shape), False) for k, v in bank.items()}
    out.update((k, (tuple(v.shape), True)) for k, v in bn.items())
    return out


def _view(t: torch.Tensor, src: _Source | None, state: Mapping[str, torch.Tensor],
          bn: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
    """The view of ``src`` that equals ``t`` exactly, or None."""
    if src is None:
        return None
    base = bn.get(src.key) if src.bn else state.get(src.key)
    if base is None or not base.is_contiguous() or base.dtype != t.dtype:
        return None
    try:
        view = base.as_strided(tuple(t.shape), src.strides, base.storage_offset() + src.offset)
    except RuntimeError:
        return None
    if view.is_contiguous():  # the strides extraction gives (size-1 dimensions included)
        view = base.reshape(-1)[src.offset:src.offset + view.numel()].view(t.shape)
    return view if torch.equal(view, t) else None


def _share_equal(tensors: list[torch.Tensor]) -> None:
    """Make each tensor a view of an earlier one whose leading slice it equals (members
    often keep the same transformed kernels, or a slice of another's)."""
    kept: list[torch.Tensor] = []
    for t in sorted(tensors, key=lambda t: -t.numel()):
        for u in kept:
            if (u.dtype == t.dtype and u.device == t.device and u.dim() == t.dim()
                    and u.shape[1:] == t.shape[1:] and (t.dim() == 0 or u.shape[0] >= t.shape[0])
                    and u.is_contiguous()):
                view = u if t.dim() == 0 else u[:t.shape[0]]
                if torch.equal(view, t):
                    t.data = view
                    break
        else:
            kept.append(t)


def _aligned(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN
