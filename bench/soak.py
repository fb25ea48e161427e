"""Soak: the app under mixed uploads (good, bad, hostile), deletes, syncs and questions for a long while.

    python -m bench.soak                 # 30 minutes: make bench
    python -m bench.soak --quick         # 10 minutes: make bench BENCH_ARGS=--quick
    python -m bench.soak --minutes 1     # any length
    python -m bench.soak --sessions 10000  # many visitors instead: bench.sessions (make bench runs both)

Starts ``app.py`` on a free local port over a temporary copy of the bundled corpus. Then, until the time is up:
``--clients`` gradio_client clients ask questions through ``/ask`` (about the bundled articles and about
uploaded ones); one headless Chromium page uploads files on the Articles tab, as a user would (good
articles, and bad or hostile ones: a YAML alias bomb, lone surrogates, a binary file, thousands of bad JSON
records, an over-long word, control characters, impossible dates...), checking what the page reports; and
every ``--delete-every`` seconds some uploaded files are deleted from the corpus folder and ``qa index`` is run
beside the app. At the end it checks that the app's index equals a fresh rebuild of the corpus (articles,
chunk and sentence offsets, vectors), that no question failed, that every upload got the expected verdict,
and that the app's memory (RSS) at the end is within 20% of its memory after warm-up. Needs Debian's
Chromium (``make browser``). Results: bench/results/soak.json.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.data import RESULTS
from bench.load import QUESTIONS, percentile
from bench.report import free_port, log, rss_mb, save_json, stop
from qa.corpus import SUPPORTED_EXTENSIONS

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
#: The end state must be within this much of the start: the issue's bar for a long-running app.
MEMORY_GROWTH_LIMIT = 0.20
#: Files added in the warm-up, before the memory is read. The app's memory rises by 130-140 MB over its first ~30
#: uploads and then stays (621 -> 760 MB in a soak's first 30 s, 33 added; 799-809 MB from 1.5 to 3 minutes while
#: the archive grew from 95 to 162 articles), with torch as without: growth of +9% of 1,421 MB before the encoder
#: left torch, +21-29% of 603-649 MB after, though the app does the same.
WARM_UPLOADS = 30
TOWNS = ["Arkwell", "Brisand", "Calloway", "Dunmere", "Eskdale", "Fenwick", "Glasmere", "Holloway", "Inverly",
         "Jesmond", "Kelderby", "Lowther", "Marisk", "Northam", "Oakhurst", "Penrith", "Quarrendon", "Rydal"]


def good_article(n: int) -> tuple[str, str, str]:
    """(file name, content, a question it answers) for upload ``n``: each about its own town and number."""
    town = f"{TOWNS[n % len(TOWNS)]}-{n}"
    text = (f"---\ntitle: {town} opens a new library\ndate: 2024-12-{1 + n % 28:02d}\nsource: Soak Gazette\n---\n"
            f"The town of {town} opened a library with {1000 + n} books on Saturday.\n\n"
            f"The mayor of {town} said the building cost {40 + n} thousand pounds.\n")
    return f"soak-{n}-{town.lower()}.md", text, f"How many books does the new library in {town} have?"


def _alias_bomb(depth: int = 7) -> str:
    lines = ["a0: &a0 [x,x,x,x,x,x,x,x,x]"] + [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, depth)]
    return "---\n" + "\n".join(lines) + f"\ntitle: *a{depth - 1}\n---\nA hostile article.\n"


#: Bad or hostile uploads: (name, content, whether it is added, what the page must say). "{n}" in a text becomes
#: the upload's number, so that an article added twice is not refused as a duplicate of itself.
HOSTILE: list[tuple[str, str | bytes, bool, str]] = [
    ("bomb.md", _alias_bomb(), False, "YAML alias"),
    ("surrogates.json", '{"title": "\\ud800 Quarry {n}", "text": "Quarry {n} \\udc00 reopened for climbers."}', True,
     "Added"),
    ("all-bad.jsonl", '{"title": "no text"}\n' * 5000, False, "5,000 lines"),
    ("photo.txt", bytes(range(256)) * 16, False, "binary"),
    ("notes.pdf", b"%PDF-1.4 not an article", False, "unsupported file type"),
    ("empty.md", "", False, "no text"),
    ("ansi.md", "---\ntitle: \"Escape \\e[2J\\e]0;pwned\\a {n}\"\n---\nTerminal escapes, upload {n}.\n", True,
     "Added"),
    ("long-word.txt", "Long word {n}\n" + "x" * 100_000 + " {n}\n", True, "Added"),
    ("bad-date.md", "---\ntitle: Leap\ndate: 2023-02-30\n---\nNo such day.\n", False, "is not a date"),
    ("list-title.md", "---\ntitle: [1, 2, {a: b}]\n---\nA list for a title.\n", False, "is a list"),
    ("page.html", "<html><body><script>alert(1)</script><p>The harbour of Port {n} reopened after dredging by the "
                  "port authority.</p></body></html>", True, "Added"),
]


@dataclass
class Tally:
    """What happened, counted under one lock by every thread."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    asked: int = 0
    failed: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    uploads: dict[str, int] = field(default_factory=dict)
    wrong_uploads: list[str] = field(default_factory=list)
    syncs: list[int] = field(default_factory=list)
    deleted: int = 0
    retries: int = 0  # uploads tried again after no report came within 2 minutes
    kept: list[tuple[str, str]] = field(default_factory=list)  # (file, question) of uploaded good articles

    def add(self, **changes) -> None:
        with self.lock:
            for key, value in changes.items():
                current = getattr(self, key)
                if isinstance(current, list):
                    current.append(value)
                elif isinstance(current, dict):
                    current[value] = current.get(value, 0) + 1
                else:
                    setattr(self, key, current + value)


def warm_up_asker(url: str) -> None:
    """One client asking each question twice, for the warm-up."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    for question in QUESTIONS * 2:
        client.predict(question, api_name="/ask")


def ask_loop(url: str, tally: Tally, stop_at: float, rng: random.Random) -> None:
    from gradio_client import Client

    try:
        client = Client(url, verbose=False)
    except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
        tally.add(failed=f"client did not connect: {exc!r}")
        return
    while time.monotonic() < stop_at:
        with tally.lock:
            uploaded = list(tally.kept)
        question = rng.choice(uploaded)[1] if uploaded and rng.random() < 0.4 else rng.choice(QUESTIONS)
        started = time.perf_counter()
        try:
            result = client.predict(question, api_name="/ask")
            if not isinstance(result, dict) or not result.get("text"):
                raise ValueError(f"unexpected reply {result!r:.200}")
        except Exception as exc:  # noqa: BLE001
            tally.add(asked=1, failed=f"{question!r}: {exc!r:.300}")
            continue
        tally.add(asked=1, latencies=time.perf_counter() - started)
        time.sleep(rng.uniform(0.2, 1.0))  # a person reads the answer before the next question


@dataclass
class Clock:
    """The uploader warms the app up (one upload of each kind, then :data:`WARM_UPLOADS` added) before the clock
    starts; then all run until ``end``."""

    warmed: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)
    end: float = 0.0


def upload_loop(url: str, work: Path, tally: Tally, clock: Clock, rng: random.Random) -> None:
    """One browser page uploading files on the Articles tab: one of each kind first, then at random until the end."""
    from playwright.sync_api import sync_playwright

    files = work / "uploads"
    files.mkdir()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("#qa-question textarea")  # the app has loaded, and its events are wired
        n = 0
        warm_up = [None, *HOSTILE]  # None: a good article
        while not clock.started.is_set() or time.monotonic() < clock.end:
            n += 1
            if warm_up:
                kind = warm_up.pop(0)
            else:
                if not clock.warmed.is_set() and tally.uploads.get("added", 0) >= WARM_UPLOADS:
                    clock.warmed.set()
                    clock.started.wait()
                kind = None if rng.random() < 0.6 else rng.choice(HOSTILE)
            if kind is None:
                name, content, question = good_article(n)
                added, expect = True, "Added"
            else:
                base, content, added, expect = kind
                name, question = f"soak-{n}-{base}", None
                if isinstance(content, str):
                    content = content.replace("{n}", str(n))
            path = files / name
            path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
            if path.suffix.lower() not in SUPPORTED_EXTENSIONS:  # the picker refuses it at once: nothing is sent
                try:
                    page.get_by_role("tab", name="Ask").click()
                    page.get_by_role("tab", name="Articles").click()
                    page.locator("#qa-upload input[type=file]").set_input_files(path)
                    page.get_by_text(f"Invalid file type: {name}").first.wait_for(timeout=30_000)
                    tally.add(uploads="refused")
                except Exception as exc:  # noqa: BLE001 - a page that takes a type the server refuses is wrong
                    tally.add(wrong_uploads=f"{name}: the page did not refuse its type ({exc!r:.200})")
                    page.goto(url)
                    page.wait_for_selector("#qa-question textarea")
                continue
            report = None
            for attempt in (1, 2):  # a file set while the widget still clears the last one can be lost: once more
                try:
                    page.get_by_role("tab", name="Ask").click()  # as a user between uploads (and test_web's helper)
                    page.get_by_role("tab", name="Articles").click()
                    page.locator("#qa-upload input[type=file]").set_input_files(path)
                    page.wait_for_function(
                        """name => { const r = document.querySelector('#qa-upload-result');
                                     return !r.querySelector('.qa-progress') && r.textContent.includes(name); }""",
                        arg=name, timeout=120_000)
                    report = page.locator("#qa-upload-result").inner_text()
                    page.wait_for_timeout(500)  # the widget clears itself after each upload
                    break
                except Exception as exc:  # noqa: BLE001 - a page that stops answering is a failure too
                    tally.add(retries=1)
                    if attempt == 2:
                        tally.add(wrong_uploads=f"{name}: no report, twice ({exc!r:.200})")
                    page.goto(url)
                    page.wait_for_selector("#qa-question textarea")
            if report is None:
                continue
            # Files added while an upload is still being indexed go with it: find this file's own line.
            ok_part, _, bad_part = report.partition("Not added:")
            verdict = name in ok_part and "Added" in ok_part
            mine = ok_part if verdict else next((line for line in bad_part.splitlines() if name in line), "")
            if verdict != added or expect.split(":")[0] not in (ok_part if verdict else mine):
                tally.add(wrong_uploads=f"{name}: expected {expect!r}, the page said {report[:300]!r}")
            tally.add(uploads="added" if verdict else "refused")
            if question and verdict:
                tally.add(kept=(name, question))
        browser.close()


def delete_loop(corpus: Path, index: Path, env: dict, tally: Tally, stop_at: float, every: float,
                rng: random.Random) -> None:
    """Now and then, delete a few uploaded files and run `qa index` beside the app, as an administrator would."""
    while time.monotonic() + every < stop_at:
        time.sleep(every)
        uploaded = sorted(p for p in corpus.glob("soak-*") if p.is_file())
        for path in rng.sample(uploaded, min(len(uploaded), rng.randint(1, 3))):
            path.unlink(missing_ok=True)
            with tally.lock:
                tally.kept = [k for k in tally.kept if k[0] != path.name]
            tally.add(deleted=1)
        done = subprocess.run([sys.executable, "-m", "qa.cli", "index", "--corpus", str(corpus), "--index",
                               str(index), "--quiet"], env=env, capture_output=True, text=True)
        tally.add(syncs=done.returncode)
        if done.returncode != 0:
            tally.add(wrong_uploads=f"qa index beside the app exited {done.returncode}: {done.stderr.strip()[:300]}")


def index_contents(index: Path) -> dict[str, object]:
    """What an index holds, in a form two indexes can be compared by (chunk ids differ between builds)."""
    from bench.reader import open_index, rows

    store = open_index(index)
    try:
        views = [store.article(r.id) for r in rows(store)]
        articles = sorted((v.id, v.title, v.text, v.date, v.source, v.url, v.author) for v in views)
        passages = sorted((p for v in views for p in store.chunks(v.id)), key=lambda p: (p.article_id, p.start))
        by_chunk = store.sentences([p.chunk_id for p in passages])
        sentences = sorted({(s.article_id, s.position, s.start, s.end) for found in by_chunk.values() for s in found})
        matrix = store.chunk_vectors([p.chunk_id for p in passages]) if passages else np.zeros((0, 1))
    finally:
        store.close()
    return {"articles": articles, "chunks": [(p.article_id, p.start, p.end) for p in passages],
            "sentences": sentences, "vectors": matrix}


def compare(live: Path, fresh: Path) -> list[str]:
    """How the app's index differs from a fresh rebuild of the same corpus (empty when equal)."""
    a, b = index_contents(live), index_contents(fresh)
    differences = [f"{key} differ ({len(a[key])} vs {len(b[key])})" for key in ("articles", "chunks", "sentences")
                   if a[key] != b[key]]
    if not differences:
        gap = float(np.abs(a["vectors"] - b["vectors"]).max()) if len(a["vectors"]) else 0.0
        if gap > 1e-3:  # batches of other lengths pad differently: about 1e-6 apart
            differences.append(f"vectors differ by up to {gap:.4f}")
    return differences


def run(minutes: float, clients: int = 10, delete_every: float = 20.0, seed: int = 0,
        out: Path | None = None) -> int:
    from gradio_client import Client

    if not Path(CHROMIUM).exists():
        print(f"bench.soak: error: no Chromium at {CHROMIUM}; run `make browser` first", file=sys.stderr)
        return 2
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    work = Path(tempfile.mkdtemp(prefix="qa-soak-"))
    corpus, index = work / "corpus", work / "index"
    shutil.copytree(ROOT / "corpus", corpus)
    port = free_port()
    app_log = open(work / "app.log", "w")  # noqa: SIM115 - a file, not a pipe: a pipe nobody reads fills and blocks
    app = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), "--corpus", str(corpus),
                            "--index", str(index)], env=env, stdout=subprocess.DEVNULL, stderr=app_log, text=True)
    url = f"http://127.0.0.1:{port}/"
    tally = Tally()
    try:
        deadline = time.monotonic() + 180
        while True:  # the app syncs the corpus and loads the model before it listens
            try:
                warm = Client(url, verbose=False)
                break
            except Exception:
                if app.poll() is not None or time.monotonic() > deadline:
                    print(f"app.py did not start:\n{(work / 'app.log').read_text()[-3000:]}")
                    return 2
                time.sleep(0.25)
        # Warm-up: one upload of each kind (the first HTML page loads trafilatura, the first sync builds BM25...),
        # WARM_UPLOADS added, and each question twice from as many clients at once as the soak has, so that the
        # memory measured next is the app's working size, not its imports.
        rng = random.Random(seed)
        clock = Clock()
        uploader = threading.Thread(target=upload_loop, args=(url, work, tally, clock, random.Random(rng.random())))
        uploader.start()
        askers = [threading.Thread(target=warm_up_asker, args=(url,)) for _ in range(clients)]
        for asker in askers:
            asker.start()
        for asker in askers:
            asker.join()
        clock.warmed.wait()
        for _, question in list(tally.kept):
            warm.predict(question, api_name="/ask")
        warm_uploads = dict(tally.uploads)
        tally.uploads.clear()
        rss_start = rss_mb(app.pid)
        log(f"soak: {minutes:g} min, {clients} clients, app RSS {rss_start:.0f} MB after warm-up ({warm_uploads})")
        started = time.monotonic()
        stop_at = clock.end = started + minutes * 60
        clock.started.set()
        threads = [threading.Thread(target=ask_loop, args=(url, tally, stop_at, random.Random(rng.random())))
                   for _ in range(clients)]
        threads.append(threading.Thread(target=delete_loop, args=(corpus, index, env, tally, stop_at, delete_every,
                                                                  random.Random(rng.random()))))
        for thread in threads:
            thread.start()
        threads.append(uploader)
        next_report = time.monotonic() + 30
        while any(t.is_alive() for t in threads):  # a report every 30 s; the end noticed within 0.2 s (a 15 s soak
            time.sleep(0.2)                        # in `make test` waited out a whole 30 s sleep)
            if time.monotonic() >= next_report and any(t.is_alive() for t in threads):
                next_report += 30
                log(f"soak: {(time.monotonic() - started) / 60:.1f} min: {tally.asked} asked, {len(tally.failed)} "
                    f"failed, uploads {tally.uploads}, {tally.deleted} deleted, RSS {rss_mb(app.pid):.0f} MB")
        for thread in threads:
            thread.join()
        wall = time.monotonic() - started
        # Uploaded articles that are still in the corpus are answered from, and then the memory is read.
        with tally.lock:
            kept = list(tally.kept)
        found = 0
        for name, question in kept[-5:]:
            reply = warm.predict(question, api_name="/ask")
            found += any(c["article_id"] == name for c in reply.get("citations", []))
        rss_end = rss_mb(app.pid)
        alive = app.poll() is None
        fresh = work / "fresh-index"
        # The last sync of the app's index and a rebuild from scratch beside it, at once (each loads the model).
        final, rebuilt = [subprocess.Popen([sys.executable, "-m", "qa.cli", "index", "--corpus", str(corpus),
                                            "--index", str(folder), "--quiet"], env=env, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.PIPE, text=True) for folder in (index, fresh)]
        errors = "".join(process.communicate()[1] for process in (final, rebuilt))
        differences = compare(index, fresh) if final.returncode == rebuilt.returncode == 0 else [
            f"final qa index exited {final.returncode}, the rebuild {rebuilt.returncode}: "
            f"{errors.strip()[:300]}"]
        growth = rss_end / rss_start - 1
        articles = len(index_contents(fresh)["articles"]) if rebuilt.returncode == 0 else None
        result = {"minutes": wall / 60, "clients": clients, "asked": tally.asked, "failed": len(tally.failed),
                  "p50_s": percentile(tally.latencies, 0.5), "p95_s": percentile(tally.latencies, 0.95),
                  "uploads": tally.uploads, "wrong_uploads": len(tally.wrong_uploads), "upload_retries": tally.retries,
                  "deleted": tally.deleted,
                  "syncs_beside": len(tally.syncs), "articles_at_end": articles,
                  "uploaded_answered": f"{found}/{len(kept[-5:])}", "index_equals_rebuild": not differences,
                  "rss_start_mb": rss_start, "rss_end_mb": rss_end, "rss_growth": growth, "app_alive": alive}
        save_json(result, out or RESULTS / "soak.json")
        print(f"{wall / 60:.1f} min: {tally.asked} questions from {clients} clients, {len(tally.failed)} failed; "
              f"latency p50 {result['p50_s']:.2f}s, p95 {result['p95_s']:.2f}s")
        print(f"uploads: {tally.uploads.get('added', 0)} added, {tally.uploads.get('refused', 0)} refused, "
              f"{len(tally.wrong_uploads)} with the wrong verdict ({tally.retries} tried twice); {tally.deleted} "
              f"files deleted over "
              f"{len(tally.syncs)} `qa index` runs beside the app; {articles} articles at the end")
        print(f"index equal to a fresh rebuild: {not differences}" + (f" ({'; '.join(differences)})"
                                                                     if differences else ""))
        print(f"recent uploads answered from: {found}/{len(kept[-5:])}; app alive: {alive}")
        print(f"app memory: {rss_start:.0f} MB after warm-up, {rss_end:.0f} MB at the end ({growth:+.1%}; "
              f"limit {MEMORY_GROWTH_LIMIT:+.0%})")
        for line in (tally.failed + tally.wrong_uploads)[:10]:
            print("  " + line)
        if tally.failed or tally.wrong_uploads or not alive:
            print("the app's log ends:\n" + (work / "app.log").read_text()[-3000:])
        ok = (not tally.failed and not tally.wrong_uploads and not differences and alive
              and growth <= MEMORY_GROWTH_LIMIT and found == len(kept[-5:]))
        return 0 if ok else 1
    finally:
        stop(app)
        app_log.close()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=None, help="how long (default: 30, or 10 with --quick)")
    parser.add_argument("--quick", action="store_true", help="the short run: 10 minutes")
    parser.add_argument("--clients", type=int, default=10, help="question clients (default: 10)")
    parser.add_argument("--delete-every", type=float, default=20.0, help="seconds between deletes + qa index")
    parser.add_argument("--seed", type=int, default=0)
    from bench import sessions

    sessions.add_arguments(parser, default=None)  # --sessions N: the many-visitors soak (bench.sessions) instead
    args = parser.parse_args(argv)
    if args.sessions is not None:
        return sessions.run(args.sessions, args.threads, args.ask_every)
    minutes = args.minutes if args.minutes is not None else 10 if args.quick else 30
    return run(minutes, args.clients, args.delete_every, args.seed)


if __name__ == "__main__":
    sys.exit(main())
