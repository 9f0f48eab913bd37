"""One writer per run directory: a second command on a locked run dir exits, naming the
holder; the kernel releases the lock when the holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from switchnas.pipeline.lock import RunDirectoryLocked, RunLock

# A helper process that only takes the lock, says so, and holds it until killed.
HOLDER = """
import sys, time
from switchnas.pipeline.lock import RunLock
lock = RunLock(sys.argv[1], command="switchnas run holder-test")
lock.acquire()
print("locked", flush=True)
time.sleep(600)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_second_holder_is_refused_with_the_holders_name(
        tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    with pytest.raises(RunDirectoryLocked) as info:
        RunLock(tmp_path, timeout=0).acquire()
    msg = str(info.value)
    assert f"pid {holder.pid}" in msg and "switchnas run holder-test" in msg
    assert info.value.holder["pid"] == holder.pid
    with pytest.raises(RunDirectoryLocked, match="after waiting 0.3 s"):
        RunLock(tmp_path, timeout=0.3).acquire()
    holder.send_signal(signal.SIGKILL)  # however the holder ends, the lock goes with it
    holder.wait()
    with RunLock(tmp_path, timeout=5, command="next") as lock:
        assert lock.held and lock.holder()["command"] == "next"
        assert lock.holder()["pid"] == os.getpid()
    assert not lock.held


def test_lock_in_one_process_is_exclusive_and_reusable(tmp_path: Path) -> None:
    first = RunLock(tmp_path)
    first.acquire()
    with pytest.raises(RunDirectoryLocked, match="in use by pid"):
        RunLock(tmp_path).acquire()
    first.release()
    first.release()  # a no-op
    with RunLock(tmp_path):
        pass
    with pytest.raises(ValueError, match="lock_timeout"):
        RunLock(tmp_path, timeout=-1)


def test_cli_on_a_locked_run_dir_exits_naming_the_holder(
        tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    (tmp_path / ".train.stale123").mkdir()  # a killed run's leftovers: not ours to remove
    proc = subprocess.run([sys.executable, "-m", "switchnas.pipeline.cli", "profile",
                           "preset=tiny", f"hydra.run.dir={tmp_path}", "progress=false"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"is in use by pid {holder.pid}" in proc.stderr
    assert "switchnas run holder-test" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "profile").exists() and not (tmp_path / "train").exists()
    assert (tmp_path / ".train.stale123").is_dir()
