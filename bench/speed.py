"""Speed: indexing throughput against plain encoding, incremental sync, query latency and memory at scale.

    python -m bench.speed            # SQuAD throughput, stages of 2.5k/5k/10k/20k chunks, app memory
    python -m bench.speed --quick    # stages up to 5k chunks, fewer questions

Indexing throughput is :mod:`bench.throughput`; the scaled corpus stages (cached), incremental sync and the steps
every sync repeats are :mod:`bench.stages`. Here: query latency, memory, and the whole run. Indexing runs in child
processes (``--child``), so each one's peak memory is its own.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from bench.data import EVAL_DIR, RESULTS, SEED_CORPUS, article_id, squad_questions
from bench.metrics import first_distinct, percentiles, ranking_metrics, timed
from bench.process import ROOT, memory
from bench.report import fmt, free_port, machine, save_json, stop, table
from bench.report import log as _log
from bench.stages import Stage, build_stages, incremental, scale_child, squad_index, sync_parts
from bench.throughput import index_child, index_throughput
from qa.config import DEFAULT_MODEL, Settings
from qa.environment import configure_offline

STAGES = (2500, 5000, 10000, 20000)
WARM_UP = ("How is the weather?", "Which country's ministers met in Seoul to discuss the supply of artillery shells?",
           "When was the treaty signed?")
QUICK_STAGES = (2500, 5000)


# --- Query latency ----------------------------------------------------------------------------------------


def query_latency(index: Path | str, embedder, questions: Sequence[str], modes: Sequence[str] = ("hybrid",),
                  gold: Sequence[str] | None = None, threads: int | None = None) -> dict:
    """p50/p95 of ``search`` (k=5) per mode and of ``ask`` (hybrid), each call with an empty query cache.

    Half the questions are searched, the other half asked, so no question is embedded twice. With ``gold``
    (an article id per question), the hybrid searches also give Hits@10/MRR@10 over the first 40 chunks.
    ``threads`` sets torch's and FAISS's threads for the measurement (default: as they are).
    """
    import faiss
    import torch

    before = (torch.get_num_threads(), faiss.omp_get_max_threads())
    if threads:
        torch.set_num_threads(threads)
        faiss.omp_set_num_threads(threads)
    try:
        out = _query_latency(index, embedder, questions, modes, gold)
    finally:
        torch.set_num_threads(before[0])
        faiss.omp_set_num_threads(before[1])
    out["threads"] = {"torch": threads or before[0], "faiss": threads or before[1]}
    return out


def _query_latency(index, embedder, questions, modes, gold) -> dict:
    from bench.eval import forget_queries
    from qa.assistant import Assistant
    from qa.retriever import Retriever

    retriever = Retriever(index, embedder)
    assistant = Assistant(retriever)
    half = len(questions) // 2
    out: dict = {"chunks": retriever.info().chunks, "search_ms": {}}
    for warm in WARM_UP:  # first calls after loading pay for one-off set-up; a running app has paid it
        assistant.ask(warm)
    for mode in modes:
        times = []
        for q in questions[:half]:
            forget_queries(retriever)
            times.append(timed(lambda q=q, mode=mode: retriever.search(q, k=5, mode=mode))[1])
        out["search_ms"][mode] = percentiles(times)
    times = []
    for q in questions[half:]:
        forget_queries(retriever)
        times.append(timed(lambda q=q: assistant.ask(q))[1])
    out["ask_ms"] = percentiles(times)
    if gold is not None:
        rankings = [first_distinct([p.article_id for p in retriever.search(q, k=40)], 10) for q in questions]
        out["retrieval"] = ranking_metrics(rankings, gold)
    retriever.close()
    return out


def cli_index_memory(corpus: Path) -> dict:
    """Peak memory and time of ``qa index`` building a fresh index of ``corpus`` in its own process."""
    code = ("import resource, sys, time\nfrom qa.cli import main\nstart = time.perf_counter()\n"
            "rc = main(sys.argv[1:])\nprint('BENCH', rc, time.perf_counter() - start, "
            "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-c", code, "index", "--corpus", str(corpus), "--index", tmp,
                               "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=1800)
        chunks = None
        if (Path(tmp) / "qa.sqlite").exists():
            from bench.reader import status

            chunks = status(tmp).chunks
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        return {"error": (done.stderr or done.stdout)[-400:]}
    _, rc, seconds, maxrss = line.split()
    return {"exit": int(rc), "seconds": float(seconds), "peak_rss_mib": int(maxrss) / 1024, "chunks": chunks}


# --- Memory of a running app ----------------------------------------------------------------------------------


def app_memory(stage: Stage, questions: Sequence[str], startup_timeout: float = 240) -> dict:
    """Start ``python app.py`` on the stage's corpus and index, ask it questions over its API, read its memory."""
    port = free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "app.py", "--corpus", stage.corpus, "--index", stage.index,
                             "--port", str(port), "--host", "127.0.0.1"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        started = time.perf_counter()
        while not _listening(port):
            if proc.poll() is not None or time.perf_counter() - started > startup_timeout:
                log.seek(0)
                return {"error": "the app did not start: " + log.read().decode(errors="replace")[-600:]}
            time.sleep(0.5)
        startup = time.perf_counter() - started
        idle = memory(proc.pid)
        from gradio_client import Client

        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        times = [timed(lambda q=q: client.predict(q, api_name="/ask"))[1] for q in questions]
        return {"chunks": stage.chunks, "startup_s": startup, "idle": idle, "after_questions": memory(proc.pid),
                "api_ask_ms": percentiles(times)}
    except Exception as exc:  # the app is another team's moving part: report, never crash the benchmark
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        stop(proc, timeout=20)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# --- The whole speed run ----------------------------------------------------------------------------------


def run(quick: bool = False, peer: bool = True, real_vectors: bool = False,
        log: Callable[[str], None] | None = None) -> dict:
    """Every speed measurement; ``quick`` uses the stages up to 5k chunks and fewer questions."""
    configure_offline()
    from qa.encoders import load_embedder
    from qa.indexing import sync

    log = log or _log
    questions = squad_questions(EVAL_DIR)
    n_questions = 40 if quick else 100
    out: dict = {"machine": machine(), "quick": quick, "load_before": os.getloadavg()}
    log("indexing throughput (SQuAD paragraphs, fresh index, child process) ...")
    out["throughput"] = index_throughput(150 if quick else None, peer)
    stages = build_stages(QUICK_STAGES if quick else STAGES, log, real_vectors)
    out["stages"] = [asdict(s) for s in stages]
    embedder = load_embedder(DEFAULT_MODEL)
    with tempfile.TemporaryDirectory() as tmp:
        seed_index = Path(tmp) / "seed"
        sync(SEED_CORPUS, seed_index, settings=Settings(), embedder=embedder)
        squad = squad_index(embedder)
        latency = []
        # Distinct questions per corpus size: the i-th size gets its own slice of the 500 SQuAD questions.
        sizes = [("seed corpus", seed_index), ("SQuAD paragraphs", squad)] + [
            (f"{s.target} stage", Path(s.index)) for s in stages]
        for i, (name, index) in enumerate(sizes):
            # Distinct questions within a size (two sets: default threads, one thread), rotating across sizes.
            start = (i * 2 * n_questions) % (len(questions) - 2 * n_questions)
            asked, other = (questions[start:start + n_questions],
                            questions[start + n_questions:start + 2 * n_questions])
            largest = i == len(sizes) - 1
            modes = ("hybrid", "dense", "bm25") if largest else ("hybrid",)
            # Retrieval quality only where every vector is the model's.
            gold = [article_id(q.passage_id) for q in asked] if i == 1 or (i > 1 and real_vectors) else None
            row = query_latency(index, embedder, [q.question for q in asked], modes, gold)
            row["corpus"] = name
            row["one_thread"] = query_latency(index, embedder, [q.question for q in other], modes, threads=1)
            latency.append(row)
            log(f"latency at {row['chunks']} chunks: search p50 {fmt(row['search_ms']['hybrid']['p50'])} ms, "
                f"ask p50 {fmt(row['ask_ms']['p50'])} ms; one thread: "
                f"{fmt(row['one_thread']['search_ms']['hybrid']['p50'])} and {fmt(row['one_thread']['ask_ms']['p50'])}")
    out["latency"] = latency
    out["incremental"] = []
    for s in stages:
        row = incremental(s, embedder)
        out["incremental"].append(row)
        log(f"incremental at {s.chunks} chunks: add {row['add_s']:.2f}s (embedding {row['add_embed_s']:.2f}s), "
            f"remove {row['remove_s']:.2f}s, nothing to do {row['noop_s']:.2f}s")
    out["sync_parts"] = sync_parts(stages[-1])
    log("memory of `qa index` on the SQuAD paragraphs ...")
    out["cli_index"] = cli_index_memory(squad_index(embedder).parent / "corpus")
    log("app memory (python app.py on the largest stage) ...")
    out["app"] = app_memory(stages[-1], [q.question for q in questions[:20]])
    out["load_after"] = os.getloadavg()
    return out


def render(results: dict) -> str:
    t = results["throughput"]
    lines = [f"Indexing {t['paragraphs']} SQuAD paragraphs from scratch = {t['chunks']} chunks, "
             f"{t['sentences']} sentences (each system warmed up, then {t['rounds']} interleaved runs; medians, and "
             f"the median of the per-round ratios; torch threads {t['floor']['torch_threads']}, batch "
             f"{t['floor']['batch_size']}):", ""]
    rows = [["plain SentenceTransformer.encode of the chunk texts (the floor)", t["floor"]["seconds"],
             t["floor"]["chunks_per_s"], 1.0],
            ["qa sync (chunk and sentence vectors, SQLite, FAISS, BM25)", t["ours"]["seconds"],
             t["ours"]["chunks_per_s"],
             t["overhead_ratio"]]]
    if "seconds" in t.get("txtai", {}):
        rows.append([f"txtai {t['txtai']['version']} hybrid index ({t['txtai']['faiss']})", t["txtai"]["seconds"],
                     t["txtai"]["chunks_per_s"], t["txtai"]["vs_floor"]])
    x = t["floor"]["one_thread_seconds"]
    rows.append(["the floor, torch on 1 thread (one run)", x, t["chunks"] / x, x / t["floor"]["seconds"]])
    lines.append(table(["indexing", "seconds", "chunks/s", "x floor"], rows))
    lines += ["", f"Where our sync's {fmt(t['ours']['seconds'])} s go (each part timed again on its own):", ""]
    lines.append(table(["part", "seconds", "of the sync"], [[k, v, v / t["ours"]["seconds"]]
                                                            for k, v in t["breakdown_s"].items()]))
    kind = results["stages"][-1]["vectors"] if results["stages"] else "model"
    lines += ["", "Scaled corpus stages (cached; sync s is the sync that grew the previous stage into it"
                  + ("; generated articles got hashed vectors, not the model's, so this is everything but embedding"
                     if kind == "hashed" else "") + "):", ""]
    lines.append(table(["stage", "chunks", "sentences", "articles", "chunks added", "sync s", "chunks/s",
                        "peak RSS MiB"],
                       [[s["target"], s["chunks"], s["sentences"], s["articles"], s["chunks_embedded"], s["seconds"],
                         s["chunks_embedded"] / s["seconds"] if s["seconds"] else None, s["peak_rss_mib"]]
                        for s in results["stages"]]))
    t0 = results["latency"][0]["threads"]
    lines += ["", f"Query latency (ms; k=5, query-vector cache emptied before every call; default threads: torch "
                  f"{t0['torch']}, FAISS {t0['faiss']}; load average before the run "
                  f"{', '.join(f'{x:.1f}' for x in results['load_before'])}):", ""]
    rows = []
    for r in results["latency"]:
        one = r["one_thread"]
        for mode, p in r["search_ms"].items():
            rows.append([r["corpus"], r["chunks"], f"search {mode}", p["p50"], p["p95"], one["search_ms"][mode]["p50"],
                         one["search_ms"][mode]["p95"], p["n"],
                         r.get("retrieval", {}).get("hits@10") if mode == "hybrid" else None])
        rows.append([r["corpus"], r["chunks"], "ask (hybrid)", r["ask_ms"]["p50"], r["ask_ms"]["p95"],
                     one["ask_ms"]["p50"], one["ask_ms"]["p95"], r["ask_ms"]["n"], None])
    lines.append(table(["corpus", "chunks", "call", "p50", "p95", "p50, 1 thread", "p95, 1 thread", "n",
                        "SQuAD Hits@10"], rows))
    lines += ["", "Incremental sync of one article (seconds):", ""]
    lines.append(table(["chunks", "add", "of which embedding", "add besides embedding", "remove", "nothing to do"],
                       [[r["chunks"], r["add_s"], r["add_embed_s"], r["add_besides_embed_s"], r["remove_s"],
                         r["noop_s"]] for r in results["incremental"]]))
    if results.get("sync_parts"):
        lines += ["", f"Steps every sync repeats, timed alone at {results['stages'][-1]['chunks']} chunks:", ""]
        lines.append(table(["step", "seconds"], list(results["sync_parts"].items())))
    app = results.get("app", {})
    lines += ["", "Memory (MiB):", ""]
    rows = [["a process with the model loaded", t["memory_mib"]["model_loaded"]]]
    cli = results.get("cli_index", {})
    if "peak_rss_mib" in cli:
        rows.append([f"`qa index`, peak, {cli.get('chunks')} chunks from scratch ({fmt(cli['seconds'])} s)",
                     cli["peak_rss_mib"]])
    rows += [[f"stage builder, peak, growing to {s['chunks']} chunks (hashed vectors for generated text)",
              s["peak_rss_mib"]] for s in results["stages"][-1:]]
    if "idle" in app:
        rows += [[f"app.py at {app['chunks']} chunks, started", app["idle"]["rss_mib"]],
                 [f"app.py after {app['api_ask_ms']['n']} questions over its API (peak)",
                  app["after_questions"]["peak_rss_mib"]]]
    else:
        rows.append(["app.py", app.get("error", "not measured")])
    lines.append(table(["process", "MiB"], rows))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="stages up to 5k chunks and fewer questions")
    parser.add_argument("--no-peer", action="store_true", help="leave txtai out")
    parser.add_argument("--real-vectors", action="store_true",
                        help="embed the generated articles with the model (slow; cached separately)")
    parser.add_argument("--out", type=Path, default=RESULTS / "speed.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--paragraphs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--targets", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    configure_offline()
    if args.child:
        if args.child == "index":
            result = index_child(args.paragraphs, not args.no_peer)
        else:
            result = scale_child([int(t) for t in args.targets.split(",")], args.real_vectors)
        save_json(result, args.child_out)
        return 0
    results = run(args.quick, not args.no_peer, args.real_vectors)
    print(render(results))
    print(f"\nsaved {save_json(results, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
