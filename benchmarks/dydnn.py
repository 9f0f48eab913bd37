"""Dynamic DNNs for embedded and distributed inference: the Fluid network against a static
network split layer-wise and an ordinary (nested) dynamic network, on 2 and 3 device
processes; and the channel-group network's section (``benchmarks/dydnn_groupnet.py``,
merged in when importable).

Fluid section, per number of devices D:

1. Accuracy (top-1 %, digits ``test`` split at 32x32): Fluid High-Accuracy (mean of all
   columns), each column alone (what High-Throughput answers), the static network (same
   channels per layer as the Fluid union, dense), the nested dynamic network (all groups,
   and group 1 alone). All trained here with the same optimiser, data and epochs.
2. Throughput (requests/s, one image per request, every request submitted at once,
   requests/s = requests / time until the last is answered): Fluid HT and HA, the static
   split (pipelined: each device works on another request), the dynamic network (group j on
   device j, pipelined). Systems interleaved per repetition; ratios against the static
   split of the same repetition, median and range over repetitions.
3. A device failure: device 0's process is SIGKILLed after a quarter of a stream has been
   answered; requests answered and lost (failed) per system.

Each device process has one torch thread. This VM has 2 cores: with 3 devices three
processes (plus the dispatcher) share 2 cores, which caps every system's throughput and
flattens the differences; the report says so.

    python benchmarks/dydnn.py --quick     # small channels, 3 epochs, 3 repetitions
    python benchmarks/dydnn.py             # channels 16-32-64, 8 epochs, 5 repetitions
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import RESULTS, markdown_table, save_results
from switchnas.supernets.fluid.baselines import GroupedCNN
from switchnas.supernets.fluid.net import FluidNet
from switchnas.supernets.fluid.serving import (
    DeviceFailure,
    FluidServer,
    dynamic_server,
    static_server,
)
from switchnas.supernets.fluid.training import NestedIncrementalTraining, accuracy, train_grouped
from switchnas.supernets.ofa.data import DigitsData

PAPER = {"ht_vs_static_x": 2.5, "ht_vs_dynamic_x": 2.0, "data": "MNIST",
         "hardware": "embedded Arm CPUs (DATE 2024)"}
GOALS = {"ht_vs_static_x": 1.5, "ha_accuracy_gap_points": 1.0, "lost_on_failure": 0}


def _settings(quick: bool) -> dict[str, Any]:
    if quick:
        return {"channels": [8, 16, 32], "epochs": 3.0, "repeats": 3, "requests": 120,
                "devices": [2, 3]}
    return {"channels": [16, 32, 64], "epochs": 8.0, "repeats": 5, "requests": 300,
            "devices": [2, 3]}


def _drain(futures: list[Future[torch.Tensor]], timeout: float = 600) -> tuple[int, int]:
    ok = lost = 0
    for f in futures:
        try:
            f.result(timeout)
            ok += 1
        except DeviceFailure:
            lost += 1
    return ok, lost


def _throughput(server: Any, x: torch.Tensor) -> float:
    t0 = time.perf_counter()
    _drain([server.submit(x[i % len(x)]) for i in range(len(x))])
    return len(x) / (time.perf_counter() - t0)


def _failure(server: Any, x: torch.Tensor) -> dict[str, Any]:
    futures = [server.submit(x[i]) for i in range(len(x))]
    while sum(f.done() for f in futures) < len(x) // 4:
        time.sleep(0.005)
    os.kill(server.pid(0), signal.SIGKILL)
    t0 = time.perf_counter()
    ok, lost = _drain(futures)
    refused = 0
    for i in range(10):  # what happens to new requests after the failure
        try:
            _drain([server.submit(x[i])])
        except DeviceFailure:
            refused += 1
    return {"accepted": len(x), "answered": ok, "lost": lost, "new_refused_of_10": refused,
            "drain_s": time.perf_counter() - t0}


def _section(devices: int, s: dict[str, Any], data: DigitsData) -> dict[str, Any]:
    torch.manual_seed(0)
    ch, ep = s["channels"], s["epochs"]
    t0 = time.perf_counter()
    fluid = FluidNet(devices=devices, channels=ch, widths=[0.5, 1.0])
    NestedIncrementalTraining(epochs_per_column=ep, progress=False).train(fluid, data, seed=0)
    static = GroupedCNN(groups=devices, channels=ch, connectivity="dense")
    train_grouped(static, data, epochs_per_group=ep, batch_size=32, seed=0)
    nested = GroupedCNN(groups=devices, channels=ch, connectivity="nested")
    train_grouped(nested, data, epochs_per_group=ep, batch_size=32, seed=0)
    train_s = time.perf_counter() - t0
    full = fluid.space.largest()
    alone = [{"on": [int(i == k) for i in range(devices)], "w": [1.0] * devices}
             for k in range(devices)]
    task = NestedIncrementalTraining(progress=False)
    fl = task.evaluate(fluid, [full, *alone], data, split="test")
    acc = {"fluid_ha": float(fl[0]), "fluid_columns_alone": [float(a) for a in fl[1:]],
           "fluid_ht_mean": float(statistics.mean(fl[1:])),
           "static": accuracy(static, data, "test"), "dynamic_full": accuracy(nested, data, "test"),
           "dynamic_group1": accuracy(nested, data, "test", k=1)}
    params = {"fluid": sum(p.numel() for p in fluid.parameters()),
              "static": sum(p.numel() for p in static.parameters()),
              "dynamic_effective": int(sum(
                  (getattr(nested, f"mask{i}").expand_as(c.weight) != 0).sum()
                  + c.bias.numel() for i, c in enumerate(nested.convs))
                  + sum(p.numel() for p in nested.head.parameters()))}
    x = torch.randn(s["requests"], 1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    names = ["static", "dynamic", "fluid_ht", "fluid_ha"]
    servers = {"static": static_server(static, devices), "dynamic": dynamic_server(nested),
               "fluid_ht": FluidServer(fluid, mode="ht"), "fluid_ha": FluidServer(fluid, mode="ha")}
    rates: dict[str, list[float]] = {n: [] for n in names}
    failures: dict[str, Any] = {}
    try:
        for srv in servers.values():
            srv.start()
        for srv in servers.values():  # warm-up
            _throughput(srv, x[:10])
        for _ in range(s["repeats"]):
            for n in names:
                rates[n].append(_throughput(servers[n], x))
        for n in names:
            failures[n] = _failure(servers[n], x)
    finally:
        for srv in servers.values():
            srv.close(wait=False)
    rows = []
    for n in names:
        ratios = [a / b for a, b in zip(rates[n], rates["static"], strict=True)]
        rows.append({"devices": devices, "system": n, "req_per_s": statistics.median(rates[n]),
                     "vs_static_x": statistics.median(ratios), "vs_static_min": min(ratios),
                     "vs_static_max": max(ratios)})
    ht_dyn = [a / b for a, b in zip(rates["fluid_ht"], rates["dynamic"], strict=True)]
    return {"devices": devices, "train_s": train_s, "accuracy": acc, "params": params,
            "throughput": rows, "rates": rates,
            "ht_vs_dynamic_x": statistics.median(ht_dyn), "failure": failures}


def run(quick: bool, *, groupnet: bool = True) -> dict[str, Any]:
    """Run the Fluid section (and the groupnet one, when importable).

    Args:
        quick: small channels, 3 epochs and 3 repetitions instead of the defaults.
        groupnet: also run ``benchmarks/dydnn_groupnet.py``'s section, when importable.

    Returns:
        A JSON-able dict: ``settings``, ``fluid`` (one entry per device count: accuracy,
        params, throughput rows, failure outcomes), ``paper``, ``goals`` and
        ``groupnet`` (its own result, or why it is missing).
    """
    s = _settings(quick)
    data = DigitsData()
    torch.set_num_threads(1)
    sections = [_section(d, s, data) for d in s["devices"]]
    goals = []
    for sec in sections:
        ht = next(r for r in sec["throughput"] if r["system"] == "fluid_ht")
        f = sec["failure"]
        goals.append({
            "devices": sec["devices"],
            "ht_vs_static_x": ht["vs_static_x"], "ht_met": ht["vs_static_x"] >= GOALS[
                "ht_vs_static_x"],
            "ha_gap_points": sec["accuracy"]["static"] - sec["accuracy"]["fluid_ha"],
            "ha_met": sec["accuracy"]["static"] - sec["accuracy"]["fluid_ha"] <= GOALS[
                "ha_accuracy_gap_points"],
            "fluid_lost": f["fluid_ht"]["lost"] + f["fluid_ha"]["lost"],
            "baselines_stop": f["static"]["new_refused_of_10"] == 10
            and f["dynamic"]["new_refused_of_10"] == 10})
    res: dict[str, Any] = {"settings": {**s, "threads_per_device": 1, "cores": os.cpu_count(),
                                        "data": "digits at 32x32"},
                           "fluid": sections, "paper": PAPER, "goals": goals}
    try:
        from benchmarks import dydnn_groupnet
    except ImportError as exc:
        res["groupnet"] = {"missing": str(exc)}
        return res
    if not groupnet:  # merge the groupnet section's own latest results, when saved
        saved = RESULTS / "dydnn_groupnet.json"
        res["groupnet"] = (json.loads(saved.read_text()) if saved.is_file()
                           else {"missing": "skipped (--skip-groupnet), no saved results"})
    else:
        res["groupnet"] = dydnn_groupnet.run(quick)
    return res


def markdown(res: dict[str, Any]) -> str:
    s = res["settings"]
    out = ["## Fluid dynamic network (distributed inference)\n",
           f"Digits at 32x32, channels {s['channels']} per column, {s['epochs']} epochs per "
           f"column/group, {s['requests']} requests of one image, {s['repeats']} interleaved "
           f"repetitions, one torch thread per device process, {s['cores']} cores "
           "(3 devices + the dispatcher share them).\n"]
    for sec in res["fluid"]:
        a = sec["accuracy"]
        out.append(f"### {sec['devices']} devices\n")
        out.append(markdown_table([
            {"model": "fluid HA (all columns)", "top1": a["fluid_ha"]},
            {"model": "fluid HT (columns alone, mean)", "top1": a["fluid_ht_mean"]},
            {"model": "static (dense)", "top1": a["static"]},
            {"model": "dynamic (nested, all groups)", "top1": a["dynamic_full"]},
            {"model": "dynamic (group 1 alone)", "top1": a["dynamic_group1"]}]))
        out.append(f"\nParameters: {sec['params']}\n")
        out.append(markdown_table(sec["throughput"]))
        out.append(f"\nFluid HT vs dynamic: {sec['ht_vs_dynamic_x']:.2f}x\n")
        out.append(markdown_table([{"system": n, **v} for n, v in sec["failure"].items()]))
    out.append(f"\nPaper: {res['paper']}\n")
    out.append(markdown_table(res["goals"]))
    g = res.get("groupnet", {})
    if "missing" in g:
        out.append(f"\n## groupnet\n\nnot run: {g['missing']}\n")
    else:
        from benchmarks import dydnn_groupnet

        out.append("\n## groupnet\n\n" + dydnn_groupnet.markdown(g))
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="small channels, 3 epochs, 3 repetitions")
    ap.add_argument("--skip-groupnet", action="store_true",
                    help="only the Fluid section (dydnn_groupnet.py runs on its own)")
    args = ap.parse_args(argv)
    res = run(args.quick, groupnet=not args.skip_groupnet)
    res["settings"]["quick"] = args.quick
    md = markdown(res)
    print(md)
    save_results("dydnn", res, md)


if __name__ == "__main__":
    main()
