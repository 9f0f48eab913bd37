"""conf/predictor/auto.yaml names the candidates ``fit`` really tries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from switchnas.pipeline.stages.fit import candidates, fit_one
from switchnas.predictors.fitted import config_encodings
from switchnas.predictors.models import REGISTRY
from switchnas.predictors.selection import DEFAULT_CANDIDATES
from switchnas.supernets.space import ChoiceSpace, Dimension

AUTO = Path(__file__).resolve().parents[2] / "conf" / "predictor" / "auto.yaml"


def test_the_yaml_lists_the_defaults_and_says_so() -> None:
    cfg = yaml.safe_load(AUTO.read_text())
    for key in ("latency_candidates", "accuracy_candidates"):
        assert cfg[key] == list(DEFAULT_CANDIDATES), key
        assert all(name in REGISTRY for name in cfg[key])
    text = AUTO.read_text()
    assert "null" in text and "every registered candidate" not in text
    # the comment names what is left out: every registered name appears in the file
    assert all(name in text for name in REGISTRY)
    assert candidates(None) == list(DEFAULT_CANDIDATES)


def test_fit_tries_exactly_the_yaml_candidates() -> None:
    cfg = yaml.safe_load(AUTO.read_text())
    space = ChoiceSpace("toy", [Dimension("a", [[1, 2, 3]] * 4)])
    rng = np.random.default_rng(0)
    configs = [space.sample(rng) for _ in range(24)]
    y = np.asarray([2.0 + sum(c["a"]) for c in configs])
    for key, metric in (("latency_candidates", "mape"), ("accuracy_candidates", "rmse")):
        names = candidates(cfg[key])
        fitted, report = fit_one(space, config_encodings(space, configs), y, names=names,
                                 cv=3, holdout=0.2, seed=0, metric=metric)
        assert report["candidates"] == names
        assert sorted(report["cv"]["space"]) == sorted(cfg[key])
        assert report["chosen"] in cfg[key] and fitted.encoding == "space"
