"""The local backend: one index folder on this machine (SQLite metadata, FAISS vector segments, tantivy).

Layout of an index folder::

    qa.sqlite                 articles, chunks, sentences (offsets, vectors), manifest, the lists below
    seg-<gen>-<token>.faiss   chunk vectors added by commit <gen> (or merged by it): qa.store.segments
    lexical-<gen>-<token>/    the tantivy index of chunk strings (a new one per rebuild): qa.store.lexical
    .lock                     held by the one writer

The database's transaction is the commit. A writer first publishes what readers will not use before the
commit: the lexical documents of the new chunks (a reader keeps only hits whose chunk the database holds) and
the new segment files (a reader loads only the segments the database lists). Then one transaction changes
the rows, the segment list, the dead lists and the manifest's generation. Only after it are the deleted
chunks' lexical documents deleted, and files no longer listed by this commit or the one before removed.

A SIGKILL before the commit leaves the old index exactly: the database rolls back; the new segment files are
never listed (and deleted by the next writer); the new lexical documents belong to a generation that was never
committed, are invisible to readers, and are deleted by the next writer before it adds any (chunk ids of a
rolled-back commit are given out again). A SIGKILL after it leaves the new index, with cleaning left for the
next writer. Readers never wait: SQLite's WAL lets them read the last commit while a writer writes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path

import faiss
import numpy as np

from qa.config import Settings
from qa.errors import IndexUnusable
from qa.files import damaged
from qa.filters import Filters
from qa.listing import PAGE_SIZE, SORT_KEYS, ArticlePage, ArticleView
from qa.store import database as db
from qa.store import segments as seg
from qa.store.faiss_index import describe, is_approximate
from qa.store.lexical import LexicalIndex
from qa.store.protocol import NO_FILTERS, Commit, CompactReport, Hit, Manifest, Passage, Sentence, Status
from qa.store.writing import LAYOUT, LocalWriter

DB_NAME = db.DB_NAME
__all__ = ["DB_NAME", "LAYOUT", "LocalStore"]


class LocalStore:
    """An index folder; the :class:`qa.store.protocol.WritableStore` of the local backend (reading only unless
    opened ``writable``). Safe to share between threads; each call follows the latest commit.

    It reads itself and writes through its :class:`~qa.store.writing.LocalWriter` (``writer``), which uses only
    the public side below: :attr:`path`, :meth:`connection`, :attr:`mutex`, :meth:`snapshot`."""

    layout = LAYOUT

    def __init__(self, path: str | Path, writable: bool = False, exact_limit: int = Settings.exact_limit):
        self.path = Path(path)
        self.writable = writable
        self.exact_limit = exact_limit
        # FAISS's threads are set per search, in the searching thread (qa.store.segments._threads_for).
        if not writable and not (self.path / DB_NAME).exists():
            raise IndexUnusable(f"no index in {self.path}; build one with `qa index --index {self.path}`")
        #: Held by every read and write of this object's connection (a writer's commit included).
        self.mutex = threading.RLock()
        self._depth = 0
        self._con: sqlite3.Connection | None = None
        self._inode: int | None = None
        self._meta: dict[str, str] = {}
        self._generation: int | None = None
        self._loaded_generation: int | None = None
        self._manifest: Manifest | None = None
        self._segments: list[seg.Loaded] = []
        self._previous: list[seg.Loaded] = []  # for vectors of chunks found just before a commit
        self._dead = np.zeros(0, np.int64)
        self._lexical: LexicalIndex | None = None
        self._lexical_name: str | None = None
        self.writer = LocalWriter(self)

    # ---------------------------------------------------------------------------------------------- reading

    def connection(self) -> sqlite3.Connection:
        """The database connection, opened on first use (read-only unless the store is ``writable``)."""
        if self._con is None:
            if self.writable:
                self.path.mkdir(parents=True, exist_ok=True)
                self._con = db.connect(self.path)
                self._con.executescript(db.SCHEMA)
            else:
                self._con = db.connect(self.path, readonly=True)
            self._inode = (self.path / DB_NAME).stat().st_ino
        return self._con

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One consistent view of the index; database errors mean damage and say how to fix it."""
        with self.mutex:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            try:
                if not self.writable:
                    self._follow_rebuild()
                con = self.connection()
                con.execute("BEGIN")
                self._depth = 1
                try:
                    self._follow()
                    yield
                finally:
                    self._depth = 0
                    with suppress(sqlite3.Error):  # a read transaction has nothing to lose
                        con.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                raise damaged(self.path, exc) from None

    def _follow_rebuild(self) -> None:
        """Move to the new database once a rebuild that replaced the file has committed."""
        if self._con is None:
            return
        try:
            inode = (self.path / DB_NAME).stat().st_ino
        except FileNotFoundError:
            return  # mid-rebuild: keep answering from the old index
        if inode == self._inode:
            return
        fresh = db.connect(self.path, readonly=True)
        try:
            committed = db.manifest_of(db.read_meta(fresh, self.path)) is not None
        except BaseException:
            fresh.close()
            raise
        if not committed:
            fresh.close()
            return
        self._con.close()
        self._con, self._inode, self._generation, self._loaded_generation = fresh, inode, None, None

    def _follow(self) -> None:
        meta = db.read_meta(self.connection(), self.path)
        generation = int(meta.get(db.GENERATION, 0))
        if generation == self._generation:
            return
        manifest = db.manifest_of(meta)
        if manifest is not None and manifest.layout != LAYOUT and not self.writable:
            raise IndexUnusable(f"the index in {self.path} was written by another version of qa ({manifest.layout}; "
                                f"this version reads {LAYOUT}); run `qa index` to rebuild it")
        self._meta, self._manifest, self._generation = meta, manifest, generation
        if not self.writable:  # a writer reads the vector and lexical files only when asked (they may be damaged)
            self._loaded()

    def _loaded(self) -> None:
        """The vector segments and lexical index of the snapshot's generation, loaded (inside a snapshot)."""
        if self._loaded_generation == self._generation:
            return
        manifest = self._manifest
        if manifest is not None and manifest.layout == LAYOUT:
            self._load(self._meta, manifest.dimension)
        else:
            self._segments, self._dead, self._lexical, self._lexical_name = [], np.zeros(0, np.int64), None, None
        self._loaded_generation = self._generation

    def _load(self, meta: Mapping[str, str], dimension: int) -> None:
        """Load what a commit lists (reusing segments already in memory), checking it agrees with the database."""
        con = self.connection()
        infos = db.segment_infos(con)
        have = {s.info.name: s for s in self._segments + self._previous}
        loaded = [seg.Loaded(info, have[info.name].index) if info.name in have
                  else seg.Loaded(info, seg.read(self.path, info.name, dimension)) for info in infos]
        dead = np.fromiter((r[0] for r in con.execute("SELECT id FROM dead_vectors ORDER BY id")), dtype=np.int64)
        chunks = int(meta.get(db.CHUNKS, 0))
        held = sum(s.index.ntotal for s in loaded) - len(dead)
        name = meta.get(db.LEXICAL)
        lexical = self._lexical if name == self._lexical_name and self._lexical is not None else None
        if name and lexical is None:
            lexical = LexicalIndex(self.path / name)
        elif lexical is not None:
            lexical.refresh()
        lexical_size = lexical.size if lexical is not None else 0
        if held != chunks or lexical_size < chunks:
            what = "vector segments" if held != chunks else "lexical index"
            raise IndexUnusable(f"the index in {self.path} is inconsistent: its {what} hold "
                                f"{held if held != chunks else lexical_size} chunks, the database {chunks}; "
                                "run `qa index --rebuild` to build it again")
        current = {s.info.name for s in loaded}
        self._previous = [s for s in self._segments if s.info.name not in current]
        self._segments, self._dead, self._lexical, self._lexical_name = loaded, dead, lexical, name

    @property
    def manifest(self) -> Manifest | None:
        if self.writable and not (self.path / DB_NAME).exists():
            return None
        with self.snapshot():
            return self._manifest

    def status(self) -> Status:
        with self.snapshot():
            self._loaded()
            con = self.connection()
            articles, sentences = con.execute(
                "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM sentences)").fetchone()
            updated = float(self._meta.get(db.UPDATED_AT, 0)) or None
            segments, dead = list(self._segments), len(self._dead)
            sources = tuple(db.sources(con))
            manifest, chunks = self._manifest, int(self._meta.get(db.CHUNKS, 0))
        ivf = [s.index for s in segments if is_approximate(s.index)]
        search = describe(ivf[0]) if ivf else "exact"
        storage = f"{len(segments)} vector segment{'s' * (len(segments) != 1)}, {dead} deleted chunks to compact"
        return Status(articles, chunks, manifest, updated, sources, search, storage, sentences)

    def dense(self, vector: np.ndarray, k: int, filters: Filters = NO_FILTERS) -> list[Hit]:
        with self.snapshot():
            self._loaded()
            allowed = db.allowed_chunks(self.connection(), filters)
            if k < 1 or allowed is not None and not len(allowed):
                return []
            return [Hit(i, s) for i, s in seg.search(self._segments, vector, k, self._dead, allowed)]

    def lexical(self, query: str, k: int, filters: Filters = NO_FILTERS) -> list[Hit]:
        with self.snapshot():
            self._loaded()
            if self._lexical is None or k < 1:
                return []
            # Documents of deleted chunks (until the writer deletes them, just after its commit) and of a commit
            # not made yet: found, then dropped; ask for that many more.
            extra = max(0, self._lexical.size - int(self._meta.get(db.CHUNKS, 0)))
            found = self._lexical.search(query, k + extra, filters)
            alive = db.live(self.connection(), [i for i, _ in found]) if found else set()
            return [Hit(i, s) for i, s in found if i in alive][:k]

    def chunk_vectors(self, chunk_ids: Sequence[int]) -> np.ndarray:
        with self.snapshot():
            self._loaded()
            dimension = self._manifest.dimension if self._manifest else 0
            return seg.reconstruct(self._segments + self._previous, list(chunk_ids), dimension)

    def passages(self, hits: Sequence[Hit]) -> list[Passage]:
        if not hits:
            return []
        with self.snapshot():
            return db.passages(self.connection(), hits)

    def sentences(self, chunk_ids: Sequence[int]) -> dict[int, list[Sentence]]:
        with self.snapshot():
            return db.sentences(self.connection(), chunk_ids)

    def sentence_vectors(self, chunk_ids: Sequence[int]) -> dict[int, np.ndarray]:
        with self.snapshot():
            self._loaded()
            dimension = self._manifest.dimension if self._manifest else 0
            return db.sentence_vectors(self.connection(), chunk_ids, dimension)

    def count(self, filters: Filters = NO_FILTERS) -> int:
        with self.snapshot():
            return db.count_articles(self.connection(), filters)

    def chunks(self, article_id: str) -> list[Passage]:
        with self.snapshot():
            return db.article_chunks(self.connection(), article_id)

    def articles(self, query: str = "", sort: str = SORT_KEYS[0], descending: bool = True, offset: int = 0,
                 limit: int = PAGE_SIZE) -> ArticlePage:
        with self.snapshot():
            return db.article_page(self.connection(), query, sort, descending, offset, limit)

    def article(self, article_id: str) -> ArticleView | None:
        with self.snapshot():
            return db.article(self.connection(), article_id)

    def sources(self) -> list[str]:
        with self.snapshot():
            return db.sources(self.connection())

    def close(self) -> None:
        """Close the connection; a later read opens it again and reads the index anew."""
        with self.mutex:
            if self._con is not None:
                self._con.close()
                self._con = None
            self._generation = self._loaded_generation = None

    # -------------------------------------------------------------------------- writing: self.writer's

    def lock(self, wait: bool = True, on_wait: Callable[[], None] | None = None) -> AbstractContextManager[None]:
        return self.writer.lock(wait, on_wait)

    def indexed(self) -> dict[str, tuple[str, str]]:
        return self.writer.indexed()

    def files(self) -> dict[str, tuple[int, int]]:
        return self.writer.files()

    def record_files(self, stats: Mapping[str, tuple[int, int]]) -> None:
        self.writer.record_files(stats)

    def prepare_rebuild(self) -> None:
        self.writer.prepare_rebuild()

    def commit(self, change: Commit) -> None:
        self.writer.commit(change)

    def compact(self) -> CompactReport:
        return self.writer.compact()

    def vector_indexes(self) -> list[faiss.Index]:
        """The FAISS index of each vector segment in use, oldest first (for tests and benchmarks)."""
        with self.snapshot():
            self._loaded()
            return [s.index for s in self._segments]

    def verify(self) -> tuple[list[int], list[int], list[int]]:
        """(chunk ids in the database, live ids in the vector segments, live ids in the lexical index), sorted:
        for tests and ``qa status --verify``-like checks; the three must be equal."""
        with self.snapshot():
            self._loaded()
            chunks = sorted(r[0] for r in self.connection().execute("SELECT id FROM chunks"))
            dead = set(self._dead.tolist())
            vectors = sorted(int(i) for s in self._segments for i in s.ids if int(i) not in dead)
            lexical = sorted(set(self._lexical.ids()) & set(chunks)) if self._lexical else []
            return chunks, vectors, lexical
