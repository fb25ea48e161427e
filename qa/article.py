"""One article, as every reader makes it: its fields checked and normalized (:func:`make_article`), its bytes
decoded (:func:`decode`), and what could not be read (:class:`Problem`, :class:`ArticleError`).

Shared by the file readers (:mod:`qa.corpus`) and the JSON readers (:mod:`qa.records`), which both depend on it
and not on each other's module.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from qa.metadata import MetadataError, field, repair

#: Files larger than this are skipped with a message rather than read into memory.
MAX_FILE_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class Article:
    """One news article: its text and what is known about it."""

    id: str
    title: str
    text: str
    date: str | None = None  # ISO 8601 (YYYY-MM-DD) when known
    source: str | None = None
    url: str | None = None
    author: str | None = None

    @property
    def hash(self) -> str:
        """Changes whenever anything that is indexed changes (text, title or metadata)."""
        payload = json.dumps([self.title, self.text, self.date, self.source, self.url, self.author])
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    @property
    def text_hash(self) -> str:
        """Same for two copies of one story, whatever their file names or metadata: finds duplicates."""
        normalized = " ".join(self.text.split()).casefold()
        return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Problem:
    """An input that was skipped (or only partly read), and why, in words a user can act on."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class ArticleError(ValueError):
    """Raised by a reader for input it cannot turn into an article."""


_BINARY = "looks like a binary file, not text; save the article as text, HTML or JSON"


def decode(raw: bytes) -> str:
    """Bytes to text: UTF-8 (with or without BOM), UTF-16 (with BOM, or plain ASCII-range text without),
    else Windows-1252/Latin-1 for legacy files. Raises :class:`ArticleError` for binary data."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16", errors="replace")
    elif b"\x00" in raw[:4096]:
        text = _decode_utf16_without_bom(raw)
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", errors="replace")
    if _looks_binary(text[:4096]):
        raise ArticleError(_BINARY)
    return text


def _decode_utf16_without_bom(raw: bytes) -> str:
    """UTF-16 text saved without a BOM has a zero byte in every other place (for Latin script)."""
    sample = raw[:4096]
    even_zeros, odd_zeros = sample[0::2].count(0), sample[1::2].count(0)
    if len(raw) % 2 == 0 and min(even_zeros, odd_zeros) == 0 and max(even_zeros, odd_zeros) >= len(sample) // 4:
        try:
            return raw.decode("utf-16-le" if odd_zeros else "utf-16-be")
        except UnicodeDecodeError:
            pass
    raise ArticleError(_BINARY)


def _looks_binary(sample: str) -> bool:
    """More than 5% control or undecodable characters (text has none beyond tabs and line breaks)."""
    if not sample:
        return False
    odd = sum(1 for ch in sample if ch == "\ufffd" or (unicodedata.category(ch) == "Cc" and not ch.isspace()))
    return odd > 0.05 * len(sample)


def make_article(article_id: str, title: object, text: str, meta: dict) -> Article:
    """Validate and normalize one article's fields; raises :class:`ArticleError` with the reason and the fix.

    Metadata fields must be single short values (:func:`qa.metadata.field`); a date that is given but cannot be
    read refuses the article, as a YAML date that does not exist always did, rather than dropping the date.
    """
    text = _normalize_text(repair(text))
    if not any(not ch.isspace() and unicodedata.category(ch) != "Cf" for ch in text):
        raise ArticleError("article has no text (empty or whitespace only)")
    date = checked(field, meta, "date")
    day = parse_date(date)
    if date and day is None:
        raise ArticleError(f"date {date[:40]!r} is not a date; write it as YYYY-MM-DD, or remove it")
    return Article(
        id=repair(article_id),
        title=checked(field, {"title": title}, "title") or fallback_title(repair(article_id)),
        text=text,
        date=day,
        source=checked(field, meta, "source"),
        url=checked(field, meta, "url"),
        author=checked(field, meta, "author"),
    )


def checked(function, *args):
    """``function(*args)``, its :class:`MetadataError` as the :class:`ArticleError` the readers report."""
    try:
        return function(*args)
    except MetadataError as exc:
        raise ArticleError(str(exc)) from None


def parse_date(value: object) -> str | None:
    """An ISO date (YYYY-MM-DD) from a date, datetime or common date string; None when unknown."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    raw = str(value).strip()
    try:
        return dt.datetime.fromisoformat(raw.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        pass
    for fmt in ("%Y/%m/%d", "%d %B %Y", "%B %d, %Y", "%b %d, %Y", "%d %b %Y", "%Y-%m"):
        try:
            return dt.datetime.strptime(raw, fmt).date().isoformat()
        except ValueError:
            continue
    return None


#: Control characters other than tab and line feed: never part of an article's words (form feeds, vertical
#: tabs and NEL become line breaks).
_CONTROLS = {i: None for i in (*range(0x00, 0x09), *range(0x0E, 0x20), *range(0x7F, 0xA0))} | {
    0x0B: "\n", 0x0C: "\n", 0x85: "\n"}


def _normalize_text(text: str) -> str:
    """Unify line endings, drop control characters and trim; character offsets are taken on this text."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_CONTROLS)
    return text.strip()


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]


def clean_value(value: object) -> str | None:
    if value is None:
        return None
    value = " ".join(str(value).split())
    return value or None


def fallback_title(article_id: str) -> str:
    """The title an article without one gets, from its file name; never quoted as a headline."""
    stem = Path(article_id.split("#")[0]).stem
    return stem.replace("-", " ").replace("_", " ").strip().capitalize() or article_id
