"""The README's Python code blocks run as written.

Every ```` ```python ```` block of README.md is executed, each in a fresh namespace, in a
temporary working directory. The paths they read from a run directory (``runs/a/...``)
are replaced by artifacts built here: a small bundle and a study database. A block that
must not run is preceded by the line ``<!-- no-test -->`` (use sparingly).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
NO_TEST = "<!-- no-test -->"
_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)


def python_blocks(markdown: str) -> list[tuple[int, str]]:
    """``(line number, code)`` of each python block not marked ``<!-- no-test -->``."""
    out = []
    for m in _BLOCK.finditer(markdown):
        before = markdown[:m.start()].rstrip().splitlines()
        if before and before[-1].strip() == NO_TEST:
            continue
        out.append((markdown.count("\n", 0, m.start()) + 1, m.group(1)))
    return out


def run_block(code: str, paths: dict[str, Path], where: str) -> dict[str, Any]:
    """Execute ``code`` with the README's example paths replaced by ``paths``."""
    for example, real in paths.items():
        code = code.replace(example, real.as_posix())
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    exec(compile(code, where, "exec"), namespace)  # noqa: S102 - our own README
    return namespace


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory holding what the README's blocks read: ``bundle/`` (a small
    OFA-MobileNetV3 family, untrained) and ``study.db`` (a ``validate`` study)."""
    from switchnas.runtime import image_classification_io, write_bundle
    from switchnas.search.study import record_measurements
    from switchnas.supernets.ofa.mbv3 import OFAMobileNetV3Net

    root = tmp_path_factory.mktemp("readme") / "run"
    torch.manual_seed(0)
    net = OFAMobileNetV3Net(n_classes=10, width_mult=0.5, resolutions=[32, 40])
    net.eval()
    rng = np.random.default_rng(0)
    configs = [net.space.sample(rng) for _ in range(3)]
    members = [{"id": f"m{i}", "config": c, "accuracy": 80.0 + i, "latency_ms": 2.0 + i}
               for i, c in enumerate(configs)]
    write_bundle(root / "bundle", supernet=net, members=members, verify=False,
                 io=image_classification_io(mean=[0.5] * 3, std=[0.25] * 3))
    rows = [{"config": c, "latency_ms": 2.0 + i, "accuracy": 80.0 + i}
            for i, c in enumerate(configs)]
    record_measurements(root / "study.db", "validate", net.space, rows,
                        metric_names=("latency_ms", "top1"))
    return root


def test_the_readme_has_python_blocks() -> None:
    assert len(python_blocks(README.read_text())) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(python_blocks(README.read_text()))))
def test_readme_block_runs(index: int, run_dir: Path, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    line, code = python_blocks(README.read_text())[index]
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)
    ns = run_block(code, {"runs/a": run_dir}, f"README.md (block at line {line})")
    if "rt.load(" in code:  # the bundle block really served requests and stepped
        assert ns["request"] == 99 and ns["y"].shape == (1, 10)
        assert ns["member"] in ns["bundle"].ids


MARKDOWN = """
text

```python
x = 1
```

<!-- no-test -->
```python
raise RuntimeError("not run")
```

```python
import definitely_not_a_module
```
"""


def test_marked_blocks_are_skipped_and_a_broken_block_fails(tmp_path: Path) -> None:
    blocks = python_blocks(MARKDOWN)
    assert [code for _, code in blocks] == ["x = 1\n", "import definitely_not_a_module\n"]
    assert [line for line, _ in blocks] == [4, 13]
    assert run_block(blocks[0][1], {}, "md")["x"] == 1
    with pytest.raises(ModuleNotFoundError):
        run_block(blocks[1][1], {}, "md")
