"""How far a run's latency numbers can be trusted, said plainly at the end of the run.

:func:`trust_report` reads a finished run directory: the profile's measured noise floor
(split-half repeatability of its rounds), the latency predictor's held-out error and
ranking, the family's measured against predicted latency, and whether the machine was
overloaded while measuring. It returns the figures and the warnings a user should act on.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = ["MIN_KENDALL", "trust_report", "format_trust_report"]

#: below this held-out Kendall tau the latency predictor ranks sub-networks poorly
MIN_KENDALL = 0.6

_ADVICE = ("measure more rounds (measure.rounds, measure.max_rounds), run on an idle "
           "machine, or pin the measurement (measure.isolation=process)")


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def trust_report(run_dir: str | Path) -> dict[str, Any]:
    """Figures and warnings about the latency measurements of ``run_dir``.

    Returns:
        ``{"noise_floor_pct", "split_half_kendall", "holdout_kendall", "holdout_mape_pct",
        "family_error_pct", "family_same_order", "overloaded", "warnings": [str, ...]}``;
        a figure whose artifact is missing is ``None`` and produces no warning.
    """
    run = Path(run_dir)
    prof = (_read(run / "profile" / "stage.json") or {}).get("summary", {})
    explore = (_read(run / "explore" / "stage.json") or {}).get("summary", {})
    if explore:  # the search loop: the median noise floor of its measured batches
        prof = {"repeatability": {"noise_floor": explore.get("noise_floor"),
                                  "kendall": explore.get("split_half_kendall")},
                "overloaded": explore.get("overloaded")}
    rep = prof.get("repeatability") or {}
    floor = rep.get("noise_floor")
    floor_pct = 100 * float(floor) if floor is not None else None
    lat = ((_read(run / "fit" / "report.json") or {}).get("latency") or {}).get("holdout") or {}
    fam = (_read(run / "family" / "family.json") or {}).get("members") or []
    validate = (_read(run / "validate" / "stage.json") or {}).get("summary", {})
    out: dict[str, Any] = {
        "noise_floor_pct": floor_pct,
        "split_half_kendall": rep.get("kendall"),
        "holdout_kendall": lat.get("kendall"),
        "holdout_mape_pct": lat.get("mape"),
        "family_error_pct": None,
        "family_same_order": None,
        "overloaded": bool(prof.get("overloaded") or validate.get("overloaded")),
        "warnings": [],
    }
    if fam and not explore:  # explore's members carry no prediction: all are measured
        meas = [float(m["latency_ms"]) for m in fam]
        pred = [float(m["predicted_latency_ms"]) for m in fam]
        out["family_error_pct"] = 100 * sum(abs(p / m - 1) for p, m in zip(pred, meas, strict=True)
                                            ) / len(fam)
        order_m = sorted(range(len(fam)), key=lambda i: meas[i])
        order_p = sorted(range(len(fam)), key=lambda i: pred[i])
        out["family_same_order"] = order_m == order_p
    warn = out["warnings"]
    tau = out["holdout_kendall"]
    if tau is not None and math.isfinite(tau) and tau < MIN_KENDALL:
        warn.append(f"the latency predictor ranks held-out sub-networks poorly (Kendall tau "
                    f"{tau:.2f} < {MIN_KENDALL}); its front and family are unreliable: {_ADVICE}")
    err = out["family_error_pct"]
    # a deterministic plugin has a zero floor: errors below 0.5 % are rounding, not a warning
    if err is not None and floor_pct is not None and err > max(2 * floor_pct, 0.5):
        warn.append(f"the family's predicted latencies are off by {err:.1f} % on average, more "
                    f"than twice the measured noise floor ({floor_pct:.1f} %): {_ADVICE}")
    if out["family_same_order"] is False:
        warn.append("the family's members measured in a different order than predicted")
    if out["overloaded"]:
        warn.append("the machine was overloaded while measuring (load above its core "
                    "count): latencies are less trustworthy; " + _ADVICE)
    return out


def format_trust_report(report: dict[str, Any]) -> str:
    """The report as a few lines of text (what the run prints and logs)."""

    def f(v: Any, spec: str) -> str:
        return "n/a" if v is None else format(v, spec)

    lines = [f"latency trust: noise floor {f(report['noise_floor_pct'], '.2f')} % "
             f"(split-half Kendall {f(report['split_half_kendall'], '.3f')}); predictor held out "
             f"Kendall {f(report['holdout_kendall'], '.3f')}, MAPE "
             f"{f(report['holdout_mape_pct'], '.2f')} %; family measured vs predicted "
             f"{f(report['family_error_pct'], '.1f')} %"]
    lines += [f"WARNING: {w}" for w in report["warnings"]]
    return "\n".join(lines)
