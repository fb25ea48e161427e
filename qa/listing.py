"""The archive as a list: one row per article, a page at a time (the web chat's Articles view, ``/articles``).

Shared by the index (which answers ``articles()`` and ``article()``) and the web layer (which shows them), so
neither imports the other's internals.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

#: Columns a list of articles can be sorted by; the first is the default (newest first).
SORT_KEYS = ("date", "title", "source", "file", "chunks", "indexed_at")
#: Rows per page unless asked otherwise, and the most one request may ask for.
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def local_time(timestamp: float | None) -> str:
    """A Unix time as the archive and status lines show it ("2026-12-07 06:55", local time); "" for None."""
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M") if timestamp else ""


def check_sort(sort: str) -> str:
    """``sort`` if it is one of :data:`SORT_KEYS`; a ValueError that names them otherwise."""
    if sort not in SORT_KEYS:
        raise ValueError(f"cannot sort by {sort!r}; use one of {', '.join(SORT_KEYS)}")
    return sort


@dataclass(frozen=True)
class ArticleRow:
    """One article as the list shows it."""

    id: str
    title: str
    date: str | None
    source: str | None
    #: The corpus file the article came from, relative to the corpus folder (a JSONL file holds many).
    file: str | None
    chunks: int
    #: When this version of the article was indexed (Unix time).
    indexed_at: float


@dataclass(frozen=True)
class ArticleView(ArticleRow):
    """One article opened to be read: the row plus its text and the rest of its metadata."""

    text: str = ""
    url: str | None = None
    author: str | None = None


@dataclass(frozen=True)
class ArticlePage:
    """A page of the list: ``rows`` from ``offset`` on, of ``total`` articles matching the query."""

    rows: tuple[ArticleRow, ...]
    total: int
    offset: int = 0
