"""Approximate (IVF) search above ``Settings.exact_limit`` chunks: the switch, and everything still working after it.

The limit is set low (40 chunks) so that a small real index, embedded with the real model, crosses it.
"""

from __future__ import annotations

import json
import os

import faiss
import numpy as np
import pytest
from conftest import EVAL, write

from qa import Retriever, sync
from qa.config import Settings
from qa.environment import settings_from_env
from qa.store import segments as seg
from qa.store.faiss_index import all_vectors, describe, fit_vector_index, ivf_lists, vector_ids
from qa.store.local import LocalStore

PASSAGES = [json.loads(line) for line in (EVAL / "squad2_sample_passages.jsonl").read_text().splitlines()][:40]
LIMIT = 40


def _article(passage: dict, source: str) -> str:
    return f"---\ntitle: Passage {passage['id']}\nsource: {source}\n---\n{passage['text']}\n"


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    for i, passage in enumerate(PASSAGES):
        write(folder, f"{passage['id']}.md", _article(passage, "Solo" if i == 7 else "Wire"))
    return folder


@pytest.fixture
def index(tmp_path, corpus, embedder):
    index = tmp_path / "index"
    sync(corpus, index, settings=Settings(exact_limit=LIMIT), embedder=embedder)
    return index


def _is_ivf16(index: faiss.Index) -> bool:
    """The store's IVF: vectors kept as 16-bit floats (qa.store.faiss_index.new_ivf)."""
    return (isinstance(index, faiss.IndexIVFScalarQuantizer) and index.sq.qtype == faiss.ScalarQuantizer.QT_fp16
            and index.code_size == 2 * index.d)


def _stored(index) -> faiss.Index:
    """The largest vector segment in use (a sync adds a small one beside it: qa/store/segments.py)."""
    store = LocalStore(index)
    try:
        return max(store.vector_indexes(), key=lambda i: i.ntotal)
    finally:
        store.close()


def _chunk_text(retriever: Retriever, title: str) -> str:
    """The text of a chunk as it was embedded (title, newline, chunk), so its own vector is the query's."""
    passage = next(p for p in retriever.search(title, k=50, mode="bm25") if p.title == title)
    return f"{passage.title}\n{passage.text}"


def test_an_index_past_the_limit_is_searched_approximately(index, embedder):
    stored = _stored(index)
    assert _is_ivf16(stored)
    assert stored.ntotal > LIMIT and stored.nlist == ivf_lists(stored.ntotal)
    retriever = Retriever(index, embedder)
    info = retriever.info()
    assert info.chunks == stored.ntotal
    assert info.search == f"approximate (IVF: {stored.nlist} lists, {stored.nprobe} probed per query)"


def test_every_chunk_is_found_by_its_own_text(index, embedder):
    """A query equal to a chunk lands in that chunk's list, which is always probed: cosine 1 at rank 1."""
    retriever = Retriever(index, embedder)
    for passage in PASSAGES[:20]:
        title = f"Passage {passage['id']}"
        text = _chunk_text(retriever, title)
        best = retriever.search(text, k=3, mode="dense")[0]
        assert best.title == title and best.score == pytest.approx(1.0, abs=1e-3)
        assert retriever.similarities(text, [best])[0] == pytest.approx(1.0, abs=1e-3)


def test_hybrid_answers_questions_as_exact_search_does(index, tmp_path, corpus, embedder):
    questions = [json.loads(line) for line in (EVAL / "squad2_sample_questions.jsonl").read_text().splitlines()]
    ids = {p["id"] for p in PASSAGES}
    questions = [q for q in questions if q["passage_id"] in ids and not q["is_impossible"]]
    exact_index = tmp_path / "exact"
    sync(corpus, exact_index, embedder=embedder)
    approximate, exact = Retriever(index, embedder), Retriever(exact_index, embedder)
    assert exact.info().search == "exact"

    def hits(retriever):
        return sum(any(p.title == f"Passage {q['passage_id']}" for p in retriever.search(q["question"], k=5))
                   for q in questions)

    # BM25 finds what the probed lists miss; the approximate index keeps nearly every hit of the exact one.
    assert hits(approximate) >= hits(exact) - max(1, len(questions) // 20)


def test_updates_deletes_and_filters_work_on_the_approximate_index(index, corpus, embedder):
    settings = Settings(exact_limit=LIMIT)
    gone = PASSAGES[3]
    (corpus / f"{gone['id']}.md").unlink()
    write(corpus, "new.md", "---\ntitle: Harbour news\nsource: Solo\n---\nThe ferry to the island now leaves at "
                            "dawn because the tides changed this winter.\n")
    report = sync(corpus, index, settings=settings, embedder=embedder)
    assert report.removed == [f"{gone['id']}.md"] and report.added == ["new.md"]
    assert _is_ivf16(_stored(index))
    retriever = Retriever(index, embedder)  # opening checks the vector ids against the database
    assert all(p.title != f"Passage {gone['id']}" for p in retriever.search(gone["text"], k=10, mode="dense"))
    assert retriever.search("When does the ferry to the island leave?", k=1)[0].title == "Harbour news"
    solo = retriever.search("ferry tides", k=10, source="Solo", mode="dense")  # 2 chunks: searched exactly
    assert {p.title for p in solo} == {"Harbour news", f"Passage {PASSAGES[7]['id']}"}
    wire = retriever.search(PASSAGES[10]["text"], k=5, source="Wire", mode="dense")  # most chunks: IVF filtered
    assert wire[0].title == f"Passage {PASSAGES[10]['id']}" and all(p.source == "Wire" for p in wire)


def test_an_index_that_shrinks_to_half_the_limit_goes_back_to_exact_search(index, corpus, embedder):
    for passage in PASSAGES[5:]:  # about 10 chunks left
        (corpus / f"{passage['id']}.md").unlink()
    sync(corpus, index, settings=Settings(exact_limit=LIMIT), embedder=embedder)
    stored = _stored(index)
    assert isinstance(stored, faiss.IndexIDMap2) and stored.ntotal <= LIMIT // 2
    assert Retriever(index, embedder).info().search == "exact"


def _unit(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, 32)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_switching_keeps_every_vector_and_id():
    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(32))
    vectors, ids = _unit(300), np.arange(1000, 1300, dtype=np.int64)
    flat.add_with_ids(vectors, ids)
    assert fit_vector_index(flat, exact_limit=300) is flat  # at the limit: still exact
    ivf = fit_vector_index(flat, exact_limit=299)
    assert _is_ivf16(ivf) and ivf.nlist == ivf_lists(300) == 64 and ivf.nprobe == 8
    assert sorted(vector_ids(ivf)) == list(ids)
    kept = ivf.reconstruct_batch(ids)  # each number to 16 bits: within 2**-11 of itself
    assert np.allclose(kept, vectors, atol=2 ** -11) and not np.array_equal(kept, vectors)
    assert np.array_equal(all_vectors(ivf)[np.argsort(vector_ids(ivf))], kept)
    back = fit_vector_index(ivf, exact_limit=600)
    assert isinstance(back, faiss.IndexIDMap2) and np.array_equal(back.reconstruct_batch(ids), kept)


def _ivf_flat(vectors: np.ndarray, ids: np.ndarray, lists: int, probes: int) -> faiss.Index:
    """A segment as indexes before 16-bit IVF wrote it: IndexIVFFlat, 32-bit floats, an id table."""
    old = faiss.IndexIVFFlat(faiss.IndexFlatIP(vectors.shape[1]), vectors.shape[1], lists, faiss.METRIC_INNER_PRODUCT)
    old.train(vectors)
    old.set_direct_map_type(faiss.DirectMap.Hashtable)
    old.nprobe = probes
    old.add_with_ids(vectors, ids)
    return old


def test_an_ivf_written_in_32_bit_floats_is_still_read_searched_and_merged():
    """Indexes written before IVF kept 16-bit floats hold an IndexIVFFlat: it is searched as it is, its vectors come
    back exactly, and a merge that rebuilds it writes the 16-bit kind."""
    vectors, ids = _unit(300), np.arange(300, dtype=np.int64)
    old = _ivf_flat(vectors, ids, lists=16, probes=16)
    assert np.array_equal(all_vectors(old)[np.argsort(vector_ids(old))], vectors)
    assert describe(old) == ("approximate (IVF: 16 lists, 16 probed per query; 32-bit vectors until a merge into them "
                             "rewrites them in 16 bits: `qa index --compact`)")
    loaded = seg.Loaded(seg.SegmentInfo("old", 0, 299, 300), old)
    assert seg.search([loaded], vectors[7], 3, np.array([], np.int64), None)[0][0] == 7
    assert seg.search([loaded], vectors[7], 3, np.array([7]), None)[0][0] != 7  # a dead vector is skipped
    small = faiss.IndexIDMap2(faiss.IndexFlatIP(32))
    small.add_with_ids(_unit(900, seed=3), np.arange(300, 1200, dtype=np.int64))
    merged = seg.merge([old, small], np.array([5]), exact_limit=100)  # 1,199 vectors want 128 lists: trained again
    assert _is_ivf16(merged) and sorted(vector_ids(merged)) == [i for i in range(1200) if i != 5]
    assert describe(merged) == "approximate (IVF: 128 lists, 16 probed per query)"
    assert np.allclose(merged.reconstruct(7), vectors[7], atol=2 ** -11)


def test_a_merge_rewrites_a_32_bit_ivf_in_16_bits_in_the_same_lists():
    """A merge that does not train again (the segment has not grown fourfold) still writes the 16-bit kind: the
    centroids and each vector's list are kept, so the same probes find the same vectors."""
    vectors, ids = _unit(300), np.arange(300, dtype=np.int64)
    old = _ivf_flat(vectors, ids, lists=64, probes=8)
    centroids = old.quantizer.reconstruct_n(0, 64)
    lists = {i: sorted(faiss.rev_swig_ptr(old.invlists.get_ids(i), old.invlists.list_size(i)))
             for i in range(64)}
    before = old.search(vectors[:40], 5)[1]
    small = faiss.IndexIDMap2(faiss.IndexFlatIP(32))
    small.add_with_ids(_unit(20, seed=4), np.arange(300, 320, dtype=np.int64))
    merged = seg.merge([old, small], np.array([5]), exact_limit=100)
    assert _is_ivf16(merged) and merged.nlist == 64 and merged.nprobe == 8 and merged.ntotal == 319
    assert np.array_equal(merged.quantizer.reconstruct_n(0, 64), centroids)
    for i, members in lists.items():  # every old vector in its old list; the 20 new ones assigned as usual
        kept = set(faiss.rev_swig_ptr(merged.invlists.get_ids(i), merged.invlists.list_size(i)))
        assert set(members) - {5} <= kept
    assert np.allclose(merged.reconstruct_batch(ids[6:]), vectors[6:], atol=2 ** -11)
    after = merged.search(vectors[:40], 5)[1]
    assert (after[:, 0] == np.arange(40)).sum() == 39 and after[5, 0] != 5  # each finds itself; 5 is gone
    assert (before[6:, 0] == after[6:, 0]).all()
    merged.remove_ids(np.array([7], np.int64))  # its id table works: what a later sync's delete needs
    assert merged.ntotal == 318 and 7 not in set(vector_ids(merged))


def test_an_ivf_index_is_trained_again_when_it_has_grown_fourfold():
    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(32))
    flat.add_with_ids(_unit(100), np.arange(100, dtype=np.int64))
    ivf = fit_vector_index(flat, exact_limit=50)
    assert ivf.nlist == 32
    ivf.add_with_ids(_unit(150, seed=1), np.arange(100, 250, dtype=np.int64))
    assert fit_vector_index(ivf, exact_limit=50) is ivf  # 250 vectors still want fewer than 64 lists
    ivf.add_with_ids(_unit(200, seed=2), np.arange(250, 450, dtype=np.int64))
    grown = fit_vector_index(ivf, exact_limit=50)
    assert grown.nlist == ivf_lists(450) >= 2 * 32 and sorted(vector_ids(grown)) == list(range(450))


def test_the_limit_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("QA_EXACT_LIMIT", "1234")
    assert settings_from_env(os.environ).exact_limit == 1234


def test_each_search_sets_faiss_threads_in_its_own_thread():
    """OpenMP keeps its thread count per thread: a setting made where the store was opened never reached the web
    app's worker threads. Each search sets it where it runs: an IVF search on every core, its probed lists split
    between them; an exact search on one. The answers are the same either way."""
    import threading

    from qa.store import segments as seg

    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(32))
    vectors, ids = _unit(400), np.arange(400, dtype=np.int64)
    flat.add_with_ids(vectors, ids)
    ivf = fit_vector_index(flat, exact_limit=100)
    exact = fit_vector_index(ivf, exact_limit=1000)
    info = seg.SegmentInfo("test", 0, 399, 400)
    seen: dict[str, tuple] = {}

    def search(name: str, index: faiss.Index) -> None:
        found = seg.search([seg.Loaded(info, index)], vectors[7], 5, np.zeros(0, np.int64), None)
        seen[name] = (found[0][0], faiss.omp_get_max_threads(), getattr(index, "parallel_mode", None))

    for name, index in (("ivf", ivf), ("exact", exact)):
        thread = threading.Thread(target=search, args=(name, index))
        thread.start()
        thread.join()
    assert seen["ivf"] == (7, seg.IVF_THREADS, 1)
    assert seen["exact"][:2] == (7, 1)
