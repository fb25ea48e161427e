"""A commit on Milvus: versioned rows, then one switch (the manifest row); see :mod:`qa.store.milvus_schema`.

Order of one commit N (the last committed being G = N - 1):

1. recover: remove what a writer that died left behind (rows of gen > G, marks until > G, spaces no manifest
   names), so that commit N starts from commit G exactly;
2. retire: rewrite the rows of removed articles with ``until = N`` (Milvus 2.5 has no partial update: copies
   with new ids, then the originals deleted; see :func:`_rewrite`);
3. insert the new rows with ``gen = N``;
4. switch: upsert the manifest row with generation N;
5. collect: delete rows with ``until <= G`` (no reader at G or N sees them), and spaces older than the previous.

A crash before 4 leaves commit G for every reader; after 4, commit N. Step 5 is redone by the next commit.
"""

from __future__ import annotations

import time
from collections import Counter

from qa.store import milvus_schema as ms
from qa.store.milvus_io import Connection
from qa.store.protocol import ArticleWrite, Commit, CompactReport

KINDS = tuple(ms.DATA)


def _space_of(db: Connection, collection: str) -> str | None:
    rest = collection[len(db.prefix) + 1:]
    space, _, kind = rest.partition("_")
    return space if kind in KINDS else None


def recover(db: Connection, state: dict | None) -> None:
    """Bring the collections back to exactly commit G (see the module docstring, step 1)."""
    keep = {state["space"], state.get("previous_space")} if state else set()
    for collection in db.collections():
        space = _space_of(db, collection)
        if space is not None and space not in keep:
            db.drop(collection)
    if not state:
        return
    g = int(state["generation"])
    for kind, fields in ms.DATA.items():
        name = db.name(state, kind)
        db.delete(name, f"gen > {g}")
        marked = list(db.scan(name, f"until > {g} and until < {ms.ALIVE}", ms.stored(fields)))
        if not marked:
            continue
        # A copy is unmarked unless its original is still there (the writer died between the two steps).
        keys = sorted({r["akey"] for r in marked})
        alive = {ms.identity(kind, r) for r in db.scan(name, f"{ms.keys_in('akey', keys)} and until == {ms.ALIVE}",
                                                          ["akey", "gen", ms.SLOT[kind]])}
        _rewrite(db, name, [r for r in marked if ms.identity(kind, r) not in alive], ms.ALIVE,
                 (g + 1) << ms.ID_SHIFT | ms.RECOVERED_IDS)
        db.delete(name, ms.keys_in("id", [r["id"] for r in marked]))


def _rewrite(db: Connection, name: str, rows: list[dict], until: int, first_id: int) -> None:
    """Rows again with ``until`` changed: copies with new ids inserted first, then the originals deleted.

    Not an upsert: while Milvus's C++ core (2.5) applies an upsert, BM25 search misses the row for a moment
    (a reader found no version of an article in 2 of ~200 searches) although queries and dense search see it.
    Copy and original are both visible for a moment instead; readers keep one per :func:`ms.identity`.
    """
    db.write(name, [{**r, "id": first_id + i, "until": until} for i, r in enumerate(rows)])
    db.delete(name, ms.keys_in("id", [r["id"] for r in rows]))


def apply_commit(db: Connection, change: Commit, index_type: str, layout: str) -> None:
    db.ensure_meta()
    state = db.read_state()
    recover(db, state)
    g = int(state["generation"]) if state else 0
    n = g + 1
    fresh = change.fresh or state is None
    old: dict = state or {}  # read only when not fresh, that is when there is a state
    m = change.manifest
    new = {"space": f"s{n}" if fresh else old["space"], "previous_space": old["space"] if old else None}
    for kind, fields in ms.DATA.items():
        db.create(db.name(new, kind), fields, m.dimension if kind != "articles" else ms.META_DIM, index_type)
    sources: Counter[str] = Counter() if fresh else Counter(old.get("source_counts", {}))
    articles = 0 if fresh else int(old["articles"])
    chunks = 0 if fresh else int(old["chunks"])
    sentences = 0 if fresh else int(old.get("sentences", 0))
    if not fresh and change.remove:
        gone_articles, gone_chunks, gone_sentences, gone_sources = _retire(db, old, set(change.remove), n)
        articles -= gone_articles
        chunks -= gone_chunks
        sentences -= gone_sentences
        sources.subtract(gone_sources)
    now = time.time()
    rows: dict[str, list[dict]] = {kind: [] for kind in KINDS}
    for write in change.add:
        _rows(write, n, now, rows)
        articles += 1
        chunks += len(write.chunks)
        sentences += len(write.sentences) if write.sentence_vectors is not None else 0
        if write.article.source:
            sources[write.article.source] += 1
    for kind in KINDS:
        for i, row in enumerate(rows[kind]):
            row["id"] = n << ms.ID_SHIFT | i
        db.write(db.name(new, kind), rows[kind])
    counts = {s: c for s, c in sources.items() if c > 0}
    db.write_state({"model": m.model, "dimension": m.dimension, "chunk_tokens": m.chunk_tokens, "encoder": m.encoder,
                    "overlap": m.overlap, "layout": layout, "generation": n, **new, "updated_at": now,
                    "articles": articles, "chunks": chunks, "sentences": sentences, "sources": sorted(counts),
                    "source_counts": counts})
    collect(db, {**new, "generation": n})


def collect(db: Connection, state: dict) -> None:
    """Step 5: rows removed before the last commit, and spaces older than the previous one."""
    g = int(state["generation"]) - 1
    for kind in KINDS:
        db.delete(db.name(state, kind), f"until <= {g}")
    keep = {state["space"], state.get("previous_space")}
    for collection in db.collections():
        space = _space_of(db, collection)
        if space is not None and space not in keep:
            db.drop(collection)


def _retire(db: Connection, state: dict, removed: set[str], n: int) -> tuple[int, int, int, Counter]:
    """Step 2 for the articles ``removed``: (articles, chunks, sentences, sources) found and marked."""
    g = int(state["generation"])
    keys = sorted({ms.key(a) for a in removed})
    found = {kind: 0 for kind in KINDS}
    copies: Counter = Counter()  # rows copied so far, per kind: the next copy's id
    sources: Counter = Counter()
    for kind, fields in ms.DATA.items():
        name = db.name(state, kind)
        for i in range(0, len(keys), 1000):
            where = f"{ms.visible(g)} and {ms.keys_in('akey', keys[i:i + 1000])}"
            rows = [r for r in db.scan(name, where, ms.stored(fields)) if r["article_id"] in removed]
            if kind == "articles":
                heads = [r for r in rows if r["part"] == 0]
                sources.update(r["source"] for r in heads if r["source"])
                found[kind] += len(heads)
            else:
                found[kind] += len(rows)
            _rewrite(db, name, rows, n, n << ms.ID_SHIFT | ms.RETIRED_IDS + copies[kind])
            copies[kind] += len(rows)
    return found["articles"], found["chunks"], found["sentences"], sources


def _rows(write: ArticleWrite, n: int, now: float, out: dict[str, list[dict]]) -> None:
    """The rows of one article (ids are set by the caller)."""
    a = write.article
    common = {"akey": ms.key(a.id), "article_id": a.id, "gen": n, "until": ms.ALIVE}
    meta = {"title": a.title, "date": a.date or "", "day": ms.day(a.date), "source": a.source or "",
            "skey": ms.key(a.source)}
    parts = [a.text[i:i + ms.PART_CHARS] for i in range(0, len(a.text), ms.PART_CHARS)] or [""]
    for p, text in enumerate(parts):
        out["articles"].append({**common, **meta, "part": p, "parts": len(parts), "text": text,
                                "url": a.url or "", "author": a.author or "", "file": write.file or "",
                                "hash": a.hash, "text_hash": a.text_hash, "chunks": len(write.chunks),
                                "indexed_at": now, "vector": [0.0] * ms.META_DIM})
    for c, vector in zip(write.chunks, write.chunk_vectors, strict=True):
        out["chunks"].append({**common, **meta, "position": c.position, "start": c.start, "end": c.end,
                              "first_sentence": c.first_sentence, "last_sentence": c.last_sentence,
                              "url": a.url or "", "lexical": ms.lexical_text(a.title, c.text),
                              "vector": [float(x) for x in vector]})
    if write.sentence_vectors is not None:
        for i, (s, vector) in enumerate(zip(write.sentences, write.sentence_vectors, strict=True)):
            out["sentences"].append({**common, "position": i, "start": s.start, "end": s.end,
                                     "text": a.text[s.start:s.end], "vector": [float(x) for x in vector]})


def compact(db: Connection) -> CompactReport:
    started = time.perf_counter()
    state = db.read_state()
    if not state:
        return CompactReport("empty", "empty")
    before = {k: db.count(db.name(state, k), "id >= 0") for k in KINDS}
    collect(db, state)
    for kind in KINDS:
        try:  # Milvus merges segments on its own too; Lite's C++ core (2.5) does not implement the request
            db.client.compact(db.name(state, kind), timeout=db.timeout)
        except Exception:  # noqa: BLE001 - pymilvus raises MilvusException or grpc's RpcError
            break
    after = {k: db.count(db.name(state, k), "id >= 0") for k in KINDS}
    words = lambda c: ", ".join(f"{v} {k} rows" for k, v in c.items())  # noqa: E731
    return CompactReport(words(before), words(after), time.perf_counter() - started, {"before": before,
                                                                                     "after": after})
