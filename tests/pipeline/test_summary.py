"""The end-of-run latency trust report: figures from the artifacts, plain warnings."""

from __future__ import annotations

import json
from pathlib import Path

from switchnas.pipeline.summary import MIN_KENDALL, format_trust_report, trust_report


def _run_dir(tmp: Path, *, floor: float, tau: float, mape: float,
             family: list[tuple[float, float]], overloaded: bool = False) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "profile").mkdir()
    (tmp / "fit").mkdir()
    (tmp / "family").mkdir()
    (tmp / "profile" / "stage.json").write_text(json.dumps({"summary": {
        "repeatability": {"kendall": 0.95, "rel_error": 2 * floor, "noise_floor": floor},
        "overloaded": overloaded}}))
    (tmp / "fit" / "report.json").write_text(json.dumps(
        {"latency": {"holdout": {"kendall": tau, "mape": mape, "rmse": 0.1}}}))
    (tmp / "family" / "family.json").write_text(json.dumps({"members": [
        {"id": f"m{i}", "latency_ms": m, "predicted_latency_ms": p}
        for i, (m, p) in enumerate(family)]}))
    return tmp


def test_a_trustworthy_run_has_no_warning(tmp_path: Path) -> None:
    rep = trust_report(_run_dir(tmp_path, floor=0.01, tau=0.9, mape=1.5,
                                family=[(1.0, 1.01), (2.0, 1.98), (3.0, 3.03)]))
    assert rep["warnings"] == []
    assert rep["noise_floor_pct"] == 1.0 and rep["family_same_order"] is True
    assert abs(rep["family_error_pct"] - 1.0) < 1e-9
    assert "noise floor 1.00 %" in format_trust_report(rep)


def test_each_problem_is_named_with_what_to_do(tmp_path: Path) -> None:
    rep = trust_report(_run_dir(tmp_path, floor=0.01, tau=MIN_KENDALL - 0.1, mape=9.0,
                                family=[(1.0, 1.3), (2.0, 1.2)], overloaded=True))
    text = format_trust_report(rep)
    assert len(rep["warnings"]) == 4, rep["warnings"]
    assert "Kendall tau 0.50 < 0.6" in text
    assert "more than twice the measured noise floor (1.0 %)" in text
    assert "different order" in text and "overloaded" in text
    assert text.count("WARNING:") == 4 and "measure.rounds" in text


def test_missing_artifacts_give_no_figure_and_no_warning(tmp_path: Path) -> None:
    rep = trust_report(tmp_path)
    assert rep["warnings"] == [] and rep["noise_floor_pct"] is None
    assert "n/a" in format_trust_report(rep)


def test_a_deterministic_plugin_warns_only_beyond_rounding(tmp_path: Path) -> None:
    exact = trust_report(_run_dir(tmp_path / "a", floor=0.0, tau=1.0, mape=0.0,
                                  family=[(1.0, 1.0 + 1e-12), (2.0, 2.0)]))
    assert exact["warnings"] == []
    off = trust_report(_run_dir(tmp_path / "b", floor=0.0, tau=1.0, mape=0.0,
                                family=[(1.0, 1.05), (2.0, 2.1)]))
    assert any("more than twice the measured noise floor (0.0 %)" in w for w in off["warnings"])
