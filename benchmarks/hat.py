"""HAT SuperTransformer on this CPU: training, BLEU per SubTransformer, HAT-protocol
latency, Dynamic-HAT switch times, and a reduced design space fine-tune.

    nice .venv/bin/python -m benchmarks.hat [--steps 250] [--finetune-steps 80]

Runs on the generated toy language pair at 1/8 of space0's widths (same shape), one
thread. Full-width space0 latency (weights untrained: latency does not depend on them)
is measured as well, for comparison with HAT's Xeon/Raspberry Pi/TITAN Xp datasets.

Reduced space: sample SubTransformers, take the Pareto front of (latency, BLEU), keep per
dimension the values its members use, and fine-tune the super-network on that space; as
a control, fine-tune a copy for the same number of steps on the full space. BLEU of the
front members is compared before and after both.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from benchmarks._common import markdown_table, save_results
from switchnas.supernets.hat.data import ToyTranslation
from switchnas.supernets.hat.latency import measure_hat_latency, measure_switch_time
from switchnas.supernets.hat.space import HATSpace, hat_features
from switchnas.supernets.hat.supernet import SuperTransformer
from switchnas.supernets.hat.training import HATTask

_PER_LAYER = {"encoder": "encoder_layer_num", "decoder": "decoder_layer_num"}


def pareto_front(lat: Sequence[float], score: Sequence[float]) -> list[int]:
    """Indices not dominated (lower latency and higher score), by latency."""
    order = np.argsort(lat)
    front, best = [], -np.inf
    for i in order:
        if score[i] > best:
            front.append(int(i))
            best = score[i]
    return front


def allowed_from_family(space: HATSpace, family: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Per dimension, the values the family uses (active layers only, positions pooled)."""
    allowed: dict[str, set[Any]] = {}
    for cfg in family:
        for name, value in cfg.items():
            if not isinstance(value, list):
                allowed.setdefault(name, set()).add(value)
                continue
            side = name.split("_", 1)[0]
            n = int(cfg[_PER_LAYER[side]])
            allowed.setdefault(name, set()).update(value[:n])
    return {k: sorted(v) for k, v in allowed.items() if set(v) != set(space.dimensions[k][0])}


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=250)
    p.add_argument("--finetune-steps", type=int, default=80)
    p.add_argument("--samples", type=int, default=10)
    p.add_argument("--eval-sentences", type=int, default=80)
    p.add_argument("--width-divisor", type=int, default=8)
    p.add_argument("--lat-iters", type=int, default=10)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    t_start = time.perf_counter()

    data = ToyTranslation()
    torch.manual_seed(0)
    net = SuperTransformer(src_vocab=data.src_vocab, tgt_vocab=data.tgt_vocab,
                           width_divisor=args.width_divisor, normalize_before=True)
    task = HATTask(steps=args.steps, batch_size=64, lr=1e-3, warmup=60, beam=5,
                   eval_sentences=args.eval_sentences, log_every=25)
    train_log = task.train(net, data, seed=0)
    print(f"trained {args.steps} steps in {train_log['seconds']:.0f} s; loss "
          f"{train_log['first_loss']:.2f} -> {train_log['last_loss']:.2f}")

    sp = net.space
    rng = np.random.default_rng(0)
    configs = [sp.largest(), sp.smallest()] + [sp.sample(rng) for _ in range(args.samples)]
    bleu0 = task.evaluate(net, configs, data)
    lats = [measure_hat_latency(net, c, iters=args.lat_iters, warmup=2) for c in configs]
    rows = []
    for i, (c, b, lat) in enumerate(zip(configs, bleu0, lats, strict=True)):
        f = hat_features(c)
        rows.append({"id": i, "enc_dim": c["encoder_embed_dim"], "dec_dim": c["decoder_embed_dim"],
                     "dec_layers": c["decoder_layer_num"], "enc_ffn_avg": f[2], "dec_ffn_avg": f[6],
                     "arb_avg": f[9], "bleu": float(b), "enc_ms": lat["latency_mean_encoder"],
                     "dec_ms": lat["latency_mean_decoder"], "latency_ms": lat["latency_ms"]})
    print(markdown_table(rows))

    # Full-width space0: latency of the largest and smallest SubTransformer, and switch times.
    full = SuperTransformer(src_vocab=data.src_vocab, tgt_vocab=data.tgt_vocab, width_divisor=1).eval()
    full_lat = {name: measure_hat_latency(full, c, iters=args.lat_iters, warmup=2)
                for name, c in (("largest", full.space.largest()), ("smallest", full.space.smallest()))}
    lat_ms = [r["latency_ms"] for r in rows]
    front = pareto_front(lat_ms, list(bleu0))
    family = [configs[i] for i in front]
    switch = {"toy_width": measure_switch_time(net, family, repeats=20),
              "space0_full_width": measure_switch_time(
                  full, [full.space.largest(), full.space.smallest()]
                  + [full.space.sample(rng) for _ in range(2)], repeats=10)}
    del full

    # Reduced design space from the family; fine-tune it, and (control) the full space.
    allowed = allowed_from_family(sp, family)
    reduced = sp.restrict(allowed)
    ft = HATTask(steps=args.finetune_steps, batch_size=64, lr=5e-4, warmup=1, beam=5,
                 eval_sentences=args.eval_sentences, log_every=25)
    control = copy.deepcopy(net)
    net.space = reduced
    net.activate(reduced.largest())
    ft.train(net, data, seed=1)
    bleu_reduced = task.evaluate(net, family, data)
    ft.train(control, data, seed=1)
    bleu_control = task.evaluate(control, family, data)
    reduce_rows = [{"member": front[j], "latency_ms": lat_ms[front[j]], "bleu_before": float(bleu0[front[j]]),
                    "bleu_after_reduced": float(bleu_reduced[j]), "bleu_after_full_space": float(bleu_control[j])}
                   for j in range(len(front))]
    gain = float(np.mean(bleu_reduced - bleu0[front]))
    gain_control = float(np.mean(bleu_control - bleu0[front]))

    md = [f"# HAT SuperTransformer (toy language pair, space0 widths / {args.width_divisor})\n",
          f"Training: {args.steps} sandwich steps in {train_log['seconds']:.0f} s, loss "
          f"{train_log['first_loss']:.2f} -> {train_log['last_loss']:.2f}.\n",
          "## BLEU (beam 5) and HAT-protocol latency (batch 1, 30-token source, 30 decoder "
          "steps, beam 5, 10th-90th percentile), one thread\n", markdown_table(rows),
          "\n## Full-width space0 latency (untrained weights)\n",
          markdown_table([{"config": k, **v} for k, v in full_lat.items()]),
          "\n## Switch times (ms)\n", markdown_table([{"net": k, **v} for k, v in switch.items()]),
          f"\n## Reduced design space\nFamily (Pareto front of the samples): {front}. Kept: "
          f"`{allowed}`.\nFine-tune {args.finetune_steps} steps on the reduced space vs the full "
          "space (control):\n", markdown_table(reduce_rows),
          f"\nMean BLEU change of the family: reduced space {gain:+.2f}, full space {gain_control:+.2f}.\n",
          f"\nTotal wall time {time.perf_counter() - t_start:.0f} s.\n"]
    text = "".join(md)
    print(text)
    save_results("hat", {
        "train": train_log, "subtransformers": rows, "configs": configs,
        "full_width_latency": full_lat, "switch_ms": switch,
        "reduced_space": {"family": front, "allowed": allowed, "rows": reduce_rows,
                          "mean_gain_reduced": gain, "mean_gain_full_space": gain_control},
        "args": vars(args)}, text)


if __name__ == "__main__":
    main()
