"""How many IVF lists to probe, chosen on real vectors and real questions instead of synthetic ones.

    python -m bench.probes                          # the real-news dev and check indexes (bench.realnews)
    python -m bench.probes --target 0.98 --fractions 1/8,1/16,1/32,1/64

Above ``Settings.exact_limit`` chunks the store searches an IVF index and probes ``PROBE_FRACTION`` of its lists
(``qa.store.faiss_index``). That fraction was set on synthetic vectors (bench.ann), which have no topic clusters
and so are harder for IVF than text: at 1M chunks it costs about 14 ms of every dense and hybrid search.

Here the vectors are real: every chunk vector and every sentence vector (late chunking: each sentence in its
chunk's context) of the real-news dev and check indexes, pooled: some 460,000 vectors of news text embedded by
the model. The IVF is built by the store's own ``fit_vector_index``, so its lists and training are the store's.
The queries are the real-news questions, embedded by the same model: the dev set's questions choose the
fraction (the smallest whose recall@10 against exact search reaches ``--target``), the check set's report it.
Each query is searched alone on one thread, as the app does.
"""

from __future__ import annotations

import argparse
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from bench import realnews
from bench.ann import K, recall, search_each
from bench.data import RESULTS
from bench.metrics import percentiles
from bench.report import fmt, machine, save_json, table
from bench.report import log as _log
from qa.store.faiss_index import PROBE_FRACTION, fit_vector_index, new_vector_index

FRACTIONS = (Fraction(1, 8), Fraction(1, 16), Fraction(1, 32), Fraction(1, 64))
TARGET = 0.98  # recall@10 of the dense search the chosen fraction must keep, on dev questions


def index_vectors(index: Path) -> np.ndarray:
    """Every chunk and sentence vector of a local index (float32, unit length)."""
    from bench.reader import chunks, open_index

    store = open_index(index)
    try:
        ids = [p.chunk_id for p in chunks(store)]
        parts = [store.chunk_vectors(ids)]
        for start in range(0, len(ids), 5000):
            found = store.sentences(ids[start:start + 5000])
            parts += [np.stack([s.vector for s in group]) for group in found.values() if group]
    finally:
        store.close()
    vectors = np.ascontiguousarray(np.vstack(parts), dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def run(sets: tuple[str, ...] = ("dev", "check"), fractions=FRACTIONS, target: float = TARGET,
        log=_log) -> dict:
    from bench.reader import index_embedder
    from qa.environment import configure_offline

    configure_offline()
    embedder = index_embedder(realnews.INDEXES / sets[0])  # as the indexes' chunks were embedded
    data = np.vstack([index_vectors(realnews.INDEXES / name) for name in sets])
    queries = {name: embedder.encode([r["question"] for r in realnews.load(name)]) for name in sets}
    log(f"{len(data):,} real vectors; questions: " + ", ".join(f"{k} {len(v)}" for k, v in queries.items()))
    return {"machine": machine(), **measure(data, queries, fractions, target, log)}


def measure(data: np.ndarray, queries: dict[str, np.ndarray], fractions=FRACTIONS, target: float = TARGET,
            log=_log) -> dict:
    """Recall@10 against exact search and ms per query of the store's IVF over ``data`` at each fraction of its
    lists probed, for each set of queries; the smallest fraction whose recall on the first set reaches ``target``
    is the one chosen."""
    exact = new_vector_index(data.shape[1])
    exact.add_with_ids(data, np.arange(len(data), dtype=np.int64))
    truth = {name: search_each(exact, q) for name, q in queries.items()}
    started = time.perf_counter()
    ivf = fit_vector_index(exact, exact_limit=0)  # the store's IVF for this many vectors
    built = time.perf_counter() - started
    log(f"IVF of {ivf.nlist} lists built in {built:.0f} s")
    rows = [{"fraction": "exact", "nprobe": None, **{name: {"recall@10": 1.0, "ms": percentiles(t[1])}
                                                        for name, t in truth.items()}}]
    for fraction in fractions:
        ivf.nprobe = max(1, round(ivf.nlist * fraction))
        row: dict = {"fraction": str(fraction), "nprobe": ivf.nprobe}
        for name, q in queries.items():
            found, times = search_each(ivf, q)
            row[name] = {"recall@10": recall(found, truth[name][0]), "ms": percentiles(times)}
        rows.append(row)
        log(f"{fraction}: " + ", ".join(f"{n} recall {row[n]['recall@10']:.3f}" for n in queries))
    first = next(iter(queries))
    chosen = min((r for r in rows[1:] if r[first]["recall@10"] >= target),
                 key=lambda r: Fraction(r["fraction"]), default=None)
    return {"vectors": len(data), "lists": ivf.nlist, "build_s": built, "k": K, "target": target,
            "chosen_on": first, "current": str(Fraction(PROBE_FRACTION).limit_denominator()),
            "chosen": chosen["fraction"] if chosen else None, "rows": rows}


def render(result: dict) -> str:
    sets = [k for k in result["rows"][0] if k not in ("fraction", "nprobe")]
    head = ["lists probed", "nprobe"] + [f"{s} {m}" for s in sets for m in ("recall@10", "ms p50")]
    body = [[r["fraction"], r["nprobe"] or "", *[x for s in sets for x in (fmt(r[s]["recall@10"]),
                                                                           fmt(r[s]["ms"]["p50"]))]]
            for r in result["rows"]]
    return (f"{result['vectors']:,} real vectors, IVF of {result['lists']} lists (built in "
            f"{result['build_s']:.0f} s); chosen on {result['chosen_on']} for recall@10 >= {result['target']}: "
            f"{result['chosen']} (now {result['current']})\n" + table(head, body))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.probes", description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=TARGET)
    parser.add_argument("--fractions", default=",".join(str(f) for f in FRACTIONS),
                        help="fractions of the lists to probe, e.g. 1/8,1/16")
    parser.add_argument("--out", type=Path, default=RESULTS / "probes.json")
    args = parser.parse_args(argv)
    try:
        fractions = tuple(Fraction(f) for f in args.fractions.split(","))
    except ValueError:
        parser.error("--fractions: comma-separated fractions, e.g. 1/8,1/16")
    result = run(fractions=fractions, target=args.target)
    save_json(result, args.out)
    print(render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
