"""Searching an index: hybrid, dense and BM25 results, passage fields, filters, bad input, live updates."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pytest

from qa import IndexUnusable, Retriever, sync
from qa.fusion import SENTENCE_DEPTH, SENTENCE_WEIGHT, Fusion
from qa.store import Hit
from qa.store.database import connect

AMMO = "What ammunition was discussed?"

# Four articles on one topic, of different sources and dates (one with neither), for the filters.
FILTER_ARTICLES = {
    "a.md": ("Alpha Wire", "2024-01-10", "River floods the old town after heavy rain."),
    "b.md": ("Beta Times", "2024-02-15", "Floods close the coastal road as storms hit."),
    "c.md": ("Alpha Wire", "2024-03-20", "Farmers count the cost of spring floods."),
    "d.md": (None, None, "Flood defences are tested in a drill."),
}


def front_matter(source: str | None, date: str | None, body: str) -> str:
    lines = ["---", f"title: {body.split()[0]} report"]
    lines += [f"source: {source}"] if source else []
    lines += [f"date: {date}"] if date else []
    return "\n".join([*lines, "---", body, ""])


@pytest.fixture(scope="module")
def seed(seed_index, embedder) -> Retriever:
    return Retriever(seed_index, embedder)


@pytest.fixture(scope="module")
def filtered(tmp_path_factory, embedder) -> Retriever:
    corpus = tmp_path_factory.mktemp("filter-corpus")
    for name, (source, date, body) in FILTER_ARTICLES.items():
        (corpus / name).write_text(front_matter(source, date, body))
    index = tmp_path_factory.mktemp("filter-index")
    assert sorted(sync(corpus, index, embedder=embedder).added) == sorted(FILTER_ARTICLES)
    return Retriever(index, embedder)


def articles_in(seed_index: Path) -> dict[str, tuple]:
    con = connect(seed_index, readonly=True)
    try:
        return {r[0]: r[1:] for r in con.execute("SELECT id, title, date, source, url, text FROM articles")}
    finally:
        con.close()


def test_hybrid_search_finds_the_rounds_in_both_articles(seed, seed_index):
    passages = seed.search(AMMO, k=5, mode="hybrid")
    assert len(passages) == 5
    for article_id in articles_in(seed_index):
        texts = [p.text for p in passages if p.article_id == article_id]
        assert any(re.search(r"155 ?mm", t) for t in texts), article_id
        assert any(re.search(r"105 ?mm", t) for t in texts), article_id


@pytest.mark.parametrize("mode,first", [("dense", 2), ("bm25", 3)])
def test_dense_and_bm25_modes(seed, mode, first):
    # BM25 matches words as written: the question's "discussed" is in one chunk about something else, not in
    # the passages' "discussions", so alone it ranks the 155 mm passages a place lower than dense search does.
    passages = seed.search(AMMO, k=5, mode=mode)
    assert len(passages) == 5
    assert any(re.search(r"155 ?mm", p.text) for p in passages[:first])
    assert any(re.search(r"105 ?mm", p.text) for p in passages[:3])


def test_modes_rank_differently_but_agree_on_the_best(seed):
    hybrid, dense, bm25 = (seed.search(AMMO, k=3, mode=m) for m in ("hybrid", "dense", "bm25"))
    assert [p.score for p in dense] != [p.score for p in bm25]
    # Hybrid scores sentences too (qa.fusion.SENTENCE_WEIGHT): its best is one of the chunks dense search ranks
    # near the top (their cosines are within 0.02 here), or lexical search's best.
    assert hybrid[0].chunk_id in {*(p.chunk_id for p in dense), bm25[0].chunk_id}



def test_a_hit_whose_best_sentence_matches_moves_up_by_the_sentence_share():
    hits = [Hit(1, 0.80), Hit(2, 0.70), Hit(3, 0.60)]
    chunk, best = np.array([0.80, 0.60, 0.50]), np.array([0.80, 0.90, 0.50])
    moved = Fusion(sentence=0.4).by_sentences(hits, chunk, best)
    assert [h.chunk_id for h in moved] == [2, 1, 3]  # 0.70 + 0.4 x (0.90 - 0.60) = 0.82 > 0.80
    assert [h.score for h in moved] == pytest.approx([0.82, 0.80, 0.60])
    assert Fusion(sentence=0.0).by_sentences(hits, chunk, best) == hits


def test_hybrid_scores_move_part_of_the_chunk_cosine_to_the_best_sentence(seed):
    """Each hybrid score is the fused one plus SENTENCE_WEIGHT x (best sentence's cosine - chunk's cosine), from the
    index's stored vectors; without the sentence share the search ranks by the fused score alone."""
    question = "How many North Korean soldiers are in Russia?"
    plain = Retriever(seed.path, seed.embedder)
    plain.fusion = Fusion(sentence=0.0)
    fused = {p.chunk_id: p.score for p in plain.search(question, k=SENTENCE_DEPTH)}
    found = seed.search(question, k=10)
    vector = seed.embed_query(question)
    chunk = seed.chunk_vectors(found) @ vector
    sentences = seed.sentences(found)
    for p, c in zip(found, chunk, strict=True):
        best = max(float(s.vector @ vector) for s in sentences[p.chunk_id])
        assert p.score == pytest.approx(fused[p.chunk_id] + SENTENCE_WEIGHT * (best - c), abs=1e-5)
    assert [p.score for p in found] == sorted((p.score for p in found), reverse=True)
    assert [p.chunk_id for p in found] != [p.chunk_id for p in plain.search(question, k=10)]
    plain.close()

def test_passage_fields_match_the_stored_article(seed, seed_index):
    articles = articles_in(seed_index)
    con = connect(seed_index, readonly=True)
    for mode in ("hybrid", "dense", "bm25"):
        passages = seed.search("North Korean troops in Russia", k=8, mode=mode)
        assert passages, mode
        assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
        assert len({p.chunk_id for p in passages}) == len(passages)
        for p in passages:
            title, date, source, url, text = articles[p.article_id]
            assert (p.title, p.date, p.source, p.url) == (title, date, source, url)
            assert p.title and 0 <= p.start < p.end <= len(text)
            assert text[p.start:p.end] == p.text
            row = con.execute('SELECT article_id, start, "end" FROM chunks WHERE id = ?', (p.chunk_id,)).fetchone()
            assert row == (p.article_id, p.start, p.end)
    con.close()
    dated = [p for p in seed.search(AMMO, k=10) if p.date]
    assert dated and all(dt.date.fromisoformat(p.date) for p in dated)


def test_sentences_of_a_passage(seed):
    passages = seed.search(AMMO, k=2)
    by_chunk = seed.sentences(passages)
    for p in passages:
        sentences = by_chunk[p.chunk_id]
        assert sentences and sentences[0].start == p.start and sentences[-1].end == p.end
        assert all(s.text in p.text for s in sentences)
        norms = np.linalg.norm(np.stack([s.vector for s in sentences]), axis=1)
        assert np.allclose(norms, 1.0, atol=1e-2)


def found(retriever: Retriever, **filters) -> set[str]:
    """Articles found for a query every article matches, in each mode; the modes must agree."""
    results = [{p.article_id for p in retriever.search("floods or flood", k=10, mode=m, **filters)}
               for m in ("hybrid", "dense", "bm25")]
    assert results[0] == results[1] == results[2], (filters, results)
    return results[0]


def test_no_filter_finds_everything(filtered):
    assert found(filtered) == set(FILTER_ARTICLES)


@pytest.mark.parametrize("filters,expected", [
    ({"source": "Alpha Wire"}, {"a.md", "c.md"}),
    ({"source": "Beta Times"}, {"b.md"}),
    ({"source": "Gamma Post"}, set()),
    ({"since": "2024-02-01", "undated": False}, {"b.md", "c.md"}),
    ({"since": "2024-02-01"}, {"b.md", "c.md", "d.md"}),  # undated articles are kept unless left out
    ({"until": "2024-02-15", "undated": False}, {"a.md", "b.md"}),  # inclusive
    ({"since": "2024-02-15", "until": "2024-02-15", "undated": False}, {"b.md"}),
    ({"since": dt.date(2024, 3, 20), "undated": False}, {"c.md"}),
    ({"until": dt.datetime(2024, 1, 10, 23, 0), "undated": False}, {"a.md"}),
    ({"source": "Alpha Wire", "since": "2024-02-01"}, {"c.md"}),
    ({"since": "2025-01-01", "undated": False}, set()),
    ({"since": "2025-01-01"}, {"d.md"}),
    ({"source": "", "since": None, "until": ""}, set(FILTER_ARTICLES)),  # empty filters are no filters
])
def test_filters(filtered, filters, expected):
    assert found(filtered, **filters) == expected


def test_bm25_matches_words_as_written(filtered):
    """No stemming: "flood" and "floods" are different words to BM25; the dense side finds both forms."""
    def articles(query: str, mode: str) -> set[str]:
        return {p.article_id for p in filtered.search(query, k=10, mode=mode)}

    assert articles("flood", "bm25") == {"d.md"}
    assert articles("floods", "bm25") == {"a.md", "b.md", "c.md"}
    assert articles("flood", "hybrid") == articles("floods", "hybrid") == set(FILTER_ARTICLES)
    assert filtered.search("flood", k=1)[0].article_id == "d.md"  # the exact word ranks first


def test_invalid_mode_or_date_is_a_clear_error(seed):
    with pytest.raises(ValueError, match=r"mode 'fuzzy' is not one of hybrid, dense, bm25"):
        seed.search(AMMO, mode="fuzzy")
    with pytest.raises(ValueError, match=r"From date 'yesterday' is not a date; use YYYY-MM-DD"):
        seed.search(AMMO, since="yesterday")
    with pytest.raises(ValueError, match=r"To date '2024-13-01' is not a date"):
        seed.search(AMMO, until="2024-13-01")
    with pytest.raises(ValueError, match=r"From date 2024-03-01 is after To date 2024-02-01; swap them"):
        seed.search(AMMO, since="2024-03-01", until="2024-02-01")


@pytest.mark.parametrize("query", ["", "   \n", "?! -- ..."])
def test_empty_query_gives_no_passages(seed, query):
    assert seed.search(query, mode="bm25") == []
    if query.strip():
        assert seed.search(query)  # no words: dense search still answers
    else:
        assert seed.search(query) == [] and seed.search(query, mode="dense") == []


def test_k(seed):
    assert seed.search(AMMO, k=0) == []
    assert len(seed.search(AMMO, k=1)) == 1
    chunks = seed.info().chunks
    assert len(seed.search(AMMO, k=1000, mode="dense")) == chunks


def test_a_retriever_opened_before_a_sync_sees_the_new_articles(tmp_path, embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "one.md").write_text(front_matter("Alpha Wire", "2024-01-10", "Glaciers retreat in the Alps."))
    sync(corpus, tmp_path / "index", embedder=embedder)
    retriever = Retriever(tmp_path / "index", embedder)
    assert retriever.search("volcano eruption lava", mode="bm25") == []
    assert retriever.info().articles == 1
    (corpus / "two.md").write_text(front_matter("Beta Times", "2024-05-05", "A volcano eruption sent lava to sea."))
    sync(corpus, tmp_path / "index", embedder=embedder)
    for mode in ("hybrid", "dense", "bm25"):
        assert retriever.search("volcano eruption lava", k=1, mode=mode)[0].article_id == "two.md"
    assert [p.article_id for p in retriever.search("eruption", source="Beta Times", mode="bm25")] == ["two.md"]
    info = retriever.info()
    assert (info.articles, info.sources, info.model) == (2, ("Alpha Wire", "Beta Times"), retriever.manifest.model)
    assert re.fullmatch(r"20\d\d-\d\d-\d\d \d\d:\d\d", info.updated())


def test_opening_a_missing_index(tmp_path):
    with pytest.raises(IndexUnusable, match=r"no index in .*; build one with `qa index"):
        Retriever(tmp_path / "nothing-here")


def test_a_retriever_follows_a_rebuild(tmp_path, embedder):
    """`qa index --rebuild` replaces the database file; a running app must not keep searching the old one."""
    from qa import Settings

    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    (corpus / "one.md").write_text(front_matter(None, None, "Glaciers retreat in the Alps."))
    sync(corpus, index, embedder=embedder)
    retriever = Retriever(index, embedder)
    assert retriever.search("glaciers", mode="bm25")[0].article_id == "one.md"
    (corpus / "two.md").write_text(front_matter(None, None, "A volcano eruption sent lava to sea."))
    sync(corpus, index, rebuild=True, settings=Settings(chunk_tokens=64), embedder=embedder)
    assert retriever.search("volcano lava", k=1, mode="bm25")[0].article_id == "two.md"
    assert retriever.info().articles == 2 and retriever.manifest.chunk_tokens == 64
    (corpus / "one.md").unlink()
    sync(corpus, index, settings=Settings(chunk_tokens=64), embedder=embedder)
    assert [p.article_id for p in retriever.search("glaciers volcano", mode="dense")] == ["two.md"]
