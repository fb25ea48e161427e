"""JSON and JSON Lines files: one article per record, read as a stream for JSON Lines.

A JSON Lines export of a news archive is often hundreds of megabytes, so a ``.jsonl`` file is read a line at a
time: the size limit applies to each record (:data:`MAX_RECORD_BYTES`), not to the file, and memory holds the
articles read, never the whole file. A file's bad records are reported one by one when there are few; beyond
:data:`LISTED_PROBLEMS` they are summarised per reason with a count and the first line numbers (2 million
``{}`` lines once took 1.6 GB and printed 2 million "skipped" lines).
"""

from __future__ import annotations

import codecs
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

from qa.article import MAX_FILE_BYTES, Article, ArticleError, Problem, decode, first_line, make_article
from qa.metadata import FIELD_LIMITS, repair

#: Largest record of a JSON Lines file: the limit for one article file applies to each article.
MAX_RECORD_BYTES = MAX_FILE_BYTES
#: Largest JSON Lines file. A sync holds the text of the articles it reads in memory until they are indexed,
#: so this bounds that memory (about the file's size: Python keeps ASCII text at a byte per character).
MAX_JSONL_BYTES = 2 * 2**30
#: Bad records of one file listed one by one; more are summarised per reason.
LISTED_PROBLEMS = 5
_REASONS_KEPT = 10  # distinct reasons summarised per file; the rest are counted together

_TEXT_FIELDS = ("text", "body", "content")


def read_records(path: Path, raw: bytes | None, file_id: str, *, jsonl: bool,
                 progress: Callable[[int], None] | None = None) -> tuple[list[Article], list[Problem]]:
    """The articles of a ``.json`` file (``raw``, its bytes) or a ``.jsonl`` file (streamed from ``path``)."""
    problems = _Problems(file_id, "line" if jsonl else "record")
    if jsonl:
        records: Iterator[tuple[int, object]] = _jsonl_records(path, problems, progress)
    else:
        records = _json_records(decode(raw or b""))
    articles: list[Article] = []
    seen: set[str] = set()
    for position, record in records:
        if not isinstance(record, dict):
            problems.add(position, "record is not a JSON object")
            continue
        body = next((record[f] for f in _TEXT_FIELDS if isinstance(record.get(f), str) and record[f].strip()), None)
        if body is None:
            problems.add(position, "record has no 'text' (or 'body'/'content') string")
            continue
        record_id = _record_id(file_id, record.get("id"), str(position), seen)
        seen.add(record_id)
        try:
            articles.append(make_article(record_id, record.get("title"), body, record))
        except ArticleError as exc:
            problems.add(position, str(exc))
    if not articles and not problems.count:
        raise ArticleError("no records in the file (it is empty); add one JSON object per article")
    return articles, problems.report()


def _json_records(text: str) -> Iterator[tuple[int, object]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArticleError(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:  # a number too long, or nesting too deep
        raise ArticleError(f"JSON that cannot be read: {first_line(exc)}") from None
    yield from enumerate(data if isinstance(data, list) else [data])


def _jsonl_records(path: Path, problems: _Problems, progress: Callable[[int], None] | None
                   ) -> Iterator[tuple[int, object]]:
    """(line number, record) of each non-blank line, read one line at a time."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
        decode(head)  # raises for a binary file, as for any other article file
        handle.seek(0)
        done = reported = 0
        for lineno, line, size in _lines(handle, head):
            done += size
            if progress is not None and done - reported >= 2**20:
                progress(done)  # the bytes read so far
                reported = done
            if line is None:
                problems.add(lineno, f"record is over the {MAX_RECORD_BYTES // 2**20} MB limit for one article; "
                                     "split it")
                continue
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                problems.add(lineno, f"invalid JSON: {exc.msg}", f" (column {exc.colno})")
            except (ValueError, RecursionError) as exc:
                problems.add(lineno, f"JSON that cannot be read: {first_line(exc)}")
        if progress is not None and done > reported:
            progress(done)


def _lines(handle: io.BufferedReader, head: bytes) -> Iterator[tuple[int, str | None, int]]:
    """(line number, text or None when over the record limit, bytes) of each line of a UTF-8 or UTF-16 file."""
    utf16 = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in head
    if utf16:
        encoding = "utf-16" if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else (
            "utf-16-le" if head[1::2].count(0) > head[0::2].count(0) else "utf-16-be")
        text = io.TextIOWrapper(handle, encoding=encoding, errors="replace", newline="")
        lineno = 0
        while line := text.readline(MAX_RECORD_BYTES // 2 + 1):
            lineno += 1
            if len(line) > MAX_RECORD_BYTES // 2 and not line.endswith("\n"):
                while (rest := text.readline(2**20)) and not rest.endswith("\n"):
                    pass
                yield lineno, None, 2 * len(line)
                continue
            yield lineno, line, 2 * len(line)
        return
    lineno = 0
    while raw := handle.readline(MAX_RECORD_BYTES + 1):
        lineno += 1
        size = len(raw)
        if size > MAX_RECORD_BYTES and not raw.endswith(b"\n"):
            while (tail := handle.readline(2**20)) and not tail.endswith(b"\n"):
                size += len(tail)
            yield lineno, None, size + len(tail)
            continue
        if lineno == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            line = raw.decode("cp1252", errors="replace")  # a legacy export, as decode() reads whole files
        yield lineno, line, size


def _record_id(file_id: str, key: object, position: str, seen: set[str]) -> str:
    """``file#id``, or ``file#position`` without a usable id or when the id was already used in this file.

    A position can equal another record's id ("1"), so a last ``-2``, ``-3``... suffix keeps ids unique:
    two articles with one id would make the index refuse the whole sync. An id that is not one short value
    (a list, a mapping, thousands of characters) is not used.
    """
    usable = isinstance(key, str | int) and not isinstance(key, bool) and 0 < len(str(key)) <= FIELD_LIMITS["id"]
    record_id = repair(f"{file_id}#{key if usable else position}")
    if record_id in seen:
        record_id = f"{file_id}#{position}"
    base, n = record_id, 2
    while record_id in seen:
        record_id, n = f"{base}-{n}", n + 1
    return record_id


class _Problems:
    """A file's bad records: each one while they are few, then a count and the first places per reason."""

    def __init__(self, file_id: str, unit: str):
        self.file_id, self.unit = file_id, unit
        self.count = 0
        self.listed: list[Problem] = []
        self.by_reason: dict[str, list] = {}  # reason -> [count, first few places]

    def add(self, position: int, reason: str, detail: str = "") -> None:
        self.count += 1
        if len(self.listed) < LISTED_PROBLEMS:
            self.listed.append(Problem(f"{self.file_id} ({self.unit} {position})", reason + detail))
        key = reason if reason in self.by_reason or len(self.by_reason) < _REASONS_KEPT else "other problems"
        entry = self.by_reason.setdefault(key, [0, []])
        entry[0] += 1
        if len(entry[1]) < LISTED_PROBLEMS:
            entry[1].append(position)

    def report(self) -> list[Problem]:
        if self.count <= LISTED_PROBLEMS:
            return self.listed
        out = []
        for reason, (count, places) in self.by_reason.items():
            first = ", ".join(str(p) for p in places) + (", ..." if count > len(places) else "")
            where = f"{count:,} {self.unit}s"
            out.append(Problem(f"{self.file_id} ({where})", f"{reason} ({where}: {first})"))
        return out
