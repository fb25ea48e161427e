"""Lexical search that updates in place: the candidates measured for issue 15, on synthetic chunks.

    python -m bench.lexical                       # 20k chunks: tantivy (the store's), SQLite FTS5, bm25s
    python -m bench.lexical --sizes 1000000 --only tantivy
    python -m bench.lexical --sizes 1000000 --only tantivy --shares 0.2,0.15,0.1   # the cutoff's trade-off

For each size: build time (all chunks in one go), the cost of one commit adding 3 chunks and deleting 3, and
query latency (p50/p90 over 300 SQuAD questions, top 50). bm25s cannot update in place: its "commit" is a
rebuild. The chunks are bench/sync_cost.py's Markov text, so the vocabulary is real and small (common words are
very common), which is the hard case for top-k over a union of posting lists. ``--shares`` times the store's
search with other common-word cutoffs (qa.store.lexical.COMMON_SHARE) beside the store's own, question by question
in one loop (so a loaded machine slows all alike), with each one's overlap with the ranking by every word.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.data import RESULTS, squad_questions
from bench.report import save_json
from bench.sync_cost import synthetic

CANDIDATES = ("tantivy", "fts5", "bm25s")
_WORD = re.compile(r"\w\w+")


def texts(n: int) -> list[str]:
    return [f"{title}\n{c}" for _, title, _, chunks in synthetic(n // 3 + 1) for c in chunks][:n]


def _latency(search, questions) -> dict:
    times = []
    for q in questions:
        t = time.perf_counter()
        search(q)
        times.append(1000 * (time.perf_counter() - t))
    return _p50_p90(times)


def _p50_p90(times_ms: list[float]) -> dict:
    ordered = sorted(times_ms)
    return {"p50_ms": statistics.median(ordered), "p90_ms": ordered[int(0.9 * len(ordered))]}


def tantivy_run(docs: list[str], questions: list[str], folder: Path, shares: Sequence[float] = ()) -> dict:
    from qa.filters import Filters
    from qa.store.lexical import COMMON_SHARE, LexicalIndex, LexicalWriter, words

    started = time.perf_counter()
    writer = LexicalWriter(folder, create=True)
    writer.add((i + 1, 1, "Wire", None, d) for i, d in enumerate(docs))
    writer.commit()
    writer.close()
    built = time.perf_counter() - started
    t = time.perf_counter()
    writer = LexicalWriter(folder)
    writer.add((len(docs) + 10 + i, 2, "Wire", None, docs[i]) for i in range(3))
    writer.delete([1, 2, 3])
    writer.commit()
    writer.close()
    commit = time.perf_counter() - t
    index = LexicalIndex(folder)
    out = {"build_s": built, "commit_s": commit, "segments": index.searcher.num_segments,
           **_latency(lambda q: index.search(q, 50, Filters()), questions)}
    full = _latency(lambda q: index._search(words(q), 50, Filters()), questions)
    out.update(all_words_p50_ms=full["p50_ms"], all_words_p90_ms=full["p90_ms"])
    # The top 10 costs what the top 50 costs when nothing is skipped (see qa/store/lexical.py on block-max WAND).
    out["top10_p50_ms"] = _latency(lambda q: index.search(q, 10, Filters()), questions)["p50_ms"]
    out.update(_shares(index, [q for q in questions if words(q)], sorted({COMMON_SHARE, *shares}, reverse=True)))
    return out


def _shares(index, questions: list[str], shares: list[float]) -> dict:
    """p50/p90 of the store's search with each common-word cutoff, timed in turn question by question (two
    rounds), and how much of the top 10 and top 50 by every word each keeps."""
    from qa.filters import Filters
    from qa.store.lexical import COMMON_SHARE, words

    full = {q: index._search(words(q), 50, Filters()) for q in questions}
    times: dict[float, list[float]] = {s: [] for s in shares}
    kept: dict[float, list[tuple[float, float]]] = {s: [] for s in shares}
    for round_ in range(2):
        for q in questions:
            for share in shares:
                t = time.perf_counter()
                found = index.search(q, 50, Filters(), share=share)
                times[share].append(1000 * (time.perf_counter() - t))
                if not round_:
                    ids, ref = [i for i, _ in found], [i for i, _ in full[q]]
                    kept[share].append((len(set(ids[:10]) & set(ref[:10])) / 10, len(set(ids) & set(ref)) / 50))
    rows = []
    for share in shares:
        rows.append({"share": share, **_p50_p90(times[share]),
                     "overlap_at_10": statistics.mean(a for a, _ in kept[share]),
                     "overlap_at_50": statistics.mean(b for _, b in kept[share])})
    mine = next(r for r in rows if r["share"] == COMMON_SHARE)
    return {"cutoff_overlap_at_10": mine["overlap_at_10"], "cutoff_overlap_at_50": mine["overlap_at_50"],
            "shares": rows}


def fts5_run(docs: list[str], questions: list[str], folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(folder / "fts.sqlite", isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE VIRTUAL TABLE lex USING fts5(text, content='', tokenize='unicode61 remove_diacritics 2')")
    started = time.perf_counter()
    con.execute("BEGIN")
    con.executemany("INSERT INTO lex(rowid, text) VALUES (?, ?)", ((i + 1, d) for i, d in enumerate(docs)))
    con.execute("COMMIT")
    built = time.perf_counter() - started
    t = time.perf_counter()
    con.execute("BEGIN")
    con.executemany("INSERT INTO lex(rowid, text) VALUES (?, ?)", ((len(docs) + 10 + i, docs[i]) for i in range(3)))
    con.executemany("INSERT INTO lex(lex, rowid, text) VALUES ('delete', ?, ?)", ((i + 1, docs[i]) for i in range(3)))
    con.execute("COMMIT")
    commit = time.perf_counter() - t

    def search(q: str) -> None:
        words = sorted(set(_WORD.findall(q.lower())))
        if words:
            expr = " OR ".join(f'"{w}"' for w in words)
            con.execute("SELECT rowid, bm25(lex) FROM lex WHERE lex MATCH ? ORDER BY rank LIMIT 50", (expr,)).fetchall()

    return {"build_s": built, "commit_s": commit, **_latency(search, questions)}


def bm25s_run(docs: list[str], questions: list[str], folder: Path) -> dict:
    import bm25s

    def build(texts: list[str]):
        model = bm25s.BM25()
        model.index(bm25s.tokenize(texts, stopwords=None, show_progress=False), show_progress=False)
        return model

    started = time.perf_counter()
    model = build(docs)
    built = time.perf_counter() - started
    t = time.perf_counter()
    build(docs[3:] + docs[:3])  # no update in place: a commit rebuilds
    commit = time.perf_counter() - t

    def search(q: str) -> None:
        tokens = bm25s.tokenize([q], stopwords=None, return_ids=False, show_progress=False)
        if tokens[0]:
            model.retrieve(tokens, k=50, show_progress=False, n_threads=0)

    return {"build_s": built, "commit_s": commit, **_latency(search, questions)}


RUNS = {"tantivy": tantivy_run, "fts5": fts5_run, "bm25s": bm25s_run}


def run(sizes: list[int], only: list[str], shares: Sequence[float] = ()) -> list[dict]:
    questions = [q.question for q in squad_questions()][:300]
    rows = []
    for n in sizes:
        docs = texts(n)
        for name in only:
            with tempfile.TemporaryDirectory(prefix="qa-lexical-") as tmp:
                extra = (shares,) if name == "tantivy" else ()
                found = RUNS[name](docs, questions, Path(tmp) / "index", *extra)
                rows.append({"candidate": name, "chunks": n, **found})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def render(rows: list[dict]) -> str:
    lines = ["| candidate | chunks | build (s) | commit of +3/-3 chunks (s) | p50 (ms) | p90 (ms) |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['candidate']} | {r['chunks']:,} | {r['build_s']:.1f} | {r['commit_s']:.3f} | {r['p50_ms']:.2f} | "
              f"{r['p90_ms']:.2f} |" for r in rows]
    cutoffs = [(r, s) for r in rows for s in r.get("shares", ())]
    if cutoffs:
        lines += ["", "| chunks | common-word share | p50 (ms) | p90 (ms) | top 10 kept | top 50 kept |",
                  "|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['chunks']:,} | {s['share']:g} | {s['p50_ms']:.2f} | {s['p90_ms']:.2f} | "
                  f"{s['overlap_at_10']:.3f} | {s['overlap_at_50']:.3f} |" for r, s in cutoffs]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lexical", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000")
    parser.add_argument("--only", default=",".join(CANDIDATES))
    parser.add_argument("--shares", default="", help="tantivy: other common-word cutoffs to time beside the store's")
    parser.add_argument("--out", type=Path, default=RESULTS / "lexical.json")
    args = parser.parse_args(argv)
    only = [c.strip() for c in args.only.split(",") if c.strip()]
    if any(c not in RUNS for c in only):
        print(f"bench.lexical: error: --only {args.only!r}: choose from {', '.join(CANDIDATES)}", file=sys.stderr)
        return 2
    shares = [float(s) for s in args.shares.split(",") if s.strip()]
    rows = run([int(s) for s in args.sizes.split(",")], only, shares)
    print(render(rows))
    save_json(rows, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
