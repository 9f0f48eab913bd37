"""Reduced design spaces: derived choices, the space file round trip, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from switchnas.search.reduce import (
    allowed_choices,
    allowed_choices_from_fronts,
    read_space_file,
    reduce_space,
    write_space_file,
)
from switchnas.supernets.ofa.mbv3 import MobileNetV3Space, OFAMobileNetV3Net


@pytest.fixture
def space() -> MobileNetV3Space:
    return MobileNetV3Space.build([3, 5, 7], [3, 4, 6], [2, 3, 4], [32, 40])


def test_reduced_space_keeps_used_choices(space: MobileNetV3Space) -> None:
    a, b = space.smallest(), space.smallest()
    b["d"] = [3, 3, 3, 3, 3]
    b["ks"] = [5] * 20
    b = space.canonical(b)
    reduced = reduce_space(space, [a, b], keep=["r"])
    assert reduced.dimensions["d"][0] == (2, 3)
    assert reduced.dimensions["ks"][0] == (3, 5)
    assert reduced.dimensions["e"][0] == (3,)
    assert reduced.dimensions["r"] == space.dimensions["r"]
    rng = np.random.default_rng(0)
    for _ in range(20):
        cfg = reduced.sample(rng)
        space.validate(cfg)  # a reduced config is a config of the full space
    per_pos = allowed_choices(space, [a, b], per_position=True)
    assert per_pos["ks"][0] == [3, 5] and per_pos["ks"][3] == [3]  # block 3 inactive in both
    with pytest.raises(ValueError, match="no configs"):
        allowed_choices(space, [])


def test_a_one_point_front_is_widened_by_the_next_fronts(space: MobileNetV3Space) -> None:
    # a tiny noisy run can leave the smallest sub-network alone on the front: its space holds
    # only the kept resolutions, too few to profile; the next fronts widen it
    small, big = space.smallest(), space.largest()
    allowed, used = allowed_choices_from_fronts(space, [[small]], keep=["r"])
    assert used == 1 and space.restrict(allowed).size() == 2
    allowed, used = allowed_choices_from_fronts(space, [[small], [big], [small]],
                                                min_size=1000, keep=["r"])
    assert used == 2 and space.restrict(allowed).size() >= 1000
    assert allowed["ks"][0] == [3, 7]
    # every front together still too small: all of them, the caller warns
    allowed, used = allowed_choices_from_fronts(space, [[small], [small]], min_size=1000,
                                                keep=["r"])
    assert used == 2 and space.restrict(allowed).size() == 2
    with pytest.raises(ValueError, match="min_size=0"):
        allowed_choices_from_fronts(space, [[small]], min_size=0)
    with pytest.raises(ValueError, match="no configs"):
        allowed_choices_from_fronts(space, [[], []])


def test_space_file_round_trip_into_a_supernet(tmp_path: Path) -> None:
    net = OFAMobileNetV3Net(n_classes=10, width_mult=0.5, resolutions=[24])
    reduced = net.space.restrict({"ks": [3, 5], "d": [2, 3]})
    path = write_space_file(tmp_path / "space.json", reduced, source={"why": "test"})
    data = read_space_file(path)
    net2 = OFAMobileNetV3Net(n_classes=10, width_mult=0.5, resolutions=[24], space=data)
    assert net2.space.dimensions == reduced.dimensions
    assert net2.spec()["kwargs"]["space"] == data  # bundles rebuild the reduced space
    with pytest.raises(ValueError, match="not allowed"):
        net2.activate(net.space.largest())  # kernel 7 is outside the reduced space
    (tmp_path / "bad.json").write_text('{"nope": 1}')
    with pytest.raises(ValueError, match="not a space file"):
        read_space_file(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError):
        read_space_file(tmp_path / "missing.json")
