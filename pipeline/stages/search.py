"""Stage ``search``: the predicted Pareto front, found by a search strategy scoring whole
populations of genomes against the two predictors, under optional constraints
(``search.max_latency_ms``, ``search.min_accuracy``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from switchnas.predictors import fitted
from switchnas.search.strategies import GenomeScorer, SearchStrategy, upper_bounds

from ..artifacts import Artifact
from ..context import ConfigError, Context, instantiate_config
from . import fit
from ._util import memo, write_json

__all__ = ["STAGE_KEYS", "genome_encodings", "predictor_scorer", "run", "strategy_from_config"]

#: Keys of the ``search`` section that this stage reads itself; the others are the
#: strategy's options.
STAGE_KEYS = ("name", "max_latency_ms", "min_accuracy")


def run(ctx: Context) -> Artifact:
    return memo(ctx, "search", lambda: _run(ctx))


def strategy_from_config(section: DictConfig) -> SearchStrategy:
    """The strategy a ``search`` config section names (``_target_`` and its options;
    :data:`STAGE_KEYS` are left out).

    Raises:
        ConfigError: the strategy refuses an option (named, with what is allowed).
    """
    options = OmegaConf.masked_copy(section, [str(k) for k in section if k not in STAGE_KEYS])
    strategy: SearchStrategy = instantiate_config(options, f"search {section.get('name')}")
    return strategy


def genome_encodings(net: Any, genomes: np.ndarray) -> dict[str, np.ndarray]:
    """The encodings a super-network offers its predictors, for a population of genomes:
    ``net.predictor_encodings_genomes`` where it has one, else the config path
    (``predictor_encodings`` or the space's ``encode``):
    :func:`switchnas.predictors.fitted.genome_encodings`."""
    return fitted.genome_encodings(net, genomes)


def predictor_scorer(net: Any, latency: Any, accuracy: Any) -> GenomeScorer:
    """Genomes -> ``[latency, -accuracy]`` predicted by two
    :class:`~switchnas.predictors.fitted.FittedPredictor` (or any estimator with an
    ``encoding`` attribute naming the encoding it was fitted on); the encodings are
    computed once per population and each predictor takes its own."""
    lat, acc = (p if isinstance(p, fitted.FittedPredictor) else
                fitted.FittedPredictor(p, p.encoding) for p in (latency, accuracy))

    def score(genomes: np.ndarray) -> np.ndarray:
        Xs = genome_encodings(net, genomes)
        return np.stack([lat.predict_from(Xs), -np.asarray(acc.predict_from(Xs))], axis=1)

    return score


def _limits(section: Mapping[str, Any]) -> tuple[float | None, float | None]:
    lat, acc = section.get("max_latency_ms"), section.get("min_accuracy")
    return (None if lat is None else float(lat)), (None if acc is None else float(acc))


def _run(ctx: Context) -> Artifact:
    ft = fit.run(ctx)
    strategy = strategy_from_config(ctx.cfg.search)
    max_lat, min_acc = _limits(ctx.cfg.search)

    def build(tmp: Path) -> dict[str, Any]:
        net = ctx.new_supernet()
        space = net.space
        models = fit.load_predictors(ft)
        score = predictor_scorer(net, models["latency"], models["accuracy"])
        if max_lat is not None:
            fastest = float(score(space.to_genomes([space.smallest()]))[0, 0])
            if fastest > max_lat:
                raise ConfigError(
                    f"search.max_latency_ms={max_lat:g} is infeasible: the smallest "
                    f"sub-network is predicted at {fastest:.3g} ms on this hardware")
        constraints = None
        if max_lat is not None or min_acc is not None:
            constraints = upper_bounds([max_lat, None if min_acc is None else -min_acc])
        res = strategy.run(space, score, seed=int(ctx.cfg.seed), constraints=constraints,
                           progress=ctx.progress)
        front = res.front()
        if not len(front):
            lat, acc = res.objectives[:, 0], -res.objectives[:, 1]
            shown = ["null" if v is None else f"{v:g}" for v in (max_lat, min_acc)]
            raise ConfigError(
                f"no candidate meets the constraints (search.max_latency_ms={shown[0]}, "
                f"search.min_accuracy={shown[1]}): predicted latency ranges "
                f"{lat.min():.3g}-{lat.max():.3g} ms and accuracy {acc.min():.3g}-"
                f"{acc.max():.3g} over {res.evaluations} candidates")
        configs = space.from_genomes(res.genomes[front])
        rows = [{"config": c, "latency_ms": float(res.objectives[i, 0]),
                 "accuracy": float(-res.objectives[i, 1])}
                for c, i in zip(configs, front, strict=True)]
        write_json(tmp / "front.json", {"rows": rows, "evaluated": res.evaluations,
                                        "history": res.history})
        return {"evaluated": res.evaluations, "front": len(rows),
                "latency_ms": [rows[0]["latency_ms"], rows[-1]["latency_ms"]]}

    return ctx.artifacts.produce("search", config=ctx.section("search", "seed"),
                                 inputs={"fit": ft.digest}, build=build)
