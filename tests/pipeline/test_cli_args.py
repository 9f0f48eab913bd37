"""The ``switchnas`` command line with a real entry-point plugin installed: Hydra flags in
any position, ``--help`` listing entry-point plugins, the top-level usage."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from switchnas.pipeline.cli import USAGE, hydra_argv, main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "thirdparty_plugin"
CLI = [sys.executable, "-m", "switchnas.pipeline.cli"]
SP = "hydra.searchpath=[pkg://x.conf]"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture plugin package pip-installed (with its entry point) into a folder."""
    tmp = tmp_path_factory.mktemp("cli_plugin")
    src, target = tmp / "src", tmp / "site"
    shutil.copytree(FIXTURE, src)  # building writes into the source tree
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
         "--no-index", "--quiet", "--target", str(target), str(src)],
        capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"pip install of the fixture failed:\n{proc.stdout}\n{proc.stderr}")
    return target


def switchnas(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(site), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300,
                          env=env, cwd=cwd)


@pytest.mark.parametrize(("args", "expected"), [
    ([], [SP]),
    (["a=1", "b=2"], ["a=1", "b=2", SP]),
    (["-m", "search=evolution,nsga2"], ["search=evolution,nsga2", SP, "-m"]),
    (["--cfg", "job", "hardware=x"], ["hardware=x", SP, "--cfg", "job"]),
    (["hardware=x", "--cfg", "job"], ["hardware=x", SP, "--cfg", "job"]),
    (["--cfg=job", "a=1"], ["a=1", SP, "--cfg=job"]),
    (["--info"], [SP, "--info"]),
    (["--info", "searchpath", "a=1"], ["a=1", SP, "--info", "searchpath"]),
    (["--info", "a=1"], ["a=1", SP, "--info"]),  # a=1 is not one of --info's choices
    (["--multi", "a=1,2"], ["a=1,2", SP, "--multi"]),  # argparse's unique long prefix
    (["-cn", "other", "-m", "a=1", "--", "b=2"], ["a=1", "b=2", SP, "-cn", "other", "-m"]),
])
def test_added_overrides_join_the_users_whatever_the_flags(args: list[str],
                                                            expected: list[str]) -> None:
    assert hydra_argv(args, [SP]) == expected
    assert hydra_argv(args, []) == [a for a in expected if a != SP]


def test_usage_names_each_command_once(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == USAGE.strip()
    block = out[out.index("commands:"):out.index("\n\n", out.index("commands:"))]
    # a command line starts at column 2; its commands are what precedes the description
    named = [name.strip() for line in block.splitlines()[1:]
             if line.startswith("  ") and not line.startswith("   ")
             for name in line.strip().split("  ")[0].split(",")]
    assert sorted(named) == sorted({*named}), named
    assert {"run", "reduce", "plugins", "simulate", "train", "explore", "demo"} <= {*named}


@pytest.mark.slow
def test_cfg_flag_before_a_plugin_override(site: Path, tmp_path: Path) -> None:
    proc = switchnas(site, tmp_path, "run", "--cfg", "job", "hardware=thirdparty")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "unrecognized arguments" not in proc.stderr
    assert "_target_: switchnas_thirdparty.plugin.ThirdPartyPlugin" in proc.stdout
    assert "label: from-yaml" in proc.stdout
    assert not (tmp_path / "runs").exists()  # --cfg prints, it runs nothing


@pytest.mark.slow
def test_multirun_flag_before_the_overrides(site: Path, tmp_path: Path) -> None:
    # Every job is refused by the config check (lock_timeout < 0) before any work: that
    # it gets there shows the command line parsed and each job's config composed with the
    # plugin's config folder on the search path.
    proc = switchnas(site, tmp_path, "search", "-m", "hardware=thirdparty",
                     "search=evolution,nsga2", "lock_timeout=-5",
                     f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert "unrecognized arguments" not in proc.stderr, proc.stderr[-3000:]
    assert "Launching 2 jobs" in proc.stdout + proc.stderr, proc.stderr[-3000:]
    assert "hardware=thirdparty search=evolution" in proc.stdout + proc.stderr
    assert "switchnas: error: lock_timeout=-5" in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 2


@pytest.mark.slow
def test_info_flag_shows_the_plugin_search_path(site: Path, tmp_path: Path) -> None:
    proc = switchnas(site, tmp_path, "run", "--info", "searchpath")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "pkg://switchnas_thirdparty.conf" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_help_lists_entry_point_plugins(site: Path, tmp_path: Path) -> None:
    proc = switchnas(site, tmp_path, "run", "--help")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "hardware: cpu, cuda, flops, lut, onnxruntime" in out  # Hydra's own groups
    section = out[out.index("(entry points)"):]
    hardware = next(line for line in section.splitlines() if line.startswith("hardware"))
    assert "thirdparty (switchnas-thirdparty-plugin 0.0.1)" in hardware
    assert any(line.startswith("selectors") for line in section.splitlines())


@pytest.mark.slow
def test_help_without_entry_point_plugins_says_so(tmp_path: Path) -> None:
    proc = subprocess.run([*CLI, "train", "--help"], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "hardware (hardware=NAME): none installed" in proc.stdout
