"""The seam between the index and everything above it: what indexing, retrieval and answering need of a store.

Modelled on Haystack's ``DocumentStore`` protocol (a contract, not a base class; filters passed as data) and
txtai's ANN classes (index/append/delete/search/count), but smaller: one article is the unit of writing, one
chunk (an article's passage) the unit of search, and a write is one commit.

Above the seam (``qa.retriever``, ``qa.indexing``, ``qa.answering.candidates``, ``qa.web``, ``bench``) code sees only
the frozen values below and the methods of small protocols, as Haystack keeps a document store apart from its retrievers
and txtai its ann / scoring / database parts: :class:`Searcher` (the search side), :class:`Catalogue` (the article list
and whole articles) and :class:`Writer` (locks and commits). :class:`Store` is a searcher and a catalogue with a status;
:class:`WritableStore` is a store and a writer. No FAISS, bm25s, tantivy or SQLite above it. A backend is one class,
chosen by name in ``qa.store.BACKENDS`` (setting ``Settings.backend``, ``QA_BACKEND``); ``tests/test_store_contract.py``
runs the same contract suite against each.

Promises every backend keeps (the contract suite checks them):

* :meth:`WritableStore.commit` applies all of a :class:`Commit` or none of it; a reader sees the state
  before it or after it, never a mix (an article updated is never found twice, or not at all).
* Chunk ids are ints, unique in the index, never reused for other text while a reader may still hold them.
* ``dense`` scores are cosine similarities (inner products of unit vectors); ``lexical`` scores are BM25
  scores, > 0, higher is better, on a scale of the backend's own (the retriever normalizes them).
* Filters (:class:`qa.filters.Filters`) mean: ``source`` equal; ``since``/``until`` inclusive days on the
  article's date (YYYY-MM-DD); undated articles kept unless ``undated`` is False (only when a date bound
  is given).
* Errors are :class:`qa.errors.QAError`s (``IndexUnusable`` and its kinds) whose message names the fix.

Changes to this file are additive; each is noted here.

* after the first version: ``ArticleWrite.check`` (backends call it before writing anything);
  ``Store.chunks`` (an article's passages, for benchmarks and checks); ``Status.sentences``.
* issue 30: the one ``Store`` split into ``Searcher``, ``Catalogue`` and ``Writer`` (same methods; ``Store`` and
  ``WritableStore`` are their unions).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from qa.chunking import Chunk, Span
from qa.corpus import Article
from qa.filters import Filters
from qa.listing import PAGE_SIZE, SORT_KEYS, ArticlePage, ArticleView, local_time

NO_FILTERS = Filters()


@dataclass(frozen=True)
class Manifest:
    """What an index was built with; vectors of other settings are never mixed into it.

    ``layout`` names the backend's on-disk (or in-server) layout; an index whose layout is not the one the
    backend writes now (:attr:`Store.layout`) is rebuilt by the next sync, with a message saying so.
    """

    model: str
    dimension: int
    chunk_tokens: int
    overlap: int
    layout: str = ""
    #: What ran the model (qa.config.ENCODERS); an index of another encoder is rebuilt by the next sync, like one
    #: of another layout (its vectors differ a little; they are never mixed). Indexes from before issue 31: torch.
    encoder: str = "torch"

    #: The fields that are settings (a difference needs the user's decision, unlike ``layout`` and ``encoder``).
    SETTINGS = ("model", "dimension", "chunk_tokens", "overlap")

    def differences(self, other: Manifest) -> list[str]:
        return [f"{name}: index has {getattr(self, name)!r}, settings say {getattr(other, name)!r}"
                for name in self.SETTINGS if getattr(self, name) != getattr(other, name)]


@dataclass(frozen=True)
class Hit:
    """One chunk found by a search, with its score (see the module docstring for the scales)."""

    chunk_id: int
    score: float


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk of an article, with where it sits in the article's text: ``text`` is
    ``article.text[start:end]``."""

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
    """One sentence of an article, with its stored embedding (unit length): ``text`` is
    ``article.text[start:end]``."""

    article_id: str
    position: int
    start: int
    end: int
    text: str
    vector: np.ndarray


@dataclass(frozen=True)
class ArticleWrite:
    """One article as written: its sentences and chunks, with their vectors (one row each, in order)."""

    article: Article
    sentences: tuple[Span, ...]
    chunks: tuple[Chunk, ...]
    #: (len(chunks), dimension) float32, unit rows.
    chunk_vectors: np.ndarray
    #: (len(sentences), dimension), unit rows; None when the answerer's sentence vectors were not computed.
    sentence_vectors: np.ndarray | None = None
    #: The corpus file the article came from, relative to the corpus folder (shown in the article list).
    file: str | None = None

    def check(self, dimension: int) -> None:
        """Raise ValueError unless there is one vector of ``dimension`` per chunk (and per sentence)."""
        shapes = [("chunk", self.chunk_vectors, len(self.chunks))]
        if self.sentence_vectors is not None:
            shapes.append(("sentence", self.sentence_vectors, len(self.sentences)))
        for what, vectors, count in shapes:
            if np.shape(vectors) != (count, dimension):
                raise ValueError(f"article {self.article.id}: {count} {what}s need {count} vectors of {dimension} "
                                 f"dimensions, not an array of shape {np.shape(vectors)}")


@dataclass(frozen=True)
class Commit:
    """One sync's change, applied as a whole by :meth:`WritableStore.commit`.

    ``remove`` holds article ids to delete, including the old version of each updated article (whose new
    version is in ``add``). ``fresh``: start over (a rebuild: everything indexed is replaced by ``add``, and
    the manifest may change).
    """

    manifest: Manifest
    remove: tuple[str, ...] = ()
    add: tuple[ArticleWrite, ...] = ()
    fresh: bool = False


@dataclass(frozen=True)
class Status:
    """What an index holds, for status lines."""

    articles: int
    chunks: int
    manifest: Manifest | None
    #: Unix time of the last commit, None for an empty index.
    updated_at: float | None
    sources: tuple[str, ...] = ()
    #: How dense search runs: "exact", or "approximate (...)" with the backend's details.
    search: str = "exact"
    #: The backend's own words on its storage (e.g. "3 vector segments, 120 deleted chunks to compact").
    storage: str = ""
    sentences: int = 0

    @property
    def model(self) -> str:
        return self.manifest.model if self.manifest else ""

    def updated(self) -> str:
        """When the index last changed, as status lines say it ("never" for an empty index)."""
        return local_time(self.updated_at) or "never"


@dataclass(frozen=True)
class CompactReport:
    """What :meth:`WritableStore.compact` did."""

    before: str
    after: str
    seconds: float = 0.0
    details: dict = field(default_factory=dict)


@runtime_checkable
class Searcher(Protocol):
    """The search side: what retrieval and answering read (:mod:`qa.retriever`, :mod:`qa.answering.candidates`).
    Safe to share between threads; each call sees the latest commit (or, inside :meth:`snapshot`, the one the
    snapshot began with)."""

    @property
    def manifest(self) -> Manifest | None:
        """The manifest of the index as committed now; None when nothing was ever committed."""
        ...

    def snapshot(self) -> AbstractContextManager[None]:
        """Reads inside the block see one commit (where the backend can promise it; say so if not)."""
        ...

    def dense(self, vector: np.ndarray, k: int, filters: Filters = NO_FILTERS) -> list[Hit]:
        """The ``k`` chunks nearest to the unit ``vector`` (cosine), best first, among those ``filters`` keep."""
        ...

    def lexical(self, query: str, k: int, filters: Filters = NO_FILTERS) -> list[Hit]:
        """The ``k`` best chunks for ``query`` by BM25 over the chunk string (:func:`qa.chunking.chunk_string`:
        title + chunk text), best first; only chunks that share a word with the query."""
        ...

    def chunk_vectors(self, chunk_ids: Sequence[int]) -> np.ndarray:
        """Each chunk's stored vector, one row per id, in order; a row of zeros for an id not held (any more)."""
        ...

    def passages(self, hits: Sequence[Hit]) -> list[Passage]:
        """The passage of each hit, in order, with the hit's score; hits whose chunk is gone are left out."""
        ...

    def sentences(self, chunk_ids: Sequence[int]) -> dict[int, list[Sentence]]:
        """The sentences of each chunk (those with stored vectors), in article order, keyed by chunk id in the order
        asked; an empty list for an id not held."""
        ...

    def sentence_vectors(self, chunk_ids: Sequence[int]) -> dict[int, np.ndarray]:
        """The vectors of :meth:`sentences` alone, read at once for all the chunks (hybrid search reads them for its
        30 best chunks): one row per sentence, in article order, keyed by chunk id; no rows for an id not held."""
        ...



@runtime_checkable
class Catalogue(Protocol):
    """The catalogue side: the archive's articles listed, counted and read whole (the web page's Articles tab, the
    assistant's "no article matches these filters", :mod:`qa.migrate`, benchmarks and checks)."""

    def chunks(self, article_id: str) -> list[Passage]:
        """Every chunk of an article as a passage (score 0), in article order; [] for an unknown id."""
        ...

    def articles(self, query: str = "", sort: str = SORT_KEYS[0], descending: bool = True, offset: int = 0,
                 limit: int = PAGE_SIZE) -> ArticlePage:
        """A page of the article list: ``query`` is a case-insensitive substring of title, source or file;
        ``sort`` one of :data:`qa.listing.SORT_KEYS` (ties broken by id). Raises ValueError for another sort."""
        ...

    def article(self, article_id: str) -> ArticleView | None:
        ...

    def sources(self) -> list[str]:
        """The distinct sources of the indexed articles, sorted."""
        ...

    def count(self, filters: Filters = NO_FILTERS) -> int:
        """How many articles ``filters`` keep."""
        ...


@runtime_checkable
class Store(Searcher, Catalogue, Protocol):
    """Reading an index: both sides, the index's status, and closing it (what :func:`qa.store.open_store`
    returns)."""

    #: The layout this code writes (see :attr:`Manifest.layout`).
    layout: str

    def status(self) -> Status:
        ...

    def close(self) -> None:
        ...


@runtime_checkable
class Writer(Protocol):
    """Writing an index: one writer at a time (:meth:`lock`), one :class:`Commit` per sync."""

    def lock(self, wait: bool = True, on_wait: Callable[[], None] | None = None) -> AbstractContextManager[None]:
        """Hold the index's one writer lock; a second writer waits (calling ``on_wait`` first) or, without
        ``wait``, fails at once with :class:`qa.errors.IndexUnusable`."""
        ...

    def indexed(self) -> dict[str, tuple[str, str]]:
        """article id -> (hash, text_hash) of what is indexed now."""
        ...

    def files(self) -> dict[str, tuple[int, int]]:
        """corpus file -> (mtime_ns, size) as recorded by :meth:`record_files`."""
        ...

    def record_files(self, stats: Mapping[str, tuple[int, int]]) -> None:
        """Replace the record of corpus files read. Kept apart from commits: losing it only means files are
        read again."""
        ...

    def prepare_rebuild(self) -> None:
        """Before a ``fresh`` commit: make an index too damaged to be replaced in one commit replaceable
        (keeping the old data until the fresh commit succeeds). A no-op where nothing is needed."""
        ...

    def commit(self, change: Commit) -> None:
        """Apply ``change`` as one commit (see the module docstring)."""
        ...

    def compact(self) -> CompactReport:
        """Merge what deltas left behind (deleted rows, small segments), as one commit like the others."""
        ...


@runtime_checkable
class WritableStore(Store, Writer, Protocol):
    """A store opened for writing (``open_store(settings, writable=True)``, for ``qa index`` and ``qa migrate``):
    it reads as a :class:`Store` and writes as a :class:`Writer`."""
