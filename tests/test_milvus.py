"""What the Milvus backend promises beyond the contract suite, on the three Milvus runtimes that run here:
Milvus Lite in this process, Milvus Lite as a server, and Milvus's C++ core (milvus-lite 2.5.1) as a server.

Vectors are synthetic (unit rows of a fixed seed): these tests are about storage, not the model.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus")

from milvus_servers import core_server, lite_server  # noqa: E402, F401 - session fixtures

from qa.chunking import Chunk, Span  # noqa: E402
from qa.corpus import Article  # noqa: E402
from qa.errors import IndexUnusable  # noqa: E402
from qa.filters import Filters  # noqa: E402
from qa.store.milvus import MilvusStore  # noqa: E402
from qa.store.protocol import NO_FILTERS, ArticleWrite, Commit, Manifest  # noqa: E402

DIM = 8
MANIFEST = Manifest("synthetic", DIM, 128, 1, MilvusStore.layout)
_prefixes = itertools.count()


def unit(n: int, seed: int, dim: int = DIM) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def article(article_id: str, sentences: list[str], source: str | None = None, date: str | None = None,
            seed: int = 0, dim: int = DIM) -> ArticleWrite:
    """One article of ``sentences``, one chunk per sentence."""
    text = " ".join(sentences)
    spans, chunks, at = [], [], 0
    for i, s in enumerate(sentences):
        spans.append(Span(at, at + len(s)))
        chunks.append(Chunk(article_id, i, at, at + len(s), s, i, i))
        at += len(s) + 1
    return ArticleWrite(Article(article_id, f"Title of {article_id}", text, date, source), tuple(spans),
                        tuple(chunks), unit(len(chunks), seed, dim), unit(len(spans), seed + 1, dim), file=article_id)


CORE_URIS: set[str] = set()


RUNTIMES = ["lite-file", "lite-server", "core-server"]
#: The tests below the concurrent one run on Lite in-process and the C++ core: the Lite server is the same code
#: as Lite in-process behind gRPC, and the contract suite runs on it too (test time: issue 16's budget).
TWO = pytest.mark.parametrize("uri", ["lite-file", "core-server"], indirect=True)


@pytest.fixture(params=RUNTIMES)
def uri(request, tmp_path):
    if request.param == "lite-file":
        return str(tmp_path / "milvus.db")
    if request.param == "core-server":
        CORE_URIS.add(request.getfixturevalue("core_server").uri)
        return request.getfixturevalue("core_server").uri
    return request.getfixturevalue("lite_server").uri


@pytest.fixture
def store(uri):
    s = MilvusStore(uri, prefix=f"t{next(_prefixes)}", timeout=20)
    yield s
    for name in s.db.collections():
        s.db.drop(name)
    s.close()


def commit(store: MilvusStore, add=(), remove=(), manifest=MANIFEST, fresh=False) -> None:
    with store.lock():
        store.commit(Commit(manifest, tuple(remove), tuple(add), fresh))


def texts(store: MilvusStore, query: str, filters: Filters = NO_FILTERS) -> list[tuple[str, str]]:
    return sorted((p.article_id, p.text) for p in store.passages(store.lexical(query, 50, filters)))


def test_update_is_seen_whole_by_a_concurrent_reader(store, uri):
    """A reader searching while an article is updated again and again finds all of one version, never a mix of
    two, never nothing (the versioned rows and the one switch)."""
    versions = [[f"zebra crossing {v} part {i}." for i in range(3)] for v in range(2)]
    # Other articles, as in any archive: a word in every chunk gets an IDF of about 0, and on Milvus's C++ core
    # a BM25 score <= 0 (no hit) for a moment while rows are replaced (its document counts include them).
    fillers = [article(f"other{i}.md", [f"Harbor news {i}."], seed=100 + i) for i in range(10)]
    commit(store, [article("story.md", versions[0]), *fillers])
    reader = MilvusStore(uri, prefix=store.db.prefix, timeout=20)  # its own connection, like another process
    seen, stop = [], threading.Event()

    def read():
        while not stop.is_set():
            seen.append(tuple(t for _, t in texts(reader, "zebra")))

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for n in range(1, 7):
            commit(store, [article("story.md", versions[n % 2], seed=n)], remove=["story.md"])
    finally:
        stop.set()
        thread.join()
    assert len(seen) >= 3
    wholes = {tuple(sorted(v)) for v in versions}
    assert all(s in wholes or not s for s in seen), [s for s in seen if s and s not in wholes][:3]  # never both
    empty = sum(not s for s in seen)
    if uri in CORE_URIS:
        # Milvus's C++ core as built in milvus-lite 2.5.1 misses just-rewritten rows for a moment around a
        # commit, in queries as in searches (1-2 reads in ~100; docs/scaling.md): rare, never a mix.
        assert empty <= max(2, len(seen) // 10), (empty, len(seen))
    else:
        assert empty == 0, (empty, len(seen))  # never neither
    assert store.status().articles == 11 and store.status().chunks == 13


_WRITER = """
import sys
sys.path.insert(0, sys.argv[3])
from test_milvus import article, commit, MilvusStore
store = MilvusStore(sys.argv[1], prefix=sys.argv[2], timeout=20)
commit(store, [article(f"n{i}.md", [f"Ferry news number {i}."], seed=i) for i in range(2000)], remove=["a.md"])
"""


@pytest.mark.parametrize("uri", ["lite-server", "core-server"], indirect=True)
def test_a_writer_killed_mid_commit_leaves_the_previous_commit_and_the_next_repairs(store, uri):
    """SIGKILL a `qa index` writing a large commit once its first rows are in: readers keep the old commit, and
    the next commit removes what the dead one left."""
    commit(store, [article("a.md", ["The harbor ferry runs at dawn."])])
    state = store.db.read_state()
    name = store.db.name(state, "articles")
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, uri, store.db.prefix, str(Path(__file__).parent)])
    try:
        deadline = time.monotonic() + 120
        while store.db.count(name, f"gen > {state['generation']}") == 0 and writer.poll() is None:
            assert time.monotonic() < deadline, "the writer wrote nothing in 120 s"
            time.sleep(0.05)
    finally:
        writer.kill()
        writer.wait()
    assert writer.returncode == -signal.SIGKILL, "the writer finished before it could be killed; make it bigger"
    assert store.db.count(name, f"gen > {state['generation']}") > 0  # its rows are there...
    assert store.status().articles == 1  # ...but no reader sees them
    assert texts(store, "ferry") == [("a.md", "The harbor ferry runs at dawn.")]
    assert set(store.indexed()) == {"a.md"}
    # The dead writer's lease would run out after LEASE_SECONDS; the test ends it now.
    store.db.drop_lease(store.db._meta_get("lease")["token"])
    commit(store, [article("c.md", ["Another ferry story."])])
    assert [a for a, _ in texts(store, "ferry")] == ["a.md", "c.md"]
    assert store.status().chunks == 2
    assert store.db.count(store.db.name(store.db.read_state(), "articles"), "id >= 0") == 2  # nothing left over


@TWO
def test_odd_ids_and_sources_are_stored_and_filtered_exactly(store):
    odd = ['quote"d\\back.md', "new\nline\t.md", "ünïcödé 文章.md", "it's.md"]
    sources = ['The "Times"', "Back\\slash", None, "Times"]
    commit(store, [article(a, [f"Shared word {i}."], source=s, date=f"2024-0{i + 1}-15", seed=i)
                   for i, (a, s) in enumerate(zip(odd, sources, strict=True))])
    assert set(store.indexed()) == set(odd)
    assert store.article(odd[1]).text == "Shared word 1."
    for a, s in zip(odd, sources, strict=True):
        if s:
            assert [x for x, _ in texts(store, "shared", Filters(source=s))] == [a]
    assert store.sources() == sorted(s for s in sources if s)
    assert store.count(Filters(since="2024-02-01", until="2024-03-31")) == 2
    commit(store, [article("undated.md", ["Shared word again."])])
    assert store.count(Filters(since="2024-02-01")) == 4
    assert store.count(Filters(since="2024-02-01", undated=False)) == 3
    commit(store, remove=[odd[0], odd[1]])
    assert set(store.indexed()) == set(odd[2:]) | {"undated.md"}


@TWO
def test_a_snapshot_keeps_its_commit_while_another_writer_commits(store, uri):
    commit(store, [article("a.md", ["Lighthouse keepers meet."])])
    other = MilvusStore(uri, prefix=store.db.prefix, timeout=20)
    with store.snapshot():
        commit(other, remove=["a.md"])
        assert texts(store, "lighthouse") == [("a.md", "Lighthouse keepers meet.")]
        assert store.sentences([h.chunk_id for h in store.lexical("lighthouse", 5)])
    assert texts(store, "lighthouse") == []
    assert texts(other, "lighthouse") == []


@TWO
def test_a_rebuild_switches_to_new_collections_in_one_step(store):
    commit(store, [article("a.md", ["Old model text."])])
    wider = Manifest("other", DIM * 2, 128, 1, MilvusStore.layout)
    commit(store, [article("b.md", ["New model text."], dim=DIM * 2)], manifest=wider, fresh=True)
    assert store.manifest == wider
    assert texts(store, "text") == [("b.md", "New model text.")]
    assert store.dense(unit(1, 9, DIM * 2)[0], 5)[0].score <= 1.0


@TWO
def test_a_second_writer_is_refused_while_the_first_holds_the_lease(store, uri):
    other = MilvusStore(uri, prefix=store.db.prefix, timeout=20)
    with store.lock():
        with pytest.raises(IndexUnusable, match="another `qa index`"):
            with other.lock(wait=False):
                pass
    with other.lock(wait=False):
        pass
