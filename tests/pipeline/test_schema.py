"""Configuration errors are found up front, named as key=value, with what is allowed."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from omegaconf import DictConfig

from switchnas.pipeline.context import ConfigError, Context
from switchnas.pipeline.schema import needs, validate_config
from switchnas.pipeline.stages.fit import holdout_rows, min_rows
from switchnas.predictors.selection import select_predictor
from switchnas.search.reduce import read_space_file, write_space_file
from switchnas.supernets.ofa.mbv3 import MobileNetV3Space


def _cfg(tmp_path: Path, *overrides: str) -> DictConfig:
    with initialize_config_module("switchnas.conf", version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    return Context(cfg, tmp_path).cfg


@pytest.mark.parametrize("overrides", [
    *([f"supernet={s}", f"preset={p}"] for s, p in itertools.product(
        ["ofa_mbv3", "ofa_resnet50", "ofa_proxyless", "hat_wmt14ende", "hat_iwslt14deen"],
        ["default", "tiny"])),
    *([f"hardware={h}", f"search={s}"] for h, s in itertools.product(
        ["cpu", "onnxruntime", "cuda", "lut", "flops"], ["evolution", "nsga2", "random"])),
])
def test_every_shipped_config_is_valid(tmp_path: Path, overrides: list[str]) -> None:
    validate_config(_cfg(tmp_path, *overrides), command="run")


@pytest.mark.parametrize(("override", "message"), [
    ("profile.n=abc", "profile.n=abc: must be an integer"),
    ("profile.n=2.5", "profile.n=2.5: must be an integer"),
    ("evaluate.n=5", "evaluate.n=5: must be at least 6"),
    ("profile.n=5", "profile.n=5: must be at least 6"),
    ("fit.holdout=0.9", "fit.holdout=0.9: must be a finite number in [0, 0.9)"),
    ("fit.holdout=nan", "fit.holdout=nan: must be a finite number"),
    ("validate.n=0", "validate.n=0: must be an integer from 1"),
    ("family.k=0", "family.k=0: must be an integer from 1"),
    ("seed=-3", "seed=-3: must be an integer from 0"),
    ("progress=maybe", "progress=maybe: must be true or false"),
    ("lock_timeout=-1", "lock_timeout=-1: must be a finite number in [0,"),
    ("runtime_demo.requests=0", "runtime_demo.requests=0"),
    ("runtime_demo.target_ms=0", "runtime_demo.target_ms=0: must be a finite number in (0,"),
    ("runtime_demo.load=[1,-2]", "runtime_demo.load=[1, -2]: must be a non-empty list"),
    ("runtime_demo.enabled=3", "runtime_demo.enabled=3: must be true or false"),
    ("predictor.cv=1", "predictor.cv=1: must be an integer from 2"),
    ("predictor.accuracy_candidates=[ridge,gbn]", "unknown predictor 'gbn' (did you mean 'gbm'?)"),
    ("export.dir=/tmp/x", "export.dir=/tmp/x: must be a plain folder name"),
    ("export.dir=train", "export.dir=train: must be a plain folder name"),
    ("supernet.space_file=/etc/passwd", "supernet.space_file=/etc/passwd: '/etc/passwd' is not a space file"),
    ("supernet.space_file=/nonexistent.json", "does not exist"),
    ("supernet.weights=/nonexistent.pth", "supernet.weights=/nonexistent.pth: no such file"),
    ("supernet.finetune=yes please", "supernet.finetune=yes please: must be true or false"),
    ("+profile.nn=3", "profile.nn: unknown key (did you mean 'n'?)"),
    ("+train.epochs=3", "train.epochs: unknown key"),
    ("+sead=1", "sead: unknown key (did you mean 'seed'?)"),
    ("hardware.threads=abc", "hardware.threads=abc: must be an integer"),
    ("hardware.max_seconds=fast", "hardware.max_seconds=fast: must be a finite number"),
    ("+hardware.thraeds=2", "hardware.thraeds: unknown key (did you mean 'threads'?)"),
    ("search.population=many", "search.population=many: must be an integer"),
    ("+search.populaton=3", "search.populaton: unknown key (did you mean 'population'?)"),
    ("search.population=1", "search.population must be >= 2"),
    ("supernet.task.lr=high", "supernet.task.lr=high: must be a finite number"),
    ("supernet.net.resolutions=32", "supernet.net.resolutions=32: must be a list of ints"),
    ("data=imagefolder", "data.root=???: a value is required"),
    ("data.n_classes=ten", "data.n_classes=ten"),
    ("explore.budget=1", "explore.budget=1: must be an integer from 2"),
    ("explore.batch=0", "explore.batch=0: must be an integer from 1"),
    ("explore.storage=ftp://host/db", "unsupported database scheme 'ftp'"),
    ("explore.kappa=-1", "explore.kappa=-1: must be a finite number in [0, 100]"),
    ("store=''", "store=: must be auto, null or the path of a folder"),
])
def test_bad_values_are_named_with_what_is_allowed(tmp_path: Path, override: str,
                                                   message: str) -> None:
    # the one-pass chain, so that the minimums of fit apply to run too
    cfg = _cfg(tmp_path, override, "explore.enabled=false")
    with pytest.raises(ConfigError) as info:
        validate_config(cfg, command="run")
    assert message in str(info.value)


def test_minimums_follow_the_command(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "evaluate.n=4", "profile.n=4")
    validate_config(cfg, command="evaluate")  # evaluating 4 sub-networks is fine ...
    validate_config(cfg, command="profile")
    with pytest.raises(ConfigError, match=r"(profile|evaluate)\.n=4: must be at least 6"):
        validate_config(cfg, command="search")  # ... fitting on them is not
    validate_config(_cfg(tmp_path, "evaluate.n=4", "profile.n=4", "fit.holdout=0"),
                    command="run")
    assert needs("family", loop=False) >= {"train", "profile", "evaluate", "fit", "search",
                                           "validate"}
    assert needs("family") == {"family", "explore", "train"}
    assert "fit" not in needs("evaluate") and "demo" in needs("run")


@pytest.mark.parametrize("holdout", [0.0, 0.1, 0.2, 0.33, 0.5, 0.85])
def test_fit_minimum_is_the_real_one(holdout: float) -> None:
    rng = np.random.default_rng(0)
    least = min_rows(holdout)
    for n, ok in ((least, True), (least - 1, False)):
        rows = n - holdout_rows(n, holdout)
        X, y = rng.random((rows, 3)), rng.random(rows) + 1
        if ok:
            select_predictor(X, y, candidates=["ridge"], cv=5)
        else:
            with pytest.raises(ValueError, match="at least 4 rows"):
                select_predictor(X, y, candidates=["ridge"], cv=5)


def test_space_files_are_checked(tmp_path: Path) -> None:
    space = MobileNetV3Space.build([3, 5], [3, 4], [2, 3], [32])
    good = write_space_file(tmp_path / "space.json", space)
    assert MobileNetV3Space.from_dict(read_space_file(good)).dimensions == space.dimensions
    bad = {
        "passwd.txt": "root:x:0:0:root:/root:/bin/bash\n",
        "list.json": "[1, 2]",
        "empty.json": json.dumps({"space": {"name": "s", "dimensions": {}}}),
        "choices.json": json.dumps({"space": {"name": "s", "dimensions": {
            "ks": {"choices": [[3], []]}}}}),
        "nested.json": json.dumps({"space": {"name": "s", "dimensions": {
            "ks": {"choices": [[{"_target_": "os.system"}]]}}}}),
        "scalar.json": json.dumps({"space": {"name": "s", "dimensions": {
            "r": {"choices": [[1], [2]], "scalar": True}}}}),
        "deep.json": "[" * 100_000 + "]" * 100_000,
        "binary.bin": None,
    }
    for name, text in bad.items():
        p = tmp_path / name
        if text is None:
            p.write_bytes(bytes(range(256)) * 4)
        else:
            p.write_text(text)
        with pytest.raises(ValueError, match="not a space file|cannot be read|nested"):
            read_space_file(p)


# The command line: each user error exits 2 with one line and no traceback, before any work.
@pytest.mark.parametrize(("override", "message"), [
    ("profile.n=abc", "profile.n=abc: must be an integer"),
    ("explore.budget=1", "explore.budget=1: must be an integer from 2"),
    ("family.k=0", "family.k=0: must be an integer from 1"),
    ("supernet.space_file=/etc/passwd", "supernet.space_file=/etc/passwd: "),
])
def test_cli_user_errors_stop_before_any_work(tmp_path: Path, override: str,
                                              message: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "switchnas.pipeline.cli", "run", override,
                           f"hydra.run.dir={tmp_path}", "progress=false"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert f"switchnas: error: {message}" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "train").exists() and not (tmp_path / ".lock").exists()


_FUZZ_KEYS = ["profile.n", "evaluate.n", "validate.n", "family.k", "seed", "fit.holdout",
              "measure.rounds", "measure.max_rounds", "measure.ci_rel", "measure.isolation",
              "measure.max_seconds", "runtime_demo.requests", "runtime_demo.target_ms",
              "hardware.threads", "hardware.max_seconds", "search.population",
              "supernet.net.width_mult", "progress", "lock_timeout", "export.dir"]
_FUZZ_VALUES = ["0", "-1", "1", "3", "1e300", "-1e300", "nan", "inf", "-inf", "abc", "''",
                "null", "true", "[1,2]", "{a: 1}", "99999999999999999999999", "0.5", "2.5",
                "../..", "/etc", "process", "thread"]


def test_fuzzed_overrides_pass_or_name_the_key(tmp_path: Path) -> None:
    """Any value for any of our keys: the config is accepted or refused with a
    ConfigError naming the key; never another exception (no traceback for a user)."""
    from hydra.errors import HydraException
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from omegaconf.errors import OmegaConfBaseException

    value = st.one_of(st.sampled_from(_FUZZ_VALUES), st.integers(-10**6, 10**6).map(str),
                      st.floats(allow_nan=True, allow_infinity=True).map(repr),
                      st.text("abc019.-_/", min_size=1, max_size=8))

    @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
    @given(key=st.sampled_from(_FUZZ_KEYS), value=value)
    def check(key: str, value: str) -> None:
        try:
            cfg = _cfg(tmp_path, f"{key}={value}")
        except (HydraException, OmegaConfBaseException):
            return  # Hydra's own parser refuses it, with its own message
        try:
            validate_config(cfg, command="run")
        except ConfigError as exc:
            assert str(exc).split("=", 1)[0].strip(), str(exc)
            assert "=" in str(exc)

    check()
