"""The ``switchnas`` command.

``switchnas run [overrides]`` runs every stage (train, profile, evaluate, fit, search,
validate, family, export, demo); ``switchnas <stage> [overrides]`` runs one stage and
whatever it reads that is not already in the run directory. Both are Hydra apps over
``conf/`` (``--help``, ``--cfg job``, ``--multirun`` work as in any Hydra app).
``switchnas plugins`` lists hardware plugins; ``switchnas simulate`` replays load
traces against a bundle.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from .stages import STAGES

__all__ = ["main"]

log = logging.getLogger("switchnas")

USAGE = f"""usage: switchnas COMMAND [hydra overrides]

commands:
  run        every stage, from training to the runtime demo (train, explore, family,
             export, demo; explore.enabled=false: profile, evaluate, fit, search, validate
             instead of explore)
  {", ".join(STAGES)}
             one stage (and the stages it reads, reused when unchanged)
  reduce     a reduced design space from the validated front (supernet.space_file=)
  plugins    list installed hardware plugins
  simulate   replay load traces against a bundle (switchnas simulate --help)

examples:
  switchnas run preset=tiny hydra.run.dir=runs/tiny
  switchnas search hydra.run.dir=runs/tiny search.max_latency_ms=3
  switchnas run supernet=ofa_resnet50 hardware=onnxruntime
"""


def _print_family(ctx: Any, art: Any) -> None:
    from .stages._util import read_json

    fam = read_json(ctx.run_dir / "family" / "family.json")
    metric = fam["metric"]
    print(f"\nfamily ({ctx.cfg.supernet.name} on {ctx.plugin.name}, {metric} on the test split):")
    print(f"  {'member':<8}{'measured ms':>12}{'predicted ms':>14}{metric:>10}")
    for m in fam["members"]:
        print(f"  {m['id']:<8}{m['latency_ms']:>12.3f}{m['predicted_latency_ms']:>14.3f}"
              f"{m['accuracy']:>10.2f}")
    print(f"\nbundle: {art.path}")


def _print_trust(run_dir: Path) -> None:
    """The run's latency trust report, on the terminal and in the run's log."""
    from .stages._util import say
    from .summary import format_trust_report, trust_report

    rep = trust_report(run_dir)
    say("\n" + format_trust_report(rep), level=logging.WARNING if rep["warnings"]
           else logging.INFO)


def _execute(cfg: DictConfig) -> None:
    from switchnas.plugins.measure import MeasurementError

    from .context import ConfigError, Context
    from .lock import RunDirectoryLocked, RunLock
    from .schema import validate_config
    from .stages import (
        demo,
        evaluate,
        explore,
        export,
        family,
        fit,
        profile,
        reduce,
        search,
        train,
        validate,
    )

    stage = _STAGE or str(cfg.stage)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    modules = {"train": train, "explore": explore, "profile": profile, "evaluate": evaluate, "fit": fit,
               "search": search, "validate": validate, "family": family, "export": export,
               "reduce": reduce}
    lock = None
    try:
        if stage not in ("run", *STAGES):
            raise ConfigError(f"stage={stage!r} is not a stage; choose from "
                              f"{['run', *STAGES]}")
        ctx = Context(cfg, run_dir)
        # Every user error is found here, before any work (and before taking the lock).
        validate_config(ctx.cfg, command=stage)
        lock = RunLock(run_dir, timeout=float(ctx.cfg.get("lock_timeout", 0)),
                       command=" ".join(["switchnas", stage, *_OVERRIDES]))
        lock.acquire()
        ctx.artifacts.remove_stale_temporaries()
        if stage in modules:
            art = modules[stage].run(ctx)
            print(f"{stage}: {art.path}" + ("  (reused)" if art.reused else ""))
            if stage in ("family", "export"):
                _print_family(ctx, export.run(ctx) if stage == "export" else art)
        elif stage in ("run", "demo"):
            art = export.run(ctx)
            if cfg.runtime_demo.enabled or stage == "demo":
                demo.run(ctx)
            _print_family(ctx, art)
            _print_trust(ctx.run_dir)
    except (ConfigError, FileNotFoundError, RunDirectoryLocked) as exc:
        print(f"switchnas: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except ValueError as exc:  # invalid values deep in a component: same treatment
        print(f"switchnas: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except MeasurementError as exc:  # too few measurements survived: said once, plainly
        log.error("%s", exc)
        print(f"switchnas: error: {exc}", file=sys.stderr)
        sys.exit(1)
    finally:
        if lock is not None:
            lock.release()


_STAGE: str | None = None  # the command being run (set by main, read by the Hydra app)
_OVERRIDES: list[str] = []  # its command-line arguments (recorded in the run dir's lock)


@hydra.main(config_path="pkg://switchnas.conf", config_name="config", version_base="1.3")
def _app(cfg: DictConfig) -> None:
    _execute(cfg)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    cmd, rest = args[0], args[1:]
    if cmd == "plugins":
        from switchnas.plugins.cli import main as plugins_main

        return int(plugins_main(rest) or 0)
    if cmd == "simulate":
        from switchnas.runtime.simulate import main as simulate_main

        return int(simulate_main(rest) or 0)
    if cmd not in ("run", *STAGES):
        print(f"switchnas: unknown command {cmd!r}; choose from "
              f"{['run', *STAGES, 'plugins', 'simulate']}\n\n{USAGE}", file=sys.stderr)
        return 2
    extra: list[str] = []
    try:
        from switchnas.plugins.registry import hydra_searchpath_entries

        paths = hydra_searchpath_entries()
        if paths and not any(a.startswith("hydra.searchpath") for a in rest):
            extra.append("hydra.searchpath=[" + ",".join(paths) + "]")
    except ImportError:
        pass
    # Hydra's parser wants overrides in one run: put ours next to the user's.
    first_opt = next((i for i, a in enumerate(rest) if a.startswith("-")), len(rest))
    global _STAGE, _OVERRIDES
    saved, _STAGE, _OVERRIDES = sys.argv, cmd, list(rest)
    sys.argv = [f"switchnas {cmd}", *rest[:first_opt], *extra, *rest[first_opt:]]
    try:
        _app()
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    finally:
        sys.argv, _STAGE, _OVERRIDES = saved, None, []
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
