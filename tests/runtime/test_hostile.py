"""What an attacker would try against ``load()``: every refusal is a ``BundleError``,
nothing the bundle names runs, nothing hangs, no memory is allocated that the bundle's
bytes do not back, and nothing loads with wrong outputs.

Tampered files have their checksums re-recorded (:func:`refresh`), so that the content
checks, not the SHA-256 check, are what refuse them.
"""

from __future__ import annotations

import copy
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import switchnas.runtime as rt
from switchnas.runtime import BundleError
from switchnas.runtime._manifest import sha256_file

from .conftest import make_family

FAST = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


# -- helpers --------------------------------------------------------------------------------
def manifest_of(path: Path) -> dict[str, Any]:
    return json.loads((path / "manifest.json").read_text())


def write_manifest(path: Path, m: Any) -> None:
    (path / "manifest.json").write_text(json.dumps(m))


def refresh(path: Path, m: dict[str, Any] | None = None) -> None:
    """Re-record the size and SHA-256 of every file the manifest lists (after a test
    edited them), so that only the content checks can refuse the bundle."""
    m = manifest_of(path) if m is None else m
    for name, entry in m["files"].items():
        f = path / name
        if f.is_file():
            entry.update(sha256=sha256_file(f), bytes=f.stat().st_size)
    write_manifest(path, m)


def edit_tensors(path: Path, edit: Any) -> None:
    from safetensors.torch import load_file, save_file

    w = path / "weights.safetensors"
    tensors = load_file(str(w))
    edit(tensors)
    save_file(tensors, str(w))
    refresh(path)


def outputs(bundle: Any, x: torch.Tensor) -> dict[str, torch.Tensor]:
    out = {}
    for mid in bundle.ids:
        bundle.activate(mid)
        out[mid] = bundle(x)
    return out


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-member bundle (fast to load) and its outputs."""
    net, members = make_family(k=2, seed=3)
    return rt.write_bundle(tmp_path_factory.mktemp("hostile") / "b", supernet=net,
                           members=members)


X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))


@pytest.fixture(scope="module")
def reference(small: Path) -> dict[str, torch.Tensor]:
    return outputs(rt.load(small, switch="inplace"), X)


@pytest.fixture()
def victim(small: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(small, tmp_path / "v"))


def loads_equal_or_refuses(path: Path, reference: dict[str, torch.Tensor]) -> None:
    """The property: load() succeeds with the original outputs, or raises BundleError."""
    try:
        bundle = rt.load(path, switch="inplace")
    except BundleError:
        return
    got = outputs(bundle, X)
    assert got.keys() == reference.keys()
    for k, want in reference.items():
        scale = float(want.pow(2).mean().sqrt())
        assert torch.allclose(got[k], want, atol=1e-2 * scale), k


# -- nothing the bundle names runs ----------------------------------------------------------
SENTINEL_MODULE = '''
import pathlib
pathlib.Path({flag!r}).write_text("imported")

def boom(*args, **kwargs):
    pathlib.Path({flag!r}).write_text("called")

class Net:
    def __init__(self, **kwargs):
        pathlib.Path({flag!r}).write_text("constructed")
'''


@pytest.fixture()
def sentinel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    flag = tmp_path / "ran"
    (tmp_path / "evil_sentinel_mod.py").write_text(SENTINEL_MODULE.format(flag=str(flag)))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield flag
    sys.modules.pop("evil_sentinel_mod", None)


@pytest.mark.parametrize("supernet", [
    {"target": "switchnas.pipeline.context:_instantiate", "kwargs": {"config": {}}},
    {"target": "evil_sentinel_mod:boom", "kwargs": {}},
    {"target": "evil_sentinel_mod:Net", "kwargs": {}},
    {"name": "evil_sentinel_mod:boom", "kwargs": {}},
    {"name": "switchnas.pipeline.context", "kwargs": {}},
    {"name": "ofa_mbv3", "target": "evil_sentinel_mod:boom", "kwargs": {}},
])
def test_a_manifest_naming_code_runs_nothing(victim: Path, sentinel: Path, supernet: Any,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    ctx = sys.modules.get("switchnas.pipeline.context")
    if ctx is not None:
        monkeypatch.setattr(ctx, "_instantiate", lambda *a, **k: calls.append(a),
                            raising=False)
    m = manifest_of(victim)
    m["supernet"] = supernet
    write_manifest(victim, m)
    with pytest.raises(BundleError):
        rt.load(victim)
    assert not sentinel.exists() and "evil_sentinel_mod" not in sys.modules and calls == []


def test_trust_target_still_refuses_what_is_not_a_supernet_class(victim: Path,
                                                                  sentinel: Path) -> None:
    for target in ("evil_sentinel_mod:boom", "evil_sentinel_mod:Net"):
        m = manifest_of(victim)
        m["supernet"] = {"target": target, "kwargs": {}}
        write_manifest(victim, m)
        with pytest.raises(BundleError, match="not a class|not a torch.nn.Module"):
            rt.load(victim, trust_target=True)
        assert sentinel.read_text() == "imported"  # imported (trusted), never called


def test_trust_target_loads_a_real_class(victim: Path, reference: Any) -> None:
    m = manifest_of(victim)
    m["supernet"] = {"target": "switchnas.supernets.ofa.mbv3:OFAMobileNetV3Net",
                     "kwargs": m["supernet"]["kwargs"]}
    write_manifest(victim, m)
    with pytest.raises(BundleError, match="trust_target=True"):
        rt.load(victim)
    got = outputs(rt.load(victim, switch="inplace", trust_target=True), X)
    assert all(torch.allclose(got[k], reference[k], atol=1e-5) for k in reference)


class Incomplete(nn.Module):
    constructed = 0

    def __init__(self) -> None:
        Incomplete.constructed += 1
        super().__init__()

    def activate(self, config: Any) -> None: ...


def test_registry_checks_the_class_before_anything_is_built(victim: Path) -> None:
    with pytest.raises(BundleError, match="missing extract, example_input"):
        rt.register_supernet("incomplete", Incomplete)
    with pytest.raises(BundleError, match="not a class"):
        rt.register_supernet("fn", print)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name"):
        rt.register_supernet("../x", Incomplete)
    assert Incomplete.constructed == 0
    assert {"ofa_mbv3", "ofa_resnet50", "ofa_proxyless", "hat"} <= set(rt.available_supernets())


@pytest.mark.parametrize("name", ["ofa_mbv3", "ofa_resnet50", "ofa_proxyless", "hat"])
def test_builtins_resolve_through_entry_points(name: str) -> None:
    cls = rt.get_supernet(name)
    assert rt.supernet_name(cls) == name


def test_registered_at_run_time(tmp_path: Path) -> None:
    from switchnas.supernets.ofa.mbv3 import OFAMobileNetV3Net

    class Mine(OFAMobileNetV3Net):
        pass

    torch.manual_seed(0)
    net = Mine(n_classes=10, width_mult=0.5, resolutions=[32])
    cfg = net.space.sample(__import__("numpy").random.default_rng(0))
    member = {"id": "a", "config": cfg, "accuracy": 0.5, "latency_ms": 1.0}
    with pytest.warns(UserWarning, match="not a registered super-net"):
        p = rt.write_bundle(tmp_path / "u", supernet=net, members=[member])
    assert "target" in manifest_of(p)["supernet"]
    with pytest.raises(BundleError, match="trust_target"):
        rt.load(p)
    rt.register_supernet("test_mine", Mine)
    assert net.spec()["name"] == "test_mine"
    p = rt.write_bundle(tmp_path / "r", supernet=net, members=[member])
    assert manifest_of(p)["supernet"] == {"name": "test_mine", "kwargs": net.spec()["kwargs"]}
    assert rt.load(p).ids == ["a"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"evil": 1}, r"unknown arguments \['evil'\]"),
    ({"n_classes": 10**9}, r"n_classes=1000000000 is outside \[0, 100000\]"),
    ({"width_mult": float("1e308") * 10}, "not valid JSON|overflows"),
    ({"resolutions": list(range(1000))}, "list too long"),
    ({"space": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}}, "nested deeper"),
    ({"dropout": "x" * 1000}, "string of 1000 characters"),
])
def test_kwargs_are_checked_before_construction(victim: Path, kwargs: dict[str, Any],
                                                message: str) -> None:
    m = manifest_of(victim)
    m["supernet"]["kwargs"].update(kwargs)
    (victim / "manifest.json").write_text(json.dumps(m).replace("Infinity", "1e999"))
    with pytest.raises(BundleError, match=message):
        rt.load(victim)


def test_class_bounds_hook(victim: Path) -> None:
    from switchnas.supernets.ofa.mbv3 import OFAMobileNetV3Net

    class Bounded(OFAMobileNetV3Net):
        bundle_kwargs_bounds = {"n_classes": (2, 10)}

        @classmethod
        def check_bundle_kwargs(cls, kwargs: dict[str, Any]) -> None:
            if kwargs.get("width_mult", 1.0) < 0.25:
                raise ValueError(f"width_mult={kwargs['width_mult']} is below 0.25")

    rt.register_supernet("test_bounded", Bounded)
    m = manifest_of(victim)
    m["supernet"]["name"] = "test_bounded"
    m["supernet"]["kwargs"]["n_classes"] = 11
    write_manifest(victim, m)
    with pytest.raises(BundleError, match=r"n_classes=11 is outside \[2, 10\]"):
        rt.load(victim)
    m["supernet"]["kwargs"].update(n_classes=10, width_mult=0.2)
    write_manifest(victim, m)
    with pytest.raises(BundleError, match="width_mult=0.2 is below 0.25"):
        rt.load(victim)


# -- silently wrong outputs -----------------------------------------------------------------
def test_smaller_tensor(victim: Path) -> None:
    edit_tensors(victim, lambda t: t.update({
        "shared/net.classifier.linear.weight": t["shared/net.classifier.linear.weight"][:9]}))
    with pytest.raises(BundleError, match=r"shape \[9, .*does not fit what the members read"):
        rt.load(victim)


def test_missing_bn_tensor_names_the_member(victim: Path) -> None:
    key = next(k for k in manifest_of(victim) and _keys(victim) if k.startswith("bn/1/"))
    edit_tensors(victim, lambda t: t.pop(key))
    with pytest.raises(BundleError, match="lack tensor 'bn/1/.*member 'm1'"):
        rt.load(victim)


def _keys(path: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(path / "weights.safetensors"), framework="pt") as f:
        return list(f.keys())  # noqa: SIM118


def test_edited_weights_fail_the_fingerprint(victim: Path) -> None:
    edit_tensors(victim, lambda t: t["shared/net.classifier.linear.bias"].add_(0.5))
    with pytest.raises(BundleError, match="member 'm[01]' fails its fingerprint check"):
        rt.load(victim)
    assert rt.load(victim, verify=False).ids == ["m0", "m1"]  # the explicit way out


@pytest.mark.parametrize("edit", ["resolution", "expand"])
def test_edited_member_config(victim: Path, edit: str) -> None:
    m = manifest_of(victim)
    cfg = m["members"][1]["config"]
    if edit == "resolution":
        cfg["r"] = 40 if cfg["r"] == 32 else 32
    else:
        cfg["e"] = [3 if e != 3 else 4 for e in cfg["e"]]
    refresh(victim, m)
    with pytest.raises(BundleError, match="member 'm1'|does not fit|lack tensor|no member"):
        rt.load(victim)


def test_changed_class_count_is_refused_before_allocation(victim: Path) -> None:
    m = manifest_of(victim)
    m["supernet"]["kwargs"]["n_classes"] = 11
    refresh(victim, m)
    with pytest.raises(BundleError, match="classifier.*does not fit"):
        rt.load(victim)
    m["supernet"]["kwargs"]["n_classes"] = 100_000  # 1280 x 100000 floats if built
    refresh(victim, m)
    before = max_rss_mb()
    with pytest.raises(BundleError, match="does not fit|more than"):
        rt.load(victim)
    assert max_rss_mb() - before < 300


def test_fingerprint_tolerance() -> None:
    from switchnas.runtime._integrity import compare_fingerprints, fingerprint

    x = torch.randn(2, 3, 8, 8)
    y = torch.randn(2, 1000, generator=torch.Generator().manual_seed(0))
    fp = fingerprint(x, y)
    # float32 noise of another device or thread count passes ...
    noisy = y * (1 + 1e-5 * torch.randn(y.shape)) + 1e-6 * torch.randn(y.shape)
    assert compare_fingerprints(fp, fingerprint(x, noisy)) is None
    # ... a changed element, a shift, another shape or a NaN does not
    edited = y.clone()
    edited[1, 0] += 0.1
    assert compare_fingerprints(fp, fingerprint(x, edited)) is not None
    assert compare_fingerprints(fp, fingerprint(x, y + 0.01)) is not None
    assert "shape" in str(compare_fingerprints(fp, fingerprint(x, y[:, :999])))
    with pytest.raises(ValueError, match="not finite"):
        fingerprint(x, torch.full((2, 3), float("nan")))


# -- malformed manifests ---------------------------------------------------------------------
@pytest.mark.parametrize(("text", "message"), [
    ('{"format": "switchnas-bundle", "format_version": ' + "9" * 5000 + "}", "5000 digits"),
    ("[" * 100_000 + "]" * 100_000, "nested more than"),
    ('{"a": ' * 40 + "1" + "}" * 40, "nested more than 32"),
    ('{"format": NaN}', "NaN is not a JSON number"),
    ('{"format": 1e999}', "overflows"),
    ('{"format": "switchnas-bundle", "format": "x"}', "appears twice"),
    ("\udcff", "not valid JSON"),
])
def test_malformed_manifest(victim: Path, text: str, message: str) -> None:
    (victim / "manifest.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(BundleError, match=message):
        rt.load(victim)


def test_oversized_manifest(victim: Path) -> None:
    with open(victim / "manifest.json", "ab") as f:
        f.truncate(20 << 20)
    with pytest.raises(BundleError, match="more than the limit"):
        rt.load(victim)


# -- folders and archives -------------------------------------------------------------------
def test_special_files_are_refused_without_reading(victim: Path, tmp_path: Path) -> None:
    w = victim / "weights.safetensors"
    w.unlink()
    os.symlink("/dev/zero", w)
    with pytest.raises(BundleError, match="not a regular file"):
        rt.load(victim)
    w.unlink()
    os.mkfifo(w)  # reading a pipe would block forever
    with pytest.raises(BundleError, match="not a regular file"):
        rt.load(victim)


def _tar(path: Path, entries: list[tuple[str, bytes | None, bytes]]) -> Path:
    """entries: (name, type flag or None for a file, data)."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            if kind is not None:
                info.type = kind
                info.size = 0
                info.linkname = "/etc/passwd"
            tar.addfile(info, io.BytesIO(data) if kind is None else None)
    return path


@pytest.fixture(scope="module")
def archive(small: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return rt.pack_bundle(small, tmp_path_factory.mktemp("tar") / "b.tar")


def _members(small: Path) -> tuple[bytes, bytes]:
    return (small / "manifest.json").read_bytes(), (small / "weights.safetensors").read_bytes()


@pytest.mark.parametrize(("layout", "message"), [
    ("traversal", "not a plain file"),
    ("symlink", "not a plain file"),
    ("hardlink", "not a plain file"),
    ("duplicate", "twice"),
    ("unlisted", "does not list"),
    ("manifest second", "starts with"),
    ("bigger", "manifest says"),
    ("empty", "not a readable bundle archive|no manifest.json"),
])
def test_hostile_archives(small: Path, tmp_path: Path, layout: str, message: str,
                          reference: Any) -> None:
    man, w = _members(small)
    entries = {
        "traversal": [("manifest.json", None, man), ("../weights.safetensors", None, w)],
        "symlink": [("manifest.json", None, man), ("weights.safetensors", tarfile.SYMTYPE, b"")],
        "hardlink": [("manifest.json", None, man), ("weights.safetensors", tarfile.LNKTYPE, b"")],
        "duplicate": [("manifest.json", None, man), ("weights.safetensors", None, w),
                      ("weights.safetensors", None, w)],
        "unlisted": [("manifest.json", None, man), ("x.bin", None, b"x")],
        "manifest second": [("weights.safetensors", None, w), ("manifest.json", None, man)],
        "bigger": [("manifest.json", None, man), ("weights.safetensors", None, w + b"\0" * 10)],
        "empty": [],
    }[layout]
    p = _tar(tmp_path / "a.tar", entries)
    with open(p, "ab") as f:  # as long as the files the manifest declares
        f.write(b"\0" * len(w))
    with pytest.raises(BundleError, match=message):
        rt.load(p)


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar to write a sparse file")
def test_sparse_archive_is_refused_without_expanding_it(small: Path, tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    shutil.copy(small / "manifest.json", d)
    with open(d / "weights.safetensors", "wb") as f:
        f.write((small / "weights.safetensors").read_bytes())
        f.truncate(5 << 30)  # then 5 GB of holes
    out = subprocess.run(["tar", "--sparse", "--format=gnu", "-cf", str(tmp_path / "s.tar"),
                          "-C", str(d), "manifest.json", "weights.safetensors"],
                         capture_output=True, timeout=60)
    if out.returncode != 0:
        pytest.skip(f"tar cannot write sparse files here: {out.stderr[-200:]!r}")
    assert (tmp_path / "s.tar").stat().st_size < 20 << 20
    before = max_rss_mb()
    with pytest.raises(BundleError, match="not a plain file"):
        rt.load(tmp_path / "s.tar")
    assert max_rss_mb() - before < 300


# -- property-based fuzzing -----------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**40, 10**40) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=5),
    max_leaves=30)


@FAST
@given(value=json_values)
def test_fuzz_random_manifest(victim: Path, value: Any) -> None:
    write_manifest(victim, value)
    with pytest.raises(BundleError):
        rt.load(victim)


@FAST
@given(data=st.binary(max_size=300))
def test_fuzz_random_manifest_bytes(victim: Path, data: bytes) -> None:
    (victim / "manifest.json").write_bytes(data)
    with pytest.raises(BundleError):
        rt.load(victim)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


@FAST
@given(data=st.data())
def test_fuzz_mutated_manifest(small: Path, tmp_path_factory: pytest.TempPathFactory,
                               reference: Any, data: st.DataObject) -> None:
    victim = Path(shutil.copytree(small, tmp_path_factory.mktemp("mut") / "v"))
    m = manifest_of(victim)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in _paths(m) if p]
        path = data.draw(st.sampled_from(paths))
        parent = m
        for k in path[:-1]:
            parent = parent[k]
        action = data.draw(st.sampled_from(["replace", "delete", "number", "copy"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "number":
            parent[path[-1]] = data.draw(st.sampled_from(
                [0, -1, 1, 2, 10**6, 10**20, 0.5, -0.0, 1e300, True, None, ""]))
        elif action == "copy":  # another node of the manifest in its place
            node: Any = m
            for k in data.draw(st.sampled_from(paths)):
                node = node[k]
            parent[path[-1]] = copy.deepcopy(node)
        else:
            parent[path[-1]] = data.draw(json_values)
    write_manifest(victim, m)
    loads_equal_or_refuses(victim, reference)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_mutated_weights(small: Path, tmp_path_factory: pytest.TempPathFactory,
                              reference: Any, data: st.DataObject) -> None:
    victim = Path(shutil.copytree(small, tmp_path_factory.mktemp("w") / "v"))
    w = victim / "weights.safetensors"
    buf = bytearray(w.read_bytes())
    header = 8 + int.from_bytes(buf[:8], "little")
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.sampled_from(["header", "anywhere", "length"]))
        if where == "length":
            buf[:8] = data.draw(st.integers(0, 2**64 - 1)).to_bytes(8, "little")
            continue
        hi = header if where == "header" else len(buf)
        i = data.draw(st.integers(0, hi - 1))
        op = data.draw(st.sampled_from(["flip", "set", "cut", "insert"]))
        if op == "flip":
            buf[i] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set":
            buf[i] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del buf[i:i + data.draw(st.integers(1, 64))]
        else:
            buf[i:i] = data.draw(st.binary(min_size=1, max_size=16))
    w.write_bytes(bytes(buf))
    refresh(victim)
    loads_equal_or_refuses(victim, reference)


@FAST
@given(data=st.data())
def test_fuzz_mutated_archive(archive: Path, tmp_path_factory: pytest.TempPathFactory,
                              reference: Any, data: st.DataObject) -> None:
    buf = bytearray(archive.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(buf) - 1))
        op = data.draw(st.sampled_from(["flip", "cut", "insert", "truncate"]))
        if op == "flip":
            buf[i] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "cut":
            del buf[i:i + data.draw(st.integers(1, 600))]
        elif op == "insert":
            buf[i:i] = data.draw(st.binary(min_size=1, max_size=600))
        else:
            del buf[i:]
        if not buf:  # a cut or truncation may remove everything; keep one byte to mutate
            buf = bytearray(b"\0")
    p = tmp_path_factory.mktemp("a") / "m.tar"
    p.write_bytes(bytes(buf))
    loads_equal_or_refuses(p, reference)


@FAST
@given(entries=st.lists(st.tuples(
    st.sampled_from(["manifest.json", "weights.safetensors", "../manifest.json", "/etc/x",
                     ".hidden", "a/b", "member-0.onnx", "x"]),
    st.sampled_from([None, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.DIRTYPE,
                     tarfile.FIFOTYPE, tarfile.CHRTYPE]),
    st.sampled_from(["manifest", "weights", "junk"])), max_size=5))
def test_fuzz_built_archives(small: Path, tmp_path_factory: pytest.TempPathFactory,
                             reference: Any, entries: list[Any]) -> None:
    man, w = _members(small)
    blobs = {"manifest": man, "weights": w, "junk": b"junk"}
    p = _tar(tmp_path_factory.mktemp("t") / "t.tar",
             [(n, k, blobs[b]) for n, k, b in entries])
    loads_equal_or_refuses(p, reference)
