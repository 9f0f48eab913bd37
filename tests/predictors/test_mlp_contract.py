"""Contract of :mod:`switchnas.predictors.mlp` (HAT's MLP recipe): defaults, scaling,
the exact training loop (against a reference loop), persistence and its errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from torch import nn

from switchnas.predictors.mlp import HAT_FEATURE_SCALE, HAT_TARGET_SCALE, HatMLP

X = np.array([[1.0, 200.0, 0.0], [2.0, 100.0, 0.0], [3.0, -400.0, 0.0], [4.0, 50.0, 0.0],
              [0.5, 300.0, 0.0]])
Y = np.array([1.0, -3.0, 2.0, 4.0, 0.5])


def _reference(Xa, ya, fs, ts, hidden, n_hidden, lr, batch, steps, seed):
    """HAT's loop written out: Adam on MSE, ``batch`` rows without replacement a step."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    widths = [Xa.shape[1]] + [hidden] * n_hidden + [1]
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-2], widths[1:-1], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(widths[-2], 1))
    net = nn.Sequential(*layers)
    xt = torch.from_numpy(Xa / fs).float()
    yt = torch.from_numpy(ya / ts).float().unsqueeze(1)
    try:
        opt = torch.optim.Adam(net.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError):
        opt = torch.optim.Adam(net.parameters(), lr=lr)
    k = min(batch, len(ya))
    for _ in range(steps):
        idx = torch.randperm(len(ya), generator=gen)[:k]
        opt.zero_grad()
        loss = nn.MSELoss()(net(xt[idx]), yt[idx])
        loss.backward()
        opt.step()
    net.eval()
    return net


def test_constants_and_defaults() -> None:
    assert HAT_FEATURE_SCALE == (640, 6, 2048, 6, 640, 6, 2048, 6, 6, 2)
    assert HAT_TARGET_SCALE == {"gpu_titanxp": 200.0, "cpu_xeon": 300.0,
                                "cpu_raspberrypi": 5000.0}
    assert HatMLP().get_params() == {"feature_scale": None, "target_scale": None,
                                     "hidden": 400, "n_hidden": 4, "lr": 1e-5,
                                     "batch_size": 128, "steps": 5000, "seed": 0}


def test_scales_from_data() -> None:
    m = HatMLP(hidden=4, n_hidden=1, steps=0).fit(X, Y)
    assert m.feature_scale_.tolist() == [4.0, 400.0, 1.0]  # max |x|; an all-zero column: 1
    assert m.feature_scale_.dtype == np.float64
    assert m.target_scale_ == 4.0 and isinstance(m.target_scale_, float)
    assert m.n_features_in_ == 3
    neg = HatMLP(hidden=4, n_hidden=1, steps=0).fit(X, -2 * Y)
    assert neg.target_scale_ == 8.0
    zero = HatMLP(hidden=4, n_hidden=1, steps=0).fit(X, np.zeros(5))
    assert zero.target_scale_ == 1.0
    ints = HatMLP(hidden=4, n_hidden=1, steps=1).fit(np.array([[1, 2], [3, 4]]), [1, 2])
    assert ints.feature_scale_.dtype == np.float64 and ints.feature_scale_.tolist() == [3, 4]


def test_explicit_scales() -> None:
    m = HatMLP(feature_scale=[2, 4, 8], target_scale=10, hidden=4, n_hidden=1,
               steps=0).fit(X, Y)
    assert m.feature_scale_.tolist() == [2.0, 4.0, 8.0] and m.target_scale_ == 10.0
    net = _reference(X, Y, np.array([2.0, 4.0, 8.0]), 10.0, 4, 1, 1e-5, 128, 0, 0)
    with torch.no_grad():
        ref = net(torch.from_numpy(X / [2.0, 4.0, 8.0]).float()).double().numpy().ravel() * 10
    np.testing.assert_array_equal(m.predict(X), ref)
    with pytest.raises(ValueError, match=r"^feature_scale has 2 entries, X has 3 features$"):
        HatMLP(feature_scale=[1, 2], steps=0).fit(X, Y)


def test_network_shape() -> None:
    m = HatMLP(hidden=5, n_hidden=2, steps=0).fit(X, Y)
    kinds = [type(layer).__name__ for layer in m.net_]
    assert kinds == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert [(layer.in_features, layer.out_features) for layer in m.net_
            if isinstance(layer, nn.Linear)] == [(3, 5), (5, 5), (5, 1)]
    assert m.net_.training is False
    assert m.predict(X).shape == (5,)


@pytest.mark.parametrize("batch", [3, 128])
def test_training_matches_reference_loop(batch: int) -> None:
    kw = {"hidden": 8, "n_hidden": 2, "lr": 1e-2, "batch_size": batch, "steps": 25, "seed": 3}
    m = HatMLP(**kw).fit(X, Y)
    fs = np.array([4.0, 400.0, 1.0])
    net = _reference(X, Y, fs, 4.0, 8, 2, 1e-2, batch, 25, 3)
    with torch.no_grad():
        ref = net(torch.from_numpy(X / fs).float()).double().numpy().ravel() * 4.0
    np.testing.assert_array_equal(m.predict(X), ref)
    # it learns: the training error falls from the untrained network's
    untrained = HatMLP(**dict(kw, steps=0)).fit(X, Y)
    assert np.mean((m.predict(X) - Y) ** 2) < np.mean((untrained.predict(X) - Y) ** 2)


def test_seed_and_float16_input() -> None:
    kw = {"hidden": 6, "n_hidden": 1, "lr": 1e-2, "batch_size": 2, "steps": 5}
    a = HatMLP(**kw, seed=1).fit(X, Y).predict(X)
    b = HatMLP(**kw, seed=1).fit(X, Y).predict(X)
    c = HatMLP(**kw, seed=2).fit(X, Y).predict(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    x16 = np.array([[1.5, 3.0], [2.0, 0.25], [7.0, 1.0]])
    y16 = np.array([1.0, 2.0, 3.0])
    p64 = HatMLP(**kw).fit(x16, y16).predict(x16)
    p16 = HatMLP(**kw).fit(x16.astype(np.float16), y16).predict(x16)
    np.testing.assert_array_equal(p64, p16)


def test_fused_adam_and_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict] = []
    real_adam = torch.optim.Adam

    def adam(params, **kw):
        calls.append(kw)
        return real_adam(params, **kw)

    threads: list[int] = []
    real_set = torch.set_num_threads

    def set_threads(n: int) -> None:
        threads.append(n)
        real_set(n)

    before = torch.get_num_threads()
    monkeypatch.setattr(torch.optim, "Adam", adam)
    monkeypatch.setattr(torch, "set_num_threads", set_threads)
    HatMLP(hidden=4, n_hidden=1, steps=1, lr=0.5).fit(X, Y)
    assert calls[0] == {"lr": 0.5, "fused": True}
    assert threads == [1, before]
    assert torch.get_num_threads() == before


def test_fused_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict] = []
    real_adam = torch.optim.Adam

    def adam(params, **kw):
        calls.append(kw)
        if kw.get("fused"):
            raise RuntimeError("no fused kernel")
        return real_adam(params, **kw)

    monkeypatch.setattr(torch.optim, "Adam", adam)
    m = HatMLP(hidden=4, n_hidden=1, steps=2, lr=0.1).fit(X, Y)
    assert calls == [{"lr": 0.1, "fused": True}, {"lr": 0.1}]
    assert np.isfinite(m.predict(X)).all()


def test_threads_restored_on_error(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()

    def boom(*a, **k):
        raise TypeError("boom")

    monkeypatch.setattr(torch.optim, "Adam", boom)
    with pytest.raises(TypeError, match="boom"):
        HatMLP(hidden=4, n_hidden=1, steps=1).fit(X, Y)
    assert torch.get_num_threads() == before


def test_not_fitted() -> None:
    with pytest.raises(NotFittedError):
        HatMLP().predict(X)


def test_pickle_round_trip() -> None:
    m = HatMLP(hidden=6, n_hidden=2, steps=3, lr=1e-2).fit(X, Y)
    state = m.__getstate__()
    assert "net_" not in state
    ws = state["net_weights_"]
    assert [w.shape for w in ws] == [(6, 3), (6,), (6, 6), (6,), (1, 6), (1,)]
    assert all(w.dtype == np.float32 for w in ws)
    assert state["feature_scale_"] is m.feature_scale_ or np.array_equal(
        state["feature_scale_"], m.feature_scale_)
    ws[0][0, 0] += 0  # a copy: the network is not changed through it
    back = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(back.predict(X), m.predict(X))
    assert back.net_.training is False
    assert back.get_params() == m.get_params()
    unfitted = HatMLP(hidden=3).__getstate__()
    assert "net_weights_" not in unfitted and "net_" not in unfitted
    fresh = pickle.loads(pickle.dumps(HatMLP(hidden=3)))
    assert not hasattr(fresh, "net_") and fresh.hidden == 3


def _restore(weights, n_features=3):
    m = HatMLP()
    state = dict(HatMLP().__getstate__(), net_weights_=weights)
    if n_features is not None:
        state["n_features_in_"] = n_features
    m.__setstate__(state)
    return m


def test_restore_errors() -> None:
    w = [np.ones((4, 3)), np.zeros(4), np.ones((1, 4)), np.zeros(1)]
    ok = _restore(w)
    np.testing.assert_allclose(ok.net_[0].weight.detach().numpy(), np.ones((4, 3)))
    assert ok.net_.training is False
    assert _restore(w, None).net_[2].out_features == 1
    with pytest.raises(ValueError, match=r"^HatMLP state: expected \(weight, bias\) pairs, "
                                         r"got 3 arrays$"):
        _restore(w[:3])
    with pytest.raises(ValueError, match=r"got 0 arrays$"):
        _restore([])
    with pytest.raises(ValueError, match=r"^HatMLP state: layer 1 has weight \(1, 5\) and bias "
                                         r"\(1,\) after a layer of width 4$"):
        _restore([np.ones((4, 3)), np.zeros(4), np.ones((1, 5)), np.zeros(1)])
    with pytest.raises(ValueError, match=r"^HatMLP state: layer 0 has weight \(4, 3\) and bias "
                                         r"\(3,\) after a layer of width 3$"):
        _restore([np.ones((4, 3)), np.zeros(3), np.ones((1, 4)), np.zeros(1)])
    with pytest.raises(ValueError, match=r"^HatMLP state: layer 0 has weight \(4,\) and bias "
                                         r"\(4,\) after a layer of width -1$"):
        _restore([np.ones(4), np.zeros(4)])
    with pytest.raises(ValueError, match=r"^HatMLP state: layer widths \[3, 4, 2\] do not map "
                                         r"3 features to 1 output$"):
        _restore([np.ones((4, 3)), np.zeros(4), np.ones((2, 4)), np.zeros(2)])
    with pytest.raises(ValueError, match=r"^HatMLP state: layer widths \[3, 4, 1\] do not map "
                                         r"5 features to 1 output$"):
        _restore(w, 5)
