"""Writes a tiny plugin package into a folder (for registry tests without pip)."""

from __future__ import annotations

import textwrap
from pathlib import Path

PLUGIN = '''
from switchnas.plugins.cpu import CPUPlugin


class AcmePlugin(CPUPlugin):
    name = "acme"

    def __init__(self, *, board="acme-1", **kwargs):
        super().__init__(**kwargs)
        self.board = board

    def describe(self):
        return {**super().describe(), "plugin": self.name, "board": self.board}


class NotAPlugin:
    name = "broken"

    def measure(self, module, example_input):
        return None
'''

CONFIG = '''
_target_: acme_board.plugin.AcmePlugin
board: acme-2
warmup: 1
min_repeats: 3
max_repeats: 5
max_seconds: 0.5
'''


def write_package(root: Path) -> Path:
    pkg = root / "acme_board"
    (pkg / "conf" / "hardware").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "plugin.py").write_text(textwrap.dedent(PLUGIN))
    (pkg / "conf" / "__init__.py").write_text("")
    (pkg / "conf" / "hardware" / "acme.yaml").write_text(textwrap.dedent(CONFIG))
    return pkg
