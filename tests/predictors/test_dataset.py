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


def _batch(n: int = 4):
    from switchnas.plugins.batch import BatchPolicy, measure_interleaved

    timers = [(lambda v=v: v) for v in (1.0, 2.0, 3.0, 4.0)[:n]]
    timers[1] = lambda: 1 / 0  # this row is dropped
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return measure_interleaved(timers, lambda: 2.0,
                                   BatchPolicy(rounds=2, max_rounds=2, runs_per_visit=1,
                                               max_failures=1))


def test_from_batch_keeps_rows_and_the_record(tmp_path: Path) -> None:
    result = _batch()
    configs = [{"k": [3, 3], "r": 128}, {"k": [5, 5], "r": 128}, {"k": [7, 7], "r": 128},
               {"k": [3, 5], "r": 160}]
    ds = MeasurementDataset.from_batch(KEY, configs, result)
    assert len(ds) == 3 and ds.configs() == [configs[0], configs[2], configs[3]]
    assert ds.y().tolist() == pytest.approx([1.0, 3.0, 4.0])
    assert ds.rows[0]["meta"]["n_rounds"] == 2 and "ci_low_ms" in ds.rows[0]["meta"]
    meta = ds.meta
    assert meta["dropped"] == 1 and meta["failures"][0]["index"] == 1
    assert "ZeroDivisionError" in meta["failures"][0]["reason"]
    assert meta["protocol"]["name"] == "interleaved-reference"
    assert meta["warnings"]["raised"] == 2
    assert len(meta["reference_ms"]) == len(result.reference_ms) >= 2 * 2  # the drift record
    assert set(meta["repeatability"]) >= {"kendall", "rel_error", "noise_floor"}
    assert "overloaded" in meta["conditions"]
    back = MeasurementDataset.load(ds.save(tmp_path / "lat.json"))
    assert back.meta == meta and back.rows == ds.rows
    with pytest.raises(ValueError, match="3 configs for a batch of 4"):
        MeasurementDataset.from_batch(KEY, configs[:3], result)


def test_files_without_meta_still_load(tmp_path: Path) -> None:
    data = _ds(2).to_dict()
    del data["meta"]
    p = tmp_path / "old.json"
    p.write_text(json.dumps(data))
    back = MeasurementDataset.load(p)
    assert back.meta == {} and len(back) == 2


def test_merge_keeps_both_metas() -> None:
    a = MeasurementDataset(KEY, _ds(1).rows, meta={"protocol": {"name": "a"}})
    b = MeasurementDataset(KEY, _ds(2).rows, meta={"protocol": {"name": "b"}})
    assert a.merge(b).meta == {"merged": [a.meta, b.meta]}
    assert a.merge(_ds(1)).meta == a.meta


def test_to_dict_layout_and_the_spread_of_a_zero_median() -> None:
    """The saved layout, and a row measured as 0 ms has no spread (not a division by 0)."""
    rows = [{"config": {"a": 1}, "median_ms": 0.0, "p10_ms": 0.0, "p90_ms": 0.0,
             "samples_ms": [0.0]},
            {"config": {"a": 2}, "median_ms": 2.0, "p10_ms": 1.0, "p90_ms": 3.0,
             "samples_ms": [2.0]}]
    ds = MeasurementDataset({"plugin": "x"}, rows, meta={"n": 1})
    d = ds.to_dict()
    assert list(d) == ["format", "key", "key_hash", "meta", "rows"]
    assert d["key_hash"] == ds.key_hash and d["key"] == {"plugin": "x"} and d["meta"] == {"n": 1}
    assert ds.rel_spread().tolist() == [0.0, 1.0]
