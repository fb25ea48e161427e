"""Finding the passages relevant to a question: dense, lexical (BM25), or both, their scores fused.

The retriever embeds the question, asks the store (:mod:`qa.store`, the seam) for dense and lexical hits with
the filters as data, fuses them (:class:`qa.fusion.Fusion`) and reads the passages back. It knows no engine.
"""

from __future__ import annotations

import datetime as dt
import numbers
import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

import numpy as np

from qa import checks
from qa.checks import shown
from qa.config import Settings
from qa.embedding import Embedder
from qa.encoders import load_embedder
from qa.errors import BadRequest, IndexUnusable
from qa.filters import Filters
from qa.fusion import BM25_WEIGHT, SENTENCE_DEPTH, Fusion
from qa.listing import MAX_PAGE_SIZE, PAGE_SIZE, SORT_KEYS, ArticlePage, ArticleView
from qa.store import Manifest, Passage, Sentence, Status, Store, open_store
from qa.when import Period, article_day, as_of_day

__all__ = ["BM25_WEIGHT", "MODES", "Passage", "Retriever", "Sentence", "Status"]

MODES = ("hybrid", "dense", "bm25")
#: Queries are cut to this many characters: the model reads 256 tokens (about 1,000 characters) at most,
#: and a pasted essay must not make BM25 and the answerer slow.
MAX_QUERY_CHARS = 2000
#: A passage of an article dated inside the period a question's time words name ("this week") gains this much
#: (fused scores run 0-1): a preference, not a filter. Fitted on the real-news dev set (``python -m bench.realnews
#: --sweep``; BENCHMARKS.md, "Real news"): MRR@10 0.361 without either bonus, 0.394 with both.
PERIOD_BONUS = 0.06
#: ... and a passage of an article written shortly before the day asked (``as_of``) gains up to this much, halved
#: every RECENCY_HALF_LIFE days of age: news questions are about the latest reports. Fitted on the real-news dev set.
RECENCY_BONUS = 0.15
RECENCY_HALF_LIFE = 14.0
#: ... among this many of the best passages: time re-orders what the search found, it finds nothing new.
PERIOD_DEPTH = 30


class Retriever:
    """Searches one index. Safe to share between threads; follows the index as it is re-synced."""

    def __init__(self, path: str | Path | None = None, embedder: Embedder | None = None, store: Store | None = None,
                 settings: Settings | None = None):
        settings = settings or Settings()
        if path is not None:
            settings = replace(settings, index=Path(path))
        self.settings = settings
        self.path = settings.index
        self.store: Store = store or open_store(settings)
        self._lock = threading.RLock()
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        #: How dense and lexical scores are combined in hybrid mode; bench/tune.py sweeps its weight.
        self.fusion = Fusion()
        self.period_bonus = PERIOD_BONUS
        self.recency_bonus, self.recency_half_life = RECENCY_BONUS, RECENCY_HALF_LIFE
        manifest = self.store.manifest
        if manifest is None:
            raise IndexUnusable(f"the index in {self.path} is empty; run `qa index` to fill it")
        self.manifest: Manifest = manifest
        if embedder is not None and embedder.name != manifest.model:
            raise IndexUnusable(f"the index was built with model {manifest.model!r}, not {embedder.name!r}; "
                                "query it with the same model or rebuild it")
        if embedder is not None and embedder.encoder != manifest.encoder:
            raise IndexUnusable(f"the index was embedded by the {manifest.encoder} encoder, not "
                                f"{embedder.encoder}; query it with the same encoder (QA_ENCODER) or rebuild it")
        self.embedder = embedder or self._embedder(manifest)

    @classmethod
    def open(cls, path: str | Path | None = None, embedder: Embedder | None = None) -> Retriever:
        """Open the index at ``path`` (default: ``index``) with the model it was built with, default settings."""
        return cls(path, embedder)

    @property
    def bm25_weight(self) -> float:
        """BM25's weight in hybrid mode."""
        return self.fusion.weight

    @bm25_weight.setter
    def bm25_weight(self, weight: float) -> None:
        self.fusion = Fusion(weight)

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

    def word_vectors(self, words: list[str]) -> np.ndarray:
        """The embedding model's context-free vectors of single words (:meth:`Embedder.word_vectors`)."""
        return self.embedder.word_vectors(words)

    def search(self, query: str, k: int = 5, mode: str = "hybrid", source: str | None = None,
               since: str | dt.date | None = None, until: str | dt.date | None = None, undated: bool = True,
               filters: Filters | None = None, prefer: Period | None = None,
               as_of: str | dt.date | None = None) -> list[Passage]:
        """The ``k`` best passages for ``query``, best first.

        ``mode``: "hybrid" (0.7 x cosine + 0.3 x normalized BM25, of which 0.4 then moves from the chunk's cosine to
        its best sentence's: :mod:`qa.fusion`), "dense" or "bm25". ``filters`` (or the
        shortcuts ``source``, ``since``, ``until``, ``undated``) keep articles of one source and dated within
        those days (inclusive); undated articles are kept unless ``undated`` is False. A bad date raises
        :class:`qa.filters.FilterError` (a ValueError) naming the field. ``prefer``: the days a question's time
        words name (:func:`qa.when.period`); passages of articles dated inside it move up by :data:`PERIOD_BONUS`.
        ``as_of``: the day the question is asked; recent articles move up a little (:data:`RECENCY_BONUS`).
        """
        if not isinstance(mode, str) or mode not in MODES:
            raise BadRequest(f"mode {shown(mode)} is not one of {', '.join(MODES)}")
        filters = filters or Filters.parse(source, since, until, undated)
        if isinstance(k, bool) or not isinstance(k, numbers.Integral):
            raise BadRequest(f"k {shown(k)} is not a whole number; give how many passages to return, e.g. 5")
        k = int(k)
        if k < 1:
            return []
        query = checks.text(query, "query", "What ammunition was discussed?", required=True).strip()[:MAX_QUERY_CHARS]
        if not query:
            return []
        vector = self.embed_query(query) if mode != "bm25" else None
        store = self.store
        depth = max(50, 4 * k)
        with store.snapshot():
            self._follow_model()
            if mode == "dense":
                ranked = store.dense(vector, depth, filters)
            elif mode == "bm25":
                ranked = store.lexical(query, depth, filters)
            else:
                ranked = self.fusion(store.dense(vector, depth, filters), store.lexical(query, depth, filters),
                                     lambda ids: store.chunk_vectors(ids) @ vector,
                                     lambda ids: self._best_sentences(ids, vector), max(k, SENTENCE_DEPTH))
            timely = prefer is not None and self.period_bonus or as_of is not None and self.recency_bonus
            if not timely:
                return store.passages(ranked[:k])
            found = store.passages(ranked[:max(k, PERIOD_DEPTH)])
        day = as_of_day(as_of) if as_of is not None else None
        moved = [replace(p, score=p.score + self._timeliness(p.date, prefer, day)) for p in found]
        return sorted(moved, key=lambda p: -p.score)[:k]

    def _best_sentences(self, chunk_ids: list[int], vector: np.ndarray) -> np.ndarray:
        """The cosine of each chunk's stored sentence closest to ``vector``; NaN for a chunk without sentence vectors
        (:meth:`Fusion.by_sentences`)."""
        found = self.store.sentence_vectors(chunk_ids)
        return np.array([float((m @ vector).max()) if len(m := found.get(i, np.zeros((0, 1)))) else np.nan
                         for i in chunk_ids])

    def _timeliness(self, date: str | None, prefer: Period | None, day: dt.date | None) -> float:
        """What a passage of an article dated ``date`` gains for a question of ``prefer``'s days asked on ``day``."""
        bonus = self.period_bonus * prefer.holds(date) if prefer is not None else 0.0
        if day is not None and (dated := article_day(date)) is not None:
            bonus += self.recency_bonus * 0.5 ** (max((day - dated).days, 0) / self.recency_half_life)
        return bonus

    def _follow_model(self) -> None:
        """Take on the settings of a rebuilt index; queries must be embedded with the model it was built with."""
        manifest = self.store.manifest
        if manifest is None or manifest == self.manifest:
            return
        if (manifest.model, manifest.encoder) != (self.manifest.model, self.manifest.encoder):
            self.embedder = self._embedder(manifest)
            with self._lock:
                self._query_cache.clear()
        self.manifest = manifest

    def _embedder(self, manifest: Manifest) -> Embedder:
        """The model and encoder the index was built with: the question is embedded as its chunks were."""
        return load_embedder(manifest.model, self.settings.batch_size, self.settings.device, manifest.encoder,
                             self.settings.encoder_cache)

    def count(self, filters: Filters) -> int:
        """How many articles ``filters`` keep (all of them without filters)."""
        return self.store.count(filters)

    def similarities(self, query: str, passages: list[Passage]) -> np.ndarray:
        """Cosine similarity of the query to each passage's stored chunk vector (title included)."""
        return self.chunk_vectors(passages) @ self.embed_query(query) if passages else np.zeros(0, np.float32)

    def chunk_vectors(self, passages: list[Passage]) -> np.ndarray:
        """Each passage's stored chunk vector (unit length), one row per passage."""
        if not passages:
            return np.zeros((0, self.manifest.dimension), dtype=np.float32)
        return self.store.chunk_vectors([p.chunk_id for p in passages])

    def sentences(self, passages: list[Passage]) -> dict[int, list[Sentence]]:
        """The sentences of each passage (by chunk id), with their stored vectors."""
        return self.store.sentences([p.chunk_id for p in passages])

    def info(self) -> Status:
        """What the index holds, for status lines (its store's :class:`Status`)."""
        status = self.store.status()
        return status if status.manifest else replace(status, manifest=self.manifest)

    def articles(self, query: str = "", sort: str = SORT_KEYS[0], descending: bool = True, offset: int = 0,
                 limit: int = PAGE_SIZE) -> ArticlePage:
        """A page of the archive's article list (see :meth:`qa.store.protocol.Store.articles`); a value of the
        wrong type or out of range raises :class:`~qa.errors.BadRequest` naming it."""
        query = checks.text(query, "query", "Korea")
        offset = checks.whole(offset, "offset", 0, 0, checks.MAX_OFFSET)
        limit = checks.whole(limit, "limit", PAGE_SIZE, 0, MAX_PAGE_SIZE)
        if not isinstance(sort, str):
            raise BadRequest(f"cannot sort by {shown(sort)}; use one of {', '.join(SORT_KEYS)}")
        return self.store.articles(query, sort, descending, offset, limit)

    def article(self, article_id: str) -> ArticleView | None:
        return self.store.article(article_id)

    def sources(self) -> list[str]:
        return self.store.sources()

    def close(self) -> None:
        self.store.close()

