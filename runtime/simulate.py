"""Replay load traces against a bundle's latency tables and compare selector policies.

A trace is one load factor per request (1.0: the device as fast as when the members were
measured; 2.0: twice as slow, e.g. a co-runner on the same core). Replaying it, request
``i`` runs the member the selector chose, takes ``predicted * load[i] * noise`` and the
selector sees that latency before choosing the member of request ``i + 1``.

Metrics per policy: deadline-miss rate (latency above the target), mean accuracy, number
of switches, and settle time: after each change of the load by more than 10 %, the number
of requests until the policy's last switch before the next change (0 if it did not switch).

With member x operating-point tables (:class:`~switchnas.runtime.manager.OpTable`, one per
model sharing the device) :func:`replay_ops` replays the trace against the hierarchical
manager, member-only feedback and the frequency governors: latency
``table[member][point] * load * noise`` (processor sharing between models), energy from
the table (``energy_source`` says whether it was read or modelled), and the device's
operating-point switches.

CLI (also ``switchnas simulate``)::

    python -m switchnas.runtime.simulate --bundle run/bundle --trace step --target-ms 12 \\
        --policy feedback,step,static,oracle
    python -m switchnas.runtime.simulate --ops cam.json --ops mic.json --target-ms 40 \\
        --policy manager,feedback,schedutil,ondemand,performance,powersave
"""

from __future__ import annotations

import argparse
import csv
import inspect
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._manifest import BundleError, read_manifest
from .files import atomic_write_json
from .governors import Governor, frequencies_of, make_governor
from .manager import HierarchicalManager, ModelSpec, OpTable
from .selectors import MemberInfo, make_selector

__all__ = ["OPS_POLICIES", "TRACES", "OpsResult", "SimResult", "compare", "compare_ops", "main",
           "make_trace", "members_from_bundle", "read_csv_trace", "replay", "replay_ops"]


Load = Sequence[float] | np.ndarray


# -- traces --------------------------------------------------------------------------------
def step_trace(n: int, *, low: float = 1.0, high: float = 2.0) -> np.ndarray:
    """``low``, then ``high`` from a third of the way, back to ``low`` at two thirds."""
    out = np.full(n, low, dtype=float)
    out[n // 3: 2 * n // 3] = high
    return out


def ramp_trace(n: int, *, low: float = 1.0, high: float = 2.0) -> np.ndarray:
    """From ``low`` up to ``high`` and back, linearly."""
    up = np.linspace(low, high, n // 2)
    return np.concatenate([up, np.linspace(high, low, n - n // 2)])


def periodic_trace(n: int, *, low: float = 1.0, high: float = 2.0, period: int = 60,
                   duty: float = 0.5) -> np.ndarray:
    """A co-runner that is on for ``duty`` of every ``period`` requests."""
    on = (np.arange(n) % period) >= period * (1.0 - duty)
    return np.where(on, high, low).astype(float)


def random_walk_trace(n: int, *, low: float = 1.0, high: float = 2.0, sigma: float = 0.05,
                      seed: int = 0) -> np.ndarray:
    """A random walk of the log-load, reflected into ``[low, high]``."""
    rng = np.random.default_rng(seed)
    lo, hi = math.log(low), math.log(high)
    x, out = lo, np.empty(n)
    for i in range(n):
        x += rng.normal(0.0, sigma)
        if x < lo:
            x = 2 * lo - x
        if x > hi:
            x = 2 * hi - x
        out[i] = math.exp(min(max(x, lo), hi))
    return out


TRACES: dict[str, Callable[..., np.ndarray]] = {
    "step": step_trace, "ramp": ramp_trace, "periodic": periodic_trace,
    "random_walk": random_walk_trace,
}


def read_csv_trace(path: str | Path) -> np.ndarray:
    """Load factors from a CSV file: the ``load`` column, or else the first column."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ValueError(f"trace file {str(path)!r} is empty")
    col = 0
    header = [c.strip().lower() for c in rows[0]]
    try:
        float(rows[0][0])
    except ValueError:
        col = header.index("load") if "load" in header else 0
        rows = rows[1:]
    try:
        out = np.array([float(r[col]) for r in rows if r], dtype=float)
    except (ValueError, IndexError) as exc:
        raise ValueError(f"trace file {str(path)!r}: cannot read load factors ({exc})") from exc
    if out.size == 0 or not np.all(np.isfinite(out)) or np.any(out <= 0):
        raise ValueError(f"trace file {str(path)!r}: load factors must be positive numbers")
    return out


def make_trace(name: str, n: int = 600, *, low: float | None = None,
               high: float | None = None, period: int | None = None,
               duty: float | None = None, sigma: float | None = None,
               seed: int | None = None) -> np.ndarray:
    """A named trace (``step``, ``ramp``, ``periodic``, ``random_walk``) or ``csv:PATH``.

    The keyword options are those of the trace functions; each trace gets the ones it
    takes (``seed`` means nothing to ``step``, say), so one set of options can drive
    several traces. A misspelt option is a ``TypeError``, never ignored.
    """
    if name.startswith("csv:"):
        return read_csv_trace(name[4:])
    if name not in TRACES:
        raise ValueError(f"unknown trace {name!r}; choose from {sorted(TRACES)} or csv:PATH")
    if n < 3:
        raise ValueError(f"a trace needs at least 3 requests, got n={n}")
    fn = TRACES[name]
    given = {"low": low, "high": high, "period": period, "duty": duty, "sigma": sigma,
             "seed": seed}
    takes = inspect.signature(fn).parameters
    return fn(n, **{k: v for k, v in given.items() if v is not None and k in takes})


# -- replay --------------------------------------------------------------------------------
@dataclass
class SimResult:
    policy: str
    requests: int
    miss_rate: float
    mean_accuracy: float
    switches: int
    settle_mean: float | None  #: requests after a load change until the last switch
    settle_max: int | None
    mean_latency_ms: float
    infeasible_requests: int = 0
    ran: list[str] = field(default_factory=list, repr=False)

    def row(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("ran")
        return d


def replay(members: Sequence[MemberInfo], load: Load, selector: Any, *,
           target_ms: float, noise: float = 0.03, seed: int = 0,
           policy: str = "") -> SimResult:
    """Run ``selector`` through ``load``: see the module docstring."""
    pred = {m.id: m.latency_ms for m in members}
    acc = {m.id: m.accuracy for m in members}
    rng = np.random.default_rng(seed)
    factors = np.exp(rng.normal(0.0, noise, len(load))) if noise > 0 else np.ones(len(load))
    ran: list[str] = []
    lat = np.empty(len(load))
    infeasible = 0
    for i, f in enumerate(load):
        m = selector.current
        ran.append(m)
        lat[i] = pred[m] * float(f) * float(factors[i])
        selector.step(float(lat[i]))
        infeasible += bool(getattr(selector, "infeasible", False))
    switches = sum(a != b for a, b in zip(ran, ran[1:], strict=False))
    settle = settle_times(load, ran)
    return SimResult(
        policy=policy, requests=len(load),
        miss_rate=float(np.mean(lat > target_ms)),
        mean_accuracy=float(np.mean([acc[m] for m in ran])),
        switches=int(switches),
        settle_mean=float(np.mean(settle)) if settle else None,
        settle_max=int(max(settle)) if settle else None,
        mean_latency_ms=float(lat.mean()), infeasible_requests=infeasible, ran=ran)


def settle_times(load: Load, ran: Sequence[str], threshold: float = 0.1) -> list[int]:
    changes = [i for i in range(1, len(load))
               if abs(load[i] / load[i - 1] - 1.0) > threshold]
    out: list[int] = []
    if not changes:
        return out
    for c, end in zip(changes, [*changes[1:], len(load)], strict=True):
        last = 0
        for j in range(c + 1, end):
            if ran[j] != ran[j - 1]:
                last = j - c
        out.append(last)
    return out


def compare(members: Sequence[MemberInfo], load: Load, *, target_ms: float,
            policies: Sequence[str] = ("feedback", "step", "static", "oracle"),
            noise: float = 0.03, seed: int = 0,
            options: Mapping[str, Mapping[str, Any]] | None = None) -> list[SimResult]:
    """Replay ``load`` once per policy (same noise), ``options[policy]`` its keywords."""
    out = []
    for p in policies:
        kw = dict((options or {}).get(p, {}))
        if p == "oracle":
            kw.setdefault("load", list(load))
        sel = make_selector(p, members, target_ms=target_ms, **kw)
        out.append(replay(members, load, sel, target_ms=target_ms, noise=noise, seed=seed,
                          policy=p))
    return out


# -- member x operating-point replay -------------------------------------------------------
OPS_POLICIES = ("manager", "feedback", "static", "performance", "powersave", "ondemand",
                "schedutil")


@dataclass
class OpsResult(SimResult):
    """A :class:`SimResult` of one model in a member x operating-point replay, plus energy
    (``energy_source`` says where it comes from; ``model:<name>``: a power model) and the
    device's operating-point switches."""

    model: str = ""
    point_switches: int = 0
    energy_mj_per_request: float = 0.0
    energy_total_mj: float = 0.0
    energy_source: str = ""
    p90_latency_ms: float = 0.0
    points: list[str] = field(default_factory=list, repr=False)

    def row(self) -> dict[str, Any]:
        d = super().row()
        d.pop("points")
        return d


def _fixed_member(spec: ModelSpec, acc: Mapping[str, float], point: str) -> str:
    """The most accurate member meeting the target unloaded at ``point``, else the fastest."""
    t = spec.table
    ok = [m for m in acc if t.latency(m, point) <= spec.target_ms]
    if not ok:
        return min(acc, key=lambda m: t.latency(m, point))
    return max(ok, key=lambda m: (acc[m], -t.latency(m, point)))


def _fastest_point(spec: ModelSpec) -> str:
    return _fastest_point_of(spec.table)


def replay_ops(models: Sequence[ModelSpec], load: Mapping[str, Load] | Load, *, policy: str,
               period_ms: float | None = None, noise: float = 0.03, seed: int = 0,
               share: bool = True, options: Mapping[str, Any] | None = None
               ) -> list[OpsResult]:
    """Replay load traces for models sharing one device under ``policy``.

    Every period each model issues one request. Its execution time is
    ``table[member][point] * load[t] * noise``; with ``share`` the requests of the period
    arrive together and share the device equally (processor sharing), so request ``i``
    completes after ``sum_j min(e_j, e_i)``: that is its latency, checked against its
    model's target. Its energy is ``table_energy[member][point] * load[t] * noise`` (the
    active energy of the time it occupies the device; idle energy is not counted).

    Policies: ``manager`` (:class:`HierarchicalManager`; ``options``: its keywords);
    ``feedback`` / ``static`` (member only, at a fixed ``point``, default the fastest);
    ``performance``, ``powersave``, ``ondemand``, ``schedutil`` (a fixed ``member`` per model
    given as ``options["members"]``, default the most accurate meeting the target unloaded
    at the fastest point; the governor sees the device's utilisation ``sum_j e_j /
    period`` and the points' ``settings["freq_khz"]``; ``options["governor"]``: its
    keywords).

    Args:
        models: the models (tables with the same points).
        load: one trace per model name, or one trace for all.
        policy: one of :data:`OPS_POLICIES`.
        period_ms: request period (default: the smallest target).
        noise: log-normal sigma of the execution time (independent per model and request).
        seed: noise seed; the same seed gives every policy the same noise.
        share: processor sharing between the models' requests of a period.
        options: the policy's options (see above).

    Returns:
        One :class:`OpsResult` per model, in ``models`` order.

    Raises:
        ValueError: an unknown policy or option, traces of different lengths, a model
            without accuracies.
    """
    if policy not in OPS_POLICIES:
        raise ValueError(f"unknown policy {policy!r} for operating-point tables; choose from "
                         f"{list(OPS_POLICIES)}")
    names = [m.name for m in models]
    loads = {n: np.asarray(load[n] if isinstance(load, Mapping) else load, dtype=float)
             for n in names}
    n_req = {len(v) for v in loads.values()}
    if len(n_req) != 1:
        raise ValueError(f"every model's trace must have the same length, got "
                         f"{ {k: len(v) for k, v in loads.items()} }")
    n = n_req.pop()
    opts = dict(options or {})
    acc = {m.name: dict(m.accuracy if m.accuracy is not None else m.table.accuracy)
           for m in models}
    for m in models:
        if set(acc[m.name]) != set(m.table.members):
            raise ValueError(f"model {m.name!r}: no accuracy for every member (give "
                             f"ModelSpec.accuracy or a table with 'accuracy')")
    period = float(period_ms) if period_ms is not None else min(m.target_ms for m in models)
    rng = np.random.default_rng(seed)
    factors = {nm: (np.exp(rng.normal(0.0, noise, n)) if noise > 0 else np.ones(n))
               for nm in names}

    manager: HierarchicalManager | None = None
    governor: Governor | None = None
    sels: dict[str, Any] = {}
    fixed_point = str(opts.pop("point", "")) or None
    if policy == "manager":
        manager = HierarchicalManager(models, **opts)
    elif policy in ("feedback", "static"):
        for m in models:
            p = fixed_point or _fastest_point(m)
            infos = [MemberInfo(k, acc[m.name][k], m.table.latency(k, p)) for k in acc[m.name]]
            sels[m.name] = (make_selector(policy, infos, target_ms=m.target_ms, **opts), p)
    else:
        fixed = dict(opts.pop("members", {}))
        governor = make_governor(policy, frequencies_of(models[0].table.points),
                                 **dict(opts.pop("governor", {})))
        if opts:
            raise ValueError(f"unknown options {sorted(opts)} for policy {policy!r}; "
                             f"allowed: members, governor")
        for m in models:
            sels[m.name] = fixed.get(m.name) or _fixed_member(m, acc[m.name],
                                                               _fastest_point(m))

    def choice(name: str) -> tuple[str, str]:
        if manager is not None:
            d = manager.decisions[name]
            return d.member, d.point
        if governor is not None:
            return str(sels[name]), governor.current
        sel, p = sels[name]
        return sel.current, p

    ran: dict[str, list[str]] = {nm: [] for nm in names}
    pts: dict[str, list[str]] = {nm: [] for nm in names}
    lat = {nm: np.empty(n) for nm in names}
    energy = {nm: np.empty(n) for nm in names}
    infeasible = dict.fromkeys(names, 0)
    specs = {m.name: m for m in models}
    for t in range(n):
        exec_ms: dict[str, float] = {}
        for nm in names:
            member, point = choice(nm)
            ran[nm].append(member)
            pts[nm].append(point)
            f = float(loads[nm][t]) * float(factors[nm][t])
            exec_ms[nm] = specs[nm].table.latency(member, point) * f
            energy[nm][t] = (specs[nm].table.energy(member, point) or 0.0) * f
        for nm in names:
            e = exec_ms[nm]
            lat[nm][t] = sum(min(x, e) for x in exec_ms.values()) if share else e
        if manager is not None:
            decisions = manager.step({nm: float(lat[nm][t]) for nm in names})
            for nm in names:
                infeasible[nm] += not decisions[nm].feasible
        elif governor is not None:
            governor.step(min(1.0, sum(exec_ms.values()) / period))
        else:
            for nm in names:
                sels[nm][0].step(float(lat[nm][t]))
                infeasible[nm] += bool(getattr(sels[nm][0], "infeasible", False))
    out = []
    for m in models:
        nm = m.name
        settle = settle_times(loads[nm], ran[nm])
        out.append(OpsResult(
            policy=policy, model=nm, requests=n,
            miss_rate=float(np.mean(lat[nm] > m.target_ms)),
            mean_accuracy=float(np.mean([acc[nm][k] for k in ran[nm]])),
            switches=sum(a != b for a, b in zip(ran[nm], ran[nm][1:], strict=False)),
            settle_mean=float(np.mean(settle)) if settle else None,
            settle_max=int(max(settle)) if settle else None,
            mean_latency_ms=float(lat[nm].mean()),
            p90_latency_ms=float(np.quantile(lat[nm], 0.9)),
            infeasible_requests=infeasible[nm],
            point_switches=sum(a != b for a, b in zip(pts[nm], pts[nm][1:], strict=False)),
            energy_mj_per_request=float(energy[nm].mean()),
            energy_total_mj=float(energy[nm].sum()), energy_source=m.table.energy_source,
            ran=ran[nm], points=pts[nm]))
    return out


def compare_ops(models: Sequence[ModelSpec], load: Mapping[str, Load] | Load, *,
                policies: Sequence[str] = ("manager", "feedback", "schedutil"),
                period_ms: float | None = None, noise: float = 0.03, seed: int = 0,
                share: bool = True,
                options: Mapping[str, Mapping[str, Any]] | None = None) -> list[OpsResult]:
    """:func:`replay_ops` once per policy (same noise); ``options[policy]`` its options.
    Returns the results of every policy, each model in ``models`` order."""
    out: list[OpsResult] = []
    for p in policies:
        out += replay_ops(models, load, policy=p, period_ms=period_ms, noise=noise,
                          seed=seed, share=share, options=(options or {}).get(p))
    return out


def members_from_bundle(path: str | Path, hardware: str | None = None) -> list[MemberInfo]:
    """Member tables from a bundle's manifest (validated; weights are not read)."""
    manifest = read_manifest(path)
    out = []
    for m in manifest["members"]:
        if hardware is not None and hardware not in m["latency"]:
            raise BundleError(f"member {m['id']!r} has no latency for hardware {hardware!r}; "
                              f"it has {sorted(m['latency'])}")
        lat = m["latency"][hardware] if hardware is not None else m["latency_ms"]
        out.append(MemberInfo(m["id"], float(m["accuracy"]), float(lat), m.get("energy_mj")))
    return out


def format_table(results: Sequence[SimResult]) -> str:
    cols = ["policy", "miss_rate", "mean_accuracy", "switches", "settle_mean", "settle_max",
            "mean_latency_ms"]
    if results and all(isinstance(r, OpsResult) for r in results):
        cols = ["policy", "model", "miss_rate", "mean_accuracy", "switches", "point_switches",
                "mean_latency_ms", "p90_latency_ms", "energy_mj_per_request",
                "energy_total_mj", "energy_source"]

    def fmt(v: Any) -> str:
        return "-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)

    rows = [[fmt(r.row()[c]) for c in cols] for r in results]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))
    body = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join([line, "  ".join("-" * w for w in widths), *body])


def _policies(text: str | None, default: str) -> list[str]:
    """The policies a ``--policy`` value names (``default`` when it is not given)."""
    names = [p.strip() for p in (default if text is None else text).split(",") if p.strip()]
    if not names:
        raise ValueError(f"--policy {text!r} names no policy; give a comma-separated list, "
                         f"e.g. {default}")
    return names


def _number(kind: type, *, low: float, high: float = math.inf, low_open: bool = False,
            what: str) -> Callable[[str], Any]:
    """An argparse type: a finite ``kind`` in ``[low, high]`` (``(low, high]`` with
    ``low_open``); argparse's error then names the flag and the value."""
    def parse(text: str) -> Any:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not math.isfinite(v) or v < low or (low_open and v == low) or v > high:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return v
    parse.__name__ = what
    return parse


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="switchnas simulate", description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", default=None,
                    help="bundle folder (its manifest is read); with --ops: the members' "
                         "accuracies, unless the table carries them")
    ap.add_argument("--ops", action="append", default=None, metavar="TABLE.json",
                    help="a member x operating-point table; once per model sharing the "
                         "device (policies: " + ",".join(OPS_POLICIES) + ")")
    ap.add_argument("--objective", choices=("accuracy", "energy"), default="accuracy",
                    help="with --ops: the manager's objective")
    ap.add_argument("--accuracy-floor", default=None,
                    type=_number(float, low=-math.inf, what="a number"),
                    help="with --ops: the least accuracy the manager may choose")
    ap.add_argument("--period-ms", default=None,
                    type=_number(float, low=0.0, low_open=True, what="a positive number of ms"),
                    help="with --ops: request period (default: the target)")
    ap.add_argument("--trace", default="step",
                    help=f"one of {sorted(TRACES)} or csv:PATH (default: step)")
    ap.add_argument("--target-ms", default=None,
                    type=_number(float, low=0.0, low_open=True, what="a positive number of ms"),
                    help="latency target (default: 1.1x the median member's latency)")
    ap.add_argument("--policy", default=None,
                    help="comma-separated selector policies (default feedback,step,static,"
                         "oracle; with --ops manager,feedback,schedutil)")
    ap.add_argument("--n", type=_number(int, low=3, high=10_000_000,
                                        what="an integer in [3, 10000000]"),
                    default=600, help="requests in a generated trace")
    ap.add_argument("--high", type=_number(float, low=0.0, high=1e6, low_open=True,
                                           what="a positive load factor (at most 1e6)"),
                    default=2.0, help="peak load factor")
    ap.add_argument("--noise", type=_number(float, low=0.0, high=10.0,
                                            what="a noise sigma in [0, 10]"),
                    default=0.03, help="log-normal latency noise sigma")
    ap.add_argument("--seed", type=_number(int, low=0, high=2**63 - 1,
                                           what="a non-negative integer"), default=0)
    ap.add_argument("--hardware", default=None, help="latency table to use (a hardware key)")
    ap.add_argument("--json", default=None, help="also write the results to this file")
    ap.add_argument("--live", action="store_true",
                    help="run real inference on this CPU (load > 1: a co-runner competes "
                         "for the same core) instead of replaying the latency tables")
    ap.add_argument("--core", type=_number(int, low=0, high=65535, what="a core number >= 0"),
                    default=0, help="core for --live")
    args = ap.parse_args(argv)
    if args.ops:
        return _main_ops(args)
    if args.bundle is None:
        ap.error("give --bundle (a bundle's latency tables) or --ops (operating-point tables)")
    try:
        members = members_from_bundle(args.bundle, args.hardware)
        load = make_trace(args.trace, args.n, high=args.high, seed=args.seed)
        target = args.target_ms
        if target is None:
            target = 1.1 * float(np.median([m.latency_ms for m in members]))
        policies = _policies(args.policy, "feedback,step,static,oracle")
        if args.live:
            from ._bundle import load as load_bundle
            from .live import live_replay

            bundle = load_bundle(args.bundle)
            results = [live_replay(bundle, load, target_ms=target, policy=p, core=args.core,
                                   hardware=args.hardware) for p in policies]
        else:
            results = compare(members, load, target_ms=target, policies=policies,
                              noise=args.noise, seed=args.seed)
    except (ValueError, OSError) as exc:
        print(f"switchnas simulate: error: {exc}", file=sys.stderr)
        return 2
    print(f"{'live' if args.live else 'simulated'} trace {args.trace}: {len(load)} requests, load {load.min():.2f}-{load.max():.2f}; "
          f"target {target:.3g} ms; {len(members)} members "
          f"({min(m.latency_ms for m in members):.3g}-"
          f"{max(m.latency_ms for m in members):.3g} ms)")
    print(format_table(results))
    if args.json:
        _write_json(Path(args.json), {"target_ms": target, "trace": args.trace,
                                      "results": [r.row() for r in results]})
    return 0


def _main_ops(args: argparse.Namespace) -> int:
    """``--ops``: replay the trace against member x operating-point tables."""
    try:
        if args.live:
            raise ValueError("--live and --ops do not combine (use switchnas.runtime.live)")
        tables = [OpTable.read(p) for p in args.ops]
        acc: dict[str, float] | None = None
        if args.bundle is not None:
            acc = {m.id: m.accuracy for m in members_from_bundle(args.bundle, args.hardware)}
        stems = [Path(p).stem for p in args.ops]
        names = stems if len(set(stems)) == len(stems) else [f"model{i}"
                                                             for i in range(len(stems))]
        specs = []
        for i, (path, t) in enumerate(zip(args.ops, tables, strict=True)):
            a = acc if acc is not None else dict(t.accuracy)
            if set(a) != set(t.members):
                raise ValueError(f"{path}: members {sorted(t.members)} need accuracies "
                                 f"(from --bundle or the table's 'accuracy'); have "
                                 f"{sorted(a)}")
            target = args.target_ms
            if target is None:
                target = 1.1 * float(np.median([t.latency(m, _fastest_point_of(t))
                                                for m in t.members]))
            specs.append(ModelSpec(name=names[i], table=t, target_ms=target, accuracy=a,
                                   accuracy_floor=args.accuracy_floor))
        load = make_trace(args.trace, args.n, high=args.high, seed=args.seed)
        policies = _policies(args.policy, "manager,feedback,schedutil")
        results = compare_ops(specs, load, policies=policies, period_ms=args.period_ms,
                              noise=args.noise, seed=args.seed,
                              options={"manager": {"objective": args.objective}})
    except (ValueError, OSError) as exc:
        print(f"switchnas simulate: error: {exc}", file=sys.stderr)
        return 2
    print(f"simulated trace {args.trace}: {len(load)} requests, load "
          f"{load.min():.2f}-{load.max():.2f}; {len(specs)} model(s) on one device, targets "
          f"{[round(s.target_ms, 3) for s in specs]} ms; {len(tables[0].points)} operating "
          f"points; energy: {tables[0].energy_source}")
    print(format_table(results))
    if args.json:
        _write_json(Path(args.json), {"trace": args.trace, "energy_source":
                                      tables[0].energy_source,
                                      "targets_ms": {s.name: s.target_ms for s in specs},
                                      "results": [r.row() for r in results]})
    return 0


def _fastest_point_of(table: OpTable) -> str:
    return min(table.point_names, key=lambda p: sum(table.latency(m, p) for m in table.members))


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON atomically (temporary file in the same folder, then rename)."""
    atomic_write_json(path, data)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
