"""The encoders side by side (issue 31): indexing speed, question latency, closeness to torch fp32, retrieval.

    python -m bench.encoders                       # every encoder (qa.config.ENCODERS) on 3,000 real-news dev chunks
    python -m bench.encoders --chunks 500 --rounds 1 --no-squad      # a quick look
    python -m bench.encoders --dev-index torch=/tmp/realnews-index/dev --dev-index onnx-int8=/tmp/rn/dev-index-onnx-int8

For each encoder (qa.config.ENCODERS), in one run and interleaved (block by block of 128 chunks, and question by
question, the encoders' order turning, so that the load of a shared machine falls on all of them alike):

- chunks/s: the indexing pass (qa.embedding's ``embed_chunks``: chunk vectors and the late-chunking sentence vectors)
  over a fixed sample of real chunks: the chunks of articles drawn (seeded) from the real-news dev archive
  (bench.realnews; ``QA_REALNEWS``), or from corpus/ when it is absent; the median of the rounds, and the median of
  each round's ratio to torch;
- question p50: one question embedded, as the retriever does, over 200 SQuAD questions (ms), interleaved with the
  other encoders' passes and questions; and "alone": each encoder's 200 questions in a row, warm;
- closeness: the cosine of each chunk vector to torch fp32's (the lowest, the mean);
- SQuAD MRR@10: the 411 paragraphs of the SQuAD sample indexed with the encoder, its 242 answerable questions,
  dense and hybrid (as bench.eval);
- real-news dev MRR@10 (``--dev-index ENCODER=FOLDER``, each an index of the dev archive built with that encoder,
  e.g. ``QA_ENCODER=onnx-int8 qa index --corpus /tmp/realnews/dev/corpus --index FOLDER``): bench.realnews'
  retrieval rank of the correct choice in a hybrid search with the quiz's dates; and "dev question p50", each
  question embedded between two searches of that index, as the app does.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.data import EVAL_DIR, RESULTS, SEED_CORPUS, article_id, squad_set, write_squad_corpus
from bench.metrics import first_distinct, ranking_metrics
from bench.report import log, machine, save_json, table
from qa.config import DEFAULT_MODEL, ENCODERS, Settings
from qa.environment import configure_offline

#: Chunks fetched per search when scoring retrieval, and the articles a ranking is cut to (as bench.eval).
SEARCH_K, TOP_ARTICLES = 40, 10


def sample_articles(limit_chunks: int, seed: int = 0):
    """Articles drawn (seeded) from the real-news dev archive, else corpus/, and where they came from."""
    from bench import realnews
    from qa.corpus import read_corpus

    folder = realnews.DATA / "dev" / "corpus"
    if not folder.is_dir():
        folder = SEED_CORPUS
    articles, _ = read_corpus(folder)
    random.Random(seed).shuffle(articles)
    return articles, folder


def chunk_sample(embedder, articles, limit: int, settings: Settings | None = None
                 ) -> tuple[list[str], list[list[tuple[int, int]]], int]:
    """The texts the model reads for the articles' chunks, and their sentence spans, as qa.indexing makes them:
    up to ``limit`` chunks, whole articles only; and how many articles they are."""
    from qa.chunking import Chunker
    from qa.embedding import model_inputs

    settings = settings or Settings()
    chunker = Chunker(embedder, settings.chunk_tokens, settings.overlap, embedder.max_tokens)
    texts: list[str] = []
    spans: list[list[tuple[int, int]]] = []
    used = 0
    for article in articles:
        sentences, chunks = chunker.split(article)
        if texts and len(texts) + len(chunks) > limit:
            break
        more, more_spans = model_inputs(chunker.embed_title(article.title), sentences, chunks)
        texts += more
        spans += more_spans
        used += 1
    return texts, spans, used


def squad_mrr(embedder, workdir: Path) -> dict[str, float]:
    """Retrieval MRR@10 and Hits@1 on the SQuAD sample with an index built by ``embedder`` (dense and hybrid)."""
    from qa.indexing import sync
    from qa.retriever import Retriever

    data = squad_set(EVAL_DIR)
    corpus = write_squad_corpus(workdir / "corpus", data.passages)
    index = workdir / f"index-{embedder.encoder}"
    sync(corpus, index, embedder=embedder)
    retriever = Retriever(index, embedder)
    out = {}
    try:
        for mode in ("dense", "hybrid"):
            rankings = [first_distinct([p.article_id for p in retriever.search(q.question, k=SEARCH_K, mode=mode)],
                                       TOP_ARTICLES) for q in data.answerable]
            metrics = ranking_metrics(rankings, [article_id(q.passage_id) for q in data.answerable])
            out[f"{mode}_mrr@10"], out[f"{mode}_hits@1"] = metrics["mrr@10"], metrics["hits@1"]
        out["n"] = len(data.answerable)
    finally:
        retriever.close()
    return out


def dev_mrr(folder: Path) -> dict:
    """bench.realnews' retrieval MRR@10 and Hits@5 on the dev questions, with the index at ``folder`` (its own
    encoder embeds the questions)."""
    from bench import realnews
    from qa.retriever import Retriever

    records = realnews.load("dev")
    retriever = Retriever(folder)
    ranks, question_ms = [], []
    try:
        for r in records:
            # The question embedded between two searches, as in the app (the search then reads it from the cache):
            # each search streams the index's vectors through the caches, the model's weights with them.
            started = time.perf_counter()
            retriever.embed_query(r["question"])
            question_ms.append((time.perf_counter() - started) * 1000)
            ranks.append(realnews.retrieval_rank(retriever, r))
        encoder, chunks = retriever.manifest.encoder, retriever.info().chunks
    finally:
        retriever.close()
    return {"encoder": encoder, "chunks": chunks, "n": len(ranks),
            "mrr@10": sum(1 / r for r in ranks if r) / len(ranks),
            "hits@5": sum(r is not None and r <= 5 for r in ranks) / len(ranks),
            "question_ms_p50": statistics.median(question_ms)}


def run(encoders=ENCODERS, chunks: int = 3000, rounds: int = 3, squad: bool = True, questions: int = 200,
        dev_indexes: dict[str, Path] | None = None) -> dict:
    configure_offline()
    from qa.embedding import embed_chunks
    from qa.encoders import load_embedder

    embedders = {}
    for name in encoders:
        started = time.perf_counter()
        embedders[name] = load_embedder(DEFAULT_MODEL, encoder=name)
        log(f"{name}: loaded in {time.perf_counter() - started:.1f}s")
    reference = embedders.get("torch") or next(iter(embedders.values()))
    articles, folder = sample_articles(chunks)
    texts, spans, used = chunk_sample(reference, articles, chunks)
    log(f"sample: {len(texts)} chunks of {used} articles from {folder}")
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # as qa.indexing sends them: longest first
    texts, spans = [texts[i] for i in order], [spans[i] for i in order]
    asked = [q.question for q in squad_set(EVAL_DIR).questions[:questions]]

    speed: dict[str, list[float]] = {n: [] for n in embedders}
    query_ms: dict[str, list[float]] = {n: [] for n in embedders}
    vectors = {n: np.zeros((len(texts), reference.dimension), dtype=np.float32) for n in embedders}
    # Interleaved block by block (the groups qa.indexing embeds at once), the encoders' order turning: the load
    # of a shared machine changes within minutes, and must fall on every encoder alike.
    step = reference.batch_size * 4
    blocks = [range(i, min(i + step, len(texts))) for i in range(0, len(texts), step)]
    names = list(embedders)
    for r in range(rounds):
        seconds = dict.fromkeys(names, 0.0)
        for b, block in enumerate(blocks):
            for name in names[b % len(names):] + names[:b % len(names)]:
                started = time.perf_counter()
                vectors[name][block.start:block.stop], _ = embed_chunks(
                    embedders[name], texts[block.start:block.stop], spans[block.start:block.stop], progress=False)
                seconds[name] += time.perf_counter() - started
        for i, q in enumerate(asked):
            for name in names[i % len(names):] + names[:i % len(names)]:
                started = time.perf_counter()
                embedders[name].encode([q])
                query_ms[name].append((time.perf_counter() - started) * 1000)
        for name in names:
            speed[name].append(len(texts) / seconds[name])
            log(f"round {r + 1}: {name} {speed[name][-1]:.1f} chunks/s, question p50 "
                f"{statistics.median(query_ms[name][-len(asked):]):.2f} ms")
    # Then each encoder alone, its questions one after another: what a process that only embeds questions sees.
    # Interleaved above, each question follows the other encoders' passes, which push its weights out of the
    # caches (as a search between two questions does in the app): both figures are reported.
    alone: dict[str, list[float]] = {n: [] for n in names}
    for name in names:
        for q in asked:
            started = time.perf_counter()
            embedders[name].encode([q])
            alone[name].append((time.perf_counter() - started) * 1000)
    rows = {}
    for name in embedders:
        cos = (vectors[name] * vectors[reference.encoder]).sum(axis=1)
        ratios = [s / t for s, t in zip(speed[name], speed[reference.encoder], strict=True)]
        rows[name] = {"chunks_per_s": statistics.median(speed[name]), "rounds": speed[name],
                      "speedup": statistics.median(ratios), "question_ms_p50": statistics.median(query_ms[name]),
                      "question_ms_p95": float(np.percentile(query_ms[name], 95)),
                      "question_ms_p50_alone": statistics.median(alone[name]),
                      "cos_min": float(cos.min()), "cos_mean": float(cos.mean())}
    if squad:
        with tempfile.TemporaryDirectory(prefix="qa-encoders-") as work:
            for name, embedder in embedders.items():
                rows[name]["squad"] = squad_mrr(embedder, Path(work))
                log(f"{name}: SQuAD {rows[name]['squad']}")
    dev = {}
    for name, path in (dev_indexes or {}).items():
        dev[name] = dev_mrr(path)
        log(f"{name}: real-news dev {dev[name]}")
    return {"sample": {"chunks": len(texts), "articles": used, "folder": str(folder),
                       "chunks_per_article": len(texts) / max(used, 1)},
            "rounds": rounds, "questions": len(asked), "encoders": rows, "dev": dev, "machine": machine(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def render(result: dict) -> str:
    header = ["encoder", "chunks/s", "x torch", "question p50 ms", "alone", "cos min", "cos mean", "SQuAD dense MRR@10",
              "SQuAD hybrid MRR@10", "dev MRR@10", "dev question p50 ms"]
    rows = []
    for name, r in result["encoders"].items():
        squad = r.get("squad", {})
        dev = result["dev"].get(name, {})
        rows.append([name, r["chunks_per_s"], r["speedup"], r["question_ms_p50"], r.get("question_ms_p50_alone"),
                     r["cos_min"], r["cos_mean"],
                     squad.get("dense_mrr@10"), squad.get("hybrid_mrr@10"), dev.get("mrr@10"),
                     dev.get("question_ms_p50")])
    s = result["sample"]
    return (f"{s['chunks']} chunks of {s['articles']} articles ({s['folder']}), {result['rounds']} rounds; "
            f"{result['questions']} questions; {result['date']}\n\n" + table(header, rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.encoders", description=__doc__.splitlines()[0])
    parser.add_argument("--encoders", default=",".join(ENCODERS), help="comma-separated, torch first")
    parser.add_argument("--chunks", type=int, default=3000, help="chunks in the speed sample (default: 3000)")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes over the sample per encoder")
    parser.add_argument("--no-squad", dest="squad", action="store_false", help="leave the SQuAD MRR out")
    parser.add_argument("--dev-index", action="append", default=[], metavar="ENCODER=FOLDER",
                        help="a real-news dev index built with ENCODER, for its retrieval MRR@10 (repeatable)")
    parser.add_argument("--out", type=Path, default=RESULTS / "encoders.json")
    args = parser.parse_args(argv)
    encoders = tuple(e.strip() for e in args.encoders.split(",") if e.strip())
    bad = [e for e in encoders if e not in ENCODERS]
    if bad or not encoders:
        parser.error(f"--encoders: choose from {', '.join(ENCODERS)}")
    dev = {}
    for pair in args.dev_index:
        name, sep, folder = pair.partition("=")
        if not sep or not Path(folder).is_dir():
            parser.error(f"--dev-index {pair!r}: give ENCODER=FOLDER, an existing index folder")
        dev[name] = Path(folder)
    result = run(encoders, args.chunks, args.rounds, args.squad, dev_indexes=dev)
    print(render(result))
    save_json(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
