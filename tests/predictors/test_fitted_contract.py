"""Contract of :mod:`switchnas.predictors.fitted`: encodings by hook or space, the
checks of :class:`FittedPredictor` and their messages, and :func:`fit_predictor`."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from switchnas.predictors.fitted import (
    FittedPredictor,
    config_encodings,
    describe,
    fit_predictor,
    genome_encodings,
)
from switchnas.predictors.models import Ensemble, LUTSum


class Space:
    """A toy space: configs ``{"a": int, "b": int}``, genomes ``[a, b]``."""

    def __init__(self, name: object = "toy") -> None:
        self.name = name
        self.calls: list[str] = []

    def encode(self, cfgs):
        self.calls.append("encode")
        assert all(type(c) is dict for c in cfgs)
        return [[c["a"], c["b"]] for c in cfgs]

    def encode_genomes(self, g):
        self.calls.append("encode_genomes")
        return np.asarray(g, dtype=np.int32) * 1

    def from_genomes(self, g):
        self.calls.append("from_genomes")
        return [{"a": int(r[0]), "b": int(r[1])} for r in g]


class Net:
    """A super-network with the config hook only."""

    def __init__(self, space: Space) -> None:
        self.space = space

    def predictor_encodings(self, cfgs):
        assert all(type(c) is dict for c in cfgs)
        return {"sum": [[c["a"] + c["b"]] for c in cfgs],
                "raw": [[c["a"], c["b"]] for c in cfgs]}


class GenomeNet(Net):
    def predictor_encodings_genomes(self, g):
        return {"sum": np.asarray(g).sum(axis=1, keepdims=True).astype(np.int64),
                "raw": np.asarray(g)}


CFGS = [{"a": 1, "b": 2}, {"a": 3, "b": 5}]
GENOMES = np.array([[1, 2], [3, 5]])


def test_config_encodings() -> None:
    space = Space()
    out = config_encodings(space, CFGS)
    assert list(out) == ["space"] and out["space"].dtype == np.float64
    assert out["space"].tolist() == [[1.0, 2.0], [3.0, 5.0]]
    # a net without hooks: its space's encoding
    out = config_encodings(SimpleNamespace(space=space), CFGS)
    assert list(out) == ["space"] and out["space"].tolist() == [[1.0, 2.0], [3.0, 5.0]]
    net = config_encodings(Net(space), CFGS)
    assert sorted(net) == ["raw", "sum"]
    assert net["sum"].dtype == np.float64 and net["sum"].tolist() == [[3.0], [8.0]]
    # mappings that are not dicts are passed on as dicts
    from types import MappingProxyType
    assert config_encodings(space, [MappingProxyType(c) for c in CFGS])["space"].shape == (2, 2)


def test_genome_encodings_routes() -> None:
    space = Space()
    out = genome_encodings(space, GENOMES.tolist())
    assert space.calls == ["encode_genomes"]
    assert list(out) == ["space"] and out["space"].dtype == np.float64
    net_space = Space()
    out = genome_encodings(Net(net_space), GENOMES)
    assert net_space.calls == ["from_genomes"]
    assert out["sum"].tolist() == [[3.0], [8.0]] and out["raw"].dtype == np.float64
    g_space = Space()
    out = genome_encodings(GenomeNet(g_space), GENOMES)
    assert g_space.calls == [] and out["sum"].dtype == np.float64
    assert out["sum"].tolist() == [[3.0], [8.0]]


def test_post_init_checks() -> None:
    with pytest.raises(ValueError, match=r"^encoding='': must be a non-empty string$"):
        FittedPredictor(LUTSum(), "")
    with pytest.raises(ValueError, match=r"^encoding=3: must be a non-empty string$"):
        FittedPredictor(LUTSum(), 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^model must be a fitted estimator with predict\(\), "
                                        r"got int$"):
        FittedPredictor(3, "x")
    with pytest.raises(TypeError, match=r"got SimpleNamespace$"):
        FittedPredictor(SimpleNamespace(predict=3), "x")
    f = FittedPredictor(LUTSum(), "x")
    assert f.meta == {} and f.encoding == "x"
    assert FittedPredictor(LUTSum(), "y").meta is not f.meta


def _fitted_lut(meta=None, encoding="raw"):
    X = np.array([[1.0, 2.0], [3.0, 5.0], [0.0, 1.0]])
    model = LUTSum(calibrate=False).fit(X, X.sum(1))
    return FittedPredictor(model, encoding, dict(meta or {}))


def test_predict_checks_width() -> None:
    f = _fitted_lut()
    out = f.predict([[1, 2], [3, 4]])
    assert isinstance(out, np.ndarray) and out.tolist() == [3.0, 7.0]
    with pytest.raises(ValueError, match=r"^this predictor was fitted on encoding 'raw' with 2 "
                                         r"columns; got features of shape \(2, 3\)$"):
        f.predict(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"got features of shape \(2,\)$"):
        f.predict(np.ones(2))
    # meta's n_features wins over the model's
    g = _fitted_lut({"n_features": 3})
    with pytest.raises(ValueError, match=r"with 3 columns; got features of shape \(1, 2\)$"):
        g.predict([[1.0, 2.0]])
    # neither: no check
    class Bare:
        def predict(self, X):
            return [float(np.sum(X))]

    assert FittedPredictor(Bare(), "e").predict([[1.0, 2.0, 3.0]]).tolist() == [6.0]
    assert FittedPredictor(Bare(), "e", {"n_features": "3"}).predict(
        [[1.0, 2.0, 3.0]]).tolist() == [6.0]


def test_predict_return_std() -> None:
    X = np.array([[1.0, 5.0], [2.0, 2.0], [4.0, 0.0]])
    model = Ensemble(members=[LUTSum(columns=[0], calibrate=False),
                              LUTSum(columns=[1], calibrate=False)]).fit(X, [1.0, 2.0, 3.0])
    f = FittedPredictor(model, "raw", {"n_features": 2})
    mean, std = f.predict(X, return_std=True)
    assert isinstance(mean, np.ndarray) and isinstance(std, np.ndarray)
    assert mean.tolist() == [3.0, 2.0, 2.0] and std.tolist() == [2.0, 0.0, 2.0]
    both = f.predict_from({"raw": X}, return_std=True)
    assert [v.tolist() for v in both] == [[3.0, 2.0, 2.0], [2.0, 0.0, 2.0]]
    net = Net(Space())
    cfgs = [{"a": 1, "b": 5}, {"a": 2, "b": 2}, {"a": 4, "b": 0}]
    by_cfg = f.predict_configs(net, cfgs, return_std=True)
    by_gen = f.predict_genomes(net, X.astype(int), return_std=True)
    assert isinstance(by_cfg, tuple) and len(by_cfg) == 2
    assert isinstance(by_gen, tuple) and len(by_gen) == 2
    for a, b in zip(by_cfg, by_gen, strict=True):
        assert a.tolist() == b.tolist()
    assert by_gen[1].tolist() == [2.0, 0.0, 2.0]
    assert f.predict_genomes(net, X.astype(int)).tolist() == [3.0, 2.0, 2.0]


def test_predict_from_and_space_checks() -> None:
    f = _fitted_lut({"space": "toy"}, encoding="sum")
    with pytest.raises(ValueError, match=r"^this predictor was fitted on encoding 'sum', which "
                                         r"is not among those offered: \['a', 'b'\]$"):
        f.predict_from({"b": [[1.0]], "a": [[1.0]]})
    g = _fitted_lut({"space": "toy"}, encoding="raw")
    assert g.predict_configs(Net(Space("toy")), CFGS).tolist() == [3.0, 8.0]
    assert g.predict_genomes(Net(Space("toy")), GENOMES).tolist() == [3.0, 8.0]
    with pytest.raises(ValueError, match=r"^this predictor was fitted for space 'toy', not "
                                         r"'other'$"):
        g.predict_configs(Net(Space("other")), CFGS)
    with pytest.raises(ValueError, match=r"^this predictor was fitted for space 'toy', not "
                                         r"'other'$"):
        g.predict_genomes(Net(Space("other")), GENOMES)
    # a space without a name, or a predictor without one, is not checked
    assert g.predict_configs(Net(Space(None)), CFGS).tolist() == [3.0, 8.0]
    h = _fitted_lut({}, encoding="raw")
    assert h.predict_genomes(Net(Space("other")), GENOMES).tolist() == [3.0, 8.0]
    with pytest.raises(ValueError, match=r"encoding 'raw', which is not among those offered: "
                                         r"\['space'\]$"):
        h.predict_configs(Space("other"), CFGS)


def test_describe() -> None:
    assert describe(Space("toy"), np.zeros((3, 4))) == {"n_features": 4, "space": "toy"}
    assert describe(Net(Space("n")), np.zeros((1, 2))) == {"n_features": 2, "space": "n"}
    assert describe(Space(None), np.zeros((1, 2))) == {"n_features": 2}
    assert describe(Space(7), np.zeros((1, 2))) == {"n_features": 2}
    assert type(describe(Space(), np.zeros((1, 2)))["n_features"]) is int


def _data():
    rng = np.random.default_rng(0)
    a, b = rng.integers(1, 9, 12), rng.integers(1, 9, 12)
    cfgs = [{"a": int(x), "b": int(y)} for x, y in zip(a, b, strict=True)]
    return cfgs, 2.0 * (a + b) + 1.0


def test_fit_predictor() -> None:
    cfgs, y = _data()
    net = Net(Space("toy"))
    fitted, report = fit_predictor(net, cfgs, y, candidates=["lut"], cv=3)
    assert report["encoding"] == "sum"  # LUTSum of the sum is exact; of raw too
    assert sorted(report["by_encoding"]) == ["raw", "sum"]
    assert report["folds"] == 3 and report["metric"] == "mape"
    assert fitted.encoding == report["encoding"]
    assert fitted.meta == {"n_features": 1, "space": "toy"}
    np.testing.assert_allclose(fitted.predict_configs(net, cfgs), y)
    only, rep = fit_predictor(net, cfgs, y, candidates=["lut"], encodings=["raw"],
                              metric="rmse")
    assert only.encoding == "raw" and rep["metric"] == "rmse"
    assert list(rep["by_encoding"]) == ["raw"]
    assert only.meta == {"n_features": 2, "space": "toy"}
    with pytest.raises(ValueError, match=r"^encodings=\['x', 'sum'\]: \['x'\] not offered; "
                                         r"choose from \['raw', 'sum'\]$"):
        fit_predictor(net, cfgs, y, encodings=["x", "sum"])
    with pytest.raises(ValueError, match=r"^encodings=\[\]: \(none\) not offered; choose from "
                                         r"\['raw', 'sum'\]$"):
        fit_predictor(net, cfgs, y, encodings=[])


def test_fit_predictor_passes_options() -> None:
    cfgs, y = _data()
    space = Space("toy")
    _, rep = fit_predictor(space, cfgs, y, candidates=["lut", "additive"], cv=4, seed=3,
                           log_target=True, metric="kendall")
    assert rep["encoding"] == "space" and rep["folds"] == 4 and rep["metric"] == "kendall"
    assert sorted(rep["cv"]) == ["additive", "lut"]
    _, d = fit_predictor(space, cfgs, y, candidates=["lut"])
    assert d["folds"] == 5
    with pytest.raises(ValueError, match="log_target=True needs every target > 0"):
        fit_predictor(space, cfgs, -y, candidates=["lut"], log_target=True)
    with pytest.raises(ValueError, match=r"^unknown predictor\(s\) \['nope'\]"):
        fit_predictor(space, cfgs, y, candidates=["nope"])
    # the seed and the log target reach the selection: same folds, same result
    a = fit_predictor(space, cfgs, y, candidates=["lut", "additive"], seed=1)[1]
    b = fit_predictor(space, cfgs, y, candidates=["lut", "additive"], seed=1)[1]
    c = fit_predictor(space, cfgs, y, candidates=["lut", "additive"], seed=2)[1]
    assert a["cv"] == b["cv"] and a["cv"] != c["cv"]
    lg = fit_predictor(space, cfgs, y, candidates=["lut"], seed=1, log_target=True)[1]
    assert lg["cv"] != fit_predictor(space, cfgs, y, candidates=["lut"], seed=1)[1]["cv"]


def test_predict_from_default_is_mean_only() -> None:
    g = _fitted_lut({}, encoding="raw")
    out = g.predict_from({"raw": [[1.0, 2.0]]})
    assert isinstance(out, np.ndarray) and out.tolist() == [3.0]
