"""Cache invalidation across the stage graph of the one-pass chain: change one upstream
input and exactly the stages downstream of it are rebuilt; the others are reused.

train -> evaluate -> fit -> search;  profile -> fit. Stages run in process on the tiny
preset with the analytic ``flops`` hardware (no timing) and given (untrained) weights
instead of training. Scoring sub-networks on the digits split (a minute each on a
loaded 2-core machine) is replaced by a deterministic score of the config: what is
tested is which stages the graph rebuilds, not accuracy.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_module

from switchnas.pipeline.context import Context
from switchnas.pipeline.stages import evaluate, fit, profile, search, train

CHAIN = {"train": train, "profile": profile, "evaluate": evaluate, "fit": fit,
         "search": search}
#: fit cross-validates one cheap model (not the default four, gbm and mlp the slowest): the
#: stage graph is the same whichever models fit tries
BASE = ("preset=tiny", "explore.enabled=false", "hardware=flops", "evaluate.n=8",
        "profile.n=12", "search.generations=2", "search.population=16", "seed=0",
        "predictor.latency_candidates=[ridge]", "predictor.accuracy_candidates=[ridge]")


def _context(run_dir: Path, *overrides: str) -> Context:
    with initialize_config_module("switchnas.conf", version_base="1.3"):
        cfg = compose("config", overrides=[*BASE, *overrides])
    return Context(cfg, run_dir)


def _run(run_dir: Path, *overrides: str) -> dict[str, tuple[bool, str]]:
    """Run the chain up to ``search``; per stage: (reused, digest)."""
    weights = run_dir.parent / "weights.safetensors"
    ctx = _context(run_dir, f"supernet.weights={weights}", *overrides)
    arts = {name: mod.run(ctx) for name, mod in CHAIN.items()}
    return {name: (a.reused, a.digest) for name, a in arts.items()}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from safetensors.torch import save_file

    from switchnas.supernets.ofa.training import ProgressiveShrinking

    def score(self: Any, net: Any, configs: list[dict[str, Any]], data: Any) -> list[float]:
        return [float(net.space.encode([c]).sum()) for c in configs]

    patch = pytest.MonkeyPatch()
    patch.setattr(ProgressiveShrinking, "evaluate", score)

    d = tmp_path_factory.mktemp("chain") / "run"
    d.mkdir()
    net = _context(d).new_supernet()
    save_file({k: v.contiguous() for k, v in net.state_dict().items()},
              str(d.parent / "weights.safetensors"))
    first = _run(d)
    assert not any(reused for reused, _ in first.values())
    yield d
    patch.undo()


def _rebuilt(run_dir: Path, *overrides: str) -> set[str]:
    return {name for name, (reused, _) in _run(run_dir, *overrides).items() if not reused}


@pytest.mark.slow  # fit and search rebuilt nine times in all
@pytest.mark.parametrize(("override", "downstream"), [
    ((), set()),
    (("evaluate.n=9",), {"evaluate", "fit", "search"}),
    (("profile.n=13",), {"profile", "fit", "search"}),
    (("search.population=17",), {"search"}),
])
def test_a_change_rebuilds_exactly_what_is_downstream(run_dir: Path, override: tuple[str, ...],
                                                      downstream: set[str]) -> None:
    assert _rebuilt(run_dir, *override) == downstream
    assert _rebuilt(run_dir, *override) == set()  # and then it is reused
    # back to the base config: the same stages are rebuilt once more
    assert _rebuilt(run_dir) == downstream
