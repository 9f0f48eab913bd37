"""``switchnas report``: the static HTML page of a run directory, its graceful sections, its
refusal of what is not a run directory, and the page as a headless browser renders it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from switchnas.pipeline.cli import main as cli_main
from switchnas.pipeline.report import REPORT_NAME, RunDirectoryError, build_report

SECTIONS = ("summary", "fronts", "family", "predictors", "measurement-intervals",
            "selector-trace", "run")
#: anything that makes a page fetch something: a URL in src/href/url() (an in-page
#: ``url(#id)`` is fine), a script, a link, a frame, an import
EXTERNAL = re.compile(r"""(?:src|href|action|data)\s*=\s*["']?\s*(?:[a-z]+:)?//|"""
                      r"""url\(\s*["']?(?!#)|<script|<link|<iframe|@import""", re.I)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def section_html(page: str, name: str) -> str:
    """The markup of ``<section id=name>`` in a report."""
    m = re.search(rf'<section id="{name}">(.*?)</section>', page, re.S)
    assert m, f"no section {name!r}"
    return m.group(1)


def minimal_config(run_dir: Path) -> None:
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("seed: 0\nsupernet:\n  name: ofa_mbv3\n")


# -- fast: refusals and graceful sections -------------------------------------------------------
def test_a_missing_path_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(RunDirectoryError, match=r"nowhere.*not a directory"):
        build_report(tmp_path / "nowhere")


def test_a_folder_that_is_no_run_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(RunDirectoryError) as err:
        build_report(tmp_path)
    assert str(tmp_path) in str(err.value)
    assert ".hydra/config.yaml" in str(err.value) and "stage.json" in str(err.value)
    assert not (tmp_path / REPORT_NAME).exists()


def test_the_command_refuses_a_non_run_directory_with_status_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "switchnas report: error" in err and str(tmp_path) in err


def test_help_lists_the_report_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["--help"]) == 0
    assert re.search(r"^\s+report\s+.*RUN_DIR", capsys.readouterr().out, re.M)


def test_a_run_without_artefacts_gets_a_page_of_not_run_sections(tmp_path: Path) -> None:
    minimal_config(tmp_path)
    path = build_report(tmp_path)
    assert path == tmp_path / REPORT_NAME
    page = path.read_text()
    for name in SECTIONS:
        section_html(page, name)
    assert "could not be drawn" not in page
    for name in ("fronts", "family", "predictors", "selector-trace"):
        assert "not run:" in section_html(page, name), name
    assert "not run: family" in section_html(page, "family")
    assert "not run: export" in section_html(page, "selector-trace")
    assert "ofa_mbv3" in section_html(page, "run")  # the config is shown
    assert not list(tmp_path.glob(f".{REPORT_NAME}.*"))  # no temporary file left


def test_a_damaged_artefact_spoils_only_its_section(tmp_path: Path) -> None:
    minimal_config(tmp_path)
    (tmp_path / "family").mkdir()
    (tmp_path / "family" / "stage.json").write_text("{}")
    (tmp_path / "family" / "family.json").write_text("{not json")
    page = build_report(tmp_path, out=tmp_path / "elsewhere" / "r.html").read_text()
    assert "could not be drawn: JSONDecodeError" in section_html(page, "family")
    assert "could not be drawn" not in section_html(page, "run")
    assert not (tmp_path / REPORT_NAME).exists()


# -- slow: real runs -------------------------------------------------------------------------------
def check_common(page: str, run_dir: Path) -> None:
    for name in SECTIONS:
        section_html(page, name)
    assert not EXTERNAL.search(page), EXTERNAL.search(page)
    assert "http://" not in page and "https://" not in page
    members = json.loads((run_dir / "family" / "family.json").read_text())["members"]
    fam = section_html(page, "family")
    for m in members:
        assert f"<td class=\"l\">{m['id']}</td>" in fam, m["id"]
        assert f"{m['latency_ms']:.3f} [{m['latency_low_ms']:.3f}" in fam
    fronts = section_html(page, "fronts")
    assert "<svg" in fronts and ">family<" in fronts
    assert all(f">{m['id']}<" in fronts for m in members)  # the members are labelled
    assert "<svg" in section_html(page, "measurement-intervals")
    trace = section_html(page, "selector-trace")
    assert "<svg" in trace and "feedback" in trace and "oracle" in trace
    assert "runtime demo: target" in trace  # what the demo stage printed
    meta = section_html(page, "run")
    assert "torch" in meta and "preset_name: tiny" in meta
    assert "could not be drawn" not in page


@pytest.mark.slow
def test_report_of_a_tiny_run(tiny_run: tuple[Path, str], tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run[0], run_dir)
    assert cli_main(["report", str(run_dir)]) == 0
    page = (run_dir / REPORT_NAME).read_text()
    check_common(page, run_dir)
    # the search loop keeps no predictor: said; its last surrogates are cross-validated
    pred = section_html(page, "predictors")
    assert "not run: fit" in pred and "search loop" in pred and "hypervolume gain" in pred
    assert pred.count("<svg") == 2 and "5-fold cross-validated on the 30 sub-networks" in pred
    assert "noise floor \u00b1" in pred
    assert "not run: search" in section_html(page, "fronts")
    # every evaluation's interval, read from the run's study
    assert "30 sub-networks measured by the search loop" in section_html(
        page, "measurement-intervals")


@pytest.mark.slow
def test_report_of_a_oneshot_run_has_parity_plots(oneshot_run: tuple[Path, str],
                                                  tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(oneshot_run[0], run_dir)
    page = build_report(run_dir).read_text()
    check_common(page, run_dir)
    pred = section_html(page, "predictors")
    assert pred.count("<svg") == 2
    assert "noise floor \u00b1" in pred  # the band on the latency plot
    fit = json.loads((run_dir / "fit" / "report.json").read_text())
    # the plotted held-out predictions are those the fit stage reported on
    for target in ("latency", "accuracy"):
        m = re.search(rf"{target}: (\d+) held-out rows.*?recomputed MAPE ([0-9.]+) %", pred,
                      re.S)
        assert m, target
        assert int(m.group(1)) == fit[target]["n_holdout"]
        assert float(m.group(2)) == pytest.approx(fit[target]["holdout"]["mape"], abs=0.006)
    assert "predicted front (search" in section_html(page, "fronts")


# -- slow: the page in a headless browser -----------------------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get "
                    "install chromium); the rendered page cannot be checked")
def test_the_report_renders_in_a_headless_browser(tiny_run: tuple[Path, str],
                                                  tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run[0], run_dir)
    path = build_report(run_dir).resolve()
    base = [str(CHROMIUM), "--headless", "--disable-gpu", "--no-sandbox",
            f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0"]
    proc = subprocess.run([*base, "--dump-dom", path.as_uri()], capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    for name in SECTIONS:
        assert f'<section id="{name}">' in dom, name
    assert dom.count("<svg") >= 3
    members = json.loads((run_dir / "family" / "family.json").read_text())["members"]
    assert all(f">{m['id']}<" in dom for m in members)
    # no console message (errors from the page itself) and no failed load
    console = [line for line in proc.stderr.splitlines()
               if "CONSOLE" in line or "Failed to load resource" in line]
    assert not console, console
    shot = tmp_path / "shot.png"
    proc = subprocess.run([*base, f"--screenshot={shot}", "--window-size=1200,3000",
                           path.as_uri()], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0 and shot.stat().st_size > 20_000, proc.stderr[-2000:]
