"""Every package folder is installed under the ``switchnas`` namespace."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed() -> None:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    mapping = cfg["package-dir"]
    found = set()
    for ns, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([ns, *rel.parts]) if rel.parts else ns)
    assert found == listed, f"unlisted: {sorted(found - listed)}, stale: {sorted(listed - found)}"


def test_conf_yaml_is_package_data() -> None:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = cfg["package-data"]["switchnas.conf"]
    for yml in (ROOT / "conf").rglob("*.yaml"):
        depth = len(yml.relative_to(ROOT / "conf").parts)
        assert any(p.count("/") == depth - 1 for p in patterns), yml
