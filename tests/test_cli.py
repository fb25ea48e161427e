"""The `qa` command, in-process through qa.cli.main and once as a real subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from qa.cli import main
from qa.store.database import connect

SUMMARY = re.compile(r"^(\d+) added, (\d+) updated, (\d+) removed, (\d+) unchanged, (\d+) skipped; "
                     r"(\d+) chunks embedded in \d+\.\ds$")
PASSAGE_FIELDS = {"score", "title", "date", "source", "url", "article_id", "chunk_id", "start", "end", "text"}


@pytest.fixture
def corpus(tmp_path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "port.md").write_text("---\ntitle: Port Strike Ends\ndate: 2024-04-10\nsource: Wire\n---\n"
                                    "Dock workers ended their strike at the port.\n\nCranes moved again by noon.\n")
    (folder / "orchard.txt").write_text("Orchard Harvest\nApple growers reported a record harvest.\n")
    return folder


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def summary(out: str) -> tuple[int, ...]:
    match = SUMMARY.match(out.splitlines()[0])
    assert match, out
    return tuple(int(n) for n in match.groups())


def articles(index: Path) -> list[str]:
    con = connect(index, readonly=True)
    try:
        return sorted(r[0] for r in con.execute("SELECT id FROM articles"))
    finally:
        con.close()


def test_index_prints_the_summary_and_returns_0(capsys, tmp_path, corpus, embedder):
    index = tmp_path / "index"
    code, out, _ = run(capsys, "index", "--corpus", corpus, "--index", index, "--quiet")
    assert code == 0
    added, updated, removed, unchanged, skipped, embedded = summary(out)
    assert (added, updated, removed, unchanged, skipped) == (2, 0, 0, 0, 0) and embedded >= 2
    assert articles(index) == ["orchard.txt", "port.md"]
    code, out, _ = run(capsys, "index", "--corpus", corpus, "--index", index)
    assert code == 0 and summary(out) == (0, 0, 0, 2, 0, 0)


def test_index_returns_1_when_something_was_skipped(capsys, tmp_path, corpus, embedder):
    (corpus / "table.csv").write_text("a,b\n1,2\n")
    (corpus / "bad.json").write_text("[{")
    code, out, _ = run(capsys, "index", "--corpus", corpus, "--index", tmp_path / "index", "--quiet")
    assert code == 1
    assert summary(out)[:5] == (2, 0, 0, 0, 2)
    assert "\n  skipped bad.json: invalid JSON" in out and "\n  skipped table.csv: unsupported file type" in out
    assert articles(tmp_path / "index") == ["orchard.txt", "port.md"]


def test_index_errors_exit_2_with_a_message(capsys, tmp_path, corpus, embedder):
    index = tmp_path / "index"
    assert run(capsys, "index", "--corpus", corpus, "--index", index, "--quiet")[0] == 0
    code, out, err = run(capsys, "index", "--corpus", corpus, "--index", index, "--chunk-tokens", "64")
    assert code == 2 and out == ""
    assert err.startswith("qa: error: ") and "`qa index --rebuild`" in err and "chunk_tokens" in err
    code, out, _ = run(capsys, "index", "--corpus", corpus, "--index", index, "--chunk-tokens", "64", "--rebuild")
    assert code == 0 and summary(out)[0] == 2
    code, _, err = run(capsys, "index", "--corpus", tmp_path / "typo", "--index", index)
    assert code == 2 and "corpus folder" in err and "not found" in err
    assert articles(index) == ["orchard.txt", "port.md"]  # left as it was
    code, _, err = run(capsys, "index", "--corpus", corpus, "--index", index, "--chunk-tokens", "4", "--rebuild")
    assert code == 2 and "too small" in err
    assert articles(index) == ["orchard.txt", "port.md"]  # bad settings are refused before the old index goes


def test_search_json(capsys, seed_index, embedder):
    code, out, _ = run(capsys, "search", "What ammunition was discussed?", "--index", seed_index, "--json", "-k", "3")
    assert code == 0
    passages = json.loads(out)
    assert len(passages) == 3 and all(set(p) == PASSAGE_FIELDS for p in passages)
    assert any("155" in p["text"] for p in passages)
    con = connect(seed_index, readonly=True)
    texts = dict(con.execute("SELECT id, text FROM articles").fetchall())
    con.close()
    assert all(texts[p["article_id"]][p["start"]:p["end"]] == p["text"] for p in passages)


def test_search_filters_and_text_output(capsys, tmp_path, corpus, embedder):
    index = tmp_path / "index"
    run(capsys, "index", "--corpus", corpus, "--index", index, "--quiet")
    code, out, _ = run(capsys, "search", "dock strike", "--index", index, "--mode", "bm25")
    assert code == 0
    assert out.splitlines()[0].startswith("1. [") and "Port Strike Ends (2024-04-10, Wire)" in out
    assert "port.md [" in out and "Dock workers ended their strike" in out
    code, out, _ = run(capsys, "search", "dock strike", "--index", index, "--since", "2024-05-01")
    assert code == 0 and "orchard.txt" in out  # undated: kept unless --no-undated
    code, out, _ = run(capsys, "search", "dock strike", "--index", index, "--since", "2024-05-01", "--no-undated")
    assert code == 0 and out == "No passages found.\n"
    code, out, _ = run(capsys, "search", "harvest", "--index", index, "--source", "Nobody", "--json")
    assert code == 0 and json.loads(out) == []
    code, _, err = run(capsys, "search", "harvest", "--index", index, "--until", "last week")
    assert code == 2 and "not a date" in err


def test_search_uses_qa_index_from_the_environment(capsys, monkeypatch, seed_index, embedder):
    monkeypatch.setenv("QA_INDEX", str(seed_index))
    code, out, _ = run(capsys, "search", "Umerov", "--json", "-k", "1")
    assert code == 0 and len(json.loads(out)) == 1


@pytest.mark.parametrize("command", ["search", "status"])
def test_a_missing_index_exits_2_and_names_qa_index(capsys, tmp_path, command):
    argv = ["search", "anything"] if command == "search" else ["status"]
    code, out, err = run(capsys, *argv, "--index", tmp_path / "none")
    assert code == 2 and out == ""
    assert "qa: error: no index in" in err and "`qa index" in err


def test_status(capsys, seed_index, embedder):
    code, out, _ = run(capsys, "status", "--index", seed_index)
    assert code == 0
    con = connect(seed_index, readonly=True)
    n_articles, n_chunks = con.execute(
        "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM chunks)").fetchone()
    con.close()
    assert out.startswith(f"{n_articles} articles, {n_chunks} chunks in {seed_index}; updated 20")
    assert "model all-MiniLM-L6-v2 (384 dimensions), chunks of 128 tokens with 1 sentence(s) overlap" in out
    assert out.rstrip().endswith("vector search: exact")


def test_no_command_prints_help_and_exits_2(capsys):
    code, out, _ = run(capsys)
    assert code == 2 and "index" in out and "search" in out


def test_the_installed_command_in_a_subprocess(seed_index):
    qa = Path(sys.executable).with_name("qa")
    argv = [str(qa)] if qa.exists() else [sys.executable, "-m", "qa.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    done = subprocess.run([*argv, "search", "What ammunition was discussed?", "--index", str(seed_index), "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    passages = json.loads(done.stdout)
    assert len(passages) == 5 and any(re.search(r"105 ?mm", p["text"]) for p in passages)
    missing = subprocess.run([*argv, "search", "x", "--index", str(seed_index.parent / "missing")],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "`qa index" in missing.stderr


def test_a_bad_environment_variable_is_a_usage_error(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("QA_CHUNK_TOKENS", "lots")
    code, out, err = run(capsys, "index", "--corpus", tmp_path, "--index", tmp_path / "index")
    assert code == 2 and out == ""
    assert "QA_CHUNK_TOKENS='lots' is not a whole number" in err
