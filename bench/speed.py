"""Speed: indexing throughput against plain encoding, incremental sync, query latency and memory at scale.

    python -m bench.speed            # SQuAD throughput, stages of 2.5k/5k/10k/20k chunks, app memory
    python -m bench.speed --quick    # stages up to 5k chunks, fewer questions

The large corpora are the SQuAD paragraphs plus generated articles (:mod:`bench.synth`). Building them embeds
every chunk and sentence on this machine's CPU, so each stage's index is cached under
``bench/results/cache/`` and reused by later runs; the first full run takes a long time (see BENCHMARKS.md).
Indexing runs in child processes, so each one's peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bench.data import EVAL_DIR, RESULTS, SEED_CORPUS, article_id, squad_passages, squad_questions
from bench.metrics import first_distinct, percentiles, ranking_metrics, timed
from bench.report import fmt, free_port, machine, save_json, stop, table
from bench.report import log as _log
from qa.config import DEFAULT_MODEL, Settings
from qa.environment import configure_offline

ROOT = Path(__file__).resolve().parent.parent
STAGES = (2500, 5000, 10000, 20000)
#: Times each indexing contender is timed in the throughput run; the fastest run counts.
ROUNDS = 4
WARM_UP = ("How is the weather?", "Which country's ministers met in Seoul to discuss the supply of artillery shells?",
           "When was the treaty signed?")
QUICK_STAGES = (2500, 5000)


def memory(pid: int | str = "self") -> dict[str, float]:
    """Peak (VmHWM) and current (VmRSS) resident memory of a process, in MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[{"VmHWM": "peak_rss_mib", "VmRSS": "rss_mib"}[key]] = int(value.split()[0]) / 1024
    return out


def st_encode(embedder, texts: Sequence[str], batch_size: int | None = None):
    """Plain ``SentenceTransformer.encode``, as a user of the library would call it: the floor."""
    return embedder.model.encode(list(texts), batch_size=batch_size or embedder.batch_size,
                                 normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)


# --- Indexing throughput: ours against the floor and txtai, in one child process ------------------------


def index_throughput(paragraphs: int | None = None, peer: bool = True) -> dict:
    """Index SQuAD paragraphs from scratch in a child process; see :func:`_index_child`."""
    args = ["--paragraphs", str(paragraphs)] if paragraphs else []
    return _child("index", args + ([] if peer else ["--no-peer"]))


def _index_child(paragraphs: int | None, peer: bool) -> dict:
    """Time a fresh sync, then each of its parts on their own, then txtai, all in this process.

    The parts: reading the corpus; chunking (sentence splitting and counting tokens); encoding the chunk
    texts with plain ``SentenceTransformer.encode`` (the floor). What is left of the sync's time is its
    sentence vectors, hashing, SQLite, FAISS and BM25. Encoding every sentence on its own is timed too, for
    reference.
    """
    from bench.data import write_squad_corpus
    from qa.chunking import Chunker
    from qa.corpus import read_corpus
    from qa.encoders import load_embedder
    from qa.indexing import sync

    texts = squad_passages()
    if paragraphs:
        texts = dict(list(texts.items())[:paragraphs])
    embedder = load_embedder(DEFAULT_MODEL)
    loaded = memory()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = write_squad_corpus(Path(tmp) / "corpus", texts)
        articles, read_s = timed(lambda: read_corpus(corpus)[0])
        chunker = Chunker(embedder, Settings().chunk_tokens, Settings().overlap, embedder.max_tokens)

        def chunk_all():
            chunk_texts, sentence_texts = [], []
            for article in articles:
                sentences, chunks = chunker.split(article)
                title = chunker.embed_title(article.title)
                chunk_texts += [c.embed_text(title) for c in chunks]
                sentence_texts += [article.text[s.start:s.end] for s in sentences]
            return chunk_texts, sentence_texts

        (chunk_texts, sentence_texts), chunk_s = timed(chunk_all)
        # The first pass over texts of new lengths is about twice as slow (torch sets up kernels per input
        # shape), so every system gets an untimed pass over the same texts first. Then each is timed ROUNDS
        # times, interleaved, starting each round with the next system so none always runs first; medians and
        # the median of the per-round ratios (each measured minutes apart at most) are reported.
        import torch

        threads = torch.get_num_threads()
        st_encode(embedder, chunk_texts)
        txtai = _txtai(peer)
        if txtai is not None:
            txtai.index(list(enumerate(chunk_texts)))
        systems = {"sync": lambda r: sync(corpus, Path(tmp) / f"index-{r}", settings=Settings(),
                                          embedder=embedder).seconds,
                   "floor": lambda r: timed(lambda: st_encode(embedder, chunk_texts))[1]}
        if txtai is not None:
            systems["txtai"] = lambda r: timed(lambda: _txtai(peer).index(list(enumerate(chunk_texts))))[1]
        runs: dict[str, list[float]] = {name: [] for name in systems}
        names = list(systems)
        for r in range(ROUNDS):
            for name in names[r % len(names):] + names[:r % len(names)]:
                runs[name].append(systems[name](r))
        torch.set_num_threads(1)
        try:
            one_thread = timed(lambda: st_encode(embedder, chunk_texts))[1]
        finally:
            torch.set_num_threads(threads)
        after_sync = memory()
        _, sentence_s = timed(lambda: st_encode(embedder, sentence_texts))
    best = {k: float(np.median(v)) for k, v in runs.items()}
    floor, ours = best["floor"], best["sync"]
    n = len(chunk_texts)
    out = {
        "paragraphs": len(texts), "chunks": n, "sentences": len(sentence_texts), "runs_s": runs, "rounds": ROUNDS,
        "ours": {"seconds": ours, "chunks_per_s": n / ours},
        "floor": {"seconds": floor, "chunks_per_s": n / floor, "torch_threads": threads, "batch_size":
                  embedder.batch_size, "one_thread_seconds": one_thread},
        "overhead_ratio": _paired(runs["sync"], runs["floor"]),
        "breakdown_s": {"read corpus": read_s, "chunking (sentences, token counts)": chunk_s,
                        "encode chunk texts (the floor)": floor,
                        "sync minus the above (sentence vectors, hashing, SQLite, FAISS, BM25)":
                            ours - read_s - chunk_s - floor,
                        "for reference: encoding every sentence on its own": sentence_s},
        "memory_mib": {"model_loaded": loaded["rss_mib"], "peak_after_sync": after_sync["peak_rss_mib"]},
    }
    if "txtai" in best:
        out["txtai"] = {"seconds": best["txtai"], "chunks_per_s": n / best["txtai"], "version": txtai.version,
                        "faiss": txtai.faiss, "vs_floor": _paired(runs["txtai"], runs["floor"]),
                        "ours_vs_txtai": _paired(runs["sync"], runs["txtai"]), "batch_size": 32}
    elif peer:
        out["txtai"] = {"error": "txtai is not installed; run `pip install -e '.[bench]'`"}
    return out


def _paired(a: list[float], b: list[float]) -> float:
    """The median over rounds of a's time over b's time in the same round."""
    return float(np.median([x / y for x, y in zip(a, b, strict=True)]))


def _txtai(peer: bool):
    """A fresh txtai index, or None when left out or not installed."""
    if not peer:
        return None
    from bench.peer import PeerUnavailable, TxtaiIndex

    try:
        return TxtaiIndex()
    except PeerUnavailable:
        return None


# --- The scaled corpus, built in stages and cached ---------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """One cached index of the scaled corpus."""

    target: int
    chunks: int
    sentences: int
    articles: int
    corpus: str
    index: str
    seconds: float  # time of the sync that grew the previous stage into this one
    chunks_embedded: int
    peak_rss_mib: float  # of the building process, up to this stage
    vectors: str = "model"  # "model", or "hashed": generated articles got HashedVectors (see bench.synth)


def scale_root(real_vectors: bool = False, settings: Settings | None = None) -> Path:
    from bench.synth import GENERATOR_VERSION

    s = settings or Settings()
    from bench.data import pipeline_version

    kind = "model" if real_vectors else "hashed"
    return RESULTS / "cache" / (f"scale-v{GENERATOR_VERSION}-{kind}-{Path(s.model).name}-{s.chunk_tokens}-"
                                f"{s.overlap}-{pipeline_version()}")


def cached_stages(root: Path | None = None, real_vectors: bool = False) -> dict[int, Stage]:
    root = root or scale_root(real_vectors)
    out = {}
    for meta in sorted(root.glob("stage-*/stage.json")):
        stage = Stage(**json.loads(meta.read_text()))
        out[stage.target] = stage
    return out


def build_stages(targets: Sequence[int], log: Callable[[str], None], real_vectors: bool = False) -> list[Stage]:
    """The cached stages for ``targets`` chunks, building the missing ones in a child process.

    Unless ``real_vectors``, the generated articles are indexed with :class:`bench.synth.HashedVectors`
    instead of the model (the SQuAD paragraphs keep their real vectors).
    """
    have = cached_stages(real_vectors=real_vectors)
    missing = [t for t in targets if t not in have]
    if missing:
        log(f"building scaled corpus stages {missing} in {scale_root(real_vectors)} ...")
        _child("scale", ["--targets", ",".join(map(str, sorted(set(missing))))]
               + (["--real-vectors"] if real_vectors else []), timeout=None)
        have = cached_stages(real_vectors=real_vectors)
    return [have[t] for t in targets]


def _scale_child(targets: Sequence[int], real_vectors: bool) -> dict:
    """Grow one index through the stages, copying each finished stage into the cache."""
    from bench.reader import open_index, rows, status
    from bench.synth import HashedVectors, generate, write_corpus
    from qa.chunking import Chunker
    from qa.corpus import parse_text
    from qa.encoders import load_embedder
    from qa.indexing import sync

    root = scale_root(real_vectors)
    model = load_embedder(DEFAULT_MODEL)
    embedder = model if real_vectors else HashedVectors(model)
    chunker = Chunker(embedder, Settings().chunk_tokens, Settings().overlap, embedder.max_tokens)
    work = Path(tempfile.mkdtemp(prefix="qa-scale-"))
    # Start from the largest cached stage below, else from the eval's SQuAD index: only new articles are embedded.
    have = cached_stages(root)
    start = max((t for t in have if t < min(targets)), default=None)
    shutil.copytree(have[start].index if start is not None else squad_index(model), work / "index",
                    ignore=shutil.ignore_patterns(".lock"))
    store = open_index(work / "index")
    squad_chunks = sum(r.chunks for r in rows(store) if r.id.startswith("squad.jsonl#"))
    store.close()
    articles, total, counts = generate(int(max(targets) / 3.5) + 500), squad_chunks, []
    for a in articles:  # chunks per generated article, to know how many articles make each stage
        counts.append(len(chunker.split(parse_text(a.markdown(), a.name))[1]))
        total += counts[-1]
        if total >= max(targets):
            break
    if total < max(targets):
        raise RuntimeError(f"generated articles give only {total} chunks; raise the article count")
    pool = write_corpus(root / "pool", articles[:len(counts)], squad=True)
    done = {}
    for target in sorted(targets):
        n, total = 0, squad_chunks
        while total < target:
            total += counts[n]
            n += 1
        folder = root / f"stage-{target}"
        shutil.rmtree(folder, ignore_errors=True)
        corpus = _link_tree(pool, folder / "corpus", ["squad.jsonl"] + [a.name for a in articles[:n]])
        report = sync(corpus, work / "index", settings=Settings(), embedder=embedder)
        shutil.copytree(work / "index", folder / "index", ignore=shutil.ignore_patterns(".lock"))
        held = status(folder / "index")
        chunks, sentences, count = held.chunks, held.sentences, held.articles
        stage = Stage(target, chunks, sentences, count, str(corpus), str(folder / "index"), report.seconds,
                      report.chunks_embedded, memory()["peak_rss_mib"], "model" if real_vectors else "hashed")
        (folder / "stage.json").write_text(json.dumps(asdict(stage), indent=2))
        done[target] = asdict(stage)
        print(f"stage {target}: {chunks} chunks, {report.chunks_embedded} embedded in {report.seconds:.0f}s",
              file=sys.stderr, flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return done


def _link_tree(pool: Path, target: Path, names: Sequence[str]) -> Path:
    """A corpus folder holding ``names`` from ``pool`` as hard links (copies where links fail)."""
    for name in names:
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(pool / name, dest)
        except OSError:
            shutil.copy2(pool / name, dest)
    return target


# --- Incremental sync at a stage ---------------------------------------------------------------------------


def incremental(stage: Stage, embedder) -> dict:
    """Time adding one new article to a copy of the stage's index, a sync with nothing to do, and removing it.

    The embedding time of the new article (its chunks and sentences, encoded alone) is measured right after,
    to report what the sync costs besides embedding.
    """
    from bench.synth import generate
    from qa.chunking import Chunker
    from qa.corpus import parse_text
    from qa.indexing import sync

    new = generate(1, seed=7)[0]
    with tempfile.TemporaryDirectory() as tmp:
        corpus = _link_tree(Path(stage.corpus), Path(tmp) / "corpus", _files(Path(stage.corpus)))
        index = Path(tmp) / "index"
        shutil.copytree(stage.index, index)
        (corpus / "added-article.md").write_text(new.markdown(), encoding="utf-8")
        add = sync(corpus, index, settings=Settings(), embedder=embedder)
        noop = sync(corpus, index, settings=Settings(), embedder=embedder)
        (corpus / "added-article.md").unlink()
        remove = sync(corpus, index, settings=Settings(), embedder=embedder)
    article = parse_text(new.markdown(), "added-article.md")
    chunker = Chunker(embedder, Settings().chunk_tokens, Settings().overlap, embedder.max_tokens)
    sentences, chunks = chunker.split(article)
    texts = [c.embed_text(chunker.embed_title(article.title)) for c in chunks]
    # One pass of the model over the chunk texts: what the sync's embedding costs (its sentence vectors come
    # from the same pass, by late chunking).
    _, embed_s = timed(lambda: embedder.encode(texts))
    assert add.added == ["added-article.md"] and remove.removed == ["added-article.md"], (add, remove)
    return {"chunks": stage.chunks, "article_chunks": len(chunks), "article_sentences": len(sentences),
            "add_s": add.seconds, "add_embed_s": embed_s, "add_besides_embed_s": max(0.0, add.seconds - embed_s),
            "noop_s": noop.seconds, "remove_s": remove.seconds}


def _files(corpus: Path) -> list[str]:
    return [p.relative_to(corpus).as_posix() for p in corpus.rglob("*") if p.is_file()]


def sync_parts(stage: Stage) -> dict[str, float]:
    """The O(corpus) steps every sync still repeats, each timed on its own at the stage's size (seconds).

    A sync lists the corpus and stats every file (only changed ones are read) and reads what the index holds
    (article hashes, file stats). A commit no longer rewrites the vectors or rebuilds BM25 (qa/store/local.py):
    bench/sync_cost.py measures what it costs instead.
    """
    from qa.corpus import list_files
    from qa.store import open_store

    out: dict[str, float] = {}
    _, out["list and stat corpus files"] = timed(lambda: [path.stat() for _, path in list_files(Path(stage.corpus))[0]])
    store = open_store(Settings(index=Path(stage.index)), writable=True)
    try:
        _, out["read indexed articles and files"] = timed(lambda: (store.indexed(), store.files()))
    finally:
        store.close()
    return out


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


# --- Child processes ------------------------------------------------------------------------------------------


def _child(kind: str, args: Sequence[str], timeout: float | None = 1800) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        cmd = [sys.executable, "-m", "bench.speed", "--child", kind, "--child-out", str(out), *args]
        subprocess.run(cmd, cwd=ROOT, check=True, timeout=timeout)
        return json.loads(out.read_text())


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


def squad_index(embedder) -> Path:
    """The index of all SQuAD paragraphs that ``python -m bench.eval`` caches (built here when missing)."""
    from bench.data import squad_set
    from bench.eval import build_index, cache_dir

    data = squad_set()
    folder = cache_dir(data, Settings())
    build_index(folder, data.passages, Settings(), embedder)
    return folder / "index"


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
            result = _index_child(args.paragraphs, not args.no_peer)
        else:
            result = _scale_child([int(t) for t in args.targets.split(",")], args.real_vectors)
        save_json(result, args.child_out)
        return 0
    results = run(args.quick, not args.no_peer, args.real_vectors)
    print(render(results))
    print(f"\nsaved {save_json(results, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
