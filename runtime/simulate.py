"""Replay load traces against a bundle's latency tables and compare selector policies.

A trace is one load factor per request (1.0: the device as fast as when the members were
measured; 2.0: twice as slow, e.g. a co-runner on the same core). Replaying it, request
``i`` runs the member the selector chose, takes ``predicted * load[i] * noise`` and the
selector sees that latency before choosing the member of request ``i + 1``.

Metrics per policy: deadline-miss rate (latency above the target), mean accuracy, number
of switches, and settle time: after each change of the load by more than 10 %, the number
of requests until the policy's last switch before the next change (0 if it did not switch).

CLI (also ``switchnas simulate``)::

    python -m switchnas.runtime.simulate --bundle run/bundle --trace step --target-ms 12 \\
        --policy feedback,step,static,oracle
"""

from __future__ import annotations

import argparse
import csv
import inspect
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._manifest import BundleError, read_manifest
from .selectors import MemberInfo, make_selector

__all__ = ["TRACES", "SimResult", "compare", "main", "make_trace", "members_from_bundle",
           "read_csv_trace", "replay"]


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

    def fmt(v: Any) -> str:
        return "-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)

    rows = [[fmt(r.row()[c]) for c in cols] for r in results]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))
    body = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join([line, "  ".join("-" * w for w in widths), *body])


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
    ap.add_argument("--bundle", required=True, help="bundle folder (its manifest is read)")
    ap.add_argument("--trace", default="step",
                    help=f"one of {sorted(TRACES)} or csv:PATH (default: step)")
    ap.add_argument("--target-ms", default=None,
                    type=_number(float, low=0.0, low_open=True, what="a positive number of ms"),
                    help="latency target (default: 1.1x the median member's latency)")
    ap.add_argument("--policy", default="feedback,step,static,oracle",
                    help="comma-separated selector policies")
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
    try:
        members = members_from_bundle(args.bundle, args.hardware)
        load = make_trace(args.trace, args.n, high=args.high, seed=args.seed)
        target = args.target_ms
        if target is None:
            target = 1.1 * float(np.median([m.latency_ms for m in members]))
        policies = [p.strip() for p in args.policy.split(",") if p.strip()]
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
        Path(args.json).write_text(json.dumps({"target_ms": target, "trace": args.trace,
                                               "results": [r.row() for r in results]},
                                              indent=2) + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
