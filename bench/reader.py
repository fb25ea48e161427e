"""What the benchmarks read from an index, through the same reader API as the retriever (qa.store), no SQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from qa.config import Settings
from qa.embedding import Embedder
from qa.encoders import load_embedder
from qa.errors import IndexUnusable
from qa.listing import MAX_PAGE_SIZE, ArticleRow
from qa.store import Passage, Status, Store, open_store


def open_index(index: str | Path) -> Store:
    return open_store(Settings(), path=index)


def index_embedder(index: str | Path) -> Embedder:
    """The model and encoder the index was built with, loaded: questions are embedded as its chunks were."""
    store = open_index(index)
    try:
        manifest = store.manifest
    finally:
        store.close()
    if manifest is None:
        raise IndexUnusable(f"the index in {index} is empty; build it first")
    return load_embedder(manifest.model, encoder=manifest.encoder)


def status(index: str | Path) -> Status:
    store = open_index(index)
    try:
        return store.status()
    finally:
        store.close()


def rows(store: Store) -> Iterator[ArticleRow]:
    """Every article's row, by id."""
    offset = 0
    while True:
        page = store.articles(sort="file", descending=False, offset=offset, limit=MAX_PAGE_SIZE)
        yield from page.rows
        offset += len(page.rows)
        if not page.rows or offset >= page.total:
            return


def chunks(store: Store) -> list[Passage]:
    """Every chunk of the index, by chunk id."""
    return sorted((p for row in rows(store) for p in store.chunks(row.id)), key=lambda p: p.chunk_id)
