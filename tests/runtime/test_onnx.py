from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import switchnas.runtime as rt
from switchnas.runtime import BundleError
from switchnas.runtime.onnx import load_onnx


@pytest.fixture(scope="module")
def onnx_bundle(tmp_path_factory: pytest.TempPathFactory, family: Any) -> Path:
    net, members = family
    return rt.write_bundle(tmp_path_factory.mktemp("onnx") / "b", supernet=net,
                           members=members[:2], onnx=True)


def test_onnx_members_match_torch(onnx_bundle: Path, family: Any) -> None:
    net, members = family
    ob = load_onnx(onnx_bundle)
    for m in members[:2]:
        net.load_bn_state(m["bn_state"])
        ref = net.extract(m["config"]).eval()
        ob.activate(m["id"])
        x = torch.randn(*ob.input_shape(m["id"], batch=2))
        with torch.no_grad():
            want = ref(x).numpy()
        assert np.allclose(ob(x.numpy()), want, atol=1e-4)
    assert ob.selector(target_ms=3.0).current in ob.ids
    # the torch runtime reads the same bundle (ONNX files are checksummed, not needed)
    assert rt.load(onnx_bundle, switch="inplace").ids == ob.ids


@pytest.mark.slow  # a fresh interpreter
def test_onnx_runs_without_torch(onnx_bundle: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "sys.modules['safetensors'] = None\n"
        "import numpy as np\n"
        "from switchnas.runtime.onnx import load_onnx\n"
        f"b = load_onnx({str(onnx_bundle)!r})\n"
        "b.activate(b.ids[1])\n"
        "print(b(np.zeros(b.input_shape(b.ids[1]), np.float32)).shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(1, 10)"


def test_onnx_refusals(onnx_bundle: Path, bundle_dir: Path, tmp_path: Path) -> None:
    import shutil

    with pytest.raises(BundleError, match="no ONNX file"):
        load_onnx(bundle_dir)
    copy = Path(shutil.copytree(onnx_bundle, tmp_path / "c"))
    f = copy / "member-1.onnx"
    f.write_bytes(f.read_bytes()[:-10])
    with pytest.raises(BundleError, match="truncated or modified"):
        load_onnx(copy)
    with pytest.raises(BundleError, match="truncated or replaced"):
        rt.load(copy)


def test_onnx_call_feeds_a_contiguous_float32_x() -> None:
    """``OnnxBundle.__call__`` hands the active member's session one C-contiguous float32
    input named ``x`` (onnxruntime refuses float64) and returns its first output."""
    from switchnas.runtime.onnx import OnnxBundle

    class Session:
        def __init__(self) -> None:
            self.feeds: list[dict[str, np.ndarray]] = []

        def run(self, names: Any, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
            assert names is None
            self.feeds.append(feed)
            return [feed["x"].sum(axis=(1, 2, 3)), np.zeros(1)]

    b = OnnxBundle.__new__(OnnxBundle)  # the sessions without onnxruntime
    b._sessions = {"m0": Session(), "m1": Session()}
    b._lock = threading.Lock()
    b._active = "m1"
    x = np.arange(2 * 3 * 4 * 4, dtype=np.float64).reshape(2, 3, 4, 4)[..., ::-1]
    out = b(x)
    (feed,) = b._sessions["m1"].feeds
    assert list(feed) == ["x"] and not b._sessions["m0"].feeds
    assert feed["x"].dtype == np.float32 and feed["x"].flags.c_contiguous
    np.testing.assert_array_equal(feed["x"], x.astype(np.float32))
    np.testing.assert_allclose(out, x.sum(axis=(1, 2, 3)))
