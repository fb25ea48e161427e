"""The local backend's writing side: the writer lock, commits, segment merges and cleaning (see qa.store.local
for the order of writes that makes a commit atomic).

:class:`LocalWriter` is the :class:`qa.store.protocol.Writer` of a :class:`~qa.store.local.LocalStore`: it holds
the store it writes and uses only the store's public side (its folder, connection, thread lock and snapshots),
as txtai's index writes through its ann, scoring and database parts rather than inheriting them."""

from __future__ import annotations

import fcntl
import json
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Protocol

import numpy as np

from qa.chunking import chunk_string
from qa.errors import IndexUnusable
from qa.files import damaged, fsync_dir, storage_error
from qa.store import database as db
from qa.store import segments as seg
from qa.store.lexical import LexicalWriter
from qa.store.protocol import Commit, CompactReport, Manifest, Status

#: What this code writes; an index of another layout is rebuilt by the next sync (qa.indexing says so).
#: 3: vectors in segments, lexical search in tantivy (2: one FAISS file and a bm25s folder per generation).
LAYOUT = "local-3"
_RETIRED = "retired"  # manifest key: the files the latest commit stopped listing (readers may still load them)


class Folder(Protocol):
    """What the writer uses of the store it writes (:class:`qa.store.local.LocalStore`): its public side."""

    path: Path
    exact_limit: int
    #: Held by every use of the connection: a commit is never interleaved with a read of the same object.
    mutex: threading.RLock

    def connection(self) -> sqlite3.Connection: ...

    def snapshot(self) -> AbstractContextManager[None]: ...

    @property
    def manifest(self) -> Manifest | None: ...

    def status(self) -> Status: ...

    def close(self) -> None: ...


class LocalWriter:
    """Writes the index folder of ``store``: one writer at a time per folder (:meth:`lock`), one transaction
    per commit."""

    def __init__(self, store: Folder):
        self.store = store
        self.path = store.path
        self.exact_limit = store.exact_limit

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
        with self.store.snapshot():
            return db.indexed(self.store.connection())

    def files(self) -> dict[str, tuple[int, int]]:
        with self.store.snapshot():
            return db.files(self.store.connection())

    def record_files(self, stats: Mapping[str, tuple[int, int]]) -> None:
        with self.store.mutex, self._storage_errors():
            db.record_files(self.store.connection(), stats)

    def prepare_rebuild(self) -> None:
        """Set a database that cannot be read, or is of another layout, aside (deleted once the fresh commit is
        made), so the rebuild starts a new one; a rebuild that fails never leaves less than there was."""
        with self.store.mutex:
            stale = False
            if db.readable(self.path):
                if not (self.path / db.DB_NAME).exists():
                    return
                con = db.connect(self.path, readonly=True)
                try:
                    manifest = db.manifest_of(db.read_meta(con, self.path))
                finally:
                    con.close()
                stale = manifest is not None and manifest.layout != LAYOUT
                if not stale:
                    return
            self.store.close()  # and forget what was read: the next snapshot reads the new database
            db.set_aside(self.path)

    def commit(self, change: Commit) -> None:
        """Apply ``change`` as the next generation, in one transaction (see the module docstring)."""
        with self.store.mutex, self._storage_errors():
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
        with self.store.mutex, self._storage_errors():
            manifest = self.store.manifest
            if manifest is not None and manifest.layout != LAYOUT:  # a commit would start over: never here
                raise IndexUnusable(f"the index in {self.path} was written by another version of qa "
                                    f"({manifest.layout}); run `qa index` to rebuild it before compacting")
            before = self.store.status().storage
            if manifest is not None:
                self._commit(Commit(manifest), compact=True)
            after = self.store.status().storage
        return CompactReport(before, after, time.perf_counter() - started)

    def _commit(self, change: Commit, compact: bool) -> None:
        for write in change.add:
            write.check(change.manifest.dimension)
        con = self.store.connection()
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
                infos = db.segment_infos(con)
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
        if everything and len(infos) == 1 and not infos[0].dead:
            return infos  # already one segment without dead vectors: nothing to rewrite
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
        try:
            if lexical:
                self._clean_lexical(con, meta, generation)
        finally:  # the files go even when the lexical index cannot be cleaned (a sync with nothing to do won't)
            keep = set(self._listed(meta)) | set(json.loads(meta.get(_RETIRED, "[]")))
            for entry in self.path.iterdir():
                if entry.name.startswith(("seg-", "lexical-", "vectors-", "bm25-")) and entry.name not in keep:
                    shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)

    def _clean_lexical(self, con: sqlite3.Connection, meta: Mapping[str, str], generation: int) -> None:
        name = meta.get(db.LEXICAL)
        manifest = db.manifest_of(meta)
        if not (name and manifest is not None and manifest.layout == LAYOUT and (self.path / name).is_dir()):
            return
        dead = [r[0] for r in con.execute("SELECT id FROM dead_lexical")]
        writer = LexicalWriter(self.path / name)
        try:
            writer.delete_after(generation)
            writer.delete(dead)
            writer.commit()
        finally:
            writer.close()
        con.execute("BEGIN IMMEDIATE")
        try:
            for batch in db.batches(dead):
                con.execute(f"DELETE FROM dead_lexical WHERE id IN ({','.join('?' * len(batch))})", batch)
            con.execute("COMMIT")
        except BaseException:  # SQLite may leave a failed transaction open (a full disk): never leave it so
            with suppress(sqlite3.Error):
                con.execute("ROLLBACK")
            raise


def _settings(manifest: Manifest) -> dict:
    return {name: getattr(manifest, name) for name in (*Manifest.SETTINGS, "encoder")}
