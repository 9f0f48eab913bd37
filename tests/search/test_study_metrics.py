"""A study names its objectives, so Optuna's dashboard and dataframes label them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest

from switchnas.search.study import open_study, record_measurements
from switchnas.supernets.space import ChoiceSpace, Dimension

SPACE = ChoiceSpace("toy", [Dimension("a", [[0, 1, 2]] * 3)])


def test_open_study_names_the_metrics(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with open_study(db, "loop", SPACE, ["minimize", "minimize"],
                    metric_names=["latency_ms", "-top1"]) as study:
        assert study.study.metric_names == ["latency_ms", "-top1"]
    loaded = optuna.load_study(study_name="loop", storage=f"sqlite:///{db}")
    assert loaded.metric_names == ["latency_ms", "-top1"]
    with open_study(db, "loop", SPACE, ["minimize", "minimize"]):  # None: left as they are
        pass
    assert optuna.load_study(study_name="loop", storage=f"sqlite:///{db}").metric_names == [
        "latency_ms", "-top1"]


@pytest.mark.parametrize("names", [["latency_ms"], ["a", "a"], ["latency_ms", ""],
                                   ["x", "y", "z"]])
def test_bad_metric_names_are_refused(tmp_path: Path, names: list[str]) -> None:
    with pytest.raises(ValueError, match="metric_names=.*one distinct non-empty name"):
        open_study(tmp_path / "s.db", "loop", SPACE, ["minimize", "maximize"],
                   metric_names=names)
    assert not (tmp_path / "s.db").exists() or not optuna.get_all_study_names(
        f"sqlite:///{tmp_path / 's.db'}")


def test_record_measurements_names_latency_and_the_task_metric(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    config = SPACE.from_genomes(SPACE.sample_genomes(np.random.default_rng(0), 1))[0]
    rows = [{"config": config, "latency_ms": 1.5, "accuracy": 90.0}]
    assert record_measurements(db, "validate", SPACE, rows, metric_names=("latency_ms", "bleu")) == 1
    study = optuna.load_study(study_name="validate", storage=f"sqlite:///{db}")
    assert study.metric_names == ["latency_ms", "bleu"]
    assert record_measurements(db, "other", SPACE, rows) == 1
    other = optuna.load_study(study_name="other", storage=f"sqlite:///{db}")
    assert other.metric_names == ["latency_ms", "accuracy"]
