"""Hierarchical manager benchmark: live (member x threads/affinity) and simulated (member x DVFS).

(a) **Live on this machine.** A bundle of K OFA-MobileNetV3 members (width 0.5, 10 classes,
resolutions 32-48; untrained: timings do not depend on the weights; accuracies synthetic,
rising with size, as in ``benchmarks/runtime.py``); its member x threads/affinity table is
measured here (:func:`switchnas.runtime.live.calibrate_table`, every point of
:class:`~switchnas.runtime.knobs.ThreadsKnob`). Then the same schedule of busy co-runner
processes (0, 1, 2, 1, 0 of them, unpinned: the OS places them) runs under each policy:
the manager (member x threads/affinity, contention from ``/proc/stat``), member-only
feedback at the fastest point, and fixed members. Policies alternate within each round
(interleaved), rounds repeat; ratios are per round, with their spread.

(b) **Simulated from calibrated tables** (Jetson-like DVFS, which this VM cannot set): the
members' latencies measured here at one thread are scaled per frequency with
``t(f) = t_measured * f_top / f`` (CPU-bound: latency ~ 1/f) and powered by the RK3399
Cortex-A72 model of :mod:`switchnas.runtime.energy` (``model:rk3399-a72``, from the Linux
device tree's OPP table: every energy number is a model's). Two scenarios: one model, and
two models sharing the device (processor sharing), each request due within its period.
A co-running app is on for half of every 100 requests (load 1.6x). The manager against
the schedutil-like governor with the same deadlines; the governors run fixed members, the
most accurate that meet every deadline at the top frequency under the peak load. The
manager runs accuracy first, or with the energy objective and an accuracy floor equal to
(or one member below) the governor's member. Several noise seeds.

Run: ``nice .venv/bin/python -m benchmarks.manager [--quick] [--rounds 3] [--no-live]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks._common import markdown_table, save_results
from benchmarks.runtime import KW, ladder
from switchnas.runtime import load, write_bundle
from switchnas.runtime import simulate as sim
from switchnas.runtime.energy import expand_with_frequencies, get_power_model
from switchnas.runtime.knobs import ThreadsKnob
from switchnas.runtime.live import calibrate_table, live_manager_replay
from switchnas.runtime.manager import ModelSpec, OpTable
from switchnas.supernets.ofa.mbv3 import OFAMobileNetV3Net

#: the published results (hierarchical manager vs schedutil, Jetson Xavier NX)
PUBLISHED = {"one_model": {"energy_saving": 0.19, "latency_saving": 0.09},
             "two_models": {"energy_saving": 0.89, "latency_saving": 0.23}}
GOALS = {"one_model": 0.10, "two_models": 0.40}
LOAD_HIGH = 1.6
DEADLINES = (1.75, 2.5, 3.5)
#: the manager's options in (b): a noise margin of at least 8 % (the simulated noise is 3 %)
MANAGER: dict[str, Any] = {"selector_options": {"min_margin": 0.08}}


def build_bundle(k: int, tmp: Path) -> Any:
    """K members from the smallest to the largest sub-network, written and loaded."""
    torch.manual_seed(0)
    net = OFAMobileNetV3Net(**KW).eval()
    members = [{"id": f"m{i}", "config": cfg, "latency_ms": 1.0 + i,  # replaced by the table
                "accuracy": round(0.70 + 0.10 * i / max(k - 1, 1), 4),
                "bn_state": net.bn_state()} for i, cfg in enumerate(ladder(net.space, k))]
    path = write_bundle(tmp / "bundle", supernet=net, members=members,
                        hardware={"key": "cpu", "threads": 1})
    return load(path, switch="extracted")


def spread(xs: list[float]) -> dict[str, float]:
    return {"mean": float(np.mean(xs)), "min": float(min(xs)), "max": float(max(xs)),
            "stdev": float(statistics.pstdev(xs)) if len(xs) > 1 else 0.0}


# -- (a) live ------------------------------------------------------------------------------
def live(bundle: Any, table: OpTable, *, rounds: int, per_phase: int) -> dict[str, Any]:
    knob = ThreadsKnob()
    fastest = min(table.point_names,
                  key=lambda p: sum(table.latency(m, p) for m in table.members))
    top = max(table.members, key=lambda m: table.accuracy[m])
    # the most accurate member fits unloaded at the fastest point, with 15 % to spare
    target = 1.15 * table.latency(top, fastest)
    schedule = [n for n in (0, 1, 2, 1, 0) for _ in range(per_phase)]
    by_acc = sorted(table.members, key=lambda m: table.accuracy[m])
    fixed = [by_acc[0], by_acc[len(by_acc) // 2], by_acc[-1]]
    # a noisy machine: the manager does not chase single missed deadlines (see
    # HierarchicalManager's react_to_miss), it follows the window's median like feedback
    policies: list[tuple[str, str, dict[str, Any]]] = [
        ("manager", "manager", {"react_to_miss": False}),
        ("feedback", "feedback", {"point": fastest})]
    policies += [(f"fixed {m}", "static", {"point": fastest, "member": m}) for m in fixed]
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in policies}
    t0 = time.perf_counter()
    for r in range(rounds):
        order = policies[r % len(policies):] + policies[:r % len(policies)]
        for name, pol, opts in order:
            res = live_manager_replay(bundle, schedule, table=table, knob=knob,
                                      target_ms=target, policy=pol, options=opts)
            rows[name].append(res.row() | {"points_used": sorted(set(res.points))})
    seconds = time.perf_counter() - t0
    summary = []
    for name, rs in rows.items():
        summary.append({"policy": name,
                        "miss_rate": float(np.mean([x["miss_rate"] for x in rs])),
                        "mean_accuracy": float(np.mean([x["mean_accuracy"] for x in rs])),
                        "switches": float(np.mean([x["switches"] for x in rs])),
                        "point_switches": float(np.mean([x["point_switches"] for x in rs])),
                        "mean_latency_ms": float(np.mean([x["mean_latency_ms"] for x in rs])),
                        "points_used": sorted({p for x in rs for p in x["points_used"]})})
    ratio = [m["miss_rate"] / f["miss_rate"] if f["miss_rate"] > 0 else
             (0.0 if m["miss_rate"] == 0 else float("inf"))
             for m, f in zip(rows["manager"], rows["feedback"], strict=True)]
    acc_diff = [m["mean_accuracy"] - f["mean_accuracy"]
                for m, f in zip(rows["manager"], rows["feedback"], strict=True)]
    return {"target_ms": target, "requests_per_run": len(schedule), "rounds": rounds,
            "schedule": "co-runners 0,1,2,1,0 (unpinned busy loops), "
                        f"{per_phase} requests each", "seconds": round(seconds, 1),
            "fastest_point": fastest, "summary": summary, "runs": rows,
            "miss_ratio_manager_over_feedback": spread(ratio),
            "accuracy_manager_minus_feedback": spread(acc_diff),
            "goal": "miss ratio <= 0.5 at equal or higher mean accuracy"}


# -- (b) simulated -------------------------------------------------------------------------
def dvfs_table(one_thread: OpTable, point: str) -> OpTable:
    """The members at ``point`` (measured here), expanded over the RK3399 A72 frequencies."""
    base = {"energy_source": one_thread.energy_source,
            "members": {m: {point: dict(one_thread.entries[m][point])}
                        for m in one_thread.members},
            "points": [{"name": point, "settings": dict(one_thread.settings(point))}]}
    t = expand_with_frequencies(base, get_power_model("rk3399-a72"), memory_bound=0.0)
    t["accuracy"] = dict(one_thread.accuracy)
    return OpTable.from_dict(t)


def simulated(table: OpTable, *, seeds: int, n: int) -> dict[str, Any]:
    top_point = max(table.points, key=lambda p: p["settings"]["freq_khz"])["name"]
    by_acc = sorted(table.members, key=lambda m: table.accuracy[m])
    big = by_acc[-1]
    out: dict[str, Any] = {"energy_source": table.energy_source, "scenarios": {}}
    # two models: the second runs every other member (a second, smaller network)
    small = {m: table.accuracy[m] for m in by_acc[::2]}
    tab_b = OpTable.from_dict({**table.to_dict(), "accuracy": small,
                               "members": {m: table.to_dict()["members"][m] for m in small}})
    top_b = max(small, key=lambda m: small[m])
    # deadlines: DEADLINES x the most accurate member's latency at the top frequency (one
    # model), and 1.25 x that for each of two models sharing the device
    scenarios: dict[str, list[ModelSpec]] = {}
    for k in DEADLINES:
        scenarios[f"one_model@{k}x"] = [
            ModelSpec(name="a", table=table, target_ms=k * table.latency(big, top_point))]
        scenarios[f"two_models@{k}x"] = [
            ModelSpec(name="a", table=table, target_ms=1.25 * k * table.latency(big, top_point)),
            ModelSpec(name="b", table=tab_b, target_ms=1.25 * k * tab_b.latency(top_b, top_point))]
    policies = {"manager": ("manager", dict(MANAGER)),
                "manager_energy_same_floor": ("manager", {**MANAGER, "objective": "energy"}),
                "manager_energy_floor_below": ("manager", {**MANAGER, "objective": "energy"}),
                "schedutil": ("schedutil", {}), "ondemand": ("ondemand", {}),
                "performance": ("performance", {}), "feedback": ("feedback", {})}
    for scen, specs in scenarios.items():
        # the governors' fixed members: the most accurate that meet every deadline at the
        # top frequency under the trace's peak load (sharing the device when two)
        tabs = {s.name: s.table for s in specs}

        def fits(choice: dict[str, str], specs: list[ModelSpec] = specs,
                 tabs: dict[str, OpTable] = tabs) -> bool:
            e = {k: LOAD_HIGH * tabs[k].latency(m, top_point) for k, m in choice.items()}
            return all(sum(min(x, e[k]) for x in e.values()) <= s.target_ms
                       for k, s in zip(choice, specs, strict=True))
        combos: list[dict[str, str]] = [{}]
        for s in specs:
            combos = [{**c, s.name: m} for c in combos for m in s.table.members]
        ok = [c for c in combos if fits(c)]
        fixed = max(ok, key=lambda c: sum(tabs[k].accuracy[m] for k, m in c.items()))
        gov_opts: dict[str, Any] = {"members": fixed}
        floors: dict[str, dict[str, float]] = {"manager_energy_same_floor": {},
                                               "manager_energy_floor_below": {}}
        for s in specs:
            accs = sorted(s.table.accuracy.values())
            i = accs.index(s.table.accuracy[fixed[s.name]])
            floors["manager_energy_same_floor"][s.name] = accs[i]
            floors["manager_energy_floor_below"][s.name] = accs[max(0, i - 1)]
        variants = {name: [ModelSpec(name=s.name, table=s.table, target_ms=s.target_ms,
                                     accuracy_floor=f[s.name]) for s in specs]
                    for name, f in floors.items()}
        per_seed: dict[str, list[dict[str, float]]] = {p: [] for p in policies}
        for seed in range(seeds):
            trace = sim.make_trace("periodic", n, low=1.0, high=LOAD_HIGH, period=100,
                                   duty=0.5)
            for name, (pol, opts) in policies.items():
                o = dict(opts)
                if pol in ("schedutil", "ondemand", "performance"):
                    o.update(gov_opts)
                res = sim.replay_ops(variants.get(name, specs), trace, policy=pol, noise=0.03, seed=seed, options=o)
                per_seed[name].append({
                    "energy_mj": sum(r.energy_total_mj for r in res),
                    "latency_ms": float(np.mean([r.mean_latency_ms for r in res])),
                    "miss_rate": float(np.mean([r.miss_rate for r in res])),
                    "accuracy": float(np.mean([r.mean_accuracy for r in res])),
                    "point_switches": float(res[0].point_switches),
                    "switches": float(sum(r.switches for r in res))})
        rows = []
        base = per_seed["schedutil"]
        for name, rs in per_seed.items():
            e_sav = [1 - r["energy_mj"] / b["energy_mj"] for r, b in zip(rs, base, strict=True)]
            l_sav = [1 - r["latency_ms"] / b["latency_ms"] for r, b in zip(rs, base, strict=True)]
            rows.append({"policy": name,
                         "energy_saving_vs_schedutil": float(np.mean(e_sav)),
                         "energy_saving_min": float(min(e_sav)),
                         "energy_saving_max": float(max(e_sav)),
                         "latency_saving_vs_schedutil": float(np.mean(l_sav)),
                         "miss_rate": float(np.mean([r["miss_rate"] for r in rs])),
                         "mean_accuracy": float(np.mean([r["accuracy"] for r in rs])),
                         "energy_mj_per_request": float(np.mean([r["energy_mj"] for r in rs]))
                         / n / len(specs),
                         "mean_latency_ms": float(np.mean([r["latency_ms"] for r in rs])),
                         "point_switches": float(np.mean([r["point_switches"] for r in rs]))})
        out["scenarios"][scen] = {
            "targets_ms": {s.name: s.target_ms for s in specs},
            "accuracy_floors": floors, "load": f"1x / {LOAD_HIGH}x, period 100 requests",
            "governor_members": fixed,
            "published": PUBLISHED[scen.split("@")[0]],
            "goal_energy_saving": GOALS[scen.split("@")[0]],
            "rows": rows}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--k", type=int, default=6, help="members")
    ap.add_argument("--rounds", type=int, default=3, help="live rounds (policies interleaved)")
    ap.add_argument("--per-phase", type=int, default=60, help="live requests per phase")
    ap.add_argument("--seeds", type=int, default=5, help="simulation noise seeds")
    ap.add_argument("--quick", action="store_true", help="a short smoke run")
    ap.add_argument("--no-live", action="store_true", help="skip (a)")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.per_phase, args.seeds = 2, 30, 3
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp())
    bundle = build_bundle(args.k, tmp)
    t0 = time.perf_counter()
    # (b)'s base: one thread, many rounds, the 10th percentile (other jobs only add time)
    one = calibrate_table(bundle, ThreadsKnob(threads=[1]), reps=10 if args.quick else 40,
                          quantile=0.1)
    table = one
    if not args.no_live:
        table = calibrate_table(bundle, ThreadsKnob(), reps=8 if args.quick else 20,
                                quantile=0.1)
    calib_s = time.perf_counter() - t0
    data: dict[str, Any] = {"k": args.k, "calibration_s": round(calib_s, 1),
                            "load_average_at_start": os.getloadavg(),
                            "table_one_thread": one.to_dict(), "table": table.to_dict(),
                            "quick": args.quick}
    md = [f"Members: {args.k} OFA-MobileNetV3 sub-networks (untrained, synthetic accuracies); "
          f"member x threads/affinity tables measured here in {calib_s:.0f} s; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other jobs).\n"]
    if not args.no_live:
        a = live(bundle, table, rounds=args.rounds, per_phase=args.per_phase)
        data["live"] = a
        r = a["miss_ratio_manager_over_feedback"]
        md += [f"## (a) Live: {a['schedule']}, target {a['target_ms']:.3g} ms, "
               f"{a['rounds']} interleaved rounds, {a['seconds']:.0f} s in all\n",
               markdown_table(a["summary"]),
               f"\nMisses, manager / member-only feedback: {r['mean']:.3g} "
               f"(rounds {r['min']:.3g}-{r['max']:.3g}); accuracy difference "
               f"{a['accuracy_manager_minus_feedback']['mean']:+.4f}. Goal: {a['goal']}.\n"]
    one_t = one.point_names[0]
    b = simulated(dvfs_table(one, one_t), seeds=args.seeds, n=300 if args.quick else 1000)
    data["simulated"] = b
    md.append(f"## (b) Simulated DVFS (energy: {b['energy_source']}, a model; latency ~ 1/f "
              f"from the members measured here at {one_t})\n")
    summary = []
    for scen, s in b["scenarios"].items():
        rows = {r["policy"]: r for r in s["rows"]}
        su = rows["schedutil"]
        for pol in ("manager", "manager_energy_same_floor", "manager_energy_floor_below"):
            r = rows[pol]
            summary.append({
                "scenario": scen, "policy": pol,
                "energy_saving": f"{r['energy_saving_vs_schedutil']:+.1%} "
                                 f"[{r['energy_saving_min']:+.1%}, {r['energy_saving_max']:+.1%}]",
                "latency_saving": f"{r['latency_saving_vs_schedutil']:+.1%}",
                "misses (schedutil)": f"{r['miss_rate']:.2%} ({su['miss_rate']:.2%})",
                "accuracy (schedutil)": f"{r['mean_accuracy']:.4f} ({su['mean_accuracy']:.4f})",
                "goal": f">= {s['goal_energy_saving']:.0%}",
                "published": f"{s['published']['energy_saving']:.0%} energy, "
                             f"{s['published']['latency_saving']:.0%} latency"})
    md += ["Savings against schedutil (mean over seeds [min, max]):\n",
           markdown_table(summary), ""]
    cols = ["policy", "energy_saving_vs_schedutil", "latency_saving_vs_schedutil",
            "miss_rate", "mean_accuracy", "energy_mj_per_request", "mean_latency_ms",
            "point_switches"]
    for scen, s in b["scenarios"].items():
        md += [f"### {scen}: targets {({k: round(v, 3) for k, v in s['targets_ms'].items()})} "
               f"ms; governors' members {s['governor_members']}\n",
               markdown_table(s["rows"], cols), ""]
    save_results("manager", data, "\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
