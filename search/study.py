"""Real measurements as trials of an Optuna study in an SQLite file.

Each validated sub-network becomes a completed two-objective trial (latency ms,
accuracy) whose params are the config's positions, so a study can be resumed and
inspected with Optuna's own tools (``optuna-dashboard sqlite:///study.db``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from switchnas.supernets.space import ChoiceSpace

__all__ = ["record_measurements"]


def record_measurements(db: Path, study_name: str, space: ChoiceSpace,
                        rows: Sequence[Mapping[str, Any]]) -> int:
    """Add ``rows`` (``config``, ``latency_ms``, ``accuracy``, extras as user attrs) to the
    study, skipping configs it already holds. Returns the number of trials in the study."""
    import optuna
    from optuna.distributions import CategoricalDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=f"sqlite:///{db}", study_name=study_name,
                                directions=["minimize", "maximize"], load_if_exists=True)
    known = {t.user_attrs.get("config") for t in study.get_trials(deepcopy=False)}
    for row in rows:
        cfg = row["config"]
        key = json.dumps(cfg, sort_keys=True)
        if key in known:
            continue
        params: dict[str, Any] = {}
        dists: dict[str, Any] = {}
        for name, choices in space.dimensions.items():
            vals = [cfg[name]] if space.dimension(name).scalar else cfg[name]
            for i, (v, ch) in enumerate(zip(vals, choices, strict=True)):
                params[f"{name}_{i}"] = v
                dists[f"{name}_{i}"] = CategoricalDistribution(list(ch))
        attrs = {"config": key, **{k: v for k, v in row.items() if k != "config"}}
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions=dists,
            values=[float(row["latency_ms"]), float(row["accuracy"])], user_attrs=attrs))
        known.add(key)
    return len(study.trials)
