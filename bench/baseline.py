"""The regression gate: today's answer to every question of the committed sets, kept in tests/baseline.jsonl.

    python -m bench.baseline            # compare today's answers with the committed baseline; list what changed
    python -m bench.baseline --write    # make today's answers the baseline (commit it with the change that moved them)

The sets are those in the repository or beside it: newsqa dev and check (bench/data, over the bundled articles and
bench/newsqa/corpus), the SQuAD sample and the seed questions (../shared/eval). Each line holds a question (for the
shared sets, whose text stays outside the project, its digest), whether it was refused, and a digest of the answer's
text with, for our own sets, its first sentence's first words, so that a change to
retrieval or answers that moves any answer fails ``tests/test_baseline.py`` until the baseline in the same commit
says so: no change moves answers silently.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench import newsqa
from bench.data import EVAL_DIR, SEED_CORPUS, seed_questions, squad_set, write_squad_corpus

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "tests" / "baseline.jsonl"


#: Sets whose text stays in ../shared/eval (its README: "do not copy them into the project"): their questions are
#: kept as digests and their answers' words not at all.
SHARED_SETS = ("seed", "squad")


def line(set_name: str, question: str, answer) -> dict:
    """What the baseline keeps of one answer: no more than it takes to see that it moved, and where."""
    shared = set_name in SHARED_SETS
    key = "sha256:" + hashlib.sha256(question.encode()).hexdigest()[:16] if shared else question
    if isinstance(answer, Exception):
        return {"set": set_name, "question": key, "error": type(answer).__name__}
    row = {"set": set_name, "question": key, "refused": bool(answer.abstained),
           "digest": hashlib.sha256(answer.text.encode()).hexdigest()[:12]}
    if not shared:
        first = answer.sentences[0].text if answer.sentences else answer.text
        row["first"] = " ".join(first.split()[:12])
    return row


def answers(embedder=None, eval_dir: Path = EVAL_DIR, seed_index: Path | None = None,
            news_index: Path | None = None) -> Iterator[dict]:
    """Today's answers to every question of the committed sets, in a fixed order. ``seed_index`` and
    ``news_index``: existing indexes (default settings) of the seed corpus and of newsqa's archive
    (:func:`bench.newsqa.build_corpus`) to use instead of building them."""
    from qa import Assistant, Retriever, sync
    from qa.encoders import load_embedder
    from qa.environment import configure_offline

    configure_offline()
    embedder = embedder or load_embedder("all-MiniLM-L6-v2", encoder="torch")  # the suite's: see tests/conftest.py
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if news_index is None:
            news_index = root / "news-index"
            sync(newsqa.build_corpus(root / "news"), news_index, embedder=embedder)
        news = Assistant(Retriever(news_index, embedder))
        for name in newsqa.SETS:
            for record in newsqa.load(name):
                yield line(f"newsqa-{name}", record["question"], newsqa.ask_record(news, record))
        news.retriever.close()

        if seed_index is None:
            shutil.copytree(SEED_CORPUS, root / "seed")
            seed_index = root / "seed-index"
            sync(root / "seed", seed_index, embedder=embedder)
        seed = Assistant(Retriever(seed_index, embedder))
        for q in seed_questions(eval_dir):
            yield line("seed", q.question, seed.ask(q.question))
        seed.retriever.close()

        data = squad_set(eval_dir)
        write_squad_corpus(root / "squad", data.passages)
        sync(root / "squad", root / "squad-index", embedder=embedder)
        squad = Assistant(Retriever(root / "squad-index", embedder))
        for q in data.questions:
            yield line("squad", q.question, squad.ask(q.question))
        squad.retriever.close()


def load(path: Path = BASELINE) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def changes(old: list[dict], new: list[dict]) -> list[str]:
    """One line per question whose answer moved (or that came or went), in words."""
    key = lambda r: (r["set"], r["question"])  # noqa: E731
    before = {key(r): r for r in old}
    after = {key(r): r for r in new}
    out = []
    for k, r in after.items():
        was = before.get(k)
        if was is None:
            out.append(f"new question [{k[0]}] {k[1]}")
        elif was != r:
            shown = lambda x: "refused" if x.get("refused") else repr(  # noqa: E731
                x.get("first", x.get("error", f"answer {x['digest']}")))
            out.append(f"[{k[0]}] {k[1]}\n    was: {shown(was)}\n    now: {shown(r)}")
    out += [f"question gone [{k[0]}] {k[1]}" for k in before if k not in after]
    return out


def write(rows: list[dict], path: Path = BASELINE) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="make today's answers the committed baseline")
    args = parser.parse_args(argv)
    rows = list(answers())
    moved = changes(load(), rows)
    if args.write:
        write(rows)
        print(f"{len(moved)} answers moved; wrote {BASELINE.relative_to(ROOT)} ({len(rows)} questions)")
        return 0
    print("\n".join(moved) or "no answer moved")
    print(f"{len(moved)} of {len(rows)} answers moved")
    return 1 if moved else 0


if __name__ == "__main__":
    sys.exit(main())
