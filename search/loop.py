"""The search loop whose budget is real evaluations.

Each round fits surrogates (:class:`~switchnas.search.surrogate.ObjectiveSurrogates`) on
everything measured so far, runs the inner search (a
:class:`~switchnas.search.strategies.SearchStrategy`) on the surrogates' means, and chooses
the next batch from the candidates it found: greedily, the candidate whose optimistic
objectives (mean minus ``kappa`` standard deviations of the bootstrap ensemble) add the
most hypervolume to the measured front, each pick then counted at its mean so that the
batch spreads along the front instead of piling up in one gap. A sub-network is never
measured twice. The loop stops at the budget, or when the optimistic front has offered
less than ``tol`` of relative hypervolume for ``patience`` rounds.

With a :class:`~switchnas.search.study.MeasurementStudy`, every evaluation is a claimed
trial of the persistent study: the budget counts everything the study holds, so the same
call after a crash (``kill -9``) resumes where it stopped, and several workers on one study
divide the budget without measuring a sub-network twice.

With ``constraints`` (objectives -> violation, e.g.
:func:`~switchnas.search.strategies.upper_bounds`), the inner search ranks candidates by
constraint domination, a batch holds only sub-networks whose predicted objectives meet the
constraints (while any are predicted to), and measured sub-networks that violate them are
kept but never on :meth:`LoopResult.front`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from switchnas.plugins.progress import progress_bar
from switchnas.supernets.base import Config
from switchnas.supernets.space import ChoiceSpace

from .pareto import hypervolume, nondominated_mask, nondominated_ranks
from .strategies import Constraints, EvolutionSearch, SearchStrategy
from .study import MeasurementStudy
from .surrogate import CANDIDATES, ObjectiveSurrogates

__all__ = ["LoopResult", "hypervolume_improvement", "run_loop"]

log = logging.getLogger(__name__)

#: Real evaluations: configs -> objectives ``(n, m)``, all minimised, or
#: ``(objectives, extras)`` with one JSON-serialisable dict of extras per config.
Evaluate = Callable[[list[Config]], Any]
#: Features of genomes ``(n, P)`` for the surrogates.
Encode = Callable[[np.ndarray], np.ndarray]

_POOL = 3000  # most inner-search candidates considered for a batch
_MC_SAMPLES = 20000  # Monte Carlo points for hypervolume gains with 3+ objectives


@dataclass
class LoopResult:
    """What a loop measured.

    Attributes:
        configs: every measured config, in order (with a study: everything the study
            holds, from every run and worker, in trial order).
        objectives: ``(n, m)`` their real objectives, all minimised.
        genomes: ``(n, P)`` their genomes.
        attrs: per row, the extras ``evaluate`` returned for it (with a study: the
            trial's user attrs, plus ``trial_number`` and ``worker``).
        evaluations: real evaluations this call made.
        rounds: one dict per round: ``round``, ``measured`` (in all), ``new``, ``models``
            (surrogate chosen per objective), ``gain`` (relative hypervolume the
            optimistic front offered), ``seconds``.
        stopped: why the loop ended: ``"budget"``, ``"converged"``, ``"callback"`` or
            ``"exhausted"`` (no sub-network left to measure).
        violation: ``(n,)`` each row's measured constraint violation (0: feasible);
            ``None`` when the loop ran without constraints (every row is feasible).
    """

    configs: list[Config]
    objectives: np.ndarray
    genomes: np.ndarray
    attrs: list[dict[str, Any]]
    evaluations: int
    rounds: list[dict[str, Any]] = field(default_factory=list)
    stopped: str = "budget"
    violation: np.ndarray | None = None

    @property
    def feasible(self) -> np.ndarray:
        """Boolean mask of the rows that meet every constraint."""
        if self.violation is None:
            return np.ones(len(self.objectives), bool)
        return np.asarray(self.violation == 0)

    def front(self) -> np.ndarray:
        """Indices of the feasible non-dominated measured rows, sorted by objective 0."""
        idx = np.flatnonzero(self.feasible)
        if not len(idx):
            return np.zeros(0, dtype=np.int64)
        idx = idx[nondominated_mask(self.objectives[idx])]
        return idx[np.argsort(self.objectives[idx, 0], kind="stable")]


# -- hypervolume gains --------------------------------------------------------------------
def hypervolume_improvement(front: np.ndarray, candidates: np.ndarray, reference: np.ndarray,
                            *, rng: np.random.Generator | None = None) -> np.ndarray:
    """How much hypervolume each candidate alone would add to ``front``.

    Args:
        front: ``(k, m)`` objectives already held, all minimised.
        candidates: ``(n, m)`` objectives of the candidates.
        reference: ``(m,)`` the reference point.
        rng: for ``m >= 3`` (a Monte Carlo estimate); exact for ``m <= 2``.

    Returns:
        ``(n,)`` gains, ``>= 0``.
    """
    ref = np.asarray(reference, float)
    F = np.asarray(front, float).reshape(-1, len(ref))
    C = np.asarray(candidates, float).reshape(-1, len(ref))
    F = F[np.all(F - ref < 0, axis=1)]
    m = len(ref)
    if m == 1:
        best = F[:, 0].min() if len(F) else ref[0]
        return np.maximum(0.0, np.minimum(best, ref[0]) - C[:, 0])
    if m == 2:
        if len(F):
            F = np.unique(F[nondominated_mask(F)], axis=0)  # f0 ascending, f1 descending
        starts = np.r_[-np.inf, F[:, 0]]
        ends = np.r_[F[:, 0], ref[0]]
        levels = np.r_[ref[1], F[:, 1]]
        width = np.clip(ends[None, :] - np.maximum(starts[None, :], C[:, :1]), 0.0, None)
        height = np.clip(levels[None, :] - C[:, 1:2], 0.0, None)
        return np.asarray((width * height).sum(axis=1))
    rng = rng or np.random.default_rng(0)
    lo = np.minimum(C.min(axis=0), F.min(axis=0) if len(F) else ref)
    pts = lo + rng.random((_MC_SAMPLES, m)) * (ref - lo)
    free = np.ones(len(pts), bool)
    for f in F:
        free &= ~np.all(pts >= f, axis=1)
    pts = pts[free]
    box = float(np.prod(ref - lo))
    gains = np.empty(len(C))
    for s in range(0, len(C), 256):
        dom = np.all(pts[None, :, :] >= C[s:s + 256, None, :], axis=2)
        gains[s:s + 256] = dom.sum(axis=1) * box / _MC_SAMPLES
    return gains


class _GreedyGains:
    """Each candidate's hypervolume gain over a growing set: exact for two objectives;
    for more, a Monte Carlo estimate whose candidate-sample dominance is computed once."""

    def __init__(self, held: np.ndarray, cands: np.ndarray, ref: np.ndarray,
                 rng: np.random.Generator):
        self.cands, self.ref, self.rng = cands, ref, rng
        self.exact = len(ref) <= 2
        self.base = 1.0
        if not self.exact:
            lo = np.minimum(cands.min(axis=0), held.min(axis=0))
            pts = lo + rng.random((_MC_SAMPLES // 4, len(ref))) * (ref - lo)
            self.unit = float(np.prod(ref - lo)) / len(pts)
            self.free = ~np.any(np.all(pts[None, :, :] >= held[:, None, :], axis=2), axis=0)
            self.dom = np.concatenate([np.all(pts[None, :, :] >= cands[s:s + 256, None, :],
                                              axis=2) for s in range(0, len(cands), 256)])
            self.pts = pts
            self.base = max(float((~self.free).sum()) * self.unit, 1e-12)

    def __call__(self, held: np.ndarray) -> np.ndarray:
        if self.exact:
            return hypervolume_improvement(held, self.cands, self.ref, rng=self.rng)
        return (self.dom & self.free[None, :]).sum(axis=1) * self.unit

    def add(self, point: np.ndarray) -> None:
        if not self.exact:
            self.free &= ~np.all(self.pts >= point, axis=1)


def _choose(measured: np.ndarray, pool_mean: np.ndarray, pool_std: np.ndarray, k: int, *,
            kappa: float, rng: np.random.Generator) -> tuple[list[int], float]:
    """Greedy batch: the largest optimistic hypervolume gain, each pick then counted at
    its mean (so the next pick fills another gap); then the pool's predicted front in
    order of distance from what is held. Returns picks and the first pick's relative gain."""
    lo, hi = measured.min(axis=0), measured.max(axis=0)
    scale = np.where(hi > lo, hi - lo, 1.0)
    held = (measured - lo) / scale
    mean = (pool_mean - lo) / scale
    opt = (pool_mean - kappa * pool_std - lo) / scale
    m = measured.shape[1]
    ref = np.full(m, 1.1)
    gain_of = _GreedyGains(held, opt, ref, rng)
    base = hypervolume(held, ref) if m == 2 else gain_of.base
    picks: list[int] = []
    first_gain = 0.0
    free = np.ones(len(mean), bool)
    while len(picks) < k and free.any():
        gains = gain_of(held)
        gains[~free] = -1.0
        i = int(np.argmax(gains))
        if gains[i] <= 0:
            break
        if not picks:
            first_gain = float(gains[i]) / max(base, 1e-12)
        picks.append(i)
        free[i] = False
        held = np.vstack([held, mean[i]])
        gain_of.add(mean[i])
    if len(picks) < k and free.any():
        # spread the rest over the predicted front, farthest from what is held first
        idx = np.flatnonzero(free)
        idx = idx[nondominated_ranks(mean[idx]) == 0]
        while len(picks) < k and len(idx):
            d = np.min(np.linalg.norm(mean[idx, None, :] - held[None, :, :], axis=2), axis=1)
            j = int(np.argmax(d))
            picks.append(int(idx[j]))
            held = np.vstack([held, mean[idx[j]]])
            idx = np.delete(idx, j)
    return picks, first_gain


# -- where measurements go ----------------------------------------------------------------
class _Ledger:
    """Measurements in memory (no study): dedupe by canonical genome."""

    def __init__(self, space: ChoiceSpace):
        self.space = space
        self.genomes: list[np.ndarray] = []
        self.objectives: list[np.ndarray] = []
        self.attrs: list[dict[str, Any]] = []
        self.keys: set[bytes] = set()

    def sync(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        P = self.space.genome_length
        g = np.concatenate(self.genomes) if self.genomes else np.zeros((0, P), np.int64)
        o = np.concatenate(self.objectives) if self.objectives else np.zeros((0, 0))
        return g, o, np.zeros((0, P), np.int64)

    def claim(self, genomes: np.ndarray, limit: int, budget: int
              ) -> tuple[np.ndarray, list[Any]]:
        out: list[int] = []
        for i, k in enumerate(_keys(genomes)):
            if len(out) >= limit:
                break
            if k not in self.keys:
                self.keys.add(k)
                out.append(i)
        return genomes[out], [None] * len(out)

    def complete(self, genomes: np.ndarray, objectives: np.ndarray, handles: list[Any],
                 extras: list[dict[str, Any]]) -> None:
        self.genomes.append(genomes)
        self.objectives.append(objectives)
        self.attrs.extend(extras)

    def fail(self, handles: list[Any], reason: str) -> None:
        pass

    def configs(self, genomes: np.ndarray) -> list[Config]:
        return self.space.from_genomes(genomes)


class _StudyLedger(_Ledger):
    """Measurements in a persistent, shared study."""

    def __init__(self, space: ChoiceSpace, study: MeasurementStudy):
        super().__init__(space)
        self.study = study
        self.configs_all: list[Config] = []

    def sync(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self.study.fail_stale()
        configs, obj, attrs = self.study.completed()
        self.configs_all, self.attrs = configs, attrs
        g = self.space.canonical_genomes(self.space.to_genomes(configs)) if configs else \
            np.zeros((0, self.space.genome_length), np.int64)
        running = self.study.running()
        pend = self.space.canonical_genomes(self.space.to_genomes(running)) if running else \
            np.zeros((0, self.space.genome_length), np.int64)
        return g, obj, pend

    def claim(self, genomes: np.ndarray, limit: int, budget: int
              ) -> tuple[np.ndarray, list[Any]]:
        claims = self.study.claim(self.space.from_genomes(genomes), limit=limit,
                                  budget=budget)
        if not claims:
            return genomes[:0], []
        return self.space.to_genomes([c.config for c in claims]), list(claims)

    def complete(self, genomes: np.ndarray, objectives: np.ndarray, handles: list[Any],
                 extras: list[dict[str, Any]]) -> None:
        for c, y, x in zip(handles, objectives, extras, strict=True):
            self.study.complete(c, [float(v) for v in y], **x)

    def fail(self, handles: list[Any], reason: str) -> None:
        for c in handles:
            self.study.fail(c, reason)


def _keys(genomes: np.ndarray) -> list[bytes]:
    g = np.ascontiguousarray(genomes, dtype=np.int64)
    return [r.tobytes() for r in g]


# -- the loop -----------------------------------------------------------------------------
def run_loop(space: ChoiceSpace, evaluate: Evaluate, *, budget: int, batch_size: int,
             initial: int | Sequence[Mapping[str, Any]] | None = None, encode: Encode,
             strategy: SearchStrategy | None = None, study: MeasurementStudy | None = None,
             seed: int = 0, callback: Callable[[list[Config], np.ndarray], bool | None]
             | None = None, progress: bool = False, kappa: float = 0.5, tol: float = 1e-4,
             patience: int = 5, models: Sequence[str] = CANDIDATES,
             constraints: Constraints | None = None) -> LoopResult:
    """Measure sub-networks in rounds, each chosen by surrogates fitted on all measured.

    Args:
        space: the search space.
        evaluate: real evaluations: configs -> objectives ``(n, m)``, all minimised (pass
            ``-accuracy``), or ``(objectives, extras)`` with one dict of JSON-serialisable
            extras per config (kept in ``LoopResult.attrs`` and as the trials' user attrs);
            a row with a non-finite value counts as a failed measurement (the study's
            trial fails; this call does not retry it).
        budget: real evaluations in all (with a study: everything the study holds).
        batch_size: evaluations per round (per call of ``evaluate``).
        initial: the first, random round: a number of sub-networks (default
            ``max(2 * batch_size, 16)``; the largest and smallest come first), or the
            configs to measure first.
        encode: genomes ``(n, P)`` -> surrogate features (e.g. ``space.one_hot_genomes``
            or ``space.encode_genomes``).
        strategy: the inner search on the surrogates (default :class:`EvolutionSearch`).
        study: a persistent study to claim and record every evaluation in (directions
            all ``"minimize"``); ``None``: in memory.
        seed: seeds the initial round, the surrogates' resamples and the inner search.
        callback: called after every measured batch with its configs and objectives;
            ``True`` stops the loop.
        progress: show a progress bar of real evaluations.
        kappa: exploration: candidates are judged at ``mean - kappa * std``.
        tol: the loop has converged when, for ``patience`` rounds in a row, the best
            candidate's optimistic gain is below ``tol`` of the measured hypervolume.
        patience: see ``tol``.
        models: the surrogates each objective's model is chosen from by cross-validation
            (:data:`~switchnas.search.surrogate.CANDIDATES`; ``("ridge",)`` is the fastest,
            right when the objectives are additive over the encoding).
        constraints: objectives ``(n, m)`` -> violation ``(n,)`` (``>= 0``, 0 = feasible),
            e.g. ``upper_bounds([12.0, None, 5.0])``; ``None``: everything is feasible.
            The inner search ranks by constraint domination, a batch holds only
            sub-networks whose predicted objectives are feasible (while the search finds
            any; the rest of a batch, and the random fallback, in order of predicted
            violation), hypervolume gains count the feasible measured rows only, and
            :meth:`LoopResult.front` leaves out measured rows that violate.

    Returns:
        Every measurement and the rounds' history.

    Raises:
        ValueError: a bad budget, batch size or option, a study that maximises, or an
            ``evaluate`` that returns the wrong shape (its batch is failed first).
    """
    for name, v, least in (("budget", budget, 1), ("batch_size", batch_size, 1),
                           ("patience", patience, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least:
            raise ValueError(f"{name}={v!r}: must be an integer >= {least}")
    if not (kappa >= 0 and tol >= 0):
        raise ValueError(f"kappa={kappa!r}, tol={tol!r}: both must be >= 0")
    bad = [x for x in models if x not in CANDIDATES]
    if bad or not models or isinstance(models, str):
        raise ValueError(f"models={models!r}: choose one or more of {list(CANDIDATES)}")
    m_fixed: int | None = None
    if study is not None:
        if any(d != "minimize" for d in study.directions):
            raise ValueError(f"run_loop minimises every objective; study {study.name!r} has "
                             f"directions {study.directions} (record -accuracy, not accuracy)")
        m_fixed = len(study.directions)
    ledger: _Ledger = _StudyLedger(space, study) if study is not None else _Ledger(space)
    if isinstance(initial, (int, np.integer)) or initial is None:
        n_init = max(2 * batch_size, 16) if initial is None else int(initial)
        first = space.to_genomes([space.largest(), space.smallest()])
    else:
        first = space.canonical_genomes(space.to_genomes([space.validate(c) for c in initial]))
        n_init = len(first)
    n_init = min(n_init, budget)
    inner = strategy if strategy is not None else EvolutionSearch()

    rounds: list[dict[str, Any]] = []
    failed: set[bytes] = set()
    made, fails_in_row, quiet = 0, 0, 0
    chosen: list[str] | None = None
    selected_at = 0
    stopped = "budget"
    bar = progress_bar(total=budget, desc="loop", enabled=progress)
    try:
        while True:
            t0 = time.perf_counter()
            G, Y, pending = ledger.sync()
            bar.n = min(len(Y), budget)
            bar.refresh()
            room = budget - len(Y) - len(pending)
            if len(Y) >= budget:
                break
            if room <= 0:  # the rest of the budget is held by other workers: wait for them
                time.sleep(min(2.0, study.heartbeat_s if study is not None else 1.0))
                continue
            k = min(batch_size, room)
            r = len(rounds)
            rng = np.random.default_rng([seed, len(Y), len(pending), r])
            info: dict[str, Any] = {"round": r}
            skip = set(failed) | set(_keys(G)) | set(_keys(pending))
            if len(Y) < n_init or len(Y) < 4:
                order = np.concatenate([first, space.sample_genomes(rng, 4 * max(k, n_init))])
                want = min(k, max(n_init - len(Y), 1))
            else:
                refit = chosen is None or len(Y) >= 1.5 * selected_at
                sur = ObjectiveSurrogates(candidates=tuple(models), seed=seed + r,
                                          chosen=None if refit else chosen)
                # small fits and batched predictions run fastest on one thread; a
                # contended OpenMP pool is many times slower
                with threadpool_limits(limits=1):
                    sur.fit(encode(G), Y)
                    order, gain = _propose(space, sur, encode, inner, G, Y, pending, skip, k,
                                           kappa=kappa, seed=seed + r, rng=rng,
                                           constraints=constraints)
                    extra = space.sample_genomes(rng, 4 * k)
                    if constraints is not None and len(extra):
                        # random fallback, predicted-feasible first
                        viol = _violation(constraints, sur.predict(encode(extra)))
                        extra = extra[np.argsort(viol, kind="stable")]
                if refit:
                    chosen, selected_at = sur.chosen_, len(Y)
                info["models"] = list(sur.chosen_)
                info["gain"] = gain
                quiet = quiet + 1 if gain < tol else 0
                if quiet >= patience:
                    stopped = "converged"
                    break
                # fall back to random sub-networks when the proposals are spent
                order = np.concatenate([order, extra])
                want = k
            order = order[[key not in skip for key in _keys(order)]]
            got, handles = ledger.claim(order, want, budget)
            if not len(got):
                # other workers may hold or have just measured what was left
                _, Y2, pending2 = ledger.sync()
                if len(pending2) or len(Y2) != len(Y):
                    time.sleep(1.0)
                    continue
                stopped = "exhausted"
                break
            info["seconds_choose"] = time.perf_counter() - t0
            configs = ledger.configs(got)
            t1 = time.perf_counter()
            m = m_fixed or (Y.shape[1] if Y.size else None)
            Yn, ok = _measure(ledger, evaluate, configs, got, handles, m, failed)
            fails_in_row = fails_in_row + 1 if not ok.any() else 0
            if fails_in_row >= 3:
                raise RuntimeError("evaluate returned non-finite objectives for every "
                                   "sub-network of three batches in a row")
            made += int(ok.sum())
            info.update(measured=len(Y) + int(ok.sum()), new=int(ok.sum()),
                        seconds_evaluate=time.perf_counter() - t1)
            rounds.append(info)
            if callback is not None and callback([c for c, o in zip(configs, ok, strict=True)
                                                  if o], Yn[ok]):
                stopped = "callback"
                break
    finally:
        bar.close()
    G, Y, _ = ledger.sync()
    configs = (ledger.configs_all if isinstance(ledger, _StudyLedger)
               else space.from_genomes(G))
    violation = None
    if constraints is not None:
        violation = _violation(constraints, Y) if len(Y) else np.zeros(0)
    return LoopResult(configs=configs, objectives=Y, genomes=G, attrs=list(ledger.attrs),
                      evaluations=made, rounds=rounds, stopped=stopped, violation=violation)


def _violation(constraints: Constraints, objectives: np.ndarray) -> np.ndarray:
    """``constraints(objectives)`` checked: one finite violation ``>= 0`` per row."""
    v = np.asarray(constraints(objectives), dtype=np.float64).reshape(-1)
    if len(v) != len(objectives) or not np.all(np.isfinite(v)) or np.any(v < 0):
        raise ValueError(f"constraints must return one finite violation >= 0 per row "
                         f"({len(objectives)} rows); got shape {v.shape}")
    return v


def _measure(ledger: _Ledger, evaluate: Evaluate, configs: list[Config], genomes: np.ndarray,
             handles: list[Any], m: int | None, failed: set[bytes]
             ) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate a claimed batch and record it: objectives and the mask of rows that
    completed (the others' claims are failed and their keys added to ``failed``)."""
    try:
        out = evaluate(configs)
    except BaseException as exc:
        ledger.fail(handles, f"evaluate raised {type(exc).__name__}: {exc}")
        raise
    Yn, extras = _unpack(out, len(configs), ledger, handles)
    if Yn.ndim == 1 and m in (None, 1):
        Yn = Yn[:, None]
    if Yn.ndim != 2 or len(Yn) != len(configs) or (m is not None and Yn.shape[1] != m):
        ledger.fail(handles, f"evaluate returned shape {Yn.shape}")
        raise ValueError(f"evaluate returned objectives of shape {Yn.shape} for "
                         f"{len(configs)} configs; expected ({len(configs)}, {m or 'm'})")
    ok: np.ndarray = np.asarray(np.isfinite(Yn).all(axis=1))
    if (~ok).any():
        ledger.fail([h for h, o in zip(handles, ok, strict=True) if not o],
                    "evaluate returned a non-finite objective")
        failed.update(k for k, o in zip(_keys(genomes), ok, strict=True) if not o)
        log.warning("loop: %d of %d evaluations returned non-finite objectives; they are not "
                    "retried in this run", int((~ok).sum()), len(ok))
    ledger.complete(genomes[ok], Yn[ok], [h for h, o in zip(handles, ok, strict=True) if o],
                    [x for x, o in zip(extras, ok, strict=True) if o])
    return Yn, ok


def _unpack(out: Any, n: int, ledger: _Ledger, handles: list[Any]
            ) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """``evaluate``'s answer as objectives and one dict of extras per config."""
    extras: Any = [{} for _ in range(n)]
    if isinstance(out, tuple):
        if len(out) != 2:
            ledger.fail(handles, "evaluate returned a tuple that is not (objectives, extras)")
            raise ValueError(f"evaluate returned a tuple of {len(out)} items; return "
                             "objectives, or (objectives, extras)")
        out, extras = out
        if (not isinstance(extras, Sequence) or len(extras) != n
                or not all(isinstance(x, Mapping) for x in extras)):
            ledger.fail(handles, "evaluate returned bad extras")
            raise ValueError(f"evaluate's extras must be a list of {n} dicts (one per "
                             f"config); got {type(extras).__name__}")
    try:
        Yn = np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        ledger.fail(handles, "evaluate returned objectives that are not numbers")
        raise ValueError(f"evaluate must return numbers (n, m); got {exc}") from exc
    return Yn, [dict(x) for x in extras]


def _propose(space: ChoiceSpace, sur: ObjectiveSurrogates, encode: Encode,
             inner: SearchStrategy, G: np.ndarray, Y: np.ndarray, pending: np.ndarray,
             skip: set[bytes], k: int, *, kappa: float, seed: int, rng: np.random.Generator,
             constraints: Constraints | None = None) -> tuple[np.ndarray, float]:
    """Candidates in the order to claim them, and the best one's relative gain."""
    def score(genomes: np.ndarray) -> np.ndarray:
        return sur.predict(encode(genomes))

    ok = np.ones(len(Y), bool) if constraints is None else _violation(constraints, Y) == 0
    start = Y[ok] if ok.any() else Y
    front = (G[ok] if ok.any() else G)[nondominated_mask(start)]
    res = inner.run(space, score, seed=seed, initial=front, constraints=constraints)
    cand, obj, viol = res.genomes, res.objectives, res.violation
    new = np.asarray([key not in skip for key in _keys(cand)], bool)
    cand, obj, viol = cand[new], obj[new], viol[new]
    if not len(cand):
        return cand, 0.0
    if constraints is not None:
        feasible = viol == 0
        if not feasible.any():
            # nothing predicted feasible: measure what comes closest, and keep going
            order = np.argsort(viol, kind="stable")[:3 * k]
            return cand[order], 1.0
        cand, obj = cand[feasible], obj[feasible]
    ranks = nondominated_ranks(obj)
    order = np.argsort(ranks, kind="stable")[:_POOL]
    cand = cand[order]
    X = encode(cand)
    mean, std = sur.predict(X), sur.predict_std(X)
    held = Y[ok]
    if len(pending):
        pend = sur.predict(encode(pending))
        if constraints is not None:
            pend = pend[_violation(constraints, pend) == 0]
        held = np.vstack([held, pend])
    if not len(held):
        # no feasible row measured yet: the predicted feasible front, in rank order
        return cand[:3 * k], 1.0
    picks, gain = _choose(held, mean, std, 3 * k, kappa=kappa, rng=rng)
    return cand[picks], gain
