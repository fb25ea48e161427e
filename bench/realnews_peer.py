"""txtai beside us on real-news retrieval: the same archive, the same model, the same questions, the same scoring.

    python -m bench.realnews_peer                # dev and check (after bench.realnews has built their indexes)
    python -m bench.realnews_peer --set check

txtai (``pip install -e '.[bench]'``; bench/peer.py) indexes every article of the set's archive in 200-word windows,
each with its title (as txtai's own examples cut text; bench.longdocs found these its best chunks), hybrid (its
BM25 beside its dense index), with the bundled model, offline. Each question is searched for its top 200 windows;
windows of articles dated after the quiz date are dropped, as our retriever's ``as_of`` drops them; the first of
the 10 best left that holds the correct choice (in its title or text) gives the rank. Hits@5 and MRR@10 are then
those bench.realnews reports for our hybrid search. txtai has no time words: the quiz date only filters.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench import realnews
from bench.metrics import percentiles
from bench.peer import TXTAI_WORDS, TxtaiIndex, titled_windows
from bench.report import save_json

CANDIDATES = 200  # windows asked of txtai per question, before the date filter


def windows(index: Path) -> list[tuple[str, str | None, str]]:
    """(article id, date, "title\\nwindow") of every 200-word window of every article of ``index``."""
    from bench.reader import open_index, rows

    store = open_index(index)
    try:
        out = []
        for row in rows(store):
            view = store.article(row.id)
            if view is None:
                continue
            out += [(row.id, row.date, window) for window in titled_windows(view.title, view.text)]
        return out
    finally:
        store.close()


def rank(peer: TxtaiIndex, items: list[tuple[str, str | None, str]], record: dict) -> int | None:
    """The rank (1-10) of the first window holding the correct choice, articles after the quiz date left out."""
    day = record["as_of"]
    kept = [i for i in peer.search(record["question"], CANDIDATES) if (items[i][1] or "") <= day][:10]
    for position, i in enumerate(kept, 1):
        if realnews.holds(items[i][2], record["answer"]):
            return position
    return None


def run(sets: tuple[str, ...] = realnews.SETS, data: Path = realnews.DATA, indexes: Path = realnews.INDEXES,
        log=print) -> dict:
    from qa.environment import configure_offline

    configure_offline()
    results = {}
    for name in sets:
        items = windows(indexes / name)
        peer = TxtaiIndex()
        started = time.perf_counter()
        peer.index([(i, text) for i, (_, _, text) in enumerate(items)])
        built = time.perf_counter() - started
        log(f"txtai {name}: {len(items):,} windows indexed in {built:.0f} s")
        ranks, times = [], []
        for record in realnews.load(name, data):
            started = time.perf_counter()
            ranks.append(rank(peer, items, record))
            times.append(time.perf_counter() - started)
        results[name] = {"system": f"txtai {peer.version} hybrid, {TXTAI_WORDS}-word windows", "windows": len(items),
                         "index_s": built, "search_ms": percentiles(times), "n": len(ranks),
                         **realnews.rank_scores(ranks)}
        log(f"txtai {name}: Hits@5 {results[name]['hits@5']:.1%}, MRR@10 {results[name]['mrr@10']:.3f}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.realnews_peer", description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=[*realnews.SETS, "both"], default="both")
    parser.add_argument("--data", type=Path, default=realnews.DATA)
    parser.add_argument("--indexes", type=Path, default=realnews.INDEXES)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    sets = realnews.SETS if args.set == "both" else (args.set,)
    results = run(sets, args.data, args.indexes)
    if args.out:
        save_json(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
