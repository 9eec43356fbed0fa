# Everything a fresh machine needs, in two targets:
#   make lab   - set up and open the quickstart notebook in JupyterLab
#   make test  - set up and run the whole test suite (lint, types, JS, unit, kernel, browser,
#                and a real llama.cpp server with a real small model)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LLAMACPP_STAMP := $(VENV)/.installed-llamacpp

.PHONY: lab test install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@# matplotlib builds its font cache at its first import, and says so on stderr: once
	@# here, not in the quickstart's first plot.
	$(BIN)/python -c 'import matplotlib.pyplot'
	touch $(STAMP)

install: $(STAMP)

# The real-model tests' server: llama-cpp-python compiles llama.cpp from its sdist (several
# minutes on 2 cores, once; pip's wheel cache keeps it). Only `make test` pays for it.
# Portable CPU code (no -march=native, so a cached wheel runs on another machine), and no
# multimodal library (not used).
LLAMACPP_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF

$(LLAMACPP_STAMP): $(STAMP)
	@echo 'Installing llama-cpp-python (compiles llama.cpp the first time) and SmolLM2...'
	CMAKE_ARGS='$(LLAMACPP_CMAKE_ARGS)' $(BIN)/python -m pip install --quiet -e '.[llamacpp]'
	touch $(LLAMACPP_STAMP)

# JupyterLab refuses to run as root unless told; containers and CI machines often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(STAMP)
	$(BIN)/jupyter lab $(ROOT_FLAG) notebooks/quickstart.ipynb

test: $(STAMP) $(LLAMACPP_STAMP)
	scripts/ensure-chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	cd js && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && npm test
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build dist *.egg-info
