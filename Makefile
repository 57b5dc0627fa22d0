# One command each: `make demo`, `make test`, `make dev`. The virtual environment is created on demand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 3000

.PHONY: demo test dev install bench validate clean

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

dev: install
	DAGSTER_HOME=$${DAGSTER_HOME:-$(CURDIR)/.dagster_home} DEP_API_ENDPOINT=$${DEP_API_ENDPOINT:-file://$(CURDIR)/data/sample} \
		$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(PORT)

clean:
	rm -rf .dagster_home data/*.duckdb data/*.duckdb.wal data/*.lock
