"""A fitted predictor that carries its encoding.

A predictor is fitted on one *encoding* of sub-network configs (the space's scaled
values, per-stage operator work, ...), and must be given the same encoding later.
:class:`FittedPredictor` pairs the estimator with that encoding's name, so callers pass
configs or genomes and never re-apply an encoding by hand::

    fitted, report = fit_predictor(net, configs, latencies_ms, metric="mape")
    fitted.predict_configs(net, new_configs)      # encodes, then predicts
    fitted.predict_genomes(net, population)       # the vectorised path, same numbers
    save_predictor(fitted, "latency.skops")       # the encoding name goes in its metadata

Encodings come from a super-network's hooks: ``predictor_encodings(configs)`` and
``predictor_encodings_genomes(genomes)`` return ``{name: (n, d) array}``; a super-network
without them (or a bare search space) offers its space's own encoding as ``"space"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .selection import select_encoding_and_predictor

__all__ = ["FittedPredictor", "config_encodings", "describe", "fit_predictor",
           "genome_encodings"]


def _space(net_or_space: Any) -> Any:
    return getattr(net_or_space, "space", net_or_space)


def config_encodings(net_or_space: Any, configs: Sequence[Mapping[str, Any]]
                     ) -> dict[str, np.ndarray]:
    """Every encoding ``net_or_space`` offers, of ``configs``.

    Args:
        net_or_space: a super-network (its ``predictor_encodings`` hook when it has one,
            else its space's ``encode`` as ``"space"``) or a search space.
        configs: sub-network configs of that space.

    Returns:
        ``{name: float64 (len(configs), d)}``.
    """
    cfgs = [dict(c) for c in configs]
    if hasattr(net_or_space, "predictor_encodings"):
        out = net_or_space.predictor_encodings(cfgs)
    else:
        out = {"space": _space(net_or_space).encode(cfgs)}
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def genome_encodings(net_or_space: Any, genomes: ArrayLike) -> dict[str, np.ndarray]:
    """:func:`config_encodings` of a population of genomes ``(n, P)``: the
    ``predictor_encodings_genomes`` hook where there is one, else the config path, else
    the space's ``encode_genomes``. Equal to :func:`config_encodings` of their configs."""
    g = np.asarray(genomes)
    if hasattr(net_or_space, "predictor_encodings_genomes"):
        out = net_or_space.predictor_encodings_genomes(g)
    elif hasattr(net_or_space, "predictor_encodings"):
        out = net_or_space.predictor_encodings(_space(net_or_space).from_genomes(g))
    else:
        out = {"space": _space(net_or_space).encode_genomes(g)}
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


@dataclass(frozen=True)
class FittedPredictor:
    """A fitted estimator and the name of the encoding its features come from.

    Attributes:
        model: the fitted estimator (scikit-learn contract; ``predict(X)``).
        encoding: the name, among those the super-network offers, of its features.
        meta: what else is known: ``n_features`` (checked before predicting), ``space``
            (the space's name, checked when the encoder has one), and for a loaded file
            the rest of its metadata (format, class, sha256, user entries).
    """

    model: Any
    encoding: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.encoding, str) or not self.encoding:
            raise ValueError(f"encoding={self.encoding!r}: must be a non-empty string")
        if not callable(getattr(self.model, "predict", None)):
            raise TypeError(f"model must be a fitted estimator with predict(), got "
                            f"{type(self.model).__name__}")

    # -- predicting ------------------------------------------------------------------
    def predict(self, X: ArrayLike, *, return_std: bool = False) -> Any:
        """Predictions for rows ``X`` that are already of :attr:`encoding`.

        Args:
            X: ``(n, d)`` features of this predictor's encoding.
            return_std: also return the model's spread (only for models that have one,
                such as :class:`~switchnas.predictors.models.Ensemble`).

        Returns:
            ``(n,)`` predictions, or ``(mean, std)`` with ``return_std``.

        Raises:
            ValueError: ``X`` has a different number of columns than the model was
                fitted on (the message names the encoding).
        """
        Xa = np.asarray(X, dtype=np.float64)
        expected = self.meta.get("n_features", getattr(self.model, "n_features_in_", None))
        if expected is not None and (Xa.ndim != 2 or Xa.shape[1] != int(expected)):
            raise ValueError(f"this predictor was fitted on encoding {self.encoding!r} with "
                             f"{int(expected)} columns; got features of shape {Xa.shape}")
        if return_std:
            mean, std = self.model.predict(Xa, return_std=True)
            return np.asarray(mean), np.asarray(std)
        return np.asarray(self.model.predict(Xa))

    def predict_from(self, encodings: Mapping[str, ArrayLike], *,
                     return_std: bool = False) -> Any:
        """Predictions from a dict of encodings (several predictors sharing one
        :func:`genome_encodings` call); this predictor picks its own.

        Raises:
            ValueError: :attr:`encoding` is not among ``encodings`` (the message lists them).
        """
        if self.encoding not in encodings:
            raise ValueError(f"this predictor was fitted on encoding {self.encoding!r}, which "
                             f"is not among those offered: {sorted(encodings)}")
        return self.predict(encodings[self.encoding], return_std=return_std)

    def predict_configs(self, net_or_space: Any, configs: Sequence[Mapping[str, Any]], *,
                        return_std: bool = False) -> Any:
        """Encode ``configs`` the way this predictor was fitted, then predict.

        Args:
            net_or_space: the super-network (or space) the predictor was fitted for.
            configs: its sub-network configs.
            return_std: see :meth:`predict`.

        Raises:
            ValueError: the space differs from the one fitted on, or it does not offer
                this predictor's encoding.
        """
        self._check_space(net_or_space)
        return self.predict_from(config_encodings(net_or_space, configs),
                                 return_std=return_std)

    def predict_genomes(self, net_or_space: Any, genomes: ArrayLike, *,
                        return_std: bool = False) -> Any:
        """:meth:`predict_configs` of a population of genomes ``(n, P)``, vectorised."""
        self._check_space(net_or_space)
        return self.predict_from(genome_encodings(net_or_space, genomes),
                                 return_std=return_std)

    def _check_space(self, net_or_space: Any) -> None:
        want = self.meta.get("space")
        have = getattr(_space(net_or_space), "name", None)
        if want is not None and have is not None and want != have:
            raise ValueError(f"this predictor was fitted for space {want!r}, not {have!r}")


def fit_predictor(net_or_space: Any, configs: Sequence[Mapping[str, Any]], y: ArrayLike, *,
                  candidates: Sequence[str] | None = None, cv: int = 5, seed: int = 0,
                  log_target: bool = False, metric: str = "auto",
                  encodings: Sequence[str] | None = None
                  ) -> tuple[FittedPredictor, dict[str, Any]]:
    """Choose an encoding and a model by cross-validation, refit on everything.

    Args:
        net_or_space: the super-network (or space) whose encodings are tried.
        configs: measured sub-network configs.
        y: one target per config.
        candidates, cv, seed, log_target, metric: as in
            :func:`~switchnas.predictors.selection.select_predictor`.
        encodings: names of the encodings to try (default: every one offered).

    Returns:
        ``(FittedPredictor, report)``, the report as
        :func:`~switchnas.predictors.selection.select_encoding_and_predictor`'s.

    Raises:
        ValueError: an unknown encoding name (the message lists those offered), or any
            error of the selection (too few rows, unknown candidates).
    """
    Xs = config_encodings(net_or_space, configs)
    if encodings is not None:
        unknown = [e for e in encodings if e not in Xs]
        if unknown or not encodings:
            raise ValueError(f"encodings={list(encodings)}: {unknown or '(none)'} not offered; "
                             f"choose from {sorted(Xs)}")
        Xs = {e: Xs[e] for e in encodings}
    model, report = select_encoding_and_predictor(Xs, y, candidates=candidates, cv=cv,
                                                  seed=seed, log_target=log_target,
                                                  metric=metric)
    enc = report["encoding"]
    return FittedPredictor(model, enc, describe(net_or_space, Xs[enc])), report


def describe(net_or_space: Any, X: np.ndarray) -> dict[str, Any]:
    """The metadata :class:`FittedPredictor` checks: the features' width and the space's
    name."""
    meta: dict[str, Any] = {"n_features": int(np.shape(X)[1])}
    name = getattr(_space(net_or_space), "name", None)
    if isinstance(name, str):
        meta["space"] = name
    return meta
