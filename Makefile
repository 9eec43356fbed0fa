# Everything a fresh machine needs, in two targets:
#   make lab   - set up and open the quickstart notebook in JupyterLab
#   make test  - set up and run the whole test suite (lint, types, JS, unit, kernel, browser)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: lab test install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# JupyterLab refuses to run as root unless told; containers and CI machines often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(STAMP)
	$(BIN)/jupyter lab $(ROOT_FLAG) notebooks/quickstart.ipynb

test: $(STAMP)
	scripts/ensure-chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	cd js && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && npm test
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build dist *.egg-info
