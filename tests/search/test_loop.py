"""The search loop: quality on a problem whose exact front is enumerated, no sub-network
measured twice, resumption after ``kill -9`` and two workers on one study (real processes).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from switchnas.search.loop import LoopResult, hypervolume_improvement, run_loop
from switchnas.search.pareto import hypervolume
from switchnas.search.strategies import EvolutionSearch, RandomSearch
from switchnas.search.study import open_study
from switchnas.supernets.space import ChoiceSpace, Dimension

PG_ENV = "SWITCHNAS_TEST_POSTGRES_URL"

# An additive two-objective problem over 8 positions of 3 choices (6561 sub-networks):
# cost grows with the choice, benefit too but with diminishing, position-dependent returns.
PROBLEM = textwrap.dedent("""
    import numpy as np
    from switchnas.supernets.space import ChoiceSpace, Dimension
    space = ChoiceSpace("toy", [Dimension("w", [[1, 2, 3]] * 6), Dimension("k", [[3, 5, 7]]),
                                Dimension("r", [[96, 112, 128]], scalar=True)])
    _rng = np.random.default_rng(7)
    _cost = np.cumsum(_rng.uniform(0.2, 1.0, (8, 3)), axis=1)
    _gain = np.cumsum(_rng.uniform(0.0, 1.0, (8, 3)) * _rng.uniform(0.3, 1.5, (8, 1)), axis=1)
    def objectives(genomes):
        g = np.asarray(genomes)
        rows = np.arange(8)
        return np.stack([_cost[rows, g].sum(axis=1), -_gain[rows, g].sum(axis=1)], axis=1)
    def evaluate(configs):
        return objectives(space.to_genomes(configs))
""")


def problem() -> dict:
    env: dict = {}
    exec(PROBLEM, env)
    return env


def exact_hv(env: dict) -> tuple[float, np.ndarray]:
    space = env["space"]
    every = np.stack(np.meshgrid(*[np.arange(3)] * 8, indexing="ij"), -1).reshape(-1, 8)
    obj = env["objectives"](every)
    ref = obj.max(axis=0) + 0.01 * (obj.max(axis=0) - obj.min(axis=0))
    assert len(every) == space.size() == 6561
    return hypervolume(obj, ref), ref


def test_hypervolume_improvement_matches_the_hypervolume() -> None:
    rng = np.random.default_rng(0)
    front = rng.random((6, 2))
    cands = rng.random((50, 2))
    ref = np.array([1.2, 1.2])
    gains = hypervolume_improvement(front, cands, ref)
    want = [hypervolume(np.vstack([front, c]), ref) - hypervolume(front, ref) for c in cands]
    assert np.allclose(gains, want)
    # three objectives: a Monte Carlo estimate of the same quantity
    f3 = np.array([[0.2, 0.5, 0.5]])
    g3 = hypervolume_improvement(f3, np.array([[0.5, 0.2, 0.5], [0.9, 0.9, 0.9]]),
                                 np.ones(3), rng=rng)
    assert abs(g3[0] - (0.5 * 0.8 * 0.5 - 0.5 * 0.5 * 0.5)) < 0.02 and g3[1] == pytest.approx(
        0.1 ** 3, abs=0.01)


def test_loop_reaches_95_percent_of_the_exact_front() -> None:
    env = problem()
    space = env["space"]
    best, ref = exact_hv(env)
    seen: list[int] = []

    def evaluate(configs: list[dict]) -> np.ndarray:
        seen.append(len(configs))
        return env["evaluate"](configs)

    res = run_loop(space, evaluate, budget=120, batch_size=10, encode=space.one_hot_genomes,
                   strategy=EvolutionSearch(population=64, generations=25), seed=0)
    assert isinstance(res, LoopResult)
    assert len(res.objectives) == res.evaluations == sum(seen) <= 120
    assert max(seen) <= 20  # the initial round (2 * batch_size), then batches of 10
    keys = {json.dumps(c, sort_keys=True) for c in res.configs}
    assert len(keys) == len(res.configs), "a sub-network was measured twice"
    assert np.allclose(res.objectives, env["objectives"](res.genomes))
    assert hypervolume(res.objectives, ref) >= 0.95 * best
    assert res.rounds[-1]["models"] and "gain" in res.rounds[-1]
    front = res.front()
    assert np.all(np.diff(res.objectives[front, 0]) > 0)


def test_loop_on_an_objective_that_is_not_additive() -> None:
    """Interactions between positions: boosted surrogates are among the choices."""
    env = problem()
    space = env["space"]

    def objectives(g: np.ndarray) -> np.ndarray:
        base = env["objectives"](g)
        # the benefit saturates with total cost: not a sum over positions
        return np.stack([base[:, 0], -8 * np.tanh(-base[:, 1] / 8) * (1 + 0.1 * g[:, 6])],
                        axis=1)

    every = np.stack(np.meshgrid(*[np.arange(3)] * 8, indexing="ij"), -1).reshape(-1, 8)
    obj = objectives(every)
    ref = obj.max(axis=0) + 0.01 * (obj.max(axis=0) - obj.min(axis=0))
    res = run_loop(space, lambda c: objectives(space.to_genomes(c)), budget=120,
                   batch_size=10, encode=space.one_hot_genomes,
                   strategy=EvolutionSearch(population=64, generations=25), seed=1)
    assert hypervolume(res.objectives, ref) >= 0.9 * hypervolume(obj, ref)


def test_failed_evaluations_callback_extras_and_errors() -> None:
    env = problem()
    space = env["space"]
    calls: list[int] = []

    def evaluate(configs: list[dict]) -> tuple[np.ndarray, list[dict]]:
        y = env["evaluate"](configs)
        y[0] = np.nan  # the first of every batch fails
        calls.append(len(configs))
        return y, [{"i": i} for i in range(len(configs))]

    res = run_loop(space, evaluate, budget=30, batch_size=5, initial=6, encode=space.encode_genomes,
                   strategy=RandomSearch(population=200), models=("ridge",),
                   callback=lambda c, y: len(calls) >= 3)
    assert res.stopped == "callback" and len(calls) == 3
    assert len(res.objectives) == sum(calls) - 3 and np.isfinite(res.objectives).all()
    assert all(a["i"] > 0 for a in res.attrs)
    with pytest.raises(ValueError, match="budget=0"):
        run_loop(space, evaluate, budget=0, batch_size=5, encode=space.encode_genomes)
    with pytest.raises(ValueError, match="models="):
        run_loop(space, evaluate, budget=5, batch_size=5, encode=space.encode_genomes,
                 models=("forest",))
    with pytest.raises(ValueError, match=r"shape \(3, 1\) for 5 configs"):
        run_loop(space, lambda c: np.zeros(3), budget=5, batch_size=5,
                 encode=space.encode_genomes, initial=5)


def test_loop_refuses_a_study_that_maximises(tmp_path: Path) -> None:
    space = problem()["space"]
    with open_study(tmp_path / "s.db", "s", space, ["minimize", "maximize"]) as st, \
            pytest.raises(ValueError, match="minimises every objective"):
        run_loop(space, problem()["evaluate"], budget=5, batch_size=5,
                 encode=space.encode_genomes, study=st)


def test_a_small_space_is_exhausted_not_looped_on() -> None:
    space = ChoiceSpace("tiny", [Dimension("a", [[0, 1]] * 3)])
    res = run_loop(space, lambda c: np.asarray([[sum(x["a"]), -x["a"][0]] for x in c], float),
                   budget=50, batch_size=4, initial=4, encode=space.one_hot_genomes,
                   strategy=RandomSearch(population=16), models=("ridge",))
    assert res.stopped in ("exhausted", "converged") and len(res.objectives) <= 8
    assert len({json.dumps(c) for c in res.configs}) == len(res.configs)


# -- real processes on one study -------------------------------------------------------
WORKER = PROBLEM + textwrap.dedent("""
    import json, sys, time
    from switchnas.search.loop import run_loop
    from switchnas.search.strategies import EvolutionSearch
    from switchnas.search.study import open_study
    url, name, log, budget = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    def logged(configs):
        with open(log, "a") as f:
            for c in configs:
                f.write(json.dumps(c, sort_keys=True) + "\\n")
        time.sleep(0.3)
        return evaluate(configs)
    st = open_study(url, name, space, ["minimize", "minimize"], heartbeat_s=1, grace_s=2)
    res = run_loop(space, logged, budget=budget, batch_size=4, initial=8,
                   encode=space.one_hot_genomes, models=("ridge",), study=st,
                   strategy=EvolutionSearch(population=32, generations=8), seed=0)
    st.close()
    print("done", res.evaluations, len(res.objectives), flush=True)
""")


def worker(url: str, name: str, log: Path, budget: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WORKER, url, name, str(log), str(budget)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def completed_keys(url: str, name: str) -> list[str]:
    with open_study(url, name, problem()["space"], ["minimize", "minimize"]) as st:
        return [json.dumps(c, sort_keys=True) for c in st.completed()[0]]


def test_kill_9_then_the_same_call_resumes(tmp_path: Path) -> None:
    url, name, budget = f"sqlite:///{tmp_path / 'study.db'}", "resume", 28
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    proc = worker(url, name, first, budget)
    deadline = time.monotonic() + 60
    while len(lines(first)) < 16 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # in the middle of the loop
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()  # type: ignore[union-attr]
    before = completed_keys(url, name)
    assert 0 < len(before) < budget
    again = worker(url, name, second, budget)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err[-3000:]
    after = completed_keys(url, name)
    assert len(after) == len(set(after)) == budget
    assert after[:len(before)] == before  # nothing completed was lost
    assert not set(lines(second)) & set(before), "a completed sub-network was measured again"
    assert out.split()[1] == str(budget - len(before))


def _two_workers(url: str, tmp_path: Path) -> None:
    name, budget = f"two-{uuid.uuid4().hex[:8]}", 32
    with open_study(url, name, problem()["space"], ["minimize", "minimize"]):
        pass
    logs = [tmp_path / "w0.log", tmp_path / "w1.log"]
    procs = [worker(url, name, log, budget) for log in logs]
    for p in procs:
        _, err = p.communicate(timeout=150)
        assert p.returncode == 0, err[-3000:]
    measured = lines(logs[0]) + lines(logs[1])
    assert lines(logs[0]) and lines(logs[1]), "both workers measure"
    assert len(measured) == len(set(measured)) == budget, "no sub-network measured twice"
    assert sorted(completed_keys(url, name)) == sorted(measured)


def test_two_workers_share_one_sqlite_study(tmp_path: Path) -> None:
    _two_workers(f"sqlite:///{tmp_path / 'study.db'}", tmp_path)


def test_two_workers_share_one_postgres_study(tmp_path: Path) -> None:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"PostgreSQL tests need {PG_ENV}=postgresql://user:password@host:port/db "
                    "(.ci/run starts a local server)")
    _two_workers(url, tmp_path)


@pytest.mark.parametrize("m", [1, 3])
def test_loop_with_one_or_three_objectives(m: int) -> None:
    env = problem()
    space = env["space"]

    def evaluate(configs: list[dict]) -> np.ndarray:
        y = env["evaluate"](configs)
        return y[:, :1] if m == 1 else np.column_stack([y, y[:, 0] * y[:, 1]])

    res = run_loop(space, evaluate, budget=40, batch_size=8, encode=space.one_hot_genomes,
                   strategy=EvolutionSearch(population=32, generations=10), models=("ridge",))
    assert res.objectives.shape == (40, m)
    assert len({json.dumps(c, sort_keys=True) for c in res.configs}) == 40
    if m == 1:  # the loop finds the cheapest sub-network (all smallest choices)
        assert res.objectives[:, 0].min() == pytest.approx(
            env["objectives"](np.zeros((1, 8), np.int64))[0, 0])
