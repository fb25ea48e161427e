"""Load: many concurrent API clients asking questions while the archive grows.

    python -m bench.load                     # 20 clients x 5 questions against app.py on 127.0.0.1
    python -m bench.load --clients 8 --questions 3

Starts ``app.py`` on a free local port over a temporary copy of the bundled corpus, then runs ``--clients``
gradio_client clients at once, each asking ``--questions`` questions through the ``/ask`` API. Halfway, a new
article is written into the corpus folder, another one is deleted from it, and ``qa index`` is run beside the
app (the page's upload and delete handlers are private to the page, so the same sync under the same writer lock
stands in for them). Reports latency percentiles, errors, whether a question about the new article is answered
from it afterwards, and whether ``/articles`` lists the new article and no longer the deleted one, without
restarting the app.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.report import free_port, stop

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ["What ammunition could South Korea provide to Ukraine?", "Who did Yoon meet in Seoul?",
             "How many North Korean troops were sent to Russia?", "What do South Koreans think about sending arms?",
             "Where were the first clashes recorded?"]
NEW_ARTICLE = ("---\ntitle: Lighthouse Keeper Retires\ndate: 2024-12-01\nsource: Coast Gazette\n---\n"
               "After forty-one years, the keeper of the Skerrow lighthouse retired on Sunday.\n\n"
               "The Skerrow lighthouse will now be run automatically from the mainland.\n")
NEW_QUESTION = "When did the keeper of the Skerrow lighthouse retire?"
OLD_ARTICLE = ("---\ntitle: Ferry Timetable Withdrawn\ndate: 2024-11-20\nsource: Coast Gazette\n---\n"
               "The winter ferry timetable for the Skerrow crossing was withdrawn for corrections.\n")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run(clients: int, questions: int) -> int:
    from gradio_client import Client

    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    work = Path(tempfile.mkdtemp(prefix="qa-load-"))
    corpus, index = work / "corpus", work / "index"
    shutil.copytree(ROOT / "corpus", corpus)
    (corpus / "withdrawn.md").write_text(OLD_ARTICLE)  # deleted halfway
    port = free_port()
    app = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), "--corpus", str(corpus),
                            "--index", str(index)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180
        while True:  # the app syncs the corpus and loads the model before it listens
            try:
                Client(url, verbose=False)
                break
            except Exception:
                if app.poll() is not None or time.monotonic() > deadline:
                    print(f"app.py did not start:\n{app.stderr.read() if app.poll() is not None else ''}")
                    return 2
                time.sleep(0.25)

        latencies: list[float] = []
        errors: list[str] = []
        asked = threading.Semaphore(0)
        lock = threading.Lock()

        def client_loop(n: int) -> None:
            try:
                client = Client(url, verbose=False)
            except Exception as exc:  # noqa: BLE001 - every failure is counted and printed
                with lock:
                    errors.append(f"client {n}: {exc!r}")
                return
            for i in range(questions):
                started = time.perf_counter()
                try:
                    result = client.predict(QUESTIONS[(n + i) % len(QUESTIONS)], api_name="/ask")
                    if not isinstance(result, dict) or not result.get("text"):
                        raise ValueError(f"unexpected reply {result!r:.200}")
                except Exception as exc:  # noqa: BLE001
                    with lock:
                        errors.append(f"client {n} question {i}: {exc!r}")
                    continue
                finally:
                    asked.release()
                with lock:
                    latencies.append(time.perf_counter() - started)

        threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for _ in range(clients * questions // 2):  # halfway: a new article arrives, another goes
            asked.acquire()
        (corpus / "lighthouse.md").write_text(NEW_ARTICLE)
        (corpus / "withdrawn.md").unlink()
        sync_started = time.perf_counter()
        sync = subprocess.run([sys.executable, "-m", "qa.cli", "index", "--corpus", str(corpus), "--index",
                               str(index), "--quiet"], env=env, capture_output=True, text=True)
        sync_seconds = time.perf_counter() - sync_started
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        after = Client(url, verbose=False).predict(NEW_QUESTION, api_name="/ask")
        found = any(c["article_id"] == "lighthouse.md" for c in after.get("citations", []))
        listed = {r["id"] for r in Client(url, verbose=False).predict(api_name="/articles")["rows"]}
        listing_right = "lighthouse.md" in listed and "withdrawn.md" not in listed

        total = clients * questions
        print(f"{clients} clients x {questions} questions = {total} asks in {wall:.1f}s "
              f"({len(latencies) / wall:.1f} answers/s); errors: {len(errors)}")
        print(f"latency p50 {percentile(latencies, 0.5):.2f}s, p95 {percentile(latencies, 0.95):.2f}s, "
              f"max {max(latencies, default=float('nan')):.2f}s")
        print(f"qa index beside the app: exit {sync.returncode} in {sync_seconds:.1f}s: "
              f"{sync.stdout.splitlines()[0] if sync.stdout else sync.stderr.strip()}")
        print(f"question about the new article answered from it: {found}")
        print(f"/articles lists the new article and not the deleted one: {listing_right}")
        for line in errors[:10]:
            print("  " + line)
        return 0 if not errors and found and listing_right and sync.returncode == 0 else 1
    finally:
        stop(app)
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--questions", type=int, default=5, help="questions per client")
    args = parser.parse_args(argv)
    return run(args.clients, args.questions)


if __name__ == "__main__":
    sys.exit(main())
