"""Measuring many workloads together: interleaved, paired with a reference, in rounds.

On a shared or throttling machine a workload's latency drifts (about 25 % over a minute on
a cloud VM) and the drift is shared by everything that runs. Timing each workload alone
for a fraction of a second records that second's drift, not the workload. The protocol
here (:func:`measure_interleaved`) measures all workloads of a batch together:

1. **Rounds in fresh random order.** Every round visits each row once, in an order drawn
   from ``policy.seed``. A *visit* is ``warmup_runs`` untimed runs then
   ``runs_per_visit`` timed runs; the visit's value is the **minimum** of its timed runs
   (interruptions only ever add time, so the minimum is the run least disturbed).
2. **Paired with a reference.** The reference workload is visited at the start of each
   round and after every ``reference_every`` row visits, so every row visit has reference
   visits within a few milliseconds of it: the drift record (:attr:`BatchResult.reference_ms`).
3. **The drift divided out.** In log space a visit is ``row effect + machine state +
   noise``. The machine's state at a visit is the median of the row-corrected readings of
   the ``drift_window`` visits on each side of it (the reference's and the other rows'),
   alternated with the row effects a few times. A slow-down shared by neighbouring visits
   cancels; with ``drift_window=1`` and ``reference_every=1`` this is plain pairing of each
   visit with the two reference visits around it. A row's samples are its visits with the
   state divided out (ms at the machine's median state, so the reference's level ``L``
   sets the scale); its estimate is their median and its 95 % interval the order-statistic
   (binomial) interval of the median, deterministic and distribution-free.
4. **Adaptive rounds.** After ``rounds`` rounds, further rounds visit only the rows whose
   interval half-width is still above ``ci_rel`` of the estimate, until none is, or
   ``max_rounds``, or ``max_seconds`` (the first ``rounds`` rounds always run).
5. **Noise floor.** Estimates from the odd and the even rounds of each row are compared
   (:attr:`BatchResult.repeatability`): their Kendall tau, their median relative
   difference, and the relative error of one full estimate this implies.

Every timed call runs on a watchdog-guarded worker thread (``sample_timeout_s``). A call
that raises or hangs ends its visit; a value that is not a finite number, is zero, or is
above ``max_ms`` is dropped; each such sample is counted in :attr:`BatchResult.warnings`
and summarised in one :class:`~switchnas.plugins.measure.MeasurementWarning` per batch.
A row with more than ``max_failures`` failed runs is dropped with its reason; the batch
goes on. ``isolation="process"`` runs the whole batch in a forked worker pinned to one
core; a worker that stops responding is killed.

Plugins that time things build a :data:`Timer` per workload (their ``prepare``) and call
:func:`measure_workloads`; the stages call :func:`measure_batch`, which also serves
plugins with only ``measure()`` (``"independent"``) and deterministic ones
(``"deterministic"``).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import conditions as _conditions
from .base import Measurement
from .measure import MeasurementError, MeasurementWarning, _as_latency, _Timeout, _Worker

__all__ = [
    "BatchPolicy",
    "BatchResult",
    "Timer",
    "measure_batch",
    "measure_interleaved",
    "measure_workloads",
]

Timer = Callable[[], float]
"""One timed run of a prepared workload; returns its latency in ms."""

_KINDS = ("raised", "hung", "invalid", "absurd", "zero")
_REF = -1  # row index of the reference workload


@dataclass(frozen=True)
class BatchPolicy:
    """How a batch of workloads is measured (see the module docstring).

    Args:
        rounds: rounds every row gets, each in a fresh random order.
        max_rounds: rounds at most, with the adaptive extra rounds.
        runs_per_visit: timed runs per visit; the visit's value is their minimum.
        warmup_runs: untimed runs at the start of every visit (caches, allocator).
        ci_rel: a row is done when its 95 % interval half-width / estimate is below this.
        max_seconds: time budget of the batch: no adaptive round starts that would end
            after it (the first ``rounds`` rounds always run).
        sample_timeout_s: a timed call longer than this is abandoned (its visit ends).
        max_failures: a row with more failed runs (raised, hung, invalid) is dropped.
        max_ms: readings above this are rejected as absurd.
        isolation: ``"thread"`` (a watchdog-guarded worker thread) or ``"process"`` (the
            whole batch in a forked worker process pinned to one core; Linux only).
        seed: seed of the random orders.
        reference_every: the reference is visited at the start of each round and after
            every ``reference_every`` row visits.
        drift_window: visits on each side of a visit whose level estimates give the
            machine's state at that visit (``1`` with ``reference_every=1``: the two
            reference visits around it, i.e. plain pairing).
    """

    rounds: int = 16
    max_rounds: int = 24
    runs_per_visit: int = 1
    warmup_runs: int = 0
    ci_rel: float = 0.01
    max_seconds: float = 300.0
    sample_timeout_s: float = 10.0
    max_failures: int = 3
    max_ms: float = 600_000.0
    isolation: str = "thread"
    seed: int = 0
    reference_every: int = 2
    drift_window: int = 8

    def __post_init__(self) -> None:
        def is_int(v: Any) -> bool:
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        def is_num(v: Any) -> bool:
            return (isinstance(v, (int, float, np.integer, np.floating))
                    and not isinstance(v, bool) and math.isfinite(float(v)))

        rules: list[tuple[str, bool, str]] = [
            ("rounds", is_int(self.rounds) and self.rounds >= 1, "an integer >= 1"),
            ("max_rounds", is_int(self.max_rounds) and is_int(self.rounds)
             and self.max_rounds >= self.rounds, f"an integer >= rounds ({self.rounds!r})"),
            ("runs_per_visit", is_int(self.runs_per_visit) and self.runs_per_visit >= 1,
             "an integer >= 1"),
            ("warmup_runs", is_int(self.warmup_runs) and self.warmup_runs >= 0,
             "an integer >= 0"),
            ("ci_rel", is_num(self.ci_rel) and self.ci_rel >= 0, "a finite number >= 0"),
            ("max_seconds", is_num(self.max_seconds) and self.max_seconds > 0,
             "a finite number > 0"),
            ("sample_timeout_s", is_num(self.sample_timeout_s) and self.sample_timeout_s > 0,
             "a finite number > 0"),
            ("max_failures", is_int(self.max_failures) and self.max_failures >= 0,
             "an integer >= 0"),
            ("max_ms", is_num(self.max_ms) and self.max_ms > 0, "a finite number > 0"),
            ("isolation", self.isolation in ("thread", "process"), "'thread' or 'process'"),
            ("seed", is_int(self.seed) and self.seed >= 0, "an integer >= 0"),
            ("reference_every", is_int(self.reference_every) and self.reference_every >= 1,
             "an integer >= 1"),
            ("drift_window", is_int(self.drift_window) and self.drift_window >= 1,
             "an integer >= 1"),
        ]
        bad = [f"{k}={getattr(self, k)!r} (need {allowed})" for k, ok, allowed in rules if not ok]
        if bad:
            raise ValueError(f"invalid batch policy: {'; '.join(bad)}")

    def to_dict(self) -> dict[str, Any]:
        """The policy as plain JSON values."""
        return asdict(self)


@dataclass
class BatchResult:
    """What a batch measurement produced.

    Attributes:
        measurements: one per workload, in input order; ``None`` where the row was dropped.
        failures: per workload, why it was dropped (``None`` if kept).
        reference_ms: ``(seconds since start, reference latency ms)`` of every reference
            visit: the drift record.
        repeatability: split-half agreement, ``kendall`` (tau between the rows' estimates
            from odd and even rounds), ``rel_error`` (median ``|a-b| / mean(a, b)``) and
            ``noise_floor`` (relative error of one full estimate, ``rel_error / 2``);
            ``nan`` where it cannot be computed (fewer than 2 rows or rounds).
        warnings: dropped samples counted by kind: ``raised``, ``hung``, ``invalid``,
            ``absurd``, ``zero``.
        conditions: ``before``/``after`` snapshots of :mod:`~switchnas.plugins.conditions`
            and what :func:`~switchnas.plugins.conditions.during` says (``steal_pct``,
            ``load1``, ``overloaded`` ...).
        protocol: the policy's fields plus ``name`` (``"interleaved-reference"``,
            ``"independent"`` or ``"deterministic"``) and how the batch ended.
        elapsed_s: wall-clock seconds of the batch.
    """

    measurements: list[Measurement | None]
    failures: list[str | None]
    reference_ms: list[tuple[float, float]] = field(default_factory=list)
    repeatability: dict[str, float] = field(default_factory=dict)
    warnings: dict[str, int] = field(default_factory=dict)
    conditions: dict[str, Any] = field(default_factory=dict)
    protocol: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (measurements via ``Measurement.summary()``, ``nan`` as
        ``None``)."""
        return _jsonable({
            "measurements": [m.summary() if m is not None else None for m in self.measurements],
            "failures": list(self.failures),
            "reference_ms": [list(p) for p in self.reference_ms],
            "repeatability": dict(self.repeatability),
            "warnings": dict(self.warnings),
            "conditions": self.conditions,
            "protocol": self.protocol,
            "elapsed_s": self.elapsed_s,
        })

    def rescaled(self, level_ms: float) -> BatchResult:
        """This result in the units of another batch: every row multiplied so that the
        reference's level is ``level_ms`` (e.g. the profile's, when the same reference
        workload was used), so batches measured at different machine states compare.

        Rows of protocols without a reference level are returned unchanged.
        """
        level = self.protocol.get("reference_level_ms")
        if not level or not math.isfinite(float(level)) or not math.isfinite(level_ms) \
                or level_ms <= 0:
            return self
        f = float(level_ms) / float(level)
        ms: list[Measurement | None] = []
        for m in self.measurements:
            if m is None:
                ms.append(None)
                continue
            meta = dict(m.meta)
            for k in ("ci_low_ms", "ci_high_ms", "reference_level_ms"):
                if isinstance(meta.get(k), (int, float)):
                    meta[k] = meta[k] * f
            meta["rescaled_by"] = f
            ms.append(Measurement(samples_ms=tuple(v * f for v in m.samples_ms),
                                  energy_mj=m.energy_mj, meta=meta))
        protocol = {**self.protocol, "reference_level_ms": float(level_ms),
                    "measured_reference_level_ms": float(level)}
        return BatchResult(measurements=ms, failures=list(self.failures),
                           reference_ms=list(self.reference_ms),
                           repeatability=dict(self.repeatability), warnings=dict(self.warnings),
                           conditions=dict(self.conditions), protocol=protocol,
                           elapsed_s=self.elapsed_s)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatchResult:
        """The inverse of :meth:`to_dict`."""
        ms: list[Measurement | None] = []
        for m in data["measurements"]:
            ms.append(None if m is None else Measurement(
                samples_ms=tuple(m["samples_ms"]), energy_mj=m.get("energy_mj"),
                meta=dict(m.get("meta") or {})))
        rep = {k: (float("nan") if v is None else float(v))
               for k, v in (data.get("repeatability") or {}).items()}
        return cls(measurements=ms, failures=list(data["failures"]),
                   reference_ms=[(float(t), float(v)) for t, v in data.get("reference_ms", [])],
                   repeatability=rep, warnings=dict(data.get("warnings") or {}),
                   conditions=dict(data.get("conditions") or {}),
                   protocol=dict(data.get("protocol") or {}),
                   elapsed_s=float(data.get("elapsed_s", 0.0)))


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer, np.floating)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# -- statistics -------------------------------------------------------------------------------
def _kendall(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b (``nan`` for fewer than 2 items or a constant side)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size < 2:
        return float("nan")
    iu = np.triu_indices(x.size, 1)
    dx = np.sign(x[:, None] - x[None, :])[iu]
    dy = np.sign(y[:, None] - y[None, :])[iu]
    nx, ny = np.count_nonzero(dx), np.count_nonzero(dy)
    if nx == 0 or ny == 0:
        return float("nan")
    return float((dx * dy).sum() / math.sqrt(nx * ny))


def _median_ci(values: Sequence[float]) -> tuple[float, float]:
    """95 % order-statistic interval of the median: ``[x_(k), x_(n-k+1)]`` with the largest
    ``k`` whose binomial tail ``P(Bin(n, 1/2) <= k-1)`` is at most 2.5 % (``k >= 1``; with
    fewer than 6 values the interval is the range and covers less than 95 %)."""
    x = np.sort(np.asarray(values, dtype=float))
    n = x.size
    k, tail = 1, 0.5 ** n
    while k < n // 2:
        nxt = tail + math.comb(n, k) * 0.5 ** n
        if nxt > 0.025:
            break
        tail, k = nxt, k + 1
    return float(x[k - 1]), float(x[n - k])


def _rel_halfwidth(ratios: Sequence[float]) -> float:
    if len(ratios) < 2:
        return math.inf
    lo, hi = _median_ci(ratios)
    med = float(np.median(ratios))
    return (hi - lo) / 2 / med if med > 0 else math.inf


def _split_half(samples: Sequence[Sequence[float]]) -> dict[str, float]:
    """Agreement of each row's estimate from its odd and its even samples (in time order)."""
    pairs = [(float(np.median(s[0::2])), float(np.median(s[1::2])))
             for s in samples if len(s) >= 2]
    if not pairs:
        return {"kendall": float("nan"), "rel_error": float("nan"), "noise_floor": float("nan"),
                "n_rows": 0}
    a, b = np.array(pairs).T
    mean = (a + b) / 2
    rel = np.where(mean > 0, np.abs(a - b) / np.where(mean > 0, mean, 1.0), 0.0)
    err = float(np.median(rel))
    # Each half has sqrt(2) times the error of the full estimate and the difference of
    # two halves sqrt(2) times a half's: the full estimate's error is about |a-b|/2.
    return {"kendall": _kendall(a, b), "rel_error": err, "noise_floor": err / 2,
            "n_rows": len(pairs)}


def _drift_model(rows: Sequence[int], values: Sequence[float], window: int,
                 iters: int = 3) -> np.ndarray:
    """Per visit, the machine's log slow-down: ``log v = a[row] + b[visit] + noise``.

    ``b`` at a visit is the median of ``log v - a[row]`` over the ``window`` visits on each
    side of it (itself excluded), alternated with ``a[row] = median(log v - b)`` a few
    times, and centred on 0. Every row's visits, the reference's included, inform the
    drift, so it is estimated from ``2 * window`` readings instead of two.
    """
    lv = np.log(np.asarray(values, dtype=float))
    _, inv = np.unique(np.asarray(rows), return_inverse=True)
    n_groups = int(inv.max()) + 1 if inv.size else 0
    a = np.array([np.median(lv[inv == j]) for j in range(n_groups)])
    b = np.zeros(lv.size)
    for _ in range(iters):
        resid = lv - a[inv]
        for k in range(lv.size):
            near = np.concatenate([resid[max(0, k - window):k], resid[k + 1:k + 1 + window]])
            b[k] = float(np.median(near)) if near.size else 0.0
        b -= float(np.median(b))
        a = np.array([np.median(lv[inv == j] - b[inv == j]) for j in range(n_groups)])
    return b


def _classify(value: Any, max_ms: float) -> tuple[float | None, str | None]:
    lat = _as_latency(value)
    if lat is None:
        return None, "invalid"
    if lat == 0.0:
        return None, "zero"
    if lat > max_ms:
        return None, "absurd"
    return lat, None


# -- the interleaved protocol -------------------------------------------------------------------
class _Interleaved:
    """One batch under the interleaved-reference protocol, on one watchdog worker thread."""

    def __init__(self, timers: Sequence[Timer], reference: Timer | None, pol: BatchPolicy,
                 name: str, progress: bool, worker_init: Callable[[], None] | None,
                 beat: Callable[[], None] | None):
        self.timers, self.reference = list(timers), reference
        self.pol, self.name, self.progress = pol, name, progress
        self.init, self.beat = worker_init, beat
        n = len(self.timers)
        self.counts: Counter[str] = Counter()
        self.n_failed: Counter[int] = Counter()
        self.reason: dict[int, str] = {}
        self.dropped: list[str | None] = [None] * n
        self.raw: list[list[float]] = [[] for _ in range(n)]
        self.ref: list[tuple[float, float]] = []
        self.log_rows: list[int] = []  # every valid visit in time order (_REF included)
        self.log_values: list[float] = []
        self.rng = np.random.default_rng(pol.seed)
        self.worker = _Worker(worker_init)
        self.start = time.perf_counter()
        self.visits = 0
        self.ref_note = "given"

    def _fail(self, row: int, kind: str, why: str) -> None:
        self.counts[kind] += 1
        self.n_failed[row] += 1
        self.reason[row] = why
        if row == _REF:
            if self.n_failed[row] > self.pol.max_failures:
                raise MeasurementError(
                    f"hardware plugin {self.name}: the reference workload failed "
                    f"{self.n_failed[row]} times (max_failures={self.pol.max_failures}), last: "
                    f"{why}; without it no row can be paired")
        elif self.dropped[row] is None and self.n_failed[row] > self.pol.max_failures:
            self.dropped[row] = (f"dropped after {self.n_failed[row]} failed runs "
                                 f"(max_failures={self.pol.max_failures}); last: {why}")

    def visit(self, row: int) -> float | None:
        """Warm-up and timed runs of one row (``_REF``: the reference); their minimum."""
        fn = self.reference if row == _REF else self.timers[row]
        assert fn is not None
        kept: list[float] = []
        for k in range(self.pol.warmup_runs + self.pol.runs_per_visit):
            try:
                value = self.worker.run(fn, self.pol.sample_timeout_s)
            except _Timeout:
                self.worker = _Worker(self.init)  # the hung thread is abandoned
                self._fail(row, "hung", f"a run hung for more than {self.pol.sample_timeout_s} s")
                break
            except Exception as exc:
                self._fail(row, "raised", f"raised {type(exc).__name__}: {exc}")
                break
            if k < self.pol.warmup_runs:
                continue
            lat, kind = _classify(value, self.pol.max_ms)
            if kind is not None:
                self._fail(row, kind, f"{kind} latency {value!r}")
            elif lat is not None:
                kept.append(lat)
        self.visits += 1
        if self.beat is not None:
            self.beat()
        if not kept:
            return None
        if row == _REF:
            self.ref.append((round(time.perf_counter() - self.start, 6), min(kept)))
        self.log_rows.append(row)
        self.log_values.append(min(kept))
        return min(kept)

    def alive(self, rows: Sequence[int]) -> list[int]:
        return [i for i in rows if self.dropped[i] is None]

    def round(self, rows: Sequence[int]) -> None:
        self.visit(_REF)
        since_ref = 0
        for i in self.rng.permutation(np.asarray(rows, dtype=int)):
            i = int(i)
            if self.dropped[i] is not None:
                continue
            v = self.visit(i)
            if v is not None:
                self.raw[i].append(v)
            since_ref += 1
            if since_ref >= self.pol.reference_every:
                self.visit(_REF)
                since_ref = 0
        if since_ref:
            self.visit(_REF)

    def samples(self) -> tuple[list[list[float]], float]:
        """Each row's visits with the drift divided out (ms at the machine's median
        state), in time order, and the reference's level ``L`` (ms)."""
        rows = np.asarray(self.log_rows)
        vals = np.asarray(self.log_values)
        out: list[list[float]] = [[] for _ in self.timers]
        if vals.size == 0 or not np.any(rows == _REF):
            return out, float("nan")
        b = _drift_model(rows.tolist(), vals.tolist(), self.pol.drift_window)
        norm = vals / np.exp(b)
        for r, v in zip(rows.tolist(), norm.tolist(), strict=True):
            if r != _REF:
                out[r].append(v)
        return out, float(np.median(norm[rows == _REF]))

    def choose_reference(self) -> None:
        """A first pass, one visit per row; the reference is the row of median latency."""
        firsts = [(self.visit(i), i) for i in range(len(self.timers))]
        ok = sorted((v, i) for v, i in firsts if v is not None)
        k = ok[(len(ok) - 1) // 2][1] if ok else len(self.timers) // 2
        self.reference = self.timers[k]
        self.log_rows.clear()  # cold first visits, paired with nothing: not samples
        self.log_values.clear()
        self.ref_note = f"workload {k} (median of a first pass)" if ok else \
            f"workload {k} (the middle one; no row gave a valid first reading)"

    def run(self) -> BatchResult:
        pol = self.pol
        before = _conditions.snapshot()
        try:
            self.worker.run(lambda: None, pol.sample_timeout_s)  # surfaces worker_init errors
        except _Timeout:
            raise MeasurementError(f"hardware plugin {self.name}: worker_init did not finish "
                                   f"in {pol.sample_timeout_s} s") from None
        except Exception as exc:
            raise MeasurementError(f"hardware plugin {self.name}: worker_init raised "
                                   f"{type(exc).__name__}: {exc}") from exc
        try:
            if self.reference is None:
                self.choose_reference()
            all_rows = list(range(len(self.timers)))
            n_rounds, stop = 0, "rounds"
            while n_rounds < pol.rounds and self.alive(all_rows):
                self.round(self.alive(all_rows))
                n_rounds += 1
                self._report(n_rounds, len(self.alive(all_rows)))
            while n_rounds < pol.max_rounds and self.alive(all_rows):
                current, _ = self.samples()
                wide = [i for i in self.alive(all_rows)
                        if _rel_halfwidth(current[i]) >= pol.ci_rel]
                if not wide:
                    stop = "converged"
                    break
                elapsed = time.perf_counter() - self.start
                per_visit = elapsed / max(self.visits, 1)
                visits = len(wide) * (1 + 1 / pol.reference_every) + 1
                if elapsed + per_visit * visits > pol.max_seconds:
                    stop = "max_seconds"
                    break
                self.round(wide)
                n_rounds += 1
                self._report(n_rounds, len(wide))
            else:
                if not self.alive(all_rows):
                    stop = "no rows left"
                elif pol.max_rounds > pol.rounds:
                    stop = "max_rounds"
        finally:
            self.worker.close()
        return self._result(before, n_rounds, stop)

    def _report(self, n_rounds: int, n_rows: int) -> None:
        if self.progress:
            print(f"[{self.name}] round {n_rounds} ({n_rows} rows), "
                  f"{time.perf_counter() - self.start:.1f} s", file=sys.stderr, flush=True)

    def _result(self, before: dict[str, Any], n_rounds: int, stop: str) -> BatchResult:
        if not self.ref:
            raise MeasurementError(f"hardware plugin {self.name}: no valid reading of the "
                                   f"reference workload ({self.reason.get(_REF)})")
        samples, level = self.samples()
        ratios_all = [[v / level for v in s] for s in samples]
        ms: list[Measurement | None] = []
        failures = list(self.dropped)
        for i, ratios in enumerate(ratios_all):
            if failures[i] is None and not ratios:
                failures[i] = ("no paired sample: " + self.reason[i]) if i in self.reason \
                    else "no paired sample"
            if failures[i] is not None:
                ms.append(None)
                continue
            lo, hi = _median_ci(ratios)
            ms.append(Measurement(samples_ms=tuple(r * level for r in ratios), meta={
                "ci_low_ms": lo * level, "ci_high_ms": hi * level,
                "ci_rel": _rel_halfwidth(ratios) if len(ratios) >= 2 else None,
                "n_rounds": len(ratios), "raw_ms": list(self.raw[i]), "ratios": list(ratios),
                "reference_level_ms": level, "n_failures": self.n_failed[i],
                "protocol": "interleaved-reference"}))
        after = _conditions.snapshot()
        return BatchResult(
            measurements=ms, failures=failures, reference_ms=list(self.ref),
            repeatability=_split_half([r for r, f in zip(ratios_all, failures, strict=True)
                                       if f is None]),
            warnings={k: self.counts[k] for k in _KINDS},
            conditions={"before": before, "after": after,
                        **_conditions.during(before, after)},
            protocol={**self.pol.to_dict(), "name": "interleaved-reference",
                      "n_rounds": n_rounds, "stop_reason": stop, "reference": self.ref_note,
                      "reference_level_ms": level, "visit_value": "min",
                      "estimator": "drift model (rolling median of neighbouring visits)",
                      "reference_failures": self.n_failed[_REF]},
            elapsed_s=round(time.perf_counter() - self.start, 6))


def measure_interleaved(timers: Sequence[Timer], reference: Timer | None = None,
                        policy: BatchPolicy | None = None, *, name: str = "plugin",
                        progress: bool = False,
                        worker_init: Callable[[], None] | None = None) -> BatchResult:
    """Measure prepared workloads together, interleaved with a reference (module docstring).

    Args:
        timers: one :data:`Timer` per workload.
        reference: the reference workload's timer; ``None``: a first pass visits every row
            once and the row of median latency becomes the reference.
        policy: the :class:`BatchPolicy` (its defaults if ``None``).
        name: the plugin's name, for warnings and errors.
        progress: print one line per round to stderr.
        worker_init: called first on the thread that runs the timers (thread counts,
            device selection); with ``isolation="process"`` that thread is in the worker.

    Returns:
        A :class:`BatchResult`; each kept row's ``Measurement`` has ``samples_ms`` = its
        normalised per-round values and ``meta`` with ``ci_low_ms``, ``ci_high_ms``,
        ``n_rounds``, ``raw_ms``, ``ratios``, ``reference_level_ms`` and ``protocol``.

    Raises:
        ValueError: no timers.
        MeasurementError: ``worker_init`` failed, the reference failed more than
            ``max_failures`` times, or the isolated worker process died or stopped
            responding (it is then killed; rows finished so far are lost).
    """
    pol = policy or BatchPolicy()
    timers = list(timers)
    if not timers:
        raise ValueError("measure_interleaved needs at least one timer, got none")

    def job(beat: Callable[[], None] | None) -> BatchResult:
        return _Interleaved(timers, reference, pol, name, progress, worker_init, beat).run()

    visit_s = pol.sample_timeout_s * (pol.warmup_runs + pol.runs_per_visit)
    result = _isolated(job, pol, name, visit_s) if pol.isolation == "process" else job(None)
    _summarise(result, name)
    return result


def _summarise(result: BatchResult, name: str) -> None:
    """One warning for all the samples and rows a batch lost."""
    lost = {k: v for k, v in result.warnings.items() if v}
    dropped = [(i, f) for i, f in enumerate(result.failures) if f]
    if not lost and not dropped:
        return
    parts = [f"{sum(lost.values())} samples dropped ("
             + ", ".join(f"{k}: {v}" for k, v in lost.items()) + ")"] if lost else []
    if dropped:
        parts.append(f"{len(dropped)} of {len(result.failures)} rows dropped (first: row "
                     f"{dropped[0][0]}: {dropped[0][1]})")
    warnings.warn(f"hardware plugin {name}: " + "; ".join(parts), MeasurementWarning,
                  stacklevel=3)


# -- process isolation -----------------------------------------------------------------------
def _isolated(job: Callable[[Callable[[], None] | None], BatchResult], pol: BatchPolicy,
              name: str, step_s: float) -> BatchResult:
    """Run ``job`` in a forked child pinned to one core; results come back as JSON data.

    The child reports after every step (a visit, or one ``measure()``); one that is silent
    for ``step_s`` plus a margin is killed (SIGKILL) and the batch fails.
    """
    if not hasattr(os, "fork") or "fork" not in mp.get_all_start_methods():
        raise MeasurementError(f"hardware plugin {name}: isolation='process' needs fork "
                               "(Linux); use isolation='thread'")
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    getter = getattr(os, "sched_getaffinity", None)
    cores = sorted(getter(0)) if getter is not None else []
    core = cores[-1] if cores else None

    def child() -> None:
        recv.close()
        try:
            if core is not None:
                os.sched_setaffinity(0, {core})
            res = job(lambda: send.send(("beat", None)))
            res.protocol.update(isolation_core=core)
            send.send(("done", res.to_dict()))
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            send.send(("error", (type(exc).__name__, str(exc))))
        finally:
            send.close()

    proc = ctx.Process(target=child, name=f"switchnas-measure-{name}", daemon=True)
    proc.start()
    send.close()
    silent_s = step_s + 3.0
    try:
        while True:
            if not recv.poll(silent_s):
                raise MeasurementError(
                    f"hardware plugin {name}: the measuring worker process gave no sign of "
                    f"life for {silent_s:.1f} s (sample_timeout_s={pol.sample_timeout_s}); "
                    "killed it, the batch is lost")
            try:
                kind, payload = recv.recv()
            except EOFError:
                proc.join(timeout=5)
                raise MeasurementError(f"hardware plugin {name}: the measuring worker process "
                                       f"died (exit code {proc.exitcode})") from None
            if kind == "done":
                return BatchResult.from_dict(payload)
            if kind == "error":
                raise MeasurementError(f"hardware plugin {name}: the measuring worker process "
                                       f"failed: {payload[0]}: {payload[1]}")
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(timeout=5)
        recv.close()


# -- plugins ---------------------------------------------------------------------------------
def measure_workloads(prepare: Callable[[Any, Any], Timer],
                      workloads: Sequence[tuple[Any, Any]], *,
                      reference: tuple[Any, Any] | None = None,
                      policy: BatchPolicy | None = None, name: str = "plugin",
                      progress: bool = False,
                      worker_init: Callable[[], None] | None = None) -> BatchResult:
    """Prepare every workload with ``prepare`` and measure them with
    :func:`measure_interleaved`: the body of a timing plugin's ``measure_batch``.

    A workload whose preparation raises (an export that fails) is dropped with its reason
    (counted as ``raised``); so is the given reference, which is then replaced by the first
    pass's choice. Modules found in training mode are put back in it afterwards.

    Args:
        prepare: ``prepare(module, example_input) -> Timer`` (the plugin's ``prepare``).
        workloads: ``(module, example_input)`` pairs.
        reference: the reference workload; ``None``: chosen by a first pass (see
            :func:`measure_interleaved`).
        policy, name, progress, worker_init: as for :func:`measure_interleaved`.

    Returns:
        The :class:`BatchResult`, one row per workload in input order.

    Raises:
        MeasurementError: no workload could be prepared, or as :func:`measure_interleaved`.
    """
    pol = policy or BatchPolicy()
    training = [m for m, _ in [*workloads, *([reference] if reference else [])]
                if getattr(m, "training", False) is True and callable(getattr(m, "train", None))]
    try:
        timers: list[Timer] = []
        kept: list[int] = []
        prep_fail: dict[int, str] = {}
        for i, (module, x) in enumerate(workloads):
            try:
                timers.append(prepare(module, x))
                kept.append(i)
            except Exception as exc:
                prep_fail[i] = f"preparation failed: {type(exc).__name__}: {exc}"
        if not timers:
            first = next(iter(prep_fail.values()), "no workloads")
            raise MeasurementError(f"hardware plugin {name}: no workload could be prepared "
                                   f"({first})")
        ref_timer: Timer | None = None
        ref_note = None
        if reference is not None:
            try:
                ref_timer = prepare(*reference)
            except Exception as exc:
                ref_note = (f"the given reference failed to prepare ({type(exc).__name__}: "
                            f"{exc}); ")
        def run() -> BatchResult:
            return measure_interleaved(timers, ref_timer, pol, name=name, progress=progress,
                                       worker_init=worker_init)

        # With rows lost in preparation, the inner summary would miss them: issue one below.
        inner = _quiet(run) if prep_fail else run()
    finally:
        for m in training:
            m.train()
    if not prep_fail and ref_note is None:
        return inner
    n = len(workloads)
    ms: list[Measurement | None] = [None] * n
    fails: list[str | None] = [prep_fail.get(i) for i in range(n)]
    for j, i in enumerate(kept):
        ms[i], fails[i] = inner.measurements[j], inner.failures[j]
    inner.measurements, inner.failures = ms, fails
    inner.warnings["raised"] = inner.warnings.get("raised", 0) + len(prep_fail)
    if ref_note:
        inner.protocol["reference"] = ref_note + str(inner.protocol.get("reference"))
    if prep_fail:
        _summarise(inner, name)
    return inner


def _quiet(fn: Callable[[], BatchResult]) -> BatchResult:
    """``fn()`` without its summary warning (the caller issues a fuller one)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MeasurementWarning)
        return fn()


def _measurement_problem(m: Any, max_ms: float) -> tuple[str, str] | None:
    if not isinstance(m, Measurement):
        return "invalid", f"measure() returned {type(m).__name__}, not a Measurement"
    _, kind = _classify(m.median_ms, max_ms)
    if kind is not None:
        return kind, f"{kind} latency {m.median_ms!r} ms"
    e = m.energy_mj
    if e is not None and (_as_latency(e) is None):
        return "invalid", f"invalid energy {e!r} mJ"
    return None


def _loop(plugin: Any, workloads: Sequence[tuple[Any, Any]], pol: BatchPolicy, kind: str,
          progress: bool, beat: Callable[[], None] | None) -> BatchResult:
    """One ``measure()`` per workload, each under the watchdog; a failure drops its row."""
    name = str(getattr(plugin, "name", type(plugin).__name__))
    timeout = pol.sample_timeout_s * 10
    before = _conditions.snapshot()
    start = time.perf_counter()
    worker = _Worker(None)
    counts: Counter[str] = Counter()
    ms: list[Measurement | None] = []
    fails: list[str | None] = []
    try:
        for i, (module, x) in enumerate(workloads):
            def call(module: Any = module, x: Any = x) -> Any:
                return plugin.measure(module, x)
            try:
                m = worker.run(call, timeout)
                problem = _measurement_problem(m, pol.max_ms)
            except _Timeout:
                worker = _Worker(None)
                problem = ("hung", f"measure() hung for more than {timeout} s")
            except Exception as exc:
                problem = ("raised", f"measure() raised {type(exc).__name__}: {exc}")
            if problem is None:
                ms.append(m)
                fails.append(None)
            else:
                counts[problem[0]] += 1
                ms.append(None)
                fails.append(problem[1])
            if beat is not None:
                beat()
            if progress:
                print(f"[{name}] {i + 1}/{len(workloads)} measured, "
                      f"{time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    finally:
        worker.close()
    after = _conditions.snapshot()
    if kind == "deterministic":
        rep = {"kendall": 1.0, "rel_error": 0.0, "noise_floor": 0.0,
               "n_rows": sum(m is not None for m in ms)}
    else:
        rep = _split_half([list(m.samples_ms) for m in ms if m is not None])
    return BatchResult(
        measurements=ms, failures=fails, reference_ms=[], repeatability=rep,
        warnings={k: counts[k] for k in _KINDS},
        conditions={"before": before, "after": after, **_conditions.during(before, after)},
        protocol={**pol.to_dict(), "name": kind, "measure_timeout_s": timeout,
                  "repeatability_basis": "none: deterministic" if kind == "deterministic"
                  else "odd vs even samples within each measure() (blind to slow drift)"},
        elapsed_s=round(time.perf_counter() - start, 6))


def measure_batch(plugin: Any, workloads: Sequence[tuple[Any, Any]], *,
                  reference: tuple[Any, Any] | None = None, policy: BatchPolicy | None = None,
                  progress: bool = False) -> BatchResult:
    """Measure ``(module, example_input)`` workloads on ``plugin`` as one batch.

    Dispatch:

    * the plugin has a ``measure_batch`` method: it is called with the same arguments (the
      built-in timing plugins run :func:`measure_interleaved`);
    * the plugin says ``deterministic = True`` (``lut``, ``flops``): one ``measure()`` per
      workload, protocol ``"deterministic"``, no reference;
    * otherwise (a plugin with only ``measure()``): one ``measure()`` per workload,
      protocol ``"independent"``.

    In the last two cases each ``measure()`` runs on a watchdog thread and gets
    ``10 * policy.sample_timeout_s`` (it makes many runs); one that raises, hangs or
    returns an invalid, zero or absurd latency (or invalid energy) drops its row with the
    reason, counted in ``warnings``; the batch goes on. ``isolation="process"`` runs the
    loop in a forked worker too.

    Args:
        plugin: a hardware plugin.
        workloads: ``(module, example_input)`` pairs.
        reference: the reference workload of the interleaved protocol; ``None``: the row
            of median latency in a first pass over the batch.
        policy: the :class:`BatchPolicy` (defaults if ``None``).
        progress: print progress to stderr.

    Returns:
        A :class:`BatchResult` with one row per workload, in input order.
    """
    own = getattr(plugin, "measure_batch", None)
    if callable(own):
        result: BatchResult = own(workloads, reference=reference, policy=policy,
                                  progress=progress)
        return result
    pol = policy or BatchPolicy()
    kind = "deterministic" if getattr(plugin, "deterministic", False) else "independent"
    name = str(getattr(plugin, "name", type(plugin).__name__))
    workloads = list(workloads)

    def job(beat: Callable[[], None] | None) -> BatchResult:
        return _loop(plugin, workloads, pol, kind, progress, beat)

    result = _isolated(job, pol, name, pol.sample_timeout_s * 10) \
        if pol.isolation == "process" else job(None)
    _summarise(result, name)
    return result
