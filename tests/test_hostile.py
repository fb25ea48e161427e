"""Hostile and careless input found by the second adversarial pass (issue 12): each case reproduced for real.

A YAML alias bomb, characters UTF-8 cannot encode, a corpus folder that vanishes under a waiting sync, a full
disk, a read-only index, links out of the corpus, colliding article ids, control characters in what the CLI
prints, huge JSON Lines files. Real files, real SQLite/FAISS/BM25, the bundled model, `qa` as a user runs it.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import pytest
from conftest import CORPUS, scaled, write
from test_reliability import index_state, news, subprocess_env

from qa import sync
from qa.chunking import MAX_CHARS_PER_TOKEN, Chunker
from qa.cli import main
from qa.corpus import make_article, read_file
from qa.indexing import CHUNKING_BAR_ARTICLES, MASS_REMOVAL_MIN, READING_BAR_BYTES, CorpusNotFound, MassRemoval
from qa.records import MAX_RECORD_BYTES
from qa.retriever import Retriever
from qa.store.database import connect
from qa.store.local import LocalStore


def alias_bomb(depth: int) -> str:
    """A "billion laughs" front matter: each level lists nine references to the previous; title = the last."""
    lines = ["a0: &a0 [x,x,x,x,x,x,x,x,x]"]
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, depth)]
    return "---\n" + "\n".join(lines) + f"\ntitle: *a{depth - 1}\n---\nThe body of a hostile article.\n"


def articles_of(index: Path) -> dict[str, tuple[str, str]]:
    con = connect(index, readonly=True)
    try:
        return {r[0]: (r[1], r[2]) for r in con.execute("SELECT id, title, text FROM articles")}
    finally:
        con.close()


# --- 1. YAML alias bomb ------------------------------------------------------------------------------------

def test_a_yaml_alias_bomb_is_refused_at_once_and_the_other_articles_are_indexed(tmp_path, embedder):
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    assert len(alias_bomb(7)) < 400  # 370 bytes: depth 6 took 23 s and 2.6 GB; depth 7 killed the process
    write(corpus, "bomb.md", alias_bomb(7))
    write(corpus, "good.md", news(1))
    tracemalloc.start()
    started = time.perf_counter()
    try:
        articles, problems = read_file(corpus / "bomb.md")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 1 and peak < 2**20
    assert articles == [] and "YAML alias" in problems[0].reason and "write the value out" in problems[0].reason

    report = sync(corpus, index, embedder=embedder)
    assert report.added == ["good.md"] and [p.path for p in report.skipped] == ["bomb.md"]
    assert max(len(title) for title, _ in articles_of(index).values()) < 100


@pytest.mark.parametrize("front_matter,reason", [
    ("title: [1, 2, {a: b}]", "'title' is a list; it must be a single line of text"),
    ("title: Fine\nsource: {name: Wire}", "'source' is a mapping"),
    ("title: " + "x" * 1001, "'title' is 1,001 characters, over the 1,000 limit"),
    ("url: https://example.org/" + "a" * 2100, "'url' is 2,120 characters, over the 2,048 limit"),
    ("x: |\n  " + "y" * 70_000, "front matter is 70,"),
])
def test_metadata_must_be_short_plain_values(tmp_path, front_matter, reason):
    write(tmp_path, "a.md", f"---\n{front_matter}\n---\nTitle\nBody text.\n")
    articles, problems = read_file(tmp_path / "a.md")
    assert articles == [] and reason in problems[0].reason, problems


@pytest.mark.parametrize("date", ["yesterday", "'2024-02-30'", "2024-02-30", "9999-99-99", '"sometime"'])
def test_a_date_that_is_not_a_date_refuses_the_article_with_one_rule(tmp_path, date):
    write(tmp_path, "a.md", f"---\ntitle: T\ndate: {date}\n---\nBody text.\n")
    articles, problems = read_file(tmp_path / "a.md")
    assert articles == [] and "is not a date; write it as YYYY-MM-DD, or remove it" in problems[0].reason


def test_yaml_scalars_stay_as_written(tmp_path):
    write(tmp_path, "a.md", "---\ntitle: 1984\ndate: 2024-11-27\nsource: NO\nauthor: yes\n---\nBody text.\n")
    (article,), _ = read_file(tmp_path / "a.md")
    assert (article.title, article.date, article.source, article.author) == ("1984", "2024-11-27", "NO", "yes")


def test_a_first_line_too_long_for_a_title_stays_in_the_text(tmp_path):
    paragraph = "Word " * 400
    write(tmp_path, "long-first-line.txt", paragraph + "\nSecond line.\n")
    (article,), _ = read_file(tmp_path / "long-first-line.txt", "long-first-line.txt")
    assert article.title == "Long first line" and article.text.startswith("Word Word")


# --- 2. Characters UTF-8 cannot encode ------------------------------------------------------------------

def test_lone_surrogates_and_a_non_utf8_file_name_do_not_stop_the_sync(tmp_path, embedder, capsys):
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    write(corpus, "title.json", '{"title": "\\ud800 Harbour", "text": "The harbour reopened after dredging."}')
    write(corpus, "text.jsonl", '{"title": "Tram", "text": "The tram \\udc00 line reaches the airport."}\n')
    (corpus / os.fsdecode(b"caf\xe9.md")).write_text("Caf\nThe cafe reopened.\n")
    write(corpus, "good.md", news(2))

    assert main(["index", "--corpus", str(corpus), "--index", str(index), "--quiet"]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("3 added") and "skipped caf\\xe9.md: file name is not valid UTF-8" in out, out + err
    assert "Traceback" not in err
    texts = articles_of(index)
    assert texts["title.json#0"][0] == "\ufffd Harbour" and "\ufffd" in texts["text.jsonl#1"][1]
    retriever = Retriever(index, embedder)
    assert retriever.search("tram to the airport", k=1)[0].article_id == "text.jsonl#1"
    index_state(index, embedder)


# --- 3. A corpus that vanishes, or mostly vanishes ----------------------------------------------------------

def test_a_sync_waiting_for_the_lock_checks_the_corpus_after_the_wait(tmp_path, embedder):
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    for i in range(5):
        write(corpus, f"story-{i}.md", news(i))
    sync(corpus, index, embedder=embedder)
    before = articles_of(index)
    outcome: list[BaseException | object] = []

    def waiting_sync() -> None:
        try:
            outcome.append(sync(corpus, index, embedder=embedder))
        except BaseException as exc:  # noqa: BLE001 - checked below
            outcome.append(exc)

    with LocalStore(index, writable=True).lock():  # another `qa index` holds the lock...
        second = threading.Thread(target=waiting_sync)
        second.start()
        time.sleep(0.5)  # ...while this one waits for it
        assert second.is_alive() and not outcome
        corpus.rename(tmp_path / "moved-away")
    second.join(timeout=60)
    assert isinstance(outcome[0], CorpusNotFound) and "the index was left as it was" in str(outcome[0])
    assert articles_of(index) == before


@pytest.mark.slow
def test_a_sync_that_would_remove_most_of_a_large_index_asks_first(tmp_path, embedder, capsys):
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    for i in range(MASS_REMOVAL_MIN * 2 + 2):
        write(corpus, f"story-{i:03d}.md", news(i))
    sync(corpus, index, embedder=embedder)
    for i in range(MASS_REMOVAL_MIN + 50):  # 150 of 202: over half, and over 100
        (corpus / f"story-{i:03d}.md").unlink()
    before = articles_of(index)

    with pytest.raises(MassRemoval, match="would remove 150 of the 202 indexed articles"):
        sync(corpus, index, embedder=embedder)
    assert main(["index", "--corpus", str(corpus), "--index", str(index), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "The index was left as it was" in err and "qa index --allow-mass-removal" in err
    assert "--rebuild" not in err and articles_of(index) == before

    assert main(["index", "--corpus", str(corpus), "--index", str(index), "--quiet", "--allow-mass-removal"]) == 0
    assert capsys.readouterr().out.startswith("0 added, 0 updated, 150 removed, 52 unchanged")
    assert len(articles_of(index)) == 52


# --- 4. A full disk -----------------------------------------------------------------------------------------

@contextmanager
def small_disk(folder: Path, size: str = "4m") -> Iterator[Path]:
    """A real, small file system (tmpfs) mounted at ``folder``; skips the test where mounting is not allowed."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root (the full-disk and read-only cases need a real mount)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); the disk cases need one")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(disk: Path, leave_kb: int) -> Path:
    """Fill ``disk`` with one file until ``leave_kb`` KB are free; returns the file (delete it to free space)."""
    filler = disk / "filler"
    st = os.statvfs(disk)
    with open(filler, "wb") as handle:
        handle.truncate(0)
    size = max(0, st.f_bavail * st.f_frsize - leave_kb * 1024)
    with open(filler, "wb") as handle:  # written, not sparse: tmpfs counts only pages really written
        for _ in range(size // 2**16):
            handle.write(b"\0" * 2**16)
        handle.write(b"\0" * (size % 2**16))
    return filler


# 100 KB free used to fail inside FAISS's writer too; a sync now writes only what changed, and one article fits.
@pytest.mark.parametrize("leave_kb", [0, 20, 40])
def test_a_full_disk_is_reported_as_a_full_disk_and_the_index_survives(tmp_path, seed_index, embedder, capsys,
                                                                       leave_kb):
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    with small_disk(tmp_path / "disk") as disk:
        index = disk / "index"
        shutil.copytree(seed_index, index)
        before = articles_of(index)
        reader = Retriever(index, embedder)  # the web app's: open before the disk fills
        write(corpus, "harbour.md", "Harbour dredged\nThe Velmora harbour was dredged to nine metres in May.\n")
        filler = fill(disk, leave_kb)

        assert main(["index", "--corpus", str(corpus), "--index", str(index), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert f"the disk holding {index} is full" in err and "free some space" in err, err
        assert "The index was not changed" in err and "--rebuild" not in err and "Traceback" not in err
        assert reader.search("ammunition", k=1)[0].article_id in before  # searches go on from the last generation
        assert main(["status", "--index", str(index)]) == 0  # the store read on the full disk
        assert capsys.readouterr().out.startswith("2 articles")
        late = Retriever(index, embedder)  # a new reader too
        assert late.search("ammunition", k=1)[0].article_id in before
        late.close()
        assert main(["index", "--rebuild", "--corpus", str(corpus), "--index", str(index), "--quiet"]) == 2
        assert "is full" in capsys.readouterr().err
        assert articles_of(index) == before  # the rebuild deleted nothing
        assert not list(index.glob("*.tmp")) and not list(index.glob("seg-2-*"))  # nothing half-written left
        assert not list(index.glob("lexical-2-*"))

        filler.unlink()
        assert main(["index", "--corpus", str(corpus), "--index", str(index), "--quiet"]) == 0
        assert capsys.readouterr().out.startswith("1 added, 0 updated, 0 removed, 2 unchanged")
        assert set(articles_of(index)) == set(before) | {"harbour.md"}
        index_state_of(index, embedder)
        reader.close()


def index_state_of(index: Path, embedder) -> None:
    """The stores of ``index`` agree with each other (test_reliability's check, without its test query)."""
    store = LocalStore(index)
    try:
        chunks, vectors, lexical = store.verify()
    finally:
        store.close()
    assert vectors == chunks and lexical == chunks


# --- 5. A read-only index -----------------------------------------------------------------------------------

def test_an_index_on_a_read_only_mount_can_be_searched_and_says_why_it_cannot_be_updated(tmp_path, seed_index,
                                                                                         embedder, capsys):
    with small_disk(tmp_path / "disk") as disk:
        index = disk / "index"
        shutil.copytree(seed_index, index)
        before = articles_of(index)
        done = subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot remount the tmpfs read-only ({done.stderr.strip()})")
        with pytest.raises(OSError):
            (index / "probe").write_text("x")  # really read-only, for root too

        retriever = Retriever(index, embedder)
        assert retriever.search("ammunition", k=1)[0].article_id in before
        assert main(["status", "--index", str(index)]) == 0
        assert main(["ask", "What ammunition was discussed?", "--index", str(index)]) == 0
        out = capsys.readouterr().out
        assert out.startswith("2 articles") and "155" in out

        assert main(["index", "--corpus", str(CORPUS), "--index", str(index), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "read-only file system" in err and "can be searched but not updated" in err, err
        assert "damaged" not in err and "--rebuild" not in err
        retriever.close()


# --- 6. Also found ------------------------------------------------------------------------------------------

def test_a_link_to_a_file_outside_the_corpus_is_skipped_unless_allowed(tmp_path, embedder, capsys):
    corpus, index, outside = tmp_path / "corpus", tmp_path / "index", tmp_path / "outside"
    write(corpus, "good.md", news(3))
    secret = write(outside, "secret.txt", "Private notes\nThe vault code is 4417.\n")
    os.symlink(secret, corpus / "notes.txt")
    os.symlink("/etc/passwd", corpus / "passwd.txt")
    os.symlink(corpus / "good.md", corpus / "zz-alias.md")  # a link inside the corpus is fine (a duplicate here)
    os.symlink(outside, corpus / "linked-folder")

    assert main(["index", "--corpus", str(corpus), "--index", str(index), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert f"skipped notes.txt: a link to {secret}, outside the corpus folder" in out
    assert "skipped passwd.txt: a link to /etc/passwd, outside the corpus folder" in out and "--follow-links" in out
    assert "skipped linked-folder: a link to a folder, which is not followed" in out
    assert "skipped zz-alias.md: same text as good.md" in out
    assert set(articles_of(index)) == {"good.md"}

    assert main(["index", "--corpus", str(corpus), "--index", str(index), "--quiet", "--follow-links"]) == 1
    assert "notes.txt" in articles_of(index) and "4417" in articles_of(index)["notes.txt"][1]


def test_an_index_inside_the_corpus_folder_is_not_read_as_articles(tmp_path, embedder, capsys):
    corpus = tmp_path / "corpus"
    write(corpus, "good.md", news(4))
    index = corpus / "index"
    assert main(["index", "--corpus", str(corpus), "--index", str(index), "--quiet"]) == 0
    write(corpus, "more.md", news(5))
    assert main(["index", "--corpus", str(corpus), "--index", str(index), "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("1 added, 0 updated, 0 removed, 1 unchanged, 0 skipped")


def test_article_ids_cannot_collide_whatever_the_file_names(tmp_path, embedder, capsys):
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    write(corpus, "a.json", '[{"id": "b.md", "title": "Record", "text": "A record about the ferry timetable."}]')
    write(corpus, "a.json#b.md", "File\nA file about the lighthouse keeper.\n")
    write(corpus, "good.md", news(6))
    for args in ([], ["--rebuild"]):
        assert main(["index", "--corpus", str(corpus), "--index", str(index), "--quiet", *args]) == 1
        out, err = capsys.readouterr()
        assert "skipped a.json#b.md (a record of a.json): another article already has this id" in out, out + err
        assert "damaged" not in out + err
        assert articles_of(index)["a.json#b.md"][0] == "File"  # the file's own name wins
    assert set(articles_of(index)) == {"a.json#b.md", "good.md"}


def test_control_characters_from_articles_and_file_names_are_printed_escaped(tmp_path, embedder, capsys):
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    write(corpus, "evil\x1b[31m\nname.md", "---\ntitle: \"Quarry \\e[2J\\e]0;pwned\\a news\"\nsource: \"Wire\\e[5m\"\n"
                                        "---\nThe Brenna quarry \x9b2J closed on Monday after a rockfall.\n")
    write(corpus, "empty\x1b]0;title\x07.md", "")
    assert main(["index", "--corpus", str(corpus), "--index", str(index), "--quiet"]) == 1
    assert main(["search", "Brenna quarry rockfall", "--index", str(index)]) == 0
    assert main(["search", "Brenna quarry rockfall", "--index", str(index), "--json"]) == 0
    assert main(["ask", "When did the Brenna quarry close?", "--index", str(index)]) == 0
    out, err = capsys.readouterr()
    raw = [ch for ch in "\x1b\x07\x9b" if ch in out + err]
    assert not raw, raw
    assert "skipped empty\\x1b]0;title\\x07.md: article has no text" in out
    assert "Quarry \\x1b[2J\\x1b]0;pwned\\x07 news (Wire\\x1b[5m)" in out and "evil\\x1b[31m\\nname.md" in out
    assert '"title": "Quarry \\u001b[2J' in out  # the JSON is still JSON


def test_bad_command_line_values_are_refused_or_repaired(seed_index, capsys):
    assert main(["search", os.fsdecode(b"\xff"), "--index", str(seed_index)]) == 0  # $'\xff': was a TypeError
    for argv, message in [(["search", "x", "-k", "-1"], "-1 is out of range; give a number of passages from 1"),
                          (["search", "x", "-k", "many"], "'many' is not a number"),
                          (["search", "x", "--since", "2024-12-01", "--until", "2024-11-01"], "swap them"),
                          (["ask", "x", "--since", "2024-12-01", "--until", "2024-11-01"], "swap them")]:
        with pytest.raises(SystemExit) if "-k" in argv else nullcontext():
            assert main([*argv, "--index", str(seed_index)]) == 2
        assert message in capsys.readouterr().err


def test_a_closed_output_pipe_ends_qa_quietly(seed_index):
    process = subprocess.Popen([sys.executable, "-m", "qa.cli", "status", "--index", str(seed_index)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=subprocess_env())
    process.stdout.close()  # as `qa status | head -0` does: nobody reads
    _, err = process.communicate(timeout=120)
    assert err == b"" and process.returncode == 141


# --- Also: JSON Lines dumps larger than one article file ---------------------------------------------------

def test_a_jsonl_dump_over_20_mb_is_read_as_a_stream_with_a_limit_per_record(tmp_path):
    path = tmp_path / "dump.jsonl"
    rng = random.Random(1)
    words = "harbour council vote bridge ferry school market river station budget mayor storm".split()
    with open(path, "w", encoding="utf-8") as out:
        for i in range(3000):
            text = " ".join(rng.choice(words) for _ in range(1500)) + "."
            out.write(json.dumps({"id": f"r{i}", "title": f"Story {i}", "text": text}) + "\n")
            if i == 1500:  # one record over the limit for one article, in the middle
                out.write(json.dumps({"id": "huge", "text": "x" * (MAX_RECORD_BYTES + 10)}) + "\n")
    size = path.stat().st_size
    assert size > 2 * MAX_RECORD_BYTES  # 50 MB: refused whole before ("over the 20 MB limit; split it")

    tracemalloc.start()
    try:
        articles, problems = read_file(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(articles) == 3000 and articles[-1].id == "dump.jsonl#r2999"
    assert [(p.path, p.reason) for p in problems] == [
        ("dump.jsonl (line 1502)", "record is over the 20 MB limit for one article; split it")]
    text_bytes = sum(len(a.text) for a in articles)
    # The articles, plus at most one record's bytes (the over-long one is read up to the limit, then skipped).
    assert peak < text_bytes + MAX_RECORD_BYTES + 8 * 2**20, (peak, text_bytes)


@pytest.mark.scaled
def test_many_bad_records_are_summarised_and_cost_no_memory(tmp_path, capsys):
    # 100,000 bad lines in `make test`, 500,000 with QA_TEST_SCALE=full: memory that grew with the lines (800 bytes
    # each before) would be 80 MB even at the smaller count, far over the bar of 1 MB.
    n = scaled(ci=100_000, full=500_000)
    path = write(tmp_path, "corpus/empties.jsonl", "{}\n" * n + '{"text": "A ferry sank."}\n' + "[]\n" * 7)
    tracemalloc.start()
    try:
        articles, problems = read_file(path, "empties.jsonl")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [a.text for a in articles] == ["A ferry sank."] and peak < 2**20  # 2 million lines took 1.6 GB
    assert [(p.path, p.reason) for p in problems] == [
        (f"empties.jsonl ({n:,} lines)",
         f"record has no 'text' (or 'body'/'content') string ({n:,} lines: 1, 2, 3, 4, 5, ...)"),
        ("empties.jsonl (7 lines)",
         f"record is not a JSON object (7 lines: {', '.join(str(n + i) for i in range(2, 7))}, ...)")]


@pytest.mark.slow
def test_reading_and_chunking_show_progress(tmp_path, capsys):
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    with open(write(corpus, "dump.jsonl", ""), "w", encoding="utf-8") as out:
        for i in range(CHUNKING_BAR_ARTICLES + 10):
            out.write(json.dumps({"id": str(i), "text": f"Story {i}: the council of town {i} met on Tuesday."}) + "\n")
        padding = json.dumps({"note": "n" * 1000}) + "\n"
        out.write(padding * (READING_BAR_BYTES // len(padding) + 1))
    assert main(["index", "--corpus", str(corpus), "--index", str(index)]) == 1  # not --quiet
    out, err = capsys.readouterr()
    assert out.startswith(f"{CHUNKING_BAR_ARTICLES + 10} added") and len(out.splitlines()) == 2
    # Not a terminal (captured): one plain line a step, not carriage-return frames (qa/progress.py)
    articles = CHUNKING_BAR_ARTICLES + 10
    assert "\r" not in err and re.search(r"^reading [\d.]+ of [\d.]+ MB, done in \d+ s$", err, re.M), err
    assert f"chunking {articles} of {articles} articles, done" in err, err
    assert f"embedding {articles} of {articles} chunks, done" in err, err


@pytest.mark.parametrize("text", ["x" * 100_000, ("y" * 150 + " ") * 2000,
                                  "The quarry closed. " + "supercalifragilistic" * 5000 + " Then it reopened."])
def test_an_over_long_word_is_split_over_chunks_of_bounded_size(embedder, text):
    chunker = Chunker(embedder, 128, 1, embedder.max_tokens)
    article = make_article("long.txt", "Long", text, {})
    sentences, chunks = chunker.split(article)
    assert max(len(c.text) for c in chunks) <= 128 * MAX_CHARS_PER_TOKEN  # was one 100,000-character chunk
    assert max(embedder.count([c.text for c in chunks])) <= 128
    assert all(article.text[c.start:c.end] == c.text for c in chunks)
    assert "".join(article.text[s.start:s.end] for s in sentences).replace(" ", "") == text.replace(" ", "")
