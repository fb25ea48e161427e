"""Quality and latency of retrieval and answers on ../shared/eval, per retrieval mode, with txtai beside ours.

    python -m bench.eval                                   # 500 SQuAD questions, bm25/dense/hybrid, txtai
    python -m bench.eval --limit 100 --modes hybrid --set abstain_below=0.5 --no-peer

What it measures (see BENCHMARKS.md):

- retrieval: each SQuAD paragraph is indexed as one article; for each answerable question, is its paragraph
  among the first k distinct articles of the ranked chunks (Hits@1/5/10, MRR@10)?
- answers: for answerable questions, does a gold answer (ignoring case and whitespace) appear in the answer's
  first sentence, anywhere in the answer, in a cited snippet?
- abstention: how often the assistant abstains on answerable questions, on SQuAD 2.0's unanswerable ones,
  and out of corpus (the SQuAD questions asked of an index of the two seed articles, and the seed
  questions marked ``expect_abstain``);
- latency p50/p95 of ``Retriever.search`` and of ``ask``, with the query-vector cache emptied before each
  call, since a user's question is new.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.data import (
    EVAL_DIR,
    RESULTS,
    SEED_CORPUS,
    DataError,
    SquadSet,
    article_id,
    contains,
    pipeline_version,
    seed_questions,
    squad_set,
    write_squad_corpus,
)
from bench.metrics import TOP_ARTICLES, first_distinct, percentiles, ranking_metrics, rate, timed
from bench.report import fmt, machine, save_json, table
from bench.report import log as _log
from qa.config import DEFAULT_MODEL, Settings
from qa.environment import configure_offline

MODES = ("bm25", "dense", "hybrid")
#: Chunks fetched per search when scoring retrieval: enough to rank 10 distinct articles.
SEARCH_K = 40


class UsageError(ValueError):
    """A bad command-line value; the message says what to give instead."""


def parse_overrides(pairs: Sequence[str]) -> dict[str, object]:
    """``["abstain_below=0.5", ...]`` -> typed ExtractiveSettings fields; unknown names or bad values raise."""
    from qa.answering.composer import ExtractiveSettings

    defaults = ExtractiveSettings()
    names = [f.name for f in dataclasses.fields(ExtractiveSettings)]
    out: dict[str, object] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or key not in names:
            raise UsageError(f"--set {pair!r}: use NAME=VALUE with NAME one of {', '.join(names)}")
        default = getattr(defaults, key)
        kind = float if default is None else type(default)  # abstain_below: None means the ranker's threshold
        try:
            out[key] = kind(raw.strip())
        except ValueError:
            raise UsageError(f"--set {pair!r}: {key} takes a {kind.__name__}, e.g. "
                             f"{key}={default if default is not None else 0.5}") from None
    return out


def evaluate(eval_dir: Path = EVAL_DIR, modes: Sequence[str] = MODES, limit: int | None = None,
             passages: int | None = None, overrides: dict | None = None, peer: bool = True,
             workdir: Path | None = None, seed_index: Path | None = None, embedder=None, k: int = 5,
             log=None) -> dict:
    """Run the evaluation and return its results as a dict (what ``--out`` saves as JSON).

    ``limit``: SQuAD questions to sample (all when None); ``passages``: paragraphs to index (the sampled
    questions' own, then distractors; all when None); ``overrides``: ExtractiveSettings fields;
    ``workdir``: where the corpus and indexes go (default: a cache under bench/results/, reused when the
    same paragraphs are asked for again); ``seed_index``: an existing index of the seed corpus to use.
    """
    configure_offline()
    from qa.answering.composer import ExtractiveAnswerer, ExtractiveSettings
    from qa.assistant import Assistant
    from qa.encoders import load_embedder
    from qa.retriever import Retriever

    log = log or _log
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise UsageError(f"modes {', '.join(bad) or '(none)'}: choose from {', '.join(MODES)}")
    if k < 1:
        raise UsageError(f"-k {k}: the assistant needs at least 1 passage")
    answer_settings = ExtractiveSettings(**(overrides or {}))
    data = squad_set(eval_dir, limit, passages)
    seeds = seed_questions(eval_dir)
    embedder = embedder or load_embedder(DEFAULT_MODEL)
    settings = Settings()
    workdir = workdir or cache_dir(data, settings)
    log(f"indexing {len(data.passages)} paragraphs in {workdir} ...")
    build = build_index(workdir, data.passages, settings, embedder)
    if seed_index is None:
        seed_index = workdir / "seed-index"
        _sync(SEED_CORPUS, seed_index, settings, embedder)
    squad = Retriever(workdir / "index", embedder)
    seed = Retriever(seed_index, embedder)
    assistants = {
        "squad": Assistant(squad, ExtractiveAnswerer(answer_settings), k=k),
        "seed": Assistant(seed, ExtractiveAnswerer(answer_settings), k=k),
    }
    systems = []
    for mode in modes:
        started = time.perf_counter()
        systems.append(_run_mode(mode, data, seeds, assistants))
        log(f"qa {mode}: {_summary(systems[-1])} ({time.perf_counter() - started:.0f}s)")
    if peer:
        try:
            from bench.peer import PeerUnavailable, evaluate_txtai
        except ImportError as exc:
            log(f"txtai left out: {exc}")
        else:
            try:
                systems += evaluate_txtai(workdir / "index", data, log=log)
            except PeerUnavailable as exc:
                log(f"txtai left out: {exc}")
    squad.close()
    seed.close()
    return {
        "dataset": {"eval_dir": str(eval_dir), "questions": len(data.questions),
                    "answerable": len(data.answerable), "unanswerable": len(data.unanswerable),
                    "paragraphs": len(data.passages), "seed_questions": len(seeds)},
        "index": build,
        "answerer": dataclasses.asdict(answer_settings),
        "assistant_k": k,
        "systems": systems,
        "machine": machine(),
    }


def ask(assistant, question: str, mode: str):
    """``assistant.ask`` with the retrieval mode chosen: Assistant itself always searches in hybrid mode."""
    if mode == "hybrid":
        return assistant.ask(question)
    from qa.answering.candidates import gather
    from qa.conversation import Reading

    question = " ".join(question.split())
    return assistant.answerer.answer(gather(assistant.retriever, question, Reading(question, question, False),
                                            k=assistant.k, mode=mode))


def forget_queries(retriever) -> None:
    """Empty the retriever's query-vector cache, so the next call pays for embedding its question."""
    cache = getattr(retriever, "_query_cache", None)
    if cache is not None:
        cache.clear()


def answered_ok(answer, seed) -> bool:
    """A seed question "ok": answered, with an expected string in the answer and in a cited snippet."""
    return (not answer.abstained and contains(answer.text, seed.expect_any)
            and any(contains(c.snippet, seed.expect_any) for c in answer.citations))


def _run_mode(mode: str, data: SquadSet, seeds, assistants: dict) -> dict:
    squad = assistants["squad"]
    rankings, search_times = [], []
    for q in data.answerable:
        forget_queries(squad.retriever)
        found, seconds = timed(lambda q=q: squad.retriever.search(q.question, k=SEARCH_K, mode=mode))
        rankings.append(first_distinct([p.article_id for p in found], TOP_ARTICLES))
        search_times.append(seconds)
    retrieval = ranking_metrics(rankings, [article_id(q.passage_id) for q in data.answerable])

    ask_times, first, anywhere, cited, abstained, unanswerable = [], [], [], [], [], []
    for q in data.questions:
        forget_queries(squad.retriever)
        answer, seconds = timed(lambda q=q: ask(squad, q.question, mode))
        ask_times.append(seconds)
        if q.is_impossible:
            unanswerable.append(answer.abstained)
            continue
        abstained.append(answer.abstained)
        first.append(bool(answer.sentences) and contains(answer.sentences[0].text, q.answers))
        anywhere.append(not answer.abstained and contains(answer.text, q.answers))
        cited.append(any(contains(c.snippet, q.answers) for c in answer.citations))
    answered_first = [f for f, a in zip(first, abstained, strict=True) if not a]

    seed = assistants["seed"]
    out_of_corpus = [ask(seed, q.question, mode).abstained for q in data.questions]
    seed_abstain, seed_ok = [], []
    for s in seeds:
        answer = ask(seed, s.question, mode)
        if s.expect_abstain:
            seed_abstain.append(answer.abstained)
        else:
            seed_ok.append(answered_ok(answer, s))
    return {
        "system": "qa", "mode": mode, "retrieval": retrieval,
        "answers": {"first_sentence": rate(first), "answer": rate(anywhere), "cited": rate(cited),
                    "first_sentence_when_answered": rate(answered_first), "n": len(first)},
        "abstention": {"squad_answerable": rate(abstained), "squad_unanswerable": rate(unanswerable),
                       "out_of_corpus_squad": rate(out_of_corpus), "seed_expect_abstain": rate(seed_abstain)},
        "seed_answerable_ok": rate(seed_ok),
        "latency_ms": {"search": percentiles(search_times), "ask": percentiles(ask_times)},
    }


def cache_dir(data: SquadSet, settings: Settings) -> Path:
    """Where the index of ``data``'s paragraphs is cached: the same paragraphs and settings, the same folder."""
    key = "|".join([*sorted(data.passages), settings.model, str(settings.chunk_tokens), str(settings.overlap),
                    pipeline_version()])
    return RESULTS / "cache" / f"eval-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def build_index(workdir: Path, passages: dict[str, str], settings: Settings, embedder) -> dict:
    """Write the paragraphs as ``workdir/corpus`` and sync ``workdir/index`` with it (a no-op when cached)."""
    corpus, index = workdir / "corpus", workdir / "index"
    write_squad_corpus(corpus, passages)
    report = _sync(corpus, index, settings, embedder)
    from bench.reader import status

    held = status(index)
    chunks, sentences = held.chunks, held.sentences
    return {"path": str(index), "articles": len(passages), "chunks": chunks, "sentences": sentences,
            "chunks_embedded_now": report.chunks_embedded, "seconds": report.seconds}


def _sync(corpus: Path, index: Path, settings: Settings, embedder):
    from qa.indexing import SettingsMismatch, sync

    try:
        return sync(corpus, index, settings=settings, embedder=embedder)
    except SettingsMismatch:
        return sync(corpus, index, settings=settings, embedder=embedder, rebuild=True)


def _summary(system: dict) -> str:
    r = system["retrieval"]
    return f"hits@1 {fmt(r['hits@1'])}, hits@10 {fmt(r['hits@10'])}, MRR@10 {fmt(r['mrr@10'])}"


def render(results: dict) -> str:
    """The results as Markdown tables."""
    systems = results["systems"]
    lines = [f"{results['dataset']['questions']} SQuAD questions ({results['dataset']['answerable']} answerable) "
             f"over {results['dataset']['paragraphs']} paragraphs = {results['index']['chunks']} chunks; "
             f"answerer {results['answerer']}", "",
             "Retrieval (article of the question in the top k) and search latency:", ""]
    lines.append(table(
        ["system", "mode", "Hits@1", "Hits@5", "Hits@10", "MRR@10", "search p50 ms", "search p95 ms"],
        [[s["system"], s["mode"], s["retrieval"]["hits@1"], s["retrieval"]["hits@5"], s["retrieval"]["hits@10"],
          s["retrieval"]["mrr@10"], s["latency_ms"]["search"]["p50"], s["latency_ms"]["search"]["p95"]]
         for s in systems]))
    ours = [s for s in systems if "answers" in s]
    if ours:
        lines += ["", "Answers (gold answer contained; share of answerable questions) and abstention rates:", ""]
        lines.append(table(
            ["mode", "1st sentence", "answer", "cited", "1st when answered", "abstain: answerable",
             "unanswerable", "out of corpus", "seed expect_abstain", "seed ok", "ask p50 ms", "ask p95 ms"],
            [[s["mode"], s["answers"]["first_sentence"], s["answers"]["answer"], s["answers"]["cited"],
              s["answers"]["first_sentence_when_answered"], s["abstention"]["squad_answerable"],
              s["abstention"]["squad_unanswerable"], s["abstention"]["out_of_corpus_squad"],
              s["abstention"]["seed_expect_abstain"], s["seed_answerable_ok"], s["latency_ms"]["ask"]["p50"],
              s["latency_ms"]["ask"]["p95"]] for s in ours]))
    peers = [s for s in systems if "indexing" in s]
    if peers:
        p, ours = peers[0]["indexing"], results["index"]
        lines += ["", f"txtai {p['version']} indexed the same {p['chunks']} chunk texts in {fmt(p['seconds'])} s "
                      f"({fmt(p['chunks_per_s'])} chunks/s, FAISS {p['faiss']}); ours took {fmt(ours['seconds'])} s "
                      f"for {ours['chunks_embedded_now']} chunks embedded now (0 when the cached index was reused; "
                      "see `python -m bench.speed` for a like-for-like timing)."]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.eval", description=__doc__.splitlines()[0])
    parser.add_argument("--eval-dir", type=Path, default=EVAL_DIR, help="folder of the eval files (../shared/eval)")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated: bm25,dense,hybrid")
    parser.add_argument("--limit", type=int, help="sample this many SQuAD questions (default: all 500)")
    parser.add_argument("--passages", type=int, help="index only this many paragraphs (default: all)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                        help="override an ExtractiveSettings field, e.g. --set abstain_below=0.5 (repeatable)")
    parser.add_argument("-k", type=int, default=5, help="passages the assistant answers from (default: 5)")
    parser.add_argument("--no-peer", action="store_true", help="leave txtai out")
    parser.add_argument("--workdir", type=Path, help="where the corpus and indexes go (default: a cache in "
                                                     "bench/results/cache)")
    parser.add_argument("--out", type=Path, default=RESULTS / "eval.json", help="JSON results file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        results = evaluate(args.eval_dir, [m.strip() for m in args.modes.split(",") if m.strip()], args.limit,
                           args.passages, parse_overrides(args.overrides), not args.no_peer, args.workdir, k=args.k)
    except (UsageError, DataError) as exc:
        print(f"bench.eval: error: {exc}", file=sys.stderr)
        return 2
    print(render(results))
    print(f"\nsaved {save_json(results, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
