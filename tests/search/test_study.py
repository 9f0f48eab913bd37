"""The persistent, shared study of real measurements: claims, heartbeats, resumption.

Races and dead workers are tested with real processes (``kill -9``). The PostgreSQL tests
run when ``SWITCHNAS_TEST_POSTGRES_URL`` names a database (``.ci/run`` starts one).
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
import optuna
import pytest

from switchnas.search.study import (
    SpaceMismatchError,
    config_key,
    open_study,
    record_measurements,
    storage_url,
)
from switchnas.supernets.space import ChoiceSpace, Dimension

PG_ENV = "SWITCHNAS_TEST_POSTGRES_URL"

# the toy space: 6 positions of 3 choices; the same code runs in the worker processes
SPACE_CODE = textwrap.dedent("""
    from switchnas.supernets.space import ChoiceSpace, Dimension
    space = ChoiceSpace("toy", [Dimension("a", [[0, 1, 2]] * 4), Dimension("b", [[1, 2, 4]]),
                                Dimension("c", [[0.5, 1.5, 2.5]], scalar=True)])
    configs = space.from_genomes(space.sample_genomes(__import__("numpy").random
                                                      .default_rng(0), 400))
    configs = list({__import__("json").dumps(c, sort_keys=True): c for c in configs}.values())
""")


def toy() -> tuple[ChoiceSpace, list[dict]]:
    env: dict = {}
    exec(SPACE_CODE, env)
    return env["space"], env["configs"]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


@pytest.fixture
def pg_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"PostgreSQL tests need {PG_ENV}=postgresql://user:password@host:port/db "
                    "(.ci/run starts a local server)")
    return url


def run_py(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_storage_url_forms(tmp_path: Path) -> None:
    assert storage_url(tmp_path / "a" / "s.db") == f"sqlite:///{tmp_path / 'a' / 's.db'}"
    assert (tmp_path / "a").is_dir()
    assert storage_url("sqlite:///x.db") == "sqlite:///x.db"
    assert storage_url("postgresql://u:p@h:5/db").startswith("postgresql+psycopg")
    assert storage_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    with pytest.raises(ValueError, match="unsupported scheme 'redis'.*postgresql://"):
        storage_url("redis://u:secret@h/0")
    with pytest.raises(ValueError) as err:
        storage_url("mysql://u:secret@h/db")
    assert "secret" not in str(err.value)


def test_open_study_rejects_bad_options(sqlite_url: str) -> None:
    space, _ = toy()
    with pytest.raises(ValueError, match="directions=.*'min'"):
        open_study(sqlite_url, "s", space, ["min"])
    with pytest.raises(ValueError, match="heartbeat_s=0"):
        open_study(sqlite_url, "s", space, ["minimize"], heartbeat_s=0)
    with pytest.raises(ValueError, match="grace_s=1"):
        open_study(sqlite_url, "s", space, ["minimize"], heartbeat_s=1, grace_s=1)


def test_claims_are_trials_and_completed_ones_are_never_claimed_again(sqlite_url: str
                                                                       ) -> None:
    space, configs = toy()
    a = open_study(sqlite_url, "s", space, ["minimize", "minimize"], worker="a")
    b = open_study(sqlite_url, "s", space, ["minimize", "minimize"], worker="b")
    try:
        claims = a.claim([configs[0], configs[0], configs[1]])
        assert [c.config for c in claims] == [configs[0], configs[1]]
        # each claim is a RUNNING trial whose params are the genome positions
        study = optuna.load_study(study_name="s", storage=sqlite_url)
        running = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
        assert len(running) == 2
        assert set(running[0].params) == {"a_0", "a_1", "a_2", "a_3", "b_0", "c_0"}
        assert json.loads(running[0].user_attrs["config"]) == configs[0]
        # another live worker skips what a holds
        assert [c.config for c in b.claim(configs[:3])] == [configs[2]]
        with pytest.raises(ValueError, match="2 finite values"):
            a.complete(claims[0], [1.0])
        a.complete(claims[0], [1.0, -2.0], latency_low_ms=np.float64(0.9))
        a.complete(claims[1], [2.0, -3.0])
        got, obj, attrs = b.completed()
        assert got == configs[:2] and obj.tolist() == [[1.0, -2.0], [2.0, -3.0]]
        assert attrs[0]["latency_low_ms"] == 0.9 and attrs[0]["worker"] == "a"
        assert b.claim(configs[:2]) == [] and a.claim(configs[:2]) == []
        assert b.counts() == {"complete": 2, "running": 1}
        assert b.running() == [configs[2]]
        a.set_user_attr("reference_level_ms", np.float64(3.5))
        assert b.user_attrs["reference_level_ms"] == 3.5
    finally:
        a.close()
        b.close()


def test_a_failed_claim_can_be_claimed_again(sqlite_url: str) -> None:
    space, configs = toy()
    with open_study(sqlite_url, "s", space, ["minimize"]) as st:
        (c,) = st.claim(configs[:1])
        st.fail(c, "the device fell over")
        (again,) = st.claim(configs[:1])
        assert again.trial_id != c.trial_id
        st.complete(again, [3.0])
        trials = optuna.load_study(study_name="s", storage=sqlite_url).trials
        assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]
        assert trials[0].user_attrs["fail_reason"] == "the device fell over"


def test_claims_beyond_a_budget_are_released(sqlite_url: str) -> None:
    space, configs = toy()
    with open_study(sqlite_url, "s", space, ["minimize"], worker="a") as a, \
            open_study(sqlite_url, "s", space, ["minimize"], worker="b") as b:
        first = a.claim(configs[:3], budget=4)
        a.complete(first[0], [1.0])
        assert len(first) == 3
        # 1 measured + 2 running: one more fits, the rest is released at once
        second = b.claim(configs[3:6], budget=4)
        assert [c.config for c in second] == [configs[3]]
        study = optuna.load_study(study_name="s", storage=sqlite_url)
        released = [t for t in study.trials if t.state.name == "FAIL"]
        assert len(released) == 2 and "budget of 4" in released[0].user_attrs["fail_reason"]
        assert b.claim(configs[4:6]) != []  # released sub-networks are claimable again


def test_reopening_checks_directions_and_space(sqlite_url: str) -> None:
    space, configs = toy()
    with open_study(sqlite_url, "s", space, ["minimize", "maximize"]) as st:
        st.complete(st.claim(configs[:1])[0], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"directions \['minimize', 'maximize'\]"):
        open_study(sqlite_url, "s", space, ["minimize", "minimize"])
    other = ChoiceSpace("toy", [Dimension("a", [[0, 1]] * 4), Dimension("b", [[1, 2, 4]]),
                                Dimension("c", [[0.5, 1.5, 2.5]], scalar=True)])
    with pytest.raises(SpaceMismatchError, match=r"dimensions \['a'\] differ"):
        open_study(sqlite_url, "s", other, ["minimize", "maximize"])


def test_a_restarted_worker_takes_its_claims_back_at_once(sqlite_url: str) -> None:
    space, configs = toy()
    st = open_study(sqlite_url, "s", space, ["minimize"], worker="gpu0", heartbeat_s=60)
    held = st.claim(configs[:2])
    st.close()  # like a crash: the claims stay RUNNING with a fresh heartbeat
    with open_study(sqlite_url, "s", space, ["minimize"], worker="other") as other:
        assert other.claim(configs[:2]) == []  # a live worker's, as far as anyone knows
    with open_study(sqlite_url, "s", space, ["minimize"], worker="gpu0") as again:
        taken = again.claim(configs[:2])
        assert [c.config for c in taken] == [c.config for c in held]
        trials = optuna.load_study(study_name="s", storage=sqlite_url).trials
        assert [t.state.name for t in trials] == ["FAIL", "FAIL", "RUNNING", "RUNNING"]


def test_stale_claims_of_a_killed_worker_are_retried(sqlite_url: str) -> None:
    space, configs = toy()
    child = run_py(SPACE_CODE + textwrap.dedent("""
        import sys, time
        from switchnas.search.study import open_study
        st = open_study(sys.argv[1], "s", space, ["minimize"], heartbeat_s=1, grace_s=2)
        print(len(st.claim(configs[:3])), flush=True)
        time.sleep(600)
    """), sqlite_url)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "3", child.stderr.read()  # type: ignore[union-attr]
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    with open_study(sqlite_url, "s", space, ["minimize"], heartbeat_s=1, grace_s=2) as st:
        got: list = []
        deadline = time.monotonic() + 30
        while len(got) < 3 and time.monotonic() < deadline:
            got += st.claim(configs[:3])
            time.sleep(0.5)
        assert sorted(c.key for c in got) == sorted(config_key(c) for c in configs[:3])
        for c in got:
            st.complete(c, [1.0])
        states = [t.state.name for t in optuna.load_study(study_name="s",
                                                          storage=sqlite_url).trials]
        assert states == ["FAIL"] * 3 + ["COMPLETE"] * 3
        assert st.counts() == {"complete": 3, "running": 0}


RACER = SPACE_CODE + textwrap.dedent("""
    import sys, time
    from switchnas.search.study import open_study
    st = open_study(sys.argv[1], sys.argv[2], space, ["minimize"])
    todo = configs[:int(sys.argv[3])]
    print("ready", flush=True)
    sys.stdin.readline()  # both workers start claiming together
    while True:
        claims = st.claim(todo, limit=3)
        if not claims:
            break
        for c in claims:
            time.sleep(0.05)  # a measurement takes time: the other worker claims meanwhile
            print(c.key, flush=True)
            st.complete(c, [1.0])
    st.close()
""")


def _race(url: str, n: int) -> None:
    name = f"race-{uuid.uuid4().hex[:8]}"
    space, configs = toy()
    with open_study(url, name, space, ["minimize"]):
        pass  # create the study and the tables before the race
    procs = [subprocess.Popen([sys.executable, "-c", RACER, url, name, str(n)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:  # a worker that starts late under load must not find nothing left
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready", p.communicate(timeout=60)[1][-3000:]
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    keys = [o.split() for o, _ in outs]
    assert all(keys), "both workers measure some"
    assert not set(keys[0]) & set(keys[1]), "a sub-network was claimed by both workers"
    assert sorted(keys[0] + keys[1]) == sorted(config_key(c) for c in configs[:n])
    with open_study(url, name, space, ["minimize"]) as st:
        assert st.counts() == {"complete": n, "running": 0}


def test_two_processes_claim_disjoint_sets_sqlite(sqlite_url: str) -> None:
    _race(sqlite_url, 24)


def test_two_processes_claim_disjoint_sets_postgres(pg_url: str) -> None:
    _race(pg_url, 24)


def test_studies_from_before_claims_are_adopted(tmp_path: Path) -> None:
    space, configs = toy()
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = optuna.create_study(storage=url, study_name="v", directions=["minimize", "maximize"])
    old.add_trial(optuna.trial.create_trial(
        values=[1.0, 2.0], user_attrs={"config": json.dumps(configs[0], sort_keys=True)}))
    with open_study(url, "v", space, ["minimize", "maximize"]) as st:
        assert st.claim(configs[:1]) == []
        assert st.completed()[0] == configs[:1]


def test_record_measurements_accumulates(tmp_path: Path) -> None:
    space, configs = toy()
    rows = [{"config": c, "latency_ms": float(i + 1), "accuracy": 90.0 + i, "extra": [i]}
            for i, c in enumerate(configs[:3])]
    db = tmp_path / "study.db"
    assert record_measurements(db, "validate", space, rows[:2]) == 2
    assert record_measurements(db, "validate", space, rows[1:]) == 3  # no duplicate
    study = optuna.load_study(study_name="validate", storage=f"sqlite:///{db}")
    assert sorted(t.values[0] for t in study.best_trials) == [1.0, 2.0, 3.0]
    assert study.trials[2].user_attrs["extra"] == [2]


# -- in-process details ----------------------------------------------------------------------
def test_the_claims_table_requires_every_field_but_the_trial(sqlite_url: str) -> None:
    """The claims table's schema: only ``trial_id`` may be NULL (while a claim's trial is
    being created); a row without worker, token, time or config is refused."""
    import sqlalchemy as sa

    space, _ = toy()
    with open_study(sqlite_url, "s", space, ["minimize"]):
        pass
    engine = sa.create_engine(sqlite_url)
    try:
        cols = {c["name"]: c["nullable"] for c in sa.inspect(engine).get_columns(
            "switchnas_claims")}
    finally:
        engine.dispose()
    assert cols == {"id": False, "study_id": False, "config_key": False, "trial_id": True,
                    "worker": False, "token": False, "claimed_at": False, "config": False}


def test_a_postgres_url_without_a_driver_says_what_to_install(monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    for module in ("psycopg2", "psycopg"):
        monkeypatch.setitem(sys.modules, module, None)  # importing it raises ImportError
    with pytest.raises(ImportError) as err:
        storage_url("postgresql://u@h:5/db")
    assert str(err.value) == ("a postgresql:// storage needs a PostgreSQL driver: "
                              "pip install 'switchnas[postgres]' (psycopg2-binary)")


def test_the_heartbeat_thread_never_keeps_the_process_alive(sqlite_url: str) -> None:
    """The heartbeat of held claims runs in a daemon thread: a process that ends without
    closing its study (a crash, a forgotten close) still exits."""
    import threading

    space, configs = toy()
    name = f"hb-{uuid.uuid4().hex[:8]}"
    with open_study(sqlite_url, name, space, ["minimize"], heartbeat_s=60) as st:
        assert st.claim(configs[:1])
        beats = [t for t in threading.enumerate() if t.name == f"switchnas-heartbeat-{name}"]
        assert len(beats) == 1 and beats[0].daemon


def test_a_measurement_completed_after_its_claim_went_stale_is_kept(sqlite_url: str
                                                                    ) -> None:
    """A worker whose trial was failed as stale still records its measurement (as a new
    trial); the sub-network then counts as measured and is never claimed again."""
    space, configs = toy()
    with open_study(sqlite_url, "s", space, ["minimize"]) as st:
        (c,) = st.claim(configs[:1])
        # what fail_stale does to the trial of a worker that stalled past the grace period
        st.storage.set_trial_state_values(c.trial_id, optuna.trial.TrialState.FAIL)
        st.complete(c, [4.0])
        got, obj, _ = st.completed()
        assert got == configs[:1] and obj.tolist() == [[4.0]]
        assert st.claim(configs[:1]) == []
        states = [t.state.name for t in optuna.load_study(study_name="s",
                                                          storage=sqlite_url).trials]
        assert states == ["FAIL", "COMPLETE"]
