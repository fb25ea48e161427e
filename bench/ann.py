"""FAISS at scale: exact search against HNSW and the store's IVF, in recall@10 and ms per query.

The store searches exactly up to ``Settings.exact_limit`` chunks and switches to IVF above it
(``qa.store.faiss_index.fit_vector_index``); the IVF rows here are built by that same function, so their build
time is what the one sync that crosses the limit pays, and the "(store)" row is the recall the store keeps.

    python -m bench.ann               # 100k, 250k and 1M synthetic vectors, plus the real vectors of a cached stage
    python -m bench.ann --quick       # 100k only
    python -m bench.ann --hnsw-1m     # HNSW at 1M too (its build takes minutes)

Synthetic vectors are drawn from a Gaussian with the mean and covariance of real all-MiniLM-L6-v2 vectors
(the chunk and sentence vectors of the SQuAD index that ``python -m bench.eval`` caches), then normalized:
they have the real vectors' spread over directions but none of their topic clusters, which makes them
harder for approximate search than real text, so the recalls are a conservative estimate. Queries are new
draws from the same Gaussian. Each query is searched alone, as the app does, on one thread (SEARCH_THREADS).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np

from bench.data import RESULTS
from bench.metrics import percentiles
from bench.report import fmt, machine, save_json, table
from bench.report import log as _log
from qa.store.faiss_index import fit_vector_index

DIM = 384
K = 10


class Fitted:
    """A Gaussian fitted to real vectors; :meth:`draw` gives normalized samples."""

    def __init__(self, real: np.ndarray):
        self.mean = real.mean(axis=0)
        values, vectors = np.linalg.eigh(np.cov(real, rowvar=False))
        self.scale = vectors * np.sqrt(np.clip(values, 0, None))  # x = mean + scale @ g

    def draw(self, n: int, rng: np.random.Generator, chunk: int = 100_000) -> np.ndarray:
        out = np.empty((n, DIM), dtype=np.float32)
        for i in range(0, n, chunk):
            m = min(chunk, n - i)
            block = self.mean + rng.standard_normal((m, DIM)) @ self.scale.T
            out[i:i + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
        return out


def real_squad_vectors(embedder=None) -> np.ndarray:
    """Chunk and sentence vectors of the cached SQuAD index (built when missing)."""
    from bench.reader import chunks, open_index
    from bench.stages import squad_index
    from qa.config import DEFAULT_MODEL
    from qa.encoders import load_embedder
    from qa.environment import configure_offline

    configure_offline()
    store = open_index(squad_index(embedder or load_embedder(DEFAULT_MODEL)))
    try:
        ids = [p.chunk_id for p in chunks(store)]
        vectors = store.chunk_vectors(ids)
        # Each sentence once (neighbouring chunks share one), as the index stores them.
        unique = {(s.article_id, s.position): s.vector for found in store.sentences(ids).values() for s in found}
        sentences = list(unique.values())
    finally:
        store.close()
    return np.vstack([vectors, *(v.reshape(1, -1) for v in sentences)]).astype(np.float32)


def centres(count: int, rng: np.random.Generator) -> np.ndarray:
    c = rng.standard_normal((count, DIM)).astype(np.float32)
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def clustered(n: int, c: np.ndarray, rng: np.random.Generator, noise: float = 1.0, chunk: int = 100_000) -> np.ndarray:
    """``n`` unit vectors, each one of the centres ``c`` plus Gaussian noise of norm about ``noise``."""
    out = np.empty((n, DIM), dtype=np.float32)
    for i in range(0, n, chunk):
        m = min(chunk, n - i)
        block = c[rng.integers(0, len(c), m)] + rng.standard_normal((m, DIM)).astype(np.float32) * (
            noise / np.sqrt(DIM))
        out[i:i + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


#: FAISS threads while searching (building uses all cores). One query at a time gains nothing from more,
#: and on a busy 2-core machine OpenMP threads mostly wait on each other (BENCHMARKS.md, "Threads").
SEARCH_THREADS = 1


def search_each(index: faiss.Index, queries: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Top-K ids of each query searched on its own, and each search's time in seconds."""
    ids, times = np.empty((len(queries), K), dtype=np.int64), []
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(SEARCH_THREADS)
    try:
        for i, q in enumerate(queries):
            start = time.perf_counter()
            _, found = index.search(q.reshape(1, -1), K)
            times.append(time.perf_counter() - start)
            ids[i] = found[0]
    finally:
        faiss.omp_set_num_threads(threads)
    return ids, times


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)]))


def compare(name: str, data: np.ndarray, queries: np.ndarray, hnsw: bool = True,
            log: Callable[[str], None] = print) -> list[dict]:
    """Exact, HNSW (M=32) and IVF-Flat over ``data``: build seconds, recall@10 against exact, ms per query."""
    n = len(data)
    rows = []
    exact = faiss.IndexFlatIP(DIM)
    start = time.perf_counter()
    exact.add(data)
    built = time.perf_counter() - start
    truth, times = search_each(exact, queries)
    rows.append(_row(name, n, "Flat (exact)", "", built, 1.0, times, exact))
    rows[-1]["top1_cosine_p50"] = float(np.median(exact.search(queries, 1)[0]))
    log(f"{name}: exact {fmt(rows[-1]['ms']['p50'])} ms/query")
    if hnsw:
        index = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 40
        start = time.perf_counter()
        index.add(data)
        built = time.perf_counter() - start
        for ef in (16, 64, 128, 256):
            index.hnsw.efSearch = ef
            found, times = search_each(index, queries)
            rows.append(_row(name, n, "HNSW32", f"efSearch={ef}", built, recall(found, truth), times, index))
        log(f"{name}: HNSW built in {built:.0f}s")
    # The store's own switch (qa.store.faiss_index.fit_vector_index): its lists, k-means and nprobe, timed as a sync
    # meets it.
    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    flat.add_with_ids(data, np.arange(n, dtype=np.int64))
    start = time.perf_counter()
    index = fit_vector_index(flat, exact_limit=n - 1)
    built = time.perf_counter() - start
    del flat
    chosen = index.nprobe
    for nprobe in sorted({16, 64, chosen, 2 * chosen} & set(range(1, index.nlist + 1))):
        index.nprobe = nprobe
        found, times = search_each(index, queries)
        rows.append(_row(name, n, f"IVF{index.nlist},Flat", f"nprobe={nprobe}" + (" (store)" if nprobe == chosen
                         else ""), built, recall(found, truth), times, index))
    log(f"{name}: IVF{index.nlist} built in {built:.0f}s")
    return rows


def _row(name: str, n: int, index: str, params: str, built: float, rec: float, times: list[float],
         faiss_index: faiss.Index) -> dict:
    return {"data": name, "n": n, "index": index, "params": params, "build_s": built, "recall@10": rec,
            "ms": percentiles(times), "memory_mib": _bytes(faiss_index) / 2**20}


def _bytes(index: faiss.Index) -> int:
    return len(faiss.serialize_index(index)) if index.ntotal <= 200_000 else int(
        index.ntotal * DIM * 4 * (1.25 if isinstance(index, faiss.IndexHNSW) else 1.0))


def real_vectors(log: Callable[[str], None] = print) -> tuple[np.ndarray, np.ndarray] | None:
    """The chunk vectors of the largest stage embedded with the model, and SQuAD question vectors."""
    from bench.stages import cached_stages

    stages = cached_stages(real_vectors=True)
    if not stages:
        log("no stage embedded with the model (`python -m bench.speed --real-vectors`): real vectors left out")
        return None
    from bench.data import squad_questions
    from qa.config import DEFAULT_MODEL
    from qa.encoders import load_embedder
    from qa.environment import configure_offline

    configure_offline()
    from bench.reader import chunks, open_index

    stage = stages[max(stages)]
    store = open_index(stage.index)
    try:
        vectors = store.chunk_vectors([p.chunk_id for p in chunks(store)])
    finally:
        store.close()
    questions = [q.question for q in squad_questions()][:200]
    return np.ascontiguousarray(vectors, dtype=np.float32), load_embedder(DEFAULT_MODEL).encode(questions)


def run(quick: bool = False, hnsw_1m: bool = False, log: Callable[[str], None] | None = None) -> dict:
    """Every comparison; HNSW at 1M vectors only with ``hnsw_1m`` (building it takes minutes on 2 cores)."""
    log = log or _log
    rng = np.random.default_rng(0)
    rows = []
    real = real_vectors(log)
    if real is not None:
        rows += compare(f"real chunks ({len(real[0])})", real[0], real[1], log=log)
    real_squad = real_squad_vectors()
    fitted = Fitted(real_squad)
    sizes = (100_000,) if quick else (100_000, 250_000, 1_000_000)
    for n in sizes:
        data, queries = fitted.draw(n, rng), fitted.draw(200, rng)
        log(f"{n} synthetic vectors generated")
        rows += compare(f"synthetic {n // 1000}k", data, queries, hnsw=n <= 100_000 or (hnsw_1m and n > 250_000),
                        log=log)
        del data
    # How close a query's nearest neighbour is, real against synthetic, at the size of the real set.
    sample = fitted.draw(len(real_squad), rng)
    questions = _question_vectors()
    calibration = {"real_vectors": len(real_squad),
                   "real_questions_top1_cosine_p50": _top1(real_squad, questions),
                   "synthetic_queries_top1_cosine_p50": _top1(sample, fitted.draw(200, rng))}
    return {"machine": machine(), "search_threads": SEARCH_THREADS, "build_threads": faiss.omp_get_max_threads(),
            "calibration": calibration, "rows": rows}


def _top1(data: np.ndarray, queries: np.ndarray) -> float:
    index = faiss.IndexFlatIP(DIM)
    index.add(np.ascontiguousarray(data))
    return float(np.median(index.search(np.ascontiguousarray(queries), 1)[0]))


def _question_vectors() -> np.ndarray:
    from bench.data import squad_questions
    from qa.config import DEFAULT_MODEL
    from qa.encoders import load_embedder

    return load_embedder(DEFAULT_MODEL).encode([q.question for q in squad_questions()][:200])


def render(results: dict) -> str:
    c = results.get("calibration", {})
    note = (f"Nearest-neighbour cosine (median): real SQuAD questions against the {c['real_vectors']} real vectors "
            f"{fmt(c['real_questions_top1_cosine_p50'])}; synthetic queries against as many synthetic vectors "
            f"{fmt(c['synthetic_queries_top1_cosine_p50'])}.\n\n") if c else ""
    return note + table(["data", "vectors", "index", "params", "build s", "recall@10", "ms/query p50", "p95", "MiB"],
                 [[r["data"], r["n"], r["index"], r["params"], r["build_s"], r["recall@10"], r["ms"]["p50"],
                   r["ms"]["p95"], r["memory_mib"]] for r in results["rows"]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ann", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k vectors only")
    parser.add_argument("--hnsw-1m", action="store_true", help="build HNSW at 1M vectors too (minutes)")
    parser.add_argument("--out", type=Path, default=RESULTS / "ann.json")
    args = parser.parse_args(argv)
    results = run(args.quick, args.hnsw_1m)
    print(render(results))
    print(f"\nsaved {save_json(results, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
