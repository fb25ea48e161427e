"""Every write path of the index (`qa index`, `--rebuild`, `--compact`, `qa migrate`) with its k-th write failing
(issue 27), and two writers at once.

A "write" is any step that needs the disk: a file written, flushed, renamed or linked (test_corpus_faults'
:class:`Faults`), a FAISS segment or the tantivy index written, or an SQL statement that changes the database.
The k-th one fails with a full disk, for k = 1, 2, ... until the command runs through without reaching it. After
each attempt: the command printed a message naming the full disk (no traceback), the corpus folder is
byte-for-byte as before, the index answers as before the attempt (or, when the command succeeded, as a fresh
rebuild: a command that committed never reports a failure); then a sync with the disk freed succeeds, leaves no
stray file, and equals a fresh rebuild. The same on a real small disk (tmpfs) filled up step by step.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import pytest
from conftest import write
from test_corpus_faults import Faults, each_failing_step, folder_state
from test_hostile import fill, small_disk
from test_reliability import news

import qa.indexing
import qa.store
from bench.soak import index_contents
from qa import sync
from qa.cli import main
from qa.config import Settings
from qa.indexing import compact
from qa.retriever import Retriever
from qa.store import database as db
from qa.store.lexical import LexicalWriter
from qa.store.local import LocalStore

BEFORE = {"a.md": news(0), "b.md": news(1), "c.md": news(2)}
AFTER = {"b.md": news(1, version=2), "c.md": news(2), "d.md": news(3)}  # a removed, b changed, d added
QUERIES = ["council debates bridge repairs in Arden", "revised estimate of units", "flood defences in Dunmore"]
#: An SQL statement that writes (one step); reading ones never fail for want of space.
WRITING_SQL = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|COMMIT|PRAGMA\s+journal_mode)", re.I)


class IndexFaults(Faults):
    """:class:`Faults`, and the index's own writes: FAISS's writer, tantivy's, and SQLite's writing statements
    (which fail as SQLite fails on a full disk)."""

    def __init__(self, monkeypatch, k: int):
        super().__init__(monkeypatch, k)
        monkeypatch.setattr(faiss, "write_index", self._failing(faiss.write_index))
        for name in ("add", "delete", "delete_after", "commit"):
            monkeypatch.setattr(LexicalWriter, name, self._failing(getattr(LexicalWriter, name)))
        faults = self

        class Connection(sqlite3.Connection):
            changes_at_begin = 0

            def execute(self, sql, *args):
                if sql.lstrip().upper().startswith("BEGIN"):
                    self.changes_at_begin = self.total_changes
                # A read transaction's COMMIT writes nothing: only one that changed rows can fail for space.
                commit = sql.lstrip().upper().startswith("COMMIT")
                if not commit or self.total_changes != self.changes_at_begin:
                    try:
                        faults.sql(sql)
                    except sqlite3.OperationalError:
                        if commit:  # as SQLite may do after SQLITE_FULL: the transaction is rolled back already
                            super().execute("ROLLBACK")
                        raise
                return super().execute(sql, *args)

            def executemany(self, sql, *args):
                faults.sql(sql)
                return super().executemany(sql, *args)

            def executescript(self, script):
                faults.sql(script)
                return super().executescript(script)

        real_connect = sqlite3.connect
        monkeypatch.setattr(sqlite3, "connect", lambda *a, **kw: real_connect(*a, **kw, factory=Connection))

    def sql(self, statement: str) -> None:
        if WRITING_SQL.match(statement):
            try:
                self.step()
            except OSError:
                error = sqlite3.OperationalError("database or disk is full")
                error.sqlite_errorname = "SQLITE_FULL"
                raise error from None


@dataclass(frozen=True)
class Seen:
    """What an index holds and answers: equal for two indexes of one corpus, however they were written."""

    contents: dict
    answers: list

    def __eq__(self, other: object) -> bool:
        a, b = self.contents, other.contents
        if any(a[key] != b[key] for key in ("articles", "chunks", "sentences")) or self.answers != other.answers:
            return False
        return a["vectors"].shape == b["vectors"].shape and (
            not len(a["vectors"]) or float(np.abs(a["vectors"] - b["vectors"]).max()) < 1e-3)


def seen(index: Path, embedder) -> Seen:
    retriever = Retriever(index, embedder)
    try:
        answers = [[(p.article_id, p.start, p.end, p.text) for p in retriever.search(q, k=3)] for q in QUERIES]
    finally:
        retriever.close()
    return Seen(index_contents(index), answers)


def strays(index: Path) -> list[str]:
    """Files in the index folder that its last commit neither uses nor keeps for readers of the one before."""
    con = db.connect(index, readonly=True)
    try:
        meta = db.read_meta(con, index)
    finally:
        con.close()
    keep = {db.DB_NAME, f"{db.DB_NAME}-wal", f"{db.DB_NAME}-shm", ".lock", meta.get(db.LEXICAL)}
    keep |= set(json.loads(meta.get("segments", "[]"))) | set(json.loads(meta.get("retired", "[]")))
    return sorted(p.name for p in index.iterdir() if p.name not in keep)


def corpus(folder: Path, files: dict[str, str]) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    for name, text in files.items():
        write(folder, name, text)
    return folder


@pytest.fixture(scope="module")
def built(tmp_path_factory, embedder) -> dict[str, Path]:
    """Indexes built once: of BEFORE; of BEFORE then AFTER (two segments, dead vectors); AFTER rebuilt."""
    root = tmp_path_factory.mktemp("write-faults")
    old, new = corpus(root / "old", BEFORE), corpus(root / "new", AFTER)
    sync(old, root / "before", embedder=embedder)
    shutil.copytree(root / "before", root / "synced")
    sync(new, root / "synced", embedder=embedder)
    sync(new, root / "fresh", embedder=embedder)
    return {"before": root / "before", "synced": root / "synced", "fresh": root / "fresh", "old": old, "new": new}


#: Each path: the index it starts from, its command line, and which index it must equal once done.
PATHS = {
    "sync": ("before", ["index"], "fresh"),
    "rebuild": ("before", ["index", "--rebuild"], "fresh"),
    "compact": ("synced", ["index", "--compact"], "synced"),
    "migrate": (None, ["migrate", "--to", "local"], "before"),
}


@pytest.mark.parametrize("path", PATHS)
def test_each_write_of_each_index_command_failing_leaves_the_index_as_before(path, tmp_path, monkeypatch, capsys,
                                                                            built, embedder):
    start, argv, done_as = PATHS[path]
    monkeypatch.setattr(qa.indexing, "load_embedder", lambda *a, **kw: embedder)
    new = tmp_path / "corpus"
    shutil.copytree(built["new"], new)
    files = folder_state(new)
    index = tmp_path / "index"
    if path == "migrate":  # local to local: the source through a second backend name (Milvus needs a server)
        source = tmp_path / "source"
        shutil.copytree(built["before"], source)
        monkeypatch.setitem(qa.store.BACKENDS, "other", lambda s, writable: LocalStore(source, writable))
        monkeypatch.setenv("QA_BACKEND", "other")
    expected = {"before": seen(built[start], embedder) if start else None, "done": seen(built[done_as], embedder)}
    fresh = seen(built["fresh"], embedder)
    failures = 0

    def prepare() -> None:  # with the disk as it is, before each attempt
        shutil.rmtree(index, ignore_errors=True)
        if start:
            shutil.copytree(built[start], index)

    def attempt():
        capsys.readouterr()
        code = main([*argv, "--index", str(index), *(["--corpus", str(new), "--quiet"] if argv[0] == "index" else [])])
        return code, capsys.readouterr().err

    prepare()
    for k, (code, err) in each_failing_step(monkeypatch, attempt, limit=150, faults_of=IndexFaults):
        assert code in (0, 2), (path, k, code, err)
        assert folder_state(new) == files, (path, k)
        if code == 2:  # a message naming the full disk, never a traceback or an errno
            failures += 1
            assert err.startswith("qa: error: ") and "Traceback" not in err and "Errno" not in err, (path, k, err)
            assert "is full" in err and "free some space" in err, (path, k, err)
        assert "damaged" not in err and "--rebuild" not in err, (path, k, err)  # not even in a warning
        if path == "migrate" and code == 2:
            assert not (index / db.DB_NAME).exists() or LocalStore(index).manifest is None, (path, k)  # empty
            assert main([*argv, "--index", str(index)]) == 0, capsys.readouterr().err  # the copy, tried again
            assert seen(index, embedder) == expected["done"], (path, k)
        elif code == 2:  # failed means not committed: a command that commits says so, whatever fails after
            assert seen(index, embedder) == expected["before"], (path, k)
        else:
            assert seen(index, embedder) == expected["done"], (path, k)
        monkeypatch.delenv("QA_BACKEND", raising=False)
        assert main(["index", "--index", str(index), "--corpus", str(new), "--quiet"]) == 0, capsys.readouterr()
        if path == "migrate":
            monkeypatch.setenv("QA_BACKEND", "other")
        assert seen(index, embedder) == fresh, (path, k)
        assert strays(index) == [], (path, k)
        assert folder_state(new) == files
        prepare()
    assert failures >= 3, f"{path}: only {failures} writes failed the command"
    print(f"\n{path}: {k} writes, {failures} failed the command")


def test_two_writers_at_once_end_as_a_fresh_rebuild(tmp_path, built, embedder):
    """Two threads writing one index at the same moment, in every pair of write paths: they take turns."""
    new = tmp_path / "corpus"
    shutil.copytree(built["new"], new)
    fresh = seen(built["fresh"], embedder)
    settings = Settings(corpus=new, index=tmp_path / "index")
    runs = {"sync": lambda: sync(settings=settings, embedder=embedder),
            "rebuild": lambda: sync(settings=settings, embedder=embedder, rebuild=True),
            "compact": lambda: compact(settings)}
    for first, second in [("sync", "sync"), ("sync", "rebuild"), ("rebuild", "compact"), ("compact", "sync")]:
        shutil.rmtree(settings.index, ignore_errors=True)
        shutil.copytree(built["before"], settings.index)
        errors: list[BaseException] = []
        go = threading.Barrier(2)

        def run(name: str, go: threading.Barrier = go, errors: list = errors) -> None:
            go.wait()
            try:
                runs[name]()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(name,)) for name in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, (first, second, errors)
        sync(settings=settings, embedder=embedder)  # a compact that went first left the sync to do
        assert seen(settings.index, embedder) == fresh, (first, second)
        assert strays(settings.index) == [], (first, second)


@pytest.mark.parametrize("path", ["sync", "rebuild", "compact"])
def test_a_real_disk_filling_up_stops_each_index_command_cleanly(path, tmp_path, monkeypatch, capsys, built, embedder):
    """The same on a real small disk (tmpfs), filled up to leave 0, 8, 16... KB: SQLite's, FAISS's and tantivy's
    own writes fail there too, wherever the space runs out."""
    start, argv, done_as = PATHS[path]
    monkeypatch.setattr(qa.indexing, "load_embedder", lambda *a, **kw: embedder)
    expected = [seen(built[start], embedder), seen(built[done_as], embedder)]
    fresh = seen(built["fresh"], embedder)
    with small_disk(tmp_path / "disk", "8m") as disk:
        new = shutil.copytree(built["new"], disk / "corpus")
        files, index, outcomes = folder_state(new), disk / "index", []
        extra = [] if path == "compact" else ["--corpus", str(new), "--quiet"]
        for leave_kb in range(0, 4096, 8):
            shutil.rmtree(index, ignore_errors=True)
            shutil.copytree(built[start], index)
            filler = fill(disk, leave_kb)
            capsys.readouterr()
            code = main([*argv, "--index", str(index), *extra])
            err = capsys.readouterr().err
            filler.unlink()
            outcomes.append(code)
            assert folder_state(new) == files, (path, leave_kb)
            assert code in (0, 2), (path, leave_kb, err)
            if code == 2:
                assert err.startswith("qa: error: ") and "is full" in err and "free some space" in err, err
            assert "damaged" not in err and "--rebuild" not in err, (path, leave_kb, err)
            assert seen(index, embedder) == expected[0 if code else 1], (path, leave_kb)
            assert main(["index", "--index", str(index), "--corpus", str(new), "--quiet"]) == 0, capsys.readouterr()
            assert seen(index, embedder) == fresh and strays(index) == [], (path, leave_kb)
            if outcomes[-4:] == [0] * 4:  # the space that is enough varies a little from run to run
                break
    print(f"\n{path}: {outcomes}")
    assert outcomes[0] == 2 and outcomes[-1] == 0, outcomes
