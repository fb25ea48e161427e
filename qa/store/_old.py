"""The index on disk: SQLite for articles, chunks and sentences; FAISS for vectors; bm25s for BM25.

Layout of an index folder::

    qa.sqlite            articles, chunks (offsets), sentences (offsets, vectors), manifest
    vectors-<gen>.faiss  chunk vectors, FAISS ids = chunk ids: exact search (IndexFlatIP) up to
                         Settings.exact_limit chunks, approximate (IndexIVFFlat) above
    bm25-<gen>/          BM25 over title + chunk text, plus the chunk id of each BM25 document
    .lock                held by the one writer

Crash safety comes from generations. A writer builds the next generation's FAISS and BM25 files beside
the current ones, then changes the SQLite rows and the manifest's ``generation`` in one transaction: the
commit is the moment the new index exists. A crash before it leaves the old generation whole (its files are
untouched); stray files of an uncommitted generation are overwritten or deleted later. Readers open the
generation the manifest names, inside a read transaction, so they never see a half-written index, and they
move to a newer generation when one is committed. The previous generation's files are kept for readers
still loading them.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import bm25s
import faiss
import numpy as np

from qa.config import Settings
from qa.files import free_bytes, fsync_dir, fsync_file, fsync_tree, storage_trouble, wal_has_data
from qa.vectors import (  # noqa: F401 - re-exported: the store's vector files are built by these
    PROBE_FRACTION,
    TRAIN_ITERATIONS,
    TRAIN_PER_LIST,
    fit_vector_index,
    is_approximate,
    ivf_lists,
    new_vector_index,
    vector_ids,
)

#: Bumped when the on-disk layout changes; an index of another format is rebuilt, never mixed.
#: 2: BM25 words are no longer stemmed, so a format-1 BM25 index cannot answer format-2 queries.
FORMAT_VERSION = 2
DB_NAME = "qa.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS manifest (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, text TEXT NOT NULL, date TEXT, source TEXT, url TEXT,
    author TEXT, hash TEXT NOT NULL, text_hash TEXT NOT NULL, indexed_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS articles_date ON articles(date);
CREATE INDEX IF NOT EXISTS articles_source ON articles(source);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, article_id TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    position INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    first_sentence INTEGER NOT NULL, last_sentence INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_article ON chunks(article_id);
CREATE TABLE IF NOT EXISTS sentences (
    article_id TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE, position INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, vector BLOB,
    PRIMARY KEY (article_id, position)) WITHOUT ROWID;
"""


class IndexUnusable(RuntimeError):
    """The index cannot be used as it is; the message says what to do."""


class DiskFull(IndexUnusable):
    """The disk under the index is full; nothing was changed, and nothing is damaged."""


class IndexReadOnly(IndexUnusable):
    """The index folder cannot be written (a read-only mount, no permission); it can still be searched."""


def storage_error(path: Path, exc: BaseException) -> IndexUnusable | None:
    """The error to report when ``exc`` came from a full or read-only disk rather than a damaged index."""
    if isinstance(exc, IndexUnusable):  # already says what is wrong (other settings, a damaged file...)
        return exc if isinstance(exc, DiskFull | IndexReadOnly) else None
    trouble = storage_trouble(path, exc)
    if trouble == "full":
        free = free_bytes(path)
        left = f"{free / 2**10:,.0f} KB free" if free is not None else "no space left"
        return DiskFull(f"the disk holding {path} is full ({left}); free some space and run the command again. "
                        "The index was not changed.")
    if trouble == "read-only":
        return IndexReadOnly(f"{path} is on a read-only file system: it can be searched but not updated; run "
                             "`qa index` on a writable copy, or remount it read-write. The index was not changed.")
    if trouble == "denied":
        return IndexReadOnly(f"no permission to write in {path}; run as a user who may, or give a writable "
                             "--index. The index was not changed.")
    return None


def damaged(path: Path, exc: BaseException) -> IndexUnusable:
    """The error for a database SQLite cannot read (a disk fault, a truncated copy, another program's file),
    unless it came from a full or read-only disk: rebuilding cannot help there, and would lose the index."""
    return storage_error(path, exc) or IndexUnusable(
        f"the index database in {path} is damaged or unreadable ({exc}); run `qa index --rebuild` to build it again")


@dataclass(frozen=True)
class Manifest:
    """What an index was built with; vectors of other settings are never mixed into it."""

    model: str
    dimension: int
    chunk_tokens: int
    overlap: int
    format: int = FORMAT_VERSION

    def differences(self, other: Manifest) -> list[str]:
        return [f"{name}: index has {getattr(self, name)!r}, settings say {getattr(other, name)!r}"
                for name in ("format", "model", "dimension", "chunk_tokens", "overlap")
                if getattr(self, name) != getattr(other, name)]


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    """A connection to an index's database; ``readonly`` ones never change the file's settings.

    A reader needs to create the WAL's shared-memory file, which fails on a read-only mount ("unable to open
    database file") and on a full disk ("disk I/O error"). There, when the log holds no pages (every commit is
    in the main file, as after the last writer closed), the file is opened ``immutable``: nothing can write it
    meanwhile on a read-only mount; on a full disk a later sync is seen once the reader is restarted.
    """
    db = path / DB_NAME
    con = sqlite3.connect(db, check_same_thread=False, isolation_level=None, timeout=60)
    try:
        if not readonly:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=FULL")
        else:
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the log now, not mid-query
    except sqlite3.DatabaseError as exc:
        if readonly and not isinstance(exc, sqlite3.OperationalError):
            return con  # damage ("file is not a database"): the caller's first query reports it, with the fix
        con.close()
        if not readonly or storage_trouble(path, exc) is None or wal_has_data(db):
            raise
        con = sqlite3.connect(f"{db.absolute().as_uri()}?immutable=1", uri=True, check_same_thread=False,
                              isolation_level=None, timeout=60)
    con.execute("PRAGMA foreign_keys=ON")
    return con


def read_manifest(con: sqlite3.Connection) -> tuple[Manifest | None, int, float | None]:
    """(manifest, generation, updated_at) of an index; manifest None for an empty new one."""
    try:
        rows = dict(con.execute("SELECT key, value FROM manifest").fetchall())
    except sqlite3.DatabaseError as exc:
        where = _db_folder(con)
        raise (where and storage_error(where, exc)) or IndexUnusable(
            f"the index database is damaged or not an index ({exc}); run `qa index --rebuild` to build it again"
        ) from None
    if "model" not in rows:
        return None, 0, None
    try:
        manifest = Manifest(model=rows["model"], dimension=int(rows["dimension"]),
                            chunk_tokens=int(rows["chunk_tokens"]), overlap=int(rows["overlap"]),
                            format=int(rows.get("format", 0)))
        return manifest, int(rows.get("generation", 0)), float(rows.get("updated_at", 0)) or None
    except (KeyError, ValueError):
        raise IndexUnusable("the index manifest is incomplete; run `qa index --rebuild`") from None


def _db_folder(con: sqlite3.Connection) -> Path | None:
    try:
        file = con.execute("PRAGMA database_list").fetchone()[2]
    except sqlite3.Error:
        return None
    return Path(file).parent if file else None


def vectors_path(path: Path, generation: int) -> Path:
    return path / f"vectors-{generation}.faiss"


def bm25_path(path: Path, generation: int) -> Path:
    return path / f"bm25-{generation}"


def load_vectors(path: Path, generation: int, dimension: int) -> faiss.Index:
    file = vectors_path(path, generation)
    if generation == 0:
        return new_vector_index(dimension)
    try:
        index = faiss.read_index(str(file))
    except Exception:  # FAISS raises RuntimeError with C++ text for missing or damaged files
        raise IndexUnusable(f"the vector file {file} is missing or damaged; run `qa index --rebuild`") from None
    if index.d != dimension:
        raise IndexUnusable(f"the vector file {file} has dimension {index.d}, the manifest says {dimension}; "
                            "run `qa index --rebuild`")
    return index


class Bm25:
    """BM25 over chunks (bm25s), with the chunk id of each BM25 document.

    Words are indexed as written: lowercased, not stemmed, no stop list (as txtai and Lucene's standard
    analyzer do). In hybrid search the dense model already matches other forms of a word and paraphrases, so
    BM25 helps most as exact evidence, and IDF leaves words like "the" next to no weight. On the SQuAD sample,
    hybrid MRR@10 went from 0.947 (stemmed, with stop list) to 0.955 (txtai: 0.954).
    """

    def __init__(self, model: bm25s.BM25 | None, ids: np.ndarray):
        self.model = model
        self.ids = ids

    @staticmethod
    def tokenize(texts: list[str]) -> list[list[str]]:
        return bm25s.tokenize(texts, stopwords=None, return_ids=False, show_progress=False)

    @classmethod
    def build(cls, ids: list[int], texts: list[str]) -> Bm25:
        if not texts:
            return cls(None, np.zeros(0, dtype=np.int64))
        model = bm25s.BM25()
        tokens = bm25s.tokenize(texts, stopwords=None, show_progress=False)
        model.index(tokens, show_progress=False)
        return cls(model, np.asarray(ids, dtype=np.int64))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True)
        if self.model is not None:
            self.model.save(str(folder))
        np.save(folder / "ids.npy", self.ids)

    @classmethod
    def load(cls, folder: Path) -> Bm25:
        try:
            ids = np.load(folder / "ids.npy")
            model = bm25s.BM25.load(str(folder), mmap=False) if len(ids) else None
        except Exception:
            raise IndexUnusable(f"the BM25 files in {folder} are missing or damaged; "
                                "run `qa index --rebuild`") from None
        return cls(model, ids)

    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(chunk id, score) pairs, best first, only documents that share a term with the query."""
        if self.model is None or not len(self.ids):
            return []
        tokens = self.tokenize([query])
        if not tokens[0]:
            return []
        mask = None
        if allowed is not None:
            mask = np.isin(self.ids, allowed).astype(np.float32)
        k = min(k, len(self.ids))
        docs, scores = self.model.retrieve(tokens, k=k, show_progress=False, weight_mask=mask, n_threads=0)
        return [(int(self.ids[d]), float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]


@contextmanager
def writer_lock(path: Path, wait: bool = True, on_wait=None) -> Iterator[None]:
    """One writer at a time per index folder; a second one waits (or fails at once if ``wait`` is False)."""
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise IndexUnusable(f"another `qa index` is updating {path}; wait for it to finish") from None
            if on_wait:
                on_wait()
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Writer:
    """Applies one sync to an index folder as a single atomic step. Use under :func:`writer_lock`."""

    def __init__(self, path: Path, exact_limit: int = Settings.exact_limit):
        self.path = path
        self.exact_limit = exact_limit
        path.mkdir(parents=True, exist_ok=True)
        self.con = connect(path)
        self.con.executescript(_SCHEMA)
        self.manifest, self.generation, _ = read_manifest(self.con)

    def close(self) -> None:
        self.con.close()

    def indexed(self) -> dict[str, tuple[str, str]]:
        """article id -> (hash, text_hash) of what is indexed now."""
        return {row[0]: (row[1], row[2]) for row in self.con.execute("SELECT id, hash, text_hash FROM articles")}

    def files(self) -> dict[str, tuple[int, int]]:
        """corpus file -> (mtime_ns, size) when last read, for files whose articles are all indexed as read."""
        return {r[0]: (r[1], r[2]) for r in self.con.execute("SELECT path, mtime_ns, size FROM files")}

    def record_files(self, stats: dict[str, tuple[int, int]]) -> None:
        """Replace the file table. Kept apart from the generations: losing it only means files are read again."""
        self.con.execute("BEGIN IMMEDIATE")
        try:
            self.con.execute("DELETE FROM files")
            self.con.executemany("INSERT INTO files VALUES (?, ?, ?)", [(p, *st) for p, st in stats.items()])
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    def commit(self, manifest: Manifest, removed: Iterable[str], added: list[tuple], vectors: np.ndarray,
               sentence_vectors: np.ndarray | None = None, fresh: bool = False) -> None:
        """Remove articles by id and add new ones, as the next generation, in one transaction.

        ``added`` holds (article, sentences, chunk rows) triples; ``vectors`` has one row per chunk
        row, in order, and ``sentence_vectors`` one row per sentence, in order. ``fresh`` starts the vectors
        over (a rebuild: every article is in ``removed`` and ``added``, and the manifest may change).
        """
        removed = list(removed)
        new_gen = self.generation + 1
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            if fresh:
                con.execute("DELETE FROM articles")
                index = new_vector_index(manifest.dimension)
            else:
                index = load_vectors(self.path, self.generation, manifest.dimension)
            if removed and not fresh:
                gone = _query_ids(con, "SELECT id FROM chunks WHERE article_id IN ({})", removed)
                if gone:
                    index.remove_ids(np.asarray(gone, dtype=np.int64))
                _execute_in(con, "DELETE FROM articles WHERE id IN ({})", removed)
            chunk_ids: list[int] = []
            now = time.time()
            sent_i = 0
            for article, sentences, rows in added:
                con.execute("INSERT INTO articles VALUES (?,?,?,?,?,?,?,?,?,?)",
                            (article.id, article.title, article.text, article.date, article.source,
                             article.url, article.author, article.hash, article.text_hash, now))
                blobs = [None] * len(sentences)
                if sentence_vectors is not None:
                    blobs = [sentence_vectors[sent_i + i].astype(np.float16).tobytes()
                             for i in range(len(sentences))]
                    sent_i += len(sentences)
                con.executemany("INSERT INTO sentences VALUES (?,?,?,?,?)",
                                [(article.id, i, s.start, s.end, blob)
                                 for i, (s, blob) in enumerate(zip(sentences, blobs, strict=True))])
                for row in rows:
                    cur = con.execute(
                        'INSERT INTO chunks (article_id, position, start, "end", first_sentence, last_sentence) '
                        "VALUES (?,?,?,?,?,?)",
                        (article.id, row.position, row.start, row.end, row.first_sentence, row.last_sentence))
                    chunk_ids.append(int(cur.lastrowid))
            if chunk_ids:
                index.add_with_ids(vectors, np.asarray(chunk_ids, dtype=np.int64))
            index = fit_vector_index(index, self.exact_limit)
            self._write_files(new_gen, index)
            self._set_manifest(manifest, new_gen, now)
            con.execute("COMMIT")
        except BaseException as exc:
            with suppress(sqlite3.Error):  # a failed COMMIT (a full disk) may have rolled back already
                con.execute("ROLLBACK")
            self._remove_generation(new_gen)  # give back the space now: on a full disk it is what is missing
            problem = storage_error(self.path, exc) if isinstance(exc, Exception) else None
            if problem is not None:
                raise problem from exc
            raise
        self.generation = new_gen
        self.manifest = manifest
        self._collect_garbage()

    def _write_files(self, gen: int, index: faiss.Index) -> None:
        _atomic_write_index(index, vectors_path(self.path, gen))
        rows = self.con.execute(
            "SELECT c.id, a.title || char(10) || substr(a.text, c.start + 1, c.\"end\" - c.start) "
            "FROM chunks c JOIN articles a ON a.id = c.article_id ORDER BY c.id").fetchall()
        bm25 = Bm25.build([r[0] for r in rows], [r[1] for r in rows])
        final = bm25_path(self.path, gen)
        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        bm25.save(tmp)
        fsync_tree(tmp)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        fsync_dir(self.path)

    def _set_manifest(self, m: Manifest, gen: int, now: float) -> None:
        values = {"format": m.format, "model": m.model, "dimension": m.dimension, "chunk_tokens": m.chunk_tokens,
                  "overlap": m.overlap, "generation": gen, "updated_at": now}
        self.con.executemany("INSERT OR REPLACE INTO manifest VALUES (?, ?)",
                             [(k, str(v)) for k, v in values.items()])

    def _remove_generation(self, gen: int) -> None:
        """Delete the files of an uncommitted generation ``gen`` (and their temporary versions)."""
        for entry in (vectors_path(self.path, gen), bm25_path(self.path, gen)):
            for item in (entry, entry.with_name(entry.name + ".tmp")):
                if item.is_dir():
                    shutil.rmtree(item, ignore_errors=True)
                else:
                    item.unlink(missing_ok=True)

    def _collect_garbage(self) -> None:
        """Delete files of generations older than the previous one (readers may still hold that)."""
        keep = {self.generation, self.generation - 1}
        for entry in self.path.iterdir():
            name = entry.name
            for prefix in ("vectors-", "bm25-"):
                if name.startswith(prefix):
                    number = name[len(prefix):].split(".")[0]
                    if number.isdigit() and int(number) not in keep or name.endswith(".tmp"):
                        if entry.is_dir():
                            shutil.rmtree(entry, ignore_errors=True)
                        else:
                            entry.unlink(missing_ok=True)


def set_aside(path: Path) -> None:
    """Rename a damaged index database out of the way (for --rebuild); deleted by :func:`discard_set_aside`
    once the new index has committed, so a rebuild that fails never leaves less than there was."""
    for entry in list(path.iterdir()) if path.exists() else []:
        if entry.name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm"):
            os.replace(entry, entry.with_name(entry.name + ".damaged"))


def discard_set_aside(path: Path) -> None:
    for entry in path.glob(f"{DB_NAME}*.damaged"):
        entry.unlink(missing_ok=True)


def _atomic_write_index(index: faiss.Index, final: Path) -> None:
    tmp = final.with_name(final.name + ".tmp")
    faiss.write_index(index, str(tmp))
    fsync_file(tmp)
    os.replace(tmp, final)


def _query_ids(con: sqlite3.Connection, sql: str, values: list[str]) -> list[int]:
    out: list[int] = []
    for batch in _batches(values):
        out += [r[0] for r in con.execute(sql.format(",".join("?" * len(batch))), batch)]
    return out


def _execute_in(con: sqlite3.Connection, sql: str, values: list[str]) -> None:
    for batch in _batches(values):
        con.execute(sql.format(",".join("?" * len(batch))), batch)


def _batches(values: list, size: int = 500) -> Iterator[list]:
    for i in range(0, len(values), size):
        yield values[i:i + size]

