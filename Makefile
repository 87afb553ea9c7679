# The two commands a newcomer needs (see README):  make run   and   make test
# Both create the venv and install the pinned dependencies on first use.

VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp

# Upstream for `make run` until the embedded model lands: any OpenAI-compatible server.
TOOLCODE_UPSTREAM_BASE  ?= http://127.0.0.1:8080/v1
TOOLCODE_UPSTREAM_MODEL ?= openai/qwen2.5-coder
TOOLCODE_UPSTREAM_KEY   ?= none
export TOOLCODE_UPSTREAM_BASE TOOLCODE_UPSTREAM_MODEL TOOLCODE_UPSTREAM_KEY
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: run test lint install

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@echo "LiteLLM proxy with litellm-toolcode on http://127.0.0.1:4000 -> upstream $(TOOLCODE_UPSTREAM_BASE)"
	$(BIN)/litellm --config config.yaml --host 127.0.0.1 --port 4000

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest
