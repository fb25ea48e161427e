"""Answers on news: the news dev and check sets over the bundled articles and bench/newsqa/corpus.

    python -m bench.newsqa                      # both sets, per question kind
    python -m bench.newsqa --set dev --show     # print each miss
    python -m bench.newsqa --qa-path DIR        # the same questions against another checkout's qa/ (old beside new)

Each record (bench/data/newsqa_*.jsonl) is asked as a user would: its ``history`` questions first, each answer
kept as the assistant's turn, then the question with its ``filters``. Scores, per kind and overall:

- first: an ``expect_any`` string is in the answer's first sentence (answerable questions);
- cited: one is anywhere in the answer; abstained: the answer refused an answerable question;
- refused: a must-refuse question was refused; differ: every ``expect_all`` string is in the answer;
- no_match: a filter that keeps no article is reported as such;
- merged_ok: no sentence shown with several citations cites a snippet whose numbers, dates or names disagree
  with it (over every answer);
- retrieval: Hits@5 and MRR@10 of the question's article (questions asked alone, with their filters).

The dev set is for tuning; the check set is held out: report both, tune on neither the check set nor SQuAD.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.report import save_json

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
NEWS_CORPUS = ROOT / "bench" / "newsqa" / "corpus"
SETS = ("dev", "check")


def load(name: str) -> list[dict]:
    path = DATA / f"newsqa_{name}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def build_corpus(folder: Path) -> Path:
    """The bundled articles under ``corpus/`` and the news test articles beside them (ids as the sets name them)."""
    shutil.copytree(ROOT / "corpus", folder / "corpus")
    for path in NEWS_CORPUS.glob("*.md"):
        shutil.copy(path, folder / path.name)
    return folder


def _facts_module():
    """qa/facts.py of this checkout, loaded by path so that --qa-path can point the rest at older code."""
    spec = importlib.util.spec_from_file_location("_bench_facts", ROOT / "qa" / "facts.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def has_any(text: str, needles: list[str]) -> bool:
    return any(norm(n) in norm(text) for n in needles if n.strip())


def ask_record(assistant, record: dict):
    """The answer to ``record``'s question after its conversation, and the answers of the conversation."""
    history = []
    for q in record.get("history", []):
        answer = assistant.ask(q, history=history)
        history += [{"role": "user", "content": q}, {"role": "assistant", "content": answer.text}]
    filters = {k: v for k, v in (record.get("filters") or {}).items() if v is not None}
    if "include_undated" in filters:
        filters["undated"] = filters.pop("include_undated")
    try:
        return assistant.ask(record["question"], history=history, **filters)
    except TypeError:  # an older assistant without the undated filter
        filters.pop("undated", None)
        return assistant.ask(record["question"], history=history, **filters)
    except ValueError as exc:
        return exc


def merged_ok(answer, facts) -> bool:
    if isinstance(answer, Exception) or answer.abstained:
        return True
    by_number = {c.number: c for c in answer.citations}
    for sentence in answer.sentences:
        shown = facts.facts(sentence.text)
        for n in sentence.citations[1:]:
            if not shown.agrees(facts.facts(by_number[n].snippet)):
                return False
    return True


def evaluate(records: list[dict], assistant, retriever, facts, show: bool = False) -> dict:
    rows: dict[str, dict[str, list]] = {}
    ranks = []
    timings = []
    for record in records:
        started = time.perf_counter()
        answer = ask_record(assistant, record)
        timings.append(time.perf_counter() - started)
        kind = record["kind"]
        out = rows.setdefault(kind, {})
        failed = isinstance(answer, Exception)
        abstained = failed or answer.abstained
        text = "" if failed else answer.text
        first = "" if failed or not answer.sentences else answer.sentences[0].text
        ok = None
        if record.get("expect_no_match"):
            ok = abstained and not failed and getattr(answer, "reason", None) == "no_match" or (
                not failed and "no articles match" in text.lower())
            out.setdefault("no_match", []).append(ok)
        elif record.get("expect_abstain"):
            ok = abstained
            out.setdefault("refused", []).append(ok)
        else:
            ok = not abstained and has_any(first, record["expect_any"])
            out.setdefault("first", []).append(ok)
            out.setdefault("cited", []).append(not abstained and has_any(text, record["expect_any"]))
            out.setdefault("abstained", []).append(abstained)
            if record.get("expect_all"):
                out.setdefault("differ", []).append(all(norm(s) in norm(text) for s in record["expect_all"]))
        out.setdefault("merged_ok", []).append(merged_ok(answer, facts))
        if record.get("article") and not record.get("history") and not record.get("expect_abstain"):
            filters = {k: v for k, v in (record.get("filters") or {}).items() if k in ("source", "since", "until")}
            try:
                passages = retriever.search(record["question"], k=40, **filters)
            except ValueError:
                passages = []
            ranked = list(dict.fromkeys(p.article_id for p in passages))[:10]
            ranks.append(ranked.index(record["article"]) + 1 if record["article"] in ranked else None)
        if show and not ok:
            print(f"MISS [{kind}] {record['id']}: {' / '.join(record.get('history', []))} >> {record['question']}"
                  f"\n   expected {record.get('expect_any') or record.get('expect_all') or 'refusal'}"
                  f"\n   got: {text[:300] if not failed else answer}\n")
    total: dict[str, list] = {}
    for measures in rows.values():
        for name, flags in measures.items():
            total.setdefault(name, []).extend(flags)
    rate = lambda flags: sum(map(bool, flags)) / len(flags) if flags else None  # noqa: E731
    import numpy as np

    return {
        "kinds": {kind: {name: rate(flags) for name, flags in m.items()} | {"n": len(next(iter(m.values())))}
                  for kind, m in sorted(rows.items())},
        "overall": {name: rate(flags) for name, flags in total.items()} | {"n": len(records)},
        "retrieval": {"hits@5": rate([r is not None and r <= 5 for r in ranks]),
                      "mrr@10": sum(1 / r for r in ranks if r) / len(ranks) if ranks else None, "n": len(ranks)},
        "ask_ms_p50": float(np.percentile(np.array(timings) * 1000, 50)),
    }


def render(name: str, result: dict) -> str:
    measures = ("first", "cited", "abstained", "refused", "differ", "no_match", "merged_ok")
    cell = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731
    lines = [f"{name}: {result['overall']['n']} questions; retrieval Hits@5 {cell(result['retrieval']['hits@5'])}, "
             f"MRR@10 {result['retrieval']['mrr@10']:.3f} (n={result['retrieval']['n']}); "
             f"ask p50 {result['ask_ms_p50']:.0f} ms", "",
             "| kind | n | " + " | ".join(measures) + " |", "|---|---:|" + "---:|" * len(measures)]
    for kind, row in [*result["kinds"].items(), ("**all**", result["overall"])]:
        lines.append(f"| {kind} | {row['n']} | " + " | ".join(cell(row.get(m)) for m in measures) + " |")
    return "\n".join(lines)


def run(sets: tuple[str, ...] = SETS, show: bool = False) -> dict:
    """Index the news test corpus in a temporary folder and score ``sets`` with the ``qa`` package imported."""
    facts = _facts_module()
    from qa import Assistant, Retriever, sync
    from qa.encoders import load_embedder
    from qa.environment import configure_offline

    configure_offline()
    embedder = load_embedder("all-MiniLM-L6-v2")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = build_corpus(Path(tmp) / "corpus")
        sync(corpus, Path(tmp) / "index", embedder=embedder)
        retriever = Retriever(Path(tmp) / "index", embedder)
        results = {name: evaluate(load(name), Assistant(retriever), retriever, facts, show) for name in sets}
        retriever.close()
    return results


def render_all(results: dict) -> str:
    return "\n\n".join(render(name, result) for name, result in results.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.newsqa", description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=[*SETS, "both"], default="both")
    parser.add_argument("--qa-path", type=Path, help="a checkout whose qa/ package to evaluate instead of this one")
    parser.add_argument("--show", action="store_true", help="print every miss")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.qa_path:
        sys.path.insert(0, str(args.qa_path.resolve()))
    results = run(SETS if args.set == "both" else (args.set,), args.show)
    print(render_all(results))
    if args.out:
        save_json(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
