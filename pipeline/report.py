"""``switchnas report RUN_DIR``: one static HTML page about a run, readable without a server.

:func:`build_report` reads a run directory's artefacts (each stage's folder and
``stage.json``, ``.hydra/``, ``cli.log``) and writes ``RUN_DIR/report.html`` (atomically)
with these sections:

- **Summary**: the latency trust report (:func:`switchnas.pipeline.summary.trust_report`).
- **Fronts**: accuracy against latency: every measured sub-network, the measured front
  with its intervals, the predictor's front (``search``) and the family highlighted.
- **Family**: one row per member: its config in short, predicted and measured latency
  with intervals, predicted and measured accuracy.
- **Predictors**: parity plots (predicted against measured, held-out rows only) with the
  measurements' noise floor as a band, and the fit metrics.
- **Measurement intervals**: each measured sub-network's median with p10-p90 bars.
- **Selector trace**: the bundle's tables replayed through its selector
  (:mod:`switchnas.runtime.simulate`) under the run's ``runtime_demo`` load trace:
  latency, target and member per request; plus what the demo stage printed.
- **Run**: config, overrides, hardware, library versions and each stage's timing.

A section whose artefacts the run does not have says ``not run: ...`` and why; a run
directory that is no run directory is refused with :class:`RunDirectoryError`. Figures are
inline SVG (matplotlib), the style inline CSS; the page has no script and loads nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .artifacts import atomic_write_text
from .report_template import esc, figure, missing, page, problem, section, table

__all__ = ["REPORT_NAME", "RunDirectoryError", "build_report", "main"]

log = logging.getLogger("switchnas")

#: The file :func:`build_report` writes in the run directory by default.
REPORT_NAME = "report.html"
#: Stage folders in the order a run makes them (``export`` writes ``export.dir``).
_STAGES = ("train", "explore", "profile", "evaluate", "fit", "search", "validate", "family",
           "export", "reduce")


class RunDirectoryError(ValueError):
    """The path given is not a switchnas run directory."""


class _Missing(Exception):  # noqa: N818 - a section's "not run" outcome, not an error
    """A section's artefacts are absent: the report says ``not run: <reason>``."""


class _Run:
    """A run directory's artefacts, read on demand."""

    def __init__(self, path: Path):
        self.path = path
        self._json: dict[Path, Any] = {}
        self.cfg = self._config()

    def _config(self) -> Any:
        p = self.path / ".hydra" / "config.yaml"
        if not p.is_file():
            return None
        from omegaconf import OmegaConf

        return OmegaConf.load(p)

    def get(self, key: str, default: Any = None) -> Any:
        """A resolved config value by dotted key (``default`` when absent)."""
        if self.cfg is None:
            return default
        from omegaconf import OmegaConf

        value = OmegaConf.select(self.cfg, key, default=default)
        if hasattr(value, "_content"):  # a DictConfig/ListConfig: plain values
            return OmegaConf.to_container(value, resolve=True)
        return value

    def dir(self, stage: str) -> Path:
        if stage == "export":
            return self.path / str(self.get("export.dir", "bundle") or "bundle")
        return self.path / stage

    def has(self, stage: str) -> bool:
        return (self.dir(stage) / "stage.json").is_file()

    def read(self, stage: str, name: str, *, why: str = "") -> Any:
        """A JSON file of a stage; :class:`_Missing` (naming it) when the stage did not run."""
        p = self.dir(stage) / name
        if p not in self._json:
            if not p.is_file():
                raise _Missing(f"{stage} ({p} is missing{'; ' + why if why else ''})")
            self._json[p] = json.loads(p.read_text())
        return self._json[p]

    def manifest(self, stage: str) -> dict[str, Any]:
        return dict(self.read(stage, "stage.json"))

    @property
    def front_stage(self) -> str:
        """The stage holding the measured front: ``explore`` or ``validate``."""
        if self.has("explore"):
            return "explore"
        if self.has("validate"):
            return "validate"
        raise _Missing("explore or validate (no measured front: neither explore/measured.json "
                       "nor validate/measured.json exists)")

    @property
    def metric(self) -> str:
        for stage, name in (("family", "family.json"), ("explore", "measured.json"),
                            ("validate", "measured.json"), ("evaluate", "accuracy.json")):
            try:
                return str(self.read(stage, name)["metric"])
            except (_Missing, KeyError, TypeError, ValueError):  # absent or damaged
                continue
        return "accuracy"

    @property
    def hardware(self) -> dict[str, Any]:
        for stage, name in (("family", "family.json"), ("explore", "measured.json"),
                            ("validate", "measured.json")):
            try:
                return dict(self.read(stage, name)["hardware"])
            except (_Missing, KeyError, TypeError, ValueError):  # absent or damaged
                continue
        try:
            return dict(self.manifest("profile")["summary"]["hardware"])
        except (_Missing, KeyError, TypeError, ValueError):
            return {}


def _check_run_dir(path: Path) -> None:
    if not path.is_dir():
        raise RunDirectoryError(f"{str(path)!r} is not a directory; expected a switchnas run "
                                "directory (the hydra.run.dir of `switchnas run`)")
    stages = [s for s in _STAGES if (path / s / "stage.json").is_file()]
    if not stages and not (path / ".hydra" / "config.yaml").is_file() and not any(
            path.glob("*/stage.json")):
        raise RunDirectoryError(
            f"{str(path)!r} is not a switchnas run directory: it has neither .hydra/config.yaml "
            "nor a stage folder with a stage.json (train/, explore/, family/ ...), as "
            "`switchnas run hydra.run.dir=...` writes")


def build_report(run_dir: str | Path, *, out: str | Path | None = None) -> Path:
    """Write the static HTML report of a run directory.

    Args:
        run_dir: a directory written by ``switchnas run`` (or any single stage): it must
            hold ``.hydra/config.yaml`` or at least one ``<stage>/stage.json``.
        out: where to write the page (an existing folder: ``report.html`` in it);
            ``None``: ``<run_dir>/report.html``. Written atomically (a temporary file in
            the same folder, then renamed).

    Returns:
        The path of the written page.

    Raises:
        RunDirectoryError: ``run_dir`` is not a directory, or not a run directory.
    """
    path = Path(run_dir)
    _check_run_dir(path)
    import matplotlib

    run = _Run(path)
    builders: list[tuple[str, Callable[[_Run], str]]] = [
        ("Summary", _summary), ("Fronts", _fronts), ("Family", _family),
        ("Predictors", _predictors), ("Measurement intervals", _intervals),
        ("Selector trace", _selector_trace), ("Run", _metadata)]
    # text stays text in the SVG (smaller, searchable); the same run gives the same ids.
    # Figures are made without pyplot: the caller's backend and rcParams are left alone.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "switchnas-report"}):
        sections = [(title, _render(title, fn, run)) for title, fn in builders]
    name = run.get("supernet.name", "?")
    hw = run.hardware
    subtitle = (f"{path.resolve()} \u00b7 {name} on {hw.get('plugin', '?')} "
                f"({hw.get('device', '?')}) \u00b7 report written "
                f"{time.strftime('%Y-%m-%d %H:%M:%S %z')}")
    target = path / REPORT_NAME if out is None else Path(out)
    if target.is_dir():
        target = target / REPORT_NAME
    atomic_write_text(target, page(f"switchnas run report: {path.name}", sections,
                                   subtitle=subtitle))
    return target


def _render(title: str, fn: Callable[[_Run], str], run: _Run) -> str:
    try:
        return fn(run)
    except _Missing as exc:
        return missing(str(exc))
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        # a damaged artefact spoils one section, not the page
        log.warning("report: section %s: %s: %s", title, type(exc).__name__, exc)
        return problem(f"{type(exc).__name__}: {exc}")


# -- sections -------------------------------------------------------------------------------
def _summary(run: _Run) -> str:
    from .summary import format_trust_report, trust_report

    rep = trust_report(run.path)
    figures = [("noise floor (%)", rep["noise_floor_pct"]),
               ("split-half Kendall tau", rep["split_half_kendall"]),
               ("latency predictor held-out Kendall tau", rep["holdout_kendall"]),
               ("latency predictor held-out MAPE (%)", rep["holdout_mape_pct"]),
               ("family: measured vs predicted latency (%)", rep["family_error_pct"]),
               ("family measured in the predicted order", rep["family_same_order"]),
               ("machine overloaded while measuring", rep["overloaded"])]
    warnings = "".join(f'<li class="warn">{esc(w)}</li>' for w in rep["warnings"])
    done = [s for s in _STAGES if run.has(s)]
    return section(
        f"<p>Stages in this run directory: {esc(', '.join(done) or 'none')}.</p>",
        table(["latency trust", "value"], figures),
        f"<ul>{warnings}</ul>" if warnings else "<p>No warning about the latency numbers.</p>",
        f"<pre>{esc(format_trust_report(rep))}</pre>")


def _figure(**kwargs: Any) -> Any:
    """A matplotlib ``Figure`` (no pyplot: no backend, no global figure list)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _interval(r: dict[str, Any]) -> tuple[float, float]:
    lat = float(r["latency_ms"])
    return float(r.get("latency_low_ms", lat)), float(r.get("latency_high_ms", lat))


def _xerr(rows: Sequence[dict[str, Any]]) -> np.ndarray:
    lat = np.asarray([float(r["latency_ms"]) for r in rows])
    lo, hi = (np.asarray(v) for v in zip(*(_interval(r) for r in rows), strict=True))
    return np.clip(np.stack([lat - lo, hi - lat]), 0, None)


def _fronts(run: _Run) -> str:
    stage = run.front_stage
    measured = run.read(stage, "measured.json")
    rows = measured["rows"]
    metric = run.metric
    fig = _figure(figsize=(8, 5), dpi=100)
    ax = fig.subplots()
    notes = []
    if stage == "explore":
        every = run.read("explore", "all.json")["rows"]
        obj = np.asarray([r["objectives"][:2] for r in every], float)
        ok = np.all(np.isfinite(obj), axis=1)
        ax.plot(obj[ok, 0], -obj[ok, 1], ".", color="0.65",
                label=f"measured by the search loop ({ok.sum()}; {metric} on the held-out split)")
    if run.has("search"):
        front = sorted(run.read("search", "front.json")["rows"], key=lambda r: r["latency_ms"])
        ax.step([r["latency_ms"] for r in front], [r["accuracy"] for r in front], where="post",
                color="C0", lw=1, alpha=0.7)
        ax.plot([r["latency_ms"] for r in front], [r["accuracy"] for r in front], ".",
                color="C0", ms=3, label=f"predicted front (search, {len(front)} points)")
        if stage == "validate":
            for r in rows:
                ax.plot([r["predicted_latency_ms"], r["latency_ms"]],
                        [r["predicted_accuracy"], r["accuracy"]], "-", color="C0", lw=0.6,
                        alpha=0.6)
    else:
        notes.append("predicted front: not run: search (the search loop, explore, keeps no "
                     "predictor front; run with explore.enabled=false for one)")
    ax.errorbar([r["latency_ms"] for r in rows], [r["accuracy"] for r in rows],
                xerr=_xerr(rows), fmt="s", color="C1", ms=4, capsize=2,
                label=f"measured front ({stage}, test split; bars: 95 % interval)")
    par = sorted((r for r in rows if r.get("pareto")), key=lambda r: r["latency_ms"])
    ax.step([r["latency_ms"] for r in par], [r["accuracy"] for r in par], where="post",
            color="C1", lw=1)
    try:
        members = run.read("family", "family.json")["members"]
    except _Missing as exc:
        members = []
        notes.append(f"family: not run: {exc}")
    if members:
        ax.plot([m["latency_ms"] for m in members], [m["accuracy"] for m in members], "*",
                color="C3", ms=14, mec="k", mew=0.6, label="family", zorder=5)
        for m in members:
            ax.annotate(m["id"], (m["latency_ms"], m["accuracy"]), xytext=(6, 6),
                        textcoords="offset points", fontsize=9, color="C3")
    ax.set_xlabel(f"latency (ms) on {run.hardware.get('plugin', 'the hardware')}")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    caption = (f"Accuracy against latency. The measured front comes from the {stage} stage; "
               "stars mark the family's members."
               + (" Thin lines join each validated sub-network's prediction to its "
                  "measurement." if stage == "validate" and run.has("search") else ""))
    return section(figure(fig, caption), *(missing(n.split("not run: ", 1)[1]) if "not run"
                                           in n else esc(n) for n in notes))


def _config_summary(config: dict[str, Any]) -> str:
    """A sub-network config in a line: short lists in full, long ones by their mean."""
    parts = []
    for k, v in config.items():
        if isinstance(v, list) and len(v) > 6 and all(isinstance(x, (int, float)) for x in v):
            parts.append(f"{k} mean {np.mean(v):.2f} (of {len(v)})")
        elif isinstance(v, list):
            parts.append(f"{k}={','.join(map(str, v))}")
        else:
            parts.append(f"{k}={v}")
    return " \u00b7 ".join(parts)


def _family(run: _Run) -> str:
    fam = run.read("family", "family.json")
    members = fam["members"]
    explore = run.front_stage == "explore"
    mape = None
    if run.has("fit"):
        mape = ((run.read("fit", "report.json").get("latency") or {}).get("holdout") or {}
                ).get("mape")
    rows = []
    for m in members:
        lo, hi = _interval(m)
        pred = None if explore else float(m["predicted_latency_ms"])
        pred_txt = "\u2013" if pred is None else (
            f"{pred:.3f}" + (f" [{pred * (1 - mape / 100):.3f}, {pred * (1 + mape / 100):.3f}]"
                             if mape is not None else ""))
        cfg = json.dumps(m["config"], separators=(",", ":"))
        rows.append([m["id"], f"{esc(_config_summary(m['config']))}<details><summary>config"
                              f"</summary><code>{esc(cfg)}</code></details>",
                     pred_txt, f"{float(m['latency_ms']):.3f} [{lo:.3f}, {hi:.3f}]",
                     None if explore else m.get("predicted_accuracy"), m["accuracy"]])
    metric = fam.get("metric", run.metric)
    notes = []
    if explore:
        notes.append("Every member was measured by the search loop: there is no predicted "
                     "latency or accuracy to show.")
    elif mape is not None:
        notes.append(f"Predicted latency interval: \u00b1 the latency predictor's held-out MAPE "
                     f"({mape:.2f} %).")
    notes.append("Measured latency: median [95 % interval] on the run's hardware; "
                 f"{metric} on the test split.")
    bundle = run.dir("export")
    notes.append(f"Bundle: {bundle}" if (bundle / "manifest.json").is_file()
                 else "Bundle: not run: export")
    return section(
        table(["member", "config", "predicted latency ms", "measured latency ms",
               f"predicted {metric}", f"measured {metric}"], rows, left=(0, 1), raw=(1,)),
        *(f"<p>{esc(n)}</p>" for n in notes))


def _parity_rows(run: _Run, target: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Held-out ``(measured, predicted, (2, n) p10/p90 or None)`` of the fit stage's
    ``target``: the chosen model refitted on the training rows of the stage's own split
    (the same seed and held-out count), predicting the held-out rows."""
    from switchnas.predictors.selection import select_predictor

    from .context import Context
    from .stages import fit as fit_stage

    rep = run.read("fit", "report.json")[target]
    if not rep.get("n_holdout"):
        raise _Missing(f"held-out rows (fit.holdout=0: the {target} predictor was fitted on "
                       "every row)")
    if target == "latency":
        data = run.read("profile", "latency.json")["rows"]
        y = np.asarray([r["median_ms"] for r in data], float)
        band = (np.asarray([[r.get("p10_ms", r["median_ms"]) for r in data],
                            [r.get("p90_ms", r["median_ms"]) for r in data]], float))
    else:
        data = run.read("evaluate", "accuracy.json")["rows"]
        y = np.asarray([r["score"] for r in data], float)
        band = None
    if run.cfg is None:
        raise _Missing("the run's config (.hydra/config.yaml), needed to encode the configs")
    net = Context(run.cfg, run.path).new_supernet()
    X = fit_stage.encode(net, str(rep["encoding"]), [r["config"] for r in data])
    seed = int(run.get("seed", 0))
    idx = np.random.default_rng(seed).permutation(len(y))
    test, train = idx[:int(rep["n_holdout"])], idx[int(rep["n_holdout"]):]
    model, _ = select_predictor(X[train], y[train], candidates=[str(rep["chosen"])],
                                cv=int(run.get("predictor.cv", 5)), seed=seed,
                                metric="mape" if target == "latency" else "rmse")
    pred = np.asarray(model.predict(X[test]), float)
    return y[test], pred, None if band is None else band[:, test]


def _parity_figure(target: str, y: np.ndarray, pred: np.ndarray, band: np.ndarray | None,
                   floor: float | None, unit: str, *, yerr: np.ndarray | None = None) -> Any:
    fig = _figure(figsize=(4.6, 4.4), dpi=100)
    ax = fig.subplots()
    lo = float(min(y.min(), pred.min()))
    hi = float(max(y.max(), pred.max()))
    pad = 0.05 * (hi - lo or 1.0)
    line = np.linspace(lo - pad, hi + pad, 50)
    ax.plot(line, line, "-", color="0.3", lw=0.8, label="predicted = measured")
    if floor is not None and floor > 0:
        ax.fill_between(line, line * (1 - floor), line * (1 + floor), color="C2", alpha=0.2,
                        label=f"noise floor \u00b1{100 * floor:.2f} %")
    if band is not None:
        xerr = np.clip(np.stack([y - band[0], band[1] - y]), 0, None)
        ax.errorbar(y, pred, xerr=xerr, fmt="o", color="C0", ms=4, elinewidth=0.7,
                    capsize=2, label="held out (bars: p10\u2013p90 of the rounds)")
    elif yerr is not None:
        ax.errorbar(y, pred, yerr=yerr, fmt="o", color="C0", ms=4, elinewidth=0.7, capsize=2,
                    label="held out (bars: surrogate spread)")
    else:
        ax.plot(y, pred, "o", color="C0", ms=4, label="held out")
    # the points set the square axes; long p10-p90 bars are cut at the edge
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal")
    ax.set_xlabel(f"measured {unit}")
    ax.set_ylabel(f"predicted {unit}")
    ax.set_title(f"{target} predictor", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def _predictors(run: _Run) -> str:
    if not run.has("fit"):
        if not run.has("explore"):
            raise _Missing(f"fit ({run.dir('fit') / 'report.json'} is missing)")
        return section(
            missing("fit (this run used the search loop, explore, whose surrogates are "
                    "refitted every round and not kept; below, its last round's surrogates "
                    "cross-validated on what it measured; explore.enabled=false runs the "
                    "profile/fit chain)"),
            _loop_parity(run), _loop_rounds(run))
    report = run.read("fit", "report.json")
    parts = []
    metrics_rows = []
    for target in ("latency", "accuracy"):
        rep = report.get(target)
        if not rep:
            parts.append(missing(f"the {target} predictor (not in fit/report.json)"))
            continue
        h = rep.get("holdout") or {}
        floor_pct = rep.get("noise_floor_pct")
        metrics_rows.append([target, rep.get("chosen"), rep.get("encoding"), rep.get("n_train"),
                             rep.get("n_holdout"), h.get("mape"), h.get("rmse"),
                             h.get("kendall"), h.get("spearman"), h.get("within10"),
                             floor_pct])
        try:
            y, pred, band = _parity_rows(run, target)
        except _Missing as exc:
            parts.append(missing(str(exc)))
            continue
        unit = "latency (ms)" if target == "latency" else rep.get("metric", run.metric)
        floor = None if floor_pct is None or target != "latency" else float(floor_pct) / 100
        caption = (f"{target}: {len(y)} held-out rows, predicted by the chosen model "
                   f"({rep.get('chosen')} on {rep.get('encoding')}) refitted on the training "
                   f"rows; recomputed MAPE {_mape(y, pred):.2f} % (fit stage: "
                   f"{_num(h.get('mape'))} %)."
                   + (" The band is the measurements' noise floor (split-half relative error)."
                      if floor else " No noise floor: the score is computed, not timed."))
        parts.append(figure(_parity_figure(target, y, pred, band, floor, str(unit)), caption))
    cv_rows = [[target, enc, model, s.get("mape"), s.get("rmse"), s.get("kendall")]
               for target in ("latency", "accuracy")
               for enc, models in ((report.get(target) or {}).get("cv") or {}).items()
               for model, s in models.items()]
    return section(
        table(["predictor", "model", "encoding", "train rows", "held out", "MAPE %", "RMSE",
               "Kendall tau", "Spearman", "within 10 %", "noise floor %"], metrics_rows,
              left=(0, 1, 2)),
        '<div class="row">' + "".join(
            f"<div>{p}</div>" for p in parts) + "</div>",
        "<details><summary>cross-validation of every candidate (training rows)</summary>"
        + table(["predictor", "encoding", "model", "MAPE %", "RMSE", "Kendall tau"], cv_rows,
                left=(0, 1, 2)) + "</details>")


def _loop_parity(run: _Run, folds: int = 5) -> str:
    """Parity of the search loop's surrogates: the models its last round chose, each
    point predicted by a fit on the other folds (bars: the bootstrap spread the loop
    explores by), with the loop's median noise floor as the latency band."""
    from sklearn.model_selection import KFold

    from switchnas.predictors.metrics import regression_report
    from switchnas.search.surrogate import ObjectiveSurrogates

    from .context import Context

    every = run.read("explore", "all.json")["rows"]
    rounds = run.read("explore", "history.json").get("rounds") or []
    chosen = next((r["models"] for r in reversed(rounds) if r.get("models")), None)
    if chosen is None:
        raise _Missing("the loop's surrogates (every round of the loop was random)")
    if run.cfg is None:
        raise _Missing("the run's config (.hydra/config.yaml), needed to encode the configs")
    Y = np.asarray([r["objectives"] for r in every], float)
    keep = np.all(np.isfinite(Y), axis=1)
    Y = Y[keep][:, :len(chosen)]
    if len(Y) < 2 * folds:
        raise _Missing(f"enough measurements for {folds}-fold cross-validation ({len(Y)})")
    space = Context(run.cfg, run.path).new_supernet().space
    X = space.one_hot_genomes(space.to_genomes([r["config"] for r, k in zip(every, keep,
                                                                           strict=True) if k]))
    seed = int(run.get("seed", 0))
    pred, std = np.empty_like(Y), np.empty_like(Y)
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(X):
        sur = ObjectiveSurrogates(chosen=list(chosen), seed=seed).fit(X[train], Y[train])
        pred[test], std[test] = sur.predict(X[test]), sur.predict_std(X[test])
    floor = (run.manifest("explore").get("summary") or {}).get("noise_floor")
    metric = run.metric
    parts, rows = [], []
    for j, (target, sign, unit) in enumerate((("latency", 1.0, "latency (ms)"),
                                              ("accuracy", -1.0, f"{metric} (held-out split)"))):
        y, p = sign * Y[:, j], sign * pred[:, j]
        rep = regression_report(y, p)
        rows.append([target, chosen[j], "one-hot genome", len(y) - len(y) // folds,
                     f"{folds}-fold", rep.get("mape"), rep.get("rmse"), rep.get("kendall"),
                     rep.get("spearman"), rep.get("within10"),
                     None if floor is None or j else 100 * float(floor)])
        fig = _parity_figure(target, y, p, None, None if j or floor is None else float(floor),
                             unit, yerr=std[:, j])
        parts.append(figure(fig, f"{target}: the loop's surrogate ({chosen[j]}), "
                                 f"{folds}-fold cross-validated on the {len(y)} sub-networks "
                                 f"it measured; MAPE {rep['mape']:.2f} %. Bars: the bootstrap "
                                 "spread the loop explores by."))
    return section(
        table(["predictor", "model", "encoding", "train rows", "held out", "MAPE %", "RMSE",
               "Kendall tau", "Spearman", "within 10 %", "noise floor %"], rows,
              left=(0, 1, 2)),
        '<div class="row">' + "".join(f"<div>{p}</div>" for p in parts) + "</div>")


def _loop_rounds(run: _Run) -> str:
    if not run.has("explore"):
        return ""
    hist = run.read("explore", "history.json")
    rows = [[r.get("round"), r.get("measured"), r.get("new"),
             ", ".join(map(str, r.get("models") or [])) or "(random)", r.get("gain")]
            for r in hist.get("rounds", [])]
    return section("<h3>The search loop's rounds</h3>",
                   table(["round", "measured", "new", "surrogates", "hypervolume gain"], rows,
                         left=(3,)),
                   f"<p>Stopped: {esc(hist.get('stopped'))}.</p>")


def _mape(y: np.ndarray, p: np.ndarray) -> float:
    return float(100 * np.mean(np.abs(p - y) / np.maximum(np.abs(y), 1e-12)))


def _num(v: Any) -> str:
    return "\u2013" if v is None else f"{float(v):.2f}"


def _intervals(run: _Run) -> str:
    if run.has("profile"):
        data = run.read("profile", "latency.json")
        rows = sorted(data["rows"], key=lambda r: r["median_ms"])
        med = np.asarray([r["median_ms"] for r in rows], float)
        lo = np.asarray([r.get("p10_ms", m) for r, m in zip(rows, med, strict=True)], float)
        hi = np.asarray([r.get("p90_ms", m) for r, m in zip(rows, med, strict=True)], float)
        what, source = "p10\u2013p90 of the rounds", "profile"
    elif (trials := _study_intervals(run)) is not None:
        med, lo, hi = (np.asarray(v, float) for v in zip(*sorted(trials), strict=True))
        what, source = "95 % interval of the median", "the search loop (its study's trials)"
    else:
        stage = run.front_stage
        rows = sorted(run.read(stage, "measured.json")["rows"], key=lambda r: r["latency_ms"])
        med = np.asarray([r["latency_ms"] for r in rows], float)
        lo, hi = (np.asarray(v, float) for v in zip(*(_interval(r) for r in rows), strict=True))
        what, source = "95 % interval of the median", f"{stage} (the measured front)"
    fig = _figure(figsize=(8, 3.6), dpi=100)
    ax = fig.subplots()
    x = np.arange(len(med))
    ax.errorbar(x, med, yerr=np.clip(np.stack([med - lo, hi - med]), 0, None), fmt="o",
                color="C0", ms=3, capsize=2)
    ax.set_xlabel("sub-network (sorted by median latency)")
    ax.set_ylabel("latency (ms)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    rel = (hi - lo) / np.maximum(med, 1e-12)
    return section(
        figure(fig, f"{len(med)} sub-networks measured by {source}: median and {what}."),
        table(["", "value"], [["sub-networks", len(med)],
                              ["median relative width of the interval (%)",
                               float(100 * np.median(rel))],
                              ["widest relative interval (%)", float(100 * rel.max())]]))


def _study_intervals(run: _Run) -> list[tuple[float, float, float]] | None:
    """``(median, low, high)`` latency of every completed trial of the explore stage's
    study in the run's own ``study.db``; ``None`` when there is none to read."""
    db = run.path / "study.db"
    if not run.has("explore") or not db.is_file():
        return None
    name = (run.manifest("explore").get("summary") or {}).get("study")
    if not name:
        return None
    import optuna

    try:
        study = optuna.load_study(study_name=str(name), storage=f"sqlite:///{db.resolve()}")
        trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    except Exception as exc:  # noqa: BLE001 - optional: a missing or locked study, say
        log.info("report: %s: %s; intervals of the measured front only", db, exc)
        return None
    out = []
    for t in trials:
        if not t.values or not np.isfinite(t.values[0]):
            continue
        lat = float(t.values[0])
        out.append((lat, float(t.user_attrs.get("latency_low_ms", lat)),
                    float(t.user_attrs.get("latency_high_ms", lat))))
    return out or None


class _Recording:
    """A selector that records the latencies it is shown (what :func:`replay` observes)."""

    def __init__(self, selector: Any):
        self._selector = selector
        self.observed: list[float] = []

    @property
    def current(self) -> str:
        return str(self._selector.current)

    @property
    def infeasible(self) -> bool:
        return bool(getattr(self._selector, "infeasible", False))

    def step(self, observed_ms: float) -> Any:
        self.observed.append(float(observed_ms))
        return self._selector.step(observed_ms)


def _demo_lines(run: _Run) -> list[str]:
    """What the demo stage printed (the last block in ``cli.log``), without timestamps."""
    log_file = run.path / "cli.log"
    if not log_file.is_file():
        return []
    lines = [re.sub(r"^\[[^\]]*\]\[[^\]]*\]\s?", "", x)
             for x in log_file.read_text(errors="replace").splitlines()]
    starts = [i for i, x in enumerate(lines) if x.startswith("runtime demo:")]
    if not starts:
        return []
    out = [lines[starts[-1]]]
    for x in lines[starts[-1] + 1:]:
        if not x.startswith("  "):
            break
        out.append(x)
    return out


def _selector_trace(run: _Run) -> str:
    from switchnas.runtime import make_selector
    from switchnas.runtime.simulate import compare, format_table, members_from_bundle, replay

    bundle = run.dir("export")
    if not (bundle / "manifest.json").is_file():
        raise _Missing(f"export ({bundle / 'manifest.json'} is missing: no bundle to replay)")
    members = members_from_bundle(bundle)
    requests = int(run.get("runtime_demo.requests", 60) or 60)
    shape = [float(v) for v in (run.get("runtime_demo.load") or [1.0])]
    load = np.asarray([shape[min(i * len(shape) // max(requests, 1), len(shape) - 1)]
                       for i in range(requests)], float)
    target = run.get("runtime_demo.target_ms")
    target = float(target) if target is not None else 1.25 * max(m.latency_ms for m in members)
    seed = int(run.get("seed", 0))
    rec = _Recording(make_selector("feedback", members, target_ms=target))
    res = replay(members, load, rec, target_ms=target, seed=seed, policy="feedback")
    ids = [m.id for m in sorted(members, key=lambda m: m.latency_ms)]
    fig = _figure(figsize=(8, 5), dpi=100)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    x = np.arange(len(load))
    top.plot(x, rec.observed, "-o", ms=3, color="C0", label="observed latency")
    top.axhline(target, color="C3", ls="--", lw=1, label=f"target {target:.2f} ms")
    top.set_ylabel("latency (ms)")
    right = top.twinx()
    load_line = right.step(x, load, where="mid", color="0.5", lw=1, label="load factor")
    right.set_ylabel("load factor", color="0.4")
    handles, labels = top.get_legend_handles_labels()
    top.legend([*handles, *load_line], [*labels, "load factor (right axis)"], fontsize=8,
               loc="upper left")
    top.grid(alpha=0.3)
    bottom.step(x, [ids.index(m) for m in res.ran], where="mid", color="C1")
    bottom.set_yticks(range(len(ids)), ids)
    bottom.set_ylabel("member")
    bottom.set_xlabel("request")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    how = ("runtime_demo.target_ms" if run.get("runtime_demo.target_ms") is not None
           else "1.25 x the slowest member's table latency, as the demo sets it")
    caption = (f"The bundle's latency table replayed through the feedback selector under the "
               f"run's runtime_demo load trace ({requests} requests, 3 % noise, seed {seed}); "
               f"target {target:.2f} ms ({how}).")
    policies = compare(members, load, target_ms=target, seed=seed)
    demo = _demo_lines(run)
    return section(
        figure(fig, caption),
        "<h3>Policies on the same trace</h3>",
        f"<pre>{esc(format_table(policies))}</pre>",
        "<h3>What the demo stage printed</h3>",
        f"<pre>{esc(chr(10).join(demo))}</pre>" if demo else
        missing("demo (no 'runtime demo:' block in cli.log)"))


def _metadata(run: _Run) -> str:
    hydra = run.path / ".hydra"
    parts = []
    hw = run.hardware
    parts.append("<h3>Hardware</h3>" + (table(["key", "value"], sorted(hw.items()),
                                              left=(0, 1)) if hw else missing("no stage "
                                                                              "describes it")))
    rows: list[list[Any]] = []
    versions: dict[str, str] = {}
    for stage in _STAGES:
        try:
            man = run.manifest(stage)
        except _Missing:
            rows.append([stage, "not run", None, None, ""])
            continue
        versions.update(man.get("versions") or {})
        origin = "artifact store" if man.get("from_store") else "built"
        summary = json.dumps(man.get("summary") or {}, default=str)
        rows.append([stage, origin, man.get("seconds"), man.get("created"),
                     f"<details><summary>summary</summary><code>{esc(summary)}</code>"
                     "</details>"])
    parts.append("<h3>Stages</h3>" + table(["stage", "", "seconds", "created", "summary"],
                                            rows, left=(0, 1, 3, 4), raw=(4,)))
    parts.append("<h3>Versions</h3>" + (table(["library", "version"], sorted(versions.items()),
                                              left=(0, 1)) if versions else
                                        missing("no stage manifest lists them")))
    for name, title in (("overrides.yaml", "Overrides"), ("config.yaml", "Config")):
        p = hydra / name
        parts.append(f"<h3>{title}</h3>" + (f"<pre>{esc(p.read_text())}</pre>" if p.is_file()
                                            else missing(f"{p} is missing")))
    return section(*parts)


# -- command line ---------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """``switchnas report RUN_DIR [--out FILE]``: write the report, print its path.

    Returns:
        0 on success, 2 when ``RUN_DIR`` is not a run directory, 1 when the page cannot
        be written.
    """
    parser = argparse.ArgumentParser(
        prog="switchnas report",
        description="Write a static HTML report of a run directory (fronts, family, "
                    "predictor parity, measurement intervals, selector trace, metadata).")
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR",
                        help="a run directory (the hydra.run.dir of `switchnas run`)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"where to write the page (default: RUN_DIR/{REPORT_NAME})")
    args = parser.parse_args(argv)
    try:
        path = build_report(args.run_dir, out=args.out)
    except RunDirectoryError as exc:
        print(f"switchnas report: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the page cannot be written there
        print(f"switchnas report: error: cannot write the report: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
