"""SQuAD quality and latency on the local backend and on Milvus, side by side (docs/scaling.md).

    python -m bench.milvus [--limit N] [--uri index.db|http://host:19530 | --lite]

Milvus is, by default, Milvus's C++ core (milvus-lite 2.5.1's server, started here on 127.0.0.1).

The SQuAD sample is indexed once on the local backend (bench/results/cache/milvus-squad), copied to Milvus
with ``qa migrate``'s code (the same vectors: only the engines differ), and each backend answers the same
questions through the same Retriever and Assistant. Hybrid fusion runs in qa.fusion for both, over the
backend's own dense and BM25 searches, so a difference in MRR@10 comes from the lexical scores (bm25s with
tantivy/FTS vs Milvus's BM25 Function and analyzer) or from ties.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench.data import EVAL_DIR, RESULTS, ROOT, article_id, squad_set, write_squad_corpus
from bench.metrics import first_distinct, percentiles, ranking_metrics, timed
from qa.config import MilvusSettings, Settings
from qa.environment import configure_offline

MODES = ("hybrid", "dense", "bm25")


def start_core() -> tuple[subprocess.Popen, str]:
    """Milvus's C++ core (milvus-lite 2.5.1's binary, ``make .venv-milvus25/.ready``) on a free local port."""
    from pymilvus import MilvusClient

    binary = next(iter(sorted(ROOT.glob(".venv-milvus25/lib/python*/site-packages/milvus_lite/lib/milvus"))), None)
    if binary is None:
        raise SystemExit("Milvus's C++ core is not installed; run `make .venv-milvus25/.ready`, or give --uri")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder = Path(tempfile.mkdtemp(prefix="bench-milvus-"))
    process = subprocess.Popen([str(binary), str(folder / "core.db"), f"127.0.0.1:{port}", "ERROR"], cwd=folder,
                               env={**os.environ, "LD_LIBRARY_PATH": str(binary.parent)})
    uri = f"http://127.0.0.1:{port}"
    from qa.store.milvus_io import GRPC_OPTIONS

    for _ in range(120):
        try:
            client = MilvusClient(uri=uri, timeout=2, grpc_options=GRPC_OPTIONS, dedicated=True)
            client.list_collections(timeout=2)
            client.close()
            return process, uri
        except Exception:  # noqa: BLE001 - not listening yet
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"Milvus's C++ core did not start at {uri}")


def run(limit: int | None, uri: str | None, asks: int) -> dict:
    configure_offline()
    from qa.answering.composer import ExtractiveAnswerer
    from qa.assistant import Assistant
    from qa.encoders import load_embedder
    from qa.indexing import sync
    from qa.migrate import migrate
    from qa.retriever import Retriever
    from qa.store import open_store

    data = squad_set(EVAL_DIR, limit, None)
    work = RESULTS / "cache" / "milvus-squad"
    # milvus.uri on both: the local settings name the target of the copy, as QA_MILVUS_URI does for `qa migrate`.
    target = MilvusSettings(uri=uri or str(work / "milvus.db"))
    local = Settings(index=work / "index", corpus=work / "corpus", milvus=target)
    milvus = replace(local, backend="milvus")
    embedder = load_embedder(local.model)
    write_squad_corpus(local.corpus, data.passages)
    sync(local.corpus, local.index, settings=local, embedder=embedder)
    target = open_store(milvus, writable=True)
    held = target.status().articles
    target.close()
    copied = None if held else migrate(local, "milvus")
    out = {"questions": len(data.answerable), "paragraphs": len(data.passages),
           "copy_seconds": copied.seconds if copied else None, "backends": {}}
    for name, settings in (("local", local), ("milvus", milvus)):
        retriever = Retriever(settings=settings, embedder=embedder)
        assistant = Assistant(retriever, ExtractiveAnswerer())
        for q in data.answerable[:5]:  # warm up: model, caches, Milvus's collection load
            retriever.search(q.question)
        rows = {}
        for mode in MODES:
            rankings, times = [], []
            for q in data.answerable:
                found, seconds = timed(lambda q=q, m=mode, r=retriever: r.search(q.question, k=50, mode=m))
                rankings.append(first_distinct([p.article_id for p in found], 10))
                times.append(seconds)
            rows[mode] = {**ranking_metrics(rankings, [article_id(q.passage_id) for q in data.answerable]),
                          "search": percentiles(times)}
        if name == "milvus":
            rankings, times = [], []
            for q in data.answerable:
                found, seconds = timed(lambda q=q, r=retriever: weighted_ranker(r, q.question))
                rankings.append(first_distinct(found, 10))
                times.append(seconds)
            rows["hybrid_search"] = {**ranking_metrics(rankings, [article_id(q.passage_id) for q in data.answerable]),
                                     "search": percentiles(times)}
        ask_times = [timed(lambda q=q, a=assistant: a.ask(q.question))[1] for q in data.questions[:asks]]
        rows["ask"] = percentiles(ask_times)
        out["backends"][name] = rows
        retriever.close()
    return out


def weighted_ranker(retriever, question: str, k: int = 50) -> list[str]:
    """Article ids ranked by Milvus's own ``hybrid_search`` with ``WeightedRanker(0.7, 0.3)`` (what the backend
    does not use: it normalizes each score by a fixed function, not BM25 by the query's best; docs/scaling.md)."""
    from pymilvus import AnnSearchRequest, WeightedRanker

    from qa.store import milvus_schema as ms

    db = retriever.store.db
    state = db.read_state()
    where = ms.visible(state["generation"])
    vector = retriever.embed_query(question)
    requests = [AnnSearchRequest([vector.tolist()], "vector", {"metric_type": "IP"}, limit=k, expr=where),
                AnnSearchRequest([question], "sparse", {"metric_type": "BM25"}, limit=k, expr=where)]
    found = db.client.hybrid_search(db.name(state, "chunks"), requests, WeightedRanker(0.7, 0.3), limit=k,
                                    output_fields=["article_id"], consistency_level="Strong", timeout=db.timeout)
    return [hit["entity"]["article_id"] for hit in found[0]]


def render(r: dict) -> str:
    lines = [f"SQuAD sample: {r['questions']} answerable questions over {r['paragraphs']} paragraphs; "
             f"Milvus: {r.get('engine')}",
             "| backend | mode | Hits@1 | MRR@10 | search p50 ms | search p95 ms |", "|---|---|---|---|---|---|"]
    for name, rows in r["backends"].items():
        for mode in (*MODES, "hybrid_search"):
            if mode not in rows:
                continue
            m = rows[mode]
            lines.append(f"| {name} | {mode} | {m['hits@1']:.3f} | {m['mrr@10']:.3f} | "
                         f"{m['search']['p50']:.1f} | {m['search']['p95']:.1f} |")
    for name, rows in r["backends"].items():
        lines.append(f"ask ({name}): p50 {rows['ask']['p50']:.0f} ms, p95 {rows['ask']['p95']:.0f} ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.milvus", description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="SQuAD questions to sample (default: all)")
    parser.add_argument("--uri", help="a Milvus server or Lite file (default: a Lite file in the cache)")
    parser.add_argument("--asks", type=int, default=100, help="questions timed through the assistant")
    parser.add_argument("--lite", action="store_true", help="Milvus Lite 3 in this process instead of the C++ core")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    core = None
    uri = args.uri
    if uri is None and not args.lite:
        core, uri = start_core()
    try:
        result = run(args.limit, uri, args.asks)
    finally:
        if core is not None:
            core.terminate()
            core.wait(30)
    result["engine"] = uri or "Milvus Lite 3, in process"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "milvus.json").write_text(json.dumps(result, indent=2))
    print(render(result))
    print(f"({time.perf_counter() - started:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
