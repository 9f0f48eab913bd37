"""Dynamic DNNs, part A: the incremental channel-group network (``supernet=groupnet``).

On the digits data at 32x32 (standing in for CIFAR-10), in one run:

1. **Memory**: one switchable GroupNet of G groups (trained incrementally) against G
   separately trained networks of the same sizes (the uniform k-group sub-network's
   architecture, k = 1..G, each trained alone, all its groups at once, for the same
   epochs as one incremental stage). Bytes of their state (weights and batch-norm
   statistics, float32).
2. **Accuracy** (top-1 on the test split) of each group count of the switchable network
   against the same size trained alone.
3. **Latency dynamic range**: largest / smallest member, measured by the ``cpu`` plugin
   (1 thread, batch 1) in one interleaved batch together with the largest and smallest
   sub-networks of OFA-MobileNetV3 (the pipeline's default CPU-sized space: width 0.5,
   resolutions 32-48; built untrained, for latency only). The range's spread comes from
   the members' p10/p90. Energy likewise where RAPL is readable.

The papers' figures (MLCAD 2019, AlexNet on CIFAR-10 against earlier dynamic DNNs) are
printed beside ours: up to 2.73x wider dynamic range in time, 2.36x in energy, 2.4x less
memory at the same compression rate.

    python benchmarks/dydnn_groupnet.py           # full: default widths, 4 epochs per stage
    python benchmarks/dydnn_groupnet.py --quick   # small widths, 3 epochs per stage
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import markdown_table, save_results
from switchnas.supernets.groupnet.net import GroupNet
from switchnas.supernets.groupnet.training import IncrementalTraining
from switchnas.supernets.ofa.data import DigitsData

__all__ = ["PAPER", "main", "run"]

#: MLCAD 2019's reported effects (their baseline: earlier dynamic DNNs)
PAPER = {"time_range_x": 2.73, "energy_range_x": 2.36, "memory_x": 2.4}
GOAL_MEMORY_X = 1.2


def _bytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())


def _settings(quick: bool) -> dict[str, Any]:
    if quick:
        return {"groups": 4, "widths": [16, 32, 32, 32, 32], "epochs_per_stage": 3.0}
    return {"groups": 4, "widths": [64, 128, 192, 192, 128], "epochs_per_stage": 4.0}


def run(quick: bool) -> dict[str, Any]:
    """Run the groupnet half of the dynamic-DNN benchmark.

    Args:
        quick: small widths and 3 epochs per stage (minutes) instead of the defaults.

    Returns:
        A JSON-able dict: ``settings``, ``memory``, ``accuracy`` (rows per group count),
        ``latency`` (members and OFA extremes, dynamic ranges and their ratio),
        ``energy`` (or why not), ``paper`` and ``goals``.
    """
    s = _settings(quick)
    G, widths, epochs = s["groups"], s["widths"], s["epochs_per_stage"]
    data = DigitsData()
    threads = 1
    t0 = time.perf_counter()

    torch.manual_seed(0)
    net = GroupNet(n_classes=10, groups=G, widths=widths)
    inc = IncrementalTraining(epochs_per_stage=epochs, threads=threads, progress=False)
    log = inc.train(net, data, seed=0)
    uniform = [net.space.uniform(k) for k in range(1, G + 1)]
    acc_switch = inc.evaluate(net, uniform, data, split="test")

    alone_rows = []
    sep_bytes = 0
    for k in range(1, G + 1):
        torch.manual_seed(k)
        solo = GroupNet(n_classes=10, groups=k, widths=[w // G * k for w in widths])
        task = IncrementalTraining(epochs_per_stage=epochs, joint=True, threads=threads,
                                   progress=False)
        task.train(solo, data, seed=k)
        # a separate model holds what its network runs: its groups and its one head
        alone = solo.extract(solo.space.largest())
        member = net.extract(uniform[k - 1])
        same_size = [tuple(p.shape) for p in member.parameters()] == [
            tuple(p.shape) for p in alone.parameters()]
        sep_bytes += _bytes(alone)
        alone_rows.append({"groups": k, "switchable_top1": float(acc_switch[k - 1]),
                           "alone_top1": float(task.evaluate(solo, [solo.space.largest()],
                                                             data, split="test")[0]),
                           "member_bytes": _bytes(member), "same_size": same_size})
    train_s = time.perf_counter() - t0

    switch_bytes = _bytes(net)
    memory = {"switchable_bytes": switch_bytes, "separate_bytes": sep_bytes,
              "ratio_x": sep_bytes / switch_bytes}

    latency, energy = _latency(net, uniform)
    return {"settings": {**s, "threads": threads, "data": "digits at 32x32",
                         "train_seconds": round(train_s, 1),
                         "incremental_log": log["stages"]},
            "memory": memory, "accuracy": alone_rows, "latency": latency, "energy": energy,
            "paper": PAPER,
            "goals": {"memory_x_at_least": GOAL_MEMORY_X,
                      "memory_met": memory["ratio_x"] >= GOAL_MEMORY_X,
                      "time_range_vs_ofa_x_at_least": PAPER["time_range_x"] / 2,
                      "time_range_met": latency["range_ratio_x"] >= PAPER["time_range_x"] / 2}}


def _latency(net: GroupNet, uniform: list[dict[str, Any]]
             ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Members and OFA-MbV3 extremes in one interleaved batch of the cpu plugin."""
    from switchnas.plugins.batch import BatchPolicy
    from switchnas.plugins.cpu import POWERCAP_ROOT, CPUPlugin, RAPLReader
    from switchnas.supernets.ofa.mbv3 import OFAMobileNetV3Net

    torch.manual_seed(0)
    ofa = OFAMobileNetV3Net(n_classes=10, width_mult=0.5, resolutions=[32, 40, 48]).eval()
    ofa_cfgs = {"ofa_smallest": ofa.space.smallest(), "ofa_largest": ofa.space.largest()}
    names = [f"groups={c['g']}" for c in uniform] + list(ofa_cfgs)
    work = [(net.extract(c).eval(), net.example_input(c, 1)) for c in uniform]
    work += [(ofa.extract(c).eval(), ofa.example_input(c, 1)) for c in ofa_cfgs.values()]
    rapl = RAPLReader(POWERCAP_ROOT)
    plugin = CPUPlugin(threads=1, batch_size=1, energy=rapl.available)
    # each visit's value is the minimum of 3 runs after a warm-up run: co-runners on a
    # shared machine inflate single runs
    res = plugin.measure_batch(work, policy=BatchPolicy(seed=0, runs_per_visit=3,
                                                        warmup_runs=1))
    rows: list[dict[str, Any]] = []
    for n, m in zip(names, res.measurements, strict=True):
        rows.append({"workload": n, "median_ms": m.median_ms if m else float("nan"),
                     "p10_ms": m.p10_ms if m else float("nan"),
                     "p90_ms": m.p90_ms if m else float("nan"),
                     "energy_mj": m.energy_mj if m else None})
    by = {r["workload"]: r for r in rows}
    big, small = by[names[len(uniform) - 1]], by[names[0]]
    ob, os_ = by["ofa_largest"], by["ofa_smallest"]

    def ratio(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
        return {"x": a["median_ms"] / b["median_ms"], "low": a["p10_ms"] / b["p90_ms"],
                "high": a["p90_ms"] / b["p10_ms"]}

    gr, orr = ratio(big, small), ratio(ob, os_)
    latency = {"rows": rows, "groupnet_range": gr, "ofa_range": orr,
               "range_ratio_x": gr["x"] / orr["x"],
               "repeatability": res.repeatability, "warnings": res.warnings}
    if rapl.available and all(r["energy_mj"] for r in rows):
        energy: dict[str, Any] = {
            "groupnet_range_x": big["energy_mj"] / small["energy_mj"],
            "ofa_range_x": ob["energy_mj"] / os_["energy_mj"]}
        energy["range_ratio_x"] = energy["groupnet_range_x"] / energy["ofa_range_x"]
    else:
        energy = {"readable": False, "note": "not readable here: " + str(rapl.reason)}
    return latency, energy


def markdown(res: dict[str, Any]) -> str:
    """The result as Markdown tables with the papers' figures beside ours."""
    mem, lat, en = res["memory"], res["latency"], res["energy"]
    out = ["## groupnet: memory, accuracy, dynamic range\n",
           f"Settings: {res['settings']['groups']} groups, widths "
           f"{res['settings']['widths']}, {res['settings']['epochs_per_stage']} epochs per "
           f"stage, {res['settings']['data']}.\n",
           markdown_table([
               {"measure": "memory: separate / switchable",
                "ours": f"{mem['ratio_x']:.2f}x ({mem['separate_bytes']} / "
                        f"{mem['switchable_bytes']} B)",
                "paper (MLCAD 2019)": f"{PAPER['memory_x']}x less"},
               {"measure": "latency range largest/smallest: groupnet",
                "ours": f"{lat['groupnet_range']['x']:.2f}x "
                        f"(p10/p90 {lat['groupnet_range']['low']:.2f}-"
                        f"{lat['groupnet_range']['high']:.2f})", "paper (MLCAD 2019)": ""},
               {"measure": "latency range: OFA-MbV3 (untrained, latency only)",
                "ours": f"{lat['ofa_range']['x']:.2f}x (p10/p90 {lat['ofa_range']['low']:.2f}-"
                        f"{lat['ofa_range']['high']:.2f})", "paper (MLCAD 2019)": ""},
               {"measure": "time range: groupnet / OFA",
                "ours": f"{lat['range_ratio_x']:.2f}x",
                "paper (MLCAD 2019)": f"up to {PAPER['time_range_x']}x"},
               {"measure": "energy range: groupnet / OFA",
                "ours": (f"{en['range_ratio_x']:.2f}x" if "range_ratio_x" in en
                         else en["note"]),
                "paper (MLCAD 2019)": f"up to {PAPER['energy_range_x']}x"},
           ]),
           "\nAccuracy (top-1 %, test split) per group count:\n",
           markdown_table(res["accuracy"], ["groups", "switchable_top1", "alone_top1",
                                            "member_bytes", "same_size"]),
           "\nLatency (cpu plugin, 1 thread, batch 1, interleaved):\n",
           markdown_table(lat["rows"], ["workload", "median_ms", "p10_ms", "p90_ms",
                                        "energy_mj"]),
           f"\nGoals: memory >= {GOAL_MEMORY_X}x: {res['goals']['memory_met']}; time range "
           f">= half the paper's ({PAPER['time_range_x'] / 2:.2f}x OFA's): "
           f"{res['goals']['time_range_met']}.\n"]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small widths, 3 epochs per stage")
    args = ap.parse_args(argv)
    res = run(args.quick)
    res["settings"]["quick"] = args.quick
    md = markdown(res)
    print(md)
    save_results("dydnn_groupnet", res, md)


if __name__ == "__main__":
    main()
