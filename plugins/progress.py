"""Progress output fit for a terminal and for a log: :func:`progress_bar`.

On a terminal a progress bar (tqdm) redraws one line in place. Written to a pipe or a
file, the same carriage returns become one line of thousands of characters, so there
the bar prints plain, rate-limited lines instead: one each time another tenth of the
total is done, or every 30 seconds, and one when it closes. Every switchnas loop that
shows progress (training, scoring, search strategies, the search loop) gets its bar here.

This module lives in :mod:`switchnas.plugins` because that package imports nothing else
from switchnas, so ``supernets``, ``search`` and ``predictors`` can all use it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, Protocol, TypeVar

__all__ = ["LineProgress", "Progress", "progress_bar"]

T = TypeVar("T")


class Progress(Protocol):
    """What the callers of :func:`progress_bar` use (a subset of tqdm's interface)."""

    n: int | float

    def update(self, n: int | float = 1) -> Any: ...

    def set_postfix(self, **kwargs: Any) -> Any: ...

    def refresh(self) -> Any: ...

    def close(self) -> Any: ...


class LineProgress:
    """A progress bar that prints plain lines, for output that is not a terminal.

    A line ``"<desc>: <n>/<total> (<pct> %), <s> s[, postfix]"`` is printed when another
    ``every_fraction`` of ``total`` is done or ``every_s`` seconds have passed since the
    last line, and once more on :meth:`close` if there was progress since. It never
    writes a carriage return.

    Args:
        iterable: optional iterable to wrap (iterating over the bar yields its items and
            counts them).
        total: the expected count (``len(iterable)`` when omitted and available).
        desc: what is being counted.
        stream: where lines go (default: ``sys.stderr`` at construction).
        every_fraction: a line each time this share of ``total`` is passed (``0 < f <= 1``).
        every_s: a line at least this often, in seconds, while progress is made.
        clock: the time source (seconds); tests pass a fake one.

    Raises:
        ValueError: ``every_fraction`` outside ``(0, 1]`` or ``every_s`` not positive.
    """

    def __init__(self, iterable: Iterable[Any] | None = None, *, total: int | float | None = None,
                 desc: str = "", stream: IO[str] | None = None, every_fraction: float = 0.1,
                 every_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 < every_fraction <= 1:
            raise ValueError(f"every_fraction={every_fraction!r}: must be in (0, 1]")
        if not every_s > 0:
            raise ValueError(f"every_s={every_s!r}: must be > 0 seconds")
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.iterable, self.total, self.desc = iterable, total, desc
        self.stream = stream if stream is not None else sys.stderr
        self.every_fraction, self.every_s, self.clock = every_fraction, every_s, clock
        self.n: int | float = 0
        self.postfix = ""
        self.start = self._last_t = clock()
        self._last_n: int | float = 0
        self._closed = False

    def __iter__(self) -> Iterator[Any]:
        if self.iterable is None:
            raise TypeError("this LineProgress wraps no iterable")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int | float = 1) -> None:
        """Count ``n`` more done, and print a line if one is due."""
        self.n += n
        self.refresh()

    def set_postfix(self, **kwargs: Any) -> None:
        """Values shown after the count on the next line (``loss=0.42``)."""
        self.postfix = ", ".join(f"{k}={v}" for k, v in kwargs.items())

    def set_description(self, desc: str) -> None:
        """Change what the lines say is being counted."""
        self.desc = desc

    def refresh(self) -> None:
        """Print a line if one is due (after ``n`` was set directly)."""
        if self._closed or self.n == self._last_n:
            return
        now = self.clock()
        due = now - self._last_t >= self.every_s
        if self.total:
            step = self.every_fraction * self.total
            due = due or int(self.n / step) > int(self._last_n / step) or self.n >= self.total
        if due:
            self._line(now)

    def close(self) -> None:
        """Print the last line if there was progress since the previous one."""
        if self._closed:
            return
        if self.n != self._last_n:
            self._line(self.clock())
        self._closed = True

    def _line(self, now: float) -> None:
        count = f"{self.n:g}" if self.total is None else f"{self.n:g}/{self.total:g}"
        pct = f" ({100 * self.n / self.total:.0f} %)" if self.total else ""
        post = f", {self.postfix}" if self.postfix else ""
        self.stream.write(f"{self.desc or 'progress'}: {count}{pct}, "
                          f"{now - self.start:.0f} s{post}\n")
        self.stream.flush()
        self._last_t, self._last_n = now, self.n


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress_bar(iterable: Iterable[T] | None = None, *, total: int | float | None = None,
                 desc: str = "", enabled: bool = True, leave: bool = False,
                 stream: IO[str] | None = None, every_fraction: float = 0.1,
                 every_s: float = 30.0) -> Any:
    """A progress bar on a terminal, plain periodic lines elsewhere, nothing if disabled.

    Args:
        iterable: optional iterable to wrap; iterate over the returned object.
        total: the expected count (``len(iterable)`` when omitted).
        desc: what is being counted (the bar's label, each line's prefix).
        enabled: ``False`` (the ``progress=false`` setting) shows nothing at all.
        leave: on a terminal, keep the finished bar on screen.
        stream: where progress goes (default: ``sys.stderr``, as tqdm).
        every_fraction: off a terminal, a line each time this share of ``total`` is done.
        every_s: off a terminal, a line at least this often (seconds) while progress is made.

    Returns:
        A :class:`tqdm.tqdm` (disabled when ``enabled`` is false) when ``stream`` is a
        terminal, else a :class:`LineProgress`. Both support ``update(n)``,
        ``set_postfix(**kw)``, setting ``n`` then ``refresh()``, ``close()``, use as a
        context manager and, with ``iterable``, iteration.
    """
    out = stream if stream is not None else sys.stderr
    if not enabled or _is_terminal(out):
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, disable=not enabled, leave=leave,
                    file=out)
    return LineProgress(iterable, total=total, desc=desc, stream=out,
                        every_fraction=every_fraction, every_s=every_s)
