"""Search and ask at 1M chunks: lexical, dense and hybrid search p50, ask p50 and a reader's memory, measured.

    python -m bench.scale                          # 1M chunks (the build: ~10 minutes and ~5.5 GB here)
    python -m bench.scale --sizes 20000,250000     # smaller archives

The index is built as bench/sync_cost.py builds its own: synthetic articles of Markov text made from the SQuAD
passages (so the lexical index has real vocabulary and the SQuAD questions find words in it), 3 chunks each, with
random unit vectors, written straight through the store in commits of 20,000 articles. The vectors are random, so
dense results mean nothing, but a search costs what it costs on real vectors of the same size. The index names
the bundled model, so the real model embeds the questions (a hybrid search and an ask pay for it, as in the app).

Then a fresh process opens it and times, on the SQuAD sample's questions (half searched, half asked, each with an
empty query cache, after three warm-up questions: bench.speed's ``query_latency``): ``search`` per mode (k=5) and
``ask``; then its peak resident memory. Kept in ``--workdir`` (default: a temporary folder, removed after) so a
second run can reuse a build with ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.data import RESULTS
from bench.report import save_json

SIZES = (1_000_000,)
QUESTIONS = 200
TARGETS = {"lexical": 5.0, "hybrid": 20.0, "ask": 50.0}  # p50 ms at 1M chunks (issue 31)


def build(size: int, folder: Path) -> float:
    """Write ``size`` chunks of synthetic articles into a new local index at ``folder``; seconds it took."""
    from bench import sync_cost
    from qa.config import DEFAULT_MODEL

    articles = sync_cost.synthetic(size // sync_cost.CHUNKS_PER_ARTICLE)
    store = sync_cost.New(folder, model=DEFAULT_MODEL)
    started = time.perf_counter()
    for i in range(0, len(articles), sync_cost.BATCH_ARTICLES):
        store.commit(articles[i:i + sync_cost.BATCH_ARTICLES], seed=i)
    store.compact()
    return time.perf_counter() - started


def measure(folder: Path, questions: int = QUESTIONS) -> dict:
    """In this (fresh) process: query latency per mode and for ask, then peak memory."""
    from bench.data import squad_questions
    from bench.process import memory
    from bench.reader import index_embedder
    from bench.speed import query_latency
    from qa.environment import configure_offline

    configure_offline()
    embedder = index_embedder(folder)  # the question is embedded by the encoder the index names, as in the app
    asked = [q.question for q in squad_questions()][:questions]
    out = query_latency(folder, embedder, asked, modes=("bm25", "dense", "hybrid"))
    return out | memory()


def run(sizes=SIZES, workdir: Path | None = None, keep: bool = False) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="qa-scale-") as tmp:
        base = workdir or Path(tmp)
        for size in sizes:
            folder = base / f"scale-{size}"
            built = None
            if not (keep and (folder / "qa.sqlite").exists()):
                built = build(size, folder)
            code = ("import json; from pathlib import Path; from bench.scale import measure; "
                    f"print('RESULT ' + json.dumps(measure(Path({str(folder)!r}))))")
            root = str(Path(__file__).resolve().parent.parent)
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root,
                                  env={**os.environ, "PYTHONPATH": root})
            line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                raise RuntimeError(f"measuring {size} chunks failed: {done.stderr[-2000:]}")
            rows.append({"size": size, "build_s": built, **json.loads(line[7:])})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def render(rows: list[dict]) -> str:
    lines = ["| chunks | lexical (bm25) p50 | dense p50 | hybrid p50 | ask p50 | ask p95 | reader peak RSS | build |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        s = r["search_ms"]
        built = f"{r['build_s']:.0f} s" if r.get("build_s") else "kept"
        lines.append(f"| {r['chunks']:,} | {s['bm25']['p50']:.1f} ms | {s['dense']['p50']:.1f} ms | "
                     f"{s['hybrid']['p50']:.1f} ms | {r['ask_ms']['p50']:.1f} ms | {r['ask_ms']['p95']:.1f} ms | "
                     f"{r['peak_rss_mib']:,.0f} MiB | {built} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated chunk counts")
    parser.add_argument("--workdir", type=Path, help="keep the built indexes here (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="reuse an index already built in --workdir")
    parser.add_argument("--out", type=Path, default=RESULTS / "scale.json")
    args = parser.parse_args(argv)
    rows = run(tuple(int(s) for s in args.sizes.split(",")), args.workdir, args.keep)
    print(render(rows))
    print(f"saved {save_json(rows, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
