"""Mutation score of the core packages (``make mutate``): mutmut over a private copy.

mutmut writes mutants next to the code it mutates and imports them by module name, so
this script runs it in a temporary copy of the repository in which the packages are laid
out as one regular ``switchnas`` package (the installed layout); the working tree is
never touched, and other jobs running tests meanwhile see no mutant. It then counts each
module's mutants by outcome (killed, survived, timeout, suspicious, no tests, ...) and
writes ``results/mutation.json`` and ``results/mutation.md``. A run over fewer modules
than :data:`MODULES`, or over fewer tests than :data:`FAST_TESTS`, is marked partial.

Usage::

    python -m benchmarks.mutation                                # everything (hours)
    python -m benchmarks.mutation --modules search/pareto.py \\
        --tests tests/search/test_search.py                       # one module
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks._common import markdown_table, save_results

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("conf", "pipeline", "plugins", "predictors", "runtime", "search", "supernets")
#: What ``make mutate`` mutates (folders end with ``/``).
MODULES = ("search/", "runtime/", "predictors/", "pipeline/artifacts.py",
           "supernets/hat/decoding.py")
#: The fast tests of those modules (the slow command-line end-to-end tests are left out
#: with ``-m "not slow"``).
FAST_TESTS = ("tests/search", "tests/runtime", "tests/predictors",
              "tests/pipeline/test_artifacts.py", "tests/pipeline/test_cache_invalidation.py",
              "tests/supernets/hat/test_hat_decoding.py",
              "tests/supernets/hat/test_decoding_search.py")
#: mutmut's exit code of a mutant's test run -> outcome (as ``mutmut.stats``).
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests",
          34: "skipped", 35: "suspicious", 36: "timeout", 24: "timeout", -24: "timeout",
          152: "timeout", 255: "timeout", 37: "caught by type check", -11: "segfault",
          -9: "segfault", 2: "interrupted"}
_SKIP = shutil.ignore_patterns(".venv", ".git", "runs", "outputs", "multirun", "mutants",
                               "*.egg-info", "__pycache__", ".mypy_cache", ".ruff_cache",
                               ".pytest_cache", ".hypothesis")


def make_tree(dest: Path, modules: list[str], tests: list[str], marker: str) -> None:
    """A copy of the repository at ``dest`` with ``switchnas/<package>`` folders and a
    ``setup.cfg`` that tells mutmut what to mutate and which tests to run."""
    shutil.copytree(ROOT, dest, ignore=_SKIP)
    pkg = dest / "switchnas"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name in PACKAGES:
        shutil.copytree(ROOT / name, pkg / name, ignore=_SKIP)
    only = [f"switchnas/{m}*" if m.endswith("/") else f"switchnas/{m}" for m in modules]
    lines = ["[mutmut]", "source_paths = switchnas", "only_mutate =", *[f"    {p}" for p in only],
             "also_copy =", *[f"    {p}" for p in ("conf", "examples", "benchmarks")],
             "pytest_add_cli_args =", "    -p", "    no:cacheprovider", "    -m",
             f"    {marker}", "pytest_add_cli_args_test_selection =",
             *[f"    {t}" for t in tests]]
    (dest / "setup.cfg").write_text("\n".join(lines) + "\n")


def outcomes(tree: Path) -> dict[str, Counter[str]]:
    """Per mutated module (its path in the repository), mutants counted by outcome."""
    out: dict[str, Counter[str]] = {}
    for meta in sorted((tree / "mutants" / "switchnas").rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue
        module = str(meta.relative_to(tree / "mutants" / "switchnas"))[:-len(".meta")]
        out[module] = Counter("not checked" if c is None else STATUS.get(int(c), "suspicious")
                              for c in codes.values())
    return out


def summarise(counts: dict[str, Counter[str]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    cols = ("killed", "survived", "timeout", "suspicious", "no tests", "not checked")
    rows = []
    total: Counter[str] = Counter()
    for module, c in counts.items():
        total.update(c)
        rows.append({"module": module, **{k: c.get(k, 0) for k in cols},
                     "other": sum(c.values()) - sum(c.get(k, 0) for k in cols),
                     "score %": _score(c)})
    return rows, {**{k: total.get(k, 0) for k in cols}, "mutants": sum(total.values()),
                  "score %": _score(total)}


def _score(c: Counter[str]) -> float | None:
    """Killed (timeouts count as killed, as in mutmut) over the mutants that were run."""
    ran = c.get("killed", 0) + c.get("timeout", 0) + c.get("survived", 0) + c.get(
        "suspicious", 0)
    return None if not ran else round(100.0 * (c.get("killed", 0) + c.get("timeout", 0)) / ran, 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modules", nargs="+", default=list(MODULES),
                    help="files or folders (ending in /) to mutate, relative to the repository")
    ap.add_argument("--tests", nargs="+", default=list(FAST_TESTS), help="pytest selection")
    ap.add_argument("--marker", default="not slow", help="pytest -m expression")
    ap.add_argument("--max-children", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    ap.add_argument("--keep", type=Path, default=None,
                    help="run in this folder and keep it (default: a temporary one)")
    ap.add_argument("--summarise", type=Path, default=None, metavar="TREE",
                    help="do not run: summarise the mutants of an earlier --keep run "
                         "(TREE is its tree/ folder), e.g. one that was interrupted")
    args = ap.parse_args(argv)
    for m in args.modules:
        if not (ROOT / m).exists():
            ap.error(f"--modules: {m!r} does not exist under {ROOT}")
    partial = sorted(args.modules) != sorted(MODULES) or sorted(args.tests) != sorted(FAST_TESTS)
    if args.summarise is not None:
        tree, returncode, seconds = args.summarise, None, float("nan")
    else:
        work = (Path(tempfile.mkdtemp(prefix="switchnas-mutate-")) if args.keep is None
                else args.keep)
        tree = work / "tree"
        if tree.exists():
            shutil.rmtree(tree)
        make_tree(tree, args.modules, args.tests, args.marker)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        t0 = time.perf_counter()
        returncode = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children",
                                     str(args.max_children)], cwd=tree, env=env).returncode
        seconds = time.perf_counter() - t0
    counts = outcomes(tree)
    if args.keep is None and args.summarise is None:
        shutil.rmtree(work, ignore_errors=True)
    if not counts:
        print(f"mutmut produced no results (exit {returncode})", file=sys.stderr)
        return 1
    rows, total = summarise(counts)
    unchecked = total["not checked"]
    partial = partial or unchecked > 0
    data = {"partial": partial, "modules": args.modules, "tests": args.tests,
            "marker": args.marker, "mutmut_exit": returncode,
            "seconds": None if seconds != seconds else round(seconds),
            "total": total, "per_module": rows}
    md = ((f"**PARTIAL**: mutated {', '.join(args.modules)} only (the target is "
           f"{', '.join(MODULES)}); tests: {' '.join(args.tests)} (-m '{args.marker}').\n\n")
          if partial else "")
    if unchecked:
        md += (f"**INTERRUPTED**: {unchecked} of {total['mutants']} mutants were not checked; "
               "the score is over the mutants that were.\n\n")
    md += (f"Mutation score {total['score %']} % ({total['killed']} killed, {total['timeout']} "
           f"timed out, {total['survived']} survived, {total['suspicious']} suspicious of "
           f"{total['mutants']} mutants){'' if seconds != seconds else f' in {seconds / 60:.0f} min'}. "
           "Survivors include "
           "equivalent mutants, not yet separated out by hand.\n\n")
    md += markdown_table(rows)
    print(md)
    save_results("mutation", data, md)
    return 0 if returncode in (0, None) else returncode


if __name__ == "__main__":
    sys.exit(main())
