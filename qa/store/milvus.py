"""The index on Milvus (``QA_BACKEND=milvus``): the same Store as the local one, for archives and traffic that
outgrow one machine (docs/scaling.md).

One client API from an embedded file to a cluster; only ``QA_MILVUS_URI`` changes: a path ending in ``.db`` is
Milvus Lite in this process, ``http://host:19530`` a Milvus server (Lite's, Standalone, Distributed, Zilliz
Cloud). Everything a serving process needs lives in the collections (:mod:`qa.store.milvus_schema`), so several
app processes on several machines serve one archive and ``qa index`` on any of them syncs into it.

What Milvus can and cannot promise, and what this module does about it:

* Milvus's default *bounded* consistency returns deleted rows and old versions for a moment after a write;
  every call here asks for ``Strong`` consistency, so a read sees every write acknowledged before it.
* Milvus has no transaction over several rows. A commit is made one by versioned rows and a single switch
  (the manifest row; see :mod:`qa.store.milvus_schema`): readers see the old commit or the new one, never
  both or neither. A writer that dies midway leaves rows no reader sees; the next writer removes them.
* Rows removed by the last commit stay (invisible to new reads) until the next commit, so that a reader
  inside :meth:`MilvusStore.snapshot` keeps its commit as long as the local backend's readers keep theirs.
* Milvus has no compare-and-swap, so the writer lock is a lease row (host, pid, expiry) checked before and
  after it is taken: it stops a second ``qa index`` started later, not two started in the same instant.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import numpy as np

from qa.config import Settings
from qa.errors import ConfigError, IndexUnusable
from qa.filters import Filters
from qa.listing import PAGE_SIZE, SORT_KEYS, ArticlePage, ArticleRow, ArticleView, check_sort
from qa.store import milvus_schema as ms
from qa.store.milvus_io import Connection, manifest_of
from qa.store.protocol import NO_FILTERS, Commit, CompactReport, Hit, Manifest, Passage, Sentence, Status

LAYOUT = "milvus-1"
#: Vector index types for the chunks (``QA_MILVUS_INDEX``); FLAT is exact, the others approximate.
INDEX_TYPES = ("FLAT", "HNSW", "IVF_FLAT", "AUTOINDEX")
#: A writer's lease; renewed at each commit step. A crashed `qa index` holds the index this long at most.
LEASE_SECONDS = 900
_CHUNK_OUT = ["id", "akey", "article_id", "start", "end", "title", "date", "source", "url", "lexical", "gen",
              "first_sentence", "last_sentence"]
_ROW_OUT = ["article_id", "title", "date", "source", "file", "chunks", "indexed_at"]


class MilvusStore:
    """A :class:`qa.store.protocol.WritableStore` on Milvus: a ``Searcher`` and ``Catalogue`` here, its ``Writer``
    steps in :mod:`qa.store.milvus_write`. Safe to share between threads."""

    layout = LAYOUT

    def __init__(self, uri: str, token: str = "", prefix: str = "qa", timeout: float = 30.0,
                 index_type: str = "FLAT"):
        if index_type not in INDEX_TYPES:
            raise ConfigError(f"QA_MILVUS_INDEX={index_type!r} is not one of {', '.join(INDEX_TYPES)}; "
                              "FLAT searches exactly")
        self.db = Connection(uri, token, prefix, timeout)
        self.index_type = index_type
        self._pinned = threading.local()
        self._lease_token = f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"

    @classmethod
    def from_settings(cls, settings: Settings) -> MilvusStore:
        milvus = settings.milvus
        return cls(settings.milvus_target, milvus.token, milvus.prefix, milvus.timeout, milvus.index)

    # -- reading -------------------------------------------------------------------------------------------
    @property
    def manifest(self) -> Manifest | None:
        state = self._state()
        return manifest_of(state) if state else None

    def _state(self) -> dict | None:
        """The manifest row: the snapshot's own inside :meth:`snapshot`, else the latest commit's."""
        pinned = getattr(self._pinned, "state", None)
        return pinned if pinned is not None else self.db.read_state()

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads inside the block see the commit current when it began (rows a later commit removes are kept
        until the commit after that)."""
        if getattr(self._pinned, "state", None) is not None:
            yield
            return
        self._pinned.state = self.db.read_state() or {}
        try:
            yield
        finally:
            self._pinned.state = None

    def status(self) -> Status:
        state = self._state()
        if not state:
            return Status(0, 0, None, None, (), "exact", f"Milvus at {self.db.where}, empty")
        search = "exact" if self.index_type == "FLAT" else f"approximate (Milvus {self.index_type})"
        return Status(state["articles"], state["chunks"], manifest_of(state), state["updated_at"],
                      tuple(state["sources"]), search,
                      f"Milvus at {self.db.where}, collections {self.db.prefix}_{state['space']}_*, "
                      f"commit {state['generation']}", state.get("sentences", 0))

    def _where(self, state: dict, filters: Filters, extra: str = "") -> str:
        return " and ".join(p for p in (ms.visible(state["generation"]), ms.expression(filters), extra) if p)

    def dense(self, vector: np.ndarray, k: int, filters: Filters = NO_FILTERS) -> list[Hit]:
        state = self._state()
        if not state or k < 1:
            return []
        found = self.db.search(self.db.name(state, "chunks"), [np.asarray(vector, np.float32).tolist()],
                               "vector", self._where(state, filters), k, {"metric_type": "IP"})
        return [Hit(int(h["id"]), float(h["distance"])) for h in found]

    def lexical(self, query: str, k: int, filters: Filters = NO_FILTERS) -> list[Hit]:
        state = self._state()
        if not state or k < 1 or not any(c.isalnum() for c in query):
            return []
        found = self.db.search(self.db.name(state, "chunks"), [query], "sparse", self._where(state, filters), k,
                               {"metric_type": "BM25"})
        if not found and getattr(self._pinned, "state", None) is None:
            # Milvus's C++ core (2.5) found no BM25 hit for a word of a just-rewritten article while a commit
            # switched (2 searches in ~100 around a commit); a search that saw a commit go by is run again.
            latest = self.db.read_state()
            if latest and latest["generation"] != state["generation"]:
                state = latest
                found = self.db.search(self.db.name(state, "chunks"), [query], "sparse",
                                       self._where(state, filters), k, {"metric_type": "BM25"})
        # Milvus Lite 3 reports BM25 as a negative distance (lower is better); the C++ core as a positive score.
        hits = [Hit(int(h["id"]), abs(float(h["distance"]))) for h in found]
        return sorted((h for h in hits if h.score > 0), key=lambda h: -h.score)

    def chunk_vectors(self, chunk_ids: Sequence[int]) -> np.ndarray:
        state = self._state()
        dimension = state["dimension"] if state else 0
        out = np.zeros((len(chunk_ids), dimension), dtype=np.float32)
        if state and len(chunk_ids):
            rows = self.db.chunks(self.db.name(state, "chunks"), chunk_ids, ["vector"])
            for i, chunk_id in enumerate(chunk_ids):
                if int(chunk_id) in rows:
                    out[i] = rows[int(chunk_id)]["vector"]
        return out

    def passages(self, hits: Sequence[Hit]) -> list[Passage]:
        state = self._state()
        if not state or not hits:
            return []
        rows = self.db.chunks(self.db.name(state, "chunks"), [h.chunk_id for h in hits], _CHUNK_OUT)
        out = []
        for hit in hits:
            r = rows.get(hit.chunk_id)
            if r is not None:
                out.append(Passage(hit.score, r["title"], r["date"] or None, r["source"] or None, r["url"] or None,
                                   r["article_id"], hit.chunk_id, r["start"], r["end"],
                                   ms.passage_text(r["title"], r["lexical"])))
        return out

    def sentences(self, chunk_ids: Sequence[int]) -> dict[int, list[Sentence]]:
        found = self._sentence_rows(chunk_ids, ["start", "end", "text", "vector"])
        return {i: [Sentence(r["article_id"], r["position"], r["start"], r["end"], r["text"],
                             np.asarray(r["vector"], dtype=np.float32)) for r in rows] for i, rows in found.items()}

    def sentence_vectors(self, chunk_ids: Sequence[int]) -> dict[int, np.ndarray]:
        state = self._state()
        dimension = manifest_of(state).dimension if state else 0
        return {i: np.asarray([r["vector"] for r in rows], dtype=np.float32).reshape(-1, dimension)
                for i, rows in self._sentence_rows(chunk_ids, ["vector"]).items()}

    def _sentence_rows(self, chunk_ids: Sequence[int], fields: list[str]) -> dict[int, list[dict]]:
        """Each chunk's sentence rows (``fields`` with article_id and position), in article order: one query per
        100 chunks, not one per chunk."""
        state = self._state()
        out: dict[int, list[dict]] = {int(c): [] for c in chunk_ids}
        if not state or not chunk_ids:
            return out
        chunks = list(self.db.chunks(self.db.name(state, "chunks"), chunk_ids,
                                     ["akey", "article_id", "gen", "first_sentence", "last_sentence"]).items())
        for start in range(0, len(chunks), 100):
            part = chunks[start:start + 100]
            where = ms.any_of([f"akey == {c['akey']} and gen == {c['gen']} and position >= {c['first_sentence']} "
                               f"and position <= {c['last_sentence']}" for _, c in part])
            rows = self.db.query(self.db.name(state, "sentences"), where,
                                 ["akey", "gen", "article_id", "position", *fields])
            by_key = {(r["akey"], r["gen"], r["article_id"], r["position"]): r for r in rows}  # a row and its copy
            for chunk_id, c in part:
                out[chunk_id] = [by_key[key] for p in range(c["first_sentence"], c["last_sentence"] + 1)
                                 if (key := (c["akey"], c["gen"], c["article_id"], p)) in by_key]
        return out

    def count(self, filters: Filters = NO_FILTERS) -> int:
        state = self._state()
        if not state:
            return 0
        if not filters.active:
            return state["articles"]
        # Counted here, not with count(*): a row being retired is there twice for a moment (milvus_write._rewrite).
        return len({r["akey"] for r in self._rows(state, "part == 0", ["akey"], filters)})

    def _rows(self, state: dict, condition: str, fields: list[str], filters: Filters = NO_FILTERS
              ) -> Iterator[dict]:
        """Visible articles rows, each (article, part) once."""
        seen = set()
        for row in self.db.scan(self.db.name(state, "articles"), self._where(state, filters, condition),
                                [*fields, "akey", "gen", "part"]):
            if ms.identity("articles", row) not in seen:
                seen.add(ms.identity("articles", row))
                yield row

    def articles(self, query: str = "", sort: str = SORT_KEYS[0], descending: bool = True, offset: int = 0,
                 limit: int = PAGE_SIZE) -> ArticlePage:
        """The article list, sorted here: Milvus queries have no ORDER BY, so each page reads the list's
        columns of every article (about 0.3 s per 100,000 articles; docs/scaling.md)."""
        check_sort(sort)
        state = self._state()
        if not state:
            return ArticlePage((), 0, offset)
        needle = query.casefold().strip()
        rows = [ArticleRow(r["article_id"], r["title"], r["date"] or None, r["source"] or None, r["file"] or None,
                           r["chunks"], r["indexed_at"]) for r in self._rows(state, "part == 0", _ROW_OUT)]
        if needle:
            rows = [r for r in rows if any(needle in (v or "").casefold() for v in (r.title, r.source, r.file))]
        rows.sort(key=lambda r: r.id)
        present = [r for r in rows if getattr(r, sort) is not None]
        present.sort(key=lambda r: getattr(r, sort), reverse=descending)
        ordered = present + [r for r in rows if getattr(r, sort) is None]
        return ArticlePage(tuple(ordered[offset:offset + limit]), len(ordered), offset)

    def article(self, article_id: str) -> ArticleView | None:
        state = self._state()
        if not state:
            return None
        parts = sorted((r for r in self._rows(state, f"akey == {ms.key(article_id)}",
                                              [*_ROW_OUT, "part", "text", "url", "author"])
                        if r["article_id"] == article_id), key=lambda r: r["part"])
        if not parts:
            return None
        r = parts[0]
        return ArticleView(article_id, r["title"], r["date"] or None, r["source"] or None, r["file"] or None,
                           r["chunks"], r["indexed_at"], "".join(p["text"] for p in parts), r["url"] or None,
                           r["author"] or None)

    def chunks(self, article_id: str) -> list[Passage]:
        state = self._state()
        if not state:
            return []
        where = self._where(state, NO_FILTERS, f"akey == {ms.key(article_id)}")
        one = {r["position"]: r["id"] for r in self.db.scan(self.db.name(state, "chunks"), where,
                                                            ["article_id", "position"])
               if r["article_id"] == article_id}  # a row and its copy share a position
        return self.passages([Hit(one[p], 0.0) for p in sorted(one)])

    def sources(self) -> list[str]:
        state = self._state()
        return list(state["sources"]) if state else []

    def close(self) -> None:
        self.db.close()

    # -- writing -------------------------------------------------------------------------------------------
    @contextmanager
    def lock(self, wait: bool = True, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
        waited = False
        while True:
            holder = self.db.take_lease(self._lease_token, LEASE_SECONDS)
            if holder is None:
                break
            if not wait:
                raise IndexUnusable(f"another `qa index` ({holder}) is updating the Milvus index at "
                                    f"{self.db.where}; wait for it to finish (a crashed one's lease ends "
                                    f"{LEASE_SECONDS // 60} minutes after its last step)")
            if on_wait and not waited:
                on_wait()
            waited = True
            time.sleep(1.0)
        try:
            yield
        finally:
            self.db.drop_lease(self._lease_token)

    def indexed(self) -> dict[str, tuple[str, str]]:
        state = self.db.read_state()
        if not state:
            return {}
        return {r["article_id"]: (r["hash"], r["text_hash"])
                for r in self._rows(state, "part == 0", ["article_id", "hash", "text_hash"])}

    def files(self) -> dict[str, tuple[int, int]]:
        return {path: (int(v[0]), int(v[1])) for path, v in self.db.meta_items("file").items()}

    def record_files(self, stats: Mapping[str, tuple[int, int]]) -> None:
        self.db.replace_meta("file", {path: list(st) for path, st in stats.items()})

    def prepare_rebuild(self) -> None:
        """Nothing to set aside: a fresh commit fills a new space and switches to it in one step."""

    def commit(self, change: Commit) -> None:
        from qa.store.milvus_write import apply_commit

        for write in change.add:  # before anything is written: a bad shape changes nothing
            write.check(change.manifest.dimension)
        self.db.renew_lease(self._lease_token, LEASE_SECONDS)
        apply_commit(self.db, change, self.index_type, self.layout)

    def compact(self) -> CompactReport:
        from qa.store.milvus_write import compact

        return compact(self.db)
