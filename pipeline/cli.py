"""The ``switchnas`` command.

``switchnas run [overrides]`` runs every stage (train, profile, evaluate, fit, search,
validate, family, export, demo); ``switchnas <stage> [overrides]`` runs one stage and
whatever it reads that is not already in the run directory. Both are Hydra apps over
``conf/`` (``--help``, ``--cfg job``, ``--multirun`` work as in any Hydra app, before or
after the overrides; ``--help`` also lists plugins that installed packages register by
entry point).
``switchnas plugins`` lists hardware plugins; ``switchnas simulate`` replays load
traces against a bundle; ``switchnas report RUN_DIR`` writes a run's static HTML report
(:func:`switchnas.pipeline.report.build_report`).
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

__all__ = ["entry_point_help", "hydra_argv", "main"]

log = logging.getLogger("switchnas")

USAGE = f"""usage: switchnas COMMAND [hydra overrides]

commands:
  run        every stage, from training to the runtime demo (train, explore, family,
             export, demo; explore.enabled=false: profile, evaluate, fit, search, validate
             instead of explore)
  {", ".join(s for s in STAGES if s != "reduce")}
             one stage (and the stages it reads, reused when unchanged)
  reduce     a reduced design space from the validated front (supernet.space_file=)
  plugins    list installed hardware plugins
  simulate   replay load traces against a bundle (switchnas simulate --help)
  report     a run's static HTML report: switchnas report RUN_DIR [--out FILE]

`switchnas COMMAND --help` lists the config groups, including plugins that installed
packages register through entry points.

examples:
  switchnas run preset=tiny hydra.run.dir=runs/tiny
  switchnas search hydra.run.dir=runs/tiny search.max_latency_ms=3
  switchnas run supernet=ofa_resnet50 hardware=onnxruntime
"""


def _print_family(ctx: Any, art: Any) -> None:
    """The family table and the bundle's path, on the terminal and in the run's log."""
    from .stages._util import read_json, say

    fam = read_json(ctx.run_dir / "family" / "family.json")
    metric = fam["metric"]
    lines = [f"\nfamily ({ctx.cfg.supernet.name} on {ctx.plugin.name}, {metric} on the test "
             "split):",
             f"  {'member':<8}{'measured ms':>12}{'predicted ms':>14}{metric:>10}"]
    lines += [f"  {m['id']:<8}{m['latency_ms']:>12.3f}{m['predicted_latency_ms']:>14.3f}"
              f"{m['accuracy']:>10.2f}" for m in fam["members"]]
    lines.append(f"\nbundle: {art.path}")
    say("\n".join(lines))


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
    from .stages._util import say

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
            say(f"{stage}: {art.path}" + ("  (reused)" if art.reused else ""))
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


def entry_point_help() -> str:
    """The ``--help`` section on plugins that installed packages register by entry point.

    Hydra's own help lists only the config groups of ``conf/`` (it ignores
    ``hydra.searchpath``), so hardware plugins from other packages, and selector policies
    (``switchnas.selectors``, chosen in Python with ``bundle.selector(policy=...)``), are
    listed here.

    Returns:
        A few lines of text, ending with a newline.
    """
    from importlib.metadata import entry_points

    from switchnas.plugins.registry import available_plugins
    from switchnas.runtime.selectors import ENTRY_POINT_GROUP as SELECTORS

    lines = ["== Plugins of installed packages (entry points) ==", ""]
    hardware = [f"{name} ({info.get('distribution') or info['target']})"
                for name, info in sorted(available_plugins().items())
                if info["source"] == "entry point"]
    lines.append("hardware (hardware=NAME): " + (", ".join(hardware) or "none installed"))
    selectors = []
    for ep in sorted(entry_points(group=SELECTORS), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        selectors.append(f"{ep.name} ({f'{dist.name} {dist.version}' if dist else ep.value})")
    lines.append("selectors (bundle.selector(policy=NAME)): "
                 + (", ".join(selectors) or "none installed"))
    return "\n".join(lines) + "\n"


# Hydra's command-line flags (hydra 1.3) that take a value: a required one, or an optional
# one restricted to these choices (``--info [plugins]``). Every other flag takes none.
_FLAG_VALUE: dict[str, tuple[str, ...] | None] = {
    "--cfg": None, "-c": None, "--package": None, "-p": None, "--config-path": None,
    "-cp": None, "--config-name": None, "-cn": None, "--config-dir": None, "-cd": None,
    "--experimental-rerun": None,
}
_FLAG_OPTIONAL_VALUE: dict[str, tuple[str, ...]] = dict.fromkeys(
    ("--info", "-i"), ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath"))
_LONG_FLAGS = ("--help", "--hydra-help", "--version", "--resolve", "--run", "--multirun",
               "--shell-completion", *(f for f in (*_FLAG_VALUE, *_FLAG_OPTIONAL_VALUE)
                                       if f.startswith("--")))


def _flag_name(arg: str) -> str:
    """``arg``'s flag as Hydra's parser reads it (argparse accepts unique long prefixes)."""
    name = arg.split("=", 1)[0]
    if name.startswith("--") and name not in _LONG_FLAGS:
        matches = [f for f in _LONG_FLAGS if f.startswith(name)]
        if len(matches) == 1:
            return matches[0]
    return name


def hydra_argv(args: list[str], extra: list[str]) -> list[str]:
    """Hydra's command line for a user's ``args`` plus the ``extra`` overrides we add.

    Hydra's parser takes the overrides as one run of positional arguments, so added
    overrides must join the user's wherever the user put flags (``-m``, ``--cfg job``,
    ``--info searchpath``): the result is the user's overrides, then ``extra``, then the
    user's flags with their values, each group in the user's order.

    Args:
        args: the arguments after the command (overrides and Hydra flags, any order).
        extra: overrides to add (e.g. ``hydra.searchpath=[...]``).

    Returns:
        The argument list to hand to Hydra (without the program name).
    """
    overrides: list[str] = []
    flags: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":  # everything after it is positional, as in argparse
            overrides += args[i + 1:]
            break
        if not arg.startswith("-"):
            overrides.append(arg)
            i += 1
            continue
        flags.append(arg)
        name = _flag_name(arg)
        nxt = args[i + 1] if i + 1 < len(args) else None
        takes = "=" not in arg and nxt is not None and (
            (name in _FLAG_VALUE and not nxt.startswith("-"))
            or nxt in _FLAG_OPTIONAL_VALUE.get(name, ()))
        if takes:
            flags.append(str(nxt))
            i += 1
        i += 1
    return [*overrides, *extra, *flags]


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
    if cmd == "report":
        from .report import main as report_main

        return report_main(rest)
    if cmd not in ("run", *STAGES):
        print(f"switchnas: unknown command {cmd!r}; choose from "
              f"{['run', *STAGES, 'plugins', 'simulate', 'report']}\n\n{USAGE}", file=sys.stderr)
        return 2
    extra: list[str] = []
    try:
        from switchnas.plugins.registry import hydra_searchpath_entries

        paths = hydra_searchpath_entries()
        if paths and not any(a.startswith("hydra.searchpath") for a in rest):
            extra.append("hydra.searchpath=[" + ",".join(paths) + "]")
    except ImportError:
        pass
    global _STAGE, _OVERRIDES
    saved, _STAGE, _OVERRIDES = sys.argv, cmd, list(rest)
    sys.argv = [f"switchnas {cmd}", *hydra_argv(rest, extra)]
    code: int = 0
    try:
        _app()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv, _STAGE, _OVERRIDES = saved, None, []
    if code == 0 and any(_flag_name(a) in ("--help", "-h") for a in rest):
        print(entry_point_help())
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
