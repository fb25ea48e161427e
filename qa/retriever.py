"""Finding the passages relevant to a question: dense (FAISS), BM25, or both, their scores combined."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from qa.config import Settings
from qa.embedding import Embedder, load_embedder
from qa.filters import Filters
from qa.indexing import _file_of
from qa.listing import MAX_PAGE_SIZE, PAGE_SIZE, SORT_KEYS, ArticlePage, ArticleRow, ArticleView
from qa.store import (
    DB_NAME,
    FORMAT_VERSION,
    Bm25,
    IndexUnusable,
    Manifest,
    bm25_path,
    connect,
    damaged,
    is_approximate,
    load_vectors,
    read_manifest,
    vector_ids,
    vectors_path,
)

MODES = ("hybrid", "dense", "bm25")
#: Weight of BM25 (normalized by the query's best BM25 score) beside cosine similarity in hybrid mode.
#: 0.3: MRR@10 0.955 on the SQuAD sample with unstemmed BM25 (store.Bm25; txtai 0.954; reciprocal rank fusion
#: 0.927). 0.4 scores 0.956 there, but lets a chunk that shares one rare word with the query and nothing else
#: rank first for the bundled corpus's "What ammunition was discussed?".
BM25_WEIGHT = 0.3
#: Queries are cut to this many characters: the model reads 256 tokens (about 1,000 characters) at most,
#: and a pasted essay must not make BM25 and the answerer slow.
MAX_QUERY_CHARS = 2000
#: On an approximate (IVF) index, a source/date filter that keeps at most this many chunks is searched exactly
#: (reconstructing 10,000 vectors takes about 9 ms).
EXACT_FILTERED = 10_000


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk of an article, with where it sits in the article's text."""

    score: float
    title: str
    date: str | None
    source: str | None
    url: str | None
    article_id: str
    chunk_id: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Sentence:
    """One sentence of an article, with its stored embedding (unit length)."""

    article_id: str
    position: int
    start: int
    end: int
    text: str
    vector: np.ndarray


@dataclass(frozen=True)
class IndexInfo:
    """What an index holds, for status lines."""

    articles: int
    chunks: int
    model: str
    updated_at: dt.datetime | None
    sources: tuple[str, ...]
    #: "exact", or "approximate (IVF: n lists, m probed per query)" above ``Settings.exact_limit`` chunks.
    search: str = "exact"


class Retriever:
    """Searches one index folder. Safe to share between threads; follows the index as it is re-synced."""

    def __init__(self, path: str | Path, embedder: Embedder | None = None):
        self.path = Path(path)
        # One query at a time gains nothing from FAISS's thread pool and, on a busy machine, loses a lot
        # (12 ms against 40 ms per search in bench/speed.py); concurrent requests use the cores instead.
        faiss.omp_set_num_threads(1)
        if not (self.path / DB_NAME).exists():
            raise IndexUnusable(f"no index in {self.path}; build one with `qa index --index {self.path}`")
        self._con = connect(self.path, readonly=True)
        self._inode = (self.path / DB_NAME).stat().st_ino
        self._lock = threading.RLock()
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        #: BM25's weight in hybrid mode, per retriever so that bench/tune.py can sweep it.
        self.bm25_weight: float = BM25_WEIGHT
        self._vectors: faiss.Index | None = None
        with self._snapshot():
            manifest, generation, _ = read_manifest(self._con)
            if manifest is None:
                raise IndexUnusable(f"the index in {self.path} is empty; run `qa index` to fill it")
            _check_format(self.path, manifest)
            self.manifest: Manifest = manifest
            if embedder is not None and embedder.name != manifest.model:
                raise IndexUnusable(f"the index was built with model {manifest.model!r}, not {embedder.name!r}; "
                                    "query it with the same model or rebuild it")
            self.embedder = embedder or load_embedder(manifest.model)
            self._load(generation)

    @classmethod
    def open(cls, path: str | Path | None = None, embedder: Embedder | None = None) -> Retriever:
        """Open the index at ``path`` (default: ``QA_INDEX`` or ``index``) with the model it was built with."""
        return cls(path if path is not None else Settings.from_env().index, embedder)

    def _load(self, generation: int) -> None:
        """Load a generation's vectors and BM25 (inside a read transaction), checking they match the database."""
        vectors = load_vectors(self.path, generation, self.manifest.dimension)
        bm25 = Bm25.load(bm25_path(self.path, generation)) if generation else Bm25(None, np.zeros(0))
        count, top = self._con.execute("SELECT count(*), coalesce(max(id), -1) FROM chunks").fetchone()
        for what, ids in ((vectors_path(self.path, generation).name, vector_ids(vectors)),
                          (bm25_path(self.path, generation).name, bm25.ids)):
            if len(ids) != count or (count and int(ids.max()) != top):
                raise IndexUnusable(f"the index in {self.path} is inconsistent: {what} holds {len(ids)} chunks, the "
                                    f"database {count}; run `qa index --rebuild` to build it again")
        # The previous generation's vectors stay at hand for a thread still scoring passages found in it.
        self._previous_vectors, self._vectors, self._bm25 = self._vectors, vectors, bm25
        self._generation = generation

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """One consistent view of the database; its errors mean a damaged index and say how to fix it."""
        try:
            self._con.execute("BEGIN")
            try:
                yield
            finally:
                with suppress(sqlite3.Error):  # a read transaction has nothing to lose
                    self._con.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise damaged(self.path, exc) from None

    def embed_query(self, query: str) -> np.ndarray:
        """The query's vector; the last few are cached, since the answerer needs the same one."""
        query = query[:MAX_QUERY_CHARS]
        with self._lock:
            cached = self._query_cache.get(query)
            if cached is None:
                cached = self.embedder.encode([query])[0]
                self._query_cache[query] = cached
                if len(self._query_cache) > 64:
                    self._query_cache.popitem(last=False)
            return cached

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Vectors of a few short texts (titles), through the same cache as queries."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._query_cache]
        if missing:
            vectors = self.embedder.encode(missing)
            with self._lock:
                for text, vector in zip(missing, vectors, strict=True):
                    self._query_cache[text] = vector
                while len(self._query_cache) > 256:
                    self._query_cache.popitem(last=False)
        return np.stack([self.embed_query(t) for t in texts]) if texts else np.zeros((0, self.manifest.dimension))

    def search(self, query: str, k: int = 5, mode: str = "hybrid", source: str | None = None,
               since: str | dt.date | None = None, until: str | dt.date | None = None, undated: bool = True,
               filters: Filters | None = None) -> list[Passage]:
        """The ``k`` best passages for ``query``, best first.

        ``mode``: "hybrid" (0.7 x cosine + 0.3 x normalized BM25), "dense" or "bm25". ``filters`` (or the
        shortcuts ``source``, ``since``, ``until``, ``undated``) keep articles of one source and dated within
        those days (inclusive); undated articles are kept unless ``undated`` is False. A bad date raises
        :class:`qa.filters.FilterError` (a ValueError) naming the field.
        """
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        filters = filters or Filters.parse(source, since, until, undated)
        if k < 1:
            return []
        query = query.strip()[:MAX_QUERY_CHARS]
        if not query:
            return []
        with self._lock:
            self._follow_rebuild()
            with self._snapshot():
                self._follow_generation()
                vector = self.embed_query(query) if mode != "bm25" else None
                allowed = self._allowed(filters)
                if allowed is not None and not len(allowed):
                    return []
                depth = max(50, 4 * k)
                ranked: list[tuple[int, float]]
                if mode == "dense":
                    ranked = self._dense(vector, depth, allowed)
                elif mode == "bm25":
                    ranked = self._bm25.search(query, depth, allowed)
                else:
                    ranked = self._hybrid(vector, query, depth, allowed)
                return self._passages(ranked[:k])

    def count(self, filters: Filters) -> int:
        """How many articles ``filters`` keep (all of them without filters)."""
        where, args = _where(filters)
        with self._lock, self._snapshot():
            return self._con.execute(f"SELECT count(*) FROM articles a WHERE {where or '1'}", args).fetchone()[0]

    def similarities(self, query: str, passages: list[Passage]) -> np.ndarray:
        """Cosine similarity of the query to each passage's stored chunk vector (title included)."""
        return self.chunk_vectors(passages) @ self.embed_query(query) if passages else np.zeros(0, np.float32)

    def chunk_vectors(self, passages: list[Passage]) -> np.ndarray:
        """Each passage's stored chunk vector (unit length), one row per passage."""
        if not passages:
            return np.zeros((0, self.manifest.dimension), dtype=np.float32)
        with self._lock:
            return np.stack([self._chunk_vector(p.chunk_id) for p in passages])

    def _chunk_vector(self, chunk_id: int) -> np.ndarray:
        """A chunk's stored vector; from the previous generation when another thread has moved on since the
        passage was found (chunk ids are never reused, so the id means the same chunk in both)."""
        for vectors in (self._vectors, self._previous_vectors):
            if vectors is not None:
                try:
                    return vectors.reconstruct(chunk_id)
                except RuntimeError:  # FAISS: id not in this generation
                    continue
        return np.zeros(self.manifest.dimension, dtype=np.float32)

    def sentences(self, passages: list[Passage]) -> dict[int, list[Sentence]]:
        """The sentences of each passage (by chunk id), with their stored vectors."""
        out: dict[int, list[Sentence]] = {}
        with self._lock, self._snapshot():
            for p in passages:
                rows = self._con.execute(
                    "SELECT s.position, s.start, s.\"end\", s.vector, "
                    "substr(a.text, s.start + 1, s.\"end\" - s.start) FROM chunks c "
                    "JOIN sentences s ON s.article_id = c.article_id "
                    "AND s.position BETWEEN c.first_sentence AND c.last_sentence "
                    "JOIN articles a ON a.id = c.article_id WHERE c.id = ? ORDER BY s.position",
                    (p.chunk_id,)).fetchall()
                out[p.chunk_id] = [
                    Sentence(p.article_id, pos, start, end, text,
                             np.frombuffer(blob, dtype=np.float16).astype(np.float32))
                    for pos, start, end, blob, text in rows if blob is not None]
        return out

    def info(self) -> IndexInfo:
        with self._lock:
            self._follow_rebuild()
            with self._snapshot():
                self._follow_generation()
                articles, chunks = self._con.execute(
                    "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM chunks)").fetchone()
                _, _, updated = read_manifest(self._con)
                sources = tuple(r[0] for r in self._con.execute(
                    "SELECT DISTINCT source FROM articles WHERE source IS NOT NULL ORDER BY source"))
            vectors = self._vectors
        when = dt.datetime.fromtimestamp(updated) if updated else None
        search = (f"approximate (IVF: {vectors.nlist} lists, {vectors.nprobe} probed per query)"
                  if is_approximate(vectors) else "exact")
        return IndexInfo(articles, chunks, self.manifest.model, when, sources, search)

    def close(self) -> None:
        self._con.close()

    def articles(self, query: str = "", sort: str = SORT_KEYS[0], descending: bool = True, offset: int = 0,
                 limit: int = PAGE_SIZE) -> ArticlePage:
        """A page of the archive's articles, sorted by ``sort`` (one of SORT_KEYS; undated articles last either
        way), keeping those whose title, source or file holds ``query`` (case-insensitive); ``limit`` is capped
        at MAX_PAGE_SIZE. Sorting by file orders by id, which starts with the file's name."""
        if sort not in SORT_KEYS:
            raise ValueError(f"cannot sort by {sort!r}; use one of {', '.join(SORT_KEYS)}")
        offset, limit = max(0, int(offset)), max(1, min(int(limit), MAX_PAGE_SIZE))
        words = " ".join(str(query or "").split())
        where, args = "1", []
        if words:
            pattern = "%" + re.sub(r"([\\%_])", r"\\\1", words) + "%"
            where = "(a.title LIKE ? ESCAPE '\\' OR a.source LIKE ? ESCAPE '\\' OR a.id LIKE ? ESCAPE '\\')"
            args = [pattern] * 3
        column = {"file": "a.id", "chunks": "chunks"}.get(sort, f"a.{sort}")
        order = f"{column} IS NULL, {column} {'DESC' if descending else 'ASC'}, a.id"
        with self._lock:
            self._follow_rebuild()
            with self._snapshot():
                total = self._con.execute(f"SELECT count(*) FROM articles a WHERE {where}", args).fetchone()[0]
                rows = self._con.execute(
                    "SELECT a.id, a.title, a.date, a.source, (SELECT count(*) FROM chunks c WHERE c.article_id = a.id)"
                    f" AS chunks, a.indexed_at FROM articles a WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
                    [*args, limit, offset]).fetchall()
                files = self._files_of([r[0] for r in rows])
        return ArticlePage(tuple(ArticleRow(r[0], r[1], r[2], r[3], files[r[0]], r[4], r[5]) for r in rows),
                           total, offset)

    def article(self, article_id: str) -> ArticleView | None:
        """One article with its text and all its metadata; None when the index holds no such article."""
        with self._lock:
            self._follow_rebuild()
            with self._snapshot():
                row = self._con.execute(
                    "SELECT a.id, a.title, a.date, a.source, (SELECT count(*) FROM chunks c WHERE c.article_id = a.id),"
                    " a.indexed_at, a.text, a.url, a.author FROM articles a WHERE a.id = ?", (article_id,)).fetchone()
                if row is None:
                    return None
                file = self._files_of([row[0]])[row[0]]
        return ArticleView(*row[:4], file, *row[4:])

    def sources(self) -> list[str]:
        """The archive's sources, distinct and sorted."""
        with self._lock, self._snapshot():
            return [r[0] for r in self._con.execute(
                "SELECT DISTINCT source FROM articles WHERE source IS NOT NULL ORDER BY source")]

    def _files_of(self, ids: list[str]) -> dict[str, str]:
        """The corpus file of each article id (as qa.indexing maps them): a file the index read, else the id up
        to its first ``#``."""
        candidates = {i[:at] for i in ids for at in [len(i), *(n for n, ch in enumerate(i) if ch == "#")]}
        known: set[str] = set()
        names = sorted(candidates)
        for start in range(0, len(names), 500):
            part = names[start:start + 500]
            known.update(r[0] for r in self._con.execute(
                f"SELECT path FROM files WHERE path IN ({','.join('?' * len(part))})", part))
        return {i: _file_of(i, known) or i.partition("#")[0] for i in ids}

    def _follow_rebuild(self) -> None:
        """Move to the new database once a rebuild (which replaces the file) has committed its first generation."""
        try:
            inode = (self.path / DB_NAME).stat().st_ino
        except FileNotFoundError:
            return  # mid-rebuild: keep answering from the old index
        if inode == self._inode:
            return
        previous, self._con = self._con, connect(self.path, readonly=True)
        try:
            with self._snapshot():
                manifest, generation, _ = read_manifest(self._con)
                if manifest is not None:
                    self._adopt(manifest)
                    self._load(generation)
        except BaseException:
            self._con.close()
            self._con = previous
            raise
        if manifest is None:  # not committed yet
            self._con.close()
            self._con = previous
            return
        previous.close()
        self._inode = inode

    def _follow_generation(self) -> None:
        manifest, generation, _ = read_manifest(self._con)
        if generation != self._generation:
            self._adopt(manifest)
            self._load(generation)

    def _adopt(self, manifest: Manifest) -> None:
        """Take on the settings of a rebuilt index; queries must be embedded with the model it was built with."""
        _check_format(self.path, manifest)
        if manifest.model != self.manifest.model:
            self.embedder = load_embedder(manifest.model)
            self._query_cache.clear()
        self.manifest = manifest

    def _allowed(self, filters: Filters) -> np.ndarray | None:
        where, args = _where(filters)
        if not where:
            return None
        rows = self._con.execute(f"SELECT c.id FROM chunks c JOIN articles a ON a.id = c.article_id WHERE {where}",
                                 args)
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def _dense(self, vector: np.ndarray, k: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        index = self._vectors
        if index.ntotal == 0:
            return []
        k = min(k, index.ntotal)
        query = vector.reshape(1, -1)
        params = None
        if allowed is not None and is_approximate(index):
            if len(allowed) <= EXACT_FILTERED:
                # The probed lists may hold few of a small filter's chunks: score those chunks exactly instead.
                scores = index.reconstruct_batch(allowed) @ vector
                best = np.argsort(-scores)[:k]
                return [(int(allowed[i]), float(scores[i])) for i in best]
            # Probe more lists the smaller the share of chunks the filter keeps, to find k of them.
            nprobe = min(index.nlist, index.nprobe * -(-index.ntotal // len(allowed)))
            params = faiss.SearchParametersIVF(sel=faiss.IDSelectorBatch(allowed), nprobe=nprobe)
        elif allowed is not None:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
        scores, ids = index.search(query, k, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def _hybrid(self, vector: np.ndarray, query: str, k: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        """Dense and BM25 candidates, ranked by a convex combination of their scores.

        Cosine similarity is already on a fixed scale; BM25 is divided by the query's best BM25 score. A
        candidate found by one side only gets its exact cosine (from the stored vector) or a BM25 of 0.
        """
        dense = dict(self._dense(vector, k, allowed))
        lexical = dict(self._bm25.search(query, k, allowed))
        if not lexical:
            return sorted(dense.items(), key=lambda pair: -pair[1])
        top, weight = max(lexical.values()), self.bm25_weight
        scores = {}
        for chunk_id in dense.keys() | lexical.keys():
            cosine = dense.get(chunk_id)
            if cosine is None:
                cosine = float(self._vectors.reconstruct(chunk_id) @ vector)
            scores[chunk_id] = (1 - weight) * cosine + weight * lexical.get(chunk_id, 0.0) / top
        return sorted(scores.items(), key=lambda pair: -pair[1])

    def _passages(self, ranked: list[tuple[int, float]]) -> list[Passage]:
        if not ranked:
            return []
        ids = [i for i, _ in ranked]
        rows = self._con.execute(
            "SELECT c.id, a.title, a.date, a.source, a.url, a.id, c.start, c.\"end\", "
            "substr(a.text, c.start + 1, c.\"end\" - c.start) FROM chunks c JOIN articles a ON a.id = c.article_id "
            f"WHERE c.id IN ({','.join('?' * len(ids))})", ids).fetchall()
        by_id = {r[0]: r for r in rows}
        return [Passage(score, *by_id[i][1:6], i, *by_id[i][6:]) for i, score in ranked if i in by_id]


def _check_format(path: Path, manifest: Manifest) -> None:
    if manifest.format != FORMAT_VERSION:
        raise IndexUnusable(f"the index in {path} was written by another version of qa (format {manifest.format}; "
                            f"this version reads format {FORMAT_VERSION}); run `qa index` to rebuild it")


def _where(filters: Filters) -> tuple[str, list[str]]:
    """The SQL condition on ``articles a`` for ``filters`` ("" for none), and its arguments."""
    where, args, dated = [], [], []
    if filters.source:
        where.append("a.source = ?")
        args.append(filters.source)
    if filters.since:
        dated.append("a.date >= ?")
        args.append(filters.since)
    if filters.until:
        dated.append("a.date <= ?")
        args.append(filters.until)
    if dated:
        condition = " AND ".join(dated)
        where.append(f"({condition} OR a.date IS NULL)" if filters.undated else condition)
    return " AND ".join(where), args
