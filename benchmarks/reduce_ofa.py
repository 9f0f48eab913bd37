"""Reduced design space on OFA-MobileNetV3 (Dynamic-HAT's recipe, on the OFA side).

1. ``switchnas family`` (default preset) on digits and the ``cpu`` plugin;
2. ``switchnas reduce``: the choices the measured Pareto front uses;
3. fine-tune the trained super-network for the same budget twice: on the reduced space
   and, as the control, on the full space;
4. top-1 (test split, BN recalibrated) of the family members before and after each.

Usage: ``python benchmarks/reduce_ofa.py [--epochs 1.0] [--dir runs/bench_reduce]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, save_results  # noqa: E402

CLI = [sys.executable, "-m", "switchnas.pipeline.cli"]


def switchnas(*args: str) -> None:
    subprocess.run([*CLI, *args, "progress=false"], check=True, capture_output=True, text=True)


def family_accuracy(run_dir: Path, configs: list[dict[str, Any]]) -> list[float]:
    """Top-1 of ``configs`` with the super-net trained in ``run_dir`` (test split)."""
    from safetensors.torch import load_file

    from switchnas.supernets.ofa.data import DigitsData
    from switchnas.supernets.ofa.mbv3 import OFAMobileNetV3Net
    from switchnas.supernets.ofa.training import ProgressiveShrinking

    stage = json.loads((run_dir / "train" / "stage.json").read_text())
    kwargs = dict(stage["config"]["supernet.net"])
    kwargs.pop("_target_")
    kwargs.pop("space", None)  # score on the full space's network: same weights
    net = OFAMobileNetV3Net(**kwargs)
    net.load_state_dict(load_file(str(run_dir / "train" / "supernet.safetensors")))
    task = ProgressiveShrinking(progress=False)
    return [float(a) for a in task.evaluate(net, configs, DigitsData(), split="test")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=float, default=1.0, help="fine-tune epochs per phase")
    ap.add_argument("--lr", type=float, default=0.01, help="fine-tune learning rate")
    ap.add_argument("--dir", default="runs/bench_reduce")
    args = ap.parse_args()
    base = Path(args.dir).resolve()
    t0 = time.perf_counter()
    src = base / "search"
    switchnas("family", f"hydra.run.dir={src}")
    switchnas("reduce", f"hydra.run.dir={src}")
    family = json.loads((src / "family" / "family.json").read_text())["members"]
    space_file = src / "reduce" / "space.json"
    weights = src / "train" / "supernet.safetensors"
    tune = [f"supernet.weights={weights}", "supernet.finetune=true",
            f"supernet.task.epochs_per_phase={args.epochs}", f"supernet.task.lr={args.lr}"]
    switchnas("train", f"hydra.run.dir={base / 'reduced'}", f"supernet.space_file={space_file}",
              *tune)
    switchnas("train", f"hydra.run.dir={base / 'full'}", *tune)
    configs = [m["config"] for m in family]
    before = family_accuracy(src, configs)
    reduced = family_accuracy(base / "reduced", configs)
    full = family_accuracy(base / "full", configs)
    rows = [{"member": m["id"], "latency_ms": m["latency_ms"], "top1_before": b,
             "top1_after_reduced": r, "top1_after_full_space": f,
             "gain_reduced": r - b, "gain_full_space": f - b}
            for m, b, r, f in zip(family, before, reduced, full, strict=True)]
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("gain_reduced", "gain_full_space")}
    summary = json.loads((src / "reduce" / "stage.json").read_text())["summary"]
    md = (f"Reduced space keeps {summary['size_after']:.3g} of {summary['size_before']:.3g} "
          f"configs; allowed {summary['allowed']}. Fine-tune: {args.epochs} epoch(s) per "
          f"phase at lr {args.lr} from the same weights, reduced vs full space.\n\n" + markdown_table(rows)
          + f"\nMean gain: reduced {mean['gain_reduced']:+.2f} pp, full space "
          f"{mean['gain_full_space']:+.2f} pp ({time.perf_counter() - t0:.0f} s in all).\n")
    print(md)
    save_results("reduce_ofa", {"rows": rows, "mean_gain": mean, "reduce": summary,
                                "epochs_per_phase": args.epochs, "lr": args.lr}, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
