from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from switchnas.plugins.base import Measurement
from switchnas.predictors.dataset import MeasurementDataset
from switchnas.supernets.space import ChoiceSpace, Dimension

KEY = {"device": "cpu", "threads": 1, "batch": 1}
SPACE = ChoiceSpace("toy", [Dimension("k", [[3, 5, 7]] * 2), Dimension("r", [[128, 160]],
                                                                         scalar=True)])


def _ds(n: int = 3, key: dict | None = None) -> MeasurementDataset:
    ds = MeasurementDataset(key or KEY, [])
    rng = np.random.default_rng(0)
    for i in range(n):
        ds.add(SPACE.sample(rng), Measurement(samples_ms=(1.0 + i, 1.1 + i, 1.2 + i)))
    return ds


def test_add_save_load_roundtrip(tmp_path: Path) -> None:
    ds = _ds()
    ds.add({"k": [3, 3], "r": 128}, {"median_ms": 2.0, "p10_ms": 1.9, "p90_ms": 2.2,
                                     "samples_ms": [1.9, 2.0, 2.2], "energy_mj": 0.5})
    path = ds.save(tmp_path / "sub" / "lat.json")
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    back = MeasurementDataset.load(path)
    assert back.key == KEY and back.rows == ds.rows
    assert back.y().tolist() == [1.1, 2.1, 3.1, 2.0]
    with pytest.raises(KeyError, match="energy_mj"):
        back.y("energy_mj")  # only one row has it: never a silent partial target
    X = back.X(SPACE)
    assert X.shape == (4, 3) and X.min() >= 0 and X.max() <= 1
    assert back.X(lambda cfgs: np.array([[c["r"]] for c in cfgs])).ravel()[-1] == 128


def test_merge_refuses_other_key() -> None:
    a, b = _ds(2), _ds(3)
    assert len(a.merge(b)) == 5
    other = _ds(1, key={"device": "cpu", "threads": 4, "batch": 1})
    with pytest.raises(ValueError) as err:
        a.merge(other)
    msg = str(err.value)
    assert '"threads": 1' in msg and '"threads": 4' in msg


@pytest.mark.parametrize("bad", [
    {"median_ms": -1.0, "p10_ms": 1.0, "p90_ms": 1.0, "samples_ms": [1.0]},
    {"median_ms": "fast", "p10_ms": 1.0, "p90_ms": 1.0, "samples_ms": [1.0]},
    {"median_ms": float("nan"), "p10_ms": 1.0, "p90_ms": 1.0, "samples_ms": [1.0]},
    {"median_ms": 1.0, "p10_ms": 1.0, "p90_ms": 1.0, "samples_ms": [1.0, -2.0]},
    {"median_ms": 1.0, "p10_ms": 1.0, "p90_ms": 1.0},
])
def test_bad_rows_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError, match="row 0"):
        MeasurementDataset(KEY, [{"config": {"k": [3, 3], "r": 128}, **bad}])


def test_load_refuses_garbage(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text("not json")
    with pytest.raises(ValueError, match="cannot read"):
        MeasurementDataset.load(p)
    p.write_text(json.dumps({"rows": []}))
    with pytest.raises(ValueError, match="not a measurement dataset"):
        MeasurementDataset.load(p)
    p.write_text(json.dumps({"format": 99, "key": {}, "rows": []}))
    with pytest.raises(ValueError, match="format"):
        MeasurementDataset.load(p)
