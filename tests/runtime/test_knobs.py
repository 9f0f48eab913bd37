"""Hardware knobs: real thread and affinity changes on this machine, cpufreq against a fake
sysfs tree (these VMs hide cpufreq), NVML where installed, and the member x point table."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import torch

from switchnas.runtime.knobs import (
    CombinedKnob,
    CpufreqKnob,
    Knob,
    KnobUnavailable,
    NvmlKnob,
    OperatingPoint,
    ThreadsKnob,
    cpu_list,
    load_point_table,
    save_point_table,
    validate_point_table,
)

ALLOWED = sorted(os.sched_getaffinity(0))
FREQS = (800000, 1200000, 1600000)


def fake_cpufreq(root: Path, cpus: tuple[int, ...] = (0, 1), governor: str = "ondemand",
                 freqs: tuple[int, ...] | None = FREQS, setspeed: str = "<unsupported>",
                 governors: str = "ondemand userspace performance powersave") -> Path:
    """``cpu<N>/cpufreq/`` as Linux lays it out (the files the knob reads or writes)."""
    for cpu in cpus:
        d = root / f"cpu{cpu}" / "cpufreq"
        d.mkdir(parents=True)
        (d / "scaling_governor").write_text(governor + "\n")
        (d / "scaling_available_governors").write_text(governors + "\n")
        (d / "scaling_setspeed").write_text(setspeed + "\n")
        (d / "scaling_cur_freq").write_text("1600000\n")
        (d / "cpuinfo_min_freq").write_text("800000\n")
        (d / "cpuinfo_max_freq").write_text("1600000\n")
        if freqs is not None:
            (d / "scaling_available_frequencies").write_text(
                " ".join(str(f) for f in freqs) + " \n")
    return root


def read(root: Path, cpu: int, name: str) -> str:
    return (root / f"cpu{cpu}" / "cpufreq" / name).read_text().strip()


@pytest.fixture
def restore_threads():
    before = (torch.get_num_threads(), os.sched_getaffinity(0))
    yield
    torch.set_num_threads(before[0])
    os.sched_setaffinity(0, before[1])


def test_operating_point_round_trips_and_refuses_bad_names() -> None:
    p = OperatingPoint(name="t2-cpu0,1", settings={"threads": 2, "cpus": [0, 1]})
    assert OperatingPoint.from_dict(p.to_dict()) == p
    assert hash(p) == hash(OperatingPoint(name="t2-cpu0,1", settings={"threads": 2}))
    for bad in ("", " x", 3):
        with pytest.raises(ValueError, match="non-empty name"):
            OperatingPoint(name=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="settings must be a mapping"):
        OperatingPoint.from_dict({"name": "a", "settings": [1]})
    assert cpu_list([3, 0, 1, 2, 5]) == "0-3,5" and cpu_list([0, 1]) == "0,1"


def test_threads_knob_sets_threads_and_affinity_of_every_thread(restore_threads) -> None:
    knob = ThreadsKnob()
    assert isinstance(knob, Knob)
    names = [p.name for p in knob.points()]
    assert names == [f"t{k}-cpu{cpu_list(ALLOWED[:k])}" for k in range(1, len(ALLOWED) + 1)]
    # a thread started before the switch must move too (torch's pool already exists)
    started, stop = threading.Event(), threading.Event()
    tid: list[int] = []

    def other() -> None:
        tid.append(threading.get_native_id())
        started.set()
        stop.wait(10)

    t = threading.Thread(target=other)
    t.start()
    started.wait(10)
    try:
        knob.apply(names[0])
        assert torch.get_num_threads() == 1
        assert os.sched_getaffinity(0) == {ALLOWED[0]}
        assert os.sched_getaffinity(tid[0]) == {ALLOWED[0]}
        assert knob.current().name == names[0]
        knob.restore()
        assert os.sched_getaffinity(0) == set(ALLOWED)
        assert os.sched_getaffinity(tid[0]) == set(ALLOWED)
    finally:
        stop.set()
        t.join()


def test_threads_knob_restores_the_thread_count_it_found(restore_threads) -> None:
    torch.set_num_threads(1)
    knob = ThreadsKnob(placement="all")
    assert [p.settings["cpus"] for p in knob.points()] == [ALLOWED] * len(ALLOWED)
    knob.apply(knob.points()[-1])
    assert torch.get_num_threads() == len(ALLOWED)
    assert os.sched_getaffinity(0) == set(ALLOWED)
    knob.restore()
    assert torch.get_num_threads() == 1


@pytest.mark.skipif(len(ALLOWED) < 2, reason="one CPU: one placement")
def test_threads_knob_windows_move_inference_between_cores(restore_threads) -> None:
    knob = ThreadsKnob(threads=[1], placement="windows")
    assert [p.settings["cpus"] for p in knob.points()] == [[c] for c in ALLOWED]
    knob.apply(f"t1-cpu{ALLOWED[-1]}")
    assert os.sched_getaffinity(0) == {ALLOWED[-1]}
    # a knob made now sees only the CPU this process is pinned to
    assert [p.name for p in ThreadsKnob(placement="windows").points()] == [
        f"t1-cpu{ALLOWED[-1]}"]
    knob.restore()
    n = len(ALLOWED)
    assert len(ThreadsKnob(placement="windows").points()) == n * (n + 1) // 2
    with pytest.raises(ValueError, match="placement"):
        ThreadsKnob(placement="spread")


def test_threads_knob_refuses_unknown_points_and_counts(restore_threads) -> None:
    knob = ThreadsKnob(threads=[1])
    with pytest.raises(ValueError, match=r"unknown operating point 't9-cpu0'.*t1-cpu"):
        knob.apply("t9-cpu0")
    with pytest.raises(ValueError, match="has settings"):
        knob.apply(OperatingPoint(name=knob.points()[0].name, settings={"threads": 7}))
    with pytest.raises(ValueError, match=rf"1\.\.{len(ALLOWED)}"):
        ThreadsKnob(threads=[0, len(ALLOWED) + 1])


def test_cpufreq_knob_switches_to_userspace_and_restores(tmp_path: Path) -> None:
    root = fake_cpufreq(tmp_path)
    knob = CpufreqKnob(root=root, cpus=[0, 1])
    assert isinstance(knob, Knob)
    assert [p.name for p in knob.points()] == ["f800MHz", "f1200MHz", "f1600MHz"]
    assert knob.current().name == "ondemand@f1600MHz"
    knob.apply("f1200MHz")
    for cpu in (0, 1):
        assert read(root, cpu, "scaling_governor") == "userspace"
        assert read(root, cpu, "scaling_setspeed") == "1200000"
    assert knob.current() == knob.points()[1]
    knob.restore()
    assert [read(root, c, "scaling_governor") for c in (0, 1)] == ["ondemand", "ondemand"]


def test_cpufreq_knob_restores_a_previous_userspace_frequency(tmp_path: Path) -> None:
    root = fake_cpufreq(tmp_path, governor="userspace", setspeed="800000")
    knob = CpufreqKnob(root=root, cpus=[0, 1])
    assert knob.current().name == "f800MHz"
    knob.apply("f1600MHz")
    assert read(root, 1, "scaling_setspeed") == "1600000"
    knob.restore()
    assert read(root, 0, "scaling_setspeed") == "800000"
    assert read(root, 1, "scaling_governor") == "userspace"


def test_cpufreq_knob_refuses_a_frequency_it_does_not_offer(tmp_path: Path) -> None:
    knob = CpufreqKnob(root=fake_cpufreq(tmp_path), cpus=[0])
    with pytest.raises(ValueError, match=r"'f1000MHz'.*f800MHz.*f1200MHz.*f1600MHz"):
        knob.apply("f1000MHz")
    assert read(tmp_path, 0, "scaling_governor") == "ondemand"  # nothing written


def test_cpufreq_knob_steps_between_min_and_max_without_a_list(tmp_path: Path) -> None:
    knob = CpufreqKnob(root=fake_cpufreq(tmp_path, freqs=None), cpus=[0], steps=3)
    assert [p.settings["freq_khz"] for p in knob.points()] == [800000, 1200000, 1600000]
    with pytest.raises(ValueError, match="steps"):
        CpufreqKnob(root=tmp_path, cpus=[0], steps=1)


def test_cpufreq_knob_offers_only_frequencies_common_to_its_cpus(tmp_path: Path) -> None:
    root = fake_cpufreq(tmp_path, cpus=(0,))
    fake_cpufreq(root, cpus=(1,), freqs=(800000, 1600000, 2000000))
    assert [p.name for p in CpufreqKnob(root=root, cpus=[0, 1]).points()] == [
        "f800MHz", "f1600MHz"]


def test_cpufreq_knob_says_why_it_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(KnobUnavailable, match="does not exist"):
        CpufreqKnob(root=tmp_path / "none", cpus=[0])
    root = fake_cpufreq(tmp_path / "a", governors="performance powersave")
    with pytest.raises(KnobUnavailable, match="no userspace governor"):
        CpufreqKnob(root=root, cpus=[0])


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write any file: nothing is refused")
def test_cpufreq_knob_says_when_sysfs_is_not_writable(tmp_path: Path) -> None:
    root = fake_cpufreq(tmp_path)
    (root / "cpu0" / "cpufreq" / "scaling_setspeed").chmod(0o444)
    with pytest.raises(KnobUnavailable, match="not writable"):
        CpufreqKnob(root=root, cpus=[0])


def test_combined_knob_is_the_product_and_restores_both(tmp_path: Path,
                                                        restore_threads) -> None:
    root = fake_cpufreq(tmp_path, cpus=tuple(ALLOWED))
    threads = ThreadsKnob(threads=[1])
    combined = CombinedKnob([threads, CpufreqKnob(root=root)])
    assert isinstance(combined, Knob) and combined.name == "threads+cpufreq"
    names = [p.name for p in combined.points()]
    t1 = threads.points()[0].name
    assert names == [f"{t1}+f800MHz", f"{t1}+f1200MHz", f"{t1}+f1600MHz"]
    assert combined.points()[1].settings == {"threads": 1, "cpus": [ALLOWED[0]],
                                             "freq_khz": 1200000}
    combined.apply(names[1])
    assert torch.get_num_threads() == 1 and read(root, ALLOWED[0], "scaling_setspeed") == \
        "1200000"
    assert combined.current().name == names[1]
    combined.restore()
    assert read(root, ALLOWED[0], "scaling_governor") == "ondemand"
    assert os.sched_getaffinity(0) == set(ALLOWED)
    with pytest.raises(ValueError, match="unknown operating point"):
        combined.apply("f800MHz")
    with pytest.raises(ValueError, match="both set"):
        CombinedKnob([threads, ThreadsKnob(threads=[1])])
    with pytest.raises(ValueError, match="at least one"):
        CombinedKnob([])


def test_nvml_knob_needs_pynvml_or_says_why() -> None:
    try:
        import pynvml  # noqa: F401
    except ImportError:
        with pytest.raises(KnobUnavailable, match="pynvml is not installed"):
            NvmlKnob()
        return
    try:
        knob = NvmlKnob(max_points=3)
    except KnobUnavailable as exc:
        pytest.skip(f"no GPU that NVML can report on: {exc}")
    assert 1 <= len(knob.points()) <= 3
    with pytest.raises(ValueError, match="mode"):
        NvmlKnob(mode="volts")


def table() -> dict:
    return {"energy_source": "model:generic",
            "members": {"a": {"p1": {"latency_ms": 2.0, "energy_mj": 1.0, "power_w": 0.5},
                              "p2": {"latency_ms": 1, "energy_mj": None, "power_w": None}}},
            "points": [{"name": "p1", "settings": {"threads": 1}},
                       {"name": "p2", "settings": {"threads": 2}}]}


def test_point_table_validates_and_round_trips(tmp_path: Path) -> None:
    t = validate_point_table(table())
    assert t["members"]["a"]["p2"] == {"latency_ms": 1.0, "energy_mj": None, "power_w": None}
    path = save_point_table({**t, "meta": {"note": "x"}}, tmp_path / "t.json")
    assert load_point_table(path) == {**t, "meta": {"note": "x"}}
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]  # no temporary file left


@pytest.mark.parametrize("change, message", [
    (lambda t: t.update(energy_source="guess"), "energy_source"),
    (lambda t: t.update(extra=1), "unknown keys"),
    (lambda t: t["members"]["a"].pop("p2"), "every point"),
    (lambda t: t["members"]["a"]["p1"].update(latency_ms=0), "latency_ms"),
    (lambda t: t["members"]["a"]["p1"].update(energy_mj=float("nan")), "energy_mj"),
    (lambda t: t["points"].append({"name": "p1"}), "unique"),
])
def test_point_table_refuses_what_is_wrong(change, message: str) -> None:
    t = table()
    change(t)
    with pytest.raises(ValueError, match=message):
        validate_point_table(t)


def test_loading_a_broken_table_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        load_point_table(tmp_path / "bad.json")


def test_cpufreq_knob_names_the_file_a_refused_write_went_to(tmp_path: Path) -> None:
    root = fake_cpufreq(tmp_path, cpus=(0,))
    knob = CpufreqKnob(root=root, cpus=[0])
    setspeed = root / "cpu0" / "cpufreq" / "scaling_setspeed"
    setspeed.unlink()
    setspeed.mkdir()  # any write fails, as a driver refusing the value would
    with pytest.raises(OSError, match=r"cannot write '800000' to .*scaling_setspeed"):
        knob.apply("f800MHz")


def test_frequency_names_are_exact() -> None:
    from switchnas.runtime.knobs import frequency_name

    assert frequency_name(1200000) == "f1200MHz"
    assert frequency_name(1234567) == "f1234.567MHz" != frequency_name(1234568)
    assert frequency_name(1416500) == "f1416.5MHz"


def test_knobs_and_energy_import_no_other_switchnas_package_nor_torch() -> None:
    import subprocess
    import sys

    code = ("import sys, switchnas.runtime.knobs, switchnas.runtime.energy\n"
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith("
            "('switchnas.plugins', 'switchnas.search', 'switchnas.pipeline', "
            "'switchnas.predictors', 'switchnas.supernets'))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
