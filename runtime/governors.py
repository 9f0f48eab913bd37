"""Frequency governors: the baselines that choose a CPU frequency from utilisation alone.

They run a fixed member and see only how busy the device was over the last period
(``util``: the fraction of the period it spent running requests, at the frequency it ran),
like Linux's cpufreq governors:

* ``performance``: always the highest frequency; ``powersave``: always the lowest;
* ``ondemand``: jump to the highest frequency when ``util > up_threshold``, one step down
  when ``util < down_threshold``, otherwise stay (the classic ondemand rule);
* ``schedutil``: ``f = headroom * f_max * util_inv`` with ``headroom = 1.25`` and the
  frequency-invariant utilisation ``util_inv = util * f_cur / f_max`` (Linux
  ``kernel/sched/cpufreq_schedutil.c``, ``get_next_freq``), rounded up to the lowest
  available frequency at or above it.

Each is built over ``{point name: frequency (kHz)}``; :func:`frequencies_of` reads those
from operating points' ``settings["freq_khz"]``::

    gov = make_governor("schedutil", frequencies_of(table.points))
    point = gov.current
    for request in ...:
        point = gov.step(util)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "GOVERNORS",
    "Governor",
    "OndemandGovernor",
    "PerformanceGovernor",
    "PowersaveGovernor",
    "SchedutilGovernor",
    "frequencies_of",
    "make_governor",
]


@runtime_checkable
class Governor(Protocol):
    """Chooses the operating point from the device's utilisation."""

    name: str

    @property
    def current(self) -> str:
        """The point to run next (before any ``step``: the governor's starting point)."""
        ...

    def step(self, util: float | None) -> str:
        """Report the utilisation (0..1) of the period that just ended at ``current``
        (``None``: not known) and return the point for the next one."""
        ...


def frequencies_of(points: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """``{name: settings["freq_khz"]}`` of operating points given as ``{"name",
    "settings"}`` dicts.

    Raises:
        ValueError: a point without a positive ``freq_khz`` (governors choose frequencies).
    """
    out: dict[str, float] = {}
    for p in points:
        f = dict(p.get("settings", {})).get("freq_khz")
        if not (isinstance(f, (int, float)) and not isinstance(f, bool) and math.isfinite(f)
                and f > 0):
            raise ValueError(f"operating point {p.get('name')!r} has no positive "
                             f"settings['freq_khz'] ({f!r}); a governor needs one per point")
        out[str(p["name"])] = float(f)
    return out


class _Base:
    """Points sorted by frequency; ``start``: the first point (default: the highest, the
    powersave governor the lowest)."""

    name = ""

    def __init__(self, frequencies: Mapping[str, float], *, start: str | None = None):
        if not frequencies:
            raise ValueError("a governor needs at least one operating point")
        bad = {k: v for k, v in frequencies.items() if not (math.isfinite(v) and v > 0)}
        if bad:
            raise ValueError(f"frequencies must be positive numbers (kHz), got {bad}")
        self.points = sorted(frequencies, key=lambda p: frequencies[p])
        self.freq = dict(frequencies)
        self.f_max = self.freq[self.points[-1]]
        if start is not None and start not in self.freq:
            raise ValueError(f"unknown start point {start!r}; points: {self.points}")
        self._current = self.points[-1] if start is None else start
        self.steps = 0

    @property
    def current(self) -> str:
        return self._current

    def step(self, util: float | None) -> str:
        self.steps += 1
        if util is not None:
            if not (isinstance(util, (int, float)) and math.isfinite(util) and util >= 0):
                raise ValueError(f"util must be a number in [0, 1], got {util!r}")
            self._current = self._next(min(float(util), 1.0))
        return self._current

    def _next(self, util: float) -> str:
        raise NotImplementedError

    def _lowest_at_least(self, f: float) -> str:
        return next((p for p in self.points if self.freq[p] >= f), self.points[-1])


class PerformanceGovernor(_Base):
    """Always the highest frequency."""

    name = "performance"

    def _next(self, util: float) -> str:
        return self.points[-1]


class PowersaveGovernor(_Base):
    """Always the lowest frequency."""

    name = "powersave"

    def __init__(self, frequencies: Mapping[str, float], *, start: str | None = None):
        super().__init__(frequencies, start=start)
        if start is None:
            self._current = self.points[0]

    def _next(self, util: float) -> str:
        return self.points[0]


class OndemandGovernor(_Base):
    """Highest frequency above ``up_threshold``, one step down below ``down_threshold``.

    Args:
        frequencies: point name -> frequency (kHz).
        up_threshold: utilisation above which it jumps to the highest frequency.
        down_threshold: utilisation below which it steps one frequency down.
        start: the first point (default the highest).

    Raises:
        ValueError: thresholds outside ``0 <= down < up <= 1``, an unknown ``start``.
    """

    name = "ondemand"

    def __init__(self, frequencies: Mapping[str, float], *, up_threshold: float = 0.8,
                 down_threshold: float = 0.5, start: str | None = None):
        super().__init__(frequencies, start=start)
        if not 0 <= down_threshold < up_threshold <= 1:
            raise ValueError(f"need 0 <= down_threshold < up_threshold <= 1, got "
                             f"{down_threshold}, {up_threshold}")
        self.up, self.down = float(up_threshold), float(down_threshold)

    def _next(self, util: float) -> str:
        if util > self.up:
            return self.points[-1]
        if util < self.down:
            return self.points[max(0, self.points.index(self._current) - 1)]
        return self._current


class SchedutilGovernor(_Base):
    """``f = headroom * f_max * util * f_cur / f_max``, rounded up to an available frequency.

    Args:
        frequencies: point name -> frequency (kHz).
        headroom: Linux's 1.25 (``util + util / 4``).
        start: the first point (default the highest).

    Raises:
        ValueError: ``headroom < 1``, an unknown ``start``.
    """

    name = "schedutil"

    def __init__(self, frequencies: Mapping[str, float], *, headroom: float = 1.25,
                 start: str | None = None):
        super().__init__(frequencies, start=start)
        if not (math.isfinite(headroom) and headroom >= 1):
            raise ValueError(f"headroom must be >= 1, got {headroom!r}")
        self.headroom = float(headroom)

    def target_khz(self, util: float) -> float:
        """The frequency the rule asks for after a period of ``util`` at ``current``."""
        util_inv = util * self.freq[self._current] / self.f_max
        return self.headroom * self.f_max * util_inv

    def _next(self, util: float) -> str:
        return self._lowest_at_least(self.target_khz(util))


GOVERNORS: dict[str, Callable[..., Governor]] = {
    "performance": PerformanceGovernor, "powersave": PowersaveGovernor,
    "ondemand": OndemandGovernor, "schedutil": SchedutilGovernor,
}


def make_governor(name: str, frequencies: Mapping[str, float], **options: Any) -> Governor:
    """The governor ``name`` over ``frequencies`` (point name -> kHz).

    Raises:
        ValueError: an unknown name (the message lists the governors).
    """
    try:
        cls = GOVERNORS[name]
    except KeyError:
        raise ValueError(f"unknown governor {name!r}; governors: {sorted(GOVERNORS)}") from None
    return cls(frequencies, **options)
