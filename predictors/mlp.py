"""HAT's latency-predictor recipe as a scikit-learn estimator (torch inside ``fit``).

Hardware-Aware Transformers (Wang et al., 2020) train a 4 x 400 ReLU MLP on features
divided by fixed per-feature constants, with Adam at lr 1e-5, batch 128, 5000 steps of
MSE, on the latency divided by a per-device constant. :class:`HatMLP` does exactly that
by default; ``feature_scale``/``target_scale`` left as ``None`` take the training data's
per-feature maximum and the target maximum instead of HAT's hand-chosen constants.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_array, check_is_fitted, check_X_y

__all__ = ["HatMLP", "HAT_FEATURE_SCALE", "HAT_TARGET_SCALE"]

#: HAT's divisors for its 10 SuperTransformer features (``latency_predictor.py``).
HAT_FEATURE_SCALE: tuple[float, ...] = (640, 6, 2048, 6, 640, 6, 2048, 6, 6, 2)
#: HAT's target divisors per hardware.
HAT_TARGET_SCALE: dict[str, float] = {"gpu_titanxp": 200.0, "cpu_xeon": 300.0,
                                      "cpu_raspberrypi": 5000.0}


class HatMLP(RegressorMixin, BaseEstimator):
    """An MLP ``n_features -> hidden x n_hidden -> 1`` trained HAT's way.

    Args:
        feature_scale: per-feature divisors; ``None``: the training maximum of each |feature|.
        target_scale: divisor of the target; ``None``: the training maximum of |y|.
        hidden: width of each hidden layer.
        n_hidden: number of hidden layers.
        lr: Adam learning rate.
        batch_size: rows per step, sampled without replacement each step (all rows when
            there are fewer; HAT's code would fail there).
        steps: optimisation steps.
        seed: seeds weights and batch sampling.
    """

    def __init__(self, *, feature_scale: Sequence[float] | None = None,
                 target_scale: float | None = None, hidden: int = 400, n_hidden: int = 4,
                 lr: float = 1e-5, batch_size: int = 128, steps: int = 5000, seed: int = 0):
        self.feature_scale = feature_scale
        self.target_scale = target_scale
        self.hidden = hidden
        self.n_hidden = n_hidden
        self.lr = lr
        self.batch_size = batch_size
        self.steps = steps
        self.seed = seed

    def fit(self, X: ArrayLike, y: ArrayLike) -> HatMLP:
        import torch
        from torch import nn

        Xa, ya = check_X_y(X, y, dtype=np.float64, y_numeric=True)
        if self.feature_scale is None:
            fs = np.abs(Xa).max(axis=0)
            fs[fs == 0] = 1.0
        else:
            fs = np.asarray(self.feature_scale, dtype=float)
            if fs.shape != (Xa.shape[1],):
                raise ValueError(f"feature_scale has {fs.size} entries, X has "
                                 f"{Xa.shape[1]} features")
        ts = float(np.abs(ya).max() or 1.0) if self.target_scale is None else float(
            self.target_scale)
        self.feature_scale_ = fs
        self.target_scale_ = ts
        self.n_features_in_ = Xa.shape[1]

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a small MLP gains nothing from threads on a shared machine
        try:
            gen = torch.Generator().manual_seed(int(self.seed))
            torch.manual_seed(int(self.seed))
            net = _mlp([Xa.shape[1]] + [int(self.hidden)] * int(self.n_hidden) + [1])
            xt = torch.from_numpy(Xa / fs).float()
            yt = torch.from_numpy(ya / ts).float().unsqueeze(1)
            try:  # the fused kernel is the same Adam, a third faster on a CPU
                opt = torch.optim.Adam(net.parameters(), lr=self.lr, fused=True)
            except (RuntimeError, TypeError):
                opt = torch.optim.Adam(net.parameters(), lr=self.lr)
            loss_fn = nn.MSELoss()
            n = xt.shape[0]
            k = min(int(self.batch_size), n)
            for _ in range(int(self.steps)):
                idx = torch.randperm(n, generator=gen)[:k]
                opt.zero_grad()
                loss = loss_fn(net(xt[idx]), yt[idx])
                loss.backward()
                opt.step()
            net.eval()
        finally:
            torch.set_num_threads(threads)
        self.net_ = net
        return self

    def __getstate__(self) -> dict[str, Any]:
        """The estimator's state with the fitted network as plain arrays.

        ``net_`` (a torch module) is stored as ``net_weights_``: each linear layer's
        weight and bias as float32 numpy arrays, in order, which is what
        :func:`switchnas.predictors.persist.save_predictor` (and ``copy``) persists.
        """
        state = dict(super().__getstate__())
        net = state.pop("net_", None)
        if net is not None:
            state["net_weights_"] = [t.detach().cpu().numpy().astype(np.float32, copy=True)
                                     for t in net.state_dict().values()]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`__getstate__`: the network is rebuilt from its arrays.

        Raises:
            ValueError: ``net_weights_`` is not a chain of (weight, bias) pairs of
                matching 2-d / 1-d shapes ending in one output.
        """
        state = dict(state)
        weights = state.pop("net_weights_", None)
        super().__setstate__(state)
        if weights is not None:
            self.net_ = _net_from_arrays(list(weights), state.get("n_features_in_"))

    def predict(self, X: ArrayLike) -> np.ndarray:
        import torch

        check_is_fitted(self, "net_")
        Xa = check_array(X, dtype=np.float64)
        with torch.no_grad():
            out = self.net_(torch.from_numpy(Xa / self.feature_scale_).float()).double().numpy()
        return out.ravel() * self.target_scale_


def _mlp(widths: Sequence[int]) -> Any:
    """``Linear -> ReLU -> ... -> Linear`` through ``widths`` (input first, output last)."""
    from torch import nn

    layers: list[nn.Module] = []
    for a, b in zip(widths[:-2], widths[1:-1], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(widths[-2], widths[-1]))
    return nn.Sequential(*layers)


def _net_from_arrays(arrays: list[Any], n_features: Any) -> Any:
    import torch

    if len(arrays) < 2 or len(arrays) % 2:
        raise ValueError(f"HatMLP state: expected (weight, bias) pairs, got {len(arrays)} arrays")
    ws = [np.asarray(a, dtype=np.float32) for a in arrays[0::2]]
    bs = [np.asarray(a, dtype=np.float32) for a in arrays[1::2]]
    widths = [ws[0].shape[1] if ws[0].ndim == 2 else -1]
    for i, (w, b) in enumerate(zip(ws, bs, strict=True)):
        if w.ndim != 2 or b.shape != (w.shape[0],) or w.shape[1] != widths[-1]:
            raise ValueError(f"HatMLP state: layer {i} has weight {w.shape} and bias {b.shape} "
                             f"after a layer of width {widths[-1]}")
        widths.append(w.shape[0])
    if widths[-1] != 1 or (n_features is not None and widths[0] != int(n_features)):
        raise ValueError(f"HatMLP state: layer widths {widths} do not map "
                         f"{n_features} features to 1 output")
    net = _mlp(widths)
    with torch.no_grad():
        for p, a in zip(net.parameters(), [x for pair in zip(ws, bs, strict=True) for x in pair],
                        strict=True):
            p.copy_(torch.from_numpy(a))
    return net.eval()
