# One command each: `make demo`, `make test`, `make dev`. The virtual environment is created on demand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 3000

.PHONY: demo test dev install bench clean

$(BIN)/dagster: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/dagster

install: $(BIN)/dagster

demo: install
	$(BIN)/python -m dep_assets.cli demo

test: install
	$(BIN)/dagster definitions validate -w workspace.yaml
	$(BIN)/pytest

# The UI on the same archive and instance as `make demo` (the bundled sample unless DEP_API_ENDPOINT is set).
dev: install
	$(BIN)/python -m dep_assets.cli dev --port $(PORT)

# Replay speed and memory on a synthetic 100,000-announcement archive; the last line is JSON.
bench: install
	$(BIN)/python -m dep_assets.bench

clean:
	rm -rf .dagster_home data/*.duckdb data/*.duckdb.wal data/*.lock
