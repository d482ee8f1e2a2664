# Two commands for a newcomer: `make demo` and `make test`. `make` (or `make help`) lists
# every target; the others are for developers.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TEST_STAMP := $(VENV)/.installed-test
DEMO_STAMP := $(VENV)/.installed-demo
BENCH_STAMP := $(VENV)/.installed-bench
# The development install is editable in setuptools' *strict* mode: a static .pth file
# points at a tree of links to the package's files, which type checkers follow (mypy
# --strict on your own script finds wireclient and its py.typed), where the default mode's
# import hook is invisible to them. A strict install does not see modules added later, so
# the stamps also depend on the package directories: adding or removing a module re-runs
# the install.
INSTALL := $(PY) -m pip install -q --config-settings editable_mode=strict -e
INSTALL_INPUTS := $(PY) setup.cfg pyproject.toml wireclient $(wildcard wireclient/*/)

.DEFAULT_GOAL := help
.PHONY: help test demo lint bench clean venv

help: ## list these targets
	@echo "make targets:"
	@awk -F ':.*## ' '/^[a-z]+:.*## /{printf "  make %-7s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(TEST_STAMP): $(INSTALL_INPUTS)
	$(INSTALL) '.[test]'
	touch $(TEST_STAMP)

$(DEMO_STAMP): $(INSTALL_INPUTS)
	$(INSTALL) '.[demo]'
	touch $(DEMO_STAMP)

$(BENCH_STAMP): $(INSTALL_INPUTS)
	$(INSTALL) '.[bench]'
	touch $(BENCH_STAMP)

venv: $(TEST_STAMP) ## create .venv with everything the tests and lint need

# Two pytest-xdist workers (the machines have 2 cores), each with its own servers;
# PYTEST_ARGS="-n 0" runs the suite in one process.
test: $(TEST_STAMP) ## install the test tools in .venv and run the test suite
	$(PY) -m pytest -q -n 2 $(PYTEST_ARGS)

demo: $(DEMO_STAMP) ## install only wireclient and SecantusDB, start a server, run the examples
	$(PY) examples/requests_demo.py
	$(PY) examples/toolkit_demo.py

# lint-imports: the layer contracts in .importlinter (design.md §1)
lint: $(TEST_STAMP) ## ruff, mypy --strict and the import contracts
	$(VENV)/bin/ruff check wireclient tests benchmarks
	$(VENV)/bin/ruff format --check wireclient tests benchmarks
	$(VENV)/bin/mypy --strict wireclient
	$(VENV)/bin/lint-imports

# BENCH_ARGS: e.g. --quick, or --only bench_workloads,bench_footprint (benchmarks/run_all.py)
bench: $(BENCH_STAMP) ## benchmarks against pymongo and a bare socket; renders docs/benchmarks.md
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

clean: ## remove .venv and build files
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .hypothesis .import_linter_cache
