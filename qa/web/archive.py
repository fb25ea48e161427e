"""Archive actions of the page: saving uploaded article files into the corpus folder safely, and reports."""

from __future__ import annotations

import html
import re
import threading
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from qa.corpus import FOLDER_NOTES, SUPPORTED_EXTENSIONS, read_file
from qa.files import disk_words, keep_aside, put_back, write_beside
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
    backup: Path | None = None  # the file this upload replaced (hidden, beside it), until the upload is indexed


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

    Refused before saving: unsupported types, the folder's own note (``README.md``), files over
    :data:`MAX_UPLOAD_BYTES`, and files the corpus reader cannot turn into an article. An identical file is not
    saved twice. A file of the same name but other content is a *conflict* (nothing saved) unless ``replace``:
    then it takes the old file's place, and the old file is kept beside it (hidden, on the same disk) in
    ``backup`` until the new one is indexed (:func:`settle`). Every write is all-or-nothing
    (:func:`qa.files.write_beside`): on any error the corpus folder holds what it held before.
    """
    path, corpus = Path(path), Path(corpus)
    original = original or path.name
    name = safe_name(original)
    suffix = Path(name).suffix
    if suffix not in SUPPORTED_EXTENSIONS:
        return Upload(original, reason=f"unsupported file type {suffix or '(none)'!r}; "
                                       f"upload one of {', '.join(SUPPORTED_EXTENSIONS)}")
    if name.lower() in FOLDER_NOTES:  # the sync never reads it: saying "added" would be untrue
        return Upload(original, reason=f"{name} is the name of the corpus folder's own note, which is never "
                                       f"indexed as an article; rename the file (e.g. {Path(name).stem}-article"
                                       f"{suffix}) to add it")
    size = path.stat().st_size
    if size > MAX_UPLOAD_BYTES:
        return Upload(original, reason=f"file is {size / 2**20:.1f} MB, over the "
                                       f"{MAX_UPLOAD_BYTES // 2**20} MB upload limit; split it into smaller files")
    articles, problems = read_file(path, name)
    if not articles:
        return Upload(original, reason=reasons(problems) or "no article found in the file")
    data = path.read_bytes()
    target = corpus / name
    replacing = False
    try:
        corpus.mkdir(parents=True, exist_ok=True)
        if target.resolve().parent != corpus.resolve():
            return Upload(original, reason="file name is not allowed")
        if target.is_file():
            if target.read_bytes() == data:
                return Upload(original, name, existing=True)
            if not replace:
                return Upload(original, name, conflict=True)
            replacing = True
        elif target.is_dir():  # not exists(): a file another upload wrote since is_file() is a conflict, below
            return Upload(original, reason=f"{name} is a folder in the corpus; rename the file")
        if not replacing:
            try:
                write_beside(target, data)
            except FileExistsError:  # another upload of this name came first: ask, as for any other copy
                return Upload(original, name, conflict=True)
            return Upload(original, name)
        backup = keep_aside(target)
        try:
            write_beside(target, data, overwrite=True)  # readers (a sync) see the old file or the new one
        except BaseException:
            backup.unlink(missing_ok=True)
            raise
        return Upload(original, name, backup=backup)
    except OSError as exc:  # a full or read-only disk: say so in plain words, and keep the app up
        kept = f"{name} is unchanged" if replacing else "nothing was saved"
        return Upload(original, reason=f"not saved: {disk_words(exc)}. {kept}.")


def take_back(upload: Upload, corpus: Path) -> None:
    """Undo the saving of ``upload``: the replaced file comes back (renamed, in one step), a new one goes."""
    if upload.name is None or upload.existing:
        return
    if upload.backup is not None:
        put_back(upload.backup, corpus / upload.name)
    else:
        (corpus / upload.name).unlink(missing_ok=True)


def settle(uploads: Sequence[Upload]) -> None:
    """Forget the backups of replaced files once their uploads are indexed (or taken back)."""
    for up in uploads:
        if up.backup is not None:
            up.backup.unlink(missing_ok=True)


#: The corpus files some page action is changing now (resolved paths): one writer per article name at a time.
_WRITING: set[str] = set()
_WRITING_LOCK = threading.Lock()


@contextmanager
def claim(corpus: Path, names: Iterable[str]) -> Iterator[set[str]]:
    """Claim ``names`` in ``corpus`` for one upload, replace or delete; yields the names claimed. A name
    another action is changing at this moment is not claimed: that action's report must stay true."""
    keys = {name: str(Path(corpus).resolve() / name) for name in names}
    with _WRITING_LOCK:
        mine = {name for name, key in keys.items() if key not in _WRITING}
        _WRITING.update(keys[name] for name in mine)
    try:
        yield mine
    finally:
        with _WRITING_LOCK:
            _WRITING.difference_update(keys[name] for name in mine)


def recover(corpus: Path) -> list[str]:
    """Tidy what a killed page action left in ``corpus`` (hidden files of :mod:`qa.files`): a half-written
    upload goes; a file set aside to be deleted comes back unless its name was taken again (deleting it is
    asked again rather than lost); the old version of a replaced file goes (the new one is in place). Returns
    what was done, for the log. Run when the app starts, before any page action."""
    done = []
    for path in sorted(Path(corpus).glob(".*.*.*")) if Path(corpus).is_dir() else []:
        name, _, kind = path.name[1:].rpartition(".")
        name = name.rpartition(".")[0]
        if kind not in ("writing", "replaced", "deleting") or not path.is_file() or not name:
            continue
        try:
            if kind == "deleting" and not (path.parent / name).exists():
                put_back(path, path.parent / name)
                done.append(f"{name} put back (its deletion was cut short)")
            else:
                path.unlink()
                done.append(f"{path.name} removed (left by an upload, replace or delete that was cut short)")
        except OSError as exc:
            done.append(f"{path.name} left as it is ({disk_words(exc)})")
    return done


def busy(original: str) -> Upload:
    """The report for an upload whose name another action is changing at this moment."""
    return Upload(original, reason=f"{safe_name(original)} is being changed by another upload or delete at this "
                                   "moment; nothing was saved. Try again when it has finished")


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
