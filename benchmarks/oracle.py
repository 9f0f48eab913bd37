"""The search benchmark's oracle: two objectives of OFA-MobileNetV3 (w1.0) sub-networks,
fitted to measurements other projects published, scored on integer genomes at once.

* top-1 (pp): a model on the one-hot of block choices (``mbv3_one_hot``: kernel and
  expand per active block, inactive blocks zero, depth per stage) fitted to DyNAS-T's
  measured ImageNet top-1 rows (all at r=224), minus :data:`PIXEL_PENALTY_PP` per pixel
  below r=224;
* latency (ms): ``exp`` of a model of log latency on the same one-hot plus a one-hot of
  the resolution, fitted to HELP's ``lat_ms_titan_xp_64`` column.

``kind="additive"`` fits ridge regressions: both objectives (log latency for latency) are
then sums of per-stage terms, so :func:`exact_front` computes the exact Pareto front as the
pruned Minkowski sum of per-stage fronts. ``kind="boosted"`` fits gradient boosting
(scikit-learn's ``GradientBoostingRegressor``) instead: not additive, no exact front (the benchmark uses the best front that very long
searches on the oracle itself find).

Objectives are returned as the search strategies take them, both minimised:
``[latency_ms, -top1]``. :func:`hypervolume_2d` measures a set of them against a fixed
reference point (:func:`reference_point`).
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from switchnas.predictors.encodings import mbv3_configs_from_table, mbv3_one_hot
from switchnas.supernets.ofa.mbconv import MBConvSpace
from switchnas.supernets.ofa.mbv3 import MobileNetV3Space

__all__ = ["FULL_RESOLUTION", "KINDS", "LATENCY_COLUMN", "PIXEL_PENALTY_PP", "RESOLUTIONS",
           "SHARED_DATA", "ExactFront", "MobileNetV3Oracle", "build_oracle", "build_space",
           "exact_front", "hypervolume_2d", "pareto_indices", "reference_point"]

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
#: The resolutions of the benchmark's space (all present in HELP's latency data).
RESOLUTIONS = (160, 176, 192, 208, 224)
KS, EXPAND, DEPTH = (3, 5, 7), (3, 4, 6), (2, 3, 4)
GROUPS = (4, 4, 4, 4, 4)
FULL_RESOLUTION = 224
#: top-1 lost per pixel of resolution below :data:`FULL_RESOLUTION` (DyNAS-T has r=224 only)
PIXEL_PENALTY_PP = 0.04
LATENCY_COLUMN = "lat_ms_titan_xp_64"
KINDS = ("additive", "boosted")
ACCURACY_CSV = Path("ofa_mbv3_imagenet") / "dynast_ofa_mbv3_w10_top1.csv"
LATENCY_CSV = Path("ofa_mbv3_gpu_latency") / "help_ofa_mbv3_latency.csv"


def build_space(resolutions: Sequence[int] = RESOLUTIONS) -> MBConvSpace:
    """The benchmark's OFA-MobileNetV3 w1.0 space: ks {3,5,7} and e {3,4,6} per block
    (20 blocks), d {2,3,4} per stage (5 stages), r in ``resolutions``."""
    return MobileNetV3Space.build(KS, EXPAND, DEPTH, list(resolutions))


def _read_csv(path: Path) -> dict[str, list[str]]:
    if not path.is_file():
        raise FileNotFoundError(f"reference data {path} not found; the oracle is built from "
                                "../shared/data (see its README.md)")
    with path.open() as f:
        rows = list(csv.DictReader(f))
    return {k: [r[k] for r in rows] for k in rows[0]}


class _GenomeOneHot:
    """:func:`mbv3_one_hot` computed from genomes of an MBConv space, whole arrays at once.

    Columns: per block ``ks`` one-hot then ``e`` one-hot (zero when inactive), per stage
    ``d`` one-hot, then (optionally) ``r`` one-hot over ``resolutions``; the same layout as
    ``mbv3_one_hot(configs, resolutions=...)`` without or with its resolution columns.
    """

    def __init__(self, space: MBConvSpace, resolutions: Sequence[int]):
        dims = space.dimensions
        names = list(dims)
        if names != ["ks", "e", "d", "r"] or tuple(space.groups) != GROUPS:
            raise ValueError(f"the oracle needs an OFA-MobileNetV3 space (dimensions ks, e, d, r; "
                             f"groups {GROUPS}); got dimensions {names}, groups {space.groups}")
        start = np.cumsum([0] + [len(dims[n]) for n in names])
        self.pos = {n: np.arange(start[i], start[i + 1]) for i, n in enumerate(names)}
        self.length = int(start[-1])
        self.card = np.array([len(c) for n in names for c in dims[n]], dtype=np.int64)
        n_blocks, nk, ne = sum(GROUPS), len(KS), len(EXPAND)
        width = nk + ne

        def cols(name: str, allowed: Sequence[int], base: Sequence[int]) -> np.ndarray:
            """``cols[i, c]``: the column of choice ``c`` at position ``i`` of ``name``."""
            ch = dims[name]
            out = np.full((len(ch), max(len(c) for c in ch)), -1, dtype=np.int64)
            for i, c in enumerate(ch):
                bad = [v for v in c if v not in allowed]
                if bad:
                    raise ValueError(f"{name}[{i}] choices {bad} are not among the oracle's "
                                     f"{list(allowed)}")
                out[i, :len(c)] = [base[i] + allowed.index(v) for v in c]
            return out

        self.k_cols = cols("ks", KS, [b * width for b in range(n_blocks)])
        self.e_cols = cols("e", EXPAND, [b * width + nk for b in range(n_blocks)])
        d_base = n_blocks * width
        self.d_cols = cols("d", DEPTH, [d_base + s * len(DEPTH) for s in range(len(GROUPS))])
        self.d_vals = np.array([list(c) + [0] * (self.d_cols.shape[1] - len(c))
                                for c in dims["d"]], dtype=np.int64)
        r_base = d_base + len(GROUPS) * len(DEPTH)
        self.width_blocks = r_base
        self.r_vals = np.asarray(dims["r"][0], dtype=np.int64)
        self.r_cols = cols("r", list(resolutions), [r_base])[0]
        self.width = r_base + len(resolutions)
        self.block_stage = np.repeat(np.arange(len(GROUPS)), GROUPS)
        self.block_in_stage = np.concatenate([np.arange(g) for g in GROUPS])

    def check(self, genomes: Any) -> np.ndarray:
        g = np.asarray(genomes)
        if g.ndim != 2 or g.shape[1] != self.length or not np.issubdtype(g.dtype, np.integer):
            raise ValueError(f"genomes must be an integer array (n, {self.length}); got "
                             f"{g.dtype} {g.shape}")
        if g.size and ((g < 0).any() or (g >= self.card).any()):
            bad = np.argwhere((g < 0) | (g >= self.card))[0]
            raise ValueError(f"genome {bad[0]} position {bad[1]} has choice index "
                             f"{g[bad[0], bad[1]]}; that position allows 0..{self.card[bad[1]] - 1}")
        return g.astype(np.int64, copy=False)

    def resolution(self, g: np.ndarray) -> np.ndarray:
        return self.r_vals[g[:, self.pos["r"][0]]]

    def __call__(self, g: np.ndarray, *, with_r: bool) -> np.ndarray:
        n = len(g)
        X = np.zeros((n, self.width if with_r else self.width_blocks))
        rows = np.arange(n)[:, None]
        n_blocks, n_stages = len(self.block_stage), len(GROUPS)
        depth = self.d_vals[np.arange(n_stages), g[:, self.pos["d"]]]
        active = (self.block_in_stage[None, :] < depth[:, self.block_stage]).astype(float)
        X[rows, self.k_cols[np.arange(n_blocks), g[:, self.pos["ks"]]]] = active
        X[rows, self.e_cols[np.arange(n_blocks), g[:, self.pos["e"]]]] = active
        X[rows, self.d_cols[np.arange(n_stages), g[:, self.pos["d"]]]] = 1.0
        if with_r:
            X[np.arange(n), self.r_cols[g[:, self.pos["r"][0]]]] = 1.0
        return X


class MobileNetV3Oracle:
    """Latency and top-1 of OFA-MobileNetV3 sub-networks given as genomes of ``space``.

    Built by :func:`build_oracle`; :meth:`on_space` re-targets the same fitted models to
    another (e.g. restricted) space. Calling the oracle is a ``GenomeScorer``: genomes
    ``(n, P)`` to objectives ``(n, 2)`` = ``[latency_ms, -top1]``, both minimised.
    """

    def __init__(self, *, space: MBConvSpace, kind: str, accuracy_model: Any,
                 latency_model: Any, latency_resolutions: Sequence[int],
                 info: Mapping[str, Any] | None = None):
        if kind not in KINDS:
            raise ValueError(f"oracle kind={kind!r}; choose from {list(KINDS)}")
        self.space, self.kind = space, kind
        self.accuracy_model, self.latency_model = accuracy_model, latency_model
        self.latency_resolutions = tuple(int(r) for r in latency_resolutions)
        self.info = dict(info or {})
        self._onehot = _GenomeOneHot(space, self.latency_resolutions)
        if kind == "additive":  # the ridges' weights, applied without sklearn's per-call checks
            self._w_acc = np.asarray(accuracy_model.coef_, float)
            self._b_acc = float(accuracy_model.intercept_)
            self._w_lat = np.asarray(latency_model.coef_, float)
            self._b_lat = float(latency_model.intercept_)

    @property
    def additive(self) -> bool:
        """True when both objectives (log latency for latency) are sums over stages."""
        return self.kind == "additive"

    def on_space(self, space: MBConvSpace) -> MobileNetV3Oracle:
        """The same models scoring genomes of ``space`` (its choices must be among the
        oracle's: ks {3,5,7}, e {3,4,6}, d {2,3,4}, r in the latency data's resolutions)."""
        return MobileNetV3Oracle(space=space, kind=self.kind, accuracy_model=self.accuracy_model,
                                 latency_model=self.latency_model,
                                 latency_resolutions=self.latency_resolutions, info=self.info)

    def features(self, genomes: Any, *, with_r: bool = True) -> np.ndarray:
        """The one-hot the models read (``mbv3_one_hot`` layout), from genomes."""
        return self._onehot(self._onehot.check(genomes), with_r=with_r)

    def additive_terms(self, genomes: Any) -> np.ndarray:
        """``(n, 2)``: log latency and top-1, each a sum of per-stage and resolution terms
        (additive oracle only).

        Raises:
            ValueError: the oracle is not additive.
        """
        if not self.additive:
            raise ValueError(f"a {self.kind!r} oracle has no additive terms; only 'additive' has")
        return self._terms(self._onehot.check(genomes))

    def _terms(self, g: np.ndarray) -> np.ndarray:
        X = self._onehot(g, with_r=True)
        top1 = X[:, :self._onehot.width_blocks] @ self._w_acc + self._b_acc
        top1 -= PIXEL_PENALTY_PP * (FULL_RESOLUTION - self._onehot.resolution(g))
        return np.stack([X @ self._w_lat + self._b_lat, top1], axis=1)

    def top1(self, genomes: Any) -> np.ndarray:
        """Top-1 (pp) of each genome."""
        g = self._onehot.check(genomes)
        if self.additive:
            return self._terms(g)[:, 1]
        X = self._onehot(g, with_r=False)
        penalty = PIXEL_PENALTY_PP * (FULL_RESOLUTION - self._onehot.resolution(g))
        return np.asarray(self.accuracy_model.predict(X), float) - penalty

    def latency_ms(self, genomes: Any) -> np.ndarray:
        """Latency (ms, TITAN Xp, batch 64) of each genome."""
        g = self._onehot.check(genomes)
        if self.additive:
            return np.exp(self._terms(g)[:, 0])
        return np.exp(np.asarray(self.latency_model.predict(self._onehot(g, with_r=True)), float))

    def __call__(self, genomes: Any) -> np.ndarray:
        g = self._onehot.check(genomes)
        if self.additive:
            t = self._terms(g)
            return np.stack([np.exp(t[:, 0]), -t[:, 1]], axis=1)
        return np.stack([self.latency_ms(g), -self.top1(g)], axis=1)

    def evaluate(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Objectives ``(n, 2)`` of configs of ``space`` (an ``evaluate`` for the loop)."""
        return self(self.space.to_genomes(list(configs)))


def build_oracle(kind: str = "additive", *, data_dir: str | Path | None = None,
                 resolutions: Sequence[int] = RESOLUTIONS, seed: int = 0) -> MobileNetV3Oracle:
    """Fit the oracle's two models to ``data_dir`` (default ``../shared/data``).

    Args:
        kind: ``"additive"`` (ridge, exact front available) or ``"boosted"`` (gradient
            boosting: not additive).
        data_dir: the reference data folder (its ``ofa_mbv3_imagenet`` and
            ``ofa_mbv3_gpu_latency`` sub-folders are read).
        resolutions: the space's resolutions; each must be present in HELP's data.
        seed: the boosted models' random state.

    Returns:
        The oracle over :func:`build_space` ``(resolutions)``; ``info`` holds the fits'
        training R^2, row counts and chosen ridge penalties.

    Raises:
        ValueError: unknown ``kind``, or a resolution HELP did not measure.
        FileNotFoundError: the reference data is missing.
    """
    if kind not in KINDS:
        raise ValueError(f"oracle kind={kind!r}; choose from {list(KINDS)}")
    root = Path(data_dir) if data_dir is not None else SHARED_DATA
    acc_cols = _read_csv(root / ACCURACY_CSV)
    lat_cols = _read_csv(root / LATENCY_CSV)
    acc_cfgs = mbv3_configs_from_table(acc_cols)
    lat_cfgs = mbv3_configs_from_table(lat_cols)
    lat_res = sorted({int(c["r"]) for c in lat_cfgs})
    missing = [r for r in resolutions if r not in lat_res]
    if missing:
        raise ValueError(f"resolutions {missing} are not in HELP's latency data; choose from "
                         f"{lat_res}")
    # DyNAS-T measured at r=224 only: drop mbv3_one_hot's (constant) resolution column
    X_acc = mbv3_one_hot(acc_cfgs)[:, :-1]
    y_acc = np.asarray(acc_cols["top1_acc_pct"], float)
    X_lat = mbv3_one_hot(lat_cfgs, resolutions=lat_res)
    y_lat = np.log(np.asarray(lat_cols[LATENCY_COLUMN], float))
    acc_model, lat_model = _model(kind, "accuracy", seed), _model(kind, "latency", seed)
    acc_model.fit(X_acc, y_acc)
    lat_model.fit(X_lat, y_lat)
    info: dict[str, Any] = {
        "kind": kind, "accuracy_rows": len(y_acc), "latency_rows": len(y_lat),
        "latency_column": LATENCY_COLUMN, "pixel_penalty_pp": PIXEL_PENALTY_PP,
        "accuracy_r2_train": float(acc_model.score(X_acc, y_acc)),
        "log_latency_r2_train": float(lat_model.score(X_lat, y_lat)),
    }
    if kind == "additive":
        info["accuracy_alpha"] = float(acc_model.alpha_)
        info["latency_alpha"] = float(lat_model.alpha_)
    return MobileNetV3Oracle(space=build_space(resolutions), kind=kind, accuracy_model=acc_model,
                             latency_model=lat_model, latency_resolutions=lat_res, info=info)


def _model(kind: str, what: str, seed: int) -> Any:
    if kind == "additive":
        from sklearn.linear_model import RidgeCV

        return RidgeCV(alphas=np.logspace(-3, 3, 13))
    from sklearn.ensemble import GradientBoostingRegressor

    # about as accurate as ridge on held-out rows (R^2 0.99), and fast to predict
    depth, trees = (4, 300) if what == "accuracy" else (3, 300)
    return GradientBoostingRegressor(n_estimators=trees, max_depth=depth,
                                     learning_rate=0.05 if what == "accuracy" else 0.1,
                                     subsample=0.8, random_state=seed)


# -- fronts and hypervolume -------------------------------------------------------------
def pareto_indices(objectives: Any) -> np.ndarray:
    """Indices of the non-dominated rows of a 2-objective (both minimised) array, one per
    distinct point, sorted by objective 0."""
    f = np.asarray(objectives, float)
    if f.ndim != 2 or f.shape[1] != 2:
        raise ValueError(f"objectives must be (n, 2); got {f.shape}")
    order = np.lexsort((f[:, 1], f[:, 0]))
    best = np.minimum.accumulate(f[order, 1])
    keep = np.ones(len(order), bool)
    keep[1:] = f[order[1:], 1] < best[:-1]
    return order[keep]


def hypervolume_2d(objectives: Any, reference: Sequence[float] | np.ndarray) -> float:
    """The area dominated by ``objectives`` (n, 2; both minimised) and bounded by
    ``reference``; points not strictly better than it in both objectives add nothing."""
    f = np.asarray(objectives, float).reshape(-1, 2)
    ref = np.asarray(reference, float)
    f = f[(f[:, 0] < ref[0]) & (f[:, 1] < ref[1])]
    if not len(f):
        return 0.0
    p = f[pareto_indices(f)]
    heights = np.concatenate([[ref[1]], p[:-1, 1]]) - p[:, 1]
    return float(np.sum((ref[0] - p[:, 0]) * heights))


def reference_point(objectives: Any, margin: float = 0.01) -> np.ndarray:
    """The worst of each objective in ``objectives`` pushed ``margin`` of its range beyond."""
    f = np.asarray(objectives, float).reshape(-1, 2)
    lo, hi = f.min(axis=0), f.max(axis=0)
    return hi + margin * (hi - lo)


@dataclass
class ExactFront:
    """The exact Pareto front of an additive oracle over its space.

    Attributes:
        genomes: ``(n, P)`` canonical genomes, one per front point.
        objectives: ``(n, 2)`` ``[latency_ms, -top1]``, sorted by latency.
        worst: ``(2,)`` the worst latency and the worst ``-top1`` anywhere in the space.
    """

    genomes: np.ndarray
    objectives: np.ndarray
    worst: np.ndarray

    def reference(self, margin: float = 0.01) -> np.ndarray:
        """The hypervolume reference point: ``worst`` pushed ``margin`` of the objectives'
        range beyond."""
        return reference_point(np.vstack([self.objectives, self.worst]), margin)

    def hypervolume(self, margin: float = 0.01) -> float:
        return hypervolume_2d(self.objectives, self.reference(margin))


def _stage_combos(space: MBConvSpace, onehot: _GenomeOneHot, s: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Every canonical choice of stage ``s``: ``(positions, fragments (m, len(positions)))``."""
    o, g = sum(GROUPS[:s]), GROUPS[s]
    ks_pos, e_pos = onehot.pos["ks"][o:o + g], onehot.pos["e"][o:o + g]
    d_pos = onehot.pos["d"][s]
    positions = np.concatenate([ks_pos, e_pos, [d_pos]])
    frags = []
    for di, d in enumerate(space.dimensions["d"][s]):
        ranges = ([range(onehot.card[p]) for p in ks_pos[:d]]
                  + [range(onehot.card[p]) for p in e_pos[:d]])
        for combo in itertools.product(*ranges):
            row = np.zeros(len(positions), np.int64)  # inactive blocks: index 0 (canonical)
            row[:d] = combo[:d]
            row[g:g + d] = combo[d:]
            row[-1] = di
            frags.append(row)
    return positions, np.asarray(frags, dtype=np.int64)


def exact_front(oracle: MobileNetV3Oracle) -> ExactFront:
    """The exact front of an additive oracle over ``oracle.space``.

    For a fixed resolution both log latency and top-1 are sums of per-stage terms, so the
    front is the Minkowski sum of the stages' own fronts, pruned after each stage; the
    union over resolutions is pruned once more.

    Raises:
        ValueError: the oracle is not additive.
    """
    if not oracle.additive:
        raise ValueError(f"a {oracle.kind!r} oracle has no exact front; only 'additive' has")
    oh = _GenomeOneHot(oracle.space, oracle.latency_resolutions)
    base = np.zeros((1, oh.length), np.int64)
    base_terms = oracle.additive_terms(base)[0]
    # (log latency, -top1): both minimised, so one pruning rule serves every step
    sign = np.array([1.0, -1.0])
    acc_pts = np.zeros((1, 2))
    acc_choice = np.zeros((1, 0), np.int64)
    worst = np.zeros(2)
    stages = []
    for s in range(len(GROUPS)):
        positions, frags = _stage_combos(oracle.space, oh, s)
        G = np.repeat(base, len(frags), axis=0)
        G[:, positions] = frags
        terms = (oracle.additive_terms(G) - base_terms) * sign
        worst += terms.max(axis=0)
        keep = pareto_indices(terms)
        stages.append((positions, frags[keep]))
        sums = (acc_pts[:, None, :] + terms[keep][None, :, :]).reshape(-1, 2)
        pairs = np.stack(np.meshgrid(np.arange(len(acc_pts)), np.arange(len(keep)),
                                     indexing="ij"), -1).reshape(-1, 2)
        front = pareto_indices(sums)
        acc_pts = sums[front]
        acc_choice = np.concatenate([acc_choice[pairs[front, 0]],
                                     pairs[front, 1][:, None]], axis=1)
    n_r = len(oh.r_vals)
    G_r = np.repeat(base, n_r, axis=0)
    G_r[:, oh.pos["r"][0]] = np.arange(n_r)
    r_terms = oracle.additive_terms(G_r) * sign
    worst += r_terms.max(axis=0)
    worst = np.array([np.exp(worst[0]), worst[1]])
    pts = (r_terms[:, None, :] + acc_pts[None, :, :]).reshape(-1, 2)
    r_idx = np.repeat(np.arange(n_r), len(acc_pts))
    choice = np.tile(acc_choice, (n_r, 1))
    front = pareto_indices(pts)
    genomes = np.repeat(base, len(front), axis=0)
    genomes[:, oh.pos["r"][0]] = r_idx[front]
    for s, (positions, frags) in enumerate(stages):
        genomes[:, positions] = frags[choice[front, s]]
    objectives = oracle(genomes)
    expected = np.stack([np.exp(pts[front, 0]), pts[front, 1]], axis=1)
    if not np.allclose(objectives, expected, rtol=1e-9, atol=1e-9):
        raise RuntimeError("the oracle is not additive over stages: its front's sums differ "
                           "from its own scores")
    return ExactFront(genomes=genomes, objectives=objectives, worst=worst)
