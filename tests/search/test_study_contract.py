"""The contract of the measurement study: messages, defaults, the claims table, retries.

Everything runs in-process on SQLite files under ``tmp_path``; stale heartbeats are made
by back-dating the heartbeat rows, never by waiting.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import re
import shutil
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import sqlalchemy as sa

from switchnas.search import study as S
from switchnas.search.study import (
    Claim,
    SpaceMismatchError,
    config_key,
    open_study,
    record_measurements,
    storage_url,
)
from switchnas.supernets.space import ChoiceSpace, Dimension

SPACE = ChoiceSpace("toy", [Dimension("a", [[0, 1, 2], [0, 1, 2]]),
                            Dimension("c", [[0.5, 1.5, 2.5]], scalar=True)])
CFGS = [{"a": [i, j], "c": 0.5} for i in range(3) for j in range(3)]


@pytest.fixture(scope="module")
def _alembic_head() -> Any:
    """Optuna re-reads its Alembic migration scripts for every storage it opens (most of
    the cost of opening a study); the head revision never changes within a run."""
    from optuna.storages._rdb.storage import _VersionManager

    head = {}
    real = _VersionManager.get_head_version

    def cached(self: Any) -> str:
        if "head" not in head:
            head["head"] = real(self)
        return head["head"]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_VersionManager, "get_head_version", cached)
        yield


@pytest.fixture(autouse=True)
def _fast_optuna(_alembic_head: Any) -> None:
    return None


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file with Optuna's schema and the claims table, but no study: copying it
    spares each test the schema's creation (the costly part of opening a new database)."""
    path = tmp_path_factory.mktemp("template") / "t.db"
    storage = optuna.storages.RDBStorage(f"sqlite:///{path}")
    storage.engine.dispose()
    engine = sa.create_engine(f"sqlite:///{path}")
    S._claims_table().metadata.create_all(engine)
    engine.dispose()
    return path


def _fresh(template: Path, path: Path) -> Path:
    shutil.copyfile(template, path)
    return path


@pytest.fixture
def url(tmp_path: Path, template: Path) -> str:
    return f"sqlite:///{_fresh(template, tmp_path / 'study.db')}"


def _claims(url: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                sa.text("SELECT * FROM switchnas_claims ORDER BY id"))]
    finally:
        engine.dispose()


def _sql(url: str, text: str, **params: Any) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(text), params)
    finally:
        engine.dispose()


_READERS: dict[str, optuna.storages.RDBStorage] = {}


def _trials(url: str, name: str = "s") -> list[optuna.trial.FrozenTrial]:
    """The study's trials as another process would read them (a storage of its own)."""
    if url not in _READERS:
        _READERS[url] = optuna.storages.RDBStorage(url)
    return optuna.load_study(study_name=name, storage=_READERS[url]).trials


# -- small helpers ----------------------------------------------------------------------------
def test_config_key_is_sha256_of_sorted_compact_json() -> None:
    cfg = {"b": 1, "a": [1, 2], "c": 0.5}
    assert config_key(cfg) == hashlib.sha256(b'{"a":[1,2],"b":1,"c":0.5}').hexdigest()
    assert config_key({"c": 0.5, "a": [1, 2], "b": 1}) == config_key(cfg)


def test_storage_url_of_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert storage_url("~/runs/s.db") == f"sqlite:///{tmp_path / 'home' / 'runs' / 's.db'}"
    assert (tmp_path / "home" / "runs").is_dir()
    monkeypatch.chdir(tmp_path)
    assert storage_url(Path("rel") / "x" / "s.db") == f"sqlite:///{tmp_path / 'rel/x/s.db'}"
    assert (tmp_path / "rel" / "x").is_dir() and not (tmp_path / "rel/x/s.db").exists()
    assert storage_url("sqlite+pysqlite:///a.db") == "sqlite+pysqlite:///a.db"
    assert storage_url("sqlite://") == "sqlite://"
    assert storage_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"


def test_storage_url_rejects_other_schemes() -> None:
    with pytest.raises(ValueError) as err:
        storage_url("redis://u:secret@h:1/0")
    assert str(err.value) == ("storage 'redis://u:***@h:1/0': unsupported scheme 'redis'; use "
                              "a file path, sqlite:///path.db or "
                              "postgresql://user:password@host:port/database")
    with pytest.raises(ValueError, match=r"^storage 'mysql\+pymysql://h/db': unsupported "
                                         r"scheme 'mysql\+pymysql'; "):
        storage_url("mysql+pymysql://h/db")
    # a URL SQLAlchemy cannot parse is named as given
    with pytest.raises(ValueError, match=r"^storage 'x y://:@:\[': unsupported scheme 'x y'"):
        storage_url("x y://:@:[")
    with pytest.raises(ValueError, match="unsupported scheme 'sqlitex'"):
        storage_url("sqlitex:///a.db")


def test_storage_url_names_the_installed_postgres_driver(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    monkeypatch.setitem(sys.modules, "psycopg2", types.ModuleType("psycopg2"))
    assert storage_url("postgresql://u:p@h:5/db") == "postgresql+psycopg2://u:p@h:5/db"
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    monkeypatch.setitem(sys.modules, "psycopg", types.ModuleType("psycopg"))
    assert storage_url("postgresql://u:p@h:5/db") == "postgresql+psycopg://u:p@h:5/db"
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ImportError, match=r"^a postgresql:// storage needs a PostgreSQL "
                                          r"driver: pip install 'switchnas\[postgres\]' "
                                          r"\(psycopg2-binary\)$"):
        storage_url("postgresql://u:p@h:5/db")


def test_retry_backs_off_while_locked(monkeypatch: pytest.MonkeyPatch,
                                      caplog: pytest.LogCaptureFixture) -> None:
    import sqlalchemy.exc as sa_exc
    from optuna.exceptions import StorageInternalError

    sleeps: list[float] = []
    monkeypatch.setattr(S.time, "sleep", sleeps.append)
    monkeypatch.setattr(S.np.random, "random", lambda: 0.5)
    errors: list[BaseException] = [sa_exc.OperationalError("s", {}, Exception("locked")),
                                   StorageInternalError("deadlock"),
                                   sa_exc.OperationalError("s", {}, Exception("locked"))]

    def flaky() -> str:
        if errors:
            raise errors.pop(0)
        return "ok"

    with caplog.at_level(logging.DEBUG, logger="switchnas.search.study"):
        assert S._retry(flaky) == "ok"
    assert sleeps == pytest.approx([0.05, 0.1, 0.2])
    assert [r.getMessage() for r in caplog.records][1] == "study: retrying after deadlock"
    assert all(r.getMessage().startswith("study: retrying after ") for r in caplog.records)
    assert len(caplog.records) == 3
    sleeps.clear()
    calls: list[int] = []

    def locked() -> None:
        calls.append(1)
        raise sa_exc.OperationalError("s", {}, Exception("still locked"))

    with pytest.raises(sa_exc.OperationalError, match="still locked"):
        S._retry(locked)
    assert len(calls) == 8
    assert sleeps == pytest.approx([0.05 * 2 ** i for i in range(7)])
    calls.clear()

    def other() -> None:
        calls.append(1)
        raise KeyError("x")

    with pytest.raises(KeyError):
        S._retry(other)
    assert calls == [1]


def test_retry_jitter_scales_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlalchemy.exc as sa_exc

    sleeps: list[float] = []
    monkeypatch.setattr(S.time, "sleep", sleeps.append)
    monkeypatch.setattr(S.np.random, "random", lambda: 0.0)
    errs = [sa_exc.OperationalError("s", {}, Exception("l"))] * 2

    def f() -> int:
        if errs:
            raise errs.pop()
        return 3

    assert S._retry(f) == 3
    assert sleeps == pytest.approx([0.025, 0.05])


# -- open_study's checks ----------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"directions": []}, "directions=[]: each must be one of ['minimize', 'maximize']"),
    ({"directions": ["minimize", "max"]},
     "directions=['minimize', 'max']: each must be one of ['minimize', 'maximize']"),
    ({"heartbeat_s": 0}, "heartbeat_s=0: must be an integer >= 1 (seconds)"),
    ({"heartbeat_s": 1.5}, "heartbeat_s=1.5: must be an integer >= 1 (seconds)"),
    ({"heartbeat_s": -3}, "heartbeat_s=-3: must be an integer >= 1 (seconds)"),
    ({"heartbeat_s": 5, "grace_s": 5}, "grace_s=5: must be an integer > heartbeat_s (5)"),
    ({"heartbeat_s": 5, "grace_s": 4}, "grace_s=4: must be an integer > heartbeat_s (5)"),
    ({"heartbeat_s": 5, "grace_s": 7.5}, "grace_s=7.5: must be an integer > heartbeat_s (5)"),
    ({"name": ""}, "name: the study needs a non-empty name"),
    ({"metric_names": ["x"]}, "metric_names=['x']: need one distinct non-empty name per "
                              "objective (2: ['minimize', 'maximize'])"),
    ({"metric_names": ["x", "x"]}, "metric_names=['x', 'x']: need one distinct"),
    ({"metric_names": ["x", ""]}, "metric_names=['x', '']: need one distinct"),
    ({"metric_names": ["x", 1]}, "metric_names=['x', 1]: need one distinct"),
    ({"metric_names": ["x", "y", "z"]}, "metric_names=['x', 'y', 'z']: need one distinct"),
])
def test_open_study_rejects(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"name": "s", "directions": ["minimize", "maximize"], **kwargs}
    db = tmp_path / "sub" / "s.db"
    with pytest.raises(ValueError) as err:
        open_study(db, args.pop("name"), SPACE, args.pop("directions"), **args)
    assert str(err.value).startswith(message)
    assert not (tmp_path / "sub").exists()  # checked before the storage is touched


def test_open_study_defaults_and_boundaries(tmp_path: Path, template: Path) -> None:
    _fresh(template, tmp_path / "s.db")
    with open_study(tmp_path / "s.db", "s", SPACE, ("minimize",)) as st:
        assert st.heartbeat_s == 30 and st.grace_s == 60
        assert isinstance(st.heartbeat_s, int) and isinstance(st.grace_s, int)
        assert st.storage.heartbeat_interval == 30 and st.storage.grace_period == 60
        assert re.fullmatch(r".+:\d+:[0-9a-f]{8}", st.worker)
        assert st.worker.split(":")[1] == str(__import__("os").getpid())
        assert st.worker.startswith(__import__("socket").gethostname() + ":")
        assert st.metric_names is None and st.directions == ["minimize"]
        assert st.name == "s" and st.url == f"sqlite:///{tmp_path / 's.db'}"
        assert st.space is SPACE
    with open_study(tmp_path / "s.db", "s", SPACE, ["minimize"], heartbeat_s=1, grace_s=2,
                    worker="w") as st:
        assert (st.heartbeat_s, st.grace_s, st.worker) == (1, 2, "w")
        assert st.storage.heartbeat_interval == 1 and st.storage.grace_period == 2
    with open_study(tmp_path / "s.db", "s", SPACE, ["minimize"], heartbeat_s=2.0,
                    worker="") as st:
        assert st.heartbeat_s == 2 and st.grace_s == 4 and isinstance(st.heartbeat_s, int)
        assert st.worker != ""


def test_opening_is_quiet(url: str, recwarn: pytest.WarningsRecorder) -> None:
    """Optuna's experimental heartbeat warnings are silenced and its log set to warnings."""
    import warnings

    from optuna.exceptions import ExperimentalWarning

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.DEBUG)
    try:
        warnings.simplefilter("always")
        with open_study(url, "s", SPACE, ["minimize", "maximize"], heartbeat_s=5,
                        metric_names=["l", "a"]) as st:
            assert optuna.logging.get_verbosity() == optuna.logging.WARNING
            st.claim(CFGS[:1])
            st.fail_stale()
    finally:
        optuna.logging.set_verbosity(verbosity)
    assert not [w for w in recwarn if issubclass(w.category, ExperimentalWarning)]


def test_repr_hides_the_password(url: str) -> None:
    with open_study(url, "s", SPACE, ["minimize"], worker="w") as st:
        assert repr(st) == f"MeasurementStudy(name='s', storage={url!r}, worker='w')"


def test_sqlite_engines_use_wal_and_a_long_timeout(url: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[tuple[str, dict[str, Any]]] = []
    real = sa.create_engine

    def spy(u: str, **kw: Any) -> Any:
        made.append((u, kw))
        return real(u, **kw)

    monkeypatch.setattr(sa, "create_engine", spy)
    with open_study(url, "s", SPACE, ["minimize"]) as st:
        assert made == [(url, {"connect_args": {"timeout": 60}})]
        assert st.storage.engine_kwargs == {"connect_args": {"timeout": 60}}
        for engine in (st._engine, st.storage.engine):
            with engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        st.claim(CFGS[:1])
    assert (tmp_path / "study.db").is_file()


def test_directions_and_space_must_match_on_reopen(url: str) -> None:
    with open_study(url, "s", SPACE, ["minimize", "maximize"]):
        pass
    with pytest.raises(ValueError) as err:
        open_study(url, "s", SPACE, ["maximize", "maximize"])
    assert str(err.value) == (f"study 's' in {url} was created with directions "
                              "['minimize', 'maximize']; got ['maximize', 'maximize']")
    other = ChoiceSpace("toy", [Dimension("a", [[0, 1], [0, 1, 2]]),
                                Dimension("c", [[0.5, 1.5, 2.5]], scalar=True),
                                Dimension("b", [[1, 2]])])
    with pytest.raises(SpaceMismatchError) as err2:
        open_study(url, "s", other, ["minimize", "maximize"])
    assert str(err2.value) == (f"study 's' in {url} holds measurements of another search "
                               "space (dimensions ['a', 'b'] differ); open it with that space "
                               "or use another study name")
    assert isinstance(err2.value, ValueError)
    with open_study(url, "s", SPACE, ["minimize", "maximize"]) as st:
        assert st.user_attrs == {"switchnas_space": {"a": [[0, 1, 2], [0, 1, 2]],
                                                     "c": [[0.5, 1.5, 2.5]]}}


def test_metric_names_are_set_only_when_given(url: str) -> None:
    with open_study(url, "s", SPACE, ["minimize", "maximize"],
                    metric_names=("lat", "acc")) as st:
        assert st.metric_names == ["lat", "acc"]
        assert st.study.metric_names == ["lat", "acc"]
    with open_study(url, "s", SPACE, ["minimize", "maximize"],
                    metric_names=["lat2", "acc"]) as st:
        assert st.study.metric_names == ["lat2", "acc"]
    assert optuna.load_study(study_name="s", storage=url).metric_names == ["lat2", "acc"]


# -- claims -----------------------------------------------------------------------------------
def test_a_claim_is_a_running_trial_with_a_claims_row(url: str) -> None:
    with open_study(url, "s", SPACE, ["minimize"], worker="w1") as st:
        (c,) = st.claim([{"c": 0.5, "a": (1, 2)}])
        assert isinstance(c, Claim)
        assert c.config == {"a": [1, 2], "c": 0.5}
        assert c.key == config_key({"a": [1, 2], "c": 0.5})
        assert c.number == 0
        (t,) = _trials(url)
        assert c.trial_id == t._trial_id
        assert t.state == optuna.trial.TrialState.RUNNING
        assert t.params == {"a_0": 1, "a_1": 2, "c_0": 0.5}
        assert t.distributions["a_0"].choices == (0, 1, 2)
        assert t.distributions["c_0"].choices == (0.5, 1.5, 2.5)
        assert t.user_attrs == {"config": '{"a": [1, 2], "c": 0.5}', "worker": "w1"}
        (row,) = _claims(url)
        assert row["study_id"] == st._study_id and row["config_key"] == c.key
        assert row["trial_id"] == c.trial_id and row["worker"] == "w1"
        assert re.fullmatch(r"[0-9a-f]{32}", row["token"])
        assert abs(row["claimed_at"] - time.time()) < 600
        assert row["config"] == '{"a": [1, 2], "c": 0.5}'
        # the heartbeat is recorded at once
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            beats = conn.execute(sa.text("SELECT trial_id FROM trial_heartbeats")).all()
        engine.dispose()
        assert [b[0] for b in beats] == [c.trial_id]
        (c2,) = st.claim(CFGS[:1])
        assert c2.number == 1 and c2.trial_id != c.trial_id


def test_claim_limit_and_repeats(url: str) -> None:
    with open_study(url, "s", SPACE, ["minimize"]) as st:
        assert st.claim(CFGS, limit=0) == []
        got = st.claim([CFGS[0], CFGS[0], CFGS[1], CFGS[2], CFGS[3]], limit=2)
        assert [c.config for c in got] == CFGS[:2]
        # a repeat and a held one do not count towards the limit
        got = st.claim([CFGS[0], CFGS[2], CFGS[2], CFGS[3], CFGS[4]], limit=2)
        assert [c.config for c in got] == CFGS[2:4]
        assert [c.config for c in st.claim(CFGS)] == CFGS[4:]
        with pytest.raises(ValueError, match=r"a\[0\]=7 is not allowed"):
            st.claim([{"a": [7, 0], "c": 0.5}])


def test_budget_keeps_the_earliest(url: str) -> None:
    with open_study(url, "s", SPACE, ["minimize"], worker="a") as a, \
            open_study(url, "s", SPACE, ["minimize"], worker="b") as b:
        assert a.claim(CFGS[:2], budget=0) == []
        first = a.claim(CFGS[:3], budget=3)
        assert [c.config for c in first] == CFGS[:3]  # exactly at the budget: all kept
        a.complete(first[0], [1.0])
        assert b.claim(CFGS[3:5], budget=3) == []
        states = [t.state.name for t in _trials(url)]
        assert states == ["FAIL", "FAIL", "COMPLETE", "RUNNING", "RUNNING", "FAIL", "FAIL"]
        reasons = [t.user_attrs.get("fail_reason") for t in _trials(url)]
        assert reasons[-1] == ("released: the study's budget of 3 sub-networks is measured "
                               "or held")
        kept = b.claim(CFGS[3:6], budget=5)
        assert [c.config for c in kept] == CFGS[3:5]
        assert b.claim(CFGS[6:7]) != []  # without a budget nothing is released


def test_completed_values_attrs_and_order(url: str) -> None:
    with open_study(url, "s", SPACE, ["minimize", "maximize"], worker="w") as st:
        cfgs, obj, attrs = st.completed()
        assert cfgs == [] and obj.shape == (0, 2) and attrs == []
        c0, c1, c2 = st.claim(CFGS[:3])
        st.complete(c1, (2, np.float32(-1.5)), arr=np.arange(3), nested={1: (np.int64(4),)},
                    flag=np.bool_(True), text="t")
        st.fail(c0, 7)  # type: ignore[arg-type]
        cfgs, obj, attrs = st.completed()
        assert cfgs == [CFGS[1]] and obj.tolist() == [[2.0, -1.5]] and obj.dtype == float
        assert attrs == [{"worker": "w", "arr": [0, 1, 2], "nested": {"1": [4]},
                          "flag": True, "text": "t", "trial_number": 1}]
        assert type(attrs[0]["flag"]) is bool
        st.complete(c2, [1, 1])
        cfgs, obj, attrs = st.completed()
        assert cfgs == CFGS[1:3] and [a["trial_number"] for a in attrs] == [1, 2]
        attrs[0]["worker"] = "changed"  # a copy
        assert st.completed()[2][0]["worker"] == "w"
        t = _trials(url)
        assert t[0].state.name == "FAIL" and t[0].user_attrs["fail_reason"] == "7"
        assert st.counts() == {"complete": 2, "running": 0}
        # a failed one is claimable again, and then counted as running
        (again,) = st.claim(CFGS[:3])
        assert again.config == CFGS[0]
        assert st.counts() == {"complete": 2, "running": 1}
        assert st.running() == [CFGS[0]]


def test_complete_checks_values(url: str) -> None:
    with open_study(url, "s", SPACE, ["minimize", "maximize"]) as st:
        (c,) = st.claim(CFGS[:1])
        for values in ([1.0], [1.0, 2.0, 3.0], [1.0, float("nan")], [float("inf"), 1.0], [],
                       (1.0, -float("inf"))):
            with pytest.raises(ValueError) as err:
                st.complete(c, values)
            assert str(err.value) == (f"values={list(values)!r}: need 2 finite values "
                                      "(['minimize', 'maximize'])")
            assert _trials(url)[0].state.name == "RUNNING"
        st.complete(c, [1.0, 2.0])
        assert _trials(url)[0].values == [1.0, 2.0]


def test_complete_after_stale_becomes_a_new_trial(url: str,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    with open_study(url, "s", SPACE, ["minimize"], worker="w") as st:
        _, c = st.claim(CFGS[:2])
        st.storage.set_trial_state_values(c.trial_id, optuna.trial.TrialState.FAIL)
        with caplog.at_level(logging.WARNING, logger="switchnas.search.study"):
            st.complete(c, [4.0], note=np.int64(3))
        assert [r.getMessage() for r in caplog.records] == [
            "study s: trial 1 was failed as stale before it completed; its measurement is "
            "recorded as a new trial"]
        t = _trials(url)
        assert [x.state.name for x in t] == ["RUNNING", "FAIL", "COMPLETE"]
        assert t[2].values == [4.0] and t[2].user_attrs == {
            "config": json.dumps(CFGS[1], sort_keys=True), "note": 3}
        assert t[2].params == t[1].params
        row = [r for r in _claims(url) if r["config_key"] == c.key][0]
        assert row["trial_id"] == t[2]._trial_id and row["worker"] == "w"
        assert row["token"] != ""
        assert c.trial_id not in st._held
        # a fail of a trial already failed is quiet
        st.fail(c, "again")
        assert st.claim(CFGS[1:2]) == []
        assert st.completed()[0] == [CFGS[1]]
        # completed() is in trial order, not claim order: the late trial comes last
        (first,) = list(st._held.values())
        st.storage.set_trial_state_values(first.trial_id, optuna.trial.TrialState.FAIL)
        st.complete(first, [5.0])
        cfgs, obj, attrs = st.completed()
        assert cfgs == [CFGS[1], CFGS[0]] and obj.tolist() == [[4.0], [5.0]]
        assert [a["trial_number"] for a in attrs] == [2, 3]


def test_complete_after_stale_repoints_a_row_taken_over(url: str) -> None:
    """The stale claim's row was taken over and not yet given a trial: still repointed."""
    with open_study(url, "s", SPACE, ["minimize"], worker="w") as st:
        (c,) = st.claim(CFGS[:1])
        st.storage.set_trial_state_values(c.trial_id, optuna.trial.TrialState.FAIL)
        _sql(url, "UPDATE switchnas_claims SET trial_id = NULL, worker = 'x'")
        st.complete(c, [2.0])
        (row,) = _claims(url)
        assert row["trial_id"] == _trials(url)[1]._trial_id and row["worker"] == "w"
        # a row held by another trial is left alone
    with open_study(url, "s2", SPACE, ["minimize"], worker="w") as st:
        (c,) = st.claim(CFGS[:1])
        st.storage.set_trial_state_values(c.trial_id, optuna.trial.TrialState.FAIL)
        (other,) = st.claim(CFGS[:1])
        st.complete(c, [2.0])
        row = [r for r in _claims(url) if r["study_id"] == st._study_id][0]
        assert row["trial_id"] == other.trial_id


def test_fail_marks_the_trial_and_releases_it(url: str) -> None:
    with open_study(url, "s", SPACE, ["minimize"]) as st:
        (c,) = st.claim(CFGS[:1])
        assert c.trial_id in st._held
        st.fail(c, "device lost")
        assert st._held == {}
        (t,) = _trials(url)
        assert t.state.name == "FAIL" and t.user_attrs["fail_reason"] == "device lost"


def _age_heartbeats(url: str, trial_ids: list[int]) -> None:
    old = datetime.datetime(2000, 1, 1)
    for tid in trial_ids:
        _sql(url, "UPDATE trial_heartbeats SET heartbeat = :h WHERE trial_id = :t", h=old,
             t=tid)


def test_stale_trials_are_failed_and_claimable(url: str) -> None:
    with open_study(url, "s", SPACE, ["minimize"], worker="dead", heartbeat_s=60) as dead:
        held = dead.claim(CFGS[:2])
    with open_study(url, "s", SPACE, ["minimize"], worker="live", heartbeat_s=60) as st:
        assert st.claim(CFGS[:2]) == []
        assert sorted(map(json.dumps, st.running())) == sorted(map(json.dumps, CFGS[:2]))
        _age_heartbeats(url, [held[0].trial_id])
        st.fail_stale()
        assert [t.state.name for t in _trials(url)] == ["FAIL", "RUNNING"]
        assert st.running() == [CFGS[1]]
        _age_heartbeats(url, [held[1].trial_id])
        got = st.claim(CFGS[:2])  # fails the stale one first
        assert [c.config for c in got] == CFGS[:2]
        assert [r["worker"] for r in _claims(url)] == ["live", "live"]


def test_claims_being_created_by_another_worker(url: str, tmp_path: Path) -> None:
    with open_study(url, "s", SPACE, ["minimize"], worker="me", heartbeat_s=10) as st:
        now = time.time()
        rows = [(CFGS[0], now - 5), (CFGS[1], now - 10_000)]
        for cfg, at in rows:
            _sql(url, "INSERT INTO switchnas_claims (study_id, config_key, trial_id, worker, "
                      "token, claimed_at, config) VALUES (:s, :k, NULL, 'other', :tok, :at, "
                      ":c)", s=st._study_id, k=config_key(cfg), tok="t" * 32, at=at,
                 c=json.dumps(cfg, sort_keys=True))
        # the recent one is being created: running, not claimable; the old one is abandoned
        assert st.running() == [CFGS[0]]
        got = st.claim(CFGS[:2])
        assert [c.config for c in got] == [CFGS[1]]
        row = [r for r in _claims(url) if r["config_key"] == config_key(CFGS[1])][0]
        assert row["worker"] == "me" and row["trial_id"] == got[0].trial_id
        assert row["token"] != "t" * 32 and row["claimed_at"] > now - 60
        assert sorted(map(json.dumps, st.running())) == sorted(map(json.dumps, CFGS[:2]))


def test_a_lost_token_race_gives_no_claim(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_study(url, "s", SPACE, ["minimize"], worker="me") as st:
        (c,) = st.claim(CFGS[:1])
        st.fail(c, "x")
        real = st._execute

        def racing(statement: Any) -> Any:
            if isinstance(statement, sa.sql.Update) and not getattr(racing, "done", False):
                racing.done = True  # type: ignore[attr-defined]
                real(sa.update(st._table).values(token="z" * 32))  # another worker won
            return real(statement)

        monkeypatch.setattr(st, "_execute", racing)
        assert st.claim(CFGS[:1]) == []
        assert len(_trials(url)) == 1


def test_the_heartbeat_thread(url: str, monkeypatch: pytest.MonkeyPatch,
                              caplog: pytest.LogCaptureFixture) -> None:
    import threading

    with open_study(url, "hb", SPACE, ["minimize"], heartbeat_s=60) as st:
        assert st._thread is None
        (c,) = st.claim(CFGS[:1])
        thread = st._thread
        assert thread is not None and thread.is_alive() and thread.daemon
        assert thread.name == "switchnas-heartbeat-hb"
        st.claim(CFGS[1:2])
        assert st._thread is thread  # one thread for all claims
        # one pass of the loop: every held trial beats; a failing beat is logged
        beats: list[int] = []

        def beat(tid: int) -> None:
            beats.append(tid)
            if len(beats) == 1:
                raise RuntimeError("db gone")

        monkeypatch.setattr(st.storage, "record_heartbeat", beat)
        waits: list[float] = []

        class Once:
            def wait(self, s: float) -> bool:
                waits.append(s)
                return len(waits) > 1

        real_stop = st._stop
        st._stop = Once()  # type: ignore[assignment]
        with caplog.at_level(logging.WARNING, logger="switchnas.search.study"):
            st._beat()
        st._stop = real_stop
        assert waits == [60, 60] and beats == sorted(st._held)
        assert [r.getMessage() for r in caplog.records] == [
            f"study hb: heartbeat of trial {c.trial_id} failed: db gone"]
    assert st._thread is None and not thread.is_alive()
    assert all(t is not thread for t in threading.enumerate())


def test_close_is_idempotent_and_reclaims_restart_the_thread(url: str) -> None:
    st = open_study(url, "s", SPACE, ["minimize"], heartbeat_s=60)
    st.close()
    st.close()
    assert st._thread is None
    with st as same:
        assert same is st
        st.claim(CFGS[:1])
        assert st._thread is not None and st._thread.is_alive()
    assert st._thread is None


def test_set_user_attr_is_jsonable(url: str) -> None:
    with open_study(url, "s", SPACE, ["minimize"]) as st:
        st.set_user_attr("ref", {"a": np.float64(1.5), 2: np.array([[1, 2]]), "t": (1, 2)})
        attrs = st.user_attrs
        assert attrs["ref"] == {"a": 1.5, "2": [[1, 2]], "t": [1, 2]}
        attrs["x"] = 1
        assert "x" not in st.user_attrs
        assert set(st.user_attrs) == {"switchnas_space", "ref"}


# -- reopening --------------------------------------------------------------------------------
def test_legacy_completed_trials_are_adopted(url: str) -> None:
    old = optuna.create_study(storage=url, study_name="v", directions=["minimize"])
    unsorted = '{"c": 0.5, "a": [2, 1]}'
    old.add_trial(optuna.trial.create_trial(values=[1.0], user_attrs={"config": unsorted}))
    old.add_trial(optuna.trial.create_trial(values=[9.0]))  # no config: not adopted
    old.add_trial(optuna.trial.create_trial(values=[2.0], user_attrs={"config": unsorted}))
    old.add_trial(optuna.trial.create_trial(
        values=[3.0], user_attrs={"config": json.dumps(CFGS[0])}))
    old.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL,
                                            user_attrs={"config": json.dumps(CFGS[1])}))
    ids = [t._trial_id for t in old.trials]
    with open_study(url, "v", SPACE, ["minimize"]) as st:
        rows = _claims(url)
        assert [r["trial_id"] for r in rows] == [ids[0], ids[3]]
        assert rows[0]["config"] == '{"a": [2, 1], "c": 0.5}'
        assert rows[0]["config_key"] == config_key({"a": [2, 1], "c": 0.5})
        assert [r["worker"] for r in rows] == ["", ""]
        assert all(re.fullmatch(r"[0-9a-f]{32}", r["token"]) for r in rows)
        assert rows[0]["token"] != rows[1]["token"]
        assert st.claim([{"a": [2, 1], "c": 0.5}, CFGS[0]]) == []
        assert [c.config for c in st.claim(CFGS[1:2])] == CFGS[1:2]
        cfgs, obj, _ = st.completed()
        assert cfgs == [{"c": 0.5, "a": [2, 1]}, CFGS[0]] and obj.tolist() == [[1.0], [3.0]]
    with open_study(url, "v", SPACE, ["minimize"]):
        assert len(_claims(url)) == 3  # adopted once


def test_a_restarted_worker_fails_its_leftovers(url: str) -> None:
    st = open_study(url, "s", SPACE, ["minimize"], worker="w", heartbeat_s=60)
    c0, c1, c2 = st.claim(CFGS[:3])
    st.complete(c0, [1.0])
    st.close()
    with open_study(url, "s", SPACE, ["minimize"], worker="other", heartbeat_s=60) as o:
        (oc,) = o.claim(CFGS[3:4])
        _sql(url, "INSERT INTO switchnas_claims (study_id, config_key, trial_id, worker, "
                  "token, claimed_at, config) VALUES (:s, :k, NULL, 'w', :t, :at, :c)",
             s=o._study_id, k=config_key(CFGS[4]), t="t" * 32, at=time.time(),
             c=json.dumps(CFGS[4], sort_keys=True))
        _sql(url, "INSERT INTO switchnas_claims (study_id, config_key, trial_id, worker, "
                  "token, claimed_at, config) VALUES (:s, :k, NULL, 'other', :t, :at, :c)",
             s=o._study_id, k=config_key(CFGS[5]), t="u" * 32, at=time.time(),
             c=json.dumps(CFGS[5], sort_keys=True))
        with open_study(url, "s", SPACE, ["minimize"], worker="w", heartbeat_s=60) as again:
            t = _trials(url)
            assert [x.state.name for x in t] == ["COMPLETE", "FAIL", "FAIL", "RUNNING"]
            assert t[1].user_attrs["fail_reason"] == "worker w restarted"
            assert "fail_reason" not in t[0].user_attrs and "fail_reason" not in t[3].user_attrs
            rows = {r["config_key"]: r for r in _claims(url)}
            assert rows[config_key(CFGS[4])]["claimed_at"] == 0.0
            assert rows[config_key(CFGS[5])]["claimed_at"] > 0
            assert again.running() == [CFGS[3], CFGS[5]]
            got = again.claim(CFGS[:6])
            assert [c.config for c in got] == [CFGS[1], CFGS[2], CFGS[4]]
        o.fail(oc, "done")


def test_reopen_without_leftovers_and_with_a_never_created_trial(url: str) -> None:
    """A claim row without a trial (a worker killed while claiming) does not stop the
    restart, and is claimable at once."""
    with open_study(url, "s", SPACE, ["minimize"], worker="w") as st:
        sid = st._study_id
    _sql(url, "INSERT INTO switchnas_claims (study_id, config_key, trial_id, worker, token, "
              "claimed_at, config) VALUES (:s, :k, NULL, 'w', :t, :at, :c)",
         s=sid, k=config_key(CFGS[0]), t="t" * 32, at=time.time(),
         c=json.dumps(CFGS[0], sort_keys=True))
    with open_study(url, "s", SPACE, ["minimize"], worker="w") as st:
        assert [r["claimed_at"] for r in _claims(url)] == [0.0]
        assert st.running() == []
        assert [c.config for c in st.claim(CFGS[:1])] == CFGS[:1]


def test_claims_table_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"  # made by open_study itself
    with open_study(url, "s", SPACE, ["minimize"]):
        pass
    engine = sa.create_engine(url)
    try:
        insp = sa.inspect(engine)
        columns = insp.get_columns("switchnas_claims")
        cols = {c["name"]: str(c["type"]) for c in columns}
        nullable = {c["name"] for c in columns if c["nullable"]}
        (uq,) = insp.get_unique_constraints("switchnas_claims")
        pk = insp.get_pk_constraint("switchnas_claims")
    finally:
        engine.dispose()
    assert cols == {"id": "INTEGER", "study_id": "INTEGER", "config_key": "VARCHAR(64)",
                    "trial_id": "INTEGER", "worker": "VARCHAR(256)", "token": "VARCHAR(32)",
                    "claimed_at": "FLOAT", "config": "TEXT"}
    assert nullable == {"trial_id"}  # NULL only while a claim's trial is being created
    assert uq["name"] == "uq_switchnas_claims_config"
    assert uq["column_names"] == ["study_id", "config_key"]
    assert pk["constrained_columns"] == ["id"]


def test_two_studies_in_one_database_keep_their_claims_apart(url: str) -> None:
    with open_study(url, "s1", SPACE, ["minimize"]) as a, \
            open_study(url, "s2", SPACE, ["minimize"]) as b:
        (ca,) = a.claim(CFGS[:1])
        a.complete(ca, [1.0])
        assert [c.config for c in b.claim(CFGS[:1])] == CFGS[:1]
        assert b.completed()[0] == [] and a.completed()[0] == CFGS[:1]
        assert a.running() == [] and b.running() == CFGS[:1]
        assert a.counts() == {"complete": 1, "running": 0}


# -- record_measurements ----------------------------------------------------------------------
def test_record_measurements_contract(tmp_path: Path, template: Path) -> None:
    db = _fresh(template, tmp_path / "m.db")
    rows = [{"config": {"c": 0.5, "a": [0, 1]}, "latency_ms": np.float64(2), "accuracy": 70,
             "source": "x"},
            {"config": CFGS[2], "latency_ms": 3, "accuracy": 71.5}]
    assert record_measurements(db, "v", SPACE, rows) == 2
    st = optuna.load_study(study_name="v", storage=f"sqlite:///{db}")
    assert st.metric_names == ["latency_ms", "accuracy"]
    assert [d.name for d in st.directions] == ["MINIMIZE", "MAXIMIZE"]
    t = st.trials
    assert [x.values for x in t] == [[2.0, 70.0], [3.0, 71.5]]
    assert t[0].user_attrs["latency_ms"] == 2.0 and t[0].user_attrs["accuracy"] == 70
    assert t[0].user_attrs["source"] == "x"
    assert json.loads(t[0].user_attrs["config"]) == {"a": [0, 1], "c": 0.5}
    assert record_measurements(db, "v", SPACE, rows[:1]) == 2
    assert record_measurements(db, "w", SPACE, rows[:1], metric_names=("lat", "top1")) == 1
    assert optuna.load_study(study_name="w", storage=f"sqlite:///{db}").metric_names == [
        "lat", "top1"]
    with pytest.raises(ValueError, match="not allowed"):
        record_measurements(db, "v", SPACE, [{"config": {"a": [9, 9], "c": 0.5},
                                              "latency_ms": 1, "accuracy": 1}])
