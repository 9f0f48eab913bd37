"""CPU-burning co-runner processes started and stopped on a schedule.

Background apps on a phone, a neighbour on a shared VM: the machine slows down and speeds
up while something is being measured. :class:`CoRunners` reproduces that on this machine
with plain busy-loop processes, so benchmarks can compare measurement protocols and
runtime policies under the same, repeatable kind of disturbance::

    with CoRunners([(3.0, 0), (3.0, 1), (3.0, 2)]):   # 0, 1, then 2 busy processes, looped
        measure_things()

Every process is a child of this one, bounded in time (``max_seconds``), and killed when
the ``with`` block ends, whatever happens inside it.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from types import TracebackType

__all__ = ["CoRunners", "DEFAULT_SCHEDULE"]

#: seconds at each co-runner count, looped: idle, one busy process, two, one.
DEFAULT_SCHEDULE: tuple[tuple[float, int], ...] = ((4.0, 0), (4.0, 1), (4.0, 2), (4.0, 1))

_BUSY = "import time, sys\nend = time.time() + float(sys.argv[1])\nwhile time.time() < end:\n    pass\n"


class CoRunners:
    """Run ``n`` busy-loop processes for each ``(seconds, n)`` step of ``schedule``, looping.

    Args:
        schedule: steps of ``(seconds, number of busy processes)``.
        max_seconds: every process ends by itself after this long (a safety bound).
    """

    def __init__(self, schedule: Sequence[tuple[float, int]] = DEFAULT_SCHEDULE, *,
                 max_seconds: float = 3600.0):
        if not schedule or any(s <= 0 or n < 0 for s, n in schedule):
            raise ValueError(f"schedule must be non-empty (seconds > 0, n >= 0), got {schedule!r}")
        self.schedule = [(float(s), int(n)) for s, n in schedule]
        self.max_seconds = float(max_seconds)
        self._procs: list[subprocess.Popen[bytes]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.log: list[tuple[float, int]] = []  #: (seconds since start, processes running)

    def _set(self, n: int) -> None:
        while len(self._procs) > n:
            p = self._procs.pop()
            p.kill()
            p.wait()
        while len(self._procs) < n:
            self._procs.append(subprocess.Popen(
                [sys.executable, "-c", _BUSY, str(self.max_seconds)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def _loop(self) -> None:
        t0 = time.perf_counter()
        while not self._stop.is_set():
            for seconds, n in self.schedule:
                self._set(n)
                self.log.append((round(time.perf_counter() - t0, 3), n))
                if self._stop.wait(seconds):
                    break
        self._set(0)

    def __enter__(self) -> CoRunners:
        self._thread = threading.Thread(target=self._loop, name="corunners", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._set(0)
