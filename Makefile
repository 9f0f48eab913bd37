# switchnas developer entry points. `make demo` and `make test` set up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.switchnas-installed
# pytest-xdist workers of `make test` (tests/conftest.py gives each its share of the cores)
TEST_WORKERS ?= 2

# PyTorch is pinned here, per machine kind, never resolved by pip on its own (an
# unpinned torch pulls a multi-GB build). pyproject.toml only declares compatible ranges.
ARCH := $(shell uname -m)
ifeq ($(ARCH),aarch64)
TORCH_PINS ?= torch==2.9.1 torchvision==0.24.1
else
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
endif

.PHONY: setup demo test test-fast lint bench mutate clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip install -q -e ".[dev,postgres]"
	touch $(STAMP)

setup: $(STAMP)

## The main job on its embedded default (OFA-MobileNetV3 on scikit-learn's digits, cpu plugin).
demo: setup
	$(VENV)/bin/switchnas run

## The whole test suite (what CI runs), in TEST_WORKERS parallel workers.
test: setup
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --durations=30

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy supernets plugins predictors search runtime pipeline

bench: setup
	$(PY) benchmarks/predictors.py
	$(PY) benchmarks/runtime.py
	$(PY) benchmarks/measurement.py

## Mutation score of search/, runtime/, predictors/, pipeline/artifacts.py and HAT decoding
## against the fast tests (mutmut in a private copy; hours on 2 cores), saved in
## benchmarks/results/mutation.{json,md}. MUTATE_ARGS narrows it, e.g.
## make mutate MUTATE_ARGS="--modules search/pareto.py --tests tests/search/test_search.py"
mutate: setup
	$(PY) -m pip install -q -e ".[mutate]"
	$(PY) -m benchmarks.mutation $(MUTATE_ARGS)

clean:
	rm -rf runs outputs multirun .pytest_cache .mypy_cache .ruff_cache
