"""The contract of the storage seam (qa/store/protocol.py), run against every backend in STORE_BACKENDS.

A backend joins by adding an entry: a name and a function that, given an empty temporary folder, returns the
Settings that open a new, empty index of that backend (``open_store(settings, writable=True)``). The tests are
grouped by the protocol they hold a backend to: :class:`Searcher` (search), :class:`Catalogue` (the article list)
and :class:`Writer` (locks and commits). Each test writes
real articles with vectors of its own making (a few dimensions, so the expected neighbours are known) through
the backend, and reads them back as the retriever and the answerer do.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from qa.chunking import Chunk, Span
from qa.config import Settings
from qa.corpus import Article
from qa.errors import QAError
from qa.filters import Filters
from qa.listing import SORT_KEYS
from qa.store import (
    ArticleWrite,
    Catalogue,
    Commit,
    Hit,
    Manifest,
    Searcher,
    Store,
    WritableStore,
    Writer,
    open_store,
)

#: name -> (empty folder -> Settings of a new index there). Other backends add themselves here.
STORE_BACKENDS: dict[str, Callable[[Path], Settings]] = {
    "local": lambda folder: Settings(index=folder / "index"),
}
try:  # the Milvus backend (issue 16): Lite in-process, Lite as a server, Milvus's C++ core as a server
    import pymilvus  # noqa: F401
    from milvus_servers import milvus_settings

    STORE_BACKENDS |= {f"milvus-{kind}": (lambda folder, kind=kind: milvus_settings(folder, kind))
                       for kind in ("file", "lite", "core")}
except ImportError:
    pass

DIM = 16
MANIFEST = Manifest("test-model", DIM, 128, 1)


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


def article(n: int, version: int = 1, source: str | None = "Gazette", date: str | None = "2024-03-10",
            words: str = "") -> ArticleWrite:
    """Article ``n``: two sentences, one chunk each; chunk vectors ``unit(n * 100 + version * 10 + i)``, and a
    word of its own (``zebra<n>v<version>``) in each chunk for lexical search."""
    first = f"The council of Town{n} met about the harbour bridge (zebra{n}v{version}). {words}".strip()
    second = f"Residents of Town{n} asked about fares for an hour (zebra{n}v{version} again)."
    text = f"{first} {second}"
    a = Article(f"story-{n}.md", f"Story {n} headline", text, date, source, f"https://example.org/{n}", "A. Writer")
    spans = (Span(0, len(first)), Span(len(first) + 1, len(text)))
    chunks = tuple(Chunk(a.id, i, s.start, s.end, text[s.start:s.end], i, i) for i, s in enumerate(spans))
    vectors = np.stack([unit(n * 100 + version * 10 + i) for i in range(2)])
    sentences = np.stack([unit(n * 100 + version * 10 + 5 + i) for i in range(2)])
    return ArticleWrite(a, spans, chunks, vectors, sentences, file=f"story-{n}.md")


#: Six articles: two sources, three dates and one undated.
SOURCES = {0: "Gazette", 1: "Herald", 2: "Gazette", 3: "Herald", 4: "Gazette", 5: None}
DATES = {0: "2024-01-05", 1: "2024-02-10", 2: "2024-03-15", 3: "2024-03-20", 4: None, 5: "2023-12-31"}


def six() -> tuple[ArticleWrite, ...]:
    return tuple(article(n, source=SOURCES[n], date=DATES[n]) for n in range(6))


@pytest.fixture(params=list(STORE_BACKENDS))
def settings(request, tmp_path) -> Settings:
    return STORE_BACKENDS[request.param](tmp_path)


@pytest.fixture
def written(settings) -> tuple[WritableStore, Store]:
    """A writer that committed the six articles, and a reader opened after."""
    writer = open_store(settings, writable=True)
    with writer.lock():
        writer.commit(Commit(MANIFEST, add=six()))
    reader = open_store(settings)
    yield writer, reader
    reader.close()
    writer.close()


def ids_of(store: Searcher, hits: list[Hit]) -> list[str]:
    return [p.article_id for p in store.passages(hits)]


def test_the_backends_are_the_protocols(written):
    writer, reader = written
    for protocol in (Searcher, Catalogue, Store):
        assert isinstance(reader, protocol), protocol.__name__
    for protocol in (Writer, WritableStore):
        assert isinstance(writer, protocol), protocol.__name__
    assert reader.manifest == Manifest(**{**MANIFEST.__dict__, "layout": writer.layout})


def _members(protocol: type) -> set[str]:
    return {name for name in vars(protocol) if not name.startswith("_")} | set(
        getattr(protocol, "__annotations__", {}))


def test_the_seam_is_small_protocols():
    """Each side is its own protocol, none shares a method with another; Store and WritableStore only join them."""
    sides = [_members(p) for p in (Searcher, Catalogue, Writer)]
    assert all(len(side) <= 8 for side in sides)
    assert sum(len(side) for side in sides) == len(set().union(*sides))  # no method on two sides
    assert _members(Store) == {"layout", "status", "close"} and not _members(WritableStore)


def test_what_was_written_reads_back(written):
    _, store = written
    status = store.status()
    assert (status.articles, status.chunks, status.manifest.model) == (6, 12, "test-model")
    assert status.updated_at and set(status.sources) == {"Gazette", "Herald"} and status.sentences == 12
    for n, write in enumerate(six()):
        chunks = store.chunks(write.article.id)
        assert [(p.start, p.end, p.text, p.score) for p in chunks] == [(c.start, c.end, c.text, 0.0)
                                                                       for c in write.chunks]
        hits = store.dense(write.chunk_vectors[1], 1)
        passage = store.passages(hits)[0]
        assert passage.article_id == write.article.id and passage.text == write.article.text[passage.start:passage.end]
        assert passage.score == pytest.approx(1.0, abs=1e-4) and passage.title == f"Story {n} headline"
        assert (passage.source, passage.date, passage.url) == (SOURCES[n], DATES[n], f"https://example.org/{n}")
        assert np.allclose(store.chunk_vectors([passage.chunk_id])[0], write.chunk_vectors[1], atol=1e-5)
        sentences = store.sentences([passage.chunk_id])[passage.chunk_id]
        assert [(s.position, s.start, s.end) for s in sentences] == [(1, write.sentences[1].start,
                                                                      write.sentences[1].end)]
        assert sentences[0].text == write.article.text[sentences[0].start:sentences[0].end]
        assert np.allclose(sentences[0].vector, write.sentence_vectors[1], atol=2e-3)  # float16 is allowed
        vectors = store.sentence_vectors([passage.chunk_id, 10**9])
        assert np.array_equal(vectors[passage.chunk_id], np.stack([s.vector for s in sentences]))
        assert vectors[10**9].shape == (0, DIM)  # an id not held: no rows
    assert not store.chunk_vectors([10**9]).any()  # an id not held: zeros, not an error
    ids = [p.chunk_id for w in six() for p in store.chunks(w.article.id)]
    together = store.sentences([*ids, ids[0], 10**9])  # many chunks of several articles at once, as an answer asks
    assert list(together) == [*ids, 10**9] and together[10**9] == []
    for chunk_id in ids:
        alone = store.sentences([chunk_id])[chunk_id]
        assert [(s.article_id, s.position, s.text) for s in together[chunk_id]] == [
            (s.article_id, s.position, s.text) for s in alone] and len(alone) == 1
    assert store.chunks("missing.md") == []
    assert store.passages([Hit(10**9, 1.0)]) == []


def test_the_sentences_of_a_deep_search_are_read_at_once(settings):
    """A search of k=50 reads the sentences of 50 chunks or more: Milvus's C++ core refused the query (one "or" per
    chunk, 45 deep at most) until the clauses were joined as a balanced tree."""
    writer = open_store(settings, writable=True)
    with writer.lock():
        writer.commit(Commit(MANIFEST, add=tuple(article(n) for n in range(60))))
    store = open_store(settings)
    try:
        ids = [p.chunk_id for n in range(60) for p in store.chunks(f"story-{n}.md")]
        assert len(ids) == 120
        together = store.sentences(ids)
        vectors = store.sentence_vectors(ids)
        assert [len(together[i]) for i in ids] == [1] * 120
        for chunk_id in (ids[0], ids[77], ids[-1]):
            alone = store.sentences([chunk_id])[chunk_id]
            assert [(s.article_id, s.position) for s in together[chunk_id]] == [(s.article_id, s.position)
                                                                              for s in alone]
            assert np.array_equal(vectors[chunk_id], np.stack([s.vector for s in alone]))
    finally:
        store.close()
        writer.close()


def test_dense_search_ranks_by_cosine_and_filters_as_data(written):
    _, store = written
    query = unit(2 * 100 + 10)  # article 2's first chunk
    hits = store.dense(query, 12)
    assert ids_of(store, hits[:1]) == ["story-2.md"] and len(hits) == 12
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    _check_filters(store, lambda filters: store.dense(query, 12, filters))


def test_lexical_search_finds_words_and_filters_as_data(written):
    _, store = written
    hits = store.lexical("zebra3v1", 5)
    assert set(ids_of(store, hits)) == {"story-3.md"} and len(hits) == 2 and all(h.score > 0 for h in hits)
    assert store.lexical("no such wordxyz", 5) == []
    assert ids_of(store, store.lexical("Story 4 headline", 1)) == ["story-4.md"]  # the title is searched too
    _check_filters(store, lambda filters: store.lexical("council harbour bridge residents", 12, filters))


def _check_filters(store: Searcher, search: Callable[[Filters], list[Hit]]) -> None:
    def found(**kw) -> set[int]:
        return {int(a.split("-")[1].split(".")[0]) for a in ids_of(store, search(Filters.parse(**kw)))}

    assert found() == set(range(6))
    assert found(source="Herald") == {1, 3}
    assert found(since="2024-02-01", until="2024-03-15") == {1, 2, 4}  # the undated one is kept by default
    assert found(since="2024-02-01", until="2024-03-15", undated=False) == {1, 2}
    assert found(until="2024-01-31", undated=False) == {0, 5}
    assert found(source="Gazette", since="2024-03-01") == {2, 4}
    assert found(source="Nobody") == set()
    assert store.count(Filters.parse(source="Herald")) == 2 and store.count(Filters()) == 6


def test_an_update_replaces_the_old_version_in_one_commit(written):
    writer, reader = written
    with writer.lock():
        writer.commit(Commit(MANIFEST, remove=("story-1.md", "story-2.md"), add=(article(1, version=2),)))
    assert reader.count(Filters()) == 5 and reader.status().chunks == 10
    assert reader.lexical("zebra1v1", 5) == [] and reader.lexical("zebra2v1", 5) == []
    assert set(ids_of(reader, reader.lexical("zebra1v2", 5))) == {"story-1.md"}
    old = reader.dense(unit(1 * 100 + 10), 12)
    assert "story-2.md" not in ids_of(reader, old) and len(old) == 10
    assert max(h.score for h in old) < 0.999  # the old version's vector is gone
    top = reader.dense(unit(1 * 100 + 20), 1)
    assert ids_of(reader, top) == ["story-1.md"] and top[0].score == pytest.approx(1.0, abs=1e-4)
    assert reader.article("story-2.md") is None and reader.article("story-1.md").text.count("zebra1v2") == 2
    assert writer.indexed()["story-1.md"] == (article(1, 2).article.hash, article(1, 2).article.text_hash)


def test_a_failed_commit_changes_nothing(written):
    writer, reader = written
    before = (reader.status().chunks, sorted(writer.indexed()))
    bad = article(9)
    bad = ArticleWrite(bad.article, bad.sentences, bad.chunks, np.ones((1, DIM), np.float32), bad.sentence_vectors)
    with writer.lock(), pytest.raises((QAError, ValueError, RuntimeError)):  # one vector for two chunks
        writer.commit(Commit(MANIFEST, remove=("story-0.md",), add=(article(8), bad)))
    assert (reader.status().chunks, sorted(writer.indexed())) == before
    assert reader.lexical("zebra8v1", 5) == [] and set(ids_of(reader, reader.lexical("zebra0v1", 5))) == {"story-0.md"}


def test_a_fresh_commit_replaces_everything(written):
    writer, reader = written
    with writer.lock():
        writer.commit(Commit(MANIFEST, add=(article(7),), fresh=True))
    assert [r.id for r in reader.articles().rows] == ["story-7.md"] and reader.status().chunks == 2
    assert ids_of(reader, reader.dense(unit(7 * 100 + 11), 5)) == ["story-7.md", "story-7.md"]


def test_deleting_everything_leaves_an_empty_index_that_still_answers(written):
    writer, reader = written
    with writer.lock():
        writer.commit(Commit(MANIFEST, remove=tuple(f"story-{n}.md" for n in range(6))))
    assert reader.dense(unit(0), 5) == [] and reader.lexical("council", 5) == [] and reader.count(Filters()) == 0
    assert reader.articles().total == 0 and reader.sources() == []


def test_compaction_keeps_every_answer(written):
    writer, reader = written
    with writer.lock():
        for v in (2, 3):
            writer.commit(Commit(MANIFEST, remove=("story-3.md",), add=(article(3, version=v),)))
    query = unit(3 * 100 + 30)
    before = (ids_of(reader, reader.dense(query, 12)), ids_of(reader, reader.lexical("zebra3v3 council", 12)))
    with writer.lock():
        writer.compact()
    after = (ids_of(reader, reader.dense(query, 12)), ids_of(reader, reader.lexical("zebra3v3 council", 12)))
    assert after == before and after[0][0] == "story-3.md" and reader.status().chunks == 12


def test_the_article_list_pages_sorts_and_searches(written):
    _, store = written
    page = store.articles()
    assert page.total == 6 and [r.date for r in page.rows][:4] == ["2024-03-20", "2024-03-15", "2024-02-10",
                                                                    "2024-01-05"]
    assert page.rows[-1].date is None  # no date sorts last
    assert [r.id for r in store.articles(sort="title", descending=False, offset=1, limit=2).rows] == [
        "story-1.md", "story-2.md"]
    assert {r.id for r in store.articles(query="HERALD").rows} == {"story-1.md", "story-3.md"}
    assert [r.id for r in store.articles(query="story-5").rows] == ["story-5.md"]  # the file name
    assert store.articles(query="nothing like it").total == 0
    row = store.articles(query="story-2").rows[0]
    assert (row.file, row.chunks, row.source) == ("story-2.md", 2, "Gazette") and row.indexed_at > 0
    for key in SORT_KEYS:
        assert store.articles(sort=key).total == 6
    with pytest.raises(ValueError, match="sort"):
        store.articles(sort="nonsense")
    view = store.article("story-0.md")
    assert view.text.startswith("The council of Town0") and view.url == "https://example.org/0"
    assert view.author == "A. Writer" and store.article("missing.md") is None
    assert store.sources() == ["Gazette", "Herald"]


def test_the_writer_lock_is_one_at_a_time(written, settings):
    writer, _ = written
    other = open_store(settings, writable=True)
    try:
        with writer.lock(), pytest.raises(QAError, match="another `qa index`"), other.lock(wait=False):
            pass
    finally:
        other.close()
