"""Selector policies: which member to run next, from the latencies observed so far.

A selector is built over the members' predicted latencies and accuracies and a latency
target. Per request the caller reports the latency it observed and runs the member the
selector returns::

    sel = make_selector("feedback", members, target_ms=40)
    member = sel.current
    for x in requests:
        t = run(member, x)
        member = sel.step(t)

Every built-in selector is safe to call from several threads (one lock per selector:
``step`` and ``current`` see a consistent state) and ignores invalid readings: anything
but a positive finite number of milliseconds (NaN, infinity, zero, negative, a string) is
skipped as if no observation had been made, counted in ``invalid_readings`` and reported
with a ``RuntimeWarning`` (the 1st, 10th, 100th ... time).

Policies register under a name with :func:`register_selector`; third-party packages add
theirs through the entry-point group ``switchnas.selectors`` (the entry point names a
factory taking ``(members, *, target_ms, **options)``).
"""

from __future__ import annotations

import math
import numbers
import threading
import warnings
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "ENTRY_POINT_GROUP",
    "FeedbackSelector",
    "MemberInfo",
    "OracleSelector",
    "Selector",
    "StaticSelector",
    "StepSelector",
    "available_selectors",
    "get_selector",
    "make_selector",
    "register_selector",
]

ENTRY_POINT_GROUP = "switchnas.selectors"


@dataclass(frozen=True)
class MemberInfo:
    """What a selector knows about one member."""

    id: str
    accuracy: float
    latency_ms: float  #: predicted latency on the target hardware, unloaded
    energy_mj: float | None = None


@runtime_checkable
class Selector(Protocol):
    """A run-time policy choosing the member for each request."""

    @property
    def current(self) -> str:
        """Id of the member to run for the next request (before any ``step``: the first)."""
        ...

    def step(self, observed_ms: float | None = None) -> str:
        """Report the latency of the request that just ran ``current`` (``None``: no
        observation) and return the id of the member to run next."""
        ...


SelectorFactory = Callable[..., Selector]
_REGISTRY: dict[str, SelectorFactory] = {}
_entry_points_loaded = False


def register_selector(name: str) -> Callable[[SelectorFactory], SelectorFactory]:
    """Decorator registering a selector factory (usually a class) under ``name``."""
    def deco(factory: SelectorFactory) -> SelectorFactory:
        _check_factory(name, factory)
        _REGISTRY[name] = factory
        return factory
    return deco


def _check_factory(name: str, factory: Any) -> None:
    if not callable(factory):
        raise TypeError(f"selector {name!r}: {factory!r} is not callable")
    if isinstance(factory, type):
        missing = [m for m in ("step", "current") if not hasattr(factory, m)]
        if missing:
            raise TypeError(f"selector {name!r} ({factory.__qualname__}) does not implement "
                            f"Selector: missing {', '.join(missing)}")


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in _REGISTRY:
            factory = ep.load()
            _check_factory(ep.name, factory)
            _REGISTRY[ep.name] = factory


def available_selectors() -> list[str]:
    _load_entry_points()
    return sorted(_REGISTRY)


def get_selector(name: str) -> SelectorFactory:
    if name not in _REGISTRY:
        _load_entry_points()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown selector policy {name!r}; available: "
                         f"{available_selectors()}") from None


def make_selector(name: str, members: Sequence[MemberInfo], *, target_ms: float,
                  **options: Any) -> Selector:
    """Build the selector ``name`` over ``members`` for ``target_ms``."""
    sel = get_selector(name)(members, target_ms=target_ms, **options)
    missing = [m for m in ("step", "current") if not hasattr(sel, m)]
    if missing:
        raise TypeError(f"selector {name!r} returned {type(sel).__name__}, which does not "
                        f"implement Selector: missing {', '.join(missing)}")
    return sel


class _Base:
    """Members sorted by predicted latency (fastest first), a validated target, a lock and
    the filter of invalid readings. Subclasses implement ``_step(reading)`` (``reading``
    ``None``: no valid observation), called with the lock held."""

    def __init__(self, members: Sequence[MemberInfo], target_ms: float):
        if not members:
            raise ValueError("a selector needs at least one member")
        if not (isinstance(target_ms, (int, float)) and math.isfinite(target_ms)
                and target_ms > 0):
            raise ValueError(f"target_ms must be a positive number, got {target_ms!r}")
        self.members = sorted(members, key=lambda m: (m.latency_ms, -m.accuracy))
        self.target_ms = float(target_ms)
        self._index = {m.id: i for i, m in enumerate(self.members)}
        self._current = self.members[0].id
        self._lock = threading.RLock()
        self.steps = 0  #: calls of ``step``
        self.invalid_readings = 0  #: readings ignored as invalid

    @property
    def current(self) -> str:
        with self._lock:
            return self._current

    def step(self, observed_ms: float | None = None) -> str:
        """Report the latency of the request that just ran ``current`` (``None``: no
        observation; an invalid reading counts as none) and return the next member."""
        with self._lock:
            self.steps += 1
            return self._step(self._reading(observed_ms))

    def _step(self, reading: float | None) -> str:
        raise NotImplementedError

    def _reading(self, observed_ms: Any) -> float | None:
        """``observed_ms`` as a float, or ``None`` for no or an invalid observation."""
        if observed_ms is None:
            return None
        if isinstance(observed_ms, numbers.Real) and not isinstance(observed_ms, bool):
            v = float(observed_ms)
            if math.isfinite(v) and v > 0:
                return v
        self.invalid_readings += 1
        n = self.invalid_readings
        if n == 10 ** int(math.log10(n) + 1e-9):
            warnings.warn(f"{type(self).__name__} ignored the latency reading "
                          f"{observed_ms!r:.40} (a positive finite number of ms is expected); "
                          f"{n} ignored so far", RuntimeWarning, stacklevel=3)
        return None

    def _member(self, member_id: str) -> MemberInfo:
        try:
            return self.members[self._index[member_id]]
        except KeyError:
            raise ValueError(f"unknown member {member_id!r}; members are "
                             f"{[m.id for m in self.members]}") from None

    def _best_unloaded(self, limit_ms: float) -> MemberInfo:
        """Most accurate member predicted to meet ``limit_ms`` unloaded, else the fastest."""
        ok = [m for m in self.members if m.latency_ms <= limit_ms]
        return max(ok, key=lambda m: (m.accuracy, -m.latency_ms)) if ok else self.members[0]


@register_selector("static")
class StaticSelector(_Base):
    """Always the same member: ``member`` or the most accurate one meeting the target
    unloaded."""

    def __init__(self, members: Sequence[MemberInfo], *, target_ms: float,
                 member: str | None = None):
        super().__init__(members, target_ms)
        self._current = (self._member(member).id if member is not None
                         else self._best_unloaded(self.target_ms).id)

    def _step(self, reading: float | None) -> str:
        return self._current


@register_selector("feedback")
class FeedbackSelector(_Base):
    """Ours: estimate the slowdown, pick the most accurate member that fits.

    Each observation gives a slowdown sample ``observed / predicted`` of the member that
    ran (times its operating point's latency scale). The estimate is the median of the
    last ``window`` samples (robust to a single outlier; follows a step change after
    ``window // 2 + 1`` requests) or an EWMA (``estimator="ewma"``, ``alpha``).

    The next member is the most accurate one whose ``predicted * slowdown`` is at most
    ``target * (1 - margin)``. ``margin="auto"`` sizes it from the observed noise: twice
    the robust spread (MAD of successive log-samples) of the last 20 samples, within
    [``min_margin``, 0.5]; 0.1 until 5 samples are in. Hysteresis: the current member is
    kept while it fits within ``stay`` (a quarter) of the margin; moving up needs
    the estimate and each of the last ``confirm`` samples to say it fits within
    ``target * (1 - margin) * (1 - hysteresis)``. So noise around one member's limit does
    not flip it, one fast request does not flip it up, and a load drop is followed within
    ``confirm`` requests. Members below ``accuracy_floor`` are
    never chosen. When nothing fits, the fastest allowed member is chosen and
    :attr:`infeasible` is set (no exception).

    With ``objective="energy"`` it picks the member (and, given ``operating_points``, the
    operating point) of least energy that fits, over those meeting ``accuracy_floor``.
    ``operating_points`` are dicts ``{"name", "latency_scale", "energy_scale"}``, scales
    relative to the members' predicted latency and energy; :attr:`operating_point` names the
    chosen one.
    """

    def __init__(self, members: Sequence[MemberInfo], *, target_ms: float,
                 margin: float | str = "auto", min_margin: float = 0.02,
                 hysteresis: float = 0.0, stay: float = 0.25, window: int = 3,
                 confirm: int = 2,
                 estimator: str = "median", alpha: float = 0.5,
                 accuracy_floor: float | None = None, objective: str = "accuracy",
                 operating_points: Sequence[Mapping[str, Any]] | None = None):
        super().__init__(members, target_ms)
        if not (margin == "auto" or (isinstance(margin, (int, float)) and 0 <= margin < 1)):
            raise ValueError(f"margin must be 'auto' or lie in [0, 1); got {margin!r}")
        if not 0 <= hysteresis < 1 or not 0 <= min_margin < 1:
            raise ValueError(f"hysteresis and min_margin must lie in [0, 1); got "
                             f"{hysteresis}, {min_margin}")
        if not 0 <= stay <= 1:
            raise ValueError(f"stay must lie in [0, 1]; got {stay}")
        if estimator not in ("median", "ewma"):
            raise ValueError(f"estimator={estimator!r}; choose 'median' or 'ewma'")
        if objective not in ("accuracy", "energy"):
            raise ValueError(f"objective={objective!r}; choose 'accuracy' or 'energy'")
        if window < 1 or confirm < 1 or not 0 < alpha <= 1:
            raise ValueError(f"window and confirm must be >= 1 and alpha in (0, 1]; got "
                             f"{window}, {confirm}, {alpha}")
        ops = [dict(op) for op in (operating_points or [{"name": "nominal"}])]
        for op in ops:
            op.setdefault("latency_scale", 1.0)
            op.setdefault("energy_scale", 1.0)
            if "name" not in op:
                raise ValueError(f"operating point {op!r} has no 'name'")
        if objective == "energy" and any(m.energy_mj is None for m in self.members):
            raise ValueError("objective='energy' needs every member's energy_mj")
        self.auto_margin = margin == "auto"
        self.margin = 0.1 if self.auto_margin else float(margin)
        self.min_margin, self.hysteresis = float(min_margin), float(hysteresis)
        self.stay = float(stay)
        self.estimator, self.alpha = estimator, float(alpha)
        self.accuracy_floor = accuracy_floor
        self.objective = objective
        # candidates: (member, operating point, latency, energy), latency-sorted
        self._cands = sorted(((m, op, m.latency_ms * op["latency_scale"],
                               (m.energy_mj or 0.0) * op["energy_scale"])
                              for m in self.members for op in ops), key=lambda c: c[2])
        self._samples: deque[float] = deque(maxlen=int(window))
        self._recent: deque[float] = deque(maxlen=int(confirm))
        self._logs: deque[float] = deque(maxlen=21)
        self.slowdown = 1.0
        self.infeasible = False
        self._op = ops[0]
        self._current, self._op = self._choose(1.0)

    @property
    def operating_point(self) -> str:
        return str(self._op["name"])

    def step(self, observed_ms: float | None = None, ran: str | None = None) -> str:
        """``ran``: the member that produced ``observed_ms`` if it was not ``current``."""
        with self._lock:
            self.steps += 1
            return self._step(self._reading(observed_ms), ran)

    def _step(self, reading: float | None, ran: str | None = None) -> str:
        if reading is None:
            return self._current
        observed_ms = reading
        if ran is not None and ran != self._current:
            info = self._member(ran)
            self._current = info.id
            self._op = next((c[1] for c in self._cands if c[0].id == info.id
                             and c[1]["name"] == self._op["name"]), self._op)
        ran_m = self._member(self._current)
        sample = float(observed_ms) / (ran_m.latency_ms * self._op["latency_scale"])
        if self.estimator == "median":
            self._samples.append(sample)
            s = sorted(self._samples)
            n = len(s)
            self.slowdown = s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])
        else:
            self.slowdown += self.alpha * (sample - self.slowdown)
        self._recent.append(sample)
        if self.auto_margin:
            self._update_margin(sample)
        self._current, self._op = self._choose(max(self.slowdown, max(self._recent)))
        return self._current

    def _update_margin(self, sample: float) -> None:
        logs = self._logs
        logs.append(math.log(sample))
        if len(logs) < 6:
            return
        it = iter(logs)
        prev = next(it)
        diffs = []
        for x in it:
            diffs.append(abs(x - prev))
            prev = x
        diffs.sort()
        # MAD of successive differences: a step change is one outlier, not noise
        sigma = 1.4826 * diffs[len(diffs) // 2] / math.sqrt(2.0)
        self.margin = min(0.5, max(self.min_margin, 2.0 * sigma))

    def _choose(self, s_up: float) -> tuple[str, dict[str, Any]]:
        s = self.slowdown
        floor = self.accuracy_floor
        allowed = [c for c in self._cands if floor is None or c[0].accuracy >= floor]
        if not allowed:  # floor above every member: the floor cannot hold, latency can
            allowed = self._cands
        if self.objective == "energy":
            def key(c: Any) -> tuple[float, float, float]:
                return (-c[3], c[0].accuracy, -c[2])
        else:
            def key(c: Any) -> tuple[float, float, float]:
                return (c[0].accuracy, -c[3], -c[2])

        cur = next((c for c in allowed if c[0].id == self._current and c[1] is self._op), None)
        # hysteresis band: stay while within part of the margin, move up only within all of
        # it (and within every recent sample), move down as soon as the estimate says so
        if cur is not None and cur[2] * s <= self.target_ms * (1.0 - self.stay * self.margin):
            strict = self.target_ms * (1.0 - self.margin) * (1.0 - self.hysteresis)
            better = [c for c in allowed if key(c) > key(cur) and c[2] * s_up <= strict]
            self.infeasible = False
            best = max(better, key=key) if better else cur
            return best[0].id, best[1]
        budget = self.target_ms * (1.0 - self.margin)
        fits = [c for c in allowed if c[2] * s <= budget]
        self.infeasible = not fits
        best = max(fits, key=key) if fits else allowed[0]
        return best[0].id, best[1]


@register_selector("step")
class StepSelector(_Base):
    """Dynamic-OFA's rule, one level at a time (levels ordered by predicted latency).

    After each switch it collects ``window`` (20) latencies of the new level; when their
    mean exceeds the target it moves one level down. It moves one level up when the
    level's accuracy is below ``accuracy_floor``, or when the mean scaled to the next
    level's predicted latency still meets the target; the guard against flipping back:
    never straight back up to a level it left for latency within ``guard`` requests
    (default ``2 * window``).
    """

    def __init__(self, members: Sequence[MemberInfo], *, target_ms: float, window: int = 20,
                 accuracy_floor: float | None = None, guard: int | None = None,
                 start: str | None = None):
        super().__init__(members, target_ms)
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window = int(window)
        self.accuracy_floor = accuracy_floor
        self.guard = 2 * self.window if guard is None else int(guard)
        self._level = self._index[start if start is not None
                                  else self._best_unloaded(self.target_ms).id]
        self._current = self.members[self._level].id
        self._lat: deque[float] = deque(maxlen=self.window)
        self._t = 0
        self._left_for_latency: tuple[int, int] | None = None  # (level, time)

    def _step(self, reading: float | None) -> str:
        self._t += 1
        if reading is not None:
            self._lat.append(reading)
        lvl = self._level
        if len(self._lat) == self.window:
            mean = sum(self._lat) / self.window
            top = len(self.members) - 1
            if mean > self.target_ms and lvl > 0:
                self._left_for_latency = (lvl, self._t)
                lvl -= 1
            elif lvl < top and self._may_climb(lvl + 1):
                low = (self.accuracy_floor is not None
                       and self.members[lvl].accuracy < self.accuracy_floor)
                ratio = self.members[lvl + 1].latency_ms / self.members[lvl].latency_ms
                if low or mean * ratio <= self.target_ms:
                    lvl += 1
        if lvl != self._level:
            self._level = lvl
            self._lat.clear()
            self._current = self.members[lvl].id
        return self._current

    def _may_climb(self, level: int) -> bool:
        left = self._left_for_latency
        return left is None or left[0] != level or self._t - left[1] > self.guard


@register_selector("oracle")
class OracleSelector(_Base):
    """Knows the load factor of every future request (``load``, one per request): runs the
    most accurate member with ``predicted * load <= target``, else the fastest. For
    benchmarks only."""

    def __init__(self, members: Sequence[MemberInfo], *, target_ms: float,
                 load: Sequence[float]):
        super().__init__(members, target_ms)
        if len(load) == 0:
            raise ValueError("the oracle needs the load of every request; got none")
        self._load = [float(x) for x in load]
        self._t = 0
        self._current = self._pick(0)

    def _pick(self, t: int) -> str:
        f = self._load[min(t, len(self._load) - 1)]
        return self._best_unloaded(self.target_ms / f).id

    def _step(self, reading: float | None) -> str:
        self._t += 1
        self._current = self._pick(self._t)
        return self._current
