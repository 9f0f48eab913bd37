from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

import switchnas.runtime as rt
from switchnas.runtime import BundleError
from switchnas.runtime._manifest import sha256_file


def reference(net: Any, member: dict[str, Any]) -> torch.nn.Module:
    net.load_bn_state(member["bn_state"])
    return net.extract(member["config"]).eval()


@pytest.mark.parametrize("switch", ["lean", "extracted", "inplace"])
def test_round_trip_outputs_equal_extraction(bundle_dir: Path, family: Any, switch: str) -> None:
    net, members = family
    bundle = rt.load(bundle_dir, switch=switch)
    assert [m.id for m in bundle.members] == [m["id"] for m in members]
    torch.manual_seed(1)
    for m in reversed(members):
        x = torch.randn(2, 3, 40, 40)
        with torch.no_grad():
            want = reference(net, m)(x)
        bundle.activate(m["id"])
        assert bundle.active == m["id"]
        assert torch.allclose(bundle(x), want, atol=1e-5)
        with torch.no_grad():
            assert torch.allclose(bundle.extract(m["id"])(x), want, atol=1e-5)


def test_members_and_tables(bundle_dir: Path) -> None:
    bundle = rt.load(bundle_dir, switch="inplace")
    m = bundle.member("m1")
    assert (m.accuracy, m.latency_ms) == (pytest.approx(0.6), pytest.approx(5.0))
    assert m.latency == {"cpu-2t": pytest.approx(5.0)}
    assert bundle.manifest["hardware"]["threads"] == 2
    assert bundle.manifest["extra"] == {"note": "test"}
    with pytest.raises(KeyError, match=r"unknown bundle member 'nope'.*m0.*m1.*m2"):
        bundle.activate("nope")


def test_extra_member_fields_are_kept(tmp_path: Path, family: Any) -> None:
    net, members = family
    p = rt.write_bundle(tmp_path / "b", supernet=net, verify=False,
                        members=[dict(members[0], predicted_latency_ms=2.5)])
    m = json.loads((p / "manifest.json").read_text())["members"][0]
    assert m["predicted_latency_ms"] == 2.5 and "bn_state" not in m
    with pytest.raises(BundleError, match="not JSON-serialisable"):
        rt.write_bundle(tmp_path / "c", supernet=net, verify=False,
                        members=[dict(members[0], note=object())])


def test_bundle_stores_only_used_slices(bundle_dir: Path, family: Any) -> None:
    net, _ = family
    full = sum(t.numel() * t.element_size() for t in net.state_dict().values())
    assert (bundle_dir / "weights.safetensors").stat().st_size < full
    with open(bundle_dir / "manifest.json") as f:
        assert json.load(f)["weights"]["layout"] == "slices"


def test_selector_from_bundle(bundle_dir: Path) -> None:
    bundle = rt.load(bundle_dir, switch="inplace")
    sel = bundle.selector(target_ms=6.0, margin=0.0, hysteresis=0.0)
    assert sel.current == "m1"  # 5 ms fits, 8 ms does not
    for _ in range(3):
        member = sel.step(10.0)  # running 2x slower than predicted
    assert member == "m0"
    with pytest.raises(ValueError, match="unknown selector policy 'nope'"):
        bundle.selector(target_ms=5, policy="nope")


# -- refusing bad bundles -----------------------------------------------------------------
def _edit_manifest(path: Path, fn: Any) -> None:
    m = json.loads((path / "manifest.json").read_text())
    fn(m)
    (path / "manifest.json").write_text(json.dumps(m))


def _rewrite_weights(path: Path, edit: Any) -> None:
    """Apply ``edit`` to the stored tensors and re-record the file's checksum."""
    from safetensors.torch import load_file

    w = path / "weights.safetensors"
    tensors = load_file(str(w))
    edit(tensors)
    save_file(tensors, str(w))
    _edit_manifest(path, lambda m: m["files"]["weights.safetensors"].update(
        sha256=sha256_file(w), bytes=w.stat().st_size))


CASES = {
    "truncated": (lambda p: os.truncate(p / "weights.safetensors",
                                        (p / "weights.safetensors").stat().st_size // 2),
                  "truncated"),
    "tampered": (lambda p: _flip_byte(p / "weights.safetensors"), "SHA-256"),
    "weights missing": (lambda p: (p / "weights.safetensors").unlink(), "missing"),
    "manifest missing": (lambda p: (p / "manifest.json").unlink(), "not a bundle folder"),
    "manifest garbage": (lambda p: (p / "manifest.json").write_bytes(b"\x00\xffPK\x03"),
                         "not valid JSON"),
    "foreign json": (lambda p: (p / "manifest.json").write_text('{"name": "x"}'),
                     "not a switchnas bundle"),
    "wrong version": (lambda p: _edit_manifest(p, lambda m: m.update(format_version=99)),
                      "version 99 is not supported"),
    "version 1": (lambda p: _edit_manifest(p, lambda m: m.update(format_version=1)),
                  "(?i)re-export it with this switchnas"),
    "no members": (lambda p: _edit_manifest(p, lambda m: m.update(members=[])), "empty"),
    "member without accuracy": (lambda p: _edit_manifest(p, lambda m: m["members"][0].pop(
        "accuracy")), r"members\[0\] lacks the required field 'accuracy'"),
    "negative latency": (lambda p: _edit_manifest(p, lambda m: m["members"][1].update(
        latency_ms=-1)), r"members\[1\].latency_ms must be a positive"),
    "bad config": (lambda p: _edit_manifest(p, lambda m: m["members"][0]["config"].update(
        r=33)), "r=33 is not allowed"),
    "untrusted target": (lambda p: _edit_manifest(p, lambda m: m.update(supernet={
        "target": "os:system", "kwargs": {}})), "trust_target"),
    "unregistered name": (lambda p: _edit_manifest(p, lambda m: m["supernet"].update(
        name="nope")), "not registered"),
    "unknown kwarg": (lambda p: _edit_manifest(p, lambda m: m["supernet"]["kwargs"].update(
        evil=1)), r"unknown arguments \['evil'\]"),
    "path in files": (lambda p: _edit_manifest(p, lambda m: m["files"].update(
        {"../x": {"sha256": "0" * 64, "bytes": 0}})), "plain file"),
    "checksum edited": (lambda p: _edit_manifest(p, lambda m: m["files"][
        "weights.safetensors"].update(sha256="0" * 64)), "SHA-256"),
    "foreign tensors": (lambda p: _rewrite_weights(p, lambda t: t.update(
        {"shared/bogus": torch.zeros(3)})), "names no tensor"),
    "oversized slice": (lambda p: _rewrite_weights(p, lambda t: t.update(
        {"shared/net.classifier.linear.weight": torch.zeros(11, 9999)})), "does not fit"),
    "stray tensor": (lambda p: _rewrite_weights(p, lambda t: t.update(
        {"bn/7/x": torch.zeros(1)})), "no member"),
    "tensor missing": (lambda p: _rewrite_weights(p, lambda t: t.pop(
        "shared/net.final_expand_layer.conv.weight")), "lack tensor"),
    "wrong dtype": (lambda p: _rewrite_weights(p, lambda t: t.update(
        {"shared/net.classifier.linear.bias": t["shared/net.classifier.linear.bias"].double()})),
        "is F64, expected F32"),
    "not safetensors": (lambda p: _rewrite_weights_raw(p, b"hello world, not tensors"),
                        "cannot read bundle weights"),
}


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _rewrite_weights_raw(path: Path, data: bytes) -> None:
    w = path / "weights.safetensors"
    w.write_bytes(data)
    _edit_manifest(path, lambda m: m["files"]["weights.safetensors"].update(
        sha256=sha256_file(w), bytes=len(data)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_refuses_bad_bundle(bundle_copy: Path, case: str) -> None:
    corrupt, message = CASES[case]
    corrupt(bundle_copy)
    with pytest.raises(BundleError, match=message):
        rt.load(bundle_copy)


def test_refuses_a_file_and_a_missing_path(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    for p in (tmp_path / "f", tmp_path / "missing"):
        with pytest.raises(BundleError, match="not a bundle folder"):
            rt.load(p)


# -- writing --------------------------------------------------------------------------------
def test_bad_members_leave_nothing(tmp_path: Path, family: Any) -> None:
    net, members = family
    dup = [members[0], dict(members[1], id="m0")]
    with pytest.raises(BundleError, match="unique"):
        rt.write_bundle(tmp_path / "b", supernet=net, members=dup)
    with pytest.raises(BundleError, match="lacks"):
        rt.write_bundle(tmp_path / "b", supernet=net, members=[{"id": "a"}])
    with pytest.raises(BundleError, match=r"not allowed"):
        rt.write_bundle(tmp_path / "b", supernet=net,
                        members=[dict(members[0], config={**members[0]["config"], "r": 1})])
    assert list(tmp_path.iterdir()) == []


def test_crash_while_writing_leaves_old_bundle(tmp_path: Path, family: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    net, members = family
    path = rt.write_bundle(tmp_path / "b", supernet=net, members=members[:1], verify=False)
    before = (path / "manifest.json").read_text()

    def boom(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("switchnas.runtime._writer.save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        rt.write_bundle(path, supernet=net, members=members, verify=False)
    assert (path / "manifest.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["b"]  # no temporary folder left
    assert len(rt.load(path, switch="inplace").members) == 1


def test_refuses_to_replace_a_folder_that_is_not_a_bundle(tmp_path: Path, family: Any) -> None:
    net, members = family
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "precious.txt").write_text("keep me")
    with pytest.raises(BundleError, match="not a bundle folder"):
        rt.write_bundle(tmp_path / "b", supernet=net, members=members[:1], verify=False)
    assert (tmp_path / "b" / "precious.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_overwrite_false(tmp_path: Path, family: Any) -> None:
    net, members = family
    p = rt.write_bundle(tmp_path / "b", supernet=net, members=members[:1], verify=False)
    with pytest.raises(BundleError, match="exists"):
        rt.write_bundle(p, supernet=net, members=members[:1], verify=False, overwrite=False)


def test_verification_catches_missing_weights(tmp_path: Path, family: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    net, members = family
    real = type(net).used_extents

    def lossy(self: Any, config: Any) -> dict[str, tuple[int, ...]]:
        out = real(self, config)
        out.pop("net.final_expand_layer.conv.weight")
        return out

    monkeypatch.setattr(type(net), "used_extents", lossy)
    with pytest.raises(BundleError, match="verification failed"):
        rt.write_bundle(tmp_path / "b", supernet=net, members=members[:1])
    assert list(tmp_path.iterdir()) == []


def test_extracted_cache_evicts_and_reextracts(bundle_dir: Path, family: Any) -> None:
    net, members = family
    bundle = rt.load(bundle_dir, switch="extracted", cache=1)
    x = torch.randn(1, 3, 32, 32)
    for m in members + members[:1]:
        bundle.activate(m["id"])
        assert len(bundle._modules) == 1
        with torch.no_grad():
            assert torch.allclose(bundle(x), reference(net, m)(x), atol=1e-5)
    with pytest.raises(ValueError, match="cache must be >= 1"):
        rt.load(bundle_dir, switch="extracted", cache=0)


def test_memory_report(bundle_dir: Path) -> None:
    ext = rt.load(bundle_dir, switch="extracted").memory_bytes()
    inp = rt.load(bundle_dir, switch="inplace").memory_bytes()
    assert inp["extracted"] == 0 < ext["extracted"]
    assert ext["supernet"] == inp["supernet"] > 0


def test_single_file_archive(bundle_dir: Path, family: Any, tmp_path: Path) -> None:
    net, members = family
    archive = rt.pack_bundle(bundle_dir, tmp_path / "b.tar")
    bundle = rt.load(archive, switch="inplace")
    x = torch.randn(1, 3, 32, 32)
    bundle.activate("m2")
    with torch.no_grad():
        assert torch.allclose(bundle(x), reference(net, members[2])(x), atol=1e-5)
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the weights
    (tmp_path / "bad.tar").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="SHA-256"):
        rt.load(tmp_path / "bad.tar")
    (tmp_path / "short.tar").write_bytes(archive.read_bytes()[:5000])
    with pytest.raises(BundleError):
        rt.load(tmp_path / "short.tar")


def test_archive_with_a_path_is_refused(bundle_dir: Path, tmp_path: Path) -> None:
    import tarfile

    with tarfile.open(tmp_path / "evil.tar", "w") as tar:
        tar.add(bundle_dir / "manifest.json", arcname="../manifest.json")
    with pytest.raises(BundleError, match="not a plain file"):
        rt.load(tmp_path / "evil.tar")


def test_hat_bundle_full_layout(tmp_path: Path) -> None:
    """A super-net without weight slices (HAT): whole tensors, integer outputs (tokens)
    fingerprinted exactly, a changed vocabulary refused before allocation."""
    import numpy as np

    from switchnas.supernets.hat.supernet import SuperTransformer

    torch.manual_seed(0)
    net = SuperTransformer(src_vocab=40, tgt_vocab=50, width_divisor=8,
                           max_positions=64).eval()
    rng = np.random.default_rng(0)
    members = [{"id": f"h{i}", "config": net.space.sample(rng), "accuracy": 0.1 * i,
                "latency_ms": 1.0 + i} for i in range(2)]
    p = rt.write_bundle(tmp_path / "h", supernet=net, members=members)
    m = json.loads((p / "manifest.json").read_text())
    assert m["supernet"]["name"] == "hat" and "target" not in m["supernet"]
    assert m["weights"]["layout"] == "full"
    assert m["members"][0]["fingerprint"]["output"]["dtype"] == "int64"
    bundle = rt.load(p)
    x = net.example_input(members[1]["config"], 2)
    bundle.activate("h1")
    net.activate(members[1]["config"])
    assert torch.equal(bundle(x), net(x))
    _edit_manifest(p, lambda m: m["supernet"]["kwargs"].update(tgt_vocab=51))
    with pytest.raises(BundleError, match="does not fit"):
        rt.load(p)
