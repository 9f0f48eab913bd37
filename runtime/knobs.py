"""Hardware knobs: named operating points that a device can be switched between.

A :class:`Knob` exposes a fixed list of :class:`OperatingPoint` s (threads and core affinity,
a CPU frequency, a GPU clock ...), applies one by name and restores the state it found::

    knob = CombinedKnob([ThreadsKnob(), CpufreqKnob()])
    for point in knob.points():          # "t1-cpu0+f1200MHz", "t2-cpu0,1+f1200MHz", ...
        knob.apply(point.name)
        ...                              # measure
    knob.restore()

Measurements and the runtime manager then cover member x operating point, as a table of
plain JSON (see :func:`validate_point_table`)::

    {"energy_source": "rapl" | "nvml" | "model:<name>",
     "members": {member_id: {point_name: {"latency_ms": float,
                                          "energy_mj": float | None,
                                          "power_w": float | None}}},
     "points": [{"name": ..., "settings": {...}}, ...],
     "meta": {...}}                      # optional: how it was measured or modelled

Knobs change the machine (threads of this process, cpufreq sysfs, NVML clocks); a knob
that cannot work here raises :class:`KnobUnavailable` at construction with the reason, so
a caller can fall back to fewer knobs. This module imports nothing from the other
switchnas packages; torch and pynvml are imported where they are used.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .files import atomic_write_text

__all__ = [
    "CPUFREQ_ROOT",
    "CombinedKnob",
    "CpufreqKnob",
    "Knob",
    "KnobUnavailable",
    "NvmlKnob",
    "OperatingPoint",
    "ThreadsKnob",
    "cpu_list",
    "frequency_name",
    "load_point_table",
    "save_point_table",
    "validate_point_table",
]

#: Where Linux exposes cpufreq (``cpu<N>/cpufreq/scaling_*``).
CPUFREQ_ROOT = "/sys/devices/system/cpu"


class KnobUnavailable(RuntimeError):
    """This machine cannot offer the knob (no sysfs tree, not writable, no NVML ...);
    the message says why."""


@dataclass(frozen=True)
class OperatingPoint:
    """One setting of a knob: a unique, stable name and its settings as plain JSON.

    Attributes:
        name: unique within its knob and stable across runs on the same machine
            (``"t2-cpu0,1"``, ``"f1200MHz"``, ``"t1-cpu0+f1200MHz"``).
        settings: what applying it sets, as JSON-able values
            (``{"threads": 2, "cpus": [0, 1], "freq_khz": 1200000}``).
    """

    name: str
    settings: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or self.name != self.name.strip():
            raise ValueError(f"an operating point needs a non-empty name without surrounding "
                             f"spaces, got {self.name!r}")

    def to_dict(self) -> dict[str, Any]:
        """``{"name": ..., "settings": {...}}`` (plain JSON)."""
        return {"name": self.name, "settings": dict(self.settings)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OperatingPoint:
        """The inverse of :meth:`to_dict`.

        Raises:
            ValueError: ``data`` has no string ``name`` or its ``settings`` is not a mapping.
        """
        if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
            raise ValueError(f"an operating point is {{'name': str, 'settings': {{...}}}}, "
                             f"got {data!r}")
        settings = data.get("settings", {})
        if not isinstance(settings, Mapping):
            raise ValueError(f"operating point {data['name']!r}: settings must be a mapping, "
                             f"got {settings!r}")
        return cls(name=data["name"], settings=dict(settings))


@runtime_checkable
class Knob(Protocol):
    """Something that switches a device between operating points.

    ``name`` says what it turns (``"threads"``, ``"cpufreq"``, ``"nvml"``, or the parts of a
    :class:`CombinedKnob` joined with ``"+"``).
    """

    name: str

    def points(self) -> list[OperatingPoint]:
        """Every point :meth:`apply` accepts (in no promised order), names unique."""
        ...

    def current(self) -> OperatingPoint:
        """The point the device is at now; a point outside :meth:`points` (state set by
        someone else) comes back with a descriptive name of its own."""
        ...

    def apply(self, point: OperatingPoint | str) -> None:
        """Switch to ``point`` (or the point of that name).

        Raises:
            ValueError: the name is not one of :meth:`points` (the message lists them).
        """
        ...

    def restore(self) -> None:
        """Put back the state the knob found at construction."""
        ...


def _resolve(knob_name: str, points: Sequence[OperatingPoint],
             point: OperatingPoint | str) -> OperatingPoint:
    """The point of ``points`` named like ``point``; ValueError listing the names if none."""
    name = point.name if isinstance(point, OperatingPoint) else point
    for p in points:
        if p.name == name:
            if isinstance(point, OperatingPoint) and dict(point.settings) != dict(p.settings):
                raise ValueError(f"{knob_name}: operating point {name!r} has settings "
                                 f"{dict(p.settings)}, got {dict(point.settings)}")
            return p
    names = [p.name for p in points]
    raise ValueError(f"{knob_name}: unknown operating point {name!r}; allowed: {names}")


def cpu_list(cpus: Sequence[int]) -> str:
    """CPU ids as a short stable string: ``[0, 1]`` -> ``"0,1"``, ``[0, 1, 2, 3]`` -> ``"0-3"``
    (runs of three or more collapse to a range)."""
    ids = sorted(set(int(c) for c in cpus))
    parts: list[str] = []
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        if j - i >= 2:
            parts.append(f"{ids[i]}-{ids[j]}")
        else:
            parts.extend(str(c) for c in ids[i:j + 1])
        i = j + 1
    return ",".join(parts)


def _allowed_cpus() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


class ThreadsKnob:
    """Intra-op threads (``torch.set_num_threads``) and the CPU affinity of this process.

    Point ``"t<k>-cpu<list>"`` runs ``k`` threads on the CPUs listed, chosen among those this
    process was allowed at construction by ``placement``:

    * ``"first"``: the first ``k`` CPUs (one point per thread count);
    * ``"windows"``: every run of ``k`` neighbouring allowed CPUs (``t1-cpu0``, ``t1-cpu1``,
      ...), so a manager can move inference away from the cores a co-runner holds;
    * ``"all"``: every point keeps all allowed CPUs (threads only).

    The affinity is set on every thread of the process (``/proc/self/task``), so torch's
    already started worker threads move too; threads started later inherit it. OpenMP
    thread counts are per calling thread: a worker thread that runs inference must call
    ``torch.set_num_threads`` itself (``settings["threads"]``).

    Args:
        threads: the thread counts offered (default 1 .. number of allowed CPUs).
        placement: ``"first"``, ``"windows"`` or ``"all"``.

    Raises:
        ValueError: a thread count outside 1 .. number of allowed CPUs, or an unknown
            placement.
    """

    name = "threads"

    def __init__(self, *, threads: Sequence[int] | None = None,
                 placement: str = "first") -> None:
        import torch

        if placement not in ("first", "windows", "all"):
            raise ValueError(f"threads knob: placement must be 'first', 'windows' or 'all', "
                             f"got {placement!r}")
        self.cpus = _allowed_cpus()
        n = len(self.cpus)
        counts = list(range(1, n + 1)) if threads is None else sorted(set(threads))
        bad = [t for t in counts if isinstance(t, bool) or not isinstance(t, int)
               or not 1 <= t <= n]
        if bad or not counts:
            raise ValueError(f"threads knob: thread counts must be integers in 1..{n} (the "
                             f"CPUs this process may use: {self.cpus}), got {list(threads or [])}")
        self.placement = placement
        self._points: list[OperatingPoint] = []
        for t in counts:
            if placement == "first":
                self._points.append(self._point(t, self.cpus[:t]))
            elif placement == "all":
                self._points.append(self._point(t, self.cpus))
            else:
                self._points += [self._point(t, self.cpus[i:i + t])
                                 for i in range(n - t + 1)]
        self._initial = (torch.get_num_threads(), sorted(self.cpus))

    @staticmethod
    def _point(threads: int, cpus: Sequence[int]) -> OperatingPoint:
        return OperatingPoint(name=f"t{threads}-cpu{cpu_list(cpus)}",
                              settings={"threads": threads, "cpus": sorted(cpus)})

    def points(self) -> list[OperatingPoint]:
        """The points, fewest threads first (then by first CPU)."""
        return list(self._points)

    def current(self) -> OperatingPoint:
        """Threads of the calling thread and the affinity of this process now."""
        import torch

        return self._point(torch.get_num_threads(), _allowed_cpus())

    def apply(self, point: OperatingPoint | str) -> None:
        """Set the thread count and the affinity of every thread of the process.

        Raises:
            ValueError: unknown point (the message lists the allowed names).
        """
        p = _resolve(self.name, self._points, point)
        self._set(int(p.settings["threads"]), list(p.settings["cpus"]))

    def restore(self) -> None:
        """Thread count and affinity as at construction."""
        self._set(*self._initial)

    @staticmethod
    def _set(threads: int, cpus: list[int]) -> None:
        import torch

        torch.set_num_threads(threads)
        if not hasattr(os, "sched_setaffinity"):
            return
        tasks = [0]
        with contextlib.suppress(OSError):
            tasks += [int(t) for t in os.listdir("/proc/self/task")]
        for tid in tasks:
            try:
                os.sched_setaffinity(tid, cpus)
            except ProcessLookupError:  # a thread that ended meanwhile
                continue


class CpufreqKnob:
    """CPU frequency through Linux cpufreq: the ``userspace`` governor and ``scaling_setspeed``.

    Points ``"f<MHz>MHz"`` are the frequencies in ``scaling_available_frequencies`` common to
    the CPUs, or, where a driver lists none (intel_pstate, cppc), ``steps`` frequencies evenly
    spaced from ``cpuinfo_min_freq`` to ``cpuinfo_max_freq``. Applying a point switches each
    CPU's governor to ``userspace`` and writes the frequency (kHz) to ``scaling_setspeed``;
    :meth:`restore` writes back each CPU's governor (and its setspeed when it was already
    ``userspace``). Writing needs root; many VMs and containers expose no cpufreq at all.

    Args:
        root: the cpu folder (``/sys/devices/system/cpu``; a fake tree in tests).
        cpus: the CPUs to control (default: those this process may run on).
        steps: number of frequencies when the driver lists none (at least 2).

    Raises:
        KnobUnavailable: no cpufreq tree for a CPU, no ``userspace`` governor, or the files
            are not writable by this process (the message names the path).
        ValueError: ``steps`` < 2 or an empty ``cpus``.
    """

    name = "cpufreq"

    def __init__(self, *, root: str | Path = CPUFREQ_ROOT, cpus: Sequence[int] | None = None,
                 steps: int = 5) -> None:
        if steps < 2:
            raise ValueError(f"cpufreq knob: steps must be >= 2, got {steps}")
        self.root = Path(root)
        self.cpus = sorted(set(int(c) for c in (_allowed_cpus() if cpus is None else cpus)))
        if not self.cpus:
            raise ValueError("cpufreq knob: cpus must name at least one CPU")
        freq_sets = []
        for cpu in self.cpus:
            d = self._dir(cpu)
            gov = d / "scaling_governor"
            if not gov.is_file():
                raise KnobUnavailable(f"cpufreq knob: {gov} does not exist: this machine or VM "
                                      "exposes no cpufreq for that CPU")
            available = _read_optional(d / "scaling_available_governors")
            if available is not None and "userspace" not in available.split():
                raise KnobUnavailable(f"cpufreq knob: CPU {cpu} has no userspace governor "
                                      f"(available: {available}); the driver may not allow "
                                      "setting a frequency")
            for f in (gov, d / "scaling_setspeed"):
                if not os.access(f, os.W_OK):
                    raise KnobUnavailable(f"cpufreq knob: {f} is not writable by this process "
                                          "(cpufreq needs root)")
            freq_sets.append(self._frequencies(d, steps))
        common = sorted(set.intersection(*(set(f) for f in freq_sets)))
        if not common:
            raise KnobUnavailable(f"cpufreq knob: CPUs {self.cpus} share no frequency "
                                  f"(per CPU: {[sorted(f) for f in freq_sets]})")
        self._points = [OperatingPoint(name=frequency_name(f), settings={"freq_khz": f})
                        for f in common]
        self._initial = {cpu: self._state(cpu) for cpu in self.cpus}

    def _dir(self, cpu: int) -> Path:
        return self.root / f"cpu{cpu}" / "cpufreq"

    @staticmethod
    def _frequencies(d: Path, steps: int) -> list[int]:
        listed = _read_optional(d / "scaling_available_frequencies")
        try:
            if listed:
                return sorted({int(x) for x in listed.split()})
            lo = int(_read(d / "cpuinfo_min_freq"))
            hi = int(_read(d / "cpuinfo_max_freq"))
        except (OSError, ValueError) as exc:
            raise KnobUnavailable(f"cpufreq knob: cannot read the frequencies under {d} "
                                  f"({type(exc).__name__}: {exc})") from exc
        if hi <= lo:
            return [lo]
        # evenly spaced, rounded to 1 MHz so names stay short and stable
        return sorted({int(round((lo + (hi - lo) * i / (steps - 1)) / 1000) * 1000)
                       for i in range(steps)} | {lo, hi})

    def _state(self, cpu: int) -> tuple[str, str | None]:
        d = self._dir(cpu)
        gov = _read(d / "scaling_governor")
        speed = _read_optional(d / "scaling_setspeed") if gov == "userspace" else None
        return gov, speed

    def points(self) -> list[OperatingPoint]:
        """One point per frequency, lowest first."""
        return list(self._points)

    def current(self) -> OperatingPoint:
        """The frequency now: the setspeed under ``userspace``, otherwise the first CPU's
        ``scaling_cur_freq`` with the governor in the name (``"ondemand@f1800MHz"``)."""
        d = self._dir(self.cpus[0])
        gov = _read(d / "scaling_governor")
        speed = _read_optional(d / "scaling_setspeed") if gov == "userspace" else None
        if speed is not None and speed.isdigit():
            khz = int(speed)
            for p in self._points:
                if p.settings["freq_khz"] == khz:
                    return p
            return OperatingPoint(name=frequency_name(khz), settings={"freq_khz": khz})
        cur = _read_optional(d / "scaling_cur_freq")
        khz_now = int(cur) if cur and cur.isdigit() else None
        label = frequency_name(khz_now) if khz_now is not None else "unknown"
        return OperatingPoint(name=f"{gov}@{label}",
                              settings={"governor": gov, "freq_khz": khz_now})

    def apply(self, point: OperatingPoint | str) -> None:
        """``userspace`` governor and the point's frequency on every controlled CPU.

        Raises:
            ValueError: unknown point (the message lists the allowed frequencies).
            PermissionError: a write was refused (the message names the file).
        """
        p = _resolve(self.name, self._points, point)
        khz = str(int(p.settings["freq_khz"]))
        for cpu in self.cpus:
            d = self._dir(cpu)
            if _read(d / "scaling_governor") != "userspace":
                _write(d / "scaling_governor", "userspace")
            _write(d / "scaling_setspeed", khz)

    def restore(self) -> None:
        """Each CPU's governor (and setspeed, if it was ``userspace``) as at construction."""
        for cpu, (gov, speed) in self._initial.items():
            d = self._dir(cpu)
            if gov == "userspace" and speed is not None and speed.isdigit():
                _write(d / "scaling_setspeed", speed)
            _write(d / "scaling_governor", gov)


def frequency_name(khz: int) -> str:
    """The point name of a frequency: ``1200000`` kHz -> ``"f1200MHz"``, ``1234567`` ->
    ``"f1234.567MHz"`` (exact, so distinct frequencies never share a name)."""
    khz = int(khz)
    frac = f"{khz % 1000:03d}".rstrip("0")
    return f"f{khz // 1000}.{frac}MHz" if frac else f"f{khz // 1000}MHz"


def _read(path: Path) -> str:
    return path.read_text(encoding="ascii").strip()


def _read_optional(path: Path) -> str | None:
    try:
        return _read(path)
    except OSError:
        return None


def _write(path: Path, value: str) -> None:
    try:
        with open(path, "w", encoding="ascii") as f:  # sysfs: one write, no temp file
            f.write(value)
    except PermissionError as exc:
        raise PermissionError(f"cannot write {value!r} to {path}: {exc.strerror} "
                              "(cpufreq needs root)") from exc
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write {value!r} to {path}: {exc.strerror} (the "
                      "driver refused the value)") from exc


class NvmlKnob:
    """GPU clocks or the power limit of one NVIDIA GPU through NVML (``pynvml``).

    ``mode="clocks"``: points ``"g<MHz>MHz"`` lock the graphics clock
    (``nvmlDeviceSetGpuLockedClocks``) to up to ``max_points`` of the supported clocks, evenly
    chosen from lowest to highest; :meth:`restore` resets the lock. ``mode="power"``: points
    ``"p<W>W"`` set the power limit to ``max_points`` values from the allowed minimum to the
    maximum; :meth:`restore` sets the limit found at construction. Both usually need root
    (or an administrator's permission on the GPU); where NVML refuses, :meth:`apply` raises
    ``PermissionError`` naming the call.

    Args:
        index: the GPU's NVML index.
        mode: ``"clocks"`` or ``"power"``.
        max_points: how many points to offer (at least 2).

    Raises:
        KnobUnavailable: pynvml is not installed, NVML does not start, or the GPU reports no
            supported clocks / power-limit range.
        ValueError: an unknown ``mode`` or ``max_points`` < 2.
    """

    name = "nvml"

    def __init__(self, *, index: int = 0, mode: str = "clocks", max_points: int = 6) -> None:
        if mode not in ("clocks", "power"):
            raise ValueError(f"nvml knob: mode must be 'clocks' or 'power', got {mode!r}")
        if max_points < 2:
            raise ValueError(f"nvml knob: max_points must be >= 2, got {max_points}")
        try:
            import pynvml
        except ImportError as exc:
            raise KnobUnavailable("nvml knob: pynvml is not installed "
                                  "(pip install 'nvidia-ml-py>=12')") from exc
        self._nvml: Any = pynvml
        self.mode = mode
        self.index = index
        try:
            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            if mode == "clocks":
                mem = max(pynvml.nvmlDeviceGetSupportedMemoryClocks(self._handle))
                clocks = sorted(set(pynvml.nvmlDeviceGetSupportedGraphicsClocks(
                    self._handle, mem)))
                chosen = _spread(clocks, max_points)
                self._points = [OperatingPoint(name=f"g{c}MHz",
                                               settings={"gpu_clock_mhz": int(c)})
                                for c in chosen]
                self._initial: Any = None
            else:
                lo, hi = pynvml.nvmlDeviceGetPowerManagementLimitConstraints(self._handle)
                watts = sorted({int(round((lo + (hi - lo) * i / (max_points - 1)) / 1000))
                                for i in range(max_points)})
                self._points = [OperatingPoint(name=f"p{w}W",
                                               settings={"power_limit_w": w})
                                for w in watts]
                self._initial = int(pynvml.nvmlDeviceGetPowerManagementLimit(self._handle))
        except Exception as exc:  # noqa: BLE001 - any NVML failure means no knob
            raise KnobUnavailable(f"nvml knob: NVML cannot offer {mode} on GPU {index}: "
                                  f"{type(exc).__name__}: {exc}") from exc
        if not self._points:
            raise KnobUnavailable(f"nvml knob: GPU {index} reports no supported {mode}")
        self._applied: OperatingPoint | None = None

    def points(self) -> list[OperatingPoint]:
        """The offered clocks or power limits, lowest first."""
        return list(self._points)

    def current(self) -> OperatingPoint:
        """The point last applied, or the GPU's state now (``"g-auto@<MHz>MHz"`` /
        ``"p<W>W"``)."""
        if self._applied is not None:
            return self._applied
        nvml = self._nvml
        if self.mode == "clocks":
            mhz = int(nvml.nvmlDeviceGetClockInfo(self._handle, nvml.NVML_CLOCK_GRAPHICS))
            return OperatingPoint(name=f"g-auto@{mhz}MHz",
                                  settings={"gpu_clock_mhz": None, "observed_mhz": mhz})
        w = int(round(nvml.nvmlDeviceGetPowerManagementLimit(self._handle) / 1000))
        return OperatingPoint(name=f"p{w}W", settings={"power_limit_w": w})

    def apply(self, point: OperatingPoint | str) -> None:
        """Lock the clock / set the power limit.

        Raises:
            ValueError: unknown point (the message lists the allowed names).
            PermissionError: NVML refused (no permission or not supported on this GPU).
        """
        p = _resolve(self.name, self._points, point)
        if self.mode == "clocks":
            c = int(p.settings["gpu_clock_mhz"])
            self._call("nvmlDeviceSetGpuLockedClocks", self._handle, c, c)
        else:
            self._call("nvmlDeviceSetPowerManagementLimit", self._handle,
                       int(p.settings["power_limit_w"]) * 1000)
        self._applied = p

    def restore(self) -> None:
        """Clocks unlocked, or the power limit found at construction."""
        if self.mode == "clocks":
            self._call("nvmlDeviceResetGpuLockedClocks", self._handle)
        else:
            self._call("nvmlDeviceSetPowerManagementLimit", self._handle, self._initial)
        self._applied = None

    def _call(self, fn: str, *args: Any) -> None:
        try:
            getattr(self._nvml, fn)(*args)
        except self._nvml.NVMLError as exc:
            raise PermissionError(f"nvml knob: {fn}{args[1:]} on GPU {self.index} refused: "
                                  f"{exc} (needs root or an unrestricted GPU)") from exc


def _spread(values: Sequence[int], k: int) -> list[int]:
    """Up to ``k`` of the sorted ``values``, evenly spaced, both ends included."""
    if len(values) <= k:
        return list(values)
    return sorted({values[round(i * (len(values) - 1) / (k - 1))] for i in range(k)})


class CombinedKnob:
    """Several knobs turned together: points are the product of theirs, names joined with
    ``"+"`` (``"t2-cpu0,1+f1200MHz"``) and settings merged.

    Knobs are applied in the given order and restored in reverse.

    Args:
        knobs: at least one knob; their setting keys must not overlap.

    Raises:
        ValueError: no knobs, or two knobs' points share a settings key.
    """

    def __init__(self, knobs: Sequence[Knob]) -> None:
        self.knobs = list(knobs)
        if not self.knobs:
            raise ValueError("CombinedKnob needs at least one knob")
        self.name = "+".join(k.name for k in self.knobs)
        per_knob = [k.points() for k in self.knobs]
        keys = [set().union(*(p.settings.keys() for p in pts)) for pts in per_knob]
        for (i, a), (j, b) in itertools.combinations(enumerate(keys), 2):
            if a & b:
                raise ValueError(f"CombinedKnob: knobs {self.knobs[i].name!r} and "
                                 f"{self.knobs[j].name!r} both set {sorted(a & b)}")
        self._parts: dict[str, tuple[OperatingPoint, ...]] = {}
        self._points: list[OperatingPoint] = []
        for combo in itertools.product(*per_knob):
            merged: dict[str, Any] = {}
            for p in combo:
                merged.update(p.settings)
            point = OperatingPoint(name="+".join(p.name for p in combo), settings=merged)
            self._parts[point.name] = combo
            self._points.append(point)

    def points(self) -> list[OperatingPoint]:
        """The product of the knobs' points (the first knob varies slowest)."""
        return list(self._points)

    def current(self) -> OperatingPoint:
        """The knobs' current points joined."""
        now = [k.current() for k in self.knobs]
        merged: dict[str, Any] = {}
        for p in now:
            merged.update(p.settings)
        return OperatingPoint(name="+".join(p.name for p in now), settings=merged)

    def apply(self, point: OperatingPoint | str) -> None:
        """Apply each knob's part, in order.

        Raises:
            ValueError: unknown point (the message lists the allowed names).
        """
        p = _resolve(self.name, self._points, point)
        for knob, part in zip(self.knobs, self._parts[p.name], strict=True):
            knob.apply(part)

    def restore(self) -> None:
        """Restore every knob, last first."""
        for knob in reversed(self.knobs):
            knob.restore()


def validate_point_table(table: Mapping[str, Any]) -> dict[str, Any]:
    """Check a member x operating-point table and return it as a plain dict.

    Args:
        table: ``{"energy_source": "rapl" | "nvml" | "model:<name>", "members": {member_id:
            {point_name: {"latency_ms": float, "energy_mj": float | None,
            "power_w": float | None}}}, "points": [{"name": ..., "settings": {...}}]}``.

    Returns:
        A copy with members' ids as strings and numbers as floats.

    Raises:
        ValueError: a missing or unknown key, an energy source other than the three kinds, a
            member without an entry for some point, a point not in ``points``, or a latency /
            energy / power that is not a finite number >= 0 (latency > 0).
    """
    if not isinstance(table, Mapping):
        raise ValueError(f"an operating-point table is a mapping, got {type(table).__name__}")
    extra = set(table) - {"energy_source", "members", "points", "meta"}
    missing = {"energy_source", "members", "points"} - set(table)
    if extra or missing:
        raise ValueError(f"operating-point table: missing keys {sorted(missing)}, unknown "
                         f"keys {sorted(extra)}; allowed: energy_source, members, points, "
                         "meta (optional)")
    meta = table.get("meta", {})
    if not isinstance(meta, Mapping):
        raise ValueError(f"operating-point table: meta must be a mapping, got {meta!r}")
    source = table["energy_source"]
    if not isinstance(source, str) or not (
            source in ("rapl", "nvml") or (source.startswith("model:") and len(source) > 6)):
        raise ValueError(f"operating-point table: energy_source must be 'rapl', 'nvml' or "
                         f"'model:<name>', got {source!r}")
    points = [OperatingPoint.from_dict(p) for p in table["points"]]
    names = [p.name for p in points]
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"operating-point table: point names must be unique and non-empty, "
                         f"got {names}")
    members: dict[str, dict[str, dict[str, float | None]]] = {}
    if not isinstance(table["members"], Mapping) or not table["members"]:
        raise ValueError("operating-point table: members must be a non-empty mapping")
    for mid, row in table["members"].items():
        if not isinstance(row, Mapping) or set(row) != set(names):
            got = sorted(row) if isinstance(row, Mapping) else row
            raise ValueError(f"operating-point table: member {mid!r} must have an entry for "
                             f"every point {names}, got {got}")
        members[str(mid)] = {}
        for pname, cell in row.items():
            if not isinstance(cell, Mapping) or set(cell) - {"latency_ms", "energy_mj",
                                                             "power_w"}:
                raise ValueError(f"operating-point table: member {mid!r} at {pname!r} must be "
                                 f"{{latency_ms, energy_mj, power_w}}, got {cell!r}")
            out: dict[str, float | None] = {}
            for key in ("latency_ms", "energy_mj", "power_w"):
                v = cell.get(key)
                if v is None and key != "latency_ms":
                    out[key] = None
                    continue
                ok = (not isinstance(v, bool) and isinstance(v, (int, float))
                      and math.isfinite(v) and (v > 0 if key == "latency_ms" else v >= 0))
                if not ok:
                    raise ValueError(f"operating-point table: member {mid!r} at {pname!r}: "
                                     f"{key} must be a finite number "
                                     f"{'> 0' if key == 'latency_ms' else '>= 0 or null'}, "
                                     f"got {v!r}")
                out[key] = float(v)  # type: ignore[arg-type]
            members[str(mid)][pname] = out
    out_table: dict[str, Any] = {"energy_source": source, "members": members,
                                 "points": [p.to_dict() for p in points]}
    if "meta" in table:
        out_table["meta"] = dict(meta)
    return out_table


def save_point_table(table: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Validate ``table`` (:func:`validate_point_table`) and write it as JSON, atomically
    (a temporary file in the same folder, then ``os.replace``).

    Returns:
        The path written.

    Raises:
        ValueError: as :func:`validate_point_table`, or the table is not plain JSON.
    """
    import json

    data = validate_point_table(table)
    target = Path(path)
    try:
        text = json.dumps(data, indent=1, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"operating-point table is not plain JSON: {exc}") from exc
    atomic_write_text(target, text + "\n")
    return target


def load_point_table(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a table written by :func:`save_point_table`.

    Raises:
        ValueError: the file is not JSON or not a valid table (the message names the file).
        OSError: the file cannot be read.
    """
    import json

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return validate_point_table(data)
    except (json.JSONDecodeError, ValueError) as exc:
        raise ValueError(f"{path}: not a valid operating-point table: {exc}") from exc
