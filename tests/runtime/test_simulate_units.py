"""Unit tests of the simulator: replay bookkeeping, seeds, and the CLI's defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from switchnas.runtime import simulate as sim
from switchnas.runtime.manager import ModelSpec
from switchnas.runtime.selectors import MemberInfo

from .test_manager import TABLE

MEMBERS = [MemberInfo("a", 0.6, 2.0), MemberInfo("b", 0.8, 4.0)]


class _Fixed:
    """A selector without an ``infeasible`` attribute that always runs ``current``."""

    def __init__(self, current: str):
        self.current = current
        self.seen: list[float] = []

    def step(self, latency_ms: float) -> None:
        self.seen.append(latency_ms)


def test_replay_counts_infeasible_only_when_the_selector_says_so() -> None:
    """A selector without ``infeasible`` never counts as infeasible, however late it is."""
    sel = _Fixed("b")
    res = sim.replay(MEMBERS, [1.0, 3.0, 3.0, 1.0], sel, target_ms=1.0, noise=0.0)
    assert res.infeasible_requests == 0 and res.miss_rate == 1.0
    assert sel.seen == [4.0, 12.0, 12.0, 4.0] and res.mean_accuracy == pytest.approx(0.8)


@pytest.mark.parametrize("policy", ["manager", "feedback", "static", "performance",
                                    "powersave", "schedutil"])
def test_replay_ops_mean_accuracy_is_that_of_the_members_run(policy: str) -> None:
    """``mean_accuracy`` is the mean accuracy of the member run for each request."""
    spec = ModelSpec(name="a", table=TABLE, target_ms=5.0)
    (res,) = sim.replay_ops([spec], sim.make_trace("step", 30, high=2.5), policy=policy,
                            noise=0.0)
    acc = dict(TABLE.accuracy)
    assert len(res.ran) == 30
    assert res.mean_accuracy == pytest.approx(float(np.mean([acc[m] for m in res.ran])))


def test_replay_ops_noise_follows_the_seed() -> None:
    """The same seed gives the same noisy latencies; another seed other ones."""
    spec = ModelSpec(name="a", table=TABLE, target_ms=50.0)

    def lat(seed: int) -> float:
        return sim.replay_ops([spec], [1.0] * 20, policy="performance", noise=0.5,
                              seed=seed)[0].mean_latency_ms

    for seed in range(5):
        assert lat(seed) == lat(seed)
    assert len({lat(seed) for seed in range(5)}) == 5


def test_cli_default_noise(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``--noise`` the CLI replays with the documented sigma 0.03 (and seed 0)."""
    seen: dict[str, Any] = {}
    real = sim.compare

    def spy(*args: Any, **kw: Any) -> list[sim.SimResult]:
        seen.update(kw)
        return real(*args, **kw)

    monkeypatch.setattr(sim, "members_from_bundle", lambda path, hardware=None: MEMBERS)
    monkeypatch.setattr(sim, "compare", spy)
    assert sim.main(["--bundle", "unused", "--n", "9"]) == 0
    assert seen["noise"] == 0.03 and seen["seed"] == 0
    assert sim.main(["--bundle", "unused", "--n", "9", "--noise", "0.2", "--seed", "7"]) == 0
    assert seen["noise"] == 0.2 and seen["seed"] == 7


def test_cli_ops_passes_the_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--ops --seed S`` replays the operating-point tables with noise seed ``S``."""
    TABLE.write(tmp_path / "cam.json")
    seen: list[Any] = []
    real = sim.compare_ops

    def spy(*args: Any, **kw: Any) -> list[sim.OpsResult]:
        seen.append(kw.get("seed", 0))
        return real(*args, **kw)

    monkeypatch.setattr(sim, "compare_ops", spy)
    for seed in (0, 3):
        assert sim.main(["--ops", str(tmp_path / "cam.json"), "--n", "9", "--seed", str(seed),
                         "--policy", "performance"]) == 0
    assert seen == [0, 3]


@pytest.mark.parametrize("ops", [False, True])
def test_a_policy_list_naming_nothing_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str],
                                                ops: bool) -> None:
    """``--policy ,`` names no policy: exit 2 with a message naming the flag (it crashed
    with a TypeError in format_table), and an empty table still prints its header."""
    monkeypatch.setattr(sim, "members_from_bundle", lambda path, hardware=None: MEMBERS)
    args = ["--n", "9", "--policy", ","]
    if ops:
        args += ["--ops", "/nonexistent/ops.json"]
    else:
        args += ["--bundle", "unused"]
    assert sim.main(args) == 2
    err = capsys.readouterr().err
    assert ("--policy ',' names no policy" in err) or (ops and "ops.json" in err)
    assert sim.format_table([]).splitlines()[0].split() == [
        "policy", "miss_rate", "mean_accuracy", "switches", "settle_mean", "settle_max",
        "mean_latency_ms"]
