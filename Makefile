# The two commands a newcomer needs (see README):  make run   and   make test
# Both create the venv and install the pinned dependencies on first use.

VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp

# `make run` serves the embedded local model (scripts/serve.py builds llama-cpp-python and
# fetches the model on first use) unless TOOLCODE_UPSTREAM_BASE names your own upstream.
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: run test test-real lint install

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	# BFCL's data and AST checker, without its heavy dependency tree (design.md section 7).
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt bfcl-eval==2026.3.23
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python scripts/serve.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# End-to-end tests against the real local model (builds/fetches it on first use; slow).
test-real: $(STAMP)
	$(BIN)/pytest -m real_model
