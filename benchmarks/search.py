"""Search where real evaluations are the budget: hypervolume of what was measured against
the number of real evaluations, on an oracle built from other projects' measurements.

    nice .venv/bin/python benchmarks/search.py [--quick] [--seeds 5] [--oracles additive,boosted]
                                               [--loop-budget 2000] [--batch-size 20]

The oracle (``oracle.py``): OFA-MobileNetV3 w1.0 (ks {3,5,7}, e {3,4,6} per 20 blocks,
d {2,3,4} per 5 stages, r {160,176,192,208,224}); top-1 from a model of DyNAS-T's measured
ImageNet top-1 minus 0.04 pp per pixel below 224, latency from a model of HELP's TITAN Xp
batch-64 latency. ``additive`` (ridge): the exact front is known (pruned Minkowski sum of
per-stage fronts). ``boosted`` (gradient boosting): not additive; its reference front is the
best that very long NSGA-II runs on the oracle itself find, merged with every point any
method below measured (so no method can pass 100 %).

Every oracle call is one real evaluation. Methods, ``--seeds`` seeds each:

* ``loop``: :func:`switchnas.search.loop.run_loop` with ``evaluate`` = the oracle,
  surrogates on ``space.one_hot_genomes``;
* ``today``: the pipeline's loop as it was: 60 random latency and 80 other random accuracy
  evaluations, predictors chosen by cross-validation (``switchnas.predictors``) on the
  super-network's encodings, one 128 x 40 evolution over the predictors, 20 points of its
  front (spread over the predicted latency range) measured: its measured set is those 20;
* ``evolution`` and ``nsga2``: ``EvolutionSearch()`` and ``OptunaSearch(sampler="nsga2")``
  directly on the oracle;
* ``random``: uniform random sub-networks.

Hypervolume (latency minimised, top-1 maximised) of the measured set, as % of the
exact/reference front's, against a fixed reference point (the worst latency and worst
top-1 in the space, 1 % of the range beyond). Medians over seeds, with min-max spread; a
run that stopped before its budget (the loop converged) keeps its measured set at later
checkpoints. The JSON holds every run's curve (HV % every 10 or 50 evaluations).

Inner search speed: candidates per second of ``EvolutionSearch`` scored on the additive
oracle (a one-hot ridge), against a plain numpy NSGA-II written here (same population, same
scorer), interleaved, single-threaded, several repetitions.

Goals: the loop at >= 95 % by 300 evaluations and >= 99 % by 1,000 (median); the inner
search at >= 100,000 candidates/s. ``--quick``: one seed, small budgets, a smoke run.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import markdown_table, save_results  # noqa: E402
from benchmarks.oracle import (  # noqa: E402
    MobileNetV3Oracle,
    build_oracle,
    exact_front,
    hypervolume_2d,
    pareto_indices,
    reference_point,
)
from switchnas.search.loop import run_loop  # noqa: E402
from switchnas.search.strategies import EvolutionSearch, OptunaSearch  # noqa: E402

GOALS = {"hv95_by": 300, "hv99_by": 1000, "candidates_per_s": 100_000}
METHODS = ("loop", "today", "evolution", "nsga2", "random")


# -- measured sets and their hypervolume ------------------------------------------------
def curve(objectives: np.ndarray, grid: np.ndarray, ref: np.ndarray, full_hv: float
          ) -> np.ndarray:
    """HV % of the first ``k`` rows of ``objectives`` for each ``k`` in ``grid`` (the
    whole set when ``k`` is beyond it)."""
    out = np.empty(len(grid))
    front = np.zeros((0, 2))
    done = 0
    for i, k in enumerate(grid):
        k = min(int(k), len(objectives))
        pts = np.vstack([front, objectives[done:k]])
        front = pts[pareto_indices(pts)]
        done = k
        out[i] = 100.0 * hypervolume_2d(front, ref) / full_hv
    return out


def first_reaching(grid: np.ndarray, hv: np.ndarray, goal: float, used: int) -> int | None:
    """The first evaluation count of ``grid`` at which ``hv >= goal`` (None: never within
    the ``used`` evaluations)."""
    ok = np.flatnonzero((hv >= goal) & (grid <= used))
    return int(grid[ok[0]]) if ok.size else None


# -- the methods ------------------------------------------------------------------------
def run_new_loop(oracle: MobileNetV3Oracle, budget: int, seed: int, batch_size: int, *,
                 progress: bool = False) -> np.ndarray:
    space = oracle.space
    res = run_loop(space, oracle.evaluate, budget=budget, batch_size=batch_size,
                   encode=space.one_hot_genomes, seed=seed, progress=progress)
    return np.asarray(res.objectives, float)


def _spread(latency: np.ndarray, n: int) -> list[int]:
    """``n`` indices spread evenly over the latency range (the ``validate`` stage's rule)."""
    if len(latency) <= n:
        return list(range(len(latency)))
    picks: list[int] = []
    for t in np.linspace(latency.min(), latency.max(), n):
        free = [i for i in range(len(latency)) if i not in picks]
        picks.append(min(free, key=lambda i: abs(latency[i] - t)))
    return sorted(picks)


def run_today(oracle: MobileNetV3Oracle, seed: int, net: Any, *, n_latency: int = 60,
              n_accuracy: int = 80, n_validate: int = 20) -> tuple[np.ndarray, int]:
    """The one-shot loop; returns the validated points' objectives and the evaluations
    it spent (latency and accuracy rows, then the validated points)."""
    from switchnas.predictors.selection import select_encoding_and_predictor

    space = oracle.space
    rng = np.random.default_rng(seed)
    pool = np.unique(space.sample_genomes(rng, 4 * (n_latency + n_accuracy)), axis=0)
    pool = pool[rng.permutation(len(pool))]
    g_lat, g_acc = pool[:n_latency], pool[n_latency:n_latency + n_accuracy]
    y_lat, y_acc = oracle.latency_ms(g_lat), oracle.top1(g_acc)
    lat_model, lat_rep = select_encoding_and_predictor(
        net.predictor_encodings_genomes(g_lat), y_lat, cv=5, seed=seed, metric="mape")
    acc_model, acc_rep = select_encoding_and_predictor(
        net.predictor_encodings_genomes(g_acc), y_acc, cv=5, seed=seed, metric="rmse")

    def score(genomes: np.ndarray) -> np.ndarray:
        enc = net.predictor_encodings_genomes(genomes)
        return np.stack([lat_model.predict(enc[lat_rep["encoding"]]),
                         -acc_model.predict(enc[acc_rep["encoding"]])], axis=1)

    res = EvolutionSearch(population=128, generations=40).run(space, score, seed=seed)
    front = res.front()
    picked = front[_spread(res.objectives[front, 0], n_validate)]
    measured = oracle(res.genomes[picked])
    return measured, n_latency + n_accuracy + len(picked)


def run_strategy(strategy: Any, oracle: MobileNetV3Oracle, budget: int, seed: int
                 ) -> np.ndarray:
    rows: list[np.ndarray] = []

    def record(genomes: np.ndarray, objectives: np.ndarray) -> None:
        rows.append(np.asarray(objectives, float))

    strategy.run(oracle.space, oracle, seed=seed, budget=budget, callback=record)
    return np.concatenate(rows) if rows else np.zeros((0, 2))


def run_random(oracle: MobileNetV3Oracle, budget: int, seed: int) -> np.ndarray:
    g = oracle.space.sample_genomes(np.random.default_rng(seed), budget)
    return oracle(g)


# -- a plain numpy NSGA-II (the speed baseline) -----------------------------------------
def _ranks(obj: np.ndarray) -> np.ndarray:
    """Non-dominated rank of each row (0 = front), by peeling the dominance matrix."""
    n = len(obj)
    le, lt = np.ones((n, n), bool), np.zeros((n, n), bool)
    for j in range(obj.shape[1]):
        a = obj[:, j]
        le &= a[:, None] <= a[None, :]
        lt |= a[:, None] < a[None, :]
    dom = le & lt  # dom[i, j]: row i dominates row j
    dominated_by = np.count_nonzero(dom, axis=0)
    rank = np.full(n, -1)
    current = np.flatnonzero(dominated_by == 0)
    r = 0
    while current.size:
        rank[current] = r
        dominated_by -= np.count_nonzero(dom[current], axis=0)
        dominated_by[current] = -1
        current = np.flatnonzero(dominated_by == 0)
        r += 1
    return rank


def _crowding(obj: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Crowding distance of each row within its front (all fronts at once)."""
    n = len(obj)
    crowd = np.zeros(n)
    for j in range(obj.shape[1]):
        order = np.lexsort((obj[:, j], rank))
        r, v = rank[order], obj[order, j]
        first = np.r_[True, r[1:] != r[:-1]]
        last = np.r_[r[1:] != r[:-1], True]
        starts = np.flatnonzero(first)
        span = np.repeat(np.maximum.reduceat(v, starts) - np.minimum.reduceat(v, starts),
                         np.diff(np.r_[starts, n]))
        gap = np.zeros(n)
        gap[1:-1] = v[2:] - v[:-2]
        part = np.where(span > 0, gap / np.where(span > 0, span, 1.0), 0.0)
        part[first | last] = np.inf
        crowd[order] += part
    return crowd


def numpy_nsga2(space: Any, score: Callable[[np.ndarray], np.ndarray], *, population: int,
                generations: int, seed: int = 0) -> tuple[int, np.ndarray]:
    """Textbook NSGA-II on genomes (tournament, uniform crossover, 1/P mutation, canonical
    children, rank + crowding survival); returns the number of candidates it scored and
    the objectives of its last population."""
    rng = np.random.default_rng(seed)
    cards = space.cardinalities()
    N, P = population, len(cards)
    pop = space.sample_genomes(rng, N)
    obj = score(pop)
    scored = N
    rank = _ranks(obj)
    crowd = _crowding(obj, rank)
    for _ in range(generations):
        a, b = rng.integers(N, size=(2, 2 * N))
        better = (rank[a] < rank[b]) | ((rank[a] == rank[b]) & (crowd[a] >= crowd[b]))
        parents = np.where(better, a, b)
        kids = pop[parents[:N]].copy()
        mix = rng.random((N, P)) < 0.5
        kids[mix] = pop[parents[N:]][mix]
        mut = rng.random((N, P)) < 1.0 / P
        kids[mut] = rng.integers(0, cards, size=(N, P))[mut]
        kids = space.canonical_genomes(kids)
        k_obj = score(kids)
        scored += N
        pop, obj = np.concatenate([pop, kids]), np.concatenate([obj, k_obj])
        rank = _ranks(obj)
        crowd = _crowding(obj, rank)
        keep = np.lexsort((-crowd, rank))[:N]
        # survivors keep their rank (a front depends only on the better fronts) and crowding
        pop, obj, rank, crowd = pop[keep], obj[keep], rank[keep], crowd[keep]
    return scored, obj


def bench_speed(oracle: MobileNetV3Oracle, *, population: int, generations: int, reps: int
                ) -> dict[str, Any]:
    """Candidates per second, ``EvolutionSearch`` vs :func:`numpy_nsga2`, interleaved."""
    space = oracle.space
    evo, base = [], []
    with threadpool_limits(limits=1):
        for rep in range(reps):
            order = ("evolution", "numpy") if rep % 2 == 0 else ("numpy", "evolution")
            for which in order:
                t0 = time.perf_counter()
                if which == "evolution":
                    res = EvolutionSearch(population=population, generations=generations).run(
                        space, oracle, seed=rep)
                    evo.append(res.evaluations / (time.perf_counter() - t0))
                else:
                    n, _ = numpy_nsga2(space, oracle, population=population,
                                    generations=generations, seed=rep)
                    base.append(n / (time.perf_counter() - t0))
        g = space.sample_genomes(np.random.default_rng(0), population)
        t0 = time.perf_counter()
        calls = 0
        while time.perf_counter() - t0 < 0.5:
            oracle(g)
            calls += 1
        scorer = calls * population / (time.perf_counter() - t0)
    ratios = np.asarray(evo) / np.asarray(base)
    return {"population": population, "generations": generations, "reps": reps,
            "evolution_cps": _stats(evo), "numpy_nsga2_cps": _stats(base),
            "ratio": _stats(list(ratios)), "scorer_alone_cps": scorer,
            "goal_met": bool(np.median(evo) >= GOALS["candidates_per_s"])}


def _stats(v: list[float]) -> dict[str, float]:
    a = np.asarray(v, float)
    return {"median": float(np.median(a)), "min": float(a.min()), "max": float(a.max())}


# -- the benchmark ----------------------------------------------------------------------
def reference_front(oracle: MobileNetV3Oracle, *, budget: int, seeds: int, sample: int
                    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The boosted oracle's best known front: long NSGA-II runs on the oracle itself;
    and the worst objectives seen (in those runs and a uniform sample)."""
    pts, worst_pool = [], []
    for s in range(seeds):
        res = EvolutionSearch(population=512, budget=budget).run(oracle.space, oracle, seed=100 + s)
        pts.append(res.objectives[res.front()])
        worst_pool.append(res.objectives.max(axis=0))
    worst_pool.append(oracle(oracle.space.sample_genomes(np.random.default_rng(7), sample)).max(axis=0))
    allp = np.vstack(pts)
    front = allp[pareto_indices(allp)]
    return front, np.max(worst_pool, axis=0), {"runs": seeds, "budget_per_run": budget,
                                              "population": 512, "worst_sample": sample}


def _run_method(m: str, oracle: MobileNetV3Oracle, net: Any, seed: int,
                budgets: dict[str, int], batch_size: int) -> tuple[np.ndarray, int | None]:
    """One method's measured objectives, in order, and (for ``today``) the evaluations it
    spent that are not in its measured set."""
    if m == "loop":
        return run_new_loop(oracle, budgets["loop"], seed, batch_size,
                            progress=budgets["loop"] > 500), None
    if m == "today":
        return run_today(oracle, seed, net)
    if m == "evolution":
        return run_strategy(EvolutionSearch(), oracle, budgets[m], seed), None
    if m == "nsga2":
        return run_strategy(OptunaSearch(sampler="nsga2"), oracle, budgets[m], seed), None
    return run_random(oracle, budgets[m], seed), None


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one seed, small budgets (smoke run)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per method (default 5)")
    ap.add_argument("--oracles", default="additive,boosted",
                    help="comma-separated oracle kinds (additive, boosted)")
    ap.add_argument("--batch-size", type=int, default=None,
                    help="the loop's evaluations per round (default 20)")
    ap.add_argument("--loop-budget", type=int, default=None,
                    help="the loop's real evaluations (default: the last checkpoint)")
    ap.add_argument("--name", default=None,
                    help="results file name in benchmarks/results (default search, "
                         "search_quick with --quick)")
    args = ap.parse_args(argv)
    quick = args.quick
    seeds = args.seeds or (1 if quick else 5)
    kinds = [k.strip() for k in args.oracles.split(",") if k.strip()]
    checkpoints = (40, 80) if quick else (100, 200, 300, 500, 1000, 2000)
    budgets = {"loop": args.loop_budget or checkpoints[-1], "evolution": 2000 if quick else 20_000,
               "nsga2": 300 if quick else 5000, "random": 2000 if quick else 20_000}
    batch_size = args.batch_size or 20
    ref_budget = 10_000 if quick else 300_000
    speed_kw = dict(population=128, generations=20, reps=3) if quick else dict(
        population=256, generations=100, reps=7)

    from switchnas.supernets.ofa.mbv3 import OFAMobileNetV3Net

    out: dict[str, Any] = {"quick": quick, "seeds": seeds, "checkpoints": list(checkpoints),
                           "budgets": budgets, "loop_batch_size": batch_size, "goals": GOALS,
                           "oracles": {}}
    md: list[str] = []
    additive: MobileNetV3Oracle | None = None
    for kind in kinds:
        t0 = time.perf_counter()
        oracle = build_oracle(kind)
        net = OFAMobileNetV3Net(width_mult=1.0, resolutions=list(oracle.space.dimensions["r"][0]))
        info: dict[str, Any] = {"fit": oracle.info, "build_seconds": time.perf_counter() - t0}
        if oracle.additive:
            additive = oracle
            ef = exact_front(oracle)
            front, worst = ef.objectives, ef.worst
            info["front"] = "exact (pruned Minkowski sum of per-stage fronts)"
        else:
            front, worst, how = reference_front(oracle, budget=ref_budget,
                                                seeds=1 if quick else 2,
                                                sample=20_000 if quick else 200_000)
            info["front"] = f"best found by long NSGA-II runs on the oracle ({how}), merged " \
                            "with every point measured below"
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in METHODS}
        jobs = [(s, m) for s in range(seeds) for m in METHODS]
        for s, m in tqdm(jobs, desc=f"search benchmark ({kind})"):
            t1 = time.perf_counter()
            with threadpool_limits(limits=1):  # one core each: comparable, and no contention
                obj, used = _run_method(m, oracle, net, s, budgets, batch_size)
            runs[m].append({"seed": s, "objectives": obj,
                            "evaluations": int(used if used is not None else len(obj)),
                            "seconds": time.perf_counter() - t1})

        if not oracle.additive:  # no method may pass the reference: merge what they found
            allp = np.vstack([front] + [r["objectives"] for rs in runs.values() for r in rs])
            front = allp[pareto_indices(allp)]
        ref = reference_point(np.vstack([front, worst]))
        full_hv = hypervolume_2d(front, ref)
        info.update({"front_points": len(front), "reference_point": ref.tolist(),
                     "hypervolume": full_hv})
        out["oracles"][kind] = {"oracle": info, "methods": _summarise(runs, checkpoints, ref,
                                                                      full_hv, budgets)}
        md.append(_markdown_oracle(kind, out["oracles"][kind], checkpoints))
        print(md[-1], flush=True)
    if additive is None:
        additive = build_oracle("additive")
    out["speed"] = bench_speed(additive, **speed_kw)
    md.append(_markdown_speed(out["speed"]))
    print(md[-1], flush=True)
    out["goals_met"] = _goals(out)
    md.append(_markdown_goals(out["goals_met"]))
    print(md[-1], flush=True)
    name = args.name or ("search_quick" if quick else "search")
    save_results(name, out, "\n".join(md))
    return out


def _summarise(runs: dict[str, list[dict[str, Any]]], checkpoints: tuple[int, ...],
               ref: np.ndarray, full_hv: float, budgets: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m, rs in runs.items():
        per_seed = []
        for r in rs:
            obj, used = r["objectives"], r["evaluations"]
            step = 10 if used <= 5000 else 50
            grid = np.unique(np.concatenate([np.arange(step, used + step, step),
                                             checkpoints, [used]]))
            grid = grid[grid <= used]
            if m == "today":  # one measured set, known only at the end: no curve
                hv = np.where(grid == used, 100.0 * hypervolume_2d(obj, ref) / full_hv, np.nan)
                at: dict[int, float | None] = {int(c): None for c in checkpoints}
            else:
                hv = curve(obj, grid, ref, full_hv)
                # a run that stopped before its budget (converged, space exhausted) keeps
                # its measured set at later checkpoints
                early = used < budgets.get(m, used)
                at = {int(c): float(hv[grid == min(c, used)][0])
                      if c <= used or early else None for c in checkpoints}
            per_seed.append({
                "seed": r["seed"], "evaluations": used, "seconds": r["seconds"],
                "hv_pct_at": at, "final_hv_pct": float(hv[grid == used][0]),
                "evals_to_95": first_reaching(grid, hv, 95.0, used),
                "evals_to_99": first_reaching(grid, hv, 99.0, used),
                "curve": {"evaluations": grid.tolist(),
                          "hv_pct": [None if np.isnan(x) else round(float(x), 3) for x in hv]}})
        summary: dict[str, Any] = {"per_seed": per_seed}
        for c in checkpoints:
            vals = [p["hv_pct_at"][c] for p in per_seed if p["hv_pct_at"][c] is not None]
            summary[f"hv_at_{c}"] = _stats(vals) if len(vals) == len(per_seed) else None
        summary["final_hv"] = _stats([p["final_hv_pct"] for p in per_seed])
        summary["evaluations"] = int(np.median([p["evaluations"] for p in per_seed]))
        for g in (95, 99):
            v = [p[f"evals_to_{g}"] for p in per_seed]
            med = float(np.median([np.inf if x is None else x for x in v]))
            summary[f"evals_to_{g}"] = None if np.isinf(med) else int(med)
            summary[f"seeds_reaching_{g}"] = sum(x is not None for x in v)
        summary["seconds"] = _stats([p["seconds"] for p in per_seed])
        out[m] = summary
    return out


def _fmt(s: dict[str, float] | None) -> str:
    if s is None:
        return "-"
    return f"{s['median']:.2f} [{s['min']:.2f}-{s['max']:.2f}]"


def _markdown_oracle(kind: str, res: dict[str, Any], checkpoints: tuple[int, ...]) -> str:
    info = res["oracle"]
    fit = info["fit"]
    head = (f"## {kind} oracle\n\nFit: top-1 R^2 {fit['accuracy_r2_train']:.4f} on "
            f"{fit['accuracy_rows']} DyNAS-T rows, log latency R^2 "
            f"{fit['log_latency_r2_train']:.4f} on {fit['latency_rows']} HELP rows. Front: "
            f"{info['front']}; {info['front_points']} points, hypervolume "
            f"{info['hypervolume']:.6g} against reference point (latency ms, -top1) "
            f"{[round(x, 4) for x in info['reference_point']]}.\n\n"
            "HV % of the measured set after k real evaluations, median over seeds [min-max] "
            "('-': not run that far); final: at the method's last evaluation; evaluations to "
            "95 % and 99 % (median over seeds, a seed that never got there counting as "
            "infinite; seeds that got there in brackets):\n\n")
    rows = []
    for m, s in res["methods"].items():
        row: dict[str, Any] = {"method": m, "evaluations": s["evaluations"]}
        for c in checkpoints:
            row[f"@{c}"] = _fmt(s[f"hv_at_{c}"])
        row["final"] = _fmt(s["final_hv"])
        n = len(s["per_seed"])
        for g in (95, 99):
            e = s[f"evals_to_{g}"]
            row[f"to {g} %"] = f"{e if e is not None else '-'} ({s[f'seeds_reaching_{g}']}/{n})"
        row["seconds"] = f"{s['seconds']['median']:.1f}"
        rows.append(row)
    return head + markdown_table(rows)


def _markdown_speed(sp: dict[str, Any]) -> str:
    rows = [{"search": "EvolutionSearch", "candidates/s": _fmt_int(sp["evolution_cps"])},
            {"search": "numpy NSGA-II (baseline)", "candidates/s": _fmt_int(sp["numpy_nsga2_cps"])},
            {"search": "scorer alone", "candidates/s": f"{sp['scorer_alone_cps']:,.0f}"}]
    r = sp["ratio"]
    return (f"## Inner search speed\n\nOne thread, population {sp['population']}, "
            f"{sp['generations']} generations, {sp['reps']} interleaved repetitions; scored on "
            "the additive oracle (one-hot ridge). Median [min-max]:\n\n"
            + markdown_table(rows)
            + f"\nEvolutionSearch / baseline: {r['median']:.2f} [{r['min']:.2f}-{r['max']:.2f}]\n")


def _fmt_int(s: dict[str, float]) -> str:
    return f"{s['median']:,.0f} [{s['min']:,.0f}-{s['max']:,.0f}]"


def _goals(out: dict[str, Any]) -> list[dict[str, Any]]:
    goals = []
    for kind, res in out["oracles"].items():
        loop = res["methods"]["loop"]
        for pct, by in ((95, GOALS["hv95_by"]), (99, GOALS["hv99_by"])):
            got = loop.get(f"hv_at_{by}")
            goals.append({"goal": f"loop >= {pct} % HV by {by} evaluations ({kind})",
                          "measured": "-" if got is None else f"{got['median']:.2f} %",
                          "met": "not measured" if got is None else
                          ("met" if got["median"] >= pct else "not met")})
    cps = out["speed"]["evolution_cps"]["median"]
    goals.append({"goal": f">= {GOALS['candidates_per_s']:,} candidates/s (EvolutionSearch)",
                  "measured": f"{cps:,.0f}",
                  "met": "met" if cps >= GOALS["candidates_per_s"] else "not met"})
    return goals


def _markdown_goals(goals: list[dict[str, Any]]) -> str:
    return "## Goals\n\n" + markdown_table(goals)


if __name__ == "__main__":
    main()
