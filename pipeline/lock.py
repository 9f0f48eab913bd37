"""One writer per run directory: an exclusive ``flock`` on ``<run dir>/.lock``.

Every ``switchnas`` command that writes into a run directory holds :class:`RunLock` for
its whole duration. The holder writes who it is (pid, host, command, start time) into
the lock file; a second command waits up to ``timeout`` seconds for the lock and then
fails with :class:`RunDirectoryLocked`, whose message names the holder.

The lock is the kernel's (``fcntl.flock``): it is released when the holder's process
ends, however it ends, so a killed run never leaves a directory locked. The file itself
stays (deleting a locked file would let two processes lock two different files); it is
rewritten in place, not atomically, because replacing it would replace the locked inode.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["LOCK_FILE", "RunDirectoryLocked", "RunLock"]

LOCK_FILE = ".lock"
_POLL_S = 0.1


class RunDirectoryLocked(RuntimeError):
    """Another process holds the run directory's lock.

    Attributes:
        holder: what the holder wrote into the lock file (``pid``, ``host``, ``command``,
            ``started``), empty when it could not be read.
    """

    def __init__(self, message: str, holder: dict[str, Any]):
        super().__init__(message)
        self.holder = holder


class RunLock:
    """Exclusive lock on a run directory, as a context manager.

    Args:
        run_dir: the run directory (created if missing).
        timeout: seconds to wait for another holder to finish; ``0`` fails at once.
        command: what this process is doing, recorded for whoever finds it locked.

    Raises:
        ValueError: ``timeout`` is negative or not a finite number.
    """

    def __init__(self, run_dir: str | Path, *, timeout: float = 0.0, command: str = ""):
        t = float(timeout)
        if not (t >= 0 and t != float("inf")):
            raise ValueError(f"lock_timeout={timeout!r}: must be a finite number of seconds >= 0")
        self.path = Path(run_dir) / LOCK_FILE
        self.timeout = t
        self.command = command
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock, waiting up to ``timeout`` seconds.

        Raises:
            RunDirectoryLocked: still held by another process after ``timeout``.
        """
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this RunLock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + self.timeout
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        holder = self.holder()
                        raise RunDirectoryLocked(self._busy_message(holder), holder) from None
                    time.sleep(_POLL_S)
            info = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        """Give the lock up (closing the file releases it); a no-op when not held."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)

    def holder(self) -> dict[str, Any]:
        """What the current holder wrote into the lock file (``{}`` if unreadable)."""
        try:
            with open(self.path, "rb") as f:
                data = json.loads(f.read(4096) or b"{}")
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _busy_message(self, holder: dict[str, Any]) -> str:
        run_dir = self.path.parent
        if holder:
            who = (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} "
                   f"({holder.get('command') or 'switchnas'!s}, since "
                   f"{holder.get('started', '?')})")
        else:
            who = "another process"
        waited = f" after waiting {self.timeout:g} s" if self.timeout else ""
        return (f"run directory {str(run_dir)!r} is in use by {who}{waited}; wait for it to "
                "finish, choose another hydra.run.dir, or set lock_timeout=<seconds> to wait")

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
