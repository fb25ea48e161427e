"""Every change of the corpus folder from the page (upload, replace, delete, put back) is all-or-nothing (issue 27).

A full disk for real (a small tmpfs, as in test_hostile), then every step of each write path made to fail in
turn ("the k-th write fails"), and two uploads of one name at the same moment. After each: the folder holds
exactly what it held before, or the intended result; no temporary or backup file is left; the message is plain.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import CORPUS, write
from test_hostile import fill, small_disk

import qa.files
import qa.web.archive
import qa.web.jobs
from qa import sync
from qa.config import Settings
from qa.errors import DiskFull, IndexUnusable
from qa.indexing import SyncReport
from qa.web.archive import save_upload, settle, withdraw
from qa.web.jobs import delete_file

VICTIM = "Victim article\n\n" + "The harbour of Velmora was dredged to nine metres in May. " * 700 + "\n"  # 40 KB
SHORT = "Victim article\n\nA short new version of the article.\n"


def folder_state(corpus: Path) -> dict[str, bytes]:
    """Every file in ``corpus`` (hidden ones too: a stray backup or temporary file must show), with its bytes."""
    return {p.name: p.read_bytes() for p in corpus.iterdir() if p.is_file()}


def stray_in_tmp() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("qa-replaced-*")} | \
        {p.name for p in Path(tempfile.gettempdir()).glob("qa-deleted-*")}


def plain(message: str) -> None:
    temporary = ("qa-replaced-", "qa-deleted-", ".uploading", ".writing", ".replaced", ".deleting")
    assert "Errno" not in message and not any(t in message for t in temporary), message


# --- A real full disk ---------------------------------------------------------------------------------------

@contextmanager
def victim_archive(tmp_path, seed_index):
    """The bundled corpus and its index, with victim.md (40 KB) beside them, on a small disk of their own."""
    with small_disk(tmp_path / "disk", "8m") as disk:
        settings = Settings(corpus=disk / "corpus", index=disk / "index")
        shutil.copytree(CORPUS, settings.corpus)
        shutil.copytree(seed_index, settings.index)
        write(settings.corpus, "victim.md", VICTIM)
        yield disk, settings


@pytest.mark.parametrize("when", ["before the upload", "before the sync"])
def test_replace_on_a_full_disk_never_cuts_the_article(tmp_path, seed_index, embedder, when):
    upload = write(tmp_path / "uploads", "victim.md", SHORT)
    strays = stray_in_tmp()
    with victim_archive(tmp_path, seed_index) as (disk, settings):
        before = folder_state(settings.corpus)
        filler = fill(disk, 20) if when == "before the upload" else None
        up = save_upload(upload, settings.corpus, replace=True)  # the page's Replace, step by step
        if up.name is not None:
            filler = filler or fill(disk, 0)
            with pytest.raises(IndexUnusable):
                sync(settings=settings, embedder=embedder)
            up = withdraw(up, settings.corpus, "not indexed")
            settle([up])
        assert folder_state(settings.corpus) == before  # whole, and no backup or temporary file left
        assert stray_in_tmp() == strays  # no copy on another disk either
        assert up.name is None and up.reason
        plain(up.reason)
        if when == "before the upload":
            assert up.reason.startswith("not saved: the disk holding the corpus folder is full; free some space")
            assert up.reason.endswith("victim.md is unchanged.")
        filler.unlink()
        assert sync(settings=settings, embedder=embedder).added == ["victim.md"]  # the whole article, indexed


def test_delete_on_a_full_disk_puts_the_article_back_whole(tmp_path, seed_index, embedder):
    strays = stray_in_tmp()
    with victim_archive(tmp_path, seed_index) as (disk, settings):
        sync(settings=settings, embedder=embedder)
        before = folder_state(settings.corpus)
        filler = fill(disk, 0)
        with pytest.raises(DiskFull) as failed:
            delete_file(settings, embedder, "victim.md")
        assert folder_state(settings.corpus) == before and stray_in_tmp() == strays
        from qa.web.archive_tab import why_not

        message = f"Not deleted: {why_not(failed.value)} victim.md is unchanged."
        plain(message)
        assert "is full" in message and "free some space" in message
        filler.unlink()
        delete_file(settings, embedder, "victim.md")
        assert "victim.md" not in folder_state(settings.corpus)


# --- The k-th write fails -----------------------------------------------------------------------------------

class Faults:
    """Makes the k-th file-system step (a write, flush, link, rename, copy) fail with ENOSPC."""

    STEPS = ("fsync", "replace", "rename", "link", "sendfile", "copy_file_range")

    def __init__(self, monkeypatch, k: int):
        self.k, self.calls = k, 0
        for name in self.STEPS:
            if hasattr(os, name):
                monkeypatch.setattr(os, name, self._failing(getattr(os, name)))
        real_open = open

        def opened(*args, **kwargs):
            handle = real_open(*args, **kwargs)
            return _FaultyFile(handle, self) if any(m in str(kwargs.get("mode", args[1:2] or "r")) for m in "wxa") \
                else handle

        for module in (qa.files, qa.web.archive, shutil):
            monkeypatch.setattr(module, "open", opened, raising=False)
        monkeypatch.setattr(Path, "write_bytes", lambda path, data: self.step() or _write_bytes(path, data))

    def step(self) -> None:
        self.calls += 1
        if self.calls == self.k:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def _failing(self, real):
        def failing(*args, **kwargs):
            self.step()
            return real(*args, **kwargs)
        return failing


class _FaultyFile:
    def __init__(self, handle, faults: Faults):
        self._handle, self._faults = handle, faults

    def write(self, data):
        self._faults.step()
        return self._handle.write(data)

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._handle.__exit__(*exc)


_write_bytes = Path.write_bytes


def each_failing_step(monkeypatch, run, limit: int = 40, faults_of=None):
    """Run ``run()`` with its 1st, 2nd, ... step failing until it runs through; yields (k, outcome) each time.
    ``faults_of(patch, k)`` sets the failing steps up (default: :class:`Faults`)."""
    for k in range(1, limit):
        with monkeypatch.context() as patch:
            faults = (faults_of or Faults)(patch, k)
            try:
                outcome = run()
            except (OSError, IndexUnusable) as exc:
                outcome = exc
        yield k, outcome
        if faults.calls < k:
            return
    raise AssertionError(f"still failing after {limit} steps")


INTENDED = {"add": {"victim.md": SHORT.encode()}, "replace": {"victim.md": SHORT.encode()}, "delete": {}}


@pytest.mark.parametrize("action", ["add", "replace", "delete"])
def test_each_step_of_a_corpus_change_failing_leaves_the_folder_as_before(tmp_path, monkeypatch, action):
    upload = write(tmp_path / "uploads", "victim.md", SHORT)
    strays = stray_in_tmp()
    other = {"other.md": b"Other\n\nAnother article.\n"}
    before = {**other, **({} if action == "add" else {"victim.md": VICTIM.encode()})}
    for k, outcome in each_failing_step(monkeypatch, lambda: change(tmp_path, before, upload, action, monkeypatch)):
        after = folder_state(tmp_path / "corpus")
        if outcome == "done":
            assert after == {**other, **INTENDED[action]}, (k, action)
        else:  # it failed: nothing changed, and the page's message says so plainly
            assert after == before, (k, action, outcome, sorted(after))
            if isinstance(outcome, qa.web.archive.Upload):
                plain(outcome.reason)
                assert "is full" in outcome.reason, outcome.reason
        assert stray_in_tmp() == strays


def change(tmp_path: Path, before: dict[str, bytes], upload: Path, action: str, monkeypatch) -> object:
    """One corpus change on a fresh folder: "done" when it went through, else the Upload or error that failed."""
    corpus = tmp_path / "corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    corpus.mkdir()
    for name, data in before.items():
        _write_bytes(corpus / name, data)
    if action == "delete":
        monkeypatch.setattr(qa.web.jobs, "sync", lambda **kw: SyncReport(removed=["victim.md"]))
        delete_file(Settings(corpus=corpus, index=tmp_path / "index"), None, "victim.md")
        return "done"
    up = save_upload(upload, corpus, replace=action == "replace")
    if up.name is None:
        return up
    settle([up])
    return "done"


# --- Two writers of one name --------------------------------------------------------------------------------

def test_two_uploads_of_one_name_at_once_each_told_what_really_happened(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    files = [write(tmp_path / f"user{i}", "same.md", f"Same name\n\nThe text of user {i}.\n") for i in (1, 2)]
    both_checked = threading.Barrier(2)
    real_is_file = Path.is_file
    waited = set()

    def is_file(path: Path) -> bool:  # both uploads look for an existing same.md before either has written it
        found = real_is_file(path)
        if path.name == "same.md" and path.parent == corpus and threading.get_ident() not in waited:
            waited.add(threading.get_ident())
            try:
                both_checked.wait(timeout=3)
            except threading.BrokenBarrierError:
                pass
        return found

    monkeypatch.setattr(Path, "is_file", is_file)
    results = [None, None]
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, save_upload(files[i], corpus)))
               for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    saved = [r for r in results if r.name and not r.conflict and not r.existing]
    assert len(saved) == 1, results
    winner = results.index(saved[0])
    assert (corpus / "same.md").read_bytes() == files[winner].read_bytes()  # the text of the one told "added"
    loser = results[1 - winner]
    assert loser.conflict and loser.reason is None  # asked whether to replace the other's version
    assert folder_state(corpus).keys() == {"same.md"}  # no temporary file left


def test_one_writer_per_article_name_on_the_page(tmp_path):
    from qa.web.archive import busy, claim

    with claim(tmp_path, ["a.md", "b.md"]) as first:
        with claim(tmp_path, ["b.md", "c.md"]) as second:
            assert first == {"a.md", "b.md"} and second == {"c.md"}
        assert "is being changed by another upload or delete" in busy("b.md").reason
    with claim(tmp_path, ["b.md"]) as again:
        assert again == {"b.md"}


# --- What an upload really does -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["README.md", "readme.txt", "ReadMe.md"])
def test_an_upload_named_like_the_folder_note_is_refused_not_said_added(tmp_path, name):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    up = save_upload(write(tmp_path / "up", name, "Notes\n\nA real article that happens to be called readme.\n"),
                     corpus)
    assert up.name is None and "never indexed as an article" in up.reason and "rename the file" in up.reason
    assert not list(corpus.iterdir())


def test_what_a_killed_page_action_left_is_tidied_at_the_start_and_nothing_is_lost(tmp_path):
    from qa.web.archive import recover

    corpus = tmp_path / "corpus"
    write(corpus, "kept.md", "Kept\n\nNew version.\n")
    write(corpus, ".kept.md.0a1b2c3d.replaced", "Kept\n\nOld version.\n")  # killed after the replace
    write(corpus, ".new.md.0a1b2c3d.writing", "New\n\nHalf writ")  # killed while writing
    write(corpus, ".gone.md.0a1b2c3d.deleting", "Gone\n\nKilled before the delete finished.\n")
    write(corpus, ".notes", "someone's hidden file")
    assert len(recover(corpus)) == 3
    assert folder_state(corpus) == {"kept.md": b"Kept\n\nNew version.\n", ".notes": b"someone's hidden file",
                                    "gone.md": b"Gone\n\nKilled before the delete finished.\n"}
    assert recover(corpus) == []


def test_a_replace_the_index_cannot_take_is_put_back_and_said_so_plainly(tmp_path, monkeypatch):
    from qa.web import archive_tab
    from qa.web.archive import upload_report_html

    corpus = tmp_path / "corpus"
    write(corpus, "victim.md", VICTIM)
    before = folder_state(corpus)

    def full(**kwargs):
        raise DiskFull(f"the disk holding {tmp_path / 'index'} is full (0 KB free); free some space and run the "
                       "command again. The index was not changed.")

    monkeypatch.setattr(archive_tab, "sync", full)
    up = save_upload(write(tmp_path / "up", "victim.md", SHORT), corpus, replace=True)
    steps = archive_tab.index_uploads(Settings(corpus=corpus, index=tmp_path / "index"), None, [up], lambda _: None)
    box: dict = {}
    list(archive_tab._drain(steps, box))
    page = upload_report_html(box["result"])
    assert folder_state(corpus) == before
    assert "not indexed: the disk holding" in page and "The archive&#x27;s version is unchanged." in page, page
    plain(page)


def test_an_upload_a_fault_of_ours_stops_is_taken_back_not_left_unindexed(tmp_path, monkeypatch):
    """A bug in indexing (the soak met one: an IndexError in encode_with_spans) must not leave the file saved but
    unindexed, where trying again says "Already in the archive, unchanged" and the file stays unsearchable."""
    from qa.web import archive_tab
    from qa.web.archive import upload_report_html

    corpus = tmp_path / "corpus"
    write(corpus, "victim.md", VICTIM)
    before = folder_state(corpus)
    logged: list[str] = []

    def broken(**kwargs):
        raise IndexError("boolean index did not match indexed array")

    monkeypatch.setattr(archive_tab, "sync", broken)
    new = save_upload(write(tmp_path / "up", "new.md", SHORT), corpus)
    replaced = save_upload(write(tmp_path / "up2", "victim.md", SHORT), corpus, replace=True)
    steps = archive_tab.index_uploads(Settings(corpus=corpus, index=tmp_path / "index"), None, [new, replaced],
                                      logged.append)
    box: dict = {}
    list(archive_tab._drain(steps, box))
    page = upload_report_html(box["result"])
    assert folder_state(corpus) == before
    assert "not indexed: the app failed (IndexError)" in page and "The archive&#x27;s version is unchanged." in page
    assert "new.md" in page and "Already in the archive" not in page, page
    assert any("Traceback" in line and "IndexError" in line for line in logged), logged
    plain(page)
