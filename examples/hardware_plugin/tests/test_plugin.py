import pytest
import torch
from switchnas_myboard import MyBoardPlugin

from switchnas.plugins.testing import HardwarePluginTestSuite


class TestMyBoardPlugin(HardwarePluginTestSuite):
    """Every test of the shared suite, run on this plugin."""

    @pytest.fixture
    def plugin(self):
        return MyBoardPlugin(warmup=1, min_repeats=3, max_repeats=5, max_seconds=0.5)


def test_threads_recorded():
    assert MyBoardPlugin(threads=2).describe()["threads"] == 2


def test_batch_size_applies():
    m = MyBoardPlugin(batch_size=2, min_repeats=3, max_repeats=3).measure(
        torch.nn.Linear(4, 4), torch.randn(1, 4))
    assert m.median_ms > 0
