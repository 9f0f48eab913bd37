"""Training at scale: data-parallel throughput (1 vs N processes) and the effect of knowledge
distillation on the digits demo family.

1. Steps per second of OFA-MobileNetV3 progressive shrinking ("full" phase, the digits
   data, global batch 64) in one process and in ``--nproc`` gloo processes on the CPU,
   repeats interleaved (1, N, 1, N, ...); the time counted is the training loop's own (the
   phase's ``seconds`` in the log), not process start-up. The ratio says how much the ranks
   gain on this machine (2 cores here: at most 2x, less while other work shares them).
2. The digits family's mean top-1 (``val`` split, BN recalibrated) of the same random
   sub-networks after progressive shrinking with and without distillation, same budget
   and seed.

    python benchmarks/training.py --steps 20 --repeats 2 --epochs 1 --subnets 12
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import markdown_table, save_results
from switchnas.supernets import distributed
from switchnas.supernets.ofa.data import DigitsData
from switchnas.supernets.ofa.mbv3 import OFAMobileNetV3Net
from switchnas.supernets.ofa.training import ProgressiveShrinking

PHASES = [["full", []], ["kernel", ["ks"]], ["depth", ["ks", "d"]], ["expand", ["ks", "d", "e"]]]


def _net() -> OFAMobileNetV3Net:
    torch.manual_seed(0)
    return OFAMobileNetV3Net(n_classes=10, width_mult=0.5, resolutions=[24, 32])


def _throughput(device: str, steps: int) -> dict[str, Any]:
    """One rank of the throughput run: ``steps`` of the full phase."""
    data = DigitsData()
    task = ProgressiveShrinking(phases=[["full", []]], batch_size=64, lr=0.05, progress=False,
                                epochs_per_phase=steps / np.ceil(data.size("train") / 64))
    log = task.train(_net(), data, seed=0)
    ph = log["phases"][0]
    return {"steps": ph["steps"], "seconds": ph["seconds"]}


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20, help="steps per throughput run")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--epochs", type=float, default=1.0, help="epochs per shrinking phase")
    ap.add_argument("--subnets", type=int, default=12, help="family members scored")
    ap.add_argument("--name", default="training")
    args = ap.parse_args(argv)

    # 1. throughput, interleaved
    runs: dict[int, list[float]] = {1: [], args.nproc: []}
    for _ in range(args.repeats):
        for n in (1, args.nproc):
            if n == 1:
                threads = torch.get_num_threads()
                out = _throughput("cpu", args.steps)
                torch.set_num_threads(threads)
            else:
                out = distributed.launch(_throughput, (args.steps,), nproc=n, device="cpu")
            runs[n].append(out["steps"] / out["seconds"])
            print(f"  {n} process(es): {runs[n][-1]:.2f} steps/s", flush=True)
    ratios = [b / a for a, b in zip(runs[1], runs[args.nproc], strict=True)]
    thr_rows = [{"processes": n, "steps_per_s_median": statistics.median(v),
                 "min": min(v), "max": max(v), "repeats": len(v)} for n, v in runs.items()]

    # 2. distillation on/off at the same budget
    data = DigitsData()
    rng = np.random.default_rng(0)
    probe = _net()
    configs = [probe.space.largest(), probe.space.smallest()] + \
        [probe.space.sample(rng) for _ in range(max(0, args.subnets - 2))]
    kd_rows = []
    for kd in (0.0, 1.0):
        task = ProgressiveShrinking(phases=PHASES, epochs_per_phase=args.epochs, batch_size=64,
                                    lr=0.1, kd_ratio=kd, progress=False)
        net = _net()
        log = task.train(net, data, seed=0)
        acc = task.evaluate(net, configs, data, split="val")
        kd_rows.append({"distillation": "on (kd_ratio=1)" if kd else "off",
                        "mean_top1": float(acc.mean()), "min_top1": float(acc.min()),
                        "max_top1": float(acc.max()), "largest_top1": float(acc[0]),
                        "smallest_top1": float(acc[1]),
                        "train_seconds": round(sum(p["seconds"] for p in log["phases"]), 1)})
        print(f"  kd={kd}: mean top-1 {acc.mean():.2f} %", flush=True)

    md = ("## Data-parallel throughput (OFA-MobileNetV3 w0.5, digits, global batch 64, gloo, "
          "CPU)\n\n" + markdown_table(thr_rows)
          + f"\nRatio {args.nproc} vs 1 process (per interleaved pair): "
          + ", ".join(f"{r:.2f}" for r in ratios)
          + f"; median {statistics.median(ratios):.2f}.\n\n"
          f"## Distillation (progressive shrinking, {len(PHASES)} phases x {args.epochs:g} "
          f"epochs, {len(configs)} sub-networks, val split)\n\n" + markdown_table(kd_rows))
    print(md)
    save_results(args.name, {"args": vars(args), "throughput": thr_rows,
                             "throughput_ratios": ratios, "distillation": kd_rows,
                             "configs": configs}, md)


if __name__ == "__main__":
    main()
