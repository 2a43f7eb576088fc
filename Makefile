# The two commands of the README: `make demo` (the main job) and `make test`.
# Both first set up .venv/ (tools/setup_env.sh; a no-op once it is ready).
PY := .venv/bin/python

.PHONY: setup demo test lint benchmark

setup:
	@bash tools/setup_env.sh

demo: setup
	$(PY) tools/demo.py

benchmark: setup
	$(PY) tools/benchmark

lint: setup
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest
