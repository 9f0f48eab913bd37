"""Stage ``profile``: latency of N random sub-networks on the hardware plugin, measured
together as one batch (rounds in random order, paired with a reference sub-network; see
:mod:`switchnas.plugins.batch`) and stored as a measurement dataset keyed by the plugin's
``describe()``. The dataset's ``meta`` keeps the protocol, the reference's drift, the
conditions of the machine and the profile's repeatability: the noise floor every latency
predictor of this run is judged against."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from switchnas.plugins.measure import MeasurementError
from switchnas.predictors.dataset import MeasurementDataset

from ..artifacts import Artifact
from ..context import ConfigError, Context
from ._measure import measure_configs
from ._util import memo, say, unique_sample

__all__ = ["run"]

log = logging.getLogger("switchnas")


def run(ctx: Context) -> Artifact:
    return memo(ctx, "profile", lambda: _run(ctx))


def _run(ctx: Context) -> Artifact:
    n = int(ctx.cfg.profile.n)
    if n < 4:
        raise ConfigError(f"profile.n={n}: at least 4 sub-networks are needed to fit a predictor")
    desc = ctx.plugin.describe()
    # Latency does not depend on the trained weights: only on the architecture.
    config = {**ctx.section("supernet.name", "supernet.net", "profile", "measure", "seed",
                            "hardware"), "describe": desc}

    def build(tmp: Path) -> dict[str, Any]:
        net = ctx.new_supernet()
        net.eval()  # type: ignore[attr-defined]
        configs = unique_sample(net.space, n, ctx.rng(1))
        if len(configs) < 4:
            raise ConfigError(
                f"profile: the search space holds only {len(configs)} distinct sub-networks "
                f"(space file {ctx.cfg.supernet.get('space_file')!r}); at least 4 are needed "
                "to fit a latency predictor: use a wider space (reduce.min_size)")
        if len(configs) < n:
            log.warning("profile: the search space holds only %d distinct sub-networks, "
                        "fewer than profile.n=%d: measuring all of them", len(configs), n)
        result = measure_configs(ctx, net, configs, salt=1)
        ds = MeasurementDataset.from_batch(desc, configs, result)
        if len(ds.rows) < 4:
            reasons = sorted({f for f in result.failures if f})
            raise MeasurementError(f"profile: only {len(ds.rows)} of {len(configs)} sub-networks "
                                   f"could be measured on {ctx.plugin.name}; causes: "
                                   f"{reasons[:3]}")
        ds.save(tmp / "latency.json")
        med = sorted(r["median_ms"] for r in ds.rows)
        rep = result.repeatability
        summary = {"n": len(ds.rows), "skipped": len(configs) - len(ds.rows), "min_ms": med[0],
                   "max_ms": med[-1], "hardware": desc, "protocol": result.protocol.get("name"),
                   "repeatability": rep, "warnings": result.warnings,
                   "overloaded": bool(result.conditions.get("overloaded", False)),
                   "seconds": round(result.elapsed_s, 2)}
        if rep:
            say(f"profile: {len(ds.rows)} sub-networks in {result.elapsed_s:.1f} s "
                  f"({summary['protocol']}), split-half Kendall {rep.get('kendall', float('nan')):.3f}, "
                  f"noise floor {100 * rep.get('noise_floor', float('nan')):.2f} %")
        if summary["overloaded"]:
            log.warning("profile: the machine was overloaded while measuring (load above the "
                        "core count): latencies are less trustworthy")
        return summary

    return ctx.artifacts.produce("profile", config=config, inputs={}, build=build)
