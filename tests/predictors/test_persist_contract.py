"""Contract of :mod:`switchnas.predictors.persist`: the metadata written beside a model,
byte-stable files, and every refusal of :func:`load_predictor` with its message."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

import switchnas.predictors.persist as persist
from switchnas.predictors.fitted import FittedPredictor
from switchnas.predictors.models import AdditiveBlockModel, Ensemble, LUTSum
from switchnas.predictors.persist import (
    FORMAT,
    MAX_BYTES,
    TRUSTED_TYPES,
    PredictorFileError,
    SavedPredictor,
    load_predictor,
    save_predictor,
)

X = np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 5.0], [4.0, 4.0]])
Y = np.array([3.0, 3.5, 8.0, 8.5])


def _lut():
    return LUTSum().fit(X, Y)


def test_constants() -> None:
    assert FORMAT == {"name": "switchnas-predictor", "version": 1}
    assert MAX_BYTES == 256 * 1024 * 1024
    assert "switchnas.predictors.models.Ensemble" in TRUSTED_TYPES
    assert "switchnas.predictors.mlp.HatMLP" in TRUSTED_TYPES
    assert "sklearn.tree._tree.Tree" in TRUSTED_TYPES
    assert SavedPredictor is FittedPredictor
    assert issubclass(PredictorFileError, ValueError)


def test_save_bare_model_metadata(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "dir" / "m.skops"
    out = save_predictor(_lut(), target, encoding="enc", extra={"note": "x", "n_features": 9,
                                                                "format": "bad"})
    assert out == target and target.is_file()
    meta = json.loads((tmp_path / "sub" / "dir" / "m.skops.json").read_text())
    data = target.read_bytes()
    import hashlib
    assert meta == {"note": "x", "n_features": 2, "format": FORMAT, "encoding": "enc",
                    "class": "switchnas.predictors.models.LUTSum",
                    "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    text = (tmp_path / "sub" / "dir" / "m.skops.json").read_text()
    assert text.endswith("}\n") and text.startswith('{\n  "note"')
    assert isinstance(save_predictor(_lut(), str(tmp_path / "s.skops"), encoding="e"), Path)


def test_save_fitted_predictor(tmp_path: Path) -> None:
    fp = FittedPredictor(_lut(), "ops", {"n_features": 2, "space": "toy", "other": 1})
    save_predictor(fp, tmp_path / "a.skops")
    meta = json.loads((tmp_path / "a.skops.json").read_text())
    assert meta["encoding"] == "ops" and meta["space"] == "toy" and meta["n_features"] == 2
    assert "other" not in meta
    save_predictor(fp, tmp_path / "b.skops", encoding="ops")
    with pytest.raises(ValueError, match=r"^encoding='x' contradicts the predictor's own "
                                         r"'ops'; leave it out$"):
        save_predictor(fp, tmp_path / "c.skops", encoding="x")
    with pytest.raises(ValueError, match=r"^encoding=None: must be a non-empty string$"):
        save_predictor(_lut(), tmp_path / "d.skops")
    with pytest.raises(ValueError, match=r"^encoding='': must be a non-empty string$"):
        save_predictor(_lut(), tmp_path / "d.skops", encoding="")
    assert not (tmp_path / "c.skops").exists() and not (tmp_path / "d.skops").exists()
    # no n_features_in_: none stored
    class NoWidth(LUTSum):
        pass
    fp2 = FittedPredictor(_lut(), "e", {})
    save_predictor(fp2, tmp_path / "e.skops")
    assert json.loads((tmp_path / "e.skops.json").read_text())["n_features"] == 2
    assert "space" not in json.loads((tmp_path / "e.skops.json").read_text())


def test_round_trip_and_stable_bytes(tmp_path: Path) -> None:
    model = Ensemble(members=[LUTSum(), AdditiveBlockModel()]).fit(X, Y)
    a = save_predictor(model, tmp_path / "a.skops", encoding="enc", extra={"k": [1, 2]})
    b = save_predictor(model, tmp_path / "b.skops", encoding="enc")
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as zf:
        infos = zf.infolist()
    assert infos[-1].filename == "schema.json"
    names = [i.filename for i in infos[:-1]]
    assert names == sorted(names)
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos)
    assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
    assert all(i.external_attr == 0o644 << 16 for i in infos)
    npys = sorted(int(n[:-4]) for n in names if n.endswith(".npy"))
    assert npys and npys[0] >= 1
    fp = load_predictor(a)
    assert isinstance(fp, FittedPredictor) and fp.encoding == "enc"
    assert fp.meta["k"] == [1, 2] and fp.meta["n_features"] == 2
    assert fp.meta["format"] == FORMAT
    np.testing.assert_array_equal(fp.predict(X), model.predict(X))
    fp2 = load_predictor(str(b))
    np.testing.assert_array_equal(fp2.predict(X), model.predict(X))


def _saved(tmp_path: Path, name: str = "m.skops") -> Path:
    return save_predictor(_lut(), tmp_path / name, encoding="enc")


def _edit_meta(path: Path, **changes) -> None:
    mp = path.with_name(path.name + ".json")
    meta = json.loads(mp.read_text())
    for k, v in changes.items():
        if v is _DROP:
            meta.pop(k, None)
        else:
            meta[k] = v
    mp.write_text(json.dumps(meta))


_DROP = object()


def test_load_refuses_bad_metadata(tmp_path: Path) -> None:
    p = _saved(tmp_path)
    mp = tmp_path / "m.skops.json"
    good = mp.read_text()
    q = re_escape(str(mp))
    mp.unlink()
    with pytest.raises(PredictorFileError, match=rf"^'{q}': missing \(every predictor file "
                                                 r"has one\)$"):
        load_predictor(p)
    mp.write_text("{not json")
    with pytest.raises(PredictorFileError, match=rf"^'{q}': not a predictor metadata file: "):
        load_predictor(p)
    mp.write_text(" " * ((1 << 20) + 1))
    with pytest.raises(PredictorFileError, match=rf"^'{q}': metadata file larger than 1 MiB$"):
        load_predictor(p)
    mp.write_text(good[:-1] + " " * ((1 << 20) - len(good) + 1))  # exactly 1 MiB: read
    assert mp.stat().st_size == 1 << 20
    assert load_predictor(p).encoding == "enc"
    for bad in ([1], {"format": {"name": "switchnas-predictor", "version": 2}}):
        mp.write_text(json.dumps(bad))
        with pytest.raises(PredictorFileError, match=rf"^'{q}': not a predictor metadata file "
                                                     r"of format \{'name': 'switchnas-"
                                                     r"predictor', 'version': 1\}$"):
            load_predictor(p)
    mp.write_text(good)
    for key, value in (("encoding", 3), ("sha256", None), ("encoding", _DROP)):
        mp.write_text(good)
        _edit_meta(p, **{key: value})
        with pytest.raises(PredictorFileError, match=rf"^'{q}': 'encoding' and 'sha256' must "
                                                     r"be strings$"):
            load_predictor(p)
    for nf in (0, -1, True, "2", 2.0):
        mp.write_text(good)
        _edit_meta(p, n_features=nf)
        with pytest.raises(PredictorFileError, match=rf"^'{q}': 'n_features'={nf!r} must be "
                                                     r"an int >= 1$"):
            load_predictor(p)
    for nf in (1, None):
        mp.write_text(good)
        _edit_meta(p, n_features=nf)
        assert load_predictor(p).encoding == "enc"
    mp.write_text(good)
    _edit_meta(p, space=3)
    with pytest.raises(PredictorFileError, match=rf"^'{q}': 'space' must be a string$"):
        load_predictor(p)
    mp.write_text(good)
    _edit_meta(p, space="toy")
    assert load_predictor(p).meta["space"] == "toy"


def re_escape(s: str) -> str:
    import re
    return re.escape(s)


def test_load_refuses_bad_model_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = _saved(tmp_path)
    q = re_escape(str(p))
    data = p.read_bytes()
    p.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(PredictorFileError, match=rf"^'{q}': SHA-256 does not match its "
                                                 r"metadata$"):
        load_predictor(p)
    p.unlink()
    with pytest.raises(PredictorFileError, match=rf"^'{q}': cannot read: "):
        load_predictor(p)
    # a pickle with a matching checksum is still refused before it is read
    import hashlib
    blob = pickle.dumps(_lut())
    p.write_bytes(blob)
    _edit_meta(p, sha256=hashlib.sha256(blob).hexdigest())
    with pytest.raises(PredictorFileError, match=rf"^'{q}': not a skops file \(not a zip "
                                                 r"archive; pickles are refused\)$"):
        load_predictor(p)
    # a zip that is not a skops file
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("x.txt", "hello")
    p.write_bytes(buf.getvalue())
    _edit_meta(p, sha256=hashlib.sha256(buf.getvalue()).hexdigest())
    with pytest.raises(PredictorFileError, match=rf"^'{q}': not a skops file: "):
        load_predictor(p)


def test_size_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = _saved(tmp_path)
    q = re_escape(str(p))
    size = p.stat().st_size
    monkeypatch.setattr(persist, "MAX_BYTES", size - 1)
    with pytest.raises(PredictorFileError, match=rf"^'{q}': larger than {size - 1} bytes$"):
        load_predictor(p)
    with zipfile.ZipFile(p) as zf:
        total = sum(i.file_size for i in zf.infolist())
    monkeypatch.setattr(persist, "MAX_BYTES", size)
    assert total < size  # stored entries plus headers: the file is larger
    load_predictor(p)
    # a small archive that unpacks to more than the limit
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("schema.json", "0" * 5000)
    import hashlib
    p.write_bytes(buf.getvalue())
    _edit_meta(p, sha256=hashlib.sha256(buf.getvalue()).hexdigest())
    monkeypatch.setattr(persist, "MAX_BYTES", 4999)
    with pytest.raises(PredictorFileError, match=rf"^'{q}': unpacks to 5000 bytes, more than "
                                                 r"4999$"):
        load_predictor(p)
    monkeypatch.setattr(persist, "MAX_BYTES", 5000)
    with pytest.raises(PredictorFileError, match=rf"^'{q}': not a skops file: "):
        load_predictor(p)


class _Custom(LUTSum):
    """A subclass outside the allow-list."""


def test_untrusted_types(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _Custom().fit(X, Y)
    name = f"{_Custom.__module__}._Custom"
    with pytest.raises(PredictorFileError, match=r"^cannot save _Custom: it holds types "
                                                 r"outside the allow-list: \['"):
        save_predictor(model, tmp_path / "u.skops", encoding="e")
    assert not (tmp_path / "u.skops").exists()
    monkeypatch.setattr(persist, "TRUSTED_TYPES", (*TRUSTED_TYPES, name))
    p = save_predictor(model, tmp_path / "u.skops", encoding="e")
    assert json.loads((tmp_path / "u.skops.json").read_text())["class"] == name
    monkeypatch.setattr(persist, "TRUSTED_TYPES", TRUSTED_TYPES)
    q = re_escape(str(p))
    with pytest.raises(PredictorFileError, match=rf"^'{q}': refusing types outside the "
                                                 rf"allow-list: \['{re_escape(name)}'\]$"):
        load_predictor(p)


def test_not_an_estimator(tmp_path: Path) -> None:
    p = save_predictor({"a": 1}, tmp_path / "d.skops", encoding="e")
    meta = json.loads((tmp_path / "d.skops.json").read_text())
    assert meta["class"] == "builtins.dict" and "n_features" not in meta
    with pytest.raises(PredictorFileError, match=rf"^'{re_escape(str(p))}': holds a dict, not "
                                                 r"an estimator with predict\(\)$"):
        load_predictor(p)


def test_ids_renumbered_from_one(tmp_path: Path) -> None:
    """skops' ``id()``-based names become 1, 2, 3, ... in order of appearance."""
    import re

    p = save_predictor(AdditiveBlockModel().fit(X, Y), tmp_path / "m.skops", encoding="e")
    with zipfile.ZipFile(p) as zf:
        names = zf.namelist()
        schema = zf.read("schema.json").decode()
    found = re.findall(r'"__id__": (\d+)|"file": "(\d+)\.npy"', schema)
    ids = [int(a or b) for a, b in found]
    first_seen = list(dict.fromkeys(ids))
    assert first_seen == list(range(1, len(first_seen) + 1))
    npys = sorted(n for n in names if n.endswith(".npy"))
    assert npys and all(n[:-4].isdigit() and int(n[:-4]) >= 1 for n in npys)
    assert {int(b) for _, b in found if b} == {int(n[:-4]) for n in npys}
