"""``qa migrate --to BACKEND``: copy an index to another backend without re-embedding (docs/scaling.md).

Everything is read through the storage seam (:mod:`qa.store.protocol`): each article, its chunks' offsets and
stored vectors, its sentences' offsets and vectors. The copy is written as one fresh commit, so the target
holds the whole archive or, after a failure, what it held before. The source is read under its writer lock:
no sync changes it meanwhile. A target that already holds articles is refused: replacing it could lose data.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from qa.chunking import Chunk, Span
from qa.config import Settings
from qa.corpus import Article
from qa.errors import ConfigError, IndexUnusable, QAError
from qa.listing import MAX_PAGE_SIZE
from qa.store import BACKENDS, ArticleWrite, Commit, Store, open_store


@dataclass(frozen=True)
class MigrateReport:
    articles: int
    chunks: int
    seconds: float

    def summary(self, source: str, target: str) -> str:
        return (f"copied {self.articles} articles ({self.chunks} chunks) from {source} to {target} "
                f"in {self.seconds:.1f}s; nothing was re-embedded")


def migrate(settings: Settings, to: str) -> MigrateReport:
    """Copy the index ``settings`` name (backend ``settings.backend``) to backend ``to``, same settings."""
    if to not in BACKENDS:
        raise ConfigError(f"--to {to!r} is not a backend; use one of {', '.join(BACKENDS)}")
    if to == settings.backend:
        raise ConfigError(f"the index is already on {to}; set QA_BACKEND to the backend to copy from")
    started = time.perf_counter()
    source = open_store(settings, writable=True)
    target = open_store(replace(settings, backend=to), writable=True)
    try:
        with source.lock(wait=False), target.lock(wait=False):
            manifest = source.manifest
            if manifest is None:
                raise IndexUnusable(f"the {settings.backend} index is empty; nothing to copy")
            held = target.status().articles
            if held:
                raise IndexUnusable(f"the {to} index already holds {held} articles; copy into an empty one "
                                    "(another QA_MILVUS_PREFIX, or another --index folder)")
            writes = tuple(export(source))
            target.commit(Commit(replace(manifest, layout=target.layout), add=writes, fresh=True))
            try:
                target.record_files(source.files())
            except (OSError, QAError) as exc:  # the copy is committed: it must not be reported as failed
                print(f"could not record the corpus files read ({exc}); the next `qa index` reads them again",
                      file=sys.stderr, flush=True)
    finally:
        target.close()
        source.close()
    return MigrateReport(len(writes), sum(len(w.chunks) for w in writes), time.perf_counter() - started)


def export(store: Store) -> Iterator[ArticleWrite]:
    """Every article of ``store`` as it was written: the inverse of a commit."""
    offset = 0
    while True:
        page = store.articles(sort="file", descending=False, offset=offset, limit=MAX_PAGE_SIZE)
        for row in page.rows:
            write = _article(store, row.id)
            if write is not None:
                yield write
        offset += len(page.rows)
        if not page.rows or offset >= page.total:
            return


def _article(store: Store, article_id: str) -> ArticleWrite | None:
    view = store.article(article_id)
    passages = store.chunks(article_id)
    if view is None or not passages:
        return None
    article = Article(view.id, view.title, view.text, view.date, view.source, view.url, view.author)
    by_chunk = store.sentences([p.chunk_id for p in passages])
    sentences = {s.position: s for found in by_chunk.values() for s in found}
    chunks = []
    for position, p in enumerate(passages):
        inside = [s.position for s in by_chunk.get(p.chunk_id, [])]
        chunks.append(Chunk(article_id, position, p.start, p.end, p.text, min(inside, default=0),
                            max(inside, default=0)))
    ordered = [sentences[i] for i in sorted(sentences)]
    vectors = np.stack([s.vector for s in ordered]).astype(np.float32) if ordered else None
    return ArticleWrite(article, tuple(Span(s.start, s.end) for s in ordered), tuple(chunks),
                        store.chunk_vectors([p.chunk_id for p in passages]), vectors, view.file)
