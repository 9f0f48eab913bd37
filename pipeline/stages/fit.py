"""Stage ``fit``: a latency and an accuracy predictor, each chosen by cross-validation
among the registered candidates; held-out MAPE, RMSE and Kendall tau are reported."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from switchnas.predictors.dataset import MeasurementDataset
from switchnas.predictors.metrics import regression_report
from switchnas.predictors.selection import select_encoding_and_predictor, select_predictor

from ..artifacts import Artifact
from ..context import Context
from . import evaluate, profile
from ._util import memo, read_json, write_json

__all__ = ["encode", "encodings", "load_predictors", "run"]

log = logging.getLogger("switchnas")


def run(ctx: Context) -> Artifact:
    return memo(ctx, "fit", lambda: _run(ctx))


def encodings(net: Any, configs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The encodings a super-network offers its predictors (the space's by default)."""
    if hasattr(net, "predictor_encodings"):
        return dict(net.predictor_encodings(configs))
    return {"space": net.space.encode(configs)}


def encode(net: Any, name: str, configs: list[dict[str, Any]]) -> np.ndarray:
    return encodings(net, configs)[name]


def _fit_one(Xs: dict[str, np.ndarray], y: np.ndarray, *, candidates: Any, cv: int,
             holdout: float, seed: int, metric: str) -> tuple[Any, dict[str, Any]]:
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(y))
    n_test = max(2, round(holdout * len(y))) if holdout > 0 else 0
    test, train = idx[:n_test], idx[n_test:]
    model, report = select_encoding_and_predictor(
        {k: X[train] for k, X in Xs.items()}, y[train], candidates=candidates, cv=cv,
        seed=seed, metric=metric)
    enc = report["encoding"]
    held = regression_report(y[test], model.predict(Xs[enc][test])) if n_test else {}
    # The model used downstream is refitted on every row.
    final, _ = select_predictor(Xs[enc], y, candidates=[report["chosen"]], cv=cv, seed=seed,
                                metric=metric)
    return final, {"chosen": report["chosen"], "encoding": enc,
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
        lat_model, lat_rep = _fit_one(X_lat, y_lat, candidates=pcfg.latency_candidates, cv=cv,
                                      holdout=holdout, seed=seed, metric="mape")
        acc_model, acc_rep = _fit_one(X_acc, y_acc, candidates=pcfg.accuracy_candidates, cv=cv,
                                      holdout=holdout, seed=seed, metric="rmse")
        # Our own fitted scikit-learn estimators, read back only by later stages of this run.
        with open(tmp / "predictors.pkl", "wb") as f:
            pickle.dump({"latency": lat_model, "accuracy": acc_model,
                         "encodings": {"latency": lat_rep["encoding"],
                                       "accuracy": acc_rep["encoding"]}}, f)
        report = {"latency": lat_rep, "accuracy": {**acc_rep, "metric": acc["metric"]}}
        write_json(tmp / "report.json", report)
        for what, rep in report.items():
            h = rep["holdout"]
            if h:
                print(f"fit {what:8s}: {rep['chosen']:<8s} on {rep['encoding']:<9s} held-out MAPE {h['mape']:.2f}%  "
                      f"RMSE {h['rmse']:.4g}  Kendall tau {h['kendall']:.3f}  "
                      f"(train {rep['n_train']}, held out {rep['n_holdout']})")
        return report

    return ctx.artifacts.produce("fit", config=ctx.section("predictor", "fit", "seed"),
                                 inputs={"profile": prof.digest, "evaluate": ev.digest},
                                 build=build)


def load_predictors(art: Artifact) -> dict[str, Any]:
    with open(art / "predictors.pkl", "rb") as f:
        return dict(pickle.load(f))
