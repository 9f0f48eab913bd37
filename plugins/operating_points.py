"""Member x operating-point tables: latency (and energy) of every member at every point.

:func:`measure_operating_points` measures sub-networks on a plugin that has operating points
(``operating_points()`` / ``set_operating_point(name)``, e.g. ``cpu``: threads, affinity and
cpufreq) and returns the table that ``switchnas simulate`` and the runtime manager read
(:func:`switchnas.runtime.knobs.validate_point_table`)::

    table = measure_operating_points(CPUPlugin(), {"m0": (net0, x), "m1": (net1, x)})
    table["members"]["m0"]["t1-cpu0"]   # {"latency_ms": 7.9, "energy_mj": ..., "power_w": ...}

Energy comes from a counter where one is readable (RAPL, NVML) and from a
:class:`~switchnas.runtime.energy.PowerModel` otherwise; the table's ``energy_source`` says
which (``"rapl"``, ``"nvml"``, ``"model:<name>"``), so modelled numbers are never mistaken
for measured ones.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from switchnas.runtime.energy import (
    POWERCAP_ROOT,
    EnergyMeter,
    NvmlEnergyReader,
    PowerModel,
    RAPLReader,
    energy_per_call,
    get_power_model,
)
from switchnas.runtime.knobs import OperatingPoint, validate_point_table

from .batch import BatchPolicy, BatchResult, Timer, measure_batch, measure_workloads
from .measure import MeasurementError

__all__ = ["DEFAULT_POLICY", "measure_operating_points"]

#: The batch policy used when none is given: few rounds (rows are members x points), and a
#: warm-up run at each visit since a visit may follow a switch of threads or affinity.
DEFAULT_POLICY = BatchPolicy(rounds=6, max_rounds=10, warmup_runs=1, ci_rel=0.02,
                             max_seconds=120.0)


def _resolve_energy(energy: str, power_model: PowerModel | None, powercap_root: str,
                    nvml_index: int) -> tuple[str, EnergyMeter | None, PowerModel | None]:
    """The table's label and either a counter or a model."""
    if power_model is not None:
        if energy not in ("auto", power_model.energy_source):
            raise ValueError(f"energy={energy!r} does not match the given power model "
                             f"({power_model.energy_source!r}); pass energy='auto' or "
                             f"{power_model.energy_source!r}")
        return power_model.energy_source, None, power_model
    if energy == "auto":
        rapl = RAPLReader(powercap_root)
        if rapl.available:
            return "rapl", rapl, None
        model = get_power_model("generic")
        return model.energy_source, None, model
    if energy in ("rapl", "nvml"):
        meter: EnergyMeter = (RAPLReader(powercap_root) if energy == "rapl"
                              else NvmlEnergyReader(index=nvml_index))
        if not meter.available:
            raise ValueError(f"energy={energy!r}: {meter.reason}; use 'auto' or "
                             "'model:<name>' for a modelled energy")
        return energy, meter, None
    if energy.startswith("model:"):
        model = get_power_model(energy[len("model:"):])
        return model.energy_source, None, model
    raise ValueError(f"energy must be 'auto', 'rapl', 'nvml' or 'model:<name>', got {energy!r}")


def _select_points(plugin: Any, points: Sequence[str | OperatingPoint] | None
                   ) -> list[OperatingPoint]:
    for attr in ("operating_points", "set_operating_point"):
        if not callable(getattr(plugin, attr, None)):
            raise TypeError(f"hardware plugin {getattr(plugin, 'name', plugin)!r} has no "
                            f"{attr}(): it offers no operating points")
    offered: list[OperatingPoint] = list(plugin.operating_points())
    if points is None:
        return offered
    by_name = {p.name: p for p in offered}
    chosen: list[OperatingPoint] = []
    for p in points:
        name = p.name if isinstance(p, OperatingPoint) else p
        if name not in by_name:
            raise ValueError(f"unknown operating point {name!r}; the plugin offers "
                             f"{list(by_name)}")
        if by_name[name] not in chosen:
            chosen.append(by_name[name])
    if not chosen:
        raise ValueError("points must name at least one operating point")
    return chosen


def measure_operating_points(
        plugin: Any, workloads: Mapping[str, tuple[Any, Any]],
        points: Sequence[str | OperatingPoint] | None = None, *,
        energy: str = "auto", power_model: PowerModel | None = None,
        energy_seconds: float = 0.2, policy: BatchPolicy | None = None, passes: int = 2,
        powercap_root: str = POWERCAP_ROOT, nvml_index: int = 0,
        progress: bool = False) -> dict[str, Any]:
    """Latency and energy of every member at every operating point, as a table.

    Latency: where the plugin can ``prepare(module, example_input) -> Timer`` (the timing
    plugins), every (member, point) pair is a row of **one** interleaved batch
    (:func:`~switchnas.plugins.batch.measure_workloads`): each visit switches to its row's
    point first (outside the timed run; ``policy.warmup_runs`` runs follow the switch), so
    the machine's drift is shared by all points and divided out. Other plugins are measured
    point by point with :func:`~switchnas.plugins.batch.measure_batch`, the points visited
    in a different order in each of ``passes`` passes, and a row's latency is the median
    over passes. The plugin is put back with ``restore_operating_point()`` where it has one.

    Energy: ``"rapl"`` / ``"nvml"`` read the counter around ``energy_seconds`` of calls at
    each pair (``power_w`` is the average power of that phase); ``"model:<name>"`` (or a
    ``power_model``) computes ``power_w`` at the point's settings and ``energy_mj = power_w
    x latency_ms``; ``"auto"`` takes RAPL where readable, else the ``generic`` model.

    Args:
        plugin: a hardware plugin with ``operating_points()`` and ``set_operating_point()``.
        workloads: member id -> ``(module, example_input)``.
        points: the points (names or :class:`OperatingPoint`) to measure; default all.
        energy: ``"auto"``, ``"rapl"``, ``"nvml"`` or ``"model:<name>"`` (built-in models:
            :data:`switchnas.runtime.energy.POWER_MODELS`).
        power_model: a model of your own (then ``energy`` is ``"auto"`` or its label).
        energy_seconds: length of each counter phase.
        policy: the batch policy (default :data:`DEFAULT_POLICY`).
        passes: passes over the points for plugins without ``prepare`` (at least 1).
        powercap_root: the powercap folder (RAPL).
        nvml_index: the GPU (NVML).
        progress: print the batch's progress.

    Returns:
        ``{"energy_source", "members": {id: {point: {"latency_ms", "energy_mj",
        "power_w"}}}, "points": [...], "meta": {...}}``, validated by
        :func:`~switchnas.runtime.knobs.validate_point_table`; ``meta`` records the
        plugin's description, the protocol, the model's parameters and per-pair p10/p90.

    Raises:
        TypeError: the plugin has no operating points.
        ValueError: no workloads, an unknown point or energy source, an unreadable counter
            that was asked for by name, ``passes`` < 1 or ``energy_seconds`` < 0.
        MeasurementError: a (member, point) pair could not be measured (the message says
            which and why).
    """
    if not workloads:
        raise ValueError("workloads must map at least one member id to (module, input)")
    if passes < 1 or not energy_seconds >= 0:
        raise ValueError(f"need passes >= 1 and energy_seconds >= 0, got passes={passes}, "
                         f"energy_seconds={energy_seconds}")
    chosen = _select_points(plugin, points)
    label, meter, model = _resolve_energy(energy, power_model, powercap_root, nvml_index)
    prepare = getattr(plugin, "prepare", None)
    name = str(getattr(plugin, "name", type(plugin).__name__))
    if meter is not None and not callable(prepare):
        raise ValueError(f"energy={label!r} needs a plugin with prepare() to run inferences "
                         f"in the energy phase; {name} has none: use a power model")
    pol = policy or DEFAULT_POLICY
    ids = [str(k) for k in workloads]
    if len(set(ids)) != len(ids):
        raise ValueError(f"member ids must be distinct as strings, got {list(workloads)}")
    pairs = list(workloads.values())
    training = [m for m, _ in pairs if getattr(m, "training", False) is True
                and callable(getattr(m, "train", None))]
    base_desc = {k: v for k, v in plugin.describe().items() if k != "operating_point"}
    spread: dict[str, dict[str, dict[str, float]]] = {i: {} for i in ids}
    latency: dict[tuple[int, int], float] = {}
    energies: dict[tuple[int, int], tuple[float | None, float | None]] = {}
    try:
        if callable(prepare):
            inner: list[Timer] = [prepare(m, x) for m, x in pairs]
            protocol = "interleaved-points"
            result = _interleaved(plugin, inner, chosen, pol, name, progress)
            for r, (i, j) in enumerate(_rows(len(ids), len(chosen))):
                m = result.measurements[r]
                if m is None:
                    raise MeasurementError(f"{name}: member {ids[i]!r} at point "
                                           f"{chosen[j].name!r} failed: {result.failures[r]}")
                latency[i, j] = m.median_ms
                spread[ids[i]][chosen[j].name] = {"p10_ms": m.p10_ms, "p90_ms": m.p90_ms}
        else:
            inner = []
            protocol = "per-point"
            _per_point(plugin, pairs, ids, chosen, pol, passes, name, progress, latency,
                       spread)
        if meter is not None:
            for j, point in enumerate(chosen):
                plugin.set_operating_point(point.name)
                for i in range(len(ids)):
                    e, info = energy_per_call(inner[i], meter, seconds=energy_seconds)
                    if e is None:
                        raise MeasurementError(f"{name}: no energy for member {ids[i]!r} at "
                                               f"{point.name!r}: {info['energy_unavailable']}")
                    energies[i, j] = (e, info.get("avg_power_w"))
        elif model is not None:
            for (i, j), lat in latency.items():
                w = model.point_power_w(chosen[j].settings)
                energies[i, j] = (w * lat, w)
    finally:
        restore = getattr(plugin, "restore_operating_point", None)
        if callable(restore):
            restore()
        for mod in training:
            mod.train()
    members = {ids[i]: {chosen[j].name: {"latency_ms": latency[i, j],
                                         "energy_mj": energies[i, j][0],
                                         "power_w": energies[i, j][1]}
                        for j in range(len(chosen))} for i in range(len(ids))}
    meta: dict[str, Any] = {"plugin": base_desc, "protocol": protocol,
                            "policy": pol.to_dict(), "spread": spread}
    if model is not None:
        meta["power_model"] = model.to_dict()
    else:
        meta["energy_seconds"] = energy_seconds
    return validate_point_table({"energy_source": label, "members": members,
                                 "points": [p.to_dict() for p in chosen], "meta": meta})


def _rows(n_members: int, n_points: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(n_members) for j in range(n_points)]


def _interleaved(plugin: Any, inner: Sequence[Timer], points: Sequence[OperatingPoint],
                 pol: BatchPolicy, name: str, progress: bool) -> BatchResult:
    """One batch whose rows are (member, point); each call switches the calling thread (and
    the process's affinity) to its row's point first, when that thread is elsewhere."""
    at: dict[int, str] = {}  # thread id -> point it was last switched to
    lock = threading.Lock()

    def timer_for(i: int, point: str) -> Timer:
        def timer() -> float:
            tid = threading.get_ident()
            with lock:
                if at.get(tid) != point:
                    plugin.set_operating_point(point)
                    at[tid] = point
            return inner[i]()
        return timer

    timers = [timer_for(i, points[j].name) for i, j in _rows(len(inner), len(points))]

    def prep(row: Any, _x: Any) -> Timer:
        return timers[int(row)]

    # rows are indices: measure_workloads sees no modules (training modes are ours to keep)
    return measure_workloads(prep, [(r, None) for r in range(len(timers))], policy=pol,
                             name=name, progress=progress)


def _per_point(plugin: Any, pairs: Sequence[tuple[Any, Any]], ids: Sequence[str],
               points: Sequence[OperatingPoint], pol: BatchPolicy, passes: int, name: str,
               progress: bool, latency: dict[tuple[int, int], float],
               spread: dict[str, dict[str, dict[str, float]]]) -> None:
    """Point by point, in a rotated order per pass; the median over passes per pair."""
    got: dict[tuple[int, int], list[float]] = {}
    for k in range(passes):
        order = [(j + k) % len(points) for j in range(len(points))]
        if k % 2:
            order.reverse()
        for j in order:
            plugin.set_operating_point(points[j].name)
            res = measure_batch(plugin, list(pairs), policy=pol, progress=progress)
            for i, m in enumerate(res.measurements):
                if m is None:
                    raise MeasurementError(f"{name}: member {ids[i]!r} at point "
                                           f"{points[j].name!r} failed: {res.failures[i]}")
                got.setdefault((i, j), []).append(m.median_ms)
    for (i, j), values in got.items():
        latency[i, j] = float(np.median(values))
        spread[ids[i]][points[j].name] = {"p10_ms": float(np.percentile(values, 10)),
                                          "p90_ms": float(np.percentile(values, 90))}
