"""Switching while other threads run requests: every call runs one member from start to end."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import torch

import switchnas.runtime as rt


@pytest.mark.parametrize("switch", ["extracted", "inplace"])
def test_switching_under_concurrent_calls(bundle_dir: Path, family: Any, switch: str) -> None:
    net, members = family
    bundle = rt.load(bundle_dir, switch=switch)
    x = torch.randn(1, 3, 32, 32)
    want = {}
    for m in members:
        bundle.activate(m["id"])
        want[m["id"]] = bundle(x)
    # outputs must differ, or a torn call could pass unnoticed
    assert not torch.allclose(want["m0"], want["m1"])
    errors: list[str] = []
    stop = threading.Event()

    def caller() -> None:
        while not stop.is_set():
            y = bundle(x)
            if not any(torch.allclose(y, w, atol=1e-5) for w in want.values()):
                errors.append("an output matching no member: a switch tore a call")

    def switcher() -> None:
        for i in range(60):
            bundle.activate(members[i % len(members)]["id"])

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
