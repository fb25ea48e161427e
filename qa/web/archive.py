"""Archive actions of the page: saving uploaded article files into the corpus folder safely, and reports."""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qa.corpus import SUPPORTED_EXTENSIONS, read_file
from qa.indexing import SyncReport

#: Uploads larger than this are refused before anything is saved.
MAX_UPLOAD_BYTES = 10 * 1024 * 1024

@dataclass(frozen=True)
class Upload:
    """What became of one uploaded file: saved under ``name`` in the corpus, or rejected with ``reason``."""

    original: str
    name: str | None = None
    reason: str | None = None
    existing: bool = False  # the same file was already in the corpus


@dataclass
class UploadReport:
    """The outcome of one batch of uploads, for the page."""

    added: list[str] = field(default_factory=list)  # article ids indexed
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file name, why)
    unchanged: list[str] = field(default_factory=list)  # files already in the archive


def safe_name(name: str) -> str:
    """A file name that is safe in the corpus folder: the basename only, letters, digits, ``.-_``."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFKC", str(name)))[-1]
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_") or "article"
    ext = re.sub(r"[^A-Za-z0-9]+", "", ext).lower()
    return stem[:100] + (f".{ext}" if ext else "")


def save_upload(path: str | Path, corpus: str | Path, original: str | None = None) -> Upload:
    """Check the uploaded file at ``path`` and copy it into ``corpus`` under a safe, unused name.

    Refused before saving: unsupported types, files over :data:`MAX_UPLOAD_BYTES`, and files the corpus
    reader cannot turn into an article. A file with the same name but other content gets a ``-2``, ``-3``...
    suffix; an identical file is not saved twice.
    """
    path, corpus = Path(path), Path(corpus)
    original = original or path.name
    name = safe_name(original)
    suffix = Path(name).suffix
    if suffix not in SUPPORTED_EXTENSIONS:
        return Upload(original, reason=f"unsupported file type {suffix or '(none)'!r}; "
                                       f"upload one of {', '.join(SUPPORTED_EXTENSIONS)}")
    size = path.stat().st_size
    if size > MAX_UPLOAD_BYTES:
        return Upload(original, reason=f"file is {size / 2**20:.1f} MB, over the "
                                       f"{MAX_UPLOAD_BYTES // 2**20} MB upload limit; split it into smaller files")
    articles, problems = read_file(path, name)
    if not articles:
        return Upload(original, reason=reasons(problems) or "no article found in the file")
    data = path.read_bytes()
    stem = Path(name).stem
    try:
        corpus.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, 1000):
            candidate = corpus / (name if attempt == 1 else f"{stem}-{attempt}{suffix}")
            if candidate.resolve().parent != corpus.resolve():
                return Upload(original, reason="file name is not allowed")
            try:
                with open(candidate, "xb") as out:  # exclusive: never replaces a file
                    try:
                        out.write(data)
                        out.flush()
                    except BaseException:
                        candidate.unlink(missing_ok=True)  # no half-saved file left in the corpus
                        raise
                return Upload(original, candidate.name)
            except FileExistsError:
                if candidate.is_file() and candidate.read_bytes() == data:
                    return Upload(original, candidate.name, existing=True)
    except OSError as exc:  # a full or read-only disk: say so, and keep the app up
        return Upload(original, reason=f"could not be saved in the corpus folder ({exc.strerror or exc}); "
                                       "ask the administrator to free space or fix the folder")
    return Upload(original, reason="too many files with this name in the corpus; rename the file")


#: Reasons listed per rejected file, and rejected files listed on the page; the rest are counted. A 900 KB
#: JSON Lines file of 300,000 bad records made a 36.8 MB page when every reason was shown.
SHOWN_REASONS, SHOWN_REJECTED = 3, 20


def reasons(problems: Sequence) -> str:
    """The first few problems' reasons, and how many more there were."""
    text = "; ".join(p.reason for p in problems[:SHOWN_REASONS])
    more = len(problems) - SHOWN_REASONS
    return text + (f"; and {more:,} more problems" if more > 0 else "")


def withdraw(upload: Upload, corpus: Path, reason: str) -> Upload:
    """``upload`` taken back out of the corpus (unless it was there before) and rejected with ``reason``."""
    if upload.name is None or upload.existing:  # rejected already, or in the archive before (and unchanged)
        return upload
    if not upload.existing:
        (corpus / upload.name).unlink(missing_ok=True)
    return Upload(upload.original, reason=reason)


def summarize_uploads(uploads: Sequence[Upload], report: SyncReport | None, corpus: Path) -> UploadReport:
    """Which uploaded files were indexed, which were rejected (and why); duplicates are removed again."""
    out = UploadReport()
    for up in uploads:
        if up.name is None:
            out.rejected.append((up.original, up.reason or "rejected"))
            continue
        mine = [a for a in (report.added + report.updated if report else [])
                if a == up.name or a.startswith(up.name + "#")]
        problems = [p for p in (report.skipped if report else [])
                    if p.path == up.name or p.path.startswith((up.name + "#", up.name + " "))]
        if mine:
            out.added += mine
            out.rejected += [(p.path, p.reason) for p in problems]  # e.g. one bad record of a JSON Lines file
        elif problems:
            if not up.existing:
                (corpus / up.name).unlink(missing_ok=True)  # nothing of it was indexed: do not keep it
            out.rejected.append((up.original, reasons(problems)))
        elif up.existing:
            out.unchanged.append(up.name)
        else:
            out.added.append(up.name)  # indexed by another sync that ran at the same moment
    return out


def upload_report_html(result: UploadReport) -> str:
    """What an upload did, in a few escaped lines."""
    lines = []
    if result.added:
        items = "".join(f"<li>{html.escape(a)}</li>" for a in result.added)
        lines.append(f'<div class="qa-ok">Added {len(result.added)} article'
                     f"{'s' * (len(result.added) != 1)}:<ul>{items}</ul></div>")
    if result.unchanged:
        items = "".join(f"<li>{html.escape(a)}</li>" for a in result.unchanged)
        lines.append(f'<div class="qa-note">Already in the archive, unchanged:<ul>{items}</ul></div>')
    if result.rejected:
        items = "".join(f"<li><b>{html.escape(n)}</b>: {html.escape(r)}</li>"
                        for n, r in result.rejected[:SHOWN_REJECTED])
        if len(result.rejected) > SHOWN_REJECTED:
            items += f"<li>and {len(result.rejected) - SHOWN_REJECTED:,} more</li>"
        lines.append(f'<div class="qa-bad">Not added:<ul>{items}</ul></div>')
    return "".join(lines) or '<div class="qa-note">No files were uploaded.</div>'

