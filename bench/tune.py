"""Choosing the defaults on ../shared/eval: chunk size and overlap, BM25's weight, passages and sentences per answer.

    python -m bench.tune                                   # the three sweeps below (the first run builds 8 indexes)
    python -m bench.tune --grids fusion --weights 0.2,0.3,0.4
    python -m bench.tune --grids chunking --chunk-tokens 96,128 --overlaps 1 --limit 100

Each sweep moves one group of knobs around the current defaults, on bench.eval's data and with its measures
(the results and the choices drawn from them are in BENCHMARKS.md, "Choosing the defaults"):

- chunking (``Settings.chunk_tokens`` x ``overlap``): each setting gets its own SQuAD and seed index, cached as
  bench.eval caches its own, and bench.eval's whole hybrid evaluation; besides, retrieval of the *unanswerable*
  questions' paragraphs (a second retrieval check) and the seed gap: the least confident answerable seed question
  minus the most confident question the seed index cannot answer (positive: one threshold still tells them apart;
  the threshold itself stays the default, set by ``python -m bench.calibrate`` at the default chunking);
- fusion (``Retriever.bm25_weight``): retrieval only, of the answerable and the unanswerable questions' paragraphs,
  and whether the first passage for each answerable seed question holds its expected answer;
- answer (``Assistant.k`` x ``ExtractiveSettings.max_sentences``): answer containment, abstention, answer length
  and ``ask`` latency.

Questions are embedded once and remembered (:class:`RememberingEmbedder`), except in the calls whose latency is
reported, which pay for embedding their question as a user's would.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.data import (
    EVAL_DIR,
    RESULTS,
    SEED_CORPUS,
    DataError,
    SeedQuestion,
    SquadQuestion,
    article_id,
    contains,
    seed_questions,
    squad_set,
)
from bench.eval import (
    SEARCH_K,
    TOP_ARTICLES,
    UsageError,
    _run_mode,
    _sync,
    answered_ok,
    build_index,
    cache_dir,
)
from bench.metrics import first_distinct, ranking_metrics, rate
from bench.report import fmt, machine, save_json, table
from bench.report import log as _log
from qa.config import DEFAULT_MODEL, Settings
from qa.environment import configure_offline

GRIDS = ("chunking", "fusion", "answer")
CHUNK_TOKENS = (64, 128, 192)
OVERLAPS = (0, 1, 2)
WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)
KS = (3, 5, 8)
MAX_SENTENCES = (1, 2, 3)
#: The assistant's default number of passages (``Assistant.k``).
DEFAULT_K = 5


class RememberingEmbedder:
    """The real embedder, remembering the vector of every single text (question) it encoded.

    The sweeps ask the same questions of many indexes; the answers are the same with a remembered vector, and
    only the calls whose latency is reported need to embed again (those use the plain embedder).
    """

    def __init__(self, embedder):
        self.embedder = embedder
        self._vectors: dict[str, np.ndarray] = {}

    def __getattr__(self, name: str):
        """Everything else is the real embedder's (its name, encoder, sizes, token counts, word vectors)."""
        if name == "embedder":  # not set yet (a copy being made): no recursion
            raise AttributeError(name)
        return getattr(self.embedder, name)

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        if len(texts) != 1:
            return self.embedder.encode(texts, progress)
        vector = self._vectors.get(texts[0])
        if vector is None:
            vector = self._vectors[texts[0]] = self.embedder.encode(texts)[0]
        return vector[None, :]


def tune(eval_dir: Path = EVAL_DIR, grids: Sequence[str] = GRIDS, limit: int | None = None,
         passages: int | None = None, chunk_tokens: Sequence[int] = CHUNK_TOKENS, overlaps: Sequence[int] = OVERLAPS,
         weights: Sequence[float] = WEIGHTS, ks: Sequence[int] = KS, max_sentences: Sequence[int] = MAX_SENTENCES,
         cache: Path | None = None, seed_index: Path | None = None, embedder=None, log=None) -> dict:
    """Run the sweeps in ``grids`` and return their results as a dict (what ``--out`` saves as JSON).

    ``limit``/``passages`` sample the SQuAD set as bench.eval does; ``cache``: the folder holding one index
    folder per chunking (default bench/results/cache, shared with bench.eval); ``seed_index``: an existing index
    of the seed corpus at the default chunking.
    """
    configure_offline()
    from qa.chunking import Chunker
    from qa.encoders import load_embedder

    log = log or _log
    _check(grids, chunk_tokens, overlaps, weights, ks, max_sentences)
    data = squad_set(eval_dir, limit, passages)
    seeds = seed_questions(eval_dir)
    embedder = embedder or load_embedder(DEFAULT_MODEL)
    for tokens in chunk_tokens:
        try:
            Chunker(embedder, tokens, 0, embedder.max_tokens)
        except ValueError as exc:
            raise UsageError(f"--chunk-tokens {tokens}: {exc}") from None
    run = _Run(data, seeds, embedder, RememberingEmbedder(embedder), cache or RESULTS / "cache", seed_index, log)
    defaults = Settings()
    results: dict = {
        "dataset": {"eval_dir": str(eval_dir), "questions": len(data.questions), "answerable": len(data.answerable),
                    "unanswerable": len(data.unanswerable), "paragraphs": len(data.passages),
                    "seed_questions": len(seeds)},
        "texts": describe_texts(data.passages, embedder),
        "defaults": {"chunk_tokens": defaults.chunk_tokens, "overlap": defaults.overlap,
                     "bm25_weight": _default_weight(), "k": DEFAULT_K, "max_sentences": _default_sentences()},
        "seconds": {},
    }
    for grid in GRIDS:
        if grid in grids:
            started = time.perf_counter()
            if grid == "chunking":
                results[grid] = [run.chunking(t, o) for t in chunk_tokens for o in overlaps]
            elif grid == "fusion":
                results[grid] = run.fusion(weights)
            else:
                results[grid] = [run.answer(k, m) for k in ks for m in max_sentences]
            results["seconds"][grid] = time.perf_counter() - started
            log(f"{grid}: {results['seconds'][grid]:.0f}s")
    run.close()
    results["machine"] = machine()
    return results


class _Run:
    """The data, the model and the opened indexes that the sweeps share."""

    def __init__(self, data, seeds: list[SeedQuestion], embedder, remembering: RememberingEmbedder, cache: Path,
                 seed_index: Path | None, log):
        self.data, self.seeds, self.embedder, self.remembering = data, seeds, embedder, remembering
        self.cache, self.seed_index, self.log = cache, seed_index, log
        self._opened: dict[tuple[int, int], dict] = {}

    def indexes(self, chunk_tokens: int, overlap: int) -> dict:
        """The SQuAD and seed indexes at this chunking (built, or found in the cache), and retrievers on them."""
        from bench.reader import status
        from qa.retriever import Retriever

        key = (chunk_tokens, overlap)
        if key in self._opened:
            return self._opened[key]
        settings = Settings(chunk_tokens=chunk_tokens, overlap=overlap)
        workdir = self.cache / cache_dir(self.data, settings).name
        started = time.perf_counter()
        build = build_index(workdir, self.data.passages, settings, self.embedder)
        seed = self.seed_index if self.seed_index is not None and key == _default_chunking() else None
        if seed is None:
            seed = workdir / "seed-index"
            _sync(SEED_CORPUS, seed, settings, self.embedder)
        seed_chunks = status(seed).chunks
        self.log(f"chunking {chunk_tokens}/{overlap}: {build['chunks']} SQuAD chunks ({build['chunks_embedded_now']} "
                 f"embedded now), {seed_chunks} seed chunks ({time.perf_counter() - started:.0f}s)")
        self._opened[key] = opened = {
            "build": build, "seed_chunks": seed_chunks,
            "timed": Retriever(build["path"], self.embedder),  # pays for each question's vector: latency
            "squad": Retriever(build["path"], self.remembering),
            "seed": Retriever(seed, self.remembering),
        }
        return opened

    def assistants(self, opened: dict, k: int = DEFAULT_K, max_sentences: int | None = None) -> dict:
        """bench.eval's pair of assistants (SQuAD timed, seed remembering) and a remembering SQuAD one."""
        from qa.answering.composer import ExtractiveAnswerer, ExtractiveSettings
        from qa.assistant import Assistant

        settings = ExtractiveSettings() if max_sentences is None else ExtractiveSettings(max_sentences=max_sentences)
        return {name: Assistant(opened[name], ExtractiveAnswerer(settings), k=k)
                for name in ("timed", "squad", "seed")}

    def chunking(self, chunk_tokens: int, overlap: int) -> dict:
        opened = self.indexes(chunk_tokens, overlap)
        assistants = self.assistants(opened)
        started = time.perf_counter()
        system = _run_mode("hybrid", self.data, self.seeds, {"squad": assistants["timed"], "seed": assistants["seed"]})
        row = {"chunk_tokens": chunk_tokens, "overlap": overlap,
               "default": (chunk_tokens, overlap) == _default_chunking(),
               "chunks": opened["build"]["chunks"], "seed_chunks": opened["seed_chunks"], "index": opened["build"],
               "system": system, "unanswerable_retrieval": retrieval(opened["squad"], self.data.unanswerable),
               "seed_gap": seed_gap(assistants["seed"], self.seeds, self.data.questions)}
        self.log(f"  {_brief(row)} ({time.perf_counter() - started:.0f}s)")
        return row

    def fusion(self, weights: Sequence[float]) -> list[dict]:
        from qa.assistant import Assistant

        opened = self.indexes(*_default_chunking())
        squad, seed = opened["squad"], opened["seed"]
        assistant = Assistant(seed, k=DEFAULT_K)
        rows = []
        for weight in weights:
            squad.bm25_weight = seed.bm25_weight = weight
            started = time.perf_counter()
            answerable = [s for s in self.seeds if not s.expect_abstain]
            first = [seed.search(s.question, k=1) for s in answerable]
            rows.append({"bm25_weight": weight, "default": weight == _default_weight(),
                         "answerable": retrieval(squad, self.data.answerable),
                         "unanswerable": retrieval(squad, self.data.unanswerable),
                         "seed_first_passage": rate([bool(p) and contains(p[0].text, s.expect_any)
                                                     for p, s in zip(first, answerable, strict=True)]),
                         "seed_answerable_ok": rate([answered_ok(assistant.ask(s.question), s) for s in answerable])})
            self.log(f"  BM25 weight {weight}: {_brief(rows[-1])} ({time.perf_counter() - started:.0f}s)")
        squad.bm25_weight = seed.bm25_weight = _default_weight()
        return rows

    def answer(self, k: int, max_sentences: int) -> dict:
        opened = self.indexes(*_default_chunking())
        assistants = self.assistants(opened, k, max_sentences)
        started = time.perf_counter()
        system = _run_mode("hybrid", self.data, self.seeds, {"squad": assistants["timed"], "seed": assistants["seed"]})
        row = {"k": k, "max_sentences": max_sentences,
               "default": (k, max_sentences) == (DEFAULT_K, _default_sentences()),
               "answers": system["answers"], "abstention": system["abstention"],
               "seed_answerable_ok": system["seed_answerable_ok"], "latency_ms": system["latency_ms"],
               "length": answer_length(assistants["squad"], self.data.answerable)}
        self.log(f"  k={k}, max_sentences={max_sentences}: {_brief(row)} ({time.perf_counter() - started:.0f}s)")
        return row

    def close(self) -> None:
        for opened in self._opened.values():
            for name in ("timed", "squad", "seed"):
                opened[name].close()


def retrieval(retriever, questions: Sequence[SquadQuestion]) -> dict:
    """Hits@1/5/10 and MRR@10 of each question's own paragraph, as bench.eval scores the answerable ones."""
    rankings = [first_distinct([p.article_id for p in retriever.search(q.question, k=SEARCH_K)], TOP_ARTICLES)
                for q in questions]
    return ranking_metrics(rankings, [article_id(q.passage_id) for q in questions])


def confidence(assistant, question: str) -> float:
    """The answerer's confidence for a question (it abstains below ``abstain_below``)."""
    judgement = assistant.judge.judge(assistant.evidence(" ".join(question.split())))
    return float("-inf") if judgement.gated else judgement.confidence


def seed_gap(assistant, seeds: Sequence[SeedQuestion], squad: Sequence[SquadQuestion]) -> dict:
    """Confidence of the least sure answerable seed question against the surest question the seed index cannot
    answer (expect_abstain seeds, SQuAD questions); a positive gap means one threshold separates them."""
    lowest = min(confidence(assistant, s.question) for s in seeds if not s.expect_abstain)
    highest = max(confidence(assistant, q) for q in [*(s.question for s in seeds if s.expect_abstain),
                                                     *(q.question for q in squad)])
    return {"answerable_min": lowest, "cannot_answer_max": highest, "gap": lowest - highest}


def answer_length(assistant, questions: Sequence[SquadQuestion]) -> dict:
    """Mean sentences and words of the answers given (abstentions left out)."""
    answers = [a for a in (assistant.ask(q.question) for q in questions) if not a.abstained]
    if not answers:
        return {"sentences": None, "words": None, "n": 0}
    return {"sentences": float(np.mean([len(a.sentences) for a in answers])),
            "words": float(np.mean([sum(len(s.text.split()) for s in a.sentences) for a in answers])),
            "n": len(answers)}


def describe_texts(passages: dict[str, str], embedder) -> dict:
    """Token lengths of the SQuAD paragraphs, and the size of each seed article: what chunking has to cut."""
    from qa.chunking import split_sentences
    from qa.corpus import read_corpus

    tokens = np.array(embedder.count(list(passages.values())))
    squad = {f"p{q}": float(np.percentile(tokens, q)) for q in (10, 25, 50, 75, 90)}
    squad.update({"min": int(tokens.min()), "max": int(tokens.max()), "mean": float(tokens.mean()),
                  "sentences_mean": float(np.mean([len(split_sentences(t)) for t in passages.values()])),
                  **{f"share_up_to_{n}": float((tokens <= n).mean()) for n in CHUNK_TOKENS}})
    articles, _ = read_corpus(SEED_CORPUS)
    seed = [{"id": a.id, "tokens": embedder.count([a.text])[0], "sentences": len(split_sentences(a.text))}
            for a in articles]
    return {"squad_paragraph_tokens": squad, "seed_articles": seed}


def _default_chunking() -> tuple[int, int]:
    return Settings.chunk_tokens, Settings.overlap


def _default_weight() -> float:
    from qa.retriever import BM25_WEIGHT

    return BM25_WEIGHT


def _default_sentences() -> int:
    from qa.answering.composer import ExtractiveSettings

    return ExtractiveSettings.max_sentences


def _check(grids, chunk_tokens, overlaps, weights, ks, max_sentences) -> None:
    bad = [g for g in grids if g not in GRIDS]
    if bad or not grids:
        raise UsageError(f"grids {', '.join(bad) or '(none)'}: choose from {', '.join(GRIDS)}")
    for name, values, ok, what in (
            ("--chunk-tokens", chunk_tokens, lambda v: v >= 16, "at least 16"),
            ("--overlaps", overlaps, lambda v: v >= 0, "0 or more"),
            ("--weights", weights, lambda v: 0 <= v <= 1, "between 0 and 1"),
            ("-k", ks, lambda v: v >= 1, "at least 1"),
            ("--max-sentences", max_sentences, lambda v: v >= 1, "at least 1")):
        wrong = [v for v in values if not ok(v)]
        if wrong or not values:
            raise UsageError(f"{name} {', '.join(map(str, wrong)) or '(none)'}: give values {what}")


def _brief(row: dict) -> str:
    if "answers" in row and "system" not in row:
        return (f"1st sentence {fmt(row['answers']['first_sentence'])}, answer {fmt(row['answers']['answer'])}, "
                f"ask p50 {fmt(row['latency_ms']['ask']['p50'])} ms")
    r = row["system"]["retrieval"] if "system" in row else row["answerable"]
    u = row["unanswerable_retrieval"] if "system" in row else row["unanswerable"]
    return f"MRR@10 {fmt(r['mrr@10'])} (unanswerable {fmt(u['mrr@10'])}), Hits@1 {fmt(r['hits@1'])}"


def _mark(text: str, row: dict) -> str:
    return f"{text} (default)" if row["default"] else text


def render(results: dict) -> str:
    """The results as Markdown tables."""
    d, t = results["dataset"], results["texts"]
    s = t["squad_paragraph_tokens"]
    lines = [f"{d['questions']} SQuAD questions ({d['answerable']} answerable, {d['unanswerable']} unanswerable) "
             f"over {d['paragraphs']} paragraphs; {d['seed_questions']} seed questions over "
             f"{len(t['seed_articles'])} seed articles.",
             f"SQuAD paragraph tokens: median {fmt(s['p50'])}, p10-p90 {fmt(s['p10'])}-{fmt(s['p90'])}, "
             f"max {s['max']}; "
             + ", ".join(f"{s[f'share_up_to_{n}']:.0%} within {n}" for n in CHUNK_TOKENS)
             + f"; {fmt(s['sentences_mean'])} sentences on average. Seed articles: "
             + ", ".join(f"{a['tokens']} tokens / {a['sentences']} sentences" for a in t["seed_articles"]) + "."]
    if "chunking" in results:
        rows = results["chunking"]
        lines += ["", "Chunking (hybrid retrieval; answerer and threshold at their defaults):", "", table(
            ["chunk tokens / overlap", "chunks", "seed chunks", "MRR@10", "Hits@1", "Hits@10", "unanswerable MRR@10",
             "unanswerable Hits@1", "search p50 ms"],
            [[_mark(f"{r['chunk_tokens']} / {r['overlap']}", r), r["chunks"], r["seed_chunks"],
              r["system"]["retrieval"]["mrr@10"], r["system"]["retrieval"]["hits@1"],
              r["system"]["retrieval"]["hits@10"], r["unanswerable_retrieval"]["mrr@10"],
              r["unanswerable_retrieval"]["hits@1"], r["system"]["latency_ms"]["search"]["p50"]] for r in rows]),
            "", table(
            ["chunk tokens / overlap", "1st sentence", "answer", "cited", "abstain: answerable", "unanswerable",
             "out of corpus", "seed expect_abstain", "seed ok", "seed gap", "ask p50 ms"],
            [[_mark(f"{r['chunk_tokens']} / {r['overlap']}", r), r["system"]["answers"]["first_sentence"],
              r["system"]["answers"]["answer"], r["system"]["answers"]["cited"],
              r["system"]["abstention"]["squad_answerable"], r["system"]["abstention"]["squad_unanswerable"],
              r["system"]["abstention"]["out_of_corpus_squad"], r["system"]["abstention"]["seed_expect_abstain"],
              r["system"]["seed_answerable_ok"], r["seed_gap"]["gap"], r["system"]["latency_ms"]["ask"]["p50"]]
             for r in rows])]
    if "fusion" in results:
        lines += ["", "BM25 weight in hybrid retrieval (default chunking; retrieval only):", "", table(
            ["BM25 weight", "MRR@10", "Hits@1", "Hits@10", "unanswerable MRR@10", "unanswerable Hits@1",
             "unanswerable Hits@10", "seed 1st passage", "seed ok"],
            [[_mark(str(r["bm25_weight"]), r), r["answerable"]["mrr@10"], r["answerable"]["hits@1"],
              r["answerable"]["hits@10"], r["unanswerable"]["mrr@10"], r["unanswerable"]["hits@1"],
              r["unanswerable"]["hits@10"], r["seed_first_passage"], r["seed_answerable_ok"]]
             for r in results["fusion"]])]
    if "answer" in results:
        lines += ["", "Passages (k) and sentences per answer (default chunking, hybrid):", "", table(
            ["k / max sentences", "1st sentence", "answer", "cited", "abstain: answerable", "unanswerable",
             "out of corpus", "seed ok", "sentences", "words", "ask p50 ms", "ask p95 ms"],
            [[_mark(f"{r['k']} / {r['max_sentences']}", r), r["answers"]["first_sentence"], r["answers"]["answer"],
              r["answers"]["cited"], r["abstention"]["squad_answerable"], r["abstention"]["squad_unanswerable"],
              r["abstention"]["out_of_corpus_squad"], r["seed_answerable_ok"], r["length"]["sentences"],
              r["length"]["words"], r["latency_ms"]["ask"]["p50"], r["latency_ms"]["ask"]["p95"]]
             for r in results["answer"]])]
    return "\n".join(lines)


def _numbers(kind):
    def parse(text: str) -> list:
        try:
            return [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated {kind.__name__}s, e.g. "
                                             f"{'1,2,3' if kind is int else '0.2,0.3'}") from None
    parse.__name__ = f"list of {kind.__name__}s"
    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.tune", description=__doc__.splitlines()[0])
    parser.add_argument("--eval-dir", type=Path, default=EVAL_DIR, help="folder of the eval files (../shared/eval)")
    parser.add_argument("--grids", default=",".join(GRIDS), help=f"comma-separated: {','.join(GRIDS)}")
    parser.add_argument("--limit", type=int, help="sample this many SQuAD questions (default: all 500)")
    parser.add_argument("--passages", type=int, help="index only this many paragraphs (default: all)")
    parser.add_argument("--chunk-tokens", type=_numbers(int), default=list(CHUNK_TOKENS), metavar="N,N,...")
    parser.add_argument("--overlaps", type=_numbers(int), default=list(OVERLAPS), metavar="N,N,...")
    parser.add_argument("--weights", type=_numbers(float), default=list(WEIGHTS), metavar="W,W,...",
                        help="BM25 weights for the fusion grid")
    parser.add_argument("-k", dest="ks", type=_numbers(int), default=list(KS), metavar="N,N,...",
                        help="passages per answer for the answer grid")
    parser.add_argument("--max-sentences", type=_numbers(int), default=list(MAX_SENTENCES), metavar="N,N,...")
    parser.add_argument("--out", type=Path, default=RESULTS / "tune.json", help="JSON results file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        results = tune(args.eval_dir, [g.strip() for g in args.grids.split(",") if g.strip()], args.limit,
                       args.passages, args.chunk_tokens, args.overlaps, args.weights, args.ks, args.max_sentences)
    except (UsageError, DataError) as exc:
        print(f"bench.tune: error: {exc}", file=sys.stderr)
        return 2
    print(render(results))
    print("\n" + ", ".join(f"{k} {v:.0f}s" for k, v in results["seconds"].items()))
    print(f"saved {save_json(results, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
