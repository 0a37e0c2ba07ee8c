# Every target sets up .venv itself: on a fresh machine `make run` and `make test` are all you need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint demo bench schema drill clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/feedbot $(if $(wildcard feedbot.toml),--config feedbot.toml) run

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check feedbot tests benchmarks

demo: $(STAMP)
	$(BIN)/feedbot demo

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

schema: $(STAMP)  # after adding a migration: the script a new state file is created from
	$(BIN)/python -m feedbot.store.schema

drill: $(STAMP)
	$(BIN)/python -m pytest -m drill $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
