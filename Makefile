# Quick start: `make run` (set up, index corpus/, start the web chat) and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1

.PHONY: run test index lint bench browser clean

$(BIN)/qa: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/qa

index: $(BIN)/qa
	$(BIN)/qa index

run: index
	$(BIN)/python app.py

# Debian's Chromium for the browser tests (Playwright's own browser download cannot work offline).
browser:
	@test -x /usr/bin/chromium || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-dejavu-core; }

test: $(BIN)/qa browser
	$(BIN)/ruff check qa tests bench app.py
	$(BIN)/python -m pytest -q

# Benchmarks (BENCHMARKS.md); `make bench BENCH_ARGS=--quick` for the short run (the soak: 10 minutes instead of 30).
# txtai and matplotlib are bench-only.
bench: $(BIN)/qa
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench $(BENCH_ARGS)
	$(BIN)/python -m bench.load
	$(MAKE) browser
	$(BIN)/python -m bench.soak $(filter --quick,$(BENCH_ARGS))

clean:
	rm -rf $(VENV) index/qa.sqlite* index/seg-* index/lexical-* index/vectors-* index/bm25-* artifacts
