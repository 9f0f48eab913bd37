"""Suite-wide settings for running the tests in parallel (``make test`` runs
``pytest -n 2 --dist loadgroup``, pytest-xdist).

- Every test that reads the session's shared tiny runs (``tiny_run``, ``oneshot_run``,
  their ``artifact_store``) is put in one xdist group, so one worker trains and runs them
  once; a second worker would repeat minutes of work for its own copy of the fixtures.
- Each worker gets its share of the cores (``torch`` threads in the worker, and
  ``OMP_NUM_THREADS`` for the command-line runs it starts), so that two workers do not
  oversubscribe two cores. A test that sets threads itself still does.
"""

from __future__ import annotations

import os

import pytest

#: session fixtures that must be made once: tests using them share one worker
SHARED_RUNS = frozenset({"tiny_run", "oneshot_run", "artifact_store"})


def pytest_configure(config: pytest.Config) -> None:
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if workers > 1:
        share = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(share)
        import torch

        torch.set_num_threads(share)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SHARED_RUNS & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group("shared_tiny_runs"))
