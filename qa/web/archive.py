"""Archive actions of the page: saving uploaded article files into the corpus folder safely, and reports."""

from __future__ import annotations

import html
import os
import re
import shutil
import tempfile
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
    conflict: bool = False  # another file of this name is in the corpus: not saved, ask whether to replace it
    backup: Path | None = None  # the file this upload replaced, until the upload is indexed


@dataclass(frozen=True)
class FileResult:
    """The articles one uploaded file added, updated (it replaced a file) or removed (records it no longer has)."""

    name: str
    added: list[str]
    updated: list[str]
    removed: list[str]


@dataclass
class UploadReport:
    """The outcome of one batch of uploads, for the page."""

    files: list[FileResult] = field(default_factory=list)  # files indexed
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file name, why)
    unchanged: list[str] = field(default_factory=list)  # files already in the archive
    conflicts: list[str] = field(default_factory=list)  # names in the archive with other content: ask first
    restored: bool = False  # a replaced file was put back: the index must be synced again

    @property
    def added(self) -> list[str]:
        """The ids of all articles indexed (added or updated)."""
        return [a for f in self.files for a in f.added + f.updated]


def safe_name(name: str) -> str:
    """A file name that is safe in the corpus folder: the basename only, letters, digits, ``.-_``."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFKC", str(name)))[-1]
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_") or "article"
    ext = re.sub(r"[^A-Za-z0-9]+", "", ext).lower()
    return stem[:100] + (f".{ext}" if ext else "")


def save_upload(path: str | Path, corpus: str | Path, original: str | None = None, replace: bool = False) -> Upload:
    """Check the uploaded file at ``path`` and copy it into ``corpus`` under its safe name.

    Refused before saving: unsupported types, files over :data:`MAX_UPLOAD_BYTES`, and files the corpus
    reader cannot turn into an article. An identical file is not saved twice. A file of the same name but other
    content is a *conflict* (nothing saved) unless ``replace``: then it takes the old file's place at once
    (``os.replace``), and the old file is kept in ``backup`` until the new one is indexed (:func:`settle`).
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
    target = corpus / name
    try:
        corpus.mkdir(parents=True, exist_ok=True)
        if target.resolve().parent != corpus.resolve():
            return Upload(original, reason="file name is not allowed")
        if target.is_file():
            if target.read_bytes() == data:
                return Upload(original, name, existing=True)
            if not replace:
                return Upload(original, name, conflict=True)
        elif target.exists():
            return Upload(original, reason=f"{name} is a folder in the corpus; rename the file")
        temp = corpus / f".{name}.uploading"
        try:
            temp.write_bytes(data)
            backup = None
            if target.is_file():
                backup = Path(tempfile.mkdtemp(prefix="qa-replaced-")) / name
                shutil.copy2(target, backup)
            os.replace(temp, target)  # readers (a sync) see the old file or the new one, never half of one
        finally:
            temp.unlink(missing_ok=True)
        return Upload(original, name, backup=backup)
    except OSError as exc:  # a full or read-only disk: say so, and keep the app up
        return Upload(original, reason=f"could not be saved in the corpus folder ({exc.strerror or exc}); "
                                       "ask the administrator to free space or fix the folder")


def take_back(upload: Upload, corpus: Path) -> None:
    """Undo the saving of ``upload``: the replaced file comes back, a new one goes."""
    if upload.name is None or upload.existing:
        return
    if upload.backup is not None:
        shutil.move(upload.backup, corpus / upload.name)
    else:
        (corpus / upload.name).unlink(missing_ok=True)


def settle(uploads: Sequence[Upload]) -> None:
    """Forget the backups of replaced files once their uploads are indexed (or taken back)."""
    for up in uploads:
        if up.backup is not None and up.backup.exists():
            shutil.rmtree(up.backup.parent, ignore_errors=True)


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
    take_back(upload, corpus)
    return Upload(upload.original, reason=reason)


def _of(name: str, ids: Sequence[str]) -> list[str]:
    return [a for a in ids if a == name or a.startswith(name + "#")]


def summarize_uploads(uploads: Sequence[Upload], report: SyncReport | None, corpus: Path) -> UploadReport:
    """Which uploaded files were indexed, which were rejected (and why); files of which nothing was indexed are
    taken back (a replaced file comes back: see :attr:`UploadReport.restored`)."""
    out = UploadReport()
    for up in uploads:
        if up.name is None:
            out.rejected.append((up.original, up.reason or "rejected"))
            continue
        if up.conflict:
            out.conflicts.append(up.name)
            continue
        added = _of(up.name, report.added if report else [])
        updated = _of(up.name, report.updated if report else [])
        removed = _of(up.name, report.removed if report else []) if up.backup else []
        problems = [p for p in (report.skipped if report else [])
                    if p.path == up.name or p.path.startswith((up.name + "#", up.name + " "))]
        if added or updated:
            out.files.append(FileResult(up.name, added, updated, removed))
            out.rejected += [(p.path, p.reason) for p in problems]  # e.g. one bad record of a JSON Lines file
        elif problems:
            if not up.existing:
                take_back(up, corpus)  # nothing of it was indexed: do not keep it (a replaced file comes back)
                out.restored |= up.backup is not None
            out.rejected.append((up.original, reasons(problems)))
        elif up.existing:
            out.unchanged.append(up.name)
        else:
            out.files.append(FileResult(up.name, [up.name], [], []))  # indexed by a sync that ran at the same moment
    return out


#: Article ids listed under a file's line (folded); the rest are counted.
SHOWN_IDS = 200


def natural_key(text: str) -> list:
    """Sorts a2 before a10 (a list of 300 ids read a0, a1, a10, a100 ... in text order)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def _count(n: int, what: str = "article") -> str:
    return f"{n:,} {what}{'s' * (n != 1)}"


def _folded(ids: Sequence[str], label: str) -> str:
    if len(ids) < 2:
        return ""
    shown = sorted(ids, key=natural_key)[:SHOWN_IDS]
    items = "".join(f"<li>{html.escape(a)}</li>" for a in shown)
    if len(ids) > SHOWN_IDS:
        items += f"<li>and {len(ids) - SHOWN_IDS:,} more</li>"
    return f'<details class="qa-details"><summary>{label}</summary><ul>{items}</ul></details>'


def file_line(result: FileResult) -> str:
    """One uploaded file's outcome, e.g. "Added 300 articles from bulk.jsonl" (the ids folded below)."""
    name = f"<b>{html.escape(result.name)}</b>"
    if result.updated and not result.added and not result.removed:
        line = f"Updated {_count(len(result.updated))} from {name}"
    elif result.updated or result.removed:
        bits = [f"{len(x):,} {w}" for x, w in ((result.added, "added"), (result.updated, "updated"),
                                                (result.removed, "removed")) if x]
        line = f"Replaced {name}: {', '.join(bits)}"
    else:
        line = f"Added {_count(len(result.added))} from {name}"
    ids = result.added + result.updated
    return f'<div class="qa-ok">{line}{_folded(ids, f"Show the {len(ids):,} articles")}</div>'


def upload_report_html(result: UploadReport) -> str:
    """What an upload did, one line per file, escaped; long lists folded."""
    lines = [file_line(f) for f in result.files]
    if result.unchanged:
        items = "".join(f"<li>{html.escape(a)}</li>" for a in result.unchanged)
        lines.append(f'<div class="qa-note">Already in the archive, unchanged:<ul>{items}</ul></div>')
    if result.rejected:
        items = "".join(f"<li><b>{html.escape(n)}</b>: {html.escape(r)}</li>"
                        for n, r in result.rejected[:SHOWN_REJECTED])
        if len(result.rejected) > SHOWN_REJECTED:
            items += f"<li>and {len(result.rejected) - SHOWN_REJECTED:,} more</li>"
        lines.append(f'<div class="qa-bad">Not added:<ul>{items}</ul></div>')
    if result.conflicts:
        names = ", ".join(f"<b>{html.escape(n)}</b>" for n in result.conflicts)
        lines.append(f'<div class="qa-ask">Already in the archive with other content: {names}. Replace '
                     f"{'them' if len(result.conflicts) > 1 else 'it'} with the uploaded version?</div>")
    return "".join(lines) or '<div class="qa-note">No files were uploaded.</div>'


def sync_report_html(report: SyncReport, what: str = "Synced with the folder") -> str:
    """A sync's outcome in plain words: added / updated / removed / skipped, the ids folded."""
    parts = [f"{what}:"]
    counts = [(report.added, "added"), (report.updated, "updated"), (report.removed, "removed")]
    bits = [f"{_count(len(ids))} {word}" for ids, word in counts if ids]
    if report.skipped:
        bits.append(f"{_count(len(report.skipped), 'file')} skipped")
    parts.append(", ".join(bits) + "." if bits else "nothing changed; the index already matches the folder.")
    if report.unchanged:
        parts.append(f"{_count(report.unchanged)} unchanged.")
    folds = "".join(_folded(ids, f"{word.capitalize()}: {len(ids):,}") if len(ids) > 1 else
                    (f'<div class="qa-note">{word.capitalize()}: {html.escape(ids[0])}</div>' if ids else "")
                    for ids, word in counts)
    skipped = "".join(f"<li><b>{html.escape(p.path)}</b>: {html.escape(p.reason)}</li>"
                      for p in report.skipped[:SHOWN_REJECTED])
    if skipped:
        folds += (f'<details class="qa-details"><summary>Skipped: {len(report.skipped):,}</summary>'
                  f"<ul>{skipped}</ul></details>")
    return f'<div class="qa-ok">{" ".join(parts)}</div>{folds}'
