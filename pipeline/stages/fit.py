"""Stage ``fit``: a latency and an accuracy predictor, each chosen (model and encoding) by
cross-validation among ``predictor.latency_candidates``/``accuracy_candidates`` (``null``:
:data:`~switchnas.predictors.selection.DEFAULT_CANDIDATES`); held-out MAPE, RMSE and
Kendall tau are reported. Each is saved as a
:class:`~switchnas.predictors.fitted.FittedPredictor`: it carries its encoding, so later
stages give it configs or genomes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from switchnas.predictors.dataset import MeasurementDataset
from switchnas.predictors.fitted import FittedPredictor, config_encodings, describe
from switchnas.predictors.metrics import regression_report
from switchnas.predictors.persist import load_predictor, save_predictor
from switchnas.predictors.selection import (
    DEFAULT_CANDIDATES,
    select_encoding_and_predictor,
    select_predictor,
)

from ..artifacts import Artifact
from ..context import Context
from . import evaluate, profile
from ._util import memo, read_json, say, write_json

__all__ = ["PREDICTORS", "candidates", "encode", "encodings", "fit_one", "holdout_rows",
           "load_predictors", "min_rows", "run"]

#: The predictors ``fit`` writes, as ``<name>.skops`` (+ ``.skops.json``) in its folder.
PREDICTORS = ("latency", "accuracy")
#: The fewest rows a predictor is cross-validated on (see ``select_predictor``).
MIN_TRAIN_ROWS = 4

log = logging.getLogger("switchnas")


def run(ctx: Context) -> Artifact:
    return memo(ctx, "fit", lambda: _run(ctx))


def encodings(net: Any, configs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The encodings a super-network offers its predictors (the space's by default):
    :func:`switchnas.predictors.fitted.config_encodings`."""
    return config_encodings(net, configs)


def encode(net: Any, name: str, configs: list[dict[str, Any]]) -> np.ndarray:
    """One of :func:`encodings` by name."""
    return encodings(net, configs)[name]


def candidates(names: Any) -> list[str]:
    """The model names ``fit`` cross-validates for a ``predictor.*_candidates`` entry:
    the list as given, or :data:`~switchnas.predictors.selection.DEFAULT_CANDIDATES`
    for ``null``."""
    return list(DEFAULT_CANDIDATES) if names is None else [str(n) for n in names]


def holdout_rows(n: int, holdout: float) -> int:
    """Rows of ``n`` held out to report the fit (at least 2 when ``holdout > 0``)."""
    return max(2, round(holdout * n)) if holdout > 0 else 0


def min_rows(holdout: float) -> int:
    """The fewest measured rows ``fit`` accepts with ``fit.holdout=holdout``: what is
    left after the held-out rows must still be enough to cross-validate.

    Raises:
        ValueError: ``holdout`` is not in ``[0, 0.9)``.
    """
    if not 0 <= holdout < 0.9:
        raise ValueError(f"fit.holdout={holdout}: must be in [0, 0.9)")
    n = MIN_TRAIN_ROWS
    while n - holdout_rows(n, holdout) < MIN_TRAIN_ROWS:
        n += 1
    return n


def fit_one(net: Any, Xs: dict[str, np.ndarray], y: np.ndarray, *, names: list[str],
            cv: int, holdout: float, seed: int, metric: str
            ) -> tuple[FittedPredictor, dict[str, Any]]:
    """What ``fit`` does for one target: choose a model among ``names`` and an encoding
    among ``Xs`` by cross-validation on the rows left after a held-out share, report the
    held-out error, and refit the choice on every row.

    Args:
        net: the super-network (or space) ``Xs`` encodes (named in the predictor).
        Xs: its encodings of the measured configs, ``{name: (n, d)}``.
        y: the targets ``(n,)``.
        names: candidate model names (see :func:`candidates`).
        cv, seed, metric: as in :func:`~switchnas.predictors.selection.select_predictor`.
        holdout: the share of rows held out (see :func:`holdout_rows`).

    Returns:
        ``(FittedPredictor, report)``; the report holds ``chosen``, ``encoding``,
        ``candidates`` (``names``), ``cv`` (``{encoding: {model: scores}}``),
        ``holdout`` (its :func:`~switchnas.predictors.metrics.regression_report`),
        ``n_train`` and ``n_holdout``.
    """
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(y))
    n_test = holdout_rows(len(y), holdout)
    test, train = idx[:n_test], idx[n_test:]
    model, report = select_encoding_and_predictor(
        {k: X[train] for k, X in Xs.items()}, y[train], candidates=names, cv=cv,
        seed=seed, metric=metric)
    enc = report["encoding"]
    held = regression_report(y[test], model.predict(Xs[enc][test])) if n_test else {}
    # The model used downstream is refitted on every row.
    final, _ = select_predictor(Xs[enc], y, candidates=[report["chosen"]], cv=cv, seed=seed,
                                metric=metric)
    return FittedPredictor(final, enc, describe(net, Xs[enc])), {
        "chosen": report["chosen"], "encoding": enc, "candidates": names,
                   "cv": {k: r["cv"] for k, r in report["by_encoding"].items()},
                   "holdout": held, "n_train": len(train), "n_holdout": n_test}


def _run(ctx: Context) -> Artifact:
    prof, ev = profile.run(ctx), evaluate.run(ctx)
    pcfg = ctx.cfg.predictor

    def build(tmp: Path) -> dict[str, Any]:
        net = ctx.new_supernet()
        ds = MeasurementDataset.load(prof / "latency.json")
        acc = read_json(ev / "accuracy.json")
        X_lat = encodings(net, [r["config"] for r in ds.rows])
        y_lat = np.asarray([r["median_ms"] for r in ds.rows], float)
        X_acc = encodings(net, [r["config"] for r in acc["rows"]])
        y_acc = np.asarray([r["score"] for r in acc["rows"]], float)
        holdout, cv, seed = float(ctx.cfg.fit.holdout), int(pcfg.cv), int(ctx.cfg.seed)
        lat_model, lat_rep = fit_one(net, X_lat, y_lat,
                                     names=candidates(pcfg.latency_candidates), cv=cv,
                                     holdout=holdout, seed=seed, metric="mape")
        acc_model, acc_rep = fit_one(net, X_acc, y_acc,
                                     names=candidates(pcfg.accuracy_candidates), cv=cv,
                                     holdout=holdout, seed=seed, metric="rmse")
        # skops files (no pickle): loading them runs no code from the run directory.
        save_predictor(lat_model, tmp / "latency.skops")
        save_predictor(acc_model, tmp / "accuracy.skops")
        floor = (ds.meta.get("repeatability") or {}).get("noise_floor")
        lat_rep["noise_floor_pct"] = 100 * float(floor) if floor is not None else None
        report = {"latency": lat_rep, "accuracy": {**acc_rep, "metric": acc["metric"]}}
        write_json(tmp / "report.json", report)
        for what, rep in report.items():
            h = rep["holdout"]
            if h:
                nf = rep.get("noise_floor_pct")
                beside = f"  [measurement noise floor {nf:.2f}%]" if nf is not None else ""
                line = (f"fit {what:8s}: {rep['chosen']:<8s} on {rep['encoding']:<9s} "
                        f"held-out MAPE {h['mape']:.2f}%  RMSE {h['rmse']:.4g}  Kendall tau "
                        f"{h['kendall']:.3f}  (train {rep['n_train']}, held out "
                        f"{rep['n_holdout']}){beside}")
                say(line)
        return report

    return ctx.artifacts.produce("fit", config=ctx.section("predictor", "fit", "seed"),
                                 inputs={"profile": prof.digest, "evaluate": ev.digest},
                                 build=build)


def load_predictors(art: Artifact) -> dict[str, FittedPredictor]:
    """The ``fit`` stage's predictors, by name (:data:`PREDICTORS`).

    Each is loaded with :func:`switchnas.predictors.persist.load_predictor`: only
    allow-listed types, nothing executed; each carries its encoding
    (``predict_configs(net, configs)``, ``predict_genomes(net, genomes)``).

    Raises:
        PredictorFileError: a predictor file is missing, edited or names other types.
    """
    return {name: load_predictor(art / f"{name}.skops") for name in PREDICTORS}
