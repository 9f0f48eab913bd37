"""Latency you can trust on a noisy machine: three measurement protocols side by side.

For the same N OFA-MobileNetV3 sub-networks (the default run's CPU-sized space), each
protocol profiles them twice, independently; the agreement of the two profiles (Kendall
tau of their rankings) is what a latency predictor trained on one of them can hope for.

* ``independent``: what landed first: each sub-network timed alone until its median is
  stable (the ``cpu`` plugin's single-module ``measure()`` with its first defaults);
* ``interleaved``: :func:`switchnas.plugins.batch.measure_batch`: rounds in fresh random
  order, each visit paired with a reference sub-network, adaptive extra rounds;
* ``torch-timer``: ``torch.utils.benchmark.Timer.adaptive_autorange`` per sub-network.

Two conditions: ``idle`` (nothing else started by the benchmark) and ``corunners``
(CPU-burning processes started and stopped on a schedule, see ``corunners.py``). The
protocols' profiles are interleaved (A of each, then B of each) so that slow drift of the
machine affects all of them alike. With ``--run DIR`` it also reports the default run's
latency predictor against the profile's measured noise floor (``switchnas run`` first if
``DIR`` has no finished run).

Usage: ``python benchmarks/measurement.py [--n 60] [--quick] [--run runs/bench_measure]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, save_results  # noqa: E402
from corunners import DEFAULT_SCHEDULE, CoRunners  # noqa: E402

#: the cpu plugin's defaults before the interleaved protocol landed (stop 6)
FIRST_DEFAULTS = dict(threads=1, batch_size=1, warmup=3, min_repeats=10, max_repeats=60,
                      max_seconds=1.0, tol=0.01, window=5, outlier_mad=5.0)


def workloads(n: int, seed: int) -> tuple[list[dict[str, Any]], list[tuple[Any, Any]]]:
    """``n`` distinct sub-networks of the default run's super-net, extracted."""
    from switchnas.supernets.ofa.mbv3 import OFAMobileNetV3Net

    net = OFAMobileNetV3Net(n_classes=10, width_mult=0.5, ks=[3, 5, 7], expand=[3, 4, 6],
                            depth=[2, 3, 4], resolutions=[32, 40, 48]).eval()
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    configs: list[dict[str, Any]] = []
    while len(configs) < n:
        cfg = net.space.sample(rng)
        key = json.dumps(cfg, sort_keys=True)
        if key not in seen:
            seen.add(key)
            configs.append(cfg)
    return configs, [(net.extract(c).eval(), net.example_input(c, 1)) for c in configs]


def independent(work: list[tuple[Any, Any]]) -> list[float]:
    from switchnas.plugins.cpu import CPUPlugin

    plugin = CPUPlugin(**FIRST_DEFAULTS)
    return [plugin.measure(m, x).median_ms for m, x in work]


def interleaved(work: list[tuple[Any, Any]], seed: int) -> tuple[list[float], dict[str, Any]]:
    from switchnas.plugins.batch import BatchPolicy, measure_batch
    from switchnas.plugins.cpu import CPUPlugin

    plugin = CPUPlugin(threads=1, batch_size=1)
    res = measure_batch(plugin, work, policy=BatchPolicy(seed=seed))
    lat = [m.median_ms if m is not None else float("nan") for m in res.measurements]
    return lat, {"repeatability": res.repeatability, "warnings": res.warnings,
                 "dropped": sum(m is None for m in res.measurements),
                 "overloaded": res.conditions.get("overloaded")}


def torch_timer(work: list[tuple[Any, Any]]) -> list[float]:
    import torch
    from torch.utils.benchmark import Timer

    out = []
    previous = torch.get_num_threads()
    try:
        for m, x in work:
            with torch.inference_mode():
                t = Timer(stmt="m(x)", globals={"m": m, "x": x}, num_threads=1)
                out.append(t.adaptive_autorange(threshold=0.1, min_run_time=0.01).median * 1e3)
    finally:
        torch.set_num_threads(previous)
    return out


def kendall(a: list[float], b: list[float]) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(a, b, nan_policy="omit").statistic)


def compare(work: list[tuple[Any, Any]], seed: int) -> dict[str, Any]:
    """Profiles A and B for every protocol, interleaved; Kendall tau and seconds."""
    protocols: dict[str, Callable[[int], tuple[list[float], dict[str, Any]]]] = {
        "independent": lambda s: (independent(work), {}),
        "interleaved": lambda s: interleaved(work, s),
        "torch-timer": lambda s: (torch_timer(work), {}),
    }
    runs: dict[str, list[tuple[list[float], float, dict[str, Any]]]] = {k: [] for k in protocols}
    for rep in range(2):
        for name, fn in protocols.items():
            t0 = time.perf_counter()
            lat, info = fn(seed + rep)
            runs[name].append((lat, time.perf_counter() - t0, info))
            print(f"    {name:12s} profile {'AB'[rep]}: {runs[name][-1][1]:6.1f} s", flush=True)
    out = {}
    for name, (a, b) in runs.items():
        la, lb = np.asarray(a[0]), np.asarray(b[0])
        # the machine's overall speed can differ between the two profiles: compare shapes
        na, nb = la / np.nanmedian(la), lb / np.nanmedian(lb)
        out[name] = {"kendall": kendall(a[0], b[0]),
                     "seconds": [round(a[1], 2), round(b[1], 2)],
                     "median_rel_diff": float(np.nanmedian(np.abs(na - nb) / ((na + nb) / 2))),
                     "level_ratio_b_over_a": float(np.nanmedian(lb) / np.nanmedian(la)),
                     "latency_ms": [a[0], b[0]],
                     "info": [a[2], b[2]]}
    base = np.mean(out["independent"]["seconds"])
    for name in out:
        out[name]["time_ratio"] = float(np.mean(out[name]["seconds"]) / base)
    return out


def default_run(run_dir: Path) -> dict[str, Any]:
    """The default run's latency predictor and family, against the profile's noise floor."""
    if not (run_dir / "export" / "stage.json").is_file() and not (
            run_dir / "bundle" / "manifest.json").is_file():
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "switchnas.pipeline.cli", "run",
                               f"hydra.run.dir={run_dir}", "progress=false"],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"switchnas run failed:\n{proc.stderr[-3000:]}")
        print(f"  switchnas run: {time.perf_counter() - t0:.0f} s")
    report = json.loads((run_dir / "fit" / "report.json").read_text())["latency"]
    prof = json.loads((run_dir / "profile" / "latency.json").read_text())
    rep = prof.get("meta", {}).get("repeatability", {})
    fam = json.loads((run_dir / "family" / "family.json").read_text())["members"]
    measured = [m["latency_ms"] for m in fam]
    predicted = [m["predicted_latency_ms"] for m in fam]
    same_order = bool(np.array_equal(np.argsort(measured), np.argsort(predicted)))
    fam_err = float(np.mean(np.abs(np.asarray(predicted) / np.asarray(measured) - 1)) * 100)
    return {"holdout": report["holdout"], "chosen": report["chosen"],
            "encoding": report["encoding"], "repeatability": rep,
            "family_measured_ms": measured, "family_predicted_ms": predicted,
            "family_same_order": same_order, "family_mean_abs_err_pct": fam_err}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60, help="sub-networks per profile")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="20 sub-networks, idle only")
    ap.add_argument("--run", default=None, help="also report the default run in this folder")
    ap.add_argument("--out", default="measurement", help="results name")
    args = ap.parse_args()
    n = 20 if args.quick else args.n
    configs, work = workloads(n, args.seed)
    results: dict[str, Any] = {"n": n, "seed": args.seed, "first_defaults": FIRST_DEFAULTS,
                               "corunner_schedule": list(DEFAULT_SCHEDULE)}
    print(f"idle, {n} sub-networks:", flush=True)
    results["idle"] = compare(work, args.seed)
    if not args.quick:
        print("with co-runners:", flush=True)
        with CoRunners(DEFAULT_SCHEDULE) as co:
            results["corunners"] = compare(work, args.seed + 10)
        results["corunner_log"] = co.log[:50]
    rows = []
    for cond in ("idle", "corunners"):
        for name, r in results.get(cond, {}).items():
            rows.append({"condition": cond, "protocol": name, "kendall A-B": r["kendall"],
                         "median rel. diff (level-free)": r["median_rel_diff"],
                         "level B/A": r["level_ratio_b_over_a"],
                         "s/profile": float(np.mean(r["seconds"])),
                         "time vs independent": r["time_ratio"]})
    md = markdown_table(rows)
    if args.run:
        print("default run:", flush=True)
        d = default_run(Path(args.run).resolve())
        results["default_run"] = d
        h = d["holdout"]
        md += ("\nDefault run's latency predictor (held out): "
               f"{d['chosen']} on {d['encoding']}, Kendall {h['kendall']:.3f}, "
               f"MAPE {h['mape']:.2f} %; profile noise floor {d['repeatability']}\n"
               f"Family measured {[f'{v:.3f}' for v in d['family_measured_ms']]} ms, predicted "
               f"{[f'{v:.3f}' for v in d['family_predicted_ms']]} ms, same order: "
               f"{d['family_same_order']}, mean |error| {d['family_mean_abs_err_pct']:.1f} %\n")
    print(md)
    save_results(args.out, results, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
