"""Contract tests of switchnas.search.reduce: exact reduced choices, the front-widening
rule, the space file format and every message of the space-file checker."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from switchnas.search.reduce import (
    MAX_SPACE_FILE_BYTES,
    allowed_choices,
    allowed_choices_from_fronts,
    read_space_file,
    reduce_space,
    write_space_file,
)
from switchnas.supernets.space import ChoiceSpace, Dimension


def _space() -> ChoiceSpace:
    return ChoiceSpace("toy", [
        Dimension("r", [[160, 192, 224]], scalar=True),
        Dimension("k", [[3, 5, 7], [3, 5, 7]]),
        Dimension("e", [[3, 4], [4, 6]]),
    ])


CFGS = [
    {"r": 224, "k": [3, 5], "e": [3, 4]},
    {"r": 160, "k": [3, 3], "e": [3, 6]},
]


def test_allowed_choices_shared_by_default() -> None:
    got = allowed_choices(_space(), CFGS)
    assert got == {"r": [[160, 224]], "k": [[3, 5], [3, 5]], "e": [[3, 4], [4, 6]]}
    assert list(got) == ["r", "k", "e"]


def test_allowed_choices_per_position() -> None:
    got = allowed_choices(_space(), CFGS, per_position=True)
    assert got == {"r": [[160, 224]], "k": [[3], [3, 5]], "e": [[3], [4, 6]]}


def test_shared_set_keeps_a_positions_own_choices_when_none_is_used() -> None:
    space = ChoiceSpace("s", [Dimension("w", [[1, 2], [8, 9]])])
    # the used values are {1, 2}: position 1 has none of them, keeps [8, 9]
    got = allowed_choices(space, [{"w": [1, 9]}, {"w": [2, 9]}])
    assert got == {"w": [[1, 2], [9]]}
    got = allowed_choices(space, [{"w": [1, 8]}])
    assert got == {"w": [[1], [8]]}
    space2 = ChoiceSpace("s", [Dimension("w", [[1, 2], [5, 6]])])
    got = allowed_choices(space2, [{"w": [1, 1]}])
    assert got == {"w": [[1], [5, 6]]}


def test_keep_leaves_dimensions_out() -> None:
    got = allowed_choices(_space(), CFGS, keep=["r", "e"])
    assert got == {"k": [[3, 5], [3, 5]]}
    got = allowed_choices(_space(), CFGS, keep=("k",), per_position=True)
    assert got == {"r": [[160, 224]], "e": [[3], [4, 6]]}


@pytest.mark.parametrize("configs", [[], ()])
def test_no_configs_raises(configs) -> None:
    with pytest.raises(ValueError, match=r"^reduce: no configs to derive a reduced space from$"):
        allowed_choices(_space(), configs)
    with pytest.raises(ValueError, match=r"^reduce: no configs to derive a reduced space from$"):
        reduce_space(_space(), configs)


def test_reduce_space_defaults_and_options() -> None:
    space = ChoiceSpace("t", [Dimension("k", [[3, 5, 7], [3, 5, 7]])])
    red = reduce_space(space, [{"k": [3, 5]}])
    assert red.dimensions == {"k": ((3, 5), (3, 5))}
    assert red.name == "t"
    red = reduce_space(space, [{"k": [3, 5]}], per_position=True)
    assert red.dimensions == {"k": ((3,), (5,))}
    red = reduce_space(_space(), CFGS, keep=["k"])
    assert red.dimensions == {"r": ((160, 224),), "k": ((3, 5, 7), (3, 5, 7)), "e": ((3, 4), (4, 6))}
    assert red.dimension("r").scalar is True


# -- fronts ------------------------------------------------------------------------------------
def _line_space() -> ChoiceSpace:
    return ChoiceSpace("l", [Dimension("a", [[1, 2, 3, 4]]), Dimension("b", [[1, 2, 3, 4]])])


def _cfg(a: int, b: int) -> dict:
    return {"a": [a], "b": [b]}


def test_fronts_stop_at_the_first_large_enough_space() -> None:
    space = _line_space()
    fronts = [[_cfg(1, 1)], [_cfg(2, 1)], [_cfg(3, 3)], [_cfg(4, 4)]]
    # default min_size 1: the first front suffices
    allowed, n = allowed_choices_from_fronts(space, fronts)
    assert (allowed, n) == ({"a": [[1]], "b": [[1]]}, 1)
    allowed, n = allowed_choices_from_fronts(space, fronts, min_size=2)
    assert (allowed, n) == ({"a": [[1, 2]], "b": [[1]]}, 2)
    # size exactly at the threshold is enough (2 * 1 == 2); 2.5 needs the third front
    allowed, n = allowed_choices_from_fronts(space, fronts, min_size=2.5)
    assert (allowed, n) == ({"a": [[1, 2, 3]], "b": [[1, 3]]}, 3)
    allowed, n = allowed_choices_from_fronts(space, fronts, min_size=6)
    assert n == 3
    allowed, n = allowed_choices_from_fronts(space, fronts, min_size=7)
    assert (allowed, n) == ({"a": [[1, 2, 3, 4]], "b": [[1, 3, 4]]}, 4)


def test_fronts_all_too_small_uses_everything_and_skips_empty_fronts() -> None:
    space = _line_space()
    fronts = [[], [_cfg(1, 1)], [], [_cfg(2, 2)], []]
    allowed, n = allowed_choices_from_fronts(space, fronts, min_size=1000)
    assert (allowed, n) == ({"a": [[1, 2]], "b": [[1, 2]]}, 2)
    allowed, n = allowed_choices_from_fronts(space, fronts)
    assert (allowed, n) == ({"a": [[1]], "b": [[1]]}, 1)


def test_fronts_pass_options_through() -> None:
    space = ChoiceSpace("t", [Dimension("k", [[3, 5, 7], [3, 5, 7]]), Dimension("r", [[1, 2]], scalar=True)])
    fronts = [[{"k": [3, 5], "r": 1}]]
    allowed, n = allowed_choices_from_fronts(space, fronts, per_position=True, keep=["r"])
    assert (allowed, n) == ({"k": [[3], [5]]}, 1)
    allowed, n = allowed_choices_from_fronts(space, fronts)
    assert (allowed, n) == ({"k": [[3, 5], [3, 5]], "r": [[1]]}, 1)


@pytest.mark.parametrize("bad", [0, 0.5, -1, "3", None, float("nan")])
def test_fronts_reject_bad_min_size(bad) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(f"reduce: min_size={bad!r} must be a number >= 1") + "$"):
        allowed_choices_from_fronts(_line_space(), [[_cfg(1, 1)]], min_size=bad)


def test_fronts_min_size_one_is_accepted() -> None:
    assert allowed_choices_from_fronts(_line_space(), [[_cfg(1, 1)]], min_size=1)[1] == 1
    assert allowed_choices_from_fronts(_line_space(), [[_cfg(1, 1)]], min_size=1.0)[1] == 1


@pytest.mark.parametrize("fronts", [[], [[]], [[], []]])
def test_fronts_without_configs_raise(fronts) -> None:
    with pytest.raises(ValueError, match=r"^reduce: no configs to derive a reduced space from$"):
        allowed_choices_from_fronts(_line_space(), fronts)


# -- space files -------------------------------------------------------------------------------
def test_write_space_file_format_and_round_trip(tmp_path: Path) -> None:
    space = reduce_space(_space(), CFGS)
    p = write_space_file(tmp_path / "s.json", space, source={"target": "cpu", "n": 2})
    assert p == tmp_path / "s.json"
    text = p.read_text()
    assert text.endswith("\n")
    data = json.loads(text)
    assert set(data) == {"space", "source"}
    assert data["source"] == {"target": "cpu", "n": 2}
    assert data["space"] == space.to_dict()
    assert text == json.dumps(data, indent=2) + "\n"
    got = read_space_file(p)
    assert got == space.to_dict()
    assert ChoiceSpace.from_dict(got).dimensions == space.dimensions
    p2 = write_space_file(tmp_path / "t.json", space)
    assert json.loads(p2.read_text())["source"] == {}
    assert read_space_file(str(p2)) == space.to_dict()


def test_read_space_file_yaml(tmp_path: Path) -> None:
    p = tmp_path / "s.yaml"
    p.write_text("space:\n  name: y\n  dimensions:\n    k:\n      choices: [[3, 5]]\n      scalar: false\n")
    assert read_space_file(p) == {"name": "y", "dimensions": {"k": {"choices": [[3, 5]], "scalar": False}}}
    p.write_text("space:\n  name: y\n  dimensions:\n    k:\n      choices: [[a, 1.5, true]]\n")
    assert read_space_file(p)["dimensions"]["k"]["choices"] == [["a", 1.5, True]]


def test_read_space_file_missing(tmp_path: Path) -> None:
    p = tmp_path / "nope.json"
    with pytest.raises(FileNotFoundError, match="^" + re.escape(f"space file {str(p)!r} does not exist") + "$"):
        read_space_file(p)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_space_file(tmp_path)  # a directory is not a file


def test_read_space_file_size_limit(tmp_path: Path) -> None:
    assert MAX_SPACE_FILE_BYTES == 1 << 20
    good = {"space": {"name": "x", "dimensions": {"k": {"choices": [[1]], "scalar": False}}}}
    text = json.dumps(good)
    p = tmp_path / "big.json"
    p.write_text(text + " " * (MAX_SPACE_FILE_BYTES - len(text)))  # exactly at the limit: read
    assert read_space_file(p) == good["space"]
    p.write_text(text + " " * (MAX_SPACE_FILE_BYTES - len(text) + 1))
    with pytest.raises(ValueError, match="^" + re.escape(
            f"{str(p)!r} is larger than {MAX_SPACE_FILE_BYTES} bytes; not a space file") + "$"):
        read_space_file(p)


def test_read_space_file_not_text(tmp_path: Path) -> None:
    p = tmp_path / "bin.json"
    p.write_bytes(b"\xff\xfe\x00\x80")
    with pytest.raises(ValueError, match="^" + re.escape(f"{str(p)!r} cannot be read as text: ")):
        read_space_file(p)


def test_read_space_file_not_json_nor_yaml(tmp_path: Path) -> None:
    p = tmp_path / "bad.json"
    p.write_text("{a: [1, 2\n  - : :\n")
    with pytest.raises(ValueError, match="^" + re.escape(f"{str(p)!r} is neither JSON nor YAML; not a space file") + "$"):
        read_space_file(p)


def test_read_space_file_nested_too_deeply(tmp_path: Path) -> None:
    p = tmp_path / "deep.json"
    p.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(ValueError, match="^" + re.escape(f"{str(p)!r} is nested too deeply; not a space file") + "$"):
        read_space_file(p)


_TAIL = (" (expected {'space': {'name': ..., 'dimensions': {name: {'choices': [[...], ...], "
         "'scalar': bool}}}} as written by `switchnas reduce`)")


@pytest.mark.parametrize("data, problem", [
    ([1, 2], "no 'space' mapping at the top"),
    ({"space": [1]}, "no 'space' mapping at the top"),
    ({"other": {}}, "no 'space' mapping at the top"),
    ({"space": {"dimensions": {}}}, "'space.name' must be a string"),
    ({"space": {"name": 3, "dimensions": {}}}, "'space.name' must be a string"),
    ({"space": {"name": "x"}}, "'space.dimensions' must be a non-empty mapping"),
    ({"space": {"name": "x", "dimensions": {}}}, "'space.dimensions' must be a non-empty mapping"),
    ({"space": {"name": "x", "dimensions": [1]}}, "'space.dimensions' must be a non-empty mapping"),
    ({"space": {"name": "x", "dimensions": {"k": [1]}}}, "dimension 'k' must be a mapping with 'choices'"),
    ({"space": {"name": "x", "dimensions": {"k": {}}}},
     "dimension 'k': 'choices' must be a non-empty list of lists"),
    ({"space": {"name": "x", "dimensions": {"k": {"choices": []}}}},
     "dimension 'k': 'choices' must be a non-empty list of lists"),
    ({"space": {"name": "x", "dimensions": {"k": {"choices": "ab"}}}},
     "dimension 'k': 'choices' must be a non-empty list of lists"),
    ({"space": {"name": "x", "dimensions": {"k": {"choices": [[1], 2]}}}},
     "dimension 'k' position 1: choices must be a non-empty list of numbers or strings"),
    ({"space": {"name": "x", "dimensions": {"k": {"choices": [[1], []]}}}},
     "dimension 'k' position 1: choices must be a non-empty list of numbers or strings"),
    ({"space": {"name": "x", "dimensions": {"k": {"choices": [[None]]}}}},
     "dimension 'k' position 0: choices must be a non-empty list of numbers or strings"),
    ({"space": {"name": "x", "dimensions": {"k": {"choices": [[1, [2]]]}}}},
     "dimension 'k' position 0: choices must be a non-empty list of numbers or strings"),
    ({"space": {"name": "x", "dimensions": {"k": {"choices": [[1]], "scalar": "yes"}}}},
     "dimension 'k': 'scalar' must be true or false"),
    ({"space": {"name": "x", "dimensions": {"k": {"choices": [[1]], "scalar": None}}}},
     "dimension 'k': 'scalar' must be true or false"),
    ({"space": {"name": "x", "dimensions": {"k": {"choices": [[1], [2]], "scalar": True}}}},
     "dimension 'k': a scalar dimension has exactly one position"),
    ({"space": {"name": "x", "dimensions": {"j": {"choices": [[1]]}, "k": {"choices": [[1], [2]],
                                                                           "scalar": 1}}}},
     "dimension 'k': 'scalar' must be true or false"),
])
def test_read_space_file_says_what_is_wrong(tmp_path: Path, data, problem: str) -> None:
    p = tmp_path / "s.json"
    p.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="^" + re.escape(f"{str(p)!r} is not a space file: {problem}{_TAIL}") + "$"):
        read_space_file(p)


def test_read_space_file_accepts_valid_variants(tmp_path: Path) -> None:
    p = tmp_path / "s.json"
    for dims in ({"k": {"choices": [[1, 2.5, "a", True]]}},                      # scalar absent
                 {"k": {"choices": [[1]], "scalar": True}},                       # one position
                 {"k": {"choices": [[1], [2]], "scalar": False}, "j": {"choices": [["x"]]}}):
        data = {"space": {"name": "x", "dimensions": dims}, "extra": 1}
        p.write_text(json.dumps(data))
        got = read_space_file(p)
        assert got == data["space"]
        assert type(got) is dict
