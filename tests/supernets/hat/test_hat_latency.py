from __future__ import annotations

import numpy as np
import torch

from switchnas.supernets.hat.latency import (
    HATWorkload,
    hat_source,
    measure_hat_latency,
    measure_switch_time,
    trimmed,
)

from .conftest import tiny_net


def test_trimmed_keeps_10th_to_90th_percentile():
    kept = trimmed(list(range(20))[::-1])
    assert kept.tolist() == list(range(2, 18))
    assert trimmed([5.0]).tolist() == [5.0]


def test_latency_workload_runs_hat_protocol():
    net = tiny_net()
    cfg = net.space.smallest()
    module, args = net.latency_workload(cfg, src_len=30, steps=4, beam=5)
    assert isinstance(module, HATWorkload) and args[0].shape == (1, 30)
    assert torch.equal(args[0], hat_source(1, 30))
    out = module(*args)
    assert out.shape == (5, 1, net.tgt_vocab)


def test_measure_hat_latency_and_switch_time():
    net = tiny_net()
    cfgs = [net.space.largest(), net.space.smallest()]
    lat = measure_hat_latency(net, cfgs[1], steps=3, iters=5, warmup=1)
    assert set(lat) >= {"latency_mean_encoder", "latency_mean_decoder", "latency_ms"}
    assert lat["latency_ms"] > 0
    sw = measure_switch_time(net, cfgs, repeats=4)
    assert all(np.isfinite(v) and v > 0 for v in sw.values())
    assert net.active == cfgs[0]  # restored
