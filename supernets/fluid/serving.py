"""Distributed inference over device processes: the Fluid dispatcher and the baselines'.

Engine: plain ``torch.distributed`` (gloo, TCP on loopback). The dispatcher (the calling
process) holds a ``TCPStore``; every device is a spawned process with one torch thread that
holds its part of the network and joins a two-rank gloo process group with the dispatcher
(its own group, so that a failed device takes no one else down and a returning device gets
a fresh group). A message is two tensor sends: a fixed-size ``int64`` header (operation,
request id, shapes) and the float payload.

:class:`FluidServer` (one column of a :class:`~.net.FluidNet` per device):

* ``mode="ht"`` (High-Throughput): every request goes to whichever live device is free and
  is answered by that device's column alone.
* ``mode="ha"`` (High-Accuracy): every request goes to every live device; its answer is the
  mean of their logits.
* **Failure detection, bound.** A device whose process exits is declared failed at once
  when its connection closes, and at the latest ``heartbeat_s`` (default 0.1 s) later by
  the process monitor; a device that is alive but does not answer a request within
  ``timeout_s`` (default 10 s) is declared failed and killed.
* **Re-dispatch.** The requests the failed device had accepted go back to the front of
  the queue (HT), or (HA) are answered by the other devices' outputs; nothing accepted is
  dropped while one device is live.
* **Mode switch.** On a failure an HA server switches to HT (``on_failure="ht"``, the
  default) or keeps combining the survivors (``"ha"``); :meth:`FluidServer.revive` starts
  the device again, takes it back, and restores the requested mode once all are back.

:class:`PipelineServer` runs the baselines: a chain of stages, one per device, each
request passing device 1, 2, ... in turn (pipelined: every device works on another request
at the same time). The static network split layer-wise stops on any failure; the nested
dynamic network keeps serving its sub-network of the devices before the failed one and
stops when the first device fails. A stopped server fails every pending request with
:class:`DeviceFailure` and refuses new ones.
"""

from __future__ import annotations

import contextlib
import datetime
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from .baselines import GroupedCNN
from .net import FluidNet

__all__ = ["DeviceFailure", "FluidServer", "PipelineServer", "dynamic_server", "static_server"]

_HEADER = 64
_RUN, _STOP = 1, 0


class DeviceFailure(RuntimeError):
    """A request could not be answered: the devices it needed failed."""


# -- the wire --------------------------------------------------------------------------
class _Link:
    """One side of a dispatcher-device gloo pair: messages of float tensors."""

    def __init__(self, store: Any, prefix: str, rank: int, timeout_s: float):
        self.pg: Any = dist.ProcessGroupGloo(dist.PrefixStore(prefix, store), rank, 2,
                                        datetime.timedelta(seconds=timeout_s))
        self.peer = 1 - rank

    def send(self, op: int, rid: int, tensors: Sequence[torch.Tensor]) -> None:
        head = [op, rid, len(tensors)]
        for t in tensors:
            head += [t.dim(), *t.shape]
        if len(head) > _HEADER:
            raise ValueError(f"message of {len(tensors)} tensors does not fit the header")
        header = torch.zeros(_HEADER, dtype=torch.int64)
        header[:len(head)] = torch.tensor(head, dtype=torch.int64)
        self.pg.send([header], self.peer, 0).wait()
        if tensors:
            payload = torch.cat([t.detach().reshape(-1).float() for t in tensors])
            self.pg.send([payload], self.peer, 1).wait()

    def recv(self, timeout_s: float | None = None) -> tuple[int, int, list[torch.Tensor]]:
        kw = {} if timeout_s is None else {"timeout": datetime.timedelta(seconds=timeout_s)}
        header = torch.zeros(_HEADER, dtype=torch.int64)
        self.pg.recv([header], self.peer, 0).wait(**kw)
        h = header.tolist()
        op, rid, n = h[0], h[1], h[2]
        shapes, pos = [], 3
        for _ in range(n):
            nd = h[pos]
            shapes.append(tuple(h[pos + 1:pos + 1 + nd]))
            pos += 1 + nd
        if not shapes:
            return op, rid, []
        sizes = [int(torch.Size(s).numel()) for s in shapes]
        payload = torch.empty(sum(sizes))
        self.pg.recv([payload], self.peer, 1).wait(**kw)
        return op, rid, [p.reshape(s) for p, s in zip(payload.split(sizes), shapes, strict=True)]


def _compute(kind: str, module: nn.Module, arg: Any, inputs: list[torch.Tensor]
             ) -> list[torch.Tensor]:
    if kind == "column":
        return [module(inputs[0], float(arg))]
    if kind == "layers":
        assert isinstance(module, GroupedCNN)
        return [module.run_layers(inputs[0], int(arg[0]), int(arg[1]))]
    if kind == "group":
        assert isinstance(module, GroupedCNN)
        g = int(arg)
        prev, logits = (inputs[1:-1], inputs[-1]) if g > 0 else ([], None)
        acts, out = module.run_group(g, inputs[0], prev, logits)
        return [inputs[0], *acts, out]
    raise ValueError(f"unknown device kind {kind!r}")


def _device_main(host: str, port: int, prefix: str, kind: str, module: nn.Module, arg: Any,
                 timeout_s: float) -> None:
    """A device process: one thread, its part of the network, answer until told to stop."""
    torch.set_num_threads(1)
    store = dist.TCPStore(host, port, is_master=False,
                          timeout=datetime.timedelta(seconds=timeout_s))
    # waits for the next request without a deadline that matters (a day): an idle device
    # is not a failed one; a dispatcher that goes away closes the connection at once
    link = _Link(store, prefix, 1, 86400.0)
    module.eval()
    with torch.no_grad():
        while True:
            try:
                op, rid, inputs = link.recv()
            except RuntimeError:  # the dispatcher went away
                return
            if op == _STOP:
                return
            link.send(_RUN, rid, _compute(kind, module, arg, inputs))


@dataclass
class _Device:
    index: int
    kind: str
    module: nn.Module
    arg: Any
    process: Any = None
    link: _Link | None = None
    alive: bool = False
    generation: int = 0
    served: int = 0


@dataclass
class _Request:
    rid: int
    x: torch.Tensor
    future: Future[torch.Tensor]
    accepted: float
    needed: set[int] | None = None  # HA: devices whose output is awaited; HT: None
    taken: set[int] = field(default_factory=set)
    outputs: dict[int, torch.Tensor] = field(default_factory=dict)
    stage: int = 0  # pipelines: the next stage
    carried: list[torch.Tensor] = field(default_factory=list)


class _Server:
    """Device processes, their links, threads and the failure monitor (shared)."""

    def __init__(self, devices: list[_Device], *, timeout_s: float, heartbeat_s: float,
                 start_timeout_s: float):
        for name, v in (("timeout_s", timeout_s), ("heartbeat_s", heartbeat_s),
                        ("start_timeout_s", start_timeout_s)):
            if v <= 0:
                raise ValueError(f"{name}={v} must be > 0")
        self._devices = devices
        self.timeout_s, self.heartbeat_s = float(timeout_s), float(heartbeat_s)
        self.start_timeout_s = float(start_timeout_s)
        self._cond = threading.Condition()
        self._pending: list[_Request] = []
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._next_id = 0
        self.events: list[dict[str, Any]] = []  #: failures, revivals, mode switches
        self._store: Any = None

    # -- life cycle ------------------------------------------------------------------
    def __enter__(self) -> _Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the device processes and wait until every one is connected."""
        self._store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False,
                                    timeout=datetime.timedelta(seconds=self.start_timeout_s))
        for d in self._devices:
            self._spawn(d)
        for d in self._devices:
            self._connect(d)
        monitor = threading.Thread(target=self._monitor, name="fluid-monitor", daemon=True)
        monitor.start()
        self._threads.append(monitor)

    def _spawn(self, d: _Device) -> None:
        d.generation += 1
        ctx = mp.get_context("spawn")
        d.process = ctx.Process(
            target=_device_main, daemon=True, name=f"fluid-device-{d.index}",
            args=("127.0.0.1", self._store.port, self._prefix(d), d.kind, d.module, d.arg,
                  self.start_timeout_s))
        d.process.start()

    def _prefix(self, d: _Device) -> str:
        return f"device{d.index}-gen{d.generation}/"

    def _connect(self, d: _Device) -> None:
        d.link = _Link(self._store, self._prefix(d), 0, self.start_timeout_s)
        with self._cond:
            d.alive = True
            self._cond.notify_all()
        t = threading.Thread(target=self._serve, args=(d, d.generation), daemon=True,
                             name=f"fluid-link-{d.index}")
        t.start()
        self._threads.append(t)

    def close(self, *, wait: bool = True) -> None:
        """Answer every accepted request (``wait``), then stop the devices."""
        if wait:  # as long as requests keep being answered (a stuck one: timeout_s)
            with self._cond:
                left = -1
                while self._pending and self._any_alive() and len(self._pending) != left:
                    left = len(self._pending)
                    self._cond.wait_for(lambda n=left: len(self._pending) < n  # type: ignore[misc]
                                        or not self._any_alive(), timeout=self.timeout_s)
        with self._cond:
            self._stopping = True
            for r in self._pending:
                if not r.future.done():
                    r.future.set_exception(DeviceFailure("the server was closed"))
            self._pending.clear()
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=self.timeout_s)
        for d in self._devices:
            if d.process is not None:
                d.process.join(timeout=2.0)
                if d.process.is_alive():
                    d.process.kill()
                    d.process.join()

    @property
    def devices(self) -> list[dict[str, Any]]:
        """Per device: index, alive, pid, requests served."""
        with self._cond:
            return [{"index": d.index, "alive": d.alive, "served": d.served,
                     "pid": d.process.pid if d.process is not None else None}
                    for d in self._devices]

    def pid(self, device: int) -> int:
        """The process id of ``device`` (e.g. to kill it in a test)."""
        return int(self._devices[device].process.pid)

    def _any_alive(self) -> bool:
        return any(d.alive for d in self._devices)

    # -- requests --------------------------------------------------------------------
    def submit(self, x: torch.Tensor) -> Future[torch.Tensor]:
        """Accept one request (a batch of inputs); its future gives the logits.

        Raises:
            DeviceFailure: the server cannot serve (stopped, or no live device).
        """
        fut: Future[torch.Tensor] = Future()
        with self._cond:
            self._check_can_serve()
            self._next_id += 1
            r = _Request(self._next_id, x.detach().float(), fut, time.monotonic())
            self._route(r)
            self._pending.append(r)
            self._cond.notify_all()
        return fut

    def _check_can_serve(self) -> None:
        if self._stopping:
            raise DeviceFailure("the server is closed")
        if not self._any_alive():
            raise DeviceFailure("no device is alive")

    def _route(self, r: _Request) -> None:
        raise NotImplementedError

    def _take(self, d: _Device, generation: int) -> _Request | None:
        raise NotImplementedError

    def _done(self, d: _Device, r: _Request, out: list[torch.Tensor]) -> None:
        raise NotImplementedError

    def _failed(self, d: _Device) -> None:
        raise NotImplementedError

    def _finish(self, r: _Request, value: torch.Tensor | BaseException) -> None:
        with contextlib.suppress(ValueError):
            self._pending.remove(r)
        if not r.future.done():
            if isinstance(value, BaseException):
                r.future.set_exception(value)
            else:
                r.future.set_result(value)
        self._cond.notify_all()

    def _serve(self, d: _Device, generation: int) -> None:
        link = d.link
        assert link is not None
        while True:
            with self._cond:
                r = self._take(d, generation)
            if r is None:
                if self._stopping and d.alive and d.generation == generation:
                    with contextlib.suppress(RuntimeError):
                        link.send(_STOP, 0, [])
                return
            try:
                link.send(_RUN, r.rid, r.carried if r.carried else [r.x])
                _, rid, out = link.recv(self.timeout_s)
                if rid != r.rid:
                    raise RuntimeError(f"device {d.index} answered request {rid}, not {r.rid}")
            except RuntimeError as exc:
                with self._cond:
                    self._declare_failed(d, generation, f"{type(exc).__name__}: {exc}"[:200])
                return
            with self._cond:
                d.served += 1
                self._done(d, r, out)
                self._cond.notify_all()

    def _declare_failed(self, d: _Device, generation: int, why: str) -> None:
        """Under the lock: mark ``d`` failed (once per generation) and re-route its work."""
        if not d.alive or d.generation != generation or self._stopping:
            return
        d.alive = False
        self.events.append({"event": "failure", "device": d.index, "time": time.monotonic(),
                            "why": why})
        if d.process is not None and d.process.is_alive():
            with contextlib.suppress(OSError):
                os.kill(d.process.pid, signal.SIGKILL)
        self._failed(d)
        self._cond.notify_all()

    def _monitor(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                for d in self._devices:
                    if d.alive and d.process is not None and not d.process.is_alive():
                        self._declare_failed(d, d.generation,
                                             f"process exited ({d.process.exitcode})")
                self._cond.wait(self.heartbeat_s)

    def revive(self, device: int) -> None:
        """Start a failed ``device`` again and take it back once it is connected.

        Raises:
            ValueError: ``device`` is not a device index, or it is alive.
        """
        if not 0 <= device < len(self._devices):
            raise ValueError(f"device={device}; choose from 0..{len(self._devices) - 1}")
        d = self._devices[device]
        with self._cond:
            if d.alive:
                raise ValueError(f"device {device} is alive")
        if d.process is not None:
            d.process.join(timeout=self.timeout_s)
        self._spawn(d)
        self._connect(d)
        with self._cond:
            self.events.append({"event": "revived", "device": d.index,
                                "time": time.monotonic()})
            self._revived(d)
            self._cond.notify_all()

    def _revived(self, d: _Device) -> None:
        pass


class FluidServer(_Server):
    """Serve a :class:`~.net.FluidNet` with one device process per active column.

    Args:
        net: the trained Fluid network.
        config: which columns (devices) and widths (default: every column, full width).
        mode: ``"ht"`` (High-Throughput) or ``"ha"`` (High-Accuracy).
        on_failure: what an HA server does when a device fails: ``"ht"`` (switch to HT)
            or ``"ha"`` (keep combining the survivors).
        timeout_s: how long a device may take to answer one request before it is declared
            failed.
        heartbeat_s: how often the monitor checks that device processes are alive.
        start_timeout_s: how long a device process may take to start and connect.

    Raises:
        ValueError: a bad mode or policy, or a config outside the net's space.
    """

    MODES = ("ht", "ha")

    def __init__(self, net: FluidNet, *, config: dict[str, Any] | None = None,
                 mode: str = "ht", on_failure: str = "ht", timeout_s: float = 10.0,
                 heartbeat_s: float = 0.1, start_timeout_s: float = 120.0):
        for name, v in (("mode", mode), ("on_failure", on_failure)):
            if v not in self.MODES:
                raise ValueError(f"{name}={v!r}; choose from {list(self.MODES)}")
        cfg = net.space.validate(config or net.space.largest())
        devices = [_Device(i, "column", net.column(c).sliced(w), 1.0)
                   for i, (c, w) in enumerate(FluidNet.members(cfg))]
        super().__init__(devices, timeout_s=timeout_s, heartbeat_s=heartbeat_s,
                         start_timeout_s=start_timeout_s)
        self.config, self.requested_mode, self.on_failure = cfg, mode, on_failure
        self._mode = mode

    @property
    def mode(self) -> str:
        """The mode now (``"ht"`` or ``"ha"``): the requested one unless a failure
        switched it."""
        with self._cond:
            return self._mode

    def set_mode(self, mode: str) -> None:
        """Serve new requests in ``mode`` (requests already accepted keep theirs). While a
        device is down, an ``on_failure="ht"`` server stays in HT and takes ``mode`` up
        when every device is back.

        Raises:
            ValueError: an unknown mode.
        """
        if mode not in self.MODES:
            raise ValueError(f"mode={mode!r}; choose from {list(self.MODES)}")
        with self._cond:
            self.requested_mode = mode
            if all(d.alive for d in self._devices) or self.on_failure == mode:
                self._switch(mode, "requested")

    def _switch(self, mode: str, why: str) -> None:
        if mode != self._mode:
            self.events.append({"event": "mode", "from": self._mode, "to": mode, "why": why,
                                "time": time.monotonic()})
            self._mode = mode

    def _route(self, r: _Request) -> None:
        if self._mode == "ha":
            r.needed = {d.index for d in self._devices if d.alive}

    def _take(self, d: _Device, generation: int) -> _Request | None:
        while True:
            if self._stopping or not d.alive or d.generation != generation:
                return None
            for r in self._pending:
                if r.needed is None and not r.taken:
                    r.taken.add(d.index)
                    return r
                if r.needed is not None and d.index in r.needed and d.index not in r.taken:
                    r.taken.add(d.index)
                    return r
            self._cond.wait()

    def _done(self, d: _Device, r: _Request, out: list[torch.Tensor]) -> None:
        if r.future.done():
            return
        r.outputs[d.index] = out[0]
        if r.needed is None or r.needed <= set(r.outputs):
            self._finish(r, torch.stack(list(r.outputs.values())).mean(0))

    def _failed(self, d: _Device) -> None:
        alive = {x.index for x in self._devices if x.alive}
        if self._mode == "ha" and self.on_failure == "ht":
            self._switch("ht", f"device {d.index} failed")
        for r in list(self._pending):
            if d.index in r.outputs:
                continue
            if r.needed is None:  # HT: back in the queue, in its place (oldest first)
                r.taken.discard(d.index)
                continue
            if d.index not in r.needed:
                continue
            r.taken.discard(d.index)
            r.needed.discard(d.index)
            if not r.needed:  # nobody else had it: re-dispatch to the survivors
                r.needed = None if self._mode == "ht" else alive
            elif r.needed <= set(r.outputs):
                self._finish(r, torch.stack(list(r.outputs.values())).mean(0))
        if not alive:
            for r in list(self._pending):
                self._finish(r, DeviceFailure("every device failed"))

    def _revived(self, d: _Device) -> None:
        if all(x.alive for x in self._devices):
            self._switch(self.requested_mode, f"device {d.index} is back")


class PipelineServer(_Server):
    """A chain of device stages (the baselines): each request passes every stage in turn.

    Args:
        stages: per device, ``(kind, module, argument)``: ``("layers", net, (start, stop))``
            or ``("group", net, group)``.
        truncate: on a failure, keep serving the output of the stages before the failed
            one (a nested dynamic network's smaller sub-network) instead of stopping.
        timeout_s, heartbeat_s, start_timeout_s: as :class:`FluidServer`'s.
    """

    def __init__(self, stages: Sequence[tuple[str, nn.Module, Any]], *, truncate: bool = False,
                 timeout_s: float = 10.0, heartbeat_s: float = 0.1,
                 start_timeout_s: float = 120.0):
        if not stages:
            raise ValueError("a pipeline needs at least one stage")
        devices = [_Device(i, k, m, a) for i, (k, m, a) in enumerate(stages)]
        super().__init__(devices, timeout_s=timeout_s, heartbeat_s=heartbeat_s,
                         start_timeout_s=start_timeout_s)
        self.truncate = truncate
        self._length = len(devices)  # stages in use
        self.stopped = False

    @property
    def stages(self) -> int:
        """Stages in use now (fewer after a truncating failure; 0 when stopped)."""
        with self._cond:
            return 0 if self.stopped else self._length

    def _check_can_serve(self) -> None:
        super()._check_can_serve()
        if self.stopped:
            raise DeviceFailure("the pipeline stopped: a device failed")

    def _route(self, r: _Request) -> None:
        r.stage = 0

    def _take(self, d: _Device, generation: int) -> _Request | None:
        while True:
            if self._stopping or not d.alive or d.generation != generation or self.stopped:
                return None
            for r in self._pending:
                if r.stage == d.index and d.index not in r.taken:
                    r.taken.add(d.index)
                    return r
            self._cond.wait()

    def _done(self, d: _Device, r: _Request, out: list[torch.Tensor]) -> None:
        r.carried = out
        r.stage += 1
        if r.stage >= self._length:
            self._finish(r, out[-1])

    def _failed(self, d: _Device) -> None:
        if self.truncate and d.index > 0 and d.index <= self._length:
            self._length = d.index
            self.events.append({"event": "truncated", "stages": self._length,
                                "time": time.monotonic()})
            for r in list(self._pending):
                if r.stage >= self._length:
                    self._finish(r, r.carried[-1])
            return
        self.stopped = True
        for r in list(self._pending):
            self._finish(r, DeviceFailure(f"device {d.index} failed: the pipeline stopped"))


def static_server(model: GroupedCNN, devices: int, **kwargs: Any) -> PipelineServer:
    """The static network split layer-wise over ``devices`` processes (stops on a failure)."""
    if model.connectivity != "dense":
        raise ValueError("static_server needs a dense GroupedCNN")
    return PipelineServer([("layers", model, r) for r in model.layer_ranges(devices)], **kwargs)


def dynamic_server(model: GroupedCNN, **kwargs: Any) -> PipelineServer:
    """The nested dynamic network, group ``j`` on device ``j`` (truncates on a failure of a
    later device; stops when the first fails)."""
    if model.connectivity != "nested":
        raise ValueError("dynamic_server needs a nested GroupedCNN")
    return PipelineServer([("group", model, g) for g in range(model.groups)], truncate=True,
                          **kwargs)
