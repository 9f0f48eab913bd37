"""Stage ``profile``: latency of N random sub-networks on the hardware plugin, stored as
a measurement dataset keyed by the plugin's ``describe()``."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from switchnas.predictors.dataset import MeasurementDataset

from ..artifacts import Artifact
from ..context import ConfigError, Context
from ._util import memo, unique_sample, workload

__all__ = ["run"]


def run(ctx: Context) -> Artifact:
    return memo(ctx, "profile", lambda: _run(ctx))


def _run(ctx: Context) -> Artifact:
    n = int(ctx.cfg.profile.n)
    if n < 4:
        raise ConfigError(f"profile.n={n}: at least 4 sub-networks are needed to fit a predictor")
    desc = ctx.plugin.describe()
    # Latency does not depend on the trained weights: only on the architecture.
    config = {**ctx.section("supernet.name", "supernet.net", "profile", "seed", "hardware"),
              "describe": desc}

    def build(tmp: Path) -> dict[str, Any]:
        net = ctx.new_supernet()
        net.eval()  # type: ignore[attr-defined]
        ds = MeasurementDataset(key=desc, rows=[])
        configs = unique_sample(net.space, n, ctx.rng(1))
        skipped = 0
        for cfg in tqdm(configs, desc=f"profile ({ctx.plugin.name})", disable=not ctx.progress,
                        leave=False):
            module, x = workload(net, cfg)
            try:
                ds.add(cfg, ctx.plugin.measure(module, x))
            except (RuntimeError, ValueError, TimeoutError) as exc:
                skipped += 1
                warnings.warn(f"profile: measuring a sub-network failed, skipped: {exc}",
                              stacklevel=1)
        if len(ds.rows) < 4:
            raise RuntimeError(f"profile: only {len(ds.rows)} of {n} measurements succeeded")
        ds.save(tmp / "latency.json")
        med = sorted(r["median_ms"] for r in ds.rows)
        return {"n": len(ds.rows), "skipped": skipped, "min_ms": med[0], "max_ms": med[-1],
                "hardware": desc}

    return ctx.artifacts.produce("profile", config=config, inputs={}, build=build)
