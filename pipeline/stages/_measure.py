"""How the stages measure sub-networks: one batch per stage through the plugin's batch
protocol (:func:`switchnas.plugins.batch.measure_batch`), with the ``measure`` config
section as its policy and a fixed reference sub-network of the space."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from switchnas.plugins.batch import BatchPolicy, BatchResult, measure_batch

from ..context import Context
from ._util import workload

__all__ = ["batch_policy", "measure_configs", "reference_config"]


def batch_policy(ctx: Context, salt: int = 0) -> BatchPolicy:
    """The ``measure`` section as a :class:`BatchPolicy` (seeded by ``seed`` and ``salt``)."""
    section = ctx.section("measure")["measure"] or {}
    return BatchPolicy(**section, seed=int(ctx.cfg.seed) * 1000 + salt)


def reference_config(space: Any) -> dict[str, Any]:
    """The space's middle sub-network (the median choice at every position): the fixed
    reference every batch of this space is paired with, so that its cost is close to the
    typical measured one and ratios stay near 1."""
    big = space.largest()
    cfg: dict[str, Any] = {}
    for name, choices in space.dimensions.items():
        vals = [sorted(c)[len(c) // 2] for c in choices]
        cfg[name] = vals if isinstance(big[name], list) else vals[0]
    return space.validate(cfg)


def measure_configs(ctx: Context, net: Any, configs: Sequence[Mapping[str, Any]], *,
                    salt: int = 0, level_ms: float | None = None,
                    plugin: Any = None) -> BatchResult:
    """Measure ``configs`` of ``net`` together on the run's hardware plugin.

    Every batch of a run is paired with the same reference sub-network
    (:func:`reference_config`); ``level_ms`` (the reference's level in the profile) puts
    this batch in the profile's units, so that validated latencies compare with what the
    predictor learnt even if the machine ran faster or slower meanwhile.

    ``plugin``: another hardware plugin to measure on (an extra target of ``explore``);
    ``None``: the run's own (``ctx.plugin``).
    """
    work = [workload(net, c) for c in configs]
    reference = workload(net, reference_config(net.space))
    result = measure_batch(ctx.plugin if plugin is None else plugin, work, reference=reference,
                           policy=batch_policy(ctx, salt), progress=ctx.progress)
    return result if level_ms is None else result.rescaled(level_ms)
