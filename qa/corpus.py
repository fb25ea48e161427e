"""Reading articles from a folder: Markdown/text with front matter, HTML, JSON and JSON Lines.

Every reader returns :class:`Article` objects with a stable id (the file's path inside the corpus, plus
``#<record id or position>`` for JSON files) and a content hash, and reports what it could not read as a
:class:`Problem` instead of raising, so one bad file never stops the rest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qa.metadata import FIELD_LIMITS, MetadataError, field, load_front_matter, repair

#: File types the corpus reader understands, by extension.
SUPPORTED_EXTENSIONS = (".md", ".markdown", ".txt", ".html", ".htm", ".json", ".jsonl")
#: Files at the top of the corpus folder that describe the folder: never read as articles.
FOLDER_NOTES = ("readme.md", "readme.txt")
#: Files larger than this are skipped with a message rather than read into memory.
MAX_FILE_BYTES = 20 * 1024 * 1024

_META_FIELDS = ("title", "date", "source", "url", "author")


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


def read_corpus(folder: str | Path, follow_links: bool = False) -> tuple[list[Article], list[Problem]]:
    """Read every supported file under ``folder`` (recursively, skipping hidden files)."""
    files, problems = list_files(folder, follow_links=follow_links)
    articles: list[Article] = []
    for rel, path in files:
        found, trouble = read_file(path, rel)
        articles.extend(found)
        problems.extend(trouble)
    return articles, problems


def list_files(folder: str | Path, *, follow_links: bool = False, exclude: Path | None = None
               ) -> tuple[list[tuple[str, Path]], list[Problem]]:
    """(id, path) of every article file under ``folder``, sorted, and the files that are not articles.

    A link to a file outside ``folder`` is skipped with a reason unless ``follow_links``; links to folders are
    never followed. ``exclude`` is a folder left out silently (the index, when it lies inside the corpus).
    """
    root = Path(folder)
    files: list[tuple[str, Path]] = []
    problems: list[Problem] = []
    if not root.is_dir():
        return [], [Problem(str(root), "corpus folder not found; create it and put articles in it")]
    real_root = root.resolve()
    skip: tuple[str, ...] | None = None  # the excluded folder's parts inside the corpus, if it is inside
    if exclude is not None and Path(exclude).resolve().is_relative_to(real_root):
        skip = Path(exclude).resolve().relative_to(real_root).parts
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        rel = "/".join(parts)
        if any(part.startswith(".") for part in parts) or skip is not None and parts[:len(skip)] == skip:
            continue
        if path.is_symlink() and (trouble := _link_trouble(path, real_root, follow_links)):
            problems.append(Problem(printable(rel), trouble))
            continue
        if path.is_dir() or rel.lower() in FOLDER_NOTES:  # a note about the folder, not an article
            continue
        if printable(rel) != rel:  # not UTF-8 (kept as surrogates by Python): no id, no page, no SQLite row
            problems.append(Problem(printable(rel), "file name is not valid UTF-8 text; rename the file"))
            continue
        if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
            problems.append(Problem(rel, f"unsupported file type {path.suffix or '(none)'!r}; "
                                         f"use one of {', '.join(SUPPORTED_EXTENSIONS)}"))
            continue
        files.append((rel, path))
    return files, problems


def _link_trouble(path: Path, root: Path, follow_links: bool) -> str | None:
    """Why the link ``path`` is not read, or None (a link to a file inside the corpus, or allowed out)."""
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None  # broken or looping: read_file reports it as not found
    if target.is_dir():
        return "a link to a folder, which is not followed; move or copy the folder into the corpus"
    if follow_links or target.is_relative_to(root):
        return None
    return (f"a link to {printable(str(target))}, outside the corpus folder; copy the file into the corpus, or "
            "allow such links with `qa index --follow-links` (QA_FOLLOW_LINKS=1)")


def printable(name: str) -> str:
    """A file name as text that can be shown and stored: bytes that are not UTF-8 written as ``\\xe9``."""
    return os.fsencode(name).decode("utf-8", "backslashreplace") if repair(name) != name else name


def read_file(path: str | Path, article_id: str | None = None, progress: Callable[[int], None] | None = None
              ) -> tuple[list[Article], list[Problem]]:
    """Read one file into articles; never raises for bad content. ``progress`` is called with the bytes read
    so far, now and then, while a large JSON Lines file is read."""
    from qa.records import MAX_JSONL_BYTES, read_records

    path = Path(path)
    article_id = article_id or path.name
    suffix = path.suffix.lower()
    try:
        if not path.exists():
            return [], [Problem(article_id, "file not found (a broken link, or deleted while reading)")]
        if not path.is_file():  # a FIFO or device would block or never end
            return [], [Problem(article_id, "not a regular file (a pipe, device or socket); save the article "
                                            "as a file")]
        if suffix == ".jsonl":  # streamed: the size limit is per record
            size = path.stat().st_size
            if size > MAX_JSONL_BYTES:
                return [], [Problem(article_id, f"file is {size / 2**30:.1f} GB, over the {MAX_JSONL_BYTES // 2**30} "
                                                "GB limit for a JSON Lines file; split it into smaller files")]
            return read_records(path, None, article_id, jsonl=True, progress=progress)
        raw = _read_limited(path)
    except OSError as exc:
        return [], [Problem(article_id, f"cannot read file: {exc.strerror or exc}")]
    except ArticleError as exc:
        return [], [Problem(article_id, str(exc))]
    except Exception as exc:  # a bug or a library's surprise must not stop the rest of the corpus
        return [], [Problem(article_id, f"could not be read ({exc.__class__.__name__}: {exc}); "
                                        "please report this file as a bug")]
    try:
        if suffix == ".json":
            return read_records(path, raw, article_id, jsonl=False)
        text = decode(raw)
        if suffix in (".html", ".htm"):
            return [parse_html(text, article_id)], []
        return [parse_text(text, article_id)], []
    except ArticleError as exc:
        return [], [Problem(article_id, str(exc))]
    except Exception as exc:  # a bug or a library's surprise must not stop the rest of the corpus
        return [], [Problem(article_id, f"could not be read ({exc.__class__.__name__}: {exc}); "
                                        "please report this file as a bug")]


def _read_limited(path: Path) -> bytes:
    """The file's bytes, refusing (without reading them) files over :data:`MAX_FILE_BYTES`."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size <= MAX_FILE_BYTES:
            raw = handle.read(size + 1)  # not read(MAX_FILE_BYTES + 1): that allocates 20 MB for every file
            if len(raw) > size:  # the file grew while it was read
                raw += handle.read(MAX_FILE_BYTES + 1 - len(raw))
            if len(raw) <= MAX_FILE_BYTES:
                return raw
            size = max(size, len(raw))
    raise ArticleError(f"file is {size / 2**20:.1f} MB, over the {MAX_FILE_BYTES // 2**20} MB limit for one "
                       "article file; split it into smaller files, or save the records as JSON Lines (.jsonl), "
                       "which has no such limit")


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


_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)


def parse_text(text: str, article_id: str) -> Article:
    """Markdown or plain text, with optional YAML front matter; otherwise the first line is the title.

    A first line too long to be a title (over ``FIELD_LIMITS["title"]`` characters) is a paragraph: it stays in
    the text and the title comes from the file name.
    """
    meta: dict = {}
    match = _FRONT_MATTER.match(text)
    if match:
        meta = _checked(load_front_matter, match.group(1))
        text = text[match.end():]
    body = text.strip()
    title = _checked(field, meta, "title")
    if not title:
        first, _, rest = body.partition("\n")
        first = first.strip().lstrip("#").strip()
        if len(first) <= FIELD_LIMITS["title"]:
            title, body = first, rest.strip()
    return make_article(article_id, title or "", body, meta)


def parse_html(html: str, article_id: str) -> Article:
    """Main text and metadata of a web page, via trafilatura (scripts and page furniture dropped)."""
    import trafilatura

    doc = trafilatura.bare_extraction(html, with_metadata=True, include_comments=False,
                                      include_tables=False, favor_precision=True)
    if doc is None or not (doc.text or "").strip():
        raise ArticleError("no article text found in the HTML page")
    meta = {"date": doc.date, "url": doc.url, "author": doc.author, "source": doc.sitename}
    return make_article(article_id, _clean(doc.title) or "", doc.text, meta)


def make_article(article_id: str, title: object, text: str, meta: dict) -> Article:
    """Validate and normalize one article's fields; raises :class:`ArticleError` with the reason and the fix.

    Metadata fields must be single short values (:func:`qa.metadata.field`); a date that is given but cannot be
    read refuses the article, as a YAML date that does not exist always did, rather than dropping the date.
    """
    text = _normalize_text(repair(text))
    if not any(not ch.isspace() and unicodedata.category(ch) != "Cf" for ch in text):
        raise ArticleError("article has no text (empty or whitespace only)")
    date = _checked(field, meta, "date")
    day = parse_date(date)
    if date and day is None:
        raise ArticleError(f"date {date[:40]!r} is not a date; write it as YYYY-MM-DD, or remove it")
    return Article(
        id=repair(article_id),
        title=_checked(field, {"title": title}, "title") or fallback_title(repair(article_id)),
        text=text,
        date=day,
        source=_checked(field, meta, "source"),
        url=_checked(field, meta, "url"),
        author=_checked(field, meta, "author"),
    )


def _checked(function, *args):
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


def _clean(value: object) -> str | None:
    if value is None:
        return None
    value = " ".join(str(value).split())
    return value or None


def fallback_title(article_id: str) -> str:
    """The title an article without one gets, from its file name; never quoted as a headline."""
    stem = Path(article_id.split("#")[0]).stem
    return stem.replace("-", " ").replace("_", " ").strip().capitalize() or article_id
