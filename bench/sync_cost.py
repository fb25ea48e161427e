"""What one sync costs as the archive grows: adding and removing one article, and a sync with nothing to do.

    python -m bench.sync_cost                      # 20k, 250k and 1M chunks, this design only
    python -m bench.sync_cost --old /tmp/qa-old --old-batch 0 --old-rounds 1   # the old design beside (make bench)

Each size gets an index of synthetic articles (3 chunks each, random unit vectors, Markov text as bench/synth.py
makes it: so the lexical index has real vocabulary) written straight through the store, then one article is
added, one removed, and the store's part of a no-op sync (what is indexed, which files were read) is timed,
each ROUNDS times, medians reported. Embedding is left out: it costs what the article costs in both designs.
``--old`` names a checkout of the design before issue 15 (one FAISS file and a bm25s folder per generation, both
rewritten by every commit: ``git worktree add --detach /tmp/qa-old <commit>``); it runs in a child process
with that checkout first on its path, on the same synthetic articles. Every commit of the old design rebuilds
BM25 over the whole index, so building it in 20,000-article batches costs the square of its size (hours at 1M
chunks): ``--old-batch 0`` builds it in one commit instead and ``--old-rounds`` times fewer commits; what is
measured after the build (one add, one removal, a no-op) is the same, and the new design is built as always.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.data import RESULTS

ROOT = Path(__file__).resolve().parent.parent
SIZES = (20_000, 250_000, 1_000_000)  # the 1M-chunk build takes ~8 minutes and ~5.5 GB here (BENCHMARKS.md)
ROUNDS = 3
DIM = 384
CHUNKS_PER_ARTICLE = 3
#: Articles per commit while building (a backfill in batches, as `qa index` of a large corpus is run).
BATCH_ARTICLES = 20_000


def synthetic(count: int, seed: int = 0) -> list[tuple[str, str, str, list[str]]]:
    """(id, title, date, chunk texts) of ``count`` articles of Markov text (no qa import: the old design uses it)."""
    import random

    from bench.data import squad_passages
    from bench.synth import MarkovText

    texts = list(squad_passages(ROOT.parent / "shared" / "eval").values())
    texts += [p.read_text(encoding="utf-8") for p in sorted((ROOT / "corpus").glob("*.md"))]
    chain = MarkovText(texts, seed)
    pool = [chain.sentence() for _ in range(min(50_000, count * CHUNKS_PER_ARTICLE))]
    titles = [" ".join(chain.sentence(10).split()[:8]) for _ in range(min(10_000, count))]
    rng = random.Random(seed)
    return [(f"synthetic/{i:07d}.md", rng.choice(titles), f"20{rng.randint(18, 25)}-{rng.randint(1, 12):02d}-01",
             [" ".join(rng.choice(pool) for _ in range(4)) for _ in range(CHUNKS_PER_ARTICLE)]) for i in range(count)]


def vectors(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- The two designs, behind one small interface: build(articles), add(article), remove(id), noop() ------------


def synthetic_article(aid: str, title: str, date: str | None, chunks: list[str]) -> tuple:
    """(Article, sentence spans, chunks) of an article whose sentences are ``chunks``, one chunk each, joined by
    spaces; imported at call time, so the old design gets its own checkout's types."""
    from qa.chunking import Chunk, Span
    from qa.corpus import Article

    text = " ".join(chunks)
    spans, at = [], 0
    for c in chunks:
        spans.append(Span(at, at + len(c)))
        at += len(c) + 1
    rows = [Chunk(aid, i, s.start, s.end, text[s.start:s.end], i, i) for i, s in enumerate(spans)]
    return Article(aid, title, text, date, "Wire"), spans, rows


class New:
    def __init__(self, folder: Path, model: str = "synthetic"):
        """``model``: the model the index names (bench/scale.py names the bundled one, to ask it questions)."""
        from qa.store.local import LocalStore

        self.store = LocalStore(folder, writable=True)
        self.folder = folder
        self.model = model

    def _writes(self, articles, seed):
        from qa.store import ArticleWrite

        out = []
        for n, record in enumerate(articles):
            article, spans, cs = synthetic_article(*record)
            v = vectors(len(cs), seed + n)
            out.append(ArticleWrite(article, tuple(spans), tuple(cs), v, v, article.id))
        return tuple(out)

    def commit(self, articles=(), remove=(), seed=0):
        from qa.store import Commit, Manifest

        with self.store.lock():
            self.store.commit(Commit(Manifest(self.model, DIM, 128, 1), tuple(remove), self._writes(articles, seed)))

    def compact(self):
        with self.store.lock():
            self.store.compact()

    def noop(self):
        self.store.indexed(), self.store.files()


class Old:
    """The design before issue 15 (qa/store.py's Writer), from the checkout first on sys.path."""

    def __init__(self, folder: Path):
        from qa.store import Writer

        self.writer = Writer(folder)

    def commit(self, articles=(), remove=(), seed=0):
        from qa.store import Manifest

        added, chunk_vectors = [], []
        for n, record in enumerate(articles):
            article, spans, rows = synthetic_article(*record)
            added.append((article, spans, rows))
            chunk_vectors.append(vectors(len(rows), seed + n))
        v = np.concatenate(chunk_vectors) if chunk_vectors else np.zeros((0, DIM), np.float32)
        self.writer.commit(Manifest("synthetic", DIM, 128, 1), list(remove), added, v, v)

    def compact(self):
        pass

    def noop(self):
        self.writer.indexed(), self.writer.files()


def measure(design: str, size: int, workdir: Path, batch: int = BATCH_ARTICLES, rounds: int = ROUNDS) -> dict:
    """Build an index of ``size`` chunks with ``design`` in commits of ``batch`` articles (0: one commit) and time
    one add, one removal and a no-op, ``rounds`` times each."""
    articles = synthetic(size // CHUNKS_PER_ARTICLE + ROUNDS)
    base, extra = articles[:size // CHUNKS_PER_ARTICLE], articles[size // CHUNKS_PER_ARTICLE:][:rounds]
    folder = workdir / f"{design}-{size}"
    store = (New if design == "new" else Old)(folder)
    batch = batch or len(base)
    started = time.perf_counter()
    for i in range(0, len(base), batch):
        store.commit(base[i:i + batch], seed=i)
    store.compact()
    built = time.perf_counter() - started
    add, remove, noop = [], [], []
    for r, article in enumerate(extra):
        t = time.perf_counter()
        store.commit([article], seed=10**7 + r)
        add.append(time.perf_counter() - t)
        t = time.perf_counter()
        store.commit(remove=[base[r][0]])
        remove.append(time.perf_counter() - t)
        t = time.perf_counter()
        store.noop()
        noop.append(time.perf_counter() - t)
    disk = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return {"design": design, "chunks": size, "build_s": built, "add_s": statistics.median(add),
            "remove_s": statistics.median(remove), "noop_s": statistics.median(noop), "peak_rss_mib": rss_mib(),
            "disk_mib": disk / 2**20, "rounds": rounds, "batch_articles": batch}


def reader_memory(size: int, workdir: Path) -> dict:
    """A reader of the new design at ``size`` chunks, in a fresh process: peak RSS after opening it and four dense
    and lexical searches."""
    from qa.store.local import LocalStore

    store = LocalStore(workdir / f"new-{size}")
    q = vectors(1, 99)[0]
    times = []
    for word in ("harbour council", "the river of the north", "university students", "war in the city"):
        t = time.perf_counter()
        store.dense(q, 50)
        store.lexical(word, 50)
        times.append(time.perf_counter() - t)
    return {"chunks": size, "reader_rss_mib": rss_mib(), "search_both_ms_median": 1000 * statistics.median(times)}


def _child(design: str, size: int, workdir: Path, old: Path | None, batch: int = BATCH_ARTICLES,
           rounds: int = ROUNDS, call: str = "") -> dict:
    path = [str(old), str(ROOT)] if design == "old" else [str(ROOT)]
    call = call or f"measure({design!r}, {size}, Path({str(workdir)!r}), {batch}, {rounds})"
    # Loaded by its path: the old checkout has a bench package of its own (its bench.data and bench.synth serve).
    code = ("import json, importlib.util as u; from pathlib import Path; "
            f"s = u.spec_from_file_location('sync_cost', {str(Path(__file__))!r}); m = u.module_from_spec(s); "
            "s.loader.exec_module(m); measure, reader_memory = m.measure, m.reader_memory; "
            f"out = {call}; print('RESULT ' + json.dumps(out))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    # Run from the work folder: "-c" puts the current folder first on sys.path, before PYTHONPATH.
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=workdir)
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"{design} at {size}: {done.stderr[-2000:]}")
    return json.loads(line[7:])


def run(sizes=SIZES, old: Path | None = None, workdir: Path | None = None, old_batch: int = BATCH_ARTICLES,
        old_rounds: int = ROUNDS) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="qa-sync-cost-", dir=workdir) as tmp:
        for size in sizes:
            for design in ("new", "old") if old else ("new",):
                extra = (old_batch, old_rounds) if design == "old" else ()
                rows.append(_child(design, size, Path(tmp), old, *extra))
                if design == "new":  # in a process of its own: the builder's peak is not the reader's
                    rows[-1].update(_child(design, size, Path(tmp), None,
                                           call=f"reader_memory({size}, Path({str(tmp)!r}))"))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def render(rows: list[dict]) -> str:
    lines = ["| design | chunks | add one article (s) | remove one (s) | no-op (s) | build (s) | peak RSS (MiB) | "
             "disk (MiB) | reader RSS (MiB) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        reader = f"{r['reader_rss_mib']:,.0f}" if "reader_rss_mib" in r else ""
        lines.append(f"| {r['design']} | {r['chunks']:,} | {r['add_s']:.3f} | {r['remove_s']:.3f} | {r['noop_s']:.3f} "
                     f"| {r['build_s']:.0f} | {r['peak_rss_mib']:,.0f} | {r['disk_mib']:,.0f} | {reader} |")
    return "\n".join(lines)


def plot(rows: list[dict], where: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for design in ("old", "new"):
        for key, style in (("add_s", "-o"), ("remove_s", "--s")):
            pts = [(r["chunks"], r[key]) for r in rows if r["design"] == design]
            if pts:
                ax.plot(*zip(*pts, strict=True), style, label=f"{design}: {key[:-2]} one article")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("chunks in the index")
    ax.set_ylabel("seconds per commit (embedding excluded)")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(where, dpi=110)
    return where


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sync_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated chunk counts")
    parser.add_argument("--old", type=Path, help="a checkout of the design before issue 15, to run beside")
    parser.add_argument("--old-batch", type=int, default=BATCH_ARTICLES,
                        help="articles per commit while building the old design's index (0: all in one commit)")
    parser.add_argument("--old-rounds", type=int, default=ROUNDS, help="adds and removals timed in the old design")
    parser.add_argument("--workdir", type=Path, help="where the indexes are built (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=RESULTS / "sync_cost.json")
    args = parser.parse_args(argv)
    rows = run([int(s) for s in args.sizes.split(",")], args.old, args.workdir, args.old_batch, args.old_rounds)
    from bench.report import save_json  # here: the old design's child process loads this file with its own bench

    print(render(rows))
    print(f"saved {save_json(rows, args.out)}")
    with_plot = ROOT / "bench" / "sync_cost.png"
    try:
        print(f"plot {plot(rows, with_plot)}")
    except ImportError:
        print("matplotlib missing (the [bench] extra): no plot")
    return 0


if __name__ == "__main__":
    sys.exit(main())
