"""HAT's latency-predictor recipe as a scikit-learn estimator (torch inside ``fit``).

Hardware-Aware Transformers (Wang et al., 2020) train a 4 x 400 ReLU MLP on features
divided by fixed per-feature constants, with Adam at lr 1e-5, batch 128, 5000 steps of
MSE, on the latency divided by a per-device constant. :class:`HatMLP` does exactly that
by default; ``feature_scale``/``target_scale`` left as ``None`` take the training data's
per-feature maximum and the target maximum instead of HAT's hand-chosen constants.
"""

from __future__ import annotations

from collections.abc import Sequence

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
            layers: list[nn.Module] = []
            width = Xa.shape[1]
            for _ in range(self.n_hidden):
                layers += [nn.Linear(width, self.hidden), nn.ReLU()]
                width = self.hidden
            layers.append(nn.Linear(width, 1))
            net = nn.Sequential(*layers)
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

    def predict(self, X: ArrayLike) -> np.ndarray:
        import torch

        check_is_fitted(self, "net_")
        Xa = check_array(X, dtype=np.float64)
        with torch.no_grad():
            out = self.net_(torch.from_numpy(Xa / self.feature_scale_).float()).double().numpy()
        return out.ravel() * self.target_scale_
