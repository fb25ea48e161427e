# Quick start: `make run` (set up, index corpus/, start the web chat) and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1

.PHONY: run test index lint bench browser clean

# Milvus's real C++ core (milvus-lite 2.5.1) for the Milvus contract tests. Its own virtualenv: it pins
# setuptools<70, which the main one must not get. Only its `milvus` binary is used, as a server on 127.0.0.1
# that the main venv's pymilvus talks to (tests/milvus_servers.py).
MILVUS_CORE ?= .venv-milvus25
$(MILVUS_CORE)/.ready:
	$(PYTHON) -m venv $(MILVUS_CORE)
	$(MILVUS_CORE)/bin/pip install --quiet --upgrade pip
	$(MILVUS_CORE)/bin/pip install --quiet 'setuptools<70' 'milvus-lite==2.5.1'
	touch $@

$(BIN)/qa: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,milvus]'
	touch $(BIN)/qa

index: $(BIN)/qa
	$(BIN)/qa index

run: index
	$(BIN)/python app.py

# Debian's Chromium for the browser tests (Playwright's own browser download cannot work offline).
browser:
	@test -x /usr/bin/chromium || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-dejavu-core; }

test: $(BIN)/qa browser $(MILVUS_CORE)/.ready
	$(BIN)/ruff check qa tests bench app.py
	QA_REQUIRE_MILVUS_CORE=1 $(BIN)/python -m pytest -q

# Benchmarks (BENCHMARKS.md); `make bench BENCH_ARGS=--quick` for the short run (the soak: 10 minutes instead of 30).
# txtai and matplotlib are bench-only.
bench: $(BIN)/qa $(MILVUS_CORE)/.ready
	$(BIN)/pip install --quiet -e '.[test,bench,milvus]'
	$(BIN)/python -m bench $(BENCH_ARGS)
	$(BIN)/python -m bench.milvus
	$(BIN)/python -m bench.load
	$(MAKE) browser
	$(BIN)/python -m bench.soak $(filter --quick,$(BENCH_ARGS))

clean:
	rm -rf $(VENV) $(MILVUS_CORE) index/qa.sqlite* index/vectors-* index/bm25-* artifacts
