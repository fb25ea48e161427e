"""Answers and retrieval on real news: a weekly news quiz over the articles its search step found.

    P=../shared/eval/realnews/prepare.py; A="--past /tmp/realtimeqa/past --weeks 12"
    python $P $A --years 2024 --out /tmp/realnews/dev; python $P $A --years 2025 --out /tmp/realnews/check
    python $P --past /tmp/realtimeqa/past --years 2023 --weeks 16 --out /tmp/realnews/train   # a third set (below)
    python -m bench.realnews                    # dev and check, per question kind (indexes each set once, reused)
    python -m bench.realnews --set dev --show   # print each miss
    python -m bench.realnews --no-as-of         # ask as if on the day of the run (time words not anchored)
    python -m bench.realnews --where            # where the correct choice stands: first, ranked 2-5, not read, ...

The data (``../shared/eval/realnews/``; see its README) has no license: it stays outside the project, in
``--data`` (default ``/tmp/realnews``) with its indexes in ``--indexes`` (default ``/tmp/realnews-index``). Choose on
**dev** (2024), report **check** (2025) beside it; never tune on check. Scores are those of the independent check:
the correct choice (case and punctuation ignored) in the answer's first sentence, anywhere in the answer, in a cited
snippet; refused (every question is answerable from the archive); retrieval Hits@5 and MRR@10 (the correct choice
in the title or text of a passage, the top 10 passages of a hybrid search).
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

from bench.report import save_json

SETS = ("dev", "check")
#: Also prepared: 2023, a third read never chosen on (``--set train``) and more to fit on (``python -m bench.train
#: --realnews dev,train``; the committed ranker is fitted on dev only).
MORE_SETS = ("train",)
DATA = Path(os.environ.get("QA_REALNEWS", "/tmp/realnews"))
INDEXES = Path(os.environ.get("QA_REALNEWS_INDEX", "/tmp/realnews-index"))


def norm(text: str) -> str:
    """As the quiz's scorer: lower case, every run of non-word characters one space, padded."""
    return " " + re.sub(r"\W+", " ", text.lower()).strip() + " "


def holds(text: str, answer: str) -> bool:
    return norm(answer) in norm(text)


def load(name: str, data: Path = DATA) -> list[dict]:
    path = data / name / "questions.jsonl"
    if not path.exists():
        raise SystemExit(f"{path} is missing: prepare it with ../shared/eval/realnews/prepare.py (see its README)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def open_index(name: str, data: Path = DATA, indexes: Path = INDEXES, settings=None):
    """The set's index, built the first time (30-40 minutes here with torch, 10 with openvino) and brought in line
    with its corpus after. ``settings`` (qa.Settings) give its chunking and encoder (None: the index's own)."""
    from qa import Retriever, sync

    folder = indexes / name
    report = sync(data / name / "corpus", folder, settings=settings, progress=True)
    if report.added or report.updated or report.removed:
        print(f"realnews {name}: {report.summary()}", file=sys.stderr)
    return Retriever(folder, settings=settings)


def retrieval_rank(retriever, record: dict, as_of: bool = True) -> int | None:
    """The rank (1-10) of the first passage holding the correct choice in a hybrid search, else None."""
    from qa.when import period

    day = record["as_of"] if as_of else None
    prefer = period(record["question"], dt.date.fromisoformat(day)) if day else None
    try:
        passages = retriever.search(record["question"], k=10, until=day, prefer=prefer, as_of=day)
    except TypeError:  # a retriever without time words (an older checkout)
        passages = retriever.search(record["question"], k=10, until=day)
    for rank, p in enumerate(passages, 1):
        if holds(f"{p.title} {p.text}", record["answer"]):
            return rank
    return None


def rank_scores(ranks: list[int | None]) -> dict[str, float]:
    """MRR@10 and Hits@5 of the ranks (1-10, None: not in the top 10) of the correct choice."""
    return {"mrr@10": sum(1 / r for r in ranks if r) / len(ranks),
            "hits@5": sum(r is not None and r <= 5 for r in ranks) / len(ranks)}


def ask(assistant, record: dict, as_of: bool = True):
    if as_of:
        try:
            return assistant.ask(record["question"], as_of=record["as_of"])
        except TypeError:  # an assistant without as_of (an older checkout)
            return assistant.ask(record["question"], until=record["as_of"])
    return assistant.ask(record["question"])


def score(answer, gold: str) -> dict[str, bool]:
    """The independent check's marks of one answer: the correct choice in its first sentence, anywhere in it, in a
    cited snippet; and whether it was refused."""
    first = answer.sentences[0].text if answer.sentences and not answer.abstained else ""
    return {"first": holds(first, gold),
            "answer": not answer.abstained and holds(answer.text, gold),
            "cited": not answer.abstained and any(holds(c.snippet, gold) for c in answer.citations),
            "refused": answer.abstained}


def evaluate(records: list[dict], assistant, retriever, as_of: bool = True, show: bool = False) -> dict:
    from qa.asked import question_kind

    rows: dict[str, dict[str, list]] = {}
    ranks, timings = [], []
    for record in records:
        started = time.perf_counter()
        answer = ask(assistant, record, as_of)
        timings.append(time.perf_counter() - started)
        gold = record["answer"]
        out = rows.setdefault(question_kind(record["question"])[0].value, {})
        marks = score(answer, gold)
        for name, flag in marks.items():
            out.setdefault(name, []).append(flag)
        rank = retrieval_rank(retriever, record, as_of)
        ranks.append(rank)
        if show and not marks["first"]:
            print(f"MISS {record['id']} ({record['as_of']}, retrieval rank {rank}): {record['question']}\n"
                  f"   gold {gold!r}\n   got: {' '.join(answer.text.split())[:300]}\n")
    total: dict[str, list] = {}
    for measures in rows.values():
        for name, flags in measures.items():
            total.setdefault(name, []).extend(flags)

    def rate(flags: list) -> float:
        return sum(map(bool, flags)) / len(flags) if flags else float("nan")

    return {
        "kinds": {kind: {name: rate(f) for name, f in m.items()} | {"n": len(m["first"])}
                  for kind, m in sorted(rows.items())},
        "overall": {name: rate(f) for name, f in total.items()} | {"n": len(records)},
        "retrieval": {**rank_scores(ranks), "n": len(ranks)},
        "ask_ms_p50": float(np.percentile(np.array(timings) * 1000, 50)),
    }


def where(assistant, records: list[dict], as_of: bool = True) -> dict[str, int]:
    """Where each question's correct choice stands for the answerer: "first" (its best sentence holds it), "ranked 2"
    .. "ranked 5" and "ranked lower" (a sentence it was shown holds it), "refused" (the best sentence holds it, below
    the threshold), "not in the passages" (no passage read holds it: the search missed it, or the archive never
    reports it and the "holder" articles only contain the words by chance)."""
    from qa.when import as_of_day, period

    counts: dict[str, int] = {}
    for record in records:
        day = record["as_of"] if as_of else None
        when = period(record["question"], as_of_day(day)) if day else None
        evidence = assistant.evidence(record["question"], when=when, as_of=day)
        judgement = assistant.judge.judge(evidence)
        gold = record["answer"]
        order = np.argsort(-judgement.scores) if len(judgement.scores) else []
        ranks = [n for n, i in enumerate(order) if holds(judgement.candidates[i].sentence.text, gold)]
        if not ranks:
            held = any(holds(f"{p.title} {p.text}", gold) for p in evidence.passages)
            place = "in a passage, not a candidate" if held else "not in the passages"
        elif ranks[0] == 0:
            place = "first" if judgement.answerable else "refused"
        else:
            place = f"ranked {ranks[0] + 1}" if ranks[0] < 5 else "ranked lower"
        counts[place] = counts.get(place, 0) + 1
    return dict(sorted(counts.items()))


def sweep(retriever, records: list[dict], periods=(0.0, 0.03, 0.06, 0.1), recencies=(0.0, 0.03, 0.06),
          half_lives=(14.0, 60.0)) -> list[dict]:
    """Retrieval MRR@10 and Hits@5 for each time setting of the retriever (the bonus for the question's days, and
    for recent articles with its half-life), best first: what PERIOD_BONUS and RECENCY_BONUS are chosen by."""
    rows = []
    for period_bonus, recency, half_life in itertools.product(periods, recencies, half_lives):
        if not recency and half_life != half_lives[0]:
            continue
        retriever.period_bonus, retriever.recency_bonus, retriever.recency_half_life = period_bonus, recency, half_life
        ranks = [retrieval_rank(retriever, r) for r in records]
        rows.append({"period_bonus": period_bonus, "recency_bonus": recency, "half_life": half_life,
                     **rank_scores(ranks)})
    return sorted(rows, key=lambda r: -r["mrr@10"])


MEASURES = ("first", "answer", "cited", "refused")


def render(name: str, result: dict) -> str:
    def cell(v: float) -> str:
        return f"{v:.1%}"

    r = result["retrieval"]
    lines = [f"realnews {name}: {result['overall']['n']} questions; retrieval Hits@5 {cell(r['hits@5'])}, "
             f"MRR@10 {r['mrr@10']:.3f}; ask p50 {result['ask_ms_p50']:.0f} ms", "",
             "| kind | n | " + " | ".join(MEASURES) + " |", "|---|---:|" + "---:|" * len(MEASURES)]
    for kind, row in [*result["kinds"].items(), ("**all**", result["overall"])]:
        lines.append(f"| {kind} | {row['n']} | " + " | ".join(cell(row[m]) for m in MEASURES) + " |")
    return "\n".join(lines)


def run(sets: tuple[str, ...] = SETS, as_of: bool = True, show: bool = False, data: Path = DATA,
        indexes: Path = INDEXES, k: int | None = None, period_bonus: float | None = None,
        recency: tuple[float, float] | None = None) -> dict:
    from qa import Assistant
    from qa.environment import configure_offline, settings_from_env

    configure_offline()
    # QA_ENCODER, QA_CHUNK_TOKENS, QA_OVERLAP: the indexes are built, and the questions embedded, with these
    settings = settings_from_env(os.environ)
    results = {}
    for name in sets:
        retriever = open_index(name, data, indexes, settings)
        if period_bonus is not None:
            retriever.period_bonus = period_bonus
        if recency is not None:
            retriever.recency_bonus, retriever.recency_half_life = recency
        assistant = Assistant(retriever, k=k) if k else Assistant(retriever)
        results[name] = evaluate(load(name, data), assistant, retriever, as_of, show)
        retriever.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.realnews", description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=[*SETS, *MORE_SETS, "both"], default="both")
    parser.add_argument("--data", type=Path, default=DATA, help="where prepare.py wrote dev/ and check/")
    parser.add_argument("--indexes", type=Path, default=INDEXES, help="where their indexes are kept")
    parser.add_argument("--no-as-of", action="store_true", help="ask without the quiz's date")
    parser.add_argument("--qa-path", type=Path, help="a checkout whose qa/ package to evaluate instead of this one")
    parser.add_argument("--show", action="store_true", help="print every miss")
    parser.add_argument("-k", type=int, help="passages the assistant reads (default: the assistant's)")
    parser.add_argument("--period-bonus", type=float, help="the retriever's bonus for the question's days")
    parser.add_argument("--sweep", action="store_true", help="only retrieval, over a grid of the time settings")
    parser.add_argument("--where", action="store_true", help="only where the correct choice stands for the answerer")
    parser.add_argument("--recency", type=float, nargs=2, metavar=("BONUS", "HALF_LIFE"),
                        help="the retriever's bonus for recent articles, and its half-life in days")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.qa_path:
        sys.path.insert(0, str(args.qa_path.resolve()))
    sets = SETS if args.set == "both" else (args.set,)
    if args.sweep or args.where:
        from qa import Assistant
        from qa.environment import configure_offline, settings_from_env

        configure_offline()
        settings = settings_from_env(os.environ)  # as run(): the chunking and encoder the indexes were built with
        for name in sets:
            retriever = open_index(name, args.data, args.indexes, settings)
            records = load(name, args.data)
            if args.sweep:
                for row in sweep(retriever, records):
                    print(name, " ".join(f"{k} {v:.3f}" for k, v in row.items()))
            else:
                found = where(Assistant(retriever), records, not args.no_as_of)
                print(name, "; ".join(f"{place} {n}" for place, n in found.items()))
            retriever.close()
        return 0
    results = run(sets, not args.no_as_of, args.show, args.data, args.indexes, args.k, args.period_bonus,
                  args.recency)
    print("\n\n".join(render(name, result) for name, result in results.items()))
    if args.out:
        save_json(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
