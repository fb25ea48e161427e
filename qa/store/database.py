"""The local index's metadata database (SQLite): the schema, and every query the local backend runs on it.

One file, ``qa.sqlite``, holds the articles, their chunks (offsets) and sentences (offsets, vectors), the
manifest (settings, generation, the vector segments and lexical folder in use) and the bookkeeping of deltas
(vectors and lexical documents of deleted chunks, until compaction or the next commit removes them). Its
transactions are the local backend's commits: whatever another file holds counts only once a row here says so.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from pathlib import Path

import numpy as np

from qa.errors import IndexUnusable
from qa.files import storage_error, storage_trouble, wal_has_data
from qa.filters import Filters
from qa.listing import MAX_PAGE_SIZE, SORT_KEYS, ArticlePage, ArticleRow, ArticleView, check_sort
from qa.store import segments as seg
from qa.store.protocol import ArticleWrite, Hit, Manifest, Passage, Sentence

DB_NAME = "qa.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS manifest (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, text TEXT NOT NULL, date TEXT, source TEXT, url TEXT,
    author TEXT, hash TEXT NOT NULL, text_hash TEXT NOT NULL, indexed_at REAL NOT NULL, file TEXT,
    chunks INTEGER NOT NULL DEFAULT 0);
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
-- Vector segment files in use, oldest first: the range of chunk ids each holds, and its vectors, live or not.
-- Chunks deleted whose vectors are still in a segment (until it is rewritten), and whose lexical documents may
-- still be in the lexical index (until just after the commit that deleted them).
CREATE TABLE IF NOT EXISTS segments (name TEXT PRIMARY KEY, position INTEGER NOT NULL, low INTEGER NOT NULL,
    high INTEGER NOT NULL, size INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dead_vectors (id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS dead_lexical (id INTEGER PRIMARY KEY);
"""

#: Manifest keys that are not :class:`Manifest` fields.
GENERATION, UPDATED_AT, CHUNKS, LEXICAL = "generation", "updated_at", "chunks", "lexical"


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


def read_meta(con: sqlite3.Connection, path: Path) -> dict[str, str]:
    """The manifest table as a dict; a database that cannot be read raises with the fix."""
    try:
        return dict(con.execute("SELECT key, value FROM manifest").fetchall())
    except sqlite3.DatabaseError as exc:
        if _no_tables(con):  # a writer stopped (a full disk) before it made its tables: an empty index, not damage
            return {}
        raise storage_error(path, exc) or IndexUnusable(
            f"the index database in {path} is damaged or not an index ({exc}); run `qa index --rebuild` to build "
            "it again") from None


def _no_tables(con: sqlite3.Connection) -> bool:
    try:
        return con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    except sqlite3.Error:
        return False


def manifest_of(meta: Mapping[str, str]) -> Manifest | None:
    if "model" not in meta:
        return None
    try:
        return Manifest(model=meta["model"], dimension=int(meta["dimension"]), chunk_tokens=int(meta["chunk_tokens"]),
                        overlap=int(meta["overlap"]), layout=meta.get("layout", f"format {meta.get('format', 0)}"),
                        encoder=meta.get("encoder", "torch"))
    except (KeyError, ValueError):
        raise IndexUnusable("the index manifest is incomplete; run `qa index --rebuild`") from None


def write_meta(con: sqlite3.Connection, manifest: Manifest, **values: object) -> None:
    fields = {name: getattr(manifest, name) for name in (*Manifest.SETTINGS, "layout", "encoder")}
    con.execute("DELETE FROM manifest WHERE key = 'format'")  # the old layout's marker
    con.executemany("INSERT OR REPLACE INTO manifest VALUES (?, ?)",
                    [(k, str(v)) for k, v in {**fields, **values}.items()])


def where(filters: Filters) -> tuple[str, list[str]]:
    """The SQL condition on ``articles a`` for ``filters`` ("" for none), and its arguments."""
    conditions, args, dated = [], [], []
    if filters.source:
        conditions.append("a.source = ?")
        args.append(filters.source)
    if filters.since:
        dated.append("a.date >= ?")
        args.append(filters.since)
    if filters.until:
        dated.append("a.date <= ?")
        args.append(filters.until)
    if dated:
        condition = " AND ".join(dated)
        conditions.append(f"({condition} OR a.date IS NULL)" if filters.undated else condition)
    return " AND ".join(conditions), args


def allowed_chunks(con: sqlite3.Connection, filters: Filters) -> np.ndarray | None:
    """The ids of the chunks ``filters`` keep, None without filters."""
    condition, args = where(filters)
    if not condition:
        return None
    rows = con.execute(f"SELECT c.id FROM chunks c JOIN articles a ON a.id = c.article_id WHERE {condition}", args)
    return np.fromiter((r[0] for r in rows), dtype=np.int64)


def count_articles(con: sqlite3.Connection, filters: Filters) -> int:
    condition, args = where(filters)
    return con.execute(f"SELECT count(*) FROM articles a WHERE {condition or '1'}", args).fetchone()[0]


def live(con: sqlite3.Connection, ids: Sequence[int]) -> set[int]:
    """Those of ``ids`` that are chunks of the committed index."""
    out: set[int] = set()
    for batch in batches(list(ids)):
        out.update(r[0] for r in con.execute(f"SELECT id FROM chunks WHERE id IN ({','.join('?' * len(batch))})",
                                             batch))
    return out


def passages(con: sqlite3.Connection, hits: Sequence[Hit]) -> list[Passage]:
    ids = [h.chunk_id for h in hits]
    by_id: dict[int, tuple] = {}
    for batch in batches(ids):
        for row in con.execute(
                "SELECT c.id, a.title, a.date, a.source, a.url, a.id, c.start, c.\"end\", "
                "substr(a.text, c.start + 1, c.\"end\" - c.start) FROM chunks c JOIN articles a ON a.id = c.article_id "
                f"WHERE c.id IN ({','.join('?' * len(batch))})", batch):
            by_id[row[0]] = row
    return [_passage(h.score, by_id[h.chunk_id]) for h in hits if h.chunk_id in by_id]


def article_chunks(con: sqlite3.Connection, article_id: str) -> list[Passage]:
    rows = con.execute("SELECT c.id, a.title, a.date, a.source, a.url, a.id, c.start, c.\"end\", "
                       "substr(a.text, c.start + 1, c.\"end\" - c.start) FROM chunks c JOIN articles a "
                       "ON a.id = c.article_id WHERE a.id = ? ORDER BY c.position", (article_id,)).fetchall()
    return [_passage(0.0, r) for r in rows]


def _passage(score: float, row: tuple) -> Passage:
    """A passage from a row of (chunk id, title, date, source, url, article id, start, end, text)."""
    chunk_id, title, date, source, url, article_id, start, end, text = row
    return Passage(score, title, date, source, url, article_id, chunk_id, start, end, text)


def _sentence_rows(con: sqlite3.Connection, chunk_ids: list[int], columns: str) -> Iterator[list[tuple]]:
    """``columns`` of the sentences (``s``) of each chunk (``c``) that have a vector, ordered by chunk and position:
    one query, and one list of rows, per 500 chunks (well under SQLite's limit on parameters)."""
    for first in range(0, len(chunk_ids), 500):
        part = chunk_ids[first:first + 500]
        yield con.execute(
            f"SELECT c.id, {columns} FROM chunks c JOIN sentences s ON s.article_id = c.article_id "
            "AND s.position BETWEEN c.first_sentence AND c.last_sentence "
            f"WHERE c.id IN ({','.join('?' * len(part))}) AND s.vector IS NOT NULL ORDER BY c.id, s.position",
            part).fetchall()


def sentences(con: sqlite3.Connection, chunk_ids: Sequence[int]) -> dict[int, list[Sentence]]:
    """The sentences of each chunk, with their stored vectors. Each article's text is read once and sliced: SQL's
    substr read it again for every sentence, and a query per chunk made eight for every answer."""
    ids = list(dict.fromkeys(int(i) for i in chunk_ids))
    out: dict[int, list[Sentence]] = {i: [] for i in ids}
    for rows in _sentence_rows(con, ids, "c.article_id, s.position, s.start, s.\"end\", s.vector"):
        articles = sorted({row[1] for row in rows})
        texts = dict(con.execute(f"SELECT id, text FROM articles WHERE id IN ({','.join('?' * len(articles))})",
                                 articles)) if articles else {}
        for chunk_id, article, position, start, end, blob in rows:
            out[chunk_id].append(Sentence(article, position, start, end, texts[article][start:end],
                                          np.frombuffer(blob, dtype=np.float16).astype(np.float32)))
    return out


def sentence_vectors(con: sqlite3.Connection, chunk_ids: Sequence[int], dimension: int) -> dict[int, np.ndarray]:
    """:func:`sentences`' vectors alone: 0.2 ms for 30 chunks of real news, where reading their sentences' text too
    took 3.9 ms."""
    ids = list(dict.fromkeys(int(i) for i in chunk_ids))
    found: dict[int, list[np.ndarray]] = {i: [] for i in ids}
    for rows in _sentence_rows(con, ids, "s.vector"):
        for chunk_id, blob in rows:
            found[chunk_id].append(np.frombuffer(blob, dtype=np.float16))
    return {i: np.stack(v).astype(np.float32) if v else np.zeros((0, dimension), np.float32) for i, v in found.items()}


_ROW = "id, title, date, source, file, chunks, indexed_at"
_SORT_SQL = {"date": "date", "title": "title COLLATE NOCASE", "source": "source COLLATE NOCASE",
             "file": "file", "chunks": "chunks", "indexed_at": "indexed_at"}
assert set(_SORT_SQL) == set(SORT_KEYS), "every sort key of qa.listing has its SQL here"


def article_page(con: sqlite3.Connection, query: str, sort: str, descending: bool, offset: int,
                 limit: int) -> ArticlePage:
    check_sort(sort)
    offset, limit = max(0, int(offset)), max(0, min(int(limit), MAX_PAGE_SIZE))
    condition, args = "1", []
    if query.strip():
        needle = "%" + query.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        condition = ("(lower(title) LIKE ? ESCAPE '\\' OR lower(coalesce(source, '')) LIKE ? ESCAPE '\\' "
                     "OR lower(coalesce(file, id)) LIKE ? ESCAPE '\\')")
        args = [needle] * 3
    order = "DESC" if descending else "ASC"
    # Articles without a value sort last either way (an undated article is neither new nor old).
    column = _SORT_SQL[sort]
    total = con.execute(f"SELECT count(*) FROM articles WHERE {condition}", args).fetchone()[0]
    rows = con.execute(f"SELECT {_ROW} FROM articles WHERE {condition} ORDER BY {sort} IS NULL, {column} {order}, "
                       f"id {order} LIMIT ? OFFSET ?", [*args, limit, offset]).fetchall()
    return ArticlePage(tuple(ArticleRow(*r) for r in rows), total, offset)


def article(con: sqlite3.Connection, article_id: str) -> ArticleView | None:
    row = con.execute(f"SELECT {_ROW}, text, url, author FROM articles WHERE id = ?", (article_id,)).fetchone()
    return ArticleView(*row) if row else None


def sources(con: sqlite3.Connection) -> list[str]:
    return [r[0] for r in con.execute("SELECT DISTINCT source FROM articles WHERE source IS NOT NULL ORDER BY source")]


def indexed(con: sqlite3.Connection) -> dict[str, tuple[str, str]]:
    return {row[0]: (row[1], row[2]) for row in con.execute("SELECT id, hash, text_hash FROM articles")}


def files(con: sqlite3.Connection) -> dict[str, tuple[int, int]]:
    return {r[0]: (r[1], r[2]) for r in con.execute("SELECT path, mtime_ns, size FROM files")}


def record_files(con: sqlite3.Connection, stats: Mapping[str, tuple[int, int]]) -> None:
    con.execute("BEGIN IMMEDIATE")
    try:
        con.execute("DELETE FROM files")
        con.executemany("INSERT INTO files VALUES (?, ?, ?)", [(p, *st) for p, st in stats.items()])
        con.execute("COMMIT")
    except BaseException:
        with suppress(sqlite3.Error):  # SQLite may have rolled back already (a full disk): keep the first error
            con.execute("ROLLBACK")
        raise


def delete_articles(con: sqlite3.Connection, ids: Iterable[str]) -> list[int]:
    """Delete articles (their chunks and sentences go with them); the ids of the chunks deleted."""
    ids = list(ids)
    gone: list[int] = []
    for batch in batches(ids):
        marks = ",".join("?" * len(batch))
        gone += [r[0] for r in con.execute(f"SELECT id FROM chunks WHERE article_id IN ({marks})", batch)]
        con.execute(f"DELETE FROM articles WHERE id IN ({marks})", batch)
    return gone


def insert_article(con: sqlite3.Connection, write: ArticleWrite, now: float | None = None) -> list[int]:
    """Insert an article, its sentences and chunks; the new chunk ids, in chunk order."""
    a = write.article
    con.execute("INSERT INTO articles VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (a.id, a.title, a.text, a.date, a.source, a.url, a.author, a.hash, a.text_hash,
                 time.time() if now is None else now, write.file, len(write.chunks)))
    vectors = write.sentence_vectors
    con.executemany("INSERT INTO sentences VALUES (?,?,?,?,?)",
                    [(a.id, i, s.start, s.end, None if vectors is None else vectors[i].astype(np.float16).tobytes())
                     for i, s in enumerate(write.sentences)])
    ids = []
    for c in write.chunks:
        cur = con.execute('INSERT INTO chunks (article_id, position, start, "end", first_sentence, last_sentence) '
                          "VALUES (?,?,?,?,?,?)", (a.id, c.position, c.start, c.end, c.first_sentence,
                                                   c.last_sentence))
        assert cur.lastrowid is not None  # set by every INSERT
        ids.append(cur.lastrowid)
    return ids


def next_chunk_id(con: sqlite3.Connection) -> int:
    """The id the next chunk will get: ids are never reused, even those of a commit that did not happen (the
    vector and lexical files of an interrupted commit may still hold them)."""
    row = con.execute("SELECT seq FROM sqlite_sequence WHERE name = 'chunks'").fetchone()
    return (row[0] if row else 0) + 1


def set_aside(path: Path) -> None:
    """Rename a damaged index database out of the way (for --rebuild); deleted by :func:`discard_set_aside`
    once the new index has committed, so a rebuild that fails never leaves less than there was."""
    for entry in list(path.iterdir()) if path.exists() else []:
        if entry.name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm"):
            entry.replace(entry.with_name(entry.name + ".damaged"))


def discard_set_aside(path: Path) -> None:
    for entry in path.glob(f"{DB_NAME}*.damaged"):
        entry.unlink(missing_ok=True)


def readable(path: Path) -> bool:
    """Whether an existing index's database can be opened and read (a rebuild can then replace it atomically)."""
    if not (path / DB_NAME).exists():
        return True
    try:
        con = connect(path, readonly=True)
        try:
            read_meta(con, path)
            # Every page, not just the manifest's: deleting the old rows must not hit a damaged one.
            verdict = con.execute("PRAGMA quick_check").fetchall()
        finally:
            con.close()
        return verdict == [("ok",)]
    except Exception as exc:
        problem = storage_error(path, exc) if isinstance(exc, OSError | sqlite3.Error | IndexUnusable) else None
        if problem is not None:
            raise problem from None  # a full or read-only disk: a rebuild could not be written
        return False


def batches(values: list, size: int = 500) -> Iterator[list]:
    for i in range(0, len(values), size):
        yield values[i:i + size]


def segment_infos(con: sqlite3.Connection) -> list[seg.SegmentInfo]:
    """The vector segments the database lists, in order, with their dead vectors counted."""
    rows = con.execute("SELECT s.name, s.low, s.high, s.size, (SELECT count(*) FROM dead_vectors d "
                       "WHERE d.id BETWEEN s.low AND s.high) FROM segments s ORDER BY s.position").fetchall()
    return [seg.SegmentInfo(*row) for row in rows]
