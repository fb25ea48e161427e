"""Soak, many visitors: 10,000 API calls, each a new session, and the app's memory at the start and the end.

    python -m bench.soak --sessions 10000    # make bench
    python -m bench.sessions --sessions 300  # any number

Starts ``app.py`` on a free local port over a temporary copy of the bundled corpus, warms it up (each question
of bench.load asked once), reads its resident memory (RSS), then makes ``--sessions`` calls over plain HTTP
(``POST /gradio_api/call/<api>``, then its event stream), as a script or a visitor's first page load would: no
session id is sent, so each call is a new Gradio session, whose state the app keeps until it drops the least
recently used (``qa.web.app.SESSIONS_KEPT``). One call in ``--ask-every`` is a question (/ask), the others list
(/articles) or search (/search). Passes when no call failed and the RSS at the end is at most
:data:`MEMORY_LIMIT_MB` (issue 27: the app grew from 666 MB to 2,676 MB over 10,000 such calls before sessions
were bounded). Results: bench/results/soak-sessions.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.data import RESULTS
from bench.load import QUESTIONS, percentile
from bench.report import free_port, log, rss_mb, save_json, stop

ROOT = Path(__file__).resolve().parent.parent
#: The app's memory after 10,000 sessions must stay within this (issue 27's bar).
MEMORY_LIMIT_MB = 1200


def call(url: str, api: str, data: list) -> float:
    """One API call as a new session (no session id sent); its seconds. Raises unless the stream completes."""
    import httpx

    started = time.perf_counter()
    reply = httpx.post(f"{url}gradio_api/call/{api}", json={"data": data}, timeout=120)
    reply.raise_for_status()
    stream = httpx.get(f"{url}gradio_api/call/{api}/{reply.json()['event_id']}", timeout=300).text
    events = [line.split(":", 1)[1].strip() for line in stream.splitlines() if line.startswith("event:")]
    if not events or events[-1] != "complete":
        raise RuntimeError(f"/{api} ended with {events[-1:] or 'nothing'}: {stream[-300:]!r}")
    return time.perf_counter() - started


def request(n: int, ask_every: int) -> tuple[str, list]:
    """The ``n``-th call: a question now and then, else a page of the list or a search."""
    question = QUESTIONS[n % len(QUESTIONS)]
    if n % ask_every == 0:
        return "ask", [question, None, None, None, None, True]
    if n % 2:
        return "articles", ["", "date", True, (n * 7) % 40, 10]
    return "search", [question, 5, None, None, None, True, "hybrid"]


def start_app(work: Path, env: dict) -> tuple[subprocess.Popen, str]:
    """``app.py`` over a copy of the bundled corpus, once it answers (it syncs and loads the model first)."""
    import httpx

    corpus, index = work / "corpus", work / "index"
    shutil.copytree(ROOT / "corpus", corpus)
    port = free_port()
    with open(work / "app.log", "w") as app_log:  # a file, not a pipe: a pipe nobody reads fills and blocks
        app = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), "--corpus", str(corpus),
                                "--index", str(index)], env=env, stdout=subprocess.DEVNULL, stderr=app_log)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx.get(url + "gradio_api/info", timeout=10).status_code == 200:
                return app, url
        except httpx.HTTPError:
            pass
        if app.poll() is not None or time.monotonic() > deadline:
            stop(app)
            raise RuntimeError(f"app.py did not start:\n{(work / 'app.log').read_text()[-3000:]}")
        time.sleep(0.25)


def run(sessions: int = 10_000, threads: int = 4, ask_every: int = 10, out: Path | None = None) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    work = Path(tempfile.mkdtemp(prefix="qa-sessions-"))
    try:
        app, url = start_app(work, env)
    except RuntimeError as exc:
        print(exc)
        shutil.rmtree(work, ignore_errors=True)
        return 2
    try:
        for question in QUESTIONS:  # warm-up: the memory measured next is the app's working size, not its imports
            call(url, "ask", [question, None, None, None, None, True])
        rss_start = rss_mb(app.pid)
        log(f"sessions: {sessions:,} calls, each a new session, {threads} at a time; app RSS {rss_start:.0f} MB "
            "after warm-up")
        numbers, lock = itertools.count(), threading.Lock()
        latencies: list[float] = []
        failed: list[str] = []
        peak = [rss_start]
        started = time.monotonic()

        def worker() -> None:
            while (n := next(numbers)) < sessions:
                api, data = request(n, ask_every)
                try:
                    seconds = call(url, api, data)
                except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
                    with lock:
                        failed.append(f"/{api} {json.dumps(data)[:80]}: {exc!r:.300}")
                    continue
                with lock:
                    latencies.append(seconds)
                    if len(latencies) % 500 == 0:
                        peak[0] = max(peak[0], rss_mb(app.pid))
                        log(f"sessions: {len(latencies):,} done, {len(failed)} failed, RSS {peak[0]:.0f} MB peak")

        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        wall = time.monotonic() - started
        alive = app.poll() is None
        rss_end = rss_mb(app.pid) if alive else float("nan")
        result = {"sessions": sessions, "threads": threads, "ask_every": ask_every, "failed": len(failed),
                  "seconds": wall, "p50_s": percentile(latencies, 0.5), "p95_s": percentile(latencies, 0.95),
                  "rss_start_mb": rss_start, "rss_end_mb": rss_end, "rss_peak_mb": max(peak[0], rss_end),
                  "limit_mb": MEMORY_LIMIT_MB, "app_alive": alive}
        save_json(result, out or RESULTS / "soak-sessions.json")
        print(f"{sessions:,} API calls, each a new session, in {wall / 60:.1f} min ({threads} at a time): "
              f"{len(failed)} failed; latency p50 {result['p50_s']:.2f}s, p95 {result['p95_s']:.2f}s")
        print(f"app memory: {rss_start:.0f} MB after warm-up, {rss_end:.0f} MB at the end "
              f"(peak {result['rss_peak_mb']:.0f} MB; limit {MEMORY_LIMIT_MB:,} MB)")
        for line in failed[:10]:
            print("  " + line)
        if failed or not alive:
            print("the app's log ends:\n" + (work / "app.log").read_text()[-3000:])
        return 0 if not failed and alive and rss_end <= MEMORY_LIMIT_MB else 1
    finally:
        stop(app)
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sessions", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run(args.sessions, args.threads, args.ask_every)


def add_arguments(parser: argparse.ArgumentParser, default: int | None = 10_000) -> None:
    parser.add_argument("--sessions", type=int, default=default,
                        help="API calls, each a new session (make bench: 10,000)")
    parser.add_argument("--threads", type=int, default=4, help="calls at a time (default: 4)")
    parser.add_argument("--ask-every", type=int, default=10, help="one call in this many is /ask (default: 10)")


if __name__ == "__main__":
    sys.exit(main())
