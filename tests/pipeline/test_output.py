"""What the run shows: the terminal text also in Hydra's log file, and the runtime demo's
observations taken on the run's hardware plugin."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from switchnas.pipeline.stages._util import say
from switchnas.pipeline.stages.demo import member_observer
from switchnas.plugins.base import Measurement
from switchnas.plugins.cpu import CPUPlugin
from switchnas.plugins.flops import FlopsPlugin


def test_say_prints_and_writes_every_file_handler(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    handler = logging.FileHandler(tmp_path / "run.log")
    handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        say("\nfamily (x on cpu):\n  m0  1.000\n\nbundle: b")
        say("WARNING: slow", level=logging.WARNING)
    finally:
        root.removeHandler(handler)
        handler.close()
    assert capsys.readouterr().out == "\nfamily (x on cpu):\n  m0  1.000\n\nbundle: b\nWARNING: slow\n"
    assert (tmp_path / "run.log").read_text().splitlines() == [
        "[INFO] family (x on cpu):", "[INFO]   m0  1.000", "[INFO] bundle: b",
        "[WARNING] WARNING: slow"]


APP = """
import hydra
from switchnas.pipeline.stages._util import say

@hydra.main(version_base="1.3", config_path=None, config_name=None)
def app(cfg):
    say("runtime demo: target 1.00 ms\\n  (no switch needed)")

app()
"""


@pytest.mark.slow
def test_say_reaches_hydras_log_file(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(APP))
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, str(script), f"hydra.run.dir={run_dir}"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "runtime demo: target 1.00 ms" in proc.stdout
    assert proc.stdout.count("runtime demo") == 1  # printed once, not also by a console log
    log = (run_dir / "job.log").read_text()
    assert "[INFO] - runtime demo: target 1.00 ms" in log and "(no switch needed)" in log


@pytest.fixture(scope="module")
def work() -> dict[str, tuple[Any, Any]]:
    """Two real sub-networks of a small OFA-MobileNetV3, as the demo hands them over."""
    from switchnas.supernets.ofa.mbv3 import OFAMobileNetV3Net

    torch.manual_seed(0)
    net = OFAMobileNetV3Net(n_classes=10, width_mult=0.5, resolutions=[32])
    net.eval()
    small, big = net.space.smallest(), net.space.largest()
    return {"m0": (net.extract(small).eval(), net.example_input(small, 1)),
            "m1": (net.extract(big).eval(), net.example_input(big, 1))}


def test_a_deterministic_plugin_gives_its_own_values(work: dict[str, tuple[Any, Any]]) -> None:
    plugin = FlopsPlugin(gmacs_per_s=0.5)
    observe, how = member_observer(plugin, work)
    for mid, (mod, x) in work.items():
        assert observe(mid) == plugin.measure(mod, x).median_ms
        assert observe(mid) == observe(mid)  # computed, not timed
    assert observe("m1") > observe("m0")
    assert "flops" in how and "not timed" in how


def test_a_timing_plugin_times_with_its_own_timer(work: dict[str, tuple[Any, Any]]) -> None:
    plugin = CPUPlugin(threads=1)
    observe, how = member_observer(plugin, work)
    samples = {mid: [observe(mid) for _ in range(9)] for mid in work}
    assert all(v > 0 and np.isfinite(v) for s in samples.values() for v in s)
    assert "timed by the cpu plugin" in how


class MeasureOnly:
    """A plugin with only ``measure()`` (no ``prepare``): counts its calls."""

    name = "counting"

    def __init__(self) -> None:
        self.calls = 0

    def describe(self) -> dict[str, Any]:
        return {"plugin": self.name}

    def measure(self, module: Any, example_input: Any) -> Measurement:
        self.calls += 1
        return Measurement(samples_ms=(2.0, 3.0, 4.0))


def test_other_plugins_are_asked_through_measure(work: dict[str, tuple[Any, Any]]) -> None:
    plugin = MeasureOnly()
    observe, how = member_observer(plugin, work)
    assert observe("m0") == 3.0 and observe("m1") == 3.0
    assert plugin.calls == 2  # one measure() per observation
    assert "counting plugin's measure()" in how
