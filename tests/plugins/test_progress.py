"""Progress output: a bar on a terminal, plain rate-limited lines in a pipe or a log."""

from __future__ import annotations

import io

import numpy as np
import pytest

from switchnas.plugins.progress import LineProgress, progress_bar


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_piped_output_is_one_line_per_tenth() -> None:
    out = io.StringIO()
    bar = progress_bar(total=1000, desc="train", stream=out)
    assert isinstance(bar, LineProgress)
    for _ in range(1000):
        bar.update(1)
    bar.close()
    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 10, lines
    assert lines[0].startswith("train: 100/1000 (10 %)")
    assert lines[-1].startswith("train: 1000/1000 (100 %)")


def test_piped_output_is_also_time_based() -> None:
    out, clock = io.StringIO(), FakeClock()
    bar = LineProgress(total=1000, desc="loop", stream=out, every_s=30.0, clock=clock)
    bar.update(1)  # not yet a tenth, no time passed: nothing
    assert out.getvalue() == ""
    clock.t = 31.0
    bar.update(1)
    assert out.getvalue() == "loop: 2/1000 (0 %), 31 s\n"
    clock.t = 40.0
    bar.set_postfix(loss="0.420")
    bar.n = 5  # set directly, as the search loop does
    bar.refresh()
    assert out.getvalue().count("\n") == 1  # 9 s since the last line: not due
    bar.close()
    assert out.getvalue().splitlines()[-1] == "loop: 5/1000 (0 %), 40 s, loss=0.420"
    bar.close()  # closing twice prints nothing more
    assert out.getvalue().count("\n") == 2


def test_wrapping_an_iterable_counts_it() -> None:
    out = io.StringIO()
    items = list(progress_bar(range(4), desc="evaluate (val)", stream=out, every_fraction=0.5))
    assert items == [0, 1, 2, 3]
    assert out.getvalue().splitlines() == ["evaluate (val): 2/4 (50 %), 0 s",
                                           "evaluate (val): 4/4 (100 %), 0 s"]


def test_without_a_total_only_time_and_close_print() -> None:
    out, clock = io.StringIO(), FakeClock()
    bar = LineProgress(desc="x", stream=out, clock=clock)
    bar.update(3)
    assert out.getvalue() == ""
    bar.close()
    assert out.getvalue() == "x: 3, 0 s\n"


def test_a_terminal_gets_a_redrawn_bar() -> None:
    out = FakeTerminal()
    bar = progress_bar(total=50, desc="train", stream=out)
    assert not isinstance(bar, LineProgress)
    for _ in range(50):
        bar.update(1)
    bar.close()
    assert "\r" in out.getvalue()


@pytest.mark.parametrize("stream", [io.StringIO(), FakeTerminal()])
def test_disabled_prints_nothing(stream: io.StringIO) -> None:
    bar = progress_bar(total=10, desc="x", enabled=False, stream=stream)
    for _ in range(10):
        bar.update(1)
    bar.set_postfix(loss=1)
    bar.close()
    assert list(progress_bar([1, 2], enabled=False, stream=stream)) == [1, 2]
    assert stream.getvalue() == ""


@pytest.mark.parametrize(("kwargs", "match"), [({"every_fraction": 0}, "every_fraction=0"),
                                               ({"every_fraction": 1.5}, "every_fraction"),
                                               ({"every_s": 0}, "every_s=0")])
def test_bad_settings_are_named(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LineProgress(total=1, **kwargs)


def test_a_search_strategy_writes_plain_lines_when_piped(
        capsys: pytest.CaptureFixture[str]) -> None:
    from switchnas.search.strategies import RandomSearch
    from switchnas.supernets.space import ChoiceSpace, Dimension

    space = ChoiceSpace("t", [Dimension("x", [list(range(4))] * 6)])
    RandomSearch(population=100, budget=1000).run(
        space, lambda g: np.asarray(g, dtype=float).sum(axis=1), progress=True)
    err = capsys.readouterr().err  # captured: not a terminal
    assert "\r" not in err
    lines = err.splitlines()
    assert 1 <= len(lines) <= 11 and lines[-1].startswith("search (random): 1000/1000"), lines
