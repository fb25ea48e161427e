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

import fcntl
import json
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import faiss
import numpy as np

from qa.chunking import chunk_string
from qa.config import Settings
from qa.errors import IndexUnusable
from qa.files import damaged, fsync_dir, storage_error
from qa.filters import Filters
from qa.listing import PAGE_SIZE, SORT_KEYS, ArticlePage, ArticleView
from qa.store import database as db
from qa.store import segments as seg
from qa.store.faiss_index import is_approximate
from qa.store.lexical import LexicalIndex, LexicalWriter
from qa.store.protocol import NO_FILTERS, Commit, CompactReport, Hit, Manifest, Passage, Sentence, Status

#: What this code writes; an index of another layout is rebuilt by the next sync (qa.indexing says so).
#: 3: vectors in segments, lexical search in tantivy (2: one FAISS file and a bm25s folder per generation).
LAYOUT = "local-3"
DB_NAME = db.DB_NAME
_RETIRED = "retired"  # manifest key: the files the latest commit stopped listing (readers may still load them)


class LocalStore:
    """An index folder; the :class:`qa.store.protocol.WritableStore` of the local backend (reading only unless
    opened ``writable``). Safe to share between threads; each call follows the latest commit."""

    layout = LAYOUT

    def __init__(self, path: str | Path, writable: bool = False, exact_limit: int = Settings.exact_limit):
        self.path = Path(path)
        self.writable = writable
        self.exact_limit = exact_limit
        # One query at a time gains nothing from FAISS's thread pool and, on a busy machine, loses a lot
        # (12 ms against 40 ms per search in bench/speed.py); concurrent requests use the cores instead.
        if not writable:
            faiss.omp_set_num_threads(1)
            if not (self.path / DB_NAME).exists():
                raise IndexUnusable(f"no index in {self.path}; build one with `qa index --index {self.path}`")
        self._lock = threading.RLock()
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

    # ---------------------------------------------------------------------------------------------- reading

    def _connection(self) -> sqlite3.Connection:
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
        with self._lock:
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
                con = self._connection()
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
        meta = db.read_meta(self._con, self.path)
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
        con = self._con
        infos = self._segment_infos(con)
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

    @staticmethod
    def _segment_infos(con: sqlite3.Connection) -> list[seg.SegmentInfo]:
        rows = con.execute("SELECT s.name, s.low, s.high, s.size, (SELECT count(*) FROM dead_vectors d "
                           "WHERE d.id BETWEEN s.low AND s.high) FROM segments s ORDER BY s.position").fetchall()
        return [seg.SegmentInfo(*row) for row in rows]

    @property
    def manifest(self) -> Manifest | None:
        if self.writable and not (self.path / DB_NAME).exists():
            return None
        with self.snapshot():
            return self._manifest

    def status(self) -> Status:
        with self.snapshot():
            self._loaded()
            con = self._con
            articles, sentences = con.execute(
                "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM sentences)").fetchone()
            updated = float(self._meta.get(db.UPDATED_AT, 0)) or None
            segments, dead = list(self._segments), len(self._dead)
            sources = tuple(db.sources(con))
            manifest, chunks = self._manifest, int(self._meta.get(db.CHUNKS, 0))
        ivf = [s.index for s in segments if is_approximate(s.index)]
        search = (f"approximate (IVF: {ivf[0].nlist} lists, {ivf[0].nprobe} probed per query)" if ivf else "exact")
        storage = f"{len(segments)} vector segment{'s' * (len(segments) != 1)}, {dead} deleted chunks to compact"
        return Status(articles, chunks, manifest, updated, sources, search, storage, sentences)

    def dense(self, vector: np.ndarray, k: int, filters: Filters = NO_FILTERS) -> list[Hit]:
        with self.snapshot():
            self._loaded()
            allowed = db.allowed_chunks(self._con, filters)
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
            alive = db.live(self._con, [i for i, _ in found]) if found else set()
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
            return db.passages(self._con, hits)

    def sentences(self, chunk_ids: Sequence[int]) -> dict[int, list[Sentence]]:
        with self.snapshot():
            return db.sentences(self._con, chunk_ids)

    def count(self, filters: Filters = NO_FILTERS) -> int:
        with self.snapshot():
            return db.count_articles(self._con, filters)

    def chunks(self, article_id: str) -> list[Passage]:
        with self.snapshot():
            return db.article_chunks(self._con, article_id)

    def articles(self, query: str = "", sort: str = SORT_KEYS[0], descending: bool = True, offset: int = 0,
                 limit: int = PAGE_SIZE) -> ArticlePage:
        with self.snapshot():
            return db.article_page(self._con, query, sort, descending, offset, limit)

    def article(self, article_id: str) -> ArticleView | None:
        with self.snapshot():
            return db.article(self._con, article_id)

    def sources(self) -> list[str]:
        with self.snapshot():
            return db.sources(self._con)

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    def verify(self) -> tuple[list[int], list[int], list[int]]:
        """(chunk ids in the database, live ids in the vector segments, live ids in the lexical index), sorted:
        for tests and ``qa status --verify``-like checks; the three must be equal."""
        with self.snapshot():
            self._loaded()
            chunks = sorted(r[0] for r in self._con.execute("SELECT id FROM chunks"))
            dead = set(self._dead.tolist())
            vectors = sorted(int(i) for s in self._segments for i in s.ids if int(i) not in dead)
            lexical = sorted(set(self._lexical.ids()) & set(chunks)) if self._lexical else []
            return chunks, vectors, lexical

    # ---------------------------------------------------------------------------------------------- writing

    @contextmanager
    def lock(self, wait: bool = True, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
        """One writer at a time per index folder; a second one waits (or fails at once if ``wait`` is False)."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    raise IndexUnusable(f"another `qa index` is updating {self.path}; wait for it to finish") from None
                if on_wait:
                    on_wait()
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def indexed(self) -> dict[str, tuple[str, str]]:
        with self.snapshot():
            return db.indexed(self._con)

    def files(self) -> dict[str, tuple[int, int]]:
        with self.snapshot():
            return db.files(self._con)

    def record_files(self, stats: Mapping[str, tuple[int, int]]) -> None:
        with self._lock, self._storage_errors():
            db.record_files(self._connection(), stats)

    def prepare_rebuild(self) -> None:
        """Set a database that cannot be read, or is of another layout, aside (deleted once the fresh commit is
        made), so the rebuild starts a new one; a rebuild that fails never leaves less than there was."""
        with self._lock:
            stale = False
            if db.readable(self.path):
                if not (self.path / DB_NAME).exists():
                    return
                con = db.connect(self.path, readonly=True)
                try:
                    manifest = db.manifest_of(db.read_meta(con, self.path))
                finally:
                    con.close()
                stale = manifest is not None and manifest.layout != LAYOUT
                if not stale:
                    return
            self.close()
            db.set_aside(self.path)
            self._generation = self._loaded_generation = None

    def commit(self, change: Commit) -> None:
        """Apply ``change`` as the next generation, in one transaction (see the module docstring)."""
        with self._lock, self._storage_errors():
            self._commit(change, compact=False)

    @contextmanager
    def _storage_errors(self) -> Iterator[None]:
        """A full or read-only disk reported as such (SQLite, FAISS and tantivy each word it their own way), and
        a database that cannot be read as damaged, with the fix."""
        try:
            yield
        except (OSError, RuntimeError, ValueError, sqlite3.Error) as exc:
            problem = storage_error(self.path, exc)
            if problem is not None:
                raise problem from exc
            if isinstance(exc, sqlite3.DatabaseError):
                raise damaged(self.path, exc) from exc
            raise

    def compact(self) -> CompactReport:
        """Merge every segment into one without dead vectors, as one commit; the lexical index merges its own
        segments as it goes (tantivy's merge policy) and loses deleted documents just after each commit."""
        started = time.perf_counter()
        with self._lock, self._storage_errors():
            before = self.status().storage
            manifest = self.manifest
            if manifest is not None:
                self._commit(Commit(manifest), compact=True)
            after = self.status().storage
        return CompactReport(before, after, time.perf_counter() - started)

    def _commit(self, change: Commit, compact: bool) -> None:
        for write in change.add:
            write.check(change.manifest.dimension)
        con = self._connection()
        meta = db.read_meta(con, self.path)
        generation = int(meta.get(db.GENERATION, 0))
        old = db.manifest_of(meta)
        fresh = change.fresh or old is None or old.layout != LAYOUT
        self._clean(con, meta, generation, lexical=not fresh)  # a fresh commit starts a new lexical index
        new_gen, token = generation + 1, secrets.token_hex(4)
        written: list[Path] = []
        lexical_name = f"lexical-{new_gen}-{token}" if fresh or not meta.get(db.LEXICAL) else meta[db.LEXICAL]
        now = time.time()
        con.execute("BEGIN IMMEDIATE")
        try:
            if fresh:
                for table in ("articles", "segments", "dead_vectors", "dead_lexical"):
                    con.execute(f"DELETE FROM {table}")
                removed: list[int] = []
                infos: list[seg.SegmentInfo] = []
                written.append(self.path / lexical_name)
            else:
                removed = db.delete_articles(con, change.remove)
                con.executemany("INSERT INTO dead_vectors VALUES (?)", [(i,) for i in removed])
                con.executemany("INSERT INTO dead_lexical VALUES (?)", [(i,) for i in removed])
                infos = self._segment_infos(con)
            ids: list[int] = []
            rows = []
            for write in change.add:
                new = db.insert_article(con, write, now)
                ids += new
                a = write.article
                rows += [(i, new_gen, a.source, a.date, chunk_string(a.title, c.text))
                         for i, c in zip(new, write.chunks, strict=True)]
            if rows or fresh:
                lexical = LexicalWriter(self.path / lexical_name, create=fresh)
                try:
                    lexical.add(rows)
                    lexical.commit()  # invisible to readers until the database lists these chunks
                finally:
                    lexical.close()
            if ids:
                vectors = np.concatenate([w.chunk_vectors for w in change.add if len(w.chunks)])
                name = f"seg-{new_gen}-{token}.faiss"
                seg.write(self.path, name, seg.build(vectors, ids, self.exact_limit))
                written.append(self.path / name)
                infos.append(seg.SegmentInfo(name, min(ids), max(ids), len(ids)))
            infos = self._merge(con, infos, change.manifest.dimension, new_gen, token, written, everything=compact)
            con.execute("DELETE FROM segments")
            con.executemany("INSERT INTO segments VALUES (?, ?, ?, ?, ?)",
                            [(s.name, n, s.low, s.high, s.size) for n, s in enumerate(infos)])
            listed = {s.name for s in infos} | {lexical_name}
            retired = sorted(set(self._listed(meta)) - listed)
            chunks = (0 if fresh else int(meta.get(db.CHUNKS, 0))) - len(removed) + len(ids)
            db.write_meta(con, Manifest(**{**_settings(change.manifest), "layout": LAYOUT}), generation=new_gen,
                          updated_at=now, chunks=chunks, lexical=lexical_name, segments=json.dumps(sorted(listed)),
                          **{_RETIRED: json.dumps(retired)})
            fsync_dir(self.path)
            con.execute("COMMIT")
        except BaseException:
            with suppress(sqlite3.Error):  # a failed COMMIT (a full disk) may have rolled back already
                con.execute("ROLLBACK")
            for path in written:  # give back the space now: on a full disk it is what is missing
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            raise
        db.discard_set_aside(self.path)
        with suppress(OSError, sqlite3.Error, ValueError):  # cleaning: the next writer does it otherwise
            self._clean(con, db.read_meta(con, self.path), new_gen)

    def _merge(self, con: sqlite3.Connection, infos: list[seg.SegmentInfo], dimension: int, gen: int, token: str,
               written: list[Path], everything: bool = False) -> list[seg.SegmentInfo]:
        """Merge the segments :func:`qa.store.segments.plan` names (all of them for ``everything``)."""
        groups = [list(range(len(infos)))] if everything and infos else seg.plan(infos)
        if not groups:
            return infos
        out: list[seg.SegmentInfo] = []
        done = 0
        for n, group in enumerate(groups):
            out += infos[done:group[0]]
            done = group[-1] + 1
            parts = [infos[i] for i in group]
            low, high = parts[0].low, parts[-1].high
            dead = np.fromiter((r[0] for r in con.execute(
                "SELECT id FROM dead_vectors WHERE id BETWEEN ? AND ?", (low, high))), dtype=np.int64)
            indexes = [seg.read(self.path, info.name, dimension) for info in parts]
            merged = seg.merge(indexes, dead, self.exact_limit)
            con.execute("DELETE FROM dead_vectors WHERE id BETWEEN ? AND ?", (low, high))
            if merged.ntotal:
                name = f"seg-{gen}-{token}-{n}.faiss"
                seg.write(self.path, name, merged)
                written.append(self.path / name)
                out.append(seg.SegmentInfo(name, low, high, merged.ntotal))
        return out + infos[done:]

    @staticmethod
    def _listed(meta: Mapping[str, str]) -> list[str]:
        return json.loads(meta.get("segments", "[]")) + ([meta[db.LEXICAL]] if meta.get(db.LEXICAL) else [])

    def _clean(self, con: sqlite3.Connection, meta: Mapping[str, str], generation: int, lexical: bool = True) -> None:
        """Finish what a commit leaves to the next writer: lexical documents of chunks deleted, or of a commit
        that did not happen, and files that neither the latest commit nor the one before it lists."""
        name = meta.get(db.LEXICAL)
        manifest = db.manifest_of(meta)
        if lexical and name and manifest is not None and manifest.layout == LAYOUT and (self.path / name).is_dir():
            dead = [r[0] for r in con.execute("SELECT id FROM dead_lexical")]
            writer = LexicalWriter(self.path / name)
            try:
                writer.delete_after(generation)
                writer.delete(dead)
                writer.commit()
            finally:
                writer.close()
            con.execute("BEGIN IMMEDIATE")
            for batch in db.batches(dead):
                con.execute(f"DELETE FROM dead_lexical WHERE id IN ({','.join('?' * len(batch))})", batch)
            con.execute("COMMIT")
        keep = set(self._listed(meta)) | set(json.loads(meta.get(_RETIRED, "[]")))
        for entry in self.path.iterdir():
            if entry.name.startswith(("seg-", "lexical-", "vectors-", "bm25-")) and entry.name not in keep:
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)


def _settings(manifest: Manifest) -> dict:
    return {name: getattr(manifest, name) for name in Manifest.SETTINGS}
