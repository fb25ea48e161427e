"""Reading articles from a folder: Markdown/text with front matter, HTML, JSON and JSON Lines.

Every reader returns :class:`Article` objects with a stable id (the file's path inside the corpus, plus
``#<record id or position>`` for JSON files) and a content hash, and reports what it could not read as a
:class:`Problem` instead of raising, so one bad file never stops the rest.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from qa.article import (  # noqa: F401 - the article's parts, importable from qa.corpus as before
    MAX_FILE_BYTES,
    Article,
    ArticleError,
    Problem,
    checked,
    clean_value,
    decode,
    fallback_title,
    first_line,
    make_article,
    parse_date,
)
from qa.metadata import FIELD_LIMITS, field, load_front_matter, repair
from qa.records import MAX_JSONL_BYTES, read_records

#: File types the corpus reader understands, by extension.
SUPPORTED_EXTENSIONS = (".md", ".markdown", ".txt", ".html", ".htm", ".json", ".jsonl")
#: Files at the top of the corpus folder that describe the folder: never read as articles.
FOLDER_NOTES = ("readme.md", "readme.txt")
_META_FIELDS = ("title", "date", "source", "url", "author")


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


_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)


def parse_text(text: str, article_id: str) -> Article:
    """Markdown or plain text, with optional YAML front matter; otherwise the first line is the title.

    A first line too long to be a title (over ``FIELD_LIMITS["title"]`` characters) is a paragraph: it stays in
    the text and the title comes from the file name.
    """
    meta: dict = {}
    match = _FRONT_MATTER.match(text)
    if match:
        meta = checked(load_front_matter, match.group(1))
        text = text[match.end():]
    body = text.strip()
    title = checked(field, meta, "title")
    if not title:
        first, _, rest = body.partition("\n")
        first = first.strip().lstrip("#").strip()
        if len(first) <= FIELD_LIMITS["title"]:
            title, body = first, rest.strip()
    return make_article(article_id, title or "", body, meta)


def parse_html(html: str, article_id: str) -> Article:
    """Main text and metadata of a web page, via trafilatura (scripts and page furniture dropped)."""
    import trafilatura
    from trafilatura.settings import Document

    doc = trafilatura.bare_extraction(html, with_metadata=True, include_comments=False,
                                      include_tables=False, favor_precision=True)
    text = (doc.text or "") if isinstance(doc, Document) else ""  # a Document (as_dict is False), or None
    if not isinstance(doc, Document) or not text.strip():
        raise ArticleError("no article text found in the HTML page")
    meta = {"date": doc.date, "url": doc.url, "author": doc.author, "source": doc.sitename}
    return make_article(article_id, clean_value(doc.title) or "", text, meta)


