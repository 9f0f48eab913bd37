"""Same-size tampering: one byte of any file a bundle lists, changed in place, is refused
at load, by the torch runtime and (for ONNX members) by the ONNX runtime, before anything
in the file is used. A size check alone passes every one of these."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import switchnas.runtime as rt
from switchnas.runtime import BundleError
from switchnas.runtime.onnx import load_onnx


@pytest.fixture(scope="module")
def onnx_bundle(tmp_path_factory: pytest.TempPathFactory, family: Any) -> Path:
    net, members = family
    return rt.write_bundle(tmp_path_factory.mktemp("tamper") / "b", supernet=net,
                           members=members[:2], onnx=True)


def _listed(bundle: Path) -> list[str]:
    return sorted(json.loads((bundle / "manifest.json").read_text())["files"])


def test_the_bundle_lists_its_weights_and_every_onnx_member(onnx_bundle: Path) -> None:
    names = _listed(onnx_bundle)
    assert "weights.safetensors" in names
    assert sum(n.endswith(".onnx") for n in names) == 2
    rt.load(onnx_bundle)  # untouched, it loads
    load_onnx(onnx_bundle)


def _flip(path: Path, at: int, xor: int) -> None:
    data = bytearray(path.read_bytes())
    data[at % len(data)] ^= xor
    path.write_bytes(bytes(data))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, 10**6), at=st.integers(0, 2**40), xor=st.integers(1, 255))
def test_a_flipped_byte_in_any_listed_file_is_refused(onnx_bundle: Path, tmp_path: Path,
                                                      which: int, at: int, xor: int) -> None:
    names = _listed(onnx_bundle)
    name = names[which % len(names)]
    copy = tmp_path / f"t{which}-{at}-{xor}"
    shutil.copytree(onnx_bundle, copy)
    size = (copy / name).stat().st_size
    _flip(copy / name, at, xor)
    assert (copy / name).stat().st_size == size
    with pytest.raises(BundleError, match=name.replace(".", r"\.")):
        rt.load(copy)
    if name.endswith(".onnx"):
        with pytest.raises(BundleError, match="size or SHA-256"):
            load_onnx(copy)
    shutil.rmtree(copy)


@pytest.mark.parametrize("where", ["first", "last"])
def test_every_listed_file_at_both_ends(onnx_bundle: Path, tmp_path: Path, where: str) -> None:
    for name in _listed(onnx_bundle):
        copy = Path(shutil.copytree(onnx_bundle, tmp_path / f"{where}-{name}"))
        _flip(copy / name, 0 if where == "first" else -1, 0x01)
        with pytest.raises(BundleError):
            rt.load(copy)
        if name.endswith(".onnx"):
            with pytest.raises(BundleError):
                load_onnx(copy)
