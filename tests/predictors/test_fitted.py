"""A fitted predictor carries its encoding: configs and genomes in, predictions out;
saved and loaded with the encoding's name, width and space in its metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from switchnas.predictors import FittedPredictor, fit_predictor
from switchnas.predictors.fitted import config_encodings, genome_encodings
from switchnas.predictors.models import AdditiveBlockModel, OneHotRidge
from switchnas.predictors.persist import (
    PredictorFileError,
    SavedPredictor,
    load_predictor,
    save_predictor,
)
from switchnas.supernets.ofa.resnet50 import OFAResNet50Net, ResNet50Space
from switchnas.supernets.space import ChoiceSpace, Dimension


@pytest.fixture(scope="module")
def net() -> OFAResNet50Net:
    return OFAResNet50Net(n_classes=10, width_mult_list=[0.1, 0.15, 0.2], resolutions=[24, 32])


def _work(net: OFAResNet50Net, configs: list[dict]) -> np.ndarray:
    """A latency-like target: a positive mix of the operator work."""
    ops = config_encodings(net, configs)["operators"]
    return 1.0 + ops[:, :-2] @ np.linspace(1e-6, 3e-6, ops.shape[1] - 2)


def test_fit_predictor_predicts_configs_and_genomes_alike(net: OFAResNet50Net) -> None:
    rng = np.random.default_rng(0)
    g = net.space.sample_genomes(rng, 60)
    configs = net.space.from_genomes(g)
    fitted, report = fit_predictor(net, configs, _work(net, configs),
                                   candidates=["additive", "ridge"], metric="mape")
    assert fitted.encoding == report["encoding"] == "operators"  # the target is operator work
    assert fitted.meta == {"n_features": 22, "space": net.space.name}
    new = net.space.sample_genomes(rng, 30)
    by_config = fitted.predict_configs(net, net.space.from_genomes(new))
    by_genome = fitted.predict_genomes(net, new)
    np.testing.assert_allclose(by_config, by_genome, rtol=1e-12)
    # what a caller would otherwise have to do by hand
    by_hand = fitted.model.predict(genome_encodings(net, new)["operators"])
    np.testing.assert_allclose(by_genome, by_hand, rtol=1e-12)
    assert np.mean(np.abs(by_genome / _work(net, net.space.from_genomes(new)) - 1)) < 0.02


def test_fit_predictor_restricted_to_named_encodings(net: OFAResNet50Net) -> None:
    configs = [net.space.sample(np.random.default_rng(i)) for i in range(20)]
    fitted, _ = fit_predictor(net, configs, _work(net, configs), candidates=["ridge"],
                              encodings=["space"])
    assert fitted.encoding == "space"
    with pytest.raises(ValueError, match=r"\['spaces'\].*choose from \['operators', 'space'\]"):
        fit_predictor(net, configs, _work(net, configs), encodings=["spaces"])


def test_save_load_keeps_the_encoding(net: OFAResNet50Net, tmp_path: Path) -> None:
    configs = [net.space.sample(np.random.default_rng(i)) for i in range(24)]
    fitted, _ = fit_predictor(net, configs, _work(net, configs), candidates=["additive"])
    path = save_predictor(fitted, tmp_path / "latency.skops")
    meta = json.loads((tmp_path / "latency.skops.json").read_text())
    assert (meta["encoding"], meta["n_features"], meta["space"]) == (
        fitted.encoding, 22, net.space.name)
    loaded = load_predictor(path)
    assert isinstance(loaded, FittedPredictor) and SavedPredictor is FittedPredictor
    g = net.space.sample_genomes(np.random.default_rng(5), 10)
    np.testing.assert_array_equal(loaded.predict_genomes(net, g), fitted.predict_genomes(net, g))
    with pytest.raises(ValueError, match="contradicts the predictor's own 'operators'"):
        save_predictor(fitted, tmp_path / "x.skops", encoding="space")


def test_a_file_without_the_new_metadata_still_loads(tmp_path: Path) -> None:
    X, y = np.random.default_rng(0).random((12, 3)), np.arange(12.0) + 1
    path = save_predictor(OneHotRidge().fit(X, y), tmp_path / "m.skops", encoding="space")
    mpath = tmp_path / "m.skops.json"
    meta = json.loads(mpath.read_text())
    assert meta["n_features"] == 3
    del meta["n_features"]
    mpath.write_text(json.dumps(meta))
    loaded = load_predictor(path)
    assert "n_features" not in loaded.meta and loaded.predict(X).shape == (12,)
    meta["n_features"] = "three"
    mpath.write_text(json.dumps(meta))
    with pytest.raises(PredictorFileError, match="'n_features'='three'"):
        load_predictor(path)


def test_wrong_features_space_or_encoding_are_refused(net: OFAResNet50Net) -> None:
    X, y = np.random.default_rng(0).random((10, 22)), np.arange(10.0) + 1
    fitted = FittedPredictor(AdditiveBlockModel().fit(X, y), "operators",
                             {"n_features": 22, "space": net.space.name})
    with pytest.raises(ValueError, match="encoding 'operators' with 22 columns; got .*\\(10, 5\\)"):
        fitted.predict(X[:, :5])
    with pytest.raises(ValueError, match="'ops', .* offered: \\['operators', 'space'\\]"):
        FittedPredictor(fitted.model, "ops").predict_genomes(
            net, net.space.sample_genomes(np.random.default_rng(0), 3))
    other = ResNet50Space.build([0, 1, 2], [0.2, 0.25, 0.35], 3, [24, 32], name="other")
    with pytest.raises(ValueError, match="fitted for space 'ofa_resnet50', not 'other'"):
        fitted.predict_configs(other, [other.largest()])
    with pytest.raises(ValueError, match="encoding=''"):
        FittedPredictor(fitted.model, "")
    with pytest.raises(TypeError, match="predict"):
        FittedPredictor(object(), "space")


def test_a_bare_space_offers_its_own_encoding() -> None:
    space = ChoiceSpace("toy", [Dimension("a", [[1, 2, 3]] * 3), Dimension("r", [[8, 16]],
                                                                          scalar=True)])
    rng = np.random.default_rng(0)
    configs = [space.sample(rng) for _ in range(30)]
    y = np.asarray([1 + sum(c["a"]) + c["r"] / 8 for c in configs], float)
    fitted, _ = fit_predictor(space, configs, y, candidates=["ridge"])
    assert fitted.encoding == "space"
    np.testing.assert_allclose(fitted.predict_configs(space, configs), y, rtol=1e-3)
    np.testing.assert_allclose(fitted.predict_genomes(space, space.to_genomes(configs)),
                               fitted.predict_configs(space, configs))


def test_ensemble_spread_comes_through(net: OFAResNet50Net) -> None:
    from switchnas.predictors.models import Ensemble

    configs = [net.space.sample(np.random.default_rng(i)) for i in range(16)]
    X = config_encodings(net, configs)["operators"]
    model = Ensemble(members=[AdditiveBlockModel(), OneHotRidge()]).fit(X, _work(net, configs))
    mean, std = FittedPredictor(model, "operators").predict_configs(net, configs,
                                                                    return_std=True)
    assert mean.shape == std.shape == (16,) and np.all(std >= 0) and np.any(std > 0)


class _BothHooks:
    """A super-network with both hooks: the genome hook must be the one used."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def predictor_encodings_genomes(self, genomes: np.ndarray) -> dict[str, np.ndarray]:
        self.calls.append("genomes")
        return {"g": np.asarray(genomes) * 2}

    def predictor_encodings(self, configs: list[dict]) -> dict[str, np.ndarray]:
        self.calls.append("configs")
        raise AssertionError("the config path must not be taken when the genome hook exists")


def test_genome_encodings_prefer_the_genome_hook() -> None:
    net = _BothHooks()
    out = genome_encodings(net, np.array([[1, 2], [3, 4]]))
    assert net.calls == ["genomes"]
    assert out["g"].dtype == np.float64
    np.testing.assert_array_equal(out["g"], [[2.0, 4.0], [6.0, 8.0]])
