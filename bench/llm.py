"""Written answers beside quotes: the news dev set and a SQuAD subset, with a real llama.cpp server.

    python -m bench.llm                          # starts llama.cpp's server with Qwen2.5-0.5B (make llm), 40 + 30
    python -m bench.llm --local-model qwen2.5-1.5b   # the 1.5B that `make run-llm` serves
    python -m bench.llm --news 140 --squad 100   # more questions (about 12 s each on 2 shared cores)
    python -m bench.llm --url http://127.0.0.1:11434/v1 --model qwen2.5:7b   # another endpoint (Ollama, ...)
    python -m bench.llm --realnews 30 --news 0 --squad 0   # real news: 30 questions of dev and of check each

``--realnews N`` asks N questions of each real-news set (``bench.realnews``: dev 2024, check 2025, prepared outside
the project), every (size/N)-th in file order, on the day of the quiz, and scores them as the independent check
does: the correct choice in the answer's first sentence and anywhere in it, refused, sentences kept, fell back.

For each question, both answerers over one index, side by side:

- gold: a gold answer is in the answer's text (news: ``expect_any``; SQuAD: its answers), and abstained;
- kept: the share of the sentences the model wrote that passed the check; fallback: answers that fell back to
  the quotes (no supported sentence, or the endpoint failed);
- caught: unsupported sentences planted into each written answer, and the share the check rejects: (a) its first
  kept sentence with a number changed, (b) the same sentence citing a sentence of another question's article;
- time to first token and total time per answer (median), the quotes' time beside them.

It also prints the similarity calibration of ``qa.written.check.SIMILAR_ABOVE`` on the real model's sentences: for
thresholds around it, the share of kept sentences that would still be kept and of planted (b) sentences caught.

    python -m bench.llm --calibrate              # the calibration SIMILAR_ABOVE was set by (no model; ~2 min)

``--calibrate`` uses the 81 news dev questions whose quoted answer holds the gold answer: a short answer sentence
made of the question and its gold answer ("Votes did Tomas Verhoeven receive 99,870."), as a small model writes
them, against the quoted sentence (supported) and against a sentence of another article (not supported).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import newsqa
from bench.data import RESULTS, contains, squad_set, write_squad_corpus
from bench.report import save_json
from qa.answer import Answer, Checked, Token

THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)


def run(url: str, model: str | None, news: int, squad: int, timeout: float = 120.0) -> dict:
    from qa import Assistant, Retriever, sync
    from qa.assistant import with_endpoint
    from qa.encoders import load_embedder
    from qa.environment import configure_offline
    from qa.written import Endpoint

    configure_offline()
    embedder = load_embedder("all-MiniLM-L6-v2")
    writer = Endpoint(url, model, None, timeout)
    results = {"url": url}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus = newsqa.build_corpus(tmp / "news")
        sync(corpus, tmp / "news-index", embedder=embedder)
        records = [r for r in newsqa.load("dev") if not r.get("expect_no_match")][:news]
        retriever = Retriever(tmp / "news-index", embedder)
        cases = [(r, r.get("expect_any") or r.get("expect_all") or [], r.get("expect_abstain", False)) for r in records]
        results["news"] = _compare(cases, Assistant(retriever), with_endpoint(retriever, writer), retriever)
        retriever.close()
        data = squad_set(limit=squad, passages=squad * 2)
        write_squad_corpus(tmp / "squad", data.passages)
        sync(tmp / "squad", tmp / "squad-index", embedder=embedder)
        retriever = Retriever(tmp / "squad-index", embedder)
        cases = [({"question": q.question}, list(q.answers), q.is_impossible) for q in data.questions]
        results["squad"] = _compare(cases, Assistant(retriever), with_endpoint(retriever, writer), retriever)
        retriever.close()
    return results


def run_realnews(url: str, model: str | None, per_set: int, timeout: float = 120.0) -> dict:
    """Quotes beside written answers on ``per_set`` questions of each real-news set, over its kept index."""
    from bench import realnews
    from qa import Assistant
    from qa.assistant import with_endpoint
    from qa.environment import configure_offline
    from qa.written import Endpoint

    configure_offline()
    writer = Endpoint(url, model, None, timeout)
    results = {}
    for name in realnews.SETS:
        records = realnews.load(name)
        step = max(1, len(records) // per_set)
        records = records[::step][:per_set]
        retriever = realnews.open_index(name)
        quotes, written = Assistant(retriever), with_endpoint(retriever, writer)
        rows = []
        for record in records:
            started = time.perf_counter()
            q = quotes.ask(record["question"], as_of=record["as_of"])
            q_time = time.perf_counter() - started
            started, first, events = time.perf_counter(), None, []
            for event in written.stream(record["question"], as_of=record["as_of"]):
                if first is None and isinstance(event, Token):
                    first = time.perf_counter() - started
                events.append(event)
            total = time.perf_counter() - started
            w = events[-1]
            checked = [e for e in events if isinstance(e, Checked)]
            rows.append({"id": record["id"], "quotes": realnews.score(q, record["answer"]),
                         "written": realnews.score(w, record["answer"]), "quotes_s": q_time,
                         "first_token_s": first, "total_s": total, "called": first is not None,
                         "sentences": len(checked), "kept": sum(c.supported for c in checked),
                         "fallback": w.notice is not None})
            print(f"realnews {name} {len(rows)}/{len(records)}: quotes {rows[-1]['quotes']} written "
                  f"{rows[-1]['written']} kept {rows[-1]['kept']}/{rows[-1]['sentences']} {total:.1f} s",
                  file=sys.stderr)
        retriever.close()
        results[name] = rows
    return results


def render_realnews(results: dict, model: str) -> str:
    cell = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731
    lines = ["| set | answerer | n | first sentence | in the answer | refused | kept sentences | fell back | "
             "first token p50 | total p50 |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, rows in results.items():
        called = [r for r in rows if r["called"]]
        for who in ("quotes", model):
            key = "quotes" if who == "quotes" else "written"
            rates = [cell(_rate([r[key][m] for r in rows])) for m in ("first", "answer", "refused")]
            if key == "quotes":
                rest = f"- | - | - | {np.median([r['quotes_s'] for r in rows]) * 1000:.0f} ms"
            else:
                sentences = sum(r["sentences"] for r in called)
                kept = cell(sum(r["kept"] for r in called) / sentences if sentences else None)
                firsts = [r["first_token_s"] for r in called]
                times = f"{np.median(firsts):.1f} s | {np.median([r['total_s'] for r in rows]):.1f} s" \
                    if called else "- | -"
                rest = f"{kept} | {sum(r['fallback'] for r in rows)}/{len(rows)} | {times}"
            lines.append(f"| {name} | {who} | {len(rows)} | " + " | ".join(rates) + f" | {rest} |")
    return "\n".join(lines)


def _compare(cases, quotes, written, retriever) -> dict:
    from qa.written import check, prompt

    rows = []
    pool = []  # (numbered, first kept sentence) per written answer, for the planted sentences
    for record, gold, impossible in cases:
        started = time.perf_counter()
        q = newsqa.ask_record(quotes, record)
        q_time = time.perf_counter() - started
        history = []
        for earlier in record.get("history", []):
            history += [{"role": "user", "content": earlier},
                        {"role": "assistant", "content": quotes.ask(earlier, history=history).text}]
        started, first = time.perf_counter(), None
        events = []
        for event in written.stream(record["question"], history, **_filters(record)):
            if first is None and isinstance(event, Token):
                first = time.perf_counter() - started
            events.append(event)
        total = time.perf_counter() - started
        w = events[-1]
        assert isinstance(w, Answer)
        checked = [e for e in events if isinstance(e, Checked)]
        rows.append({"question": record["question"], "impossible": impossible, "gold": gold,
                     "quotes": _score(q, gold), "written": _score(w, gold), "quotes_s": q_time,
                     "first_token_s": first, "total_s": total, "called": first is not None,
                     "sentences": len(checked), "kept": sum(c.supported for c in checked),
                     "fallback": w.notice is not None, "notice": w.notice, "text": w.text,
                     "unsupported": [(u.text, u.reason) for u in w.unsupported]})
        if w.answerer == "written" and w.sentences:
            evidence = written.evidence(record["question"], ())
            numbered = prompt.select(evidence, written.judge.judge(evidence))
            sentence = w.sentences[0]
            by_number = {c.number: c for c in w.citations}
            cited = tuple(next(n for n, c in enumerate(numbered.sentences, 1)
                               if c.sentence.text == by_number[k].snippet) for k in sentence.citations
                          if any(c.sentence.text == by_number[k].snippet for c in numbered.sentences))
            if cited:
                pool.append((numbered, check.Written(sentence.text, cited)))
    planted = _plant(pool, retriever)
    return {"rows": rows, "planted": planted}


def _filters(record: dict) -> dict:
    filters = {k: v for k, v in (record.get("filters") or {}).items() if v is not None}
    if "include_undated" in filters:
        filters["undated"] = filters.pop("include_undated")
    return filters


def _score(answer, gold) -> dict:
    if isinstance(answer, Exception):
        return {"gold": False, "abstained": True}
    return {"gold": not answer.abstained and bool(gold) and contains(answer.text, gold), "abstained": answer.abstained}


def _plant(pool, retriever) -> dict:
    """Unsupported sentences made from kept ones: (a) a number changed, (b) citing another question's article."""
    from qa.written import check, prompt

    changed, swapped, kept_similarity, swapped_similarity = [], [], [], []
    for i, (numbered, sentence) in enumerate(pool):
        [v] = check.check([sentence], numbered, retriever.embed_texts)
        kept_similarity.append(v.similarity)
        number = re.search(r"\d[\d,.]*", sentence.text)
        if number:
            wrong = sentence.text[:number.start()] + str(int(re.sub(r"\D", "", number[0])[:6] or 0) * 3 + 7) + \
                sentence.text[number.end():]
            [v] = check.check([check.Written(wrong, sentence.cited)], numbered, retriever.embed_texts)
            changed.append(not v.supported)
        others = [c for j, (n, _) in enumerate(pool) if j != i for c in n.sentences
                  if c.sentence.article_id not in {x.sentence.article_id for x in numbered.sentences}]
        if others:
            foreign = others[(i * 7) % len(others)]
            mixed = prompt.Numbered((*numbered.sentences, foreign))
            [v] = check.check([check.Written(sentence.text, (len(mixed.sentences),))], mixed, retriever.embed_texts)
            swapped.append(not v.supported)
            swapped_similarity.append(v.similarity)
    calibration = [{"threshold": t, "kept": _rate([s >= t for s in kept_similarity]),
                    "caught": _rate([s < t for s in swapped_similarity])} for t in THRESHOLDS]
    return {"changed_number": _rate(changed), "changed_n": len(changed), "other_article": _rate(swapped),
            "other_n": len(swapped), "calibration": calibration,
            "kept_similarity_p5": float(np.percentile(kept_similarity, 5)) if kept_similarity else None}


def _rate(flags) -> float | None:
    return sum(map(bool, flags)) / len(flags) if flags else None


def render(results: dict) -> str:
    if "news" not in results and "squad" not in results:
        return ""
    cell = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731
    lines = ["| set | answerer | n | gold in answer | abstained | kept sentences | fell back | first token p50 | "
             "total p50 |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in ("news", "squad"):
        if name not in results:
            continue
        rows = [r for r in results[name]["rows"]]
        answerable = [r for r in rows if not r["impossible"]]
        called = [r for r in rows if r["called"]]
        for who in ("quotes", "written"):
            gold = _rate([r[who]["gold"] for r in answerable])
            abstained = _rate([r[who]["abstained"] for r in answerable])
            if who == "quotes":
                times = f"- | {np.median([r['quotes_s'] for r in rows]) * 1000:.0f} ms"
                kept = fell = "-"
            else:
                sentences = sum(r["sentences"] for r in called)
                kept = cell(sum(r["kept"] for r in called) / sentences if sentences else None)
                fell = f"{sum(r['fallback'] for r in called)}/{len(called)}"
                firsts = [r["first_token_s"] for r in called]
                totals = [r["total_s"] for r in called]
                times = (f"{np.median(firsts):.1f} s | {np.median(totals):.1f} s" if called else "- | -")
            lines.append(f"| {name} | {who} | {len(answerable)} | {cell(gold)} | {cell(abstained)} | {kept} | "
                         f"{fell} | {times} |")
    for name in ("news", "squad"):
        if name in results:
            p = results[name]["planted"]
            p5 = "-" if p["kept_similarity_p5"] is None else f"{p['kept_similarity_p5']:.3f}"
            lines.append(f"\n{name}: planted unsupported sentences caught: number changed {cell(p['changed_number'])} "
                         f"(n={p['changed_n']}), citing another article {cell(p['other_article'])} (n={p['other_n']}); "
                         f"5th percentile similarity of kept sentences {p5}")
            lines.append("  threshold: " + ", ".join(f"{c['threshold']:.2f} keeps {cell(c['kept'])} / catches "
                                                     f"{cell(c['caught'])}" for c in p["calibration"]))
    return "\n".join(lines)


def calibrate() -> dict:
    """Cosine of short answer sentences to the sentence that supports them and to another article's (see above)."""
    from qa import Assistant, Retriever, sync
    from qa.encoders import load_embedder
    from qa.environment import configure_offline

    configure_offline()
    embedder = load_embedder("all-MiniLM-L6-v2")
    pairs = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = newsqa.build_corpus(Path(tmp) / "news")
        sync(corpus, Path(tmp) / "index", embedder=embedder)
        retriever = Retriever(Path(tmp) / "index", embedder)
        assistant = Assistant(retriever)
        for record in newsqa.load("dev"):
            if record.get("expect_abstain") or record.get("history") or not record.get("expect_any"):
                continue
            answer = assistant.ask(record["question"])
            if answer.abstained or not answer.sentences:
                continue
            gold = next((g for g in record["expect_any"] if g.lower() in answer.sentences[0].text.lower()), None)
            if gold:
                statement = _QUESTION_WORD.sub("", record["question"].rstrip("?"))
                pairs.append((f"{statement[:1].upper()}{statement[1:]} {gold}.", answer.citations[0].snippet,
                              answer.citations[0].article_id))
        vectors = retriever.embed_texts([p[0] for p in pairs] + [p[1] for p in pairs])
        retriever.close()
    n = len(pairs)
    supported = [float(vectors[i] @ vectors[n + i]) for i in range(n)]
    other = []
    for i, (_, _, article) in enumerate(pairs):
        j = next((i + k) % n for k in range(1, n) if pairs[(i + k) % n][2] != article)
        other.append(float(vectors[i] @ vectors[n + j]))
    return {"n": n, "table": [{"threshold": t, "kept": _rate([s >= t for s in supported]),
                               "caught": _rate([s < t for s in other])} for t in THRESHOLDS]}


_QUESTION_WORD = re.compile(r"^(how many|how much|what|which|who|when|where|why|did|does|do|is|was|has|have)\b\s*",
                            re.IGNORECASE)


def main(argv: list[str] | None = None) -> int:
    from qa.written.local import MODELS

    parser = argparse.ArgumentParser(prog="python -m bench.llm", description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an OpenAI-compatible endpoint (default: start llama.cpp's server here)")
    parser.add_argument("--model", help="its model name (default: the first it lists)")
    parser.add_argument("--local-model", default="qwen2.5-0.5b", choices=sorted(MODELS),
                        help="the model the local server loads (qa/written/local.py)")
    parser.add_argument("--news", type=int, default=40, help="news dev questions (default: the first 40)")
    parser.add_argument("--squad", type=int, default=30, help="SQuAD sample questions (default: 30, seeded)")
    parser.add_argument("--realnews", type=int, default=0, metavar="N",
                        help="also N questions of each real-news set (bench.realnews; default: none)")
    parser.add_argument("--out", type=Path, default=RESULTS / "llm.json")
    parser.add_argument("--calibrate", action="store_true", help="only the calibration of SIMILAR_ABOVE (no model)")
    args = parser.parse_args(argv)
    if args.calibrate:
        result = calibrate()
        print(f"{result['n']} sentences: " + ", ".join(f"{c['threshold']:.2f} keeps {c['kept']:.1%} / rejects "
                                                       f"{c['caught']:.1%}" for c in result["table"]))
        return 0
    results = run_with_server(args.url, args.model, args.local_model, args.news, args.squad, args.realnews)
    print(render(results))
    if "realnews" in results:
        print(render_realnews(results["realnews"], results.get("model") or args.model or "written"))
    print(f"saved {save_json(results, args.out)}")
    return 0


def run_with_server(url: str | None, model: str | None, local_model: str, news: int, squad: int,
                    realnews: int = 0) -> dict:
    if url:
        return _run_all(url, model, news, squad, realnews)
    from qa.written.local import LocalServer

    with LocalServer(local_model) as server:
        results = _run_all(server.url, None, news, squad, realnews)
    results["model"] = local_model
    return results


def _run_all(url: str, model: str | None, news: int, squad: int, realnews: int) -> dict:
    results = run(url, model, news, squad) if news or squad else {"url": url}
    if realnews:
        results["realnews"] = run_realnews(url, model, realnews)
    return results


if __name__ == "__main__":
    sys.exit(main())
