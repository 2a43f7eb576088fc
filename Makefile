# The two commands of the README: `make demo` (the main job) and `make test`
# (lint, a pip install of the wheel into a fresh venv, the mutation check,
# the test suite).
# Both first set up .venv/ (tools/setup_env.sh; a no-op once it is ready).
PY := .venv/bin/python

.PHONY: setup demo test lint benchmark install-check

setup:
	@bash tools/setup_env.sh

demo: setup
	$(PY) tools/demo.py

benchmark: setup
	$(PY) tools/benchmark

lint: setup
	$(PY) -m ruff check .

install-check: setup
	bash tools/check_install.sh

# pytest last: its summary closes the output. The mutation check plants
# each named bug of tests/mutants.py and fails if the tests miss one.
test: lint
	bash tools/check_install.sh
	$(PY) tools/mutation_check.py
	$(PY) -m pytest
