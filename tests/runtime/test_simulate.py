from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from switchnas.runtime import simulate as sim
from switchnas.runtime.selectors import MemberInfo

MEMBERS = [MemberInfo(f"m{i}", 0.6 + 0.04 * i, 2.0 * 1.5**i) for i in range(5)]


@pytest.mark.parametrize("name", sorted(sim.TRACES))
def test_traces(name: str) -> None:
    t = sim.make_trace(name, 300, high=2.5)
    assert t.shape == (300,) and t.min() >= 1.0 - 1e-9 and t.max() <= 2.5 + 1e-9


def test_csv_trace(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("time,load\n0,1.0\n1,1.5\n2,2\n")
    (tmp_path / "b.csv").write_text("1\n3\n")
    assert sim.make_trace(f"csv:{tmp_path / 'a.csv'}").tolist() == [1.0, 1.5, 2.0]
    assert sim.read_csv_trace(tmp_path / "b.csv").tolist() == [1.0, 3.0]
    (tmp_path / "c.csv").write_text("load\n1\n-2\n")
    with pytest.raises(ValueError, match="positive"):
        sim.read_csv_trace(tmp_path / "c.csv")
    with pytest.raises(ValueError, match="unknown trace 'nope'"):
        sim.make_trace("nope")


def test_feedback_beats_step_on_a_step_trace() -> None:
    load = sim.make_trace("step", 600)
    res = {r.policy: r for r in sim.compare(MEMBERS, load, target_ms=4.95)}
    fb, st = res["feedback"], res["step"]
    assert fb.miss_rate <= 0.5 * st.miss_rate
    assert fb.mean_accuracy >= st.mean_accuracy - 1e-9
    assert fb.settle_max is not None and fb.settle_max <= 2
    assert res["static"].switches == 0
    assert res["oracle"].miss_rate <= fb.miss_rate + 0.01


def test_settle_times() -> None:
    load = [1, 1, 2, 2, 2, 2, 1, 1]
    ran = ["a", "a", "a", "a", "b", "b", "b", "a"]
    assert sim.settle_times(load, ran) == [2, 1]
    assert sim.settle_times([1.0, 1.0], ["a", "b"]) == []


def test_cli(bundle_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    rc = sim.main(["--bundle", str(bundle_dir), "--trace", "periodic", "--target-ms", "6",
                   "--policy", "feedback,step", "--n", "200", "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "feedback" in text and "miss_rate" in text
    data = json.loads(out.read_text())
    assert [r["policy"] for r in data["results"]] == ["feedback", "step"]
    assert np.isfinite(data["results"][0]["mean_accuracy"])


def test_cli_errors(bundle_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sim.main(["--bundle", str(tmp_path)]) == 2
    assert "cannot read bundle manifest" in capsys.readouterr().err
    assert sim.main(["--bundle", str(bundle_dir), "--policy", "nope"]) == 2
    assert "unknown selector policy 'nope'" in capsys.readouterr().err
    assert sim.main(["--bundle", str(bundle_dir), "--hardware", "gpu"]) == 2
    assert "no latency for hardware 'gpu'" in capsys.readouterr().err


@pytest.mark.parametrize(("flag", "value"), [
    ("--high", "nan"), ("--high", "-2"), ("--high", "inf"), ("--target-ms", "-3"),
    ("--target-ms", "0"), ("--target-ms", "nan"), ("--n", "abc"), ("--n", "-5"),
    ("--noise", "-0.1"), ("--noise", "nan"), ("--seed", "-1"), ("--core", "-1"),
])
def test_cli_refuses_bad_numbers(bundle_dir: Path, capsys: pytest.CaptureFixture[str],
                                 flag: str, value: str) -> None:
    with pytest.raises(SystemExit) as exc:
        sim.main(["--bundle", str(bundle_dir), flag, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}" in err and repr(value) in err


def test_trace_options_are_routed_and_misspellings_refused() -> None:
    # one set of options drives every trace; each takes what it understands
    for name in sim.TRACES:
        assert sim.make_trace(name, 120, high=3.0, seed=1, period=30).max() <= 3.0
    a = sim.make_trace("random_walk", 120, seed=1)
    assert np.array_equal(a, sim.make_trace("random_walk", 120, seed=1))
    assert not np.array_equal(a, sim.make_trace("random_walk", 120, seed=2))
    with pytest.raises(TypeError):
        sim.make_trace("periodic", 120, perod=30)  # type: ignore[call-arg]
    for fn in sim.TRACES.values():
        with pytest.raises(TypeError):
            fn(30, nonsense=1)
