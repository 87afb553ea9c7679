# The two commands a newcomer needs (see README):  make run   and   make test
# Both create the venv and install the pinned dependencies on first use.

VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp

# `make run` serves the embedded local model (scripts/serve.py builds llama-cpp-python and
# fetches the model on first use) unless TOOLCODE_UPSTREAM_BASE names your own upstream.
export LITELLM_LOCAL_MODEL_COST_MAP := True

# `make gateway`: a local Jupyter Kernel Gateway running our hardened kernels (docs/gateway.md),
# in a venv of its own: it needs jupyter_server and its tree, the proxy does not.
GW_VENV  ?= .venv-gateway
GW_STAMP := $(GW_VENV)/.installed-stamp

.PHONY: run test test-real lint install gateway gateway-install

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	# BFCL's data and AST checker, without its heavy dependency tree (design.md section 7).
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt bfcl-eval==2026.3.23
	touch $(STAMP)

install: $(STAMP)

$(GW_STAMP): constraints.txt constraints-gateway.txt
	$(PYTHON) -m venv $(GW_VENV)
	$(GW_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(GW_VENV)/bin/python -m pip install --quiet -c constraints.txt -c constraints-gateway.txt \
		jupyter-kernel-gateway jupyter-server ipykernel pydantic orjson
	touch $(GW_STAMP)

gateway-install: $(GW_STAMP)

# GATEWAY_ARGS: more Kernel Gateway options, e.g. TLS (docs/gateway.md)
gateway: $(GW_STAMP)
	$(GW_VENV)/bin/python scripts/gateway.py $(GATEWAY_ARGS)

run: $(STAMP)
	$(BIN)/python scripts/serve.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint $(GW_STAMP)
	$(BIN)/pytest

# End-to-end tests against the real local model (builds/fetches it on first use; slow).
test-real: $(STAMP)
	$(BIN)/pytest -m real_model
