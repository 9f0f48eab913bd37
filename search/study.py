"""Real measurements as trials of a persistent Optuna study, shared by many workers.

Every real evaluation of a sub-network is one Optuna trial: its params are the config's
genome positions (``{dimension}_{i}``, categorical over that position's choices), its
values the objectives, its user attrs the config (JSON) and any extras (measurement
intervals, the worker). The study lives in a relational database given as a URL
(``sqlite:///runs/a/study.db``, a bare path meaning SQLite; ``postgresql://user:pw@host/db``
for workers on many machines), so it can be inspected with Optuna's own tools
(``optuna-dashboard sqlite:///study.db``) and it survives crashes.

Workers divide the work through *claims*: before measuring a sub-network a worker claims
it, which inserts a row into the table ``switchnas_claims`` (one row per study and
sub-network, ``UNIQUE(study_id, config_key)``, created beside Optuna's tables in the same
database) and starts a RUNNING trial that a background thread keeps alive with Optuna's
heartbeat. The database's unique constraint decides races between processes and machines;
a sub-network already measured, or claimed by a live worker, is skipped. When a worker
dies (``kill -9``, a lost machine), its trials stop beating; after the grace period they
are failed (:func:`optuna.storages.fail_stale_trials`) and their sub-networks become
claimable again, so no completed measurement is lost and none is repeated.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from switchnas.supernets.base import Config
from switchnas.supernets.space import ChoiceSpace

__all__ = ["Claim", "MeasurementStudy", "SpaceMismatchError", "config_key", "open_study",
           "record_measurements", "storage_url"]

log = logging.getLogger(__name__)

_CLAIMS = "switchnas_claims"
_DIRECTIONS = ("minimize", "maximize")
_SCHEMES = ("sqlite", "postgresql")
_RETRIES = 8


class SpaceMismatchError(ValueError):
    """The study holds measurements of a different search space."""


@dataclass(frozen=True)
class Claim:
    """A sub-network this worker holds: a RUNNING trial, until completed or failed.

    Attributes:
        config: the canonical config to measure.
        key: its :func:`config_key`.
        trial_id: the Optuna trial's storage id.
        number: the Optuna trial's number within the study.
    """

    config: Config
    key: str
    trial_id: int
    number: int


def config_key(config: Mapping[str, Any]) -> str:
    """The identity of a (canonical) config: SHA-256 of its sorted, compact JSON."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def storage_url(storage: str | os.PathLike[str]) -> str:
    """The SQLAlchemy URL of ``storage``.

    Args:
        storage: ``sqlite:///path.db``, ``postgresql://user:password@host:port/db``
            (``postgresql+psycopg2://`` or ``postgresql+psycopg://`` to name the driver),
            or a bare file path, which means an SQLite file (its folder is created).

    Returns:
        The URL, with the PostgreSQL driver made explicit where it was not.

    Raises:
        ValueError: another scheme.
    """
    text = os.fspath(storage)
    if "://" not in text:
        path = Path(text).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    scheme = text.split("://", 1)[0]
    if scheme.split("+", 1)[0] not in _SCHEMES:
        raise ValueError(f"storage {_hide_password(text)!r}: unsupported scheme {scheme!r}; "
                         "use a file path, sqlite:///path.db or "
                         "postgresql://user:password@host:port/database")
    if scheme == "postgresql":
        return "postgresql+" + _postgres_driver() + text[len("postgresql"):]
    return text


def _postgres_driver() -> str:
    for module, driver in (("psycopg2", "psycopg2"), ("psycopg", "psycopg")):
        with contextlib.suppress(ImportError):
            __import__(module)
            return driver
    raise ImportError("a postgresql:// storage needs a PostgreSQL driver: "
                      "pip install 'switchnas[postgres]' (psycopg2-binary)")


def _hide_password(url: str) -> str:
    import sqlalchemy as sa

    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL names itself in the caller's message
        return url


def _retry(fn: Any) -> Any:
    """Run ``fn()``, retrying while the database is locked (SQLite) or deadlocked."""
    import sqlalchemy.exc as sa_exc
    from optuna.exceptions import StorageInternalError

    for attempt in range(_RETRIES):
        try:
            return fn()
        except (sa_exc.OperationalError, StorageInternalError) as exc:
            if attempt == _RETRIES - 1:
                raise
            log.debug("study: retrying after %s", exc)
            time.sleep(0.05 * 2 ** attempt * (0.5 + np.random.random()))
    raise AssertionError("unreachable")


def open_study(storage: str | os.PathLike[str], name: str, space: ChoiceSpace,
               directions: Sequence[str], *, heartbeat_s: int = 30,
               grace_s: int | None = None, worker: str | None = None,
               metric_names: Sequence[str] | None = None) -> MeasurementStudy:
    """Open (or create) the study ``name`` in ``storage``.

    Args:
        storage: a URL or an SQLite file path (see :func:`storage_url`).
        name: the study's name; one study per super-network, hardware and objectives.
        space: the search space; configs are stored canonical (``space.canonical``).
        directions: one of ``"minimize"``/``"maximize"`` per objective.
        heartbeat_s: seconds between heartbeats of this worker's running trials.
        grace_s: a running trial whose heartbeat is older than this is stale: it is
            failed and its sub-network can be claimed again (default ``2 * heartbeat_s``).
            Workers' clocks must agree to well within it.
        worker: this worker's name, unique among live workers (default
            ``host:pid:random``). A worker opened again under the same name (a restarted
            process) first fails the running trials it left behind, so it resumes at once.
        metric_names: a name per objective (``["latency_ms", "top1"]``), stored in the
            study so that Optuna's dashboard and ``trials_dataframe()`` label the values;
            ``None`` leaves the study's names as they are.

    Returns:
        The open study; close it (or use it as a context manager) to stop the heartbeat.

    Raises:
        ValueError: a bad storage, direction, heartbeat or grace period; directions that
            differ from those the study was created with; metric names that are not one
            distinct non-empty string per direction.
        SpaceMismatchError: the study holds measurements of another space.
    """
    dirs = [str(d) for d in directions]
    bad = [d for d in dirs if d not in _DIRECTIONS]
    if not dirs or bad:
        raise ValueError(f"directions={dirs!r}: each must be one of {list(_DIRECTIONS)}")
    if int(heartbeat_s) != heartbeat_s or heartbeat_s < 1:
        raise ValueError(f"heartbeat_s={heartbeat_s!r}: must be an integer >= 1 (seconds)")
    grace = 2 * int(heartbeat_s) if grace_s is None else grace_s
    if int(grace) != grace or grace <= heartbeat_s:
        raise ValueError(f"grace_s={grace_s!r}: must be an integer > heartbeat_s "
                         f"({heartbeat_s})")
    if not name:
        raise ValueError("name: the study needs a non-empty name")
    names = None if metric_names is None else list(metric_names)
    if names is not None and (len(names) != len(dirs) or len(set(names)) != len(names)
                              or not all(isinstance(n, str) and n for n in names)):
        raise ValueError(f"metric_names={names!r}: need one distinct non-empty name per "
                         f"objective ({len(dirs)}: {dirs})")
    return MeasurementStudy(url=storage_url(storage), name=name, space=space, directions=dirs,
                            metric_names=names, heartbeat_s=int(heartbeat_s),
                            grace_s=int(grace),
                            worker=worker or f"{socket.gethostname()}:{os.getpid()}:"
                                             f"{uuid.uuid4().hex[:8]}")


class MeasurementStudy:
    """A persistent study of real measurements that several workers share.

    Made by :func:`open_study`. Methods are safe to call from several processes and
    machines at once; one instance is used by one thread (plus its heartbeat thread).
    """

    def __init__(self, *, url: str, name: str, space: ChoiceSpace, directions: list[str],
                 heartbeat_s: int, grace_s: int, worker: str,
                 metric_names: list[str] | None = None):
        import optuna
        import sqlalchemy as sa
        from optuna.exceptions import ExperimentalWarning

        self.url, self.name, self.space = url, name, space
        self.directions, self.worker = list(directions), worker
        self.metric_names = None if metric_names is None else list(metric_names)
        self.heartbeat_s, self.grace_s = heartbeat_s, grace_s
        sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"connect_args": {"timeout": 60}} if sqlite else {
            "pool_pre_ping": True}
        self._engine = sa.create_engine(url, **kwargs)
        if sqlite:
            sa.event.listen(self._engine, "connect", _sqlite_pragmas)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            self.storage = _retry(lambda: optuna.storages.RDBStorage(
                url, engine_kwargs=kwargs, heartbeat_interval=heartbeat_s,
                grace_period=grace_s))
        if sqlite:
            sa.event.listen(self.storage.engine, "connect", _sqlite_pragmas)
            self.storage.engine.dispose()
        try:
            self._open(name, space)
        except BaseException:
            self._engine.dispose()
            self.storage.engine.dispose()
            raise

    def _open(self, name: str, space: ChoiceSpace) -> None:
        import optuna

        url = self.url
        self.study = _retry(lambda: optuna.create_study(
            storage=self.storage, study_name=name, directions=list(self.directions),  # type: ignore[arg-type]
            load_if_exists=True))
        have = [d.name.lower() for d in self.study.directions]
        if have != self.directions:
            raise ValueError(f"study {name!r} in {_hide_password(url)} was created with "
                             f"directions {have}; got {self.directions}")
        if self.metric_names is not None and self.study.metric_names != self.metric_names:
            from optuna.exceptions import ExperimentalWarning

            with warnings.catch_warnings():  # experimental in Optuna 3.x, stable since
                warnings.simplefilter("ignore", ExperimentalWarning)
                names = self.metric_names
                _retry(lambda: self.study.set_metric_names(names))
        self._study_id = int(_retry(lambda: self.storage.get_study_id_from_name(name)))
        self._table = _claims_table()
        _retry(lambda: self._table.metadata.create_all(self._engine, checkfirst=True))
        self._check_space()
        self._params = {
            f"{n}_{i}": list(ch) for n, chs in space.dimensions.items() for i, ch in enumerate(chs)}
        self._held: dict[int, Claim] = {}
        self._done: dict[str, tuple[int, Config, list[float], dict[str, Any]]] = {}
        self._failed: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._adopt_legacy_trials()
        self._fail_own_leftovers()

    # -- context ---------------------------------------------------------------------
    def __enter__(self) -> MeasurementStudy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the heartbeat thread and release the database connections. Claims still
        held stay RUNNING and go stale after the grace period."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._engine.dispose()
        self.storage.engine.dispose()

    def __repr__(self) -> str:
        return (f"MeasurementStudy(name={self.name!r}, storage={_hide_password(self.url)!r}, "
                f"worker={self.worker!r})")

    # -- claims ----------------------------------------------------------------------
    def claim(self, configs: Sequence[Mapping[str, Any]], *, limit: int | None = None,
              budget: int | None = None) -> list[Claim]:
        """Reserve sub-networks for this worker, in order, skipping those already
        measured or held by a live worker (and repeats within ``configs``).

        Stale trials of dead workers are failed first, so their sub-networks are
        claimable again.

        Args:
            configs: configs of ``self.space`` (canonicalised here).
            limit: claim at most this many.
            budget: the most sub-networks the study may hold measured or running, over
                all workers. Workers that claim at the same moment agree on who stays
                within it (the earliest trials); the others' claims are released (their
                trials FAIL with ``fail_reason`` saying so) and not returned.

        Returns:
            One :class:`Claim` per reserved sub-network (a RUNNING trial with a heartbeat);
            measure it, then :meth:`complete` or :meth:`fail` it.

        Raises:
            ValueError: a config that is not in the space.
        """
        self.fail_stale()
        out: list[Claim] = []
        seen: set[str] = set()
        for cfg in configs:
            if limit is not None and len(out) >= limit:
                break
            canon = self.space.validate(cfg)
            key = config_key(canon)
            if key in seen:
                continue
            seen.add(key)
            claim = self._claim_one(canon, key)
            if claim is not None:
                out.append(claim)
        if budget is not None and out:
            out = self._within(out, budget)
        return out

    def _within(self, claims: list[Claim], budget: int) -> list[Claim]:
        """The claims among the first ``budget`` of the study's measured and running
        sub-networks (running ones ranked by trial number); the rest are released."""
        from optuna.trial import TrialState

        # running first, then completed: a trial completing in between is counted twice
        # (a claim released too many, retried later), never missed (the budget exceeded)
        running = sorted(t.number for t in _retry(lambda: self.storage.get_all_trials(
            self._study_id, deepcopy=False, states=(TrialState.RUNNING,))))
        room = budget - len(self.completed()[0])
        rank = {n: i for i, n in enumerate(running)}
        keep = [c for c in claims if rank.get(c.number, len(running)) < room]
        for c in claims:
            if c not in keep:
                self.fail(c, f"released: the study's budget of {budget} sub-networks is "
                             "measured or held")
        return keep

    def complete(self, claim: Claim, values: Sequence[float], **attrs: Any) -> None:
        """Record the measurement of a claimed sub-network: the trial becomes COMPLETE.

        Args:
            claim: from :meth:`claim` of this study.
            values: one finite value per objective, in the study's directions.
            **attrs: JSON-serialisable extras, stored as the trial's user attrs.

        Raises:
            ValueError: the wrong number of values, or a value that is not finite.
        """
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        vals = [float(v) for v in values]
        if len(vals) != len(self.directions) or not all(np.isfinite(vals)):
            raise ValueError(f"values={list(values)!r}: need {len(self.directions)} finite "
                             f"values ({self.directions})")
        attrs = {k: _jsonable(v) for k, v in attrs.items()}
        try:
            for k, v in attrs.items():
                _retry(lambda k=k, v=v: self.storage.set_trial_user_attr(claim.trial_id, k, v))
            _retry(lambda: self.storage.set_trial_state_values(
                claim.trial_id, TrialState.COMPLETE, vals))
        except UpdateFinishedTrialError:
            # our trial was failed as stale (this worker stalled past the grace period);
            # a real measurement is never dropped: it becomes a new trial of its own
            log.warning("study %s: trial %d was failed as stale before it completed; its "
                        "measurement is recorded as a new trial", self.name, claim.number)
            tid = self._new_trial(claim.config, TrialState.COMPLETE, vals, attrs)
            self._repoint(claim.key, old=claim.trial_id, new=tid)
        finally:
            self._release(claim)

    def fail(self, claim: Claim, reason: str) -> None:
        """Give a claimed sub-network back: its trial FAILs (with ``reason`` as the user
        attr ``fail_reason``) and any worker may claim it again."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        try:
            _retry(lambda: self.storage.set_trial_user_attr(
                claim.trial_id, "fail_reason", str(reason)))
            _retry(lambda: self.storage.set_trial_state_values(claim.trial_id, TrialState.FAIL))
        except UpdateFinishedTrialError:
            pass  # already failed as stale
        finally:
            self._release(claim)

    def fail_stale(self) -> None:
        """Fail running trials whose heartbeat is older than the grace period."""
        from optuna.exceptions import ExperimentalWarning
        from optuna.storages import fail_stale_trials

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            _retry(lambda: fail_stale_trials(self.study))

    # -- what the study holds --------------------------------------------------------
    @property
    def user_attrs(self) -> dict[str, Any]:
        """The study's user attrs (shared by every worker; ``switchnas_space`` is the
        space the study was created for)."""
        return dict(_retry(lambda: self.storage.get_study_user_attrs(self._study_id)))

    def set_user_attr(self, key: str, value: Any) -> None:
        """Set a JSON-serialisable study user attr (e.g. the reference level that every
        worker's latencies are expressed in)."""
        _retry(lambda: self.storage.set_study_user_attr(self._study_id, key, _jsonable(value)))

    def completed(self) -> tuple[list[Config], np.ndarray, list[dict[str, Any]]]:
        """Everything ever measured in this study, by any worker and run.

        Reads only the trials completed since the last call (a completed trial never
        changes), so calling it every round stays cheap in a study of thousands.

        Returns:
            ``(configs, objectives, attrs)`` in trial order, one row per sub-network:
            objectives ``(n, m)`` in the study's directions, attrs each trial's user attrs
            without ``config``, plus ``trial_number``.
        """
        import sqlalchemy as sa
        from optuna.trial import TrialState

        c = self._table.c
        rows = self._execute(sa.select(c.config_key, c.trial_id).where(
            c.study_id == self._study_id, c.trial_id.is_not(None)))
        for row in rows:
            if row.config_key in self._done or row.trial_id in self._failed:
                continue
            t = _retry(lambda tid=row.trial_id: self.storage.get_trial(tid))
            if t.state != TrialState.COMPLETE or t.values is None or "config" not in t.user_attrs:
                if t.state.is_finished():
                    self._failed.add(row.trial_id)  # finished for good; never read again
                continue
            attrs = {k: v for k, v in t.user_attrs.items() if k != "config"}
            self._done[row.config_key] = (t.number, json.loads(t.user_attrs["config"]),
                                          list(t.values), {**attrs, "trial_number": t.number})
        done = sorted(self._done.values(), key=lambda r: r[0])
        obj = np.asarray([r[2] for r in done], float).reshape(len(done), len(self.directions))
        return [r[1] for r in done], obj, [dict(r[3]) for r in done]

    def running(self) -> list[Config]:
        """Configs held now by live workers (this one included)."""
        import sqlalchemy as sa
        from optuna.trial import TrialState

        trials = _retry(lambda: self.storage.get_all_trials(
            self._study_id, deepcopy=False, states=(TrialState.RUNNING,)))
        out = [json.loads(t.user_attrs["config"]) for t in trials if "config" in t.user_attrs]
        # claims whose trial is being created right now
        c = self._table.c
        rows = self._execute(sa.select(c.config).where(
            c.study_id == self._study_id, c.trial_id.is_(None),
            c.claimed_at >= time.time() - self.grace_s))
        return out + [json.loads(r.config) for r in rows]

    def counts(self) -> dict[str, int]:
        """``{"complete": n, "running": n}``: sub-networks measured, and held now."""
        return {"complete": len(self.completed()[0]), "running": len(self.running())}

    # -- internals -------------------------------------------------------------------
    def _claim_one(self, cfg: Config, key: str) -> Claim | None:
        import sqlalchemy as sa
        import sqlalchemy.exc as sa_exc
        from optuna.trial import TrialState

        c = self._table.c
        token = uuid.uuid4().hex
        row = {"study_id": self._study_id, "config_key": key, "trial_id": None,
               "worker": self.worker, "token": token, "claimed_at": time.time(),
               "config": json.dumps(cfg, sort_keys=True)}
        try:
            self._execute(sa.insert(self._table).values(**row))
        except sa_exc.IntegrityError:
            held = self._execute(sa.select(c.trial_id, c.token, c.claimed_at).where(
                c.study_id == self._study_id, c.config_key == key))[0]
            if held.trial_id is None:
                if time.time() - held.claimed_at < self.grace_s:
                    return None  # another worker is creating its trial right now
            else:
                state = _retry(lambda: self.storage.get_trial(held.trial_id).state)
                if state != TrialState.FAIL:
                    return None  # measured, or held by a live worker
            # take it over; compare-and-swap on the token decides between racing workers
            res = self._execute(sa.update(self._table)
                                .where(c.study_id == self._study_id, c.config_key == key,
                                       c.token == held.token)
                                .values(trial_id=None, worker=self.worker, token=token,
                                        claimed_at=time.time()))
            if res.rowcount != 1:
                return None
        tid = self._new_trial(cfg, TrialState.RUNNING, None, {"worker": self.worker})
        _retry(lambda: self.storage.record_heartbeat(tid))
        self._execute(sa.update(self._table)
                      .where(c.study_id == self._study_id, c.config_key == key,
                             c.token == token)
                      .values(trial_id=tid))
        claim = Claim(config=cfg, key=key, trial_id=tid,
                      number=_retry(lambda: self.storage.get_trial_number_from_id(tid)))
        self._hold(claim)
        return claim

    def _new_trial(self, cfg: Config, state: Any, values: list[float] | None,
                   attrs: Mapping[str, Any]) -> int:
        from optuna.distributions import CategoricalDistribution
        from optuna.trial import create_trial

        params: dict[str, Any] = {}
        dists: dict[str, Any] = {}
        for name in self.space.dimensions:
            vals = [cfg[name]] if self.space.dimension(name).scalar else cfg[name]
            for i, v in enumerate(vals):
                params[f"{name}_{i}"] = v
                dists[f"{name}_{i}"] = CategoricalDistribution(self._params[f"{name}_{i}"])
        template = create_trial(state=state, values=values, params=params,
                                distributions=dists,
                                user_attrs={"config": json.dumps(cfg, sort_keys=True),
                                            **attrs})
        return int(_retry(lambda: self.storage.create_new_trial(self._study_id, template)))

    def _repoint(self, key: str, *, old: int, new: int) -> None:
        import sqlalchemy as sa

        c = self._table.c
        self._execute(sa.update(self._table)
                      .where(c.study_id == self._study_id, c.config_key == key,
                             sa.or_(c.trial_id == old, c.trial_id.is_(None)))
                      .values(trial_id=new, worker=self.worker, token=uuid.uuid4().hex))

    def _execute(self, statement: Any) -> Any:
        """Run one statement in its own transaction (retried while the database is
        locked); returns its rows (a list), or for a write its row count."""
        def run() -> Any:
            with self._engine.begin() as conn:
                res = conn.execute(statement)
                return res.all() if res.returns_rows else _RowCount(res.rowcount)

        return _retry(run)

    def _hold(self, claim: Claim) -> None:
        with self._lock:
            self._held[claim.trial_id] = claim
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._beat, daemon=True,
                                                name=f"switchnas-heartbeat-{self.name}")
                self._thread.start()

    def _release(self, claim: Claim) -> None:
        with self._lock:
            self._held.pop(claim.trial_id, None)

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            with self._lock:
                ids = list(self._held)
            for tid in ids:
                try:
                    self.storage.record_heartbeat(tid)
                except Exception as exc:  # a missed beat is retried at the next one
                    log.warning("study %s: heartbeat of trial %d failed: %s", self.name, tid,
                                exc)

    def _check_space(self) -> None:
        dims = {n: [list(c) for c in chs] for n, chs in self.space.dimensions.items()}
        attrs = _retry(lambda: self.storage.get_study_user_attrs(self._study_id))
        have = attrs.get("switchnas_space")
        if have is None:
            _retry(lambda: self.storage.set_study_user_attr(self._study_id, "switchnas_space",
                                                            dims))
        elif have != dims:
            diff = sorted(n for n in set(have) | set(dims) if have.get(n) != dims.get(n))
            raise SpaceMismatchError(
                f"study {self.name!r} in {_hide_password(self.url)} holds measurements of "
                f"another search space (dimensions {diff} differ); open it with that space "
                "or use another study name")

    def _adopt_legacy_trials(self) -> None:
        """Claim rows for completed trials recorded without claims (older studies)."""
        import sqlalchemy as sa
        import sqlalchemy.exc as sa_exc
        from optuna.trial import TrialState

        trials = _retry(lambda: self.storage.get_all_trials(
            self._study_id, deepcopy=False, states=(TrialState.COMPLETE,)))
        if not trials:
            return
        c = self._table.c
        known = {r.config_key for r in self._execute(
            sa.select(c.config_key).where(c.study_id == self._study_id))}
        for t in trials:
            if "config" not in t.user_attrs:
                continue
            cfg = json.loads(t.user_attrs["config"])
            key = config_key(cfg)
            if key in known:
                continue
            known.add(key)
            tid = _retry(lambda t=t: self.storage.get_trial_id_from_study_id_trial_number(
                self._study_id, t.number))
            with contextlib.suppress(sa_exc.IntegrityError):
                self._execute(sa.insert(self._table).values(
                    study_id=self._study_id, config_key=key, trial_id=tid, worker="",
                    token=uuid.uuid4().hex, claimed_at=time.time(),
                    config=json.dumps(cfg, sort_keys=True)))

    def _fail_own_leftovers(self) -> None:
        """A worker opened again under its name: its old RUNNING trials are orphans."""
        import sqlalchemy as sa
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        c = self._table.c
        ids = [r.trial_id for r in self._execute(
            sa.select(c.trial_id).where(c.study_id == self._study_id, c.worker == self.worker,
                                        c.trial_id.is_not(None)))]
        for tid in ids:
            if _retry(lambda tid=tid: self.storage.get_trial(tid).state) != TrialState.RUNNING:
                continue
            with contextlib.suppress(UpdateFinishedTrialError):
                self.storage.set_trial_user_attr(tid, "fail_reason",
                                                 f"worker {self.worker} restarted")
                self.storage.set_trial_state_values(tid, TrialState.FAIL)
        # claims whose trial was never created: make them claimable at once
        self._execute(sa.update(self._table)
                      .where(c.study_id == self._study_id, c.worker == self.worker,
                             c.trial_id.is_(None))
                      .values(claimed_at=0.0))


@dataclass(frozen=True)
class _RowCount:
    rowcount: int


def _claims_table() -> Any:
    import sqlalchemy as sa

    meta = sa.MetaData()
    return sa.Table(
        _CLAIMS, meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("study_id", sa.Integer, nullable=False),
        sa.Column("config_key", sa.String(64), nullable=False),
        sa.Column("trial_id", sa.Integer, nullable=True),
        sa.Column("worker", sa.String(256), nullable=False),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("claimed_at", sa.Float, nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.UniqueConstraint("study_id", "config_key", name="uq_switchnas_claims_config"),
    )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL: readers never block the writer, so workers polling the study do not stall one
    # that records; NORMAL sync is still safe against a killed process
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def record_measurements(db: str | os.PathLike[str], study_name: str, space: ChoiceSpace,
                        rows: Sequence[Mapping[str, Any]], *,
                        metric_names: Sequence[str] = ("latency_ms", "accuracy")) -> int:
    """Add measured rows to the study ``study_name`` (directions: latency minimised,
    accuracy maximised), skipping sub-networks it already holds.

    Args:
        db: the storage (a URL or an SQLite file path, see :func:`storage_url`).
        study_name: the study's name.
        space: the configs' search space.
        rows: dicts with ``config``, ``latency_ms``, ``accuracy`` and extras (kept as
            user attrs).
        metric_names: the two objectives' names in the study (the task's metric, e.g.
            ``("latency_ms", "top1")``, in place of ``accuracy``).

    Returns:
        The number of sub-networks the study holds measurements of.
    """
    by_key = {config_key(space.validate(r["config"])): r for r in rows}
    with open_study(db, study_name, space, list(_DIRECTIONS),
                    metric_names=list(metric_names)) as study:
        for claim in study.claim([r["config"] for r in rows]):
            row = by_key[claim.key]
            extras = {k: v for k, v in row.items() if k not in ("config",)}
            study.complete(claim, [float(row["latency_ms"]), float(row["accuracy"])],
                           **extras)
        return study.counts()["complete"]
