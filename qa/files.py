"""The file system under an index: durable writes, and telling a full or read-only disk from a damaged index.

A full disk and a read-only mount make SQLite, FAISS and tantivy fail with errors that look like damage
("disk I/O error", "unable to open database file", a FAISS write assertion). Advising `qa index --rebuild`
then is harmful: on a full disk the rebuild cannot finish either. :func:`storage_trouble` recognises these
cases from the error and the file system's own state, so the caller can say what is really wrong.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import sqlite3
from pathlib import Path

from qa.errors import DiskFull, IndexReadOnly, IndexUnusable

#: Below this much free space, an I/O error from SQLite or FAISS is taken to be the full disk. SQLite's
#: shared-memory file alone needs 32 KB; with 40-100 KB free a sync failed inside FAISS's writer.
LOW_SPACE_BYTES = 1024 * 1024

_SPACE_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_READONLY_ERRNOS = {errno.EROFS}
_DENIED_ERRNOS = {errno.EACCES, errno.EPERM}
#: SQLite errors that a full or read-only disk produces (the extended names Python reports).
_SQLITE_STORAGE = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_READONLY")


def free_bytes(path: Path) -> int | None:
    """Space left for this process on the file system holding ``path`` (or its nearest existing parent)."""
    path = _existing(path)
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def is_read_only(path: Path) -> bool:
    """Whether ``path`` (or its nearest existing parent) is on a file system mounted read-only."""
    try:
        return bool(os.statvfs(_existing(path)).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def storage_trouble(path: Path, exc: BaseException) -> str | None:
    """"full", "read-only" or "denied" when ``exc`` comes from the disk under ``path``, not from its contents."""
    code = getattr(exc, "errno", None)
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if code in _READONLY_ERRNOS or name.startswith("SQLITE_READONLY") or is_read_only(path):
        return "read-only"
    if code in _SPACE_ERRNOS or name == "SQLITE_FULL" or "No space left" in text or "disk is full" in text:
        return "full"
    storage_error = (isinstance(exc, sqlite3.OperationalError) and name.startswith(_SQLITE_STORAGE)
                     or isinstance(exc, OSError | RuntimeError))  # FAISS reports write errors as RuntimeError
    free = free_bytes(path)
    if storage_error and free is not None and free < LOW_SPACE_BYTES:
        return "full"
    if code in _DENIED_ERRNOS:
        return "denied"
    return None


def storage_error(path: Path, exc: BaseException) -> IndexUnusable | None:
    """The error to report when ``exc`` came from a full or read-only disk rather than a damaged index."""
    if isinstance(exc, IndexUnusable):  # already says what is wrong (other settings, a damaged file...)
        return exc if isinstance(exc, DiskFull | IndexReadOnly) else None
    trouble = storage_trouble(path, exc)
    if trouble == "full":
        free = free_bytes(path)
        left = f"{free / 2**10:,.0f} KB free" if free is not None else "no space left"
        return DiskFull(f"the disk holding {path} is full ({left}); free some space and run the command again. "
                        "The index was not changed.")
    if trouble == "read-only":
        return IndexReadOnly(f"{path} is on a read-only file system: it can be searched but not updated; run "
                             "`qa index` on a writable copy, or remount it read-write. The index was not changed.")
    if trouble == "denied":
        return IndexReadOnly(f"no permission to write in {path}; run as a user who may, or give a writable "
                             "--index. The index was not changed.")
    return None


def damaged(path: Path, exc: BaseException) -> IndexUnusable:
    """The error for a database SQLite cannot read (a disk fault, a truncated copy, another program's file),
    unless it came from a full or read-only disk: rebuilding cannot help there, and would lose the index."""
    return storage_error(path, exc) or IndexUnusable(
        f"the index database in {path} is damaged or unreadable ({exc}); run `qa index --rebuild` to build it again")


def wal_has_data(db: Path) -> bool:
    """Whether the database's write-ahead log holds pages (which a reader that ignores it would miss)."""
    try:
        return os.path.getsize(f"{db}-wal") > 0
    except OSError:
        return False


def fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_tree(folder: Path) -> None:
    for file in folder.iterdir():
        fsync_file(file)
    fsync_dir(folder)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- All-or-nothing changes of one file (the corpus folder's uploads, replacements and deletions) -------------

#: Free space asked for beyond a file's own size before writing it (a directory block, the file's metadata).
SPACE_MARGIN = 64 * 1024


def beside(target: Path, kind: str) -> Path:
    """A new hidden name in ``target``'s folder (the sync skips names starting with a dot): same file system,
    so renaming it over ``target`` is one atomic step that needs no space."""
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}.{kind}")


def write_beside(target: Path, data: bytes, overwrite: bool = False) -> None:
    """Put ``data`` at ``target`` all at once: written to a hidden file beside it, flushed to the disk, then
    renamed over ``target`` (``overwrite``), or linked in only if no file of that name exists (else
    FileExistsError: another writer came first). On any error ``target``'s folder holds what it held before."""
    free = free_bytes(target.parent)
    if free is not None and free < len(data) + SPACE_MARGIN:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    temp = beside(target, "writing")
    try:
        with open(temp, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temp, target)
        else:
            _link_new(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    _settled(target.parent)


def keep_aside(target: Path) -> Path:
    """A hidden copy of ``target`` beside it, to put back with :func:`put_back`: a second name of the same file
    (a hard link costs no space); a real copy where the file system has no links."""
    backup = beside(target, "replaced")
    try:
        os.link(target, backup)
    except OSError as exc:
        if exc.errno in _SPACE_ERRNOS | _READONLY_ERRNOS:
            raise
        try:
            shutil.copy2(target, backup)
        except BaseException:
            backup.unlink(missing_ok=True)
            raise
    return backup


def set_aside(target: Path) -> Path:
    """Rename ``target`` to a hidden name beside it (one step, no space needed); :func:`put_back` undoes it."""
    aside = beside(target, "deleting")
    os.rename(target, aside)
    return aside


def put_back(aside: Path, target: Path) -> None:
    """``aside`` (from :func:`keep_aside` or :func:`set_aside`) back at ``target``, in one step."""
    os.replace(aside, target)
    _settled(target.parent)


def disk_words(exc: OSError, where: str = "the corpus folder") -> str:
    """What an OSError from writing in ``where`` means, in plain words (no errno, no temporary path)."""
    code = exc.errno
    if code in _SPACE_ERRNOS:
        return f"the disk holding {where} is full; free some space and try again"
    if code in _READONLY_ERRNOS:
        return f"{where} is on a read-only disk; remount it read-write and try again"
    if code in _DENIED_ERRNOS:
        return f"no permission to write in {where}; ask the administrator to fix its permissions"
    reason = (exc.strerror or "an input/output error").lower()
    return f"{where} could not be written ({reason}); try again, or ask the administrator to check the disk"


def _link_new(temp: Path, target: Path) -> None:
    try:
        os.link(temp, target)  # fails when target exists: two writers of one new name cannot both win
    except FileExistsError:
        raise
    except OSError as exc:  # no hard links on this file system: check, then rename
        if exc.errno in _SPACE_ERRNOS | _READONLY_ERRNOS | _DENIED_ERRNOS:
            raise
        if target.exists():
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST)) from None
        os.replace(temp, target)


def _settled(folder: Path) -> None:
    """Make a rename in ``folder`` durable; the change is made already, so a failure here changes nothing."""
    try:
        fsync_dir(folder)
    except OSError:
        pass


def _existing(path: Path) -> Path:
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
