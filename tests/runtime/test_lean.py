"""Lean switching: members as views of the super-net's tensors, equal to extraction."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import switchnas.runtime as rt
from switchnas.runtime._lean import LeanSwitch, storage_bytes


def union_bytes(net: Any, configs: list[dict[str, Any]]) -> int:
    """The members' weights counted once, plus each member's batch-norm statistics (the
    benchmark's measure)."""
    bn_keys = set(net.bn_state())

    def size(items: Any) -> int:
        return sum(v.numel() * v.element_size() for k, v in items)

    shared = size((k, v) for k, v in net.used_weight_slices(configs).items()
                  if k not in bn_keys)
    stats = sum(size((k, v) for k, v in net.used_weight_slices([c]).items()
                     if k in bn_keys and not k.endswith("num_batches_tracked"))
                for c in configs)
    return shared + stats


@pytest.fixture(scope="module")
def pair(bundle_dir: Path) -> tuple[Any, Any]:
    return rt.load(bundle_dir, switch="lean"), rt.load(bundle_dir, switch="extracted")


def test_every_member_equals_extracted_mode(pair: tuple[Any, Any], family: Any) -> None:
    lean, extracted = pair
    _, members = family
    torch.manual_seed(2)
    outs = {}
    for order in ([0, 1, 2], [2, 0, 1, 0]):  # revisits run from a refilled arena
        for i in order:
            mid = members[i]["id"]
            x = torch.randn(2, 3, 40, 40)
            lean.activate(mid)
            extracted.activate(mid)
            assert lean.active == mid
            got, want = lean(x), extracted(x)
            assert torch.equal(got, want), mid
            outs[mid] = got
    assert not torch.allclose(outs["m0"], outs["m1"])  # members differ: the check can fail


def test_prefetched_member_equals_extracted_mode(pair: tuple[Any, Any], family: Any) -> None:
    lean, extracted = pair
    _, members = family
    x = torch.randn(1, 3, 32, 32)
    for a, b in ((0, 1), (1, 2), (2, 0), (0, 2)):
        lean.activate(members[a]["id"])
        fut = lean.prefetch(members[b]["id"])
        fut.result(timeout=60)
        lean.activate(members[b]["id"])
        extracted.activate(members[b]["id"])
        assert torch.equal(lean(x), extracted(x))
    assert lean.prefetch(members[0]["id"]).result(timeout=60) is None
    with pytest.raises(KeyError, match="unknown bundle member 'nope'"):
        lean.prefetch("nope")
    # other modes have nothing to prepare
    assert extracted.prefetch(members[0]["id"]).done()


def test_lean_memory_within_bound_and_shares_the_supernet(pair: tuple[Any, Any],
                                                          family: Any) -> None:
    lean, extracted = pair
    net, members = family
    mem, ext = lean.memory_bytes(), extracted.memory_bytes()
    assert mem["extracted"] == mem["supernet"] == 0 < mem["lean"]
    union = union_bytes(net, [m["config"] for m in members])
    assert mem["resident"] <= 1.5 * union, (mem, union)
    assert ext["resident"] > 2 * mem["resident"]
    # the active member's module reads most of its bytes from the bank's storages
    supernet = {t.untyped_storage().data_ptr() for t in lean._lean._bank.values()}
    with lean._running() as (_, module):
        tensors = list(module.state_dict().values())
    shared = sum(t.numel() * t.element_size() for t in tensors
                 if t.untyped_storage().data_ptr() in supernet)
    assert shared > 0.5 * sum(t.numel() * t.element_size() for t in tensors)


def test_storage_bytes_counts_each_storage_once() -> None:
    a = torch.zeros(100)
    b = torch.zeros(10, dtype=torch.float64)
    assert storage_bytes([a, a[:10], a[50:].view(5, 10), b]) == 400 + 80
    assert storage_bytes([a[:1]]) == 400  # a view keeps all of its storage
    assert storage_bytes([]) == 0


def test_bad_switch_mode_lists_the_allowed_ones(bundle_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"switch='leen'.*'lean', 'extracted', 'inplace'"):
        rt.load(bundle_dir, switch="leen")  # type: ignore[arg-type]


def test_switching_under_concurrent_calls(bundle_dir: Path, family: Any) -> None:
    _, members = family
    bundle = rt.load(bundle_dir, switch="lean")
    x = torch.randn(1, 3, 32, 32)
    want = {}
    for m in members:
        bundle.activate(m["id"])
        want[m["id"]] = bundle(x)
    errors: list[str] = []
    stop = threading.Event()

    def caller() -> None:
        while not stop.is_set():
            y = bundle(x)
            if not any(torch.equal(y, w) for w in want.values()):
                errors.append("an output matching no member: a switch tore a call")

    def switcher() -> None:
        for i in range(60):
            mid = members[i % len(members)]["id"]
            if i % 3 == 0:  # prefetches race with switches and calls
                bundle.prefetch(members[(i + 1) % len(members)]["id"])
            bundle.activate(mid)

    threads = [threading.Thread(target=caller) for _ in range(2)]
    for t in threads:
        t.start()
    sw = threading.Thread(target=switcher)
    sw.start()
    sw.join()
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    for m in members:  # still exact after the race
        bundle.activate(m["id"])
        assert torch.equal(bundle(x), want[m["id"]])


def test_hat_bundle_lean_equals_extracted(tmp_path: Path) -> None:
    from switchnas.supernets.hat.supernet import SuperTransformer

    torch.manual_seed(0)
    net = SuperTransformer(src_vocab=40, tgt_vocab=50, width_divisor=8,
                           max_positions=64).eval()
    rng = np.random.default_rng(3)
    members = [{"id": f"h{i}", "config": net.space.sample(rng), "accuracy": 0.1 * i,
                "latency_ms": 1.0 + i} for i in range(3)]
    p = rt.write_bundle(tmp_path / "h", supernet=net, members=members)
    lean, extracted = rt.load(p, switch="lean"), rt.load(p, switch="extracted")
    x = net.example_input(members[0]["config"], 2)
    for mem in (*members, members[0]):
        lean.activate(mem["id"])
        extracted.activate(mem["id"])
        assert torch.equal(lean(x), extracted(x))
    assert lean.memory_bytes()["resident"] < extracted.memory_bytes()["resident"]


# -- LeanSwitch on a toy super-net: views, copies and kept tensors ------------------------------
class Toy(nn.Module):
    """``extract`` slices rows (a view), columns (a copy) and doubles ``scale`` (kept)."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = nn.Parameter(torch.randn(8, 6, generator=g), requires_grad=False)
        self.b = nn.Parameter(torch.randn(8, generator=g), requires_grad=False)
        self.scale = nn.Parameter(torch.randn(4, generator=g), requires_grad=False)

    def extract(self, cfg: Mapping[str, int]) -> nn.Module:
        o, i = cfg["o"], cfg["i"]
        lin = nn.Linear(i, o)
        with torch.no_grad():
            lin.weight.copy_(self.w[:o, :i])
            lin.bias.copy_(self.b[:o])
        lin.register_buffer("scale", self.scale * 2)
        return lin.requires_grad_(False)


@pytest.mark.parametrize("exact", [1 << 24, 50])  # 50 < 60 elements: the two-copy trace
def test_lean_switch_classifies_tensors(exact: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("switchnas.runtime._lean._EXACT_F32", exact)
    net = Toy()
    configs = {"rows": {"o": 3, "i": 6}, "cols": {"o": 8, "i": 4}, "both": {"o": 5, "i": 2}}
    sw = LeanSwitch(supernet=net, members=list(configs.items()), bank=net.state_dict(),
                    bn={k: {} for k in configs}, extract=lambda k: net.extract(configs[k]))
    x = torch.randn(3, 6)
    supernet = {net.w.untyped_storage().data_ptr(), net.b.untyped_storage().data_ptr()}
    for k in ("rows", "cols", "both", "rows"):
        sw.activate(k)
        with sw.use() as (mid, module):
            assert mid == k
            want = net.extract(configs[k])
            assert torch.equal(module(x[:, :configs[k]["i"]]), want(x[:, :configs[k]["i"]]))
            assert torch.equal(module.scale, want.scale)
            assert module.bias.untyped_storage().data_ptr() in supernet  # a view
            in_net = module.weight.untyped_storage().data_ptr() in supernet
            assert in_net == (k == "rows")  # column slices are copied into an arena
            assert module.scale.untyped_storage().data_ptr() not in supernet
    mem = sw.memory_bytes()
    # the arenas hold the largest column copy (8x4 floats, aligned), twice; "scale" is kept
    # once: the members' doubled copies are equal, so they share one tensor
    assert mem == {"bank": (48 + 8 + 4) * 4, "arenas": 2 * 32 * 4, "own": 4 * 4}
    sw.close()


def test_cache_only_with_extracted_mode(bundle_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"cache=2 applies to switch='extracted' only"):
        rt.load(bundle_dir, switch="lean", cache=2)


def test_extract_copies_a_member_whatever_is_active(pair: tuple[Any, Any],
                                                    family: Any) -> None:
    lean, extracted = pair
    _, members = family
    x = torch.randn(1, 3, 40, 40)
    lean.activate(members[0]["id"])
    copies = {m["id"]: lean.extract(m["id"]) for m in members}  # m1, m2: not in an arena
    for m in members:
        lean.activate(m["id"])  # refills the arenas: the copies must not change
    bank = {t.untyped_storage().data_ptr() for t in lean._lean._bank.values()}
    for mid, module in copies.items():
        with torch.no_grad():
            assert torch.equal(module(x), extracted.extract(mid)(x)), mid
        assert all(t.untyped_storage().data_ptr() not in bank
                   for t in module.state_dict().values())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ofa_proxyless", "ofa_resnet50"])
def test_other_ofa_supernets_lean_equals_extracted(name: str, tmp_path: Path) -> None:
    """Every OFA space the runtime loads (ResNet50 is too large for one-copy codes)."""
    kwargs: dict[str, Any] = {"n_classes": 10, "resolutions": [32]}
    if name == "ofa_proxyless":
        kwargs["width_mult"] = 0.5
    torch.manual_seed(0)
    net = rt.get_supernet(name)(**kwargs).train()
    with torch.no_grad():  # batch-norm statistics of data: untrained defaults kill features
        net(torch.randn(4, 3, 32, 32))
    net.eval()
    rng = np.random.default_rng(0)
    g = torch.Generator().manual_seed(0)
    members = [{"id": f"m{i}", "config": net.space.sample(rng), "accuracy": 0.5,
                "latency_ms": 1.0 + i,
                # variances scaled; shifted means zero these untrained features altogether
                "bn_state": {k: v * (1 + 0.5 * torch.rand(v.shape, generator=g))
                             if k.endswith("running_var") else v
                             for k, v in net.bn_state().items()}} for i in range(2)]
    p = rt.write_bundle(tmp_path / "b", supernet=net, members=members)
    lean, extracted = rt.load(p, switch="lean"), rt.load(p, switch="extracted")
    x = torch.randn(2, 3, 32, 32)
    outs = []
    for m in (*members, members[0]):
        lean.activate(m["id"])
        extracted.activate(m["id"])
        outs.append(lean(x))
        assert torch.equal(outs[-1], extracted(x))
    assert not torch.equal(outs[0], outs[1])
    assert lean.memory_bytes()["resident"] < extracted.memory_bytes()["resident"]


def test_extract_keeps_buffers_buffers_and_parameters_parameters() -> None:
    """The standalone copy has the member's own kinds of tensor: a buffer copied as an
    nn.Parameter would show up in parameters() and be trained by an optimizer."""
    net = Toy()
    configs = {"rows": {"o": 3, "i": 6}, "cols": {"o": 8, "i": 4}}
    sw = LeanSwitch(supernet=net, members=list(configs.items()), bank=net.state_dict(),
                    bn={k: {} for k in configs}, extract=lambda k: net.extract(configs[k]))
    try:
        for k in configs:
            copy = sw.extract(k)
            want = net.extract(configs[k])
            assert dict(copy.named_buffers()).keys() == {"scale"}
            assert not isinstance(copy.scale, nn.Parameter)
            assert {n for n, _ in copy.named_parameters()} == {"weight", "bias"}
            assert all(isinstance(p, nn.Parameter) and not p.requires_grad
                       for p in copy.parameters())
            assert torch.equal(copy.scale, want.scale) and torch.equal(copy.weight, want.weight)
    finally:
        sw.close()
