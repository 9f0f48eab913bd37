"""Predictors saved without pickle: every registered estimator round-trips, anything
outside the allow-list (a pickle, a foreign type, an edited file) is refused."""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator, RegressorMixin

from switchnas.predictors.models import REGISTRY, OneHotRidge, make_predictor
from switchnas.predictors.persist import (
    PredictorFileError,
    load_predictor,
    save_predictor,
)

from ._registry_fixtures import FAST, synthetic_data

_data = synthetic_data


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_registered_predictor_round_trips(tmp_path: Path, name: str) -> None:
    X, y = _data()
    model = make_predictor(name, **FAST.get(name, {})).fit(X, y)
    path = save_predictor(model, tmp_path / f"{name}.skops", encoding="space")
    loaded = load_predictor(path)
    assert type(loaded.model) is type(model) and loaded.encoding == "space"
    Xn, _ = _data(15, seed=1)
    np.testing.assert_array_equal(loaded.predict(Xn), model.predict(Xn))
    twin = make_predictor(name, **FAST.get(name, {})).fit(X, y)
    again = save_predictor(twin, tmp_path / "again.skops", encoding="space")
    assert again.read_bytes() == path.read_bytes()  # byte-stable: stage digests are too
    meta = json.loads((tmp_path / f"{name}.skops.json").read_text())
    assert meta["encoding"] == "space" and meta["class"].endswith(type(model).__name__)
    with zipfile.ZipFile(path) as zf:  # no pickle stream inside the archive
        assert not any(zf.read(n).startswith(b"\x80") for n in zf.namelist())


def test_hat_mlp_state_is_plain_arrays() -> None:
    X, y = _data()
    model = make_predictor("hat_mlp", steps=5, hidden=8).fit(X, y)
    state = model.__getstate__()
    assert "net_" not in state
    assert all(isinstance(a, np.ndarray) for a in state["net_weights_"])
    bad = dict(state, net_weights_=state["net_weights_"][:-1])
    twin = type(model).__new__(type(model))
    with pytest.raises(ValueError, match="weight, bias"):
        twin.__setstate__(bad)


def _saved(tmp_path: Path) -> Path:
    X, y = _data()
    return save_predictor(OneHotRidge().fit(X, y), tmp_path / "m.skops", encoding="ops")


def _rehash(path: Path) -> None:
    """What an attacker would do: make the metadata agree with the edited file."""
    import hashlib

    meta_path = path.with_name(path.name + ".json")
    meta = json.loads(meta_path.read_text())
    meta["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    meta_path.write_text(json.dumps(meta))


class _Boom:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned > /tmp/switchnas-pwned",))


def test_a_pickle_is_refused(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    path.write_bytes(pickle.dumps(_Boom()))
    _rehash(path)
    with pytest.raises(PredictorFileError, match="not a zip archive"):
        load_predictor(path)


class Foreign(RegressorMixin, BaseEstimator):
    """A type that is not on the allow-list."""

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.zeros(len(X))


def test_untrusted_types_are_refused(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    model = OneHotRidge().fit(*_data())
    model.model_ = Foreign()  # type: ignore[attr-defined]
    path.write_bytes(sio.dumps(model))
    _rehash(path)
    with pytest.raises(PredictorFileError, match=r"allow-list.*Foreign"):
        load_predictor(path)
    model.model_ = os.system  # type: ignore[attr-defined]
    path.write_bytes(sio.dumps(model))
    _rehash(path)
    with pytest.raises(PredictorFileError, match="allow-list.*system"):
        load_predictor(path)
    with pytest.raises(PredictorFileError, match="allow-list"):
        save_predictor(model, tmp_path / "x.skops", encoding="space")


def test_edited_or_incomplete_files_are_refused(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    assert load_predictor(path).encoding == "ops"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(PredictorFileError, match="SHA-256"):
        load_predictor(path)
    path.with_name(path.name + ".json").unlink()
    with pytest.raises(PredictorFileError, match="missing"):
        load_predictor(path)
    path.with_name(path.name + ".json").write_text('{"format": "other"}')
    with pytest.raises(PredictorFileError, match="format"):
        load_predictor(path)


def test_a_file_without_an_estimator_names_what_it_holds(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    path.write_bytes(sio.dumps({"a": 1}))
    _rehash(path)
    with pytest.raises(PredictorFileError, match=r"holds a dict, not an estimator"):
        load_predictor(path)


def test_writes_go_through_a_hidden_temporary_beside_the_target(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each file is written to ``.<name>.<random>`` in the same folder, then renamed: a
    crash leaves no half-written file under the real name, only a hidden one."""

    moves: list[tuple[Path, Path]] = []
    real = os.replace

    def spy(src: str, dst: str | Path) -> None:
        moves.append((Path(src), Path(dst)))
        real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    path = _saved(tmp_path)
    assert [d for _, d in moves] == [path, path.with_name(path.name + ".json")]
    for src, dst in moves:
        assert src.parent == dst.parent and src.name.startswith(f".{dst.name}.")
        assert not src.exists()
