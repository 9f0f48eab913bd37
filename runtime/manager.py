"""A hierarchical runtime manager: which member each model runs, and at which operating point
the shared device runs them all.

Two levels share one load estimate per model:

* the **application level** (one per model) chooses the member. It is a
  :class:`~switchnas.runtime.selectors.FeedbackSelector` over the members' best-case
  latencies (each at its fastest operating point): the same slowdown estimate, noise margin
  and hysteresis as member-only feedback, so it never asks for a member that no operating
  point can run in time;
* the **device level** chooses one operating point for the device: the one of least total
  energy at which every model's member meets that model's target (with the margin), given
  the member x operating-point table and each model's load estimate.

With ``objective="energy"`` a model's accuracy requirement is its ``accuracy_floor`` and
the levels negotiate: for every operating point each application level names its
least-energy member that meets the floor and the target there, and the device level takes
the point of least total energy. When no point lets every model meet its target with
the margin, the levels try again without it; when none does even then, each model runs
its fastest member (meeting its floor where one can) at the point fastest for the worst-off
model, and :attr:`Decision.feasible` is ``False``.

``contention`` in :meth:`HierarchicalManager.step` tells the device level what else slows
each point now (e.g. a co-runner on the cores a point uses, read from the OS): predictions
at a point are ``table * load * contention[point]``.

The load estimate of a model is the slowdown ``observed / table[member][point]`` of its
requests (co-runners, contention, thermal throttling), the median of a short window (see
:class:`FeedbackSelector`), so a change of operating point is not mistaken for a change of
load::

    mgr = HierarchicalManager([ModelSpec(name="cam", table=table, accuracy=acc,
                                         target_ms=30.0)])
    d = mgr.decisions["cam"]              # first member and point
    knob.apply(d.point); bundle.activate(d.member)
    for x in requests:
        t = run(x)
        d = mgr.step({"cam": t})["cam"]
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .files import atomic_write_json
from .knobs import validate_point_table
from .selectors import FeedbackSelector, MemberInfo

__all__ = ["Decision", "HierarchicalManager", "ModelSpec", "OpTable"]



@dataclass(frozen=True)
class OpTable:
    """A member x operating-point table: latency and energy of every member at every point.

    The JSON form of :func:`~switchnas.runtime.knobs.validate_point_table`, plus an optional
    ``accuracy`` object::

        {"energy_source": "rapl" | "nvml" | "model:<name>",
         "members": {member_id: {point_name: {"latency_ms": float,
                                              "energy_mj": float | null,
                                              "power_w": float | null}}},
         "points": [{"name": str, "settings": {...}}],
         "accuracy": {member_id: float}}            # optional

    Energy of a request is ``energy_mj``, else ``power_w * latency_ms`` (W x ms = mJ), else
    unknown (``None``).

    Attributes:
        energy_source: where the energies come from; ``model:<name>`` marks modelled ones.
        points: the operating points as ``{"name", "settings"}`` dicts, in table order.
        entries: ``entries[member][point]`` with ``latency_ms``, ``energy_mj``, ``power_w``.
        accuracy: members' accuracies when the table carries them (else empty).
        meta: the table's ``meta`` (how it was measured or modelled), else empty.
    """

    energy_source: str
    points: tuple[Mapping[str, Any], ...]
    entries: Mapping[str, Mapping[str, Mapping[str, float | None]]]
    accuracy: Mapping[str, float] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def members(self) -> list[str]:
        """Member ids, in table order."""
        return list(self.entries)

    @property
    def point_names(self) -> list[str]:
        """Operating-point names, in table order."""
        return [str(p["name"]) for p in self.points]

    def latency(self, member: str, point: str) -> float:
        """Unloaded latency (ms) of ``member`` at ``point``.

        Raises:
            ValueError: unknown member or point (the message lists the known ones).
        """
        return float(self._entry(member, point)["latency_ms"])  # type: ignore[arg-type]

    def energy(self, member: str, point: str) -> float | None:
        """Energy (mJ) of one request of ``member`` at ``point``; ``None`` if unknown."""
        e = self._entry(member, point)
        if e.get("energy_mj") is not None:
            return float(e["energy_mj"])  # type: ignore[arg-type]
        if e.get("power_w") is not None:
            return float(e["power_w"]) * float(e["latency_ms"])  # type: ignore[arg-type]
        return None

    def settings(self, point: str) -> Mapping[str, Any]:
        """The settings of ``point`` (what a knob applies)."""
        for p in self.points:
            if p["name"] == point:
                return dict(p.get("settings", {}))
        raise ValueError(f"unknown operating point {point!r}; points are {self.point_names}")

    def _entry(self, member: str, point: str) -> Mapping[str, float | None]:
        if member not in self.entries:
            raise ValueError(f"unknown member {member!r}; the table has {self.members}")
        row = self.entries[member]
        if point not in row:
            raise ValueError(f"unknown operating point {point!r}; points are "
                             f"{self.point_names}")
        return row[point]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OpTable:
        """Validate and build a table from its JSON form.

        Raises:
            ValueError: what :func:`~switchnas.runtime.knobs.validate_point_table` refuses,
                or an ``accuracy`` that does not name exactly the table's members.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"an operating-point table is a JSON object, got "
                             f"{type(data).__name__}")
        rest = {k: v for k, v in data.items() if k != "accuracy"}
        checked = validate_point_table(rest)
        entries = checked["members"]
        acc = {str(k): float(v) for k, v in dict(data.get("accuracy") or {}).items()}
        if acc and set(acc) != set(entries):
            raise ValueError(f"'accuracy' must name exactly the table's members "
                             f"{sorted(entries)}, got {sorted(acc)}")
        return cls(energy_source=checked["energy_source"], points=tuple(checked["points"]),
                   entries=entries, accuracy=acc, meta=dict(checked.get("meta", {})))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (see the class docstring)."""
        d: dict[str, Any] = {"energy_source": self.energy_source,
                             "members": {m: {p: dict(e) for p, e in row.items()}
                                         for m, row in self.entries.items()},
                             "points": [dict(p) for p in self.points]}
        if self.meta:
            d["meta"] = dict(self.meta)
        if self.accuracy:
            d["accuracy"] = dict(self.accuracy)
        return d

    @classmethod
    def read(cls, path: str | Path) -> OpTable:
        """Read and validate a table file.

        Raises:
            ValueError: the file is not JSON or not a valid table (message names the file).
            OSError: it cannot be read.
        """
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"operating-point table {str(path)!r} is not JSON: {exc}") from None
        try:
            return cls.from_dict(data)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"operating-point table {str(path)!r}: {exc}") from None

    def write(self, path: str | Path) -> Path:
        """Write the JSON form atomically (temporary file in the same folder, then rename)."""
        return atomic_write_json(path, self.to_dict())


def _positive(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            and v > 0)


@dataclass(frozen=True)
class ModelSpec:
    """One model sharing the device.

    Attributes:
        name: the model's key in :meth:`HierarchicalManager.step`'s readings and decisions.
        table: its member x operating-point table (points must be the device's points).
        accuracy: member id -> accuracy (default: the table's own ``accuracy``).
        target_ms: its latency target.
        accuracy_floor: with ``objective="energy"``, the least accuracy it accepts.
    """

    name: str
    table: OpTable
    target_ms: float
    accuracy: Mapping[str, float] | None = None
    accuracy_floor: float | None = None


@dataclass(frozen=True)
class Decision:
    """What one model runs next.

    Attributes:
        member: the member to activate.
        point: the device's operating point (the same for every model).
        predicted_ms: the member's latency at the point times the model's load estimate.
        load: the model's load estimate (1.0: as fast as in the table).
        feasible: whether the member is predicted to meet the target (with the margin).
    """

    member: str
    point: str
    predicted_ms: float
    load: float
    feasible: bool


class _Model:
    """One model's application level: a feedback selector over best-case latencies."""

    def __init__(self, spec: ModelSpec, points: list[str], options: Mapping[str, Any],
                 react_to_miss: bool = True):
        acc = dict(spec.accuracy if spec.accuracy is not None else spec.table.accuracy)
        if set(acc) != set(spec.table.members):
            raise ValueError(f"model {spec.name!r}: accuracies for {sorted(acc)} but the "
                             f"table has members {sorted(spec.table.members)}")
        if sorted(spec.table.point_names) != sorted(points):
            raise ValueError(f"model {spec.name!r}: its table's points "
                             f"{spec.table.point_names} differ from the device's {points}")
        self.spec, self.acc = spec, acc
        self.lat = {m: {p: spec.table.latency(m, p) for p in points} for m in acc}
        energy = {m: {p: spec.table.energy(m, p) for p in points} for m in acc}
        if any(e is None for row in energy.values() for e in row.values()):
            raise ValueError(f"model {spec.name!r}: its table lacks the energy of some "
                             f"member at some point; the device level needs every one "
                             f"(energy_mj or power_w)")
        self.energy: dict[str, dict[str, float]] = {
            m: {p: float(e) for p, e in row.items()}  # type: ignore[arg-type]
            for m, row in energy.items()}
        self.best = {m: min(row.values()) for m, row in self.lat.items()}
        infos = [MemberInfo(m, acc[m], self.best[m], min(self.energy[m].values()))
                 for m in acc]
        kw = dict(options)
        if spec.accuracy_floor is not None:
            kw.setdefault("accuracy_floor", spec.accuracy_floor)
        self.sel = FeedbackSelector(infos, target_ms=spec.target_ms, **kw)
        self.recent: deque[float] = deque(maxlen=int(kw.get("confirm", 2)))
        self.missed = False
        self.react_to_miss = react_to_miss

    def observe(self, observed_ms: float, member: str, point: str, factor: float) -> None:
        # expressed at the member's best-case point without contention, the selector's
        # slowdown sample is observed / (table[member][point] * contention[point])
        ref = self.lat[member][point] * factor
        self.sel.step(observed_ms * self.best[member] / ref, ran=member)
        self.missed = False
        if _positive(observed_ms):
            self.recent.append(observed_ms / ref)
            self.missed = self.react_to_miss and observed_ms > self.spec.target_ms

    @property
    def load(self) -> float:
        """The median estimate, or the last sample when that request missed its target
        (a deadline miss is acted on at once, not after the median has caught up)."""
        s = float(self.sel.slowdown)
        return max(s, self.recent[-1]) if self.missed and self.recent else s

    @property
    def load_up(self) -> float:
        """The estimate for moving to a slower point: no lower than any recent sample."""
        return max([self.load, *self.recent])

    def budget(self, band: float = 1.0) -> float:
        return self.spec.target_ms * (1.0 - band * float(self.sel.margin))

    def member_at(self, objective: str, point: str, load: float, budget: float) -> str | None:
        """The member this model runs at ``point`` (``None``: none meets the target).

        ``accuracy``: the most accurate member that fits, no more accurate than the
        selector's choice (its hysteresis decides when to move up). ``energy``: the
        least-energy member that fits and meets the accuracy floor.
        """
        floor = self.spec.accuracy_floor
        cap = self.acc[self.sel.current]
        ok = [m for m in self.acc if (floor is None or self.acc[m] >= floor)
              and self.lat[m][point] * load <= budget
              and (objective == "energy" or self.acc[m] <= cap)]
        if not ok:
            return None
        if objective == "accuracy":
            return max(ok, key=lambda m: (self.acc[m], -self.energy[m][point]))
        return min(ok, key=lambda m: (self.energy[m][point], -self.acc[m]))


class HierarchicalManager:
    """Member per model (application level) and operating point for the device (device level).

    Args:
        models: the models sharing the device; names must be unique and their tables must
            list the same operating points.
        objective: ``"accuracy"`` (default): the most accurate members first (each model
            capped by its feedback selector's choice), then the least total energy.
            ``"energy"``: the least total energy over members meeting each model's
            ``accuracy_floor``; every target met either way.
        stay: hysteresis of the device level: the current point is kept while every model
            fits within ``target * (1 - stay * margin)``; another point needs the full
            margin, and a slower one also every recent sample.
        energy_tolerance: points whose total energy is within this fraction of the least
            count as equal, and the fastest of them wins (0: the least energy): trades a
            bounded amount of energy for latency.
        react_to_miss: after a request that missed its target, use its slowdown at once
            (not the window's median): one miss per load rise instead of two, at the cost
            of following single outliers on a very noisy machine.
        selector_options: keywords for each model's
            :class:`~switchnas.runtime.selectors.FeedbackSelector` (``window``, ``margin``,
            ``confirm`` ...).

    Raises:
        ValueError: no models, duplicate names, tables with different points, missing
            energies or accuracies, an unknown objective, a bad target or option.
    """

    def __init__(self, models: Sequence[ModelSpec], *, objective: str = "accuracy",
                 stay: float = 0.25, energy_tolerance: float = 0.0,
                 react_to_miss: bool = True,
                 selector_options: Mapping[str, Any] | None = None):
        if not models:
            raise ValueError("a manager needs at least one model")
        names = [m.name for m in models]
        if len(set(names)) != len(names):
            raise ValueError(f"model names must be unique, got {names}")
        if objective not in ("accuracy", "energy"):
            raise ValueError(f"objective={objective!r}; choose 'accuracy' or 'energy'")
        if not 0 <= stay <= 1:
            raise ValueError(f"stay must lie in [0, 1], got {stay!r}")
        if not (math.isfinite(energy_tolerance) and energy_tolerance >= 0):
            raise ValueError(f"energy_tolerance must be a number >= 0, got "
                             f"{energy_tolerance!r}")
        self.energy_tolerance = float(energy_tolerance)
        opts = dict(selector_options or {})
        if "objective" in opts or "operating_points" in opts:
            raise ValueError("selector_options may not set 'objective' or "
                             "'operating_points': the manager's levels choose those")
        self.points = models[0].table.point_names
        self.objective, self.stay = objective, float(stay)
        self._models = {m.name: _Model(m, self.points, opts, bool(react_to_miss))
                        for m in models}
        self.energy_source = models[0].table.energy_source
        self.steps = 0
        self.point_switches = 0
        self._contention = {p: 1.0 for p in self.points}
        self._point = self.points[0]
        self._point, self.decisions = self._decide(first=True)

    @property
    def point(self) -> str:
        """The device's current operating point."""
        return self._point

    @property
    def models(self) -> list[str]:
        """The models' names."""
        return list(self._models)

    def load(self, model: str) -> float:
        """The load estimate of ``model``: its requests' slowdown against the table (after
        the contention factor of the point they ran at)."""
        return self._model(model).load

    def step(self, observed_ms: Mapping[str, float | None],
             contention: Mapping[str, float] | None = None) -> dict[str, Decision]:
        """Report the latency of each model's last request and get every model's next one.

        Args:
            observed_ms: model name -> latency (ms) of the request it just ran with its
                last decision; a model left out or ``None`` made no request. Invalid
                readings (NaN, <= 0 ...) are ignored as the feedback selector does.
            contention: optional point name -> slowdown factor (>= 1) that the device
                expects at that point from what else runs now (e.g. ``1 + busy fraction``
                of the busiest of the point's cores, from the OS); points left out keep
                their last factor (initially 1). It applies from the readings of this
                call on, so the load estimate is what contention does not explain.

        Returns:
            model name -> :class:`Decision` (one operating point for all).

        Raises:
            ValueError: an unknown model or point, a contention factor that is not a
                finite number >= 1.
        """
        unknown = sorted(set(observed_ms) - set(self._models))
        if unknown:
            raise ValueError(f"unknown models {unknown}; models are {self.models}")
        if contention:
            bad = sorted(set(contention) - set(self.points))
            if bad:
                raise ValueError(f"contention for unknown points {bad}; points are "
                                 f"{self.points}")
            for p, f in contention.items():
                if not (_positive(f) and f >= 1.0):
                    raise ValueError(f"contention factor of {p!r} must be a finite number "
                                     f">= 1, got {f!r}")
                self._contention[p] = float(f)
        self.steps += 1
        for name, ms in observed_ms.items():
            if ms is None:
                continue
            d = self.decisions[name]
            self._models[name].observe(ms, d.member, d.point, self._contention[d.point])
        point, self.decisions = self._decide()
        self.point_switches += point != self._point
        self._point = point
        return self.decisions

    def _model(self, name: str) -> _Model:
        try:
            return self._models[name]
        except KeyError:
            raise ValueError(f"unknown model {name!r}; models are {self.models}") from None

    def _candidates(self, models: list[_Model], first: bool, band: float
                    ) -> list[tuple[float, float, int, float, str, dict[str, str]]]:
        """Points at which every model has a member that fits ``band`` x its margin:
        (accuracy key, total energy, 0 if the current point, latency, point, members)."""
        cands: list[tuple[float, float, int, float, str, dict[str, str]]] = []
        for p in self.points:
            keep = p == self._point and not first
            c = self._contention[p]
            chosen: dict[str, str] = {}
            for mdl in models:
                if keep:  # the point we are on: the relaxed band
                    m = mdl.member_at(self.objective, p, mdl.load * c,
                                      mdl.budget(self.stay * band))
                else:  # elsewhere the full margin, and every recent sample if it is slower
                    cur = self.decisions[mdl.spec.name].member if not first else None
                    slower = cur is not None and (
                        mdl.lat[cur][p] * c
                        > mdl.lat[cur][self._point] * self._contention[self._point])
                    m = mdl.member_at(self.objective, p,
                                      (mdl.load_up if slower else mdl.load) * c,
                                      mdl.budget(band))
                if m is None:
                    break
                chosen[mdl.spec.name] = m
            else:
                acc = sum(mdl.acc[chosen[mdl.spec.name]] for mdl in models)
                energy = sum(mdl.energy[chosen[mdl.spec.name]][p] * mdl.load * c
                             for mdl in models)
                latency = sum(mdl.lat[chosen[mdl.spec.name]][p] * c / mdl.spec.target_ms
                              for mdl in models)
                cands.append((-acc if self.objective == "accuracy" else 0.0, energy,
                              0 if keep else 1, latency, p, chosen))
        return cands

    def _decide(self, first: bool = False) -> tuple[str, dict[str, Decision]]:
        models = list(self._models.values())
        # with the margin; failing that, without it (a close call beats a sure miss)
        cands = self._candidates(models, first, 1.0) or self._candidates(models, first, 0.0)
        best = None
        if cands:
            top = min(c[0] for c in cands)
            pool = [c for c in cands if c[0] <= top + 1e-12]
            e_min = min(c[1] for c in pool)
            pool = [c for c in pool if c[1] <= e_min * (1.0 + self.energy_tolerance) + 1e-12]
            # within the tolerance the fastest; without it, the least energy, the current
            # point on a tie
            best = min(pool, key=(lambda c: (c[3], c[2])) if self.energy_tolerance > 0
                       else (lambda c: (c[1], c[2], c[3])))
        if best is not None:
            point, chosen = best[4], best[5]
        else:  # nothing runs everyone in time: each model's fastest member, and the point
            # that is fastest for the worst-off model
            fastest = {mdl.spec.name: {p: _fastest(mdl, p) for p in self.points}
                       for mdl in models}

            def worst(p: str) -> float:
                return max(mdl.lat[fastest[mdl.spec.name][p]][p] * mdl.load
                           * self._contention[p] / mdl.spec.target_ms for mdl in models)
            point = min(self.points, key=worst)
            chosen = {name: f[point] for name, f in fastest.items()}
        out = {}
        for mdl in models:
            m = chosen[mdl.spec.name]
            pred = mdl.lat[m][point] * mdl.load * self._contention[point]
            out[mdl.spec.name] = Decision(member=m, point=point, predicted_ms=pred,
                                          load=mdl.load, feasible=pred <= mdl.spec.target_ms)
        return point, out


def _fastest(mdl: _Model, point: str) -> str:
    """The fastest member at ``point`` that meets the accuracy floor (any if none does)."""
    floor = mdl.spec.accuracy_floor
    ok = [m for m in mdl.acc if floor is None or mdl.acc[m] >= floor] or list(mdl.acc)
    return min(ok, key=lambda m: mdl.lat[m][point])
