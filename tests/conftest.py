"""Shared fixtures: the real bundled model, and real indexes built in temporary folders."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from qa.environment import configure_offline

configure_offline()

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
SHARED = ROOT.parent / "shared"
EVAL = SHARED / "eval"
#: The suite's encoder, torch fp32 (see ``embedder``): for its shared embedder, and for the indexes the CLI, the web
#: app and `qa` subprocesses build in tests.
ENCODER = "torch"

#: How many kills, rounds and seconds the long tests run (SIGKILLs of `qa index`, disk-full steps, soak time):
#: ``ci`` (the default: `make test`) keeps the suite within its time; ``full`` (`make stress`, part of `make bench`)
#: runs the full counts. Read once here: the autouse fixture below removes QA_* variables from each test.
TEST_SCALE = os.environ.get("QA_TEST_SCALE", "ci")
if TEST_SCALE not in ("ci", "full"):
    raise pytest.UsageError(f"QA_TEST_SCALE must be 'ci' or 'full', not {TEST_SCALE!r}")


def scaled(ci, full):
    """``ci`` in the default run, ``full`` with QA_TEST_SCALE=full."""
    return full if TEST_SCALE == "full" else ci


def write(folder: Path, name: str, content: str | bytes) -> Path:
    """Write a test file (text as UTF-8, or raw bytes), making its folders."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def embedder():
    """The bundled all-MiniLM-L6-v2 in torch fp32, loaded once for the whole run. Not the default encoder
    (openvino): its vectors are bfloat16's on CPUs with AMX or AVX-512 BF16 and fp32's elsewhere, and 6 of the
    regression gate's 717 answers differ between the two; torch fp32 gives the same answers on every CPU.
    tests/test_encoders.py tests the others, the default among them."""
    from qa.encoders import load_embedder

    return load_embedder("all-MiniLM-L6-v2", encoder=ENCODER)


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory, embedder) -> Path:
    """An index of the bundled corpus, built once; tests must not change it."""
    from qa import sync

    index = tmp_path_factory.mktemp("seed-index")
    sync(CORPUS, index, embedder=embedder)
    return index


@pytest.fixture(scope="session")
def news_index(tmp_path_factory, embedder) -> Path:
    """An index of newsqa's archive (the bundled articles and bench/newsqa's news test articles), built once;
    tests must not change it."""
    from bench.newsqa import build_corpus
    from qa import sync

    root = tmp_path_factory.mktemp("news")
    index = root / "index"
    sync(build_corpus(root / "corpus"), index, embedder=embedder)
    return index


@pytest.fixture
def corpus_copy(tmp_path) -> Path:
    """A writable copy of the bundled corpus."""
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS, target)
    return target


@pytest.fixture(autouse=True)
def _no_env_leaks(monkeypatch):
    for name in list(os.environ):
        if name.startswith("QA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("QA_ENCODER", ENCODER)  # tests/test_encoders.py unsets it to test the default
