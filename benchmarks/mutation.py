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
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
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
              "tests/pipeline/test_artifacts.py", "tests/pipeline/test_artifacts_contract.py",
              "tests/pipeline/test_cache_invalidation.py",
              "tests/supernets/hat/test_hat_decoding.py",
              "tests/supernets/hat/test_decoding_search.py",
              "tests/supernets/hat/test_decoding_contract.py")
#: mutmut's exit code of a mutant's test run -> outcome (as ``mutmut.stats``).
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests",
          34: "skipped", 35: "suspicious", 36: "timeout", 24: "timeout", -24: "timeout",
          152: "timeout", 255: "timeout", 37: "caught by type check", -11: "segfault",
          -9: "segfault", 2: "interrupted"}
#: Protocol classes are left unmutated: mutmut adds attributes to every class it mutates,
#: and a runtime-checkable Protocol with extra attributes no longer matches its
#: implementations (their bodies are only docstrings and ``...`` anyway).
_PROTOCOL = re.compile(r"^(class \w+\((?:[^)]*\b)?Protocol\b[^)]*\):)", re.M)
#: mutmut leaves decorated functions unmutated, which would hide e.g. the whole of
#: ``beam_search`` (``@torch.no_grad()``) from the score; in the copy, these decorators of
#: module-level functions are applied at the end of the module instead (same behaviour once
#: the module is imported: nothing in these modules calls them at import time).
_HOISTED = ("torch.no_grad()", "contextmanager")
_DECORATED = re.compile(r"^@(" + "|".join(map(re.escape, _HOISTED)) + r")\n(def (\w+)\()", re.M)
EQUIVALENT = Path(__file__).resolve().parent / "mutation_equivalent.toml"
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
    for source in pkg.rglob("*.py"):
        text = source.read_text()
        marked = _PROTOCOL.sub(r"\1  # pragma: no mutate block", text)
        marked = hoist_decorators(marked)
        if marked != text:
            source.write_text(marked)
    link = dest.parent / "shared"  # the reference data tests read ../shared/data
    if (ROOT.parent / "shared").is_dir() and not link.is_symlink():  # (kept from a --keep run)
        link.symlink_to(ROOT.parent / "shared")
    (dest / "setup.cfg").write_text(mutmut_config(modules, tests, marker))


def mutmut_config(modules: list[str], tests: list[str], marker: str) -> str:
    """The ``setup.cfg`` that tells mutmut what to mutate and which tests to run."""
    only = [f"switchnas/{m}*" if m.endswith("/") else f"switchnas/{m}" for m in modules]
    lines = ["[mutmut]", "source_paths = switchnas", "only_mutate =", *[f"    {p}" for p in only],
             "also_copy =", *[f"    {p}" for p in ("conf", "examples", "benchmarks")],
             "pytest_add_cli_args =", "    -p", "    no:cacheprovider", "    -m",
             f"    {marker}", "pytest_add_cli_args_test_selection =",
             *[f"    {t}" for t in tests]]
    return "\n".join(lines) + "\n"


def hoist_decorators(text: str) -> str:
    """``text`` with each module-level function decorated by one of :data:`_HOISTED`
    undecorated, and ``name = decorator(name)`` appended at the end of the module."""
    hoisted = [(m.group(1), m.group(3)) for m in _DECORATED.finditer(text)]
    if not hoisted:
        return text
    text = _DECORATED.sub(r"\2", text)
    return text.rstrip("\n") + "\n\n" + "".join(
        f"{name} = {deco}({name})  # pragma: no mutate\n" for deco, name in hoisted)


def keep_outcomes(tree: Path, before: dict[str, dict[str, Any]], rerun: set[str]) -> None:
    """Put back the outcomes of the mutants a ``--rerun`` did not check: mutmut rewrites
    each module's ``.meta`` with the mutants it ran and forgets the others."""
    for module, meta in meta_files(tree).items():
        data = json.loads(meta.read_text())
        codes = data["exit_code_by_key"]
        for name, code in before.get(module, {}).items():
            if name not in rerun and codes.get(name) is None:
                codes[name] = code
        meta.write_text(json.dumps(data))


def meta_files(tree: Path) -> dict[str, Path]:
    """Mutated module (its path in the repository) -> mutmut's ``.meta`` file for it."""
    root = tree / "mutants" / "switchnas"
    return {str(meta.relative_to(root))[:-len(".meta")]: meta
            for meta in sorted(root.rglob("*.py.meta"))}


def all_mutants(tree: Path) -> dict[str, str]:
    """Every mutant mutmut generated in ``tree`` -> the module it mutates."""
    return {name: module for module, meta in meta_files(tree).items()
            for name in json.loads(meta.read_text())["exit_code_by_key"]}


def outcomes(tree: Path, only: set[str] | None = None,
             equivalent: set[str] | frozenset[str] = frozenset()
             ) -> tuple[dict[str, Counter[str]], dict[str, str]]:
    """Per mutated module, its mutants (or those in ``only``) counted by outcome; and each
    mutant's outcome. A mutant listed in ``equivalent`` that survived is "equivalent"."""
    out: dict[str, Counter[str]] = {}
    by_name: dict[str, str] = {}
    for module, meta in meta_files(tree).items():
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        for name, code in codes.items():
            if only is not None and name not in only:
                continue
            status = "not checked" if code is None else STATUS.get(int(code), "suspicious")
            if status in ("survived", "no tests") and name in equivalent:
                status = "equivalent"
            by_name[name] = status
            out.setdefault(module, Counter())[status] += 1
    return out, by_name


COLUMNS = ("killed", "timeout", "survived", "no tests", "suspicious", "equivalent",
           "not checked")


def summarise(counts: dict[str, Counter[str]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows = []
    total: Counter[str] = Counter()
    for module, c in counts.items():
        total.update(c)
        rows.append({"module": module, **{k: c.get(k, 0) for k in COLUMNS},
                     "other": sum(c.values()) - sum(c.get(k, 0) for k in COLUMNS),
                     "score %": _score(c)})
    killed, ran = _killed_ran(total)
    lo, hi = wilson(killed, ran)
    return rows, {**{k: total.get(k, 0) for k in COLUMNS}, "mutants": sum(total.values()),
                  "score %": _score(total), "ci95 %": [lo, hi]}


def _killed_ran(c: Counter[str]) -> tuple[int, int]:
    """Killed (timeouts count as killed, as in mutmut) and the non-equivalent mutants that
    were checked; a mutant no fast test reaches ("no tests") counts as not killed."""
    killed = c.get("killed", 0) + c.get("timeout", 0)
    return killed, killed + sum(c.get(k, 0) for k in ("survived", "suspicious", "no tests"))


def _score(c: Counter[str]) -> float | None:
    killed, ran = _killed_ran(c)
    return None if not ran else round(100.0 * killed / ran, 1)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float | None, float | None]:
    """The Wilson score interval (in %) of a proportion ``k / n``."""
    if n == 0:
        return None, None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5 / (1 + z * z / n)
    return round(100 * (centre - half), 1), round(100 * (centre + half), 1)


def load_equivalent(path: Path = EQUIVALENT) -> dict[str, str]:
    """Mutants judged equivalent by hand (``mutant name = "why"``), from a TOML table."""
    if not path.exists():
        return {}
    data = tomllib.loads(path.read_text())
    bad = {k: v for k, v in data.items() if not isinstance(v, str) or not v.strip()}
    if bad:
        raise ValueError(f"{path}: every entry needs a reason string; bad: {sorted(bad)}")
    return dict(data)


def _mutmut(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=tree, env=env,
                          text=True, stdout=None if args[0] == "run" else subprocess.PIPE)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modules", nargs="+", default=list(MODULES),
                    help="files or folders (ending in /) to mutate, relative to the repository")
    ap.add_argument("--tests", nargs="+", default=list(FAST_TESTS), help="pytest selection")
    ap.add_argument("--marker", default="not slow", help="pytest -m expression")
    ap.add_argument("--max-children", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    ap.add_argument("--sample", type=int, default=None, metavar="N",
                    help="check a seeded uniform random sample of N mutants instead of all "
                         "(the score then carries a 95 %% Wilson interval)")
    ap.add_argument("--seed", type=int, default=0, help="seed of --sample")
    ap.add_argument("--rerun", nargs="+", default=None, metavar="MUTANT",
                    help="with --keep: check these mutants again (e.g. after new tests) "
                         "in the kept tree, whose tests are refreshed from the repository")
    ap.add_argument("--keep", type=Path, default=None,
                    help="run in this folder and keep it (default: a temporary one)")
    ap.add_argument("--summarise", type=Path, default=None, metavar="TREE",
                    help="do not run: summarise the mutants of an earlier --keep run "
                         "(TREE is its tree/ folder), e.g. one that was interrupted")
    ap.add_argument("--out", type=Path, default=None, metavar="DIR",
                    help="write mutation.json/.md here instead of benchmarks/results/ "
                         "(e.g. for a one-module run that should not replace the saved score)")
    args = ap.parse_args(argv)
    for m in args.modules:
        if not (ROOT / m).exists():
            ap.error(f"--modules: {m!r} does not exist under {ROOT}")
    if args.sample is not None and args.sample < 1:
        ap.error(f"--sample must be a positive number of mutants, got {args.sample}")
    if args.rerun and args.keep is None:
        ap.error("--rerun needs --keep TREE_PARENT of an earlier run")
    equivalent = load_equivalent()
    partial = sorted(args.modules) != sorted(MODULES) or sorted(args.tests) != sorted(FAST_TESTS)
    sample: list[str] | None = None
    returncode: int | None = None
    seconds = float("nan")
    work = (Path(tempfile.mkdtemp(prefix="switchnas-mutate-")) if args.keep is None
            else args.keep)
    tree = args.summarise if args.summarise is not None else work / "tree"
    sample_file = tree / "sample.json"
    if args.summarise is None and not args.rerun:
        if tree.exists():
            shutil.rmtree(tree)
        make_tree(tree, args.modules, args.tests, args.marker)
        t0 = time.perf_counter()
        if args.sample is None:
            returncode = _mutmut(tree, "run", "--max-children", str(args.max_children)).returncode
        else:
            # generate every mutant and collect the test stats; the filter matches nothing,
            # so mutmut stops right after (its exit status is expected to be non-zero)
            _mutmut(tree, "run", "--max-children", str(args.max_children),
                    "switchnas.none.x_none__mutmut_1")
            names = sorted(all_mutants(tree))
            if not names:
                print("mutmut generated no mutants", file=sys.stderr)
                return 1
            sample = random.Random(args.seed).sample(names, min(args.sample, len(names)))
            sample_file.write_text(json.dumps({"seed": args.seed, "of": len(names),
                                               "mutants": sample}, indent=1))
            returncode = _mutmut(tree, "run", "--max-children", str(args.max_children),
                                 *sample).returncode
        seconds = time.perf_counter() - t0
    elif args.rerun:
        for dest in (tree / "tests", tree / "mutants" / "tests"):  # tests written since
            shutil.rmtree(dest, ignore_errors=True)                 # (mutmut runs its copy)
            shutil.copytree(ROOT / "tests", dest, ignore=_SKIP)
        # the test selection of this call (new test files included); mutmut then collects
        # the coverage stats of the tests it has not seen before
        for cfg in (tree / "setup.cfg", tree / "mutants" / "setup.cfg"):
            cfg.write_text(mutmut_config(args.modules, args.tests, args.marker))
        before = {module: json.loads(meta.read_text())["exit_code_by_key"]
                  for module, meta in meta_files(tree).items()}
        t0 = time.perf_counter()
        returncode = _mutmut(tree, "run", "--max-children", str(args.max_children),
                             *args.rerun).returncode
        seconds = time.perf_counter() - t0
        keep_outcomes(tree, before, set(args.rerun))
    if sample is None and sample_file.exists():
        info = json.loads(sample_file.read_text())
        sample, args.seed = info["mutants"], info["seed"]
    generated = len(all_mutants(tree)) if tree.exists() else 0
    counts, by_name = outcomes(tree, None if sample is None else set(sample), set(equivalent))
    survivors = sorted(n for n, s in by_name.items() if s in ("survived", "no tests",
                                                               "suspicious"))
    diffs = {n: _mutmut(tree, "show", n).stdout.strip() for n in survivors}
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
            "generated": generated,
            "sample": None if sample is None else {"seed": args.seed, "size": len(sample)},
            "total": total, "per_module": rows,
            "equivalent": {n: equivalent[n] for n, s in by_name.items() if s == "equivalent"},
            "survivors": survivors}
    md = ((f"**PARTIAL**: mutated {', '.join(args.modules)} only (the target is "
           f"{', '.join(MODULES)}); tests: {' '.join(args.tests)} (-m '{args.marker}').\n\n")
          if partial else "")
    if unchecked:
        md += (f"**INTERRUPTED**: {unchecked} of {total['mutants']} mutants were not checked; "
               "the score is over the mutants that were.\n\n")
    scope = (f"a seeded random sample (seed {args.seed}) of {len(sample)} of the {generated} "
             "mutants mutmut generated" if sample is not None else f"{total['mutants']} mutants")
    lo, hi = total["ci95 %"]
    md += (f"Mutation score **{total['score %']} %** (95 % interval {lo}–{hi} %) over {scope}: "
           f"{total['killed']} killed, {total['timeout']} timed out, {total['survived']} "
           f"survived, {total['no tests']} reached by no fast test, {total['suspicious']} "
           f"suspicious; {total['equivalent']} survivors judged equivalent by hand "
           f"(`benchmarks/mutation_equivalent.toml`, reasons below) are left out"
           f"{'' if seconds != seconds else f'; {seconds / 60:.0f} min'}.\n\n")
    md += markdown_table(rows)
    if data["equivalent"]:
        md += "\n## Judged equivalent\n\n" + "".join(
            f"- `{n}`: {why}\n" for n, why in sorted(data["equivalent"].items()))
    if survivors:
        md += "\n## Survivors\n\n" + "".join(
            f"`{n}`\n\n```diff\n{diffs[n]}\n```\n\n" for n in survivors)
    print(md)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    save_results("mutation", data, md, out_dir=args.out)
    return 0 if returncode in (0, None) or sample is not None else returncode


if __name__ == "__main__":
    sys.exit(main())
