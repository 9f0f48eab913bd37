"""Energy where it can be read, modelled where not.

Three sources, each with the label that every result carries as ``energy_source``:

* ``"rapl"``: :class:`RAPLReader`, the CPU packages' counters under Linux powercap;
* ``"nvml"``: :class:`NvmlEnergyReader`, a GPU's total-energy counter;
* ``"model:<name>"``: :class:`PowerModel`, power per operating point from a documented
  voltage/frequency table (``P = C * V^2 * f`` per active core + static), times latency.

A counter (:class:`EnergyMeter`) is read around a stretch of back-to-back calls by
:func:`energy_per_call`. A model never reads the machine: its numbers describe the device
whose table it was given, which is why its label names the table.

This module imports nothing from the other switchnas packages.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "POWERCAP_ROOT",
    "POWER_MODELS",
    "EnergyMeter",
    "NvmlEnergyReader",
    "PowerModel",
    "RAPLReader",
    "energy_per_call",
    "expand_with_frequencies",
    "get_power_model",
]

#: Where Linux exposes RAPL energy counters.
POWERCAP_ROOT = "/sys/class/powercap"


@runtime_checkable
class EnergyMeter(Protocol):
    """A cumulative energy counter.

    ``energy_source`` is the label results carry (``"rapl"``, ``"nvml"``); ``available``
    says whether it can be read and ``reason`` why not.
    """

    energy_source: str

    @property
    def available(self) -> bool:
        """Whether the counter can be read."""
        ...

    @property
    def reason(self) -> str | None:
        """Why the counter cannot be read (``None`` when it can)."""
        ...

    def read(self) -> Any:
        """A reading of the counter, opaque: pass two to :meth:`delta_mj`."""
        ...

    def delta_mj(self, before: Any, after: Any) -> float:
        """Energy between two :meth:`read` readings (mJ)."""
        ...


class RAPLReader:
    """The energy counters of the CPU packages under Linux powercap (RAPL).

    Reads ``<root>/intel-rapl:<N>/energy_uj`` of every top-level zone (sub-zones such as
    ``intel-rapl:0:0`` are inside their package; a ``psys`` zone overlaps the packages and
    is left out). A counter wraps at its ``max_energy_range_uj``; :meth:`delta_uj` undoes
    one wrap between two readings. Since Linux 5.10 ``energy_uj`` is readable by root
    only, and most VMs expose no RAPL at all: then :attr:`reason` says why.

    Args:
        root: the powercap folder (a fake tree in tests).
    """

    energy_source = "rapl"

    def __init__(self, root: str | Path = POWERCAP_ROOT):
        self.root = Path(root)
        self.zones: list[Path] = []
        self.ranges: list[int] = []
        self.reason: str | None = None
        try:
            found = sorted(p for p in self.root.glob("intel-rapl:*")
                           if re.fullmatch(r"intel-rapl:\d+", p.name))
            zones = [p for p in found if _zone_name(p) != "psys"]
            for z in zones:
                self.ranges.append(int(_read_text(z / "max_energy_range_uj")))
                int(_read_text(z / "energy_uj"))
            self.zones = zones
        except (OSError, ValueError) as exc:
            self.zones, self.ranges = [], []
            self.reason = (f"RAPL energy counters under {self.root} are not readable "
                           f"({type(exc).__name__}: {exc}); since Linux 5.10 energy_uj is "
                           "readable by root only")
            return
        if not self.zones:
            self.reason = (f"no RAPL package zones (intel-rapl:<N>) under {self.root}: this "
                           "machine or VM does not expose RAPL")

    @property
    def available(self) -> bool:
        """Whether the counters can be read."""
        return bool(self.zones)

    def read_uj(self) -> list[int]:
        """The raw counter of every package zone (µJ)."""
        return [int(_read_text(z / "energy_uj")) for z in self.zones]

    def delta_uj(self, before: Sequence[int], after: Sequence[int]) -> int:
        """Energy between two :meth:`read_uj` readings (µJ), summed over the packages;
        a counter that went down wrapped once at its ``max_energy_range_uj``."""
        total = 0
        for b, a, top in zip(before, after, self.ranges, strict=True):
            total += a - b if a >= b else a + top - b
        return total

    def read(self) -> list[int]:
        """A reading for :meth:`delta_mj` (the packages' raw counters)."""
        return self.read_uj()

    def delta_mj(self, before: Any, after: Any) -> float:
        """Energy between two :meth:`read` readings (mJ), wraps undone per package."""
        return self.delta_uj(before, after) / 1e3


def _read_text(path: Path) -> str:
    return path.read_text(encoding="ascii").strip()


def _zone_name(zone: Path) -> str:
    try:
        return _read_text(zone / "name")
    except OSError:
        return ""


class NvmlEnergyReader:
    """The total-energy counter of one NVIDIA GPU (``nvmlDeviceGetTotalEnergyConsumption``,
    Volta and newer), through ``pynvml``; :attr:`reason` says why it is unavailable.

    Args:
        index: the GPU's NVML index.
        uuid: the GPU's UUID (with or without NVML's ``GPU-`` prefix), tried before
            ``index``: CUDA and NVML may number the GPUs differently (``torch`` reports a
            device's UUID). An unknown UUID falls back to ``index``.
    """

    energy_source = "nvml"

    def __init__(self, *, index: int = 0, uuid: str | None = None) -> None:
        self.index = index
        self.handle: Any = None
        self.reason: str | None = None
        self._nvml: Any = None
        try:
            import pynvml
        except ImportError:
            self.reason = "pynvml is not installed (pip install 'nvidia-ml-py>=12')"
            return
        try:
            pynvml.nvmlInit()
            if uuid is not None:
                name = uuid if uuid.startswith("GPU-") else f"GPU-{uuid}"
                try:
                    self.handle = pynvml.nvmlDeviceGetHandleByUUID(name)
                except Exception:  # noqa: BLE001 - UUID formats differ; use the index
                    self.handle = None
            if self.handle is None:
                self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
        except Exception as exc:  # noqa: BLE001 - any NVML failure means no energy
            self.handle = None
            self.reason = f"NVML energy counter unavailable: {type(exc).__name__}: {exc}"
        self._nvml = pynvml

    @property
    def available(self) -> bool:
        """Whether the counter can be read."""
        return self.handle is not None

    def read(self) -> float:
        """The counter since the driver loaded (mJ)."""
        return float(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))

    def delta_mj(self, before: Any, after: Any) -> float:
        """``after - before`` (the 64-bit counter does not wrap in practice)."""
        return float(after) - float(before)


def energy_per_call(run: Callable[[], Any], meter: EnergyMeter, *, seconds: float,
                    sync: Callable[[], Any] | None = None
                    ) -> tuple[float | None, dict[str, Any]]:
    """Energy per call of ``run`` (mJ), from ``meter`` read around ``seconds`` of calls.

    Args:
        run: one call (an inference).
        meter: the counter.
        seconds: how long to call ``run`` back to back (at least one call).
        sync: called before each reading (``torch.cuda.synchronize`` on GPUs).

    Returns:
        ``(energy_mj or None, info)``: ``info`` has ``energy_source``, ``energy_runs``,
        ``energy_s`` and ``avg_power_w``, or ``energy_unavailable`` saying why the energy is
        ``None`` (counter unreadable, or it did not advance).
    """
    label = meter.energy_source
    if not meter.available:
        return None, {"energy_source": label, "energy_unavailable": meter.reason}
    runs = 0
    if sync is not None:
        sync()
    e0, t0 = meter.read(), time.perf_counter()
    while runs == 0 or time.perf_counter() - t0 < seconds:
        run()
        runs += 1
    if sync is not None:
        sync()
    e1, t1 = meter.read(), time.perf_counter()
    delta = meter.delta_mj(e0, e1)
    if delta <= 0:
        return None, {"energy_source": label, "energy_runs": runs,
                      "energy_unavailable": f"{label.upper()} energy counter did not advance in "
                                            f"{t1 - t0:.3f} s (raise the energy phase)"}
    return delta / runs, {"energy_source": label, "energy_runs": runs,
                          "energy_s": round(t1 - t0, 4),
                          "avg_power_w": round(delta / 1e3 / max(t1 - t0, 1e-9), 3)}


@dataclass(frozen=True)
class PowerModel:
    """Power of a processor per operating point from its voltage/frequency table.

    Per active core, ``P = C * V(f)^2 * f + I_leak * V(f)``: the first term is the CMOS
    dynamic power with the kernel's ``dynamic-power-coefficient`` convention (``C`` in
    µW/MHz/V², ``f`` in MHz, ``V`` in volts: Linux
    ``Documentation/devicetree/bindings/arm/cpus.yaml``); the second is leakage, a current
    times the voltage. ``V(f)`` is interpolated linearly between the table's points (and
    clamped at its ends), so frequencies of another machine still map onto a voltage. Energy
    of one inference is power times its latency.

    Every number it produces describes the device of its table, not the machine it runs on:
    results carry ``energy_source = "model:<name>"``.

    Attributes:
        name: the table's name (the label's suffix).
        table: ``(freq_khz, microvolt)`` pairs, ascending in frequency.
        coefficient_uw_mhz_v2: ``C``.
        leakage_a: ``I_leak`` per core (A).
        uncore_w: power of the rest of the cluster while any core runs (W).
        source: where the numbers come from.
    """

    name: str
    table: tuple[tuple[int, int], ...]
    coefficient_uw_mhz_v2: float
    leakage_a: float = 0.0
    uncore_w: float = 0.0
    source: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", self.name):
            raise ValueError(f"a power model's name is letters, digits, '_', '.', '-', "
                             f"got {self.name!r}")
        freqs = [f for f, _ in self.table]
        if (len(self.table) < 1 or freqs != sorted(set(freqs))
                or any(f <= 0 or uv <= 0 for f, uv in self.table)):
            raise ValueError(f"power model {self.name!r}: the table needs (freq_khz, microvolt) "
                             f"pairs > 0 with strictly increasing frequencies, got {self.table}")
        for key in ("coefficient_uw_mhz_v2", "leakage_a", "uncore_w"):
            v = getattr(self, key)
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"power model {self.name!r}: {key} must be a finite number "
                                 f">= 0, got {v!r}")

    @property
    def energy_source(self) -> str:
        """``"model:<name>"``."""
        return f"model:{self.name}"

    @property
    def frequencies_khz(self) -> list[int]:
        """The table's frequencies."""
        return [f for f, _ in self.table]

    def voltage(self, freq_khz: float) -> float:
        """``V(f)`` in volts, interpolated in the table and clamped at its ends."""
        pts = self.table
        if freq_khz <= pts[0][0]:
            return pts[0][1] / 1e6
        for (f0, v0), (f1, v1) in zip(pts, pts[1:], strict=False):
            if freq_khz <= f1:
                return (v0 + (v1 - v0) * (freq_khz - f0) / (f1 - f0)) / 1e6
        return pts[-1][1] / 1e6

    def power_w(self, *, freq_khz: float | None = None, cores: int = 1) -> float:
        """Power (W) of ``cores`` busy cores at ``freq_khz`` (default: the table's highest).

        Raises:
            ValueError: ``cores`` < 1 or a frequency <= 0.
        """
        f = self.table[-1][0] if freq_khz is None else freq_khz
        if cores < 1 or not f > 0:
            raise ValueError(f"power model {self.name!r}: needs cores >= 1 and freq_khz > 0, "
                             f"got cores={cores}, freq_khz={freq_khz}")
        v = self.voltage(f)
        dynamic = self.coefficient_uw_mhz_v2 * v * v * (f / 1e3) / 1e6
        return cores * (dynamic + self.leakage_a * v) + self.uncore_w

    def point_power_w(self, settings: Mapping[str, Any]) -> float:
        """Power at an operating point's settings: ``freq_khz`` (default the highest) and
        ``threads`` busy cores (default 1)."""
        f = settings.get("freq_khz")
        return self.power_w(freq_khz=None if f is None else float(f),
                            cores=int(settings.get("threads", 1)))

    def energy_mj(self, latency_ms: float, settings: Mapping[str, Any]) -> float:
        """Energy of one inference of ``latency_ms`` at the point (mJ = W x ms)."""
        if not latency_ms >= 0:
            raise ValueError(f"latency_ms must be >= 0, got {latency_ms!r}")
        return self.point_power_w(settings) * latency_ms

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (what a table written with this model records)."""
        return {"name": self.name, "table": [list(p) for p in self.table],
                "coefficient_uw_mhz_v2": self.coefficient_uw_mhz_v2,
                "leakage_a": self.leakage_a, "uncore_w": self.uncore_w,
                "source": self.source}


_RK3399 = ("Linux arch/arm64/boot/dts/rockchip/rk3399-opp.dtsi (OPP table: opp-hz, "
           "opp-microvolt) and rk3399.dtsi (dynamic-power-coefficient)")

#: Built-in models. The RK3399 numbers are the mainline Linux device tree's; its leakage
#: is not documented there, so it is set to 10 % of the dynamic power at the highest
#: point (an assumption, stated in ``source``). ``generic`` is an explicitly made-up,
#: round-numbered table for when no device table applies.
POWER_MODELS: dict[str, PowerModel] = {
    "rk3399-a72": PowerModel(
        name="rk3399-a72",
        table=((408000, 825000), (600000, 825000), (816000, 825000), (1008000, 875000),
               (1200000, 950000), (1416000, 1025000), (1608000, 1100000),
               (1800000, 1200000)),
        coefficient_uw_mhz_v2=436.0,
        # 10 % of 436e-6 * 1.2^2 * 1800 W = 0.113 W at 1.2 V
        leakage_a=0.1 * 436e-6 * 1.2 ** 2 * 1800 / 1.2,
        source=f"Cortex-A72 cluster of the Rockchip RK3399: {_RK3399}; leakage assumed 10 % "
               "of dynamic power at 1.8 GHz"),
    "rk3399-a53": PowerModel(
        name="rk3399-a53",
        table=((408000, 800000), (600000, 800000), (816000, 850000), (1008000, 925000),
               (1200000, 1000000), (1416000, 1125000)),
        coefficient_uw_mhz_v2=100.0,
        leakage_a=0.1 * 100e-6 * 1.125 ** 2 * 1416 / 1.125,
        source=f"Cortex-A53 cluster of the Rockchip RK3399: {_RK3399}; leakage assumed 10 % "
               "of dynamic power at 1.416 GHz"),
    "generic": PowerModel(
        name="generic",
        table=((800000, 700000), (1600000, 850000), (2400000, 1000000), (3200000, 1150000)),
        coefficient_uw_mhz_v2=1000.0, leakage_a=0.3, uncore_w=2.0,
        source="generic: an illustrative table with round numbers, not any device's "
               "(about 4 W per core at 3.2 GHz); use only to compare points relative to "
               "each other"),
}


def get_power_model(name: str) -> PowerModel:
    """The built-in model of that name.

    Raises:
        ValueError: an unknown name (the message lists the built-in ones).
    """
    try:
        return POWER_MODELS[name]
    except KeyError:
        raise ValueError(f"unknown power model {name!r}; built-in: "
                         f"{sorted(POWER_MODELS)}") from None


def expand_with_frequencies(table: Mapping[str, Any], model: PowerModel, *,
                            frequencies_khz: Sequence[int] | None = None,
                            memory_bound: float = 0.0) -> dict[str, Any]:
    """A member x operating-point table with modelled CPU frequencies added to its points.

    For machines whose frequency cannot be set (VMs hide cpufreq): every point ``p`` of
    ``table`` (measured at the machine's own, top, frequency) becomes the points
    ``"<p>+f<MHz>MHz"`` for each frequency, with latency scaled as
    ``t(f) = t * ((1 - memory_bound) * f_top / f + memory_bound)`` (``f_top`` the model's
    highest frequency: the measured latency is taken to be at it) and energy from
    ``model`` at the new point. Every number is then a model's: the result's
    ``energy_source`` is ``model.energy_source`` and ``meta["derived"]`` says how it was made.

    Args:
        table: a table as :func:`switchnas.runtime.knobs.validate_point_table` accepts,
            whose points set no ``freq_khz``.
        model: the power model (its frequency table by default).
        frequencies_khz: the frequencies to add (default: the model's).
        memory_bound: the share of latency that does not scale with frequency (0..1).

    Returns:
        The expanded table (validated).

    Raises:
        ValueError: a point already sets ``freq_khz``, ``memory_bound`` outside [0, 1], or
            a frequency <= 0.
    """
    from .knobs import frequency_name, validate_point_table

    base = validate_point_table(table)
    if not 0.0 <= memory_bound <= 1.0:
        raise ValueError(f"memory_bound must be in [0, 1], got {memory_bound!r}")
    freqs = sorted(set(model.frequencies_khz if frequencies_khz is None
                       else (int(f) for f in frequencies_khz)))
    if not freqs or freqs[0] <= 0:
        raise ValueError(f"frequencies_khz must be > 0, got {freqs}")
    top = model.frequencies_khz[-1]
    points: list[dict[str, Any]] = []
    for p in base["points"]:
        if "freq_khz" in p["settings"]:
            raise ValueError(f"point {p['name']!r} already sets freq_khz: it was measured "
                             "with DVFS, nothing to model")
        for f in freqs:
            points.append({"name": f"{p['name']}+{frequency_name(f)}",
                           "settings": {**p["settings"], "freq_khz": f}, "_base": p["name"]})
    members: dict[str, dict[str, dict[str, float | None]]] = {}
    for mid, row in base["members"].items():
        members[mid] = {}
        for p in points:
            f = p["settings"]["freq_khz"]
            lat = row[p["_base"]]["latency_ms"]
            lat = lat * ((1.0 - memory_bound) * top / f + memory_bound)
            w = model.point_power_w(p["settings"])
            members[mid][p["name"]] = {"latency_ms": lat, "energy_mj": w * lat, "power_w": w}
    meta = dict(base.get("meta", {}))
    meta["derived"] = {"from_energy_source": base["energy_source"],
                       "latency_model": "t(f) = t_measured * ((1 - memory_bound) * f_top / f "
                                        "+ memory_bound)",
                       "memory_bound": memory_bound, "f_top_khz": top,
                       "power_model": model.to_dict()}
    return validate_point_table({
        "energy_source": model.energy_source, "members": members,
        "points": [{"name": p["name"], "settings": p["settings"]} for p in points],
        "meta": meta})
