"""Fit the answer ranker (qa/answering/ranker.json) on labelled questions: ``make train``.

    python -m bench.train                 # fit on the dev sets, write qa/answering/ranker.json, print the table
    python -m bench.train --dry-run       # fit and report, write nothing

Each dev question is searched as the assistant searches it (hybrid, its passages, its ``as_of``), every eligible
candidate sentence is described by :data:`qa.answering.features.FEATURES` and labelled by whether it holds a gold answer
(case and punctuation ignored). A logistic regression over the standardised features gives P(holds the answer).
The refusal threshold is the highest probability at which at most ``--refuse`` of the answerable dev questions
are refused; the table says what it then refuses of the questions that must be refused.

Training data, dev only (check sets are never read here):
- real-news dev (2024; ``../shared/eval/realnews/``, prepared in ``QA_REALNEWS``: see bench/realnews.py), and with
  ``--realnews dev,train`` its train set (2023) too;
- the SQuAD sample (answerable and unanswerable) over its 411 paragraphs;
- the newsqa dev set over the bundled articles and bench/newsqa/corpus (questions without a conversation);
- out of corpus: the SQuAD questions asked of the seed articles (must be refused).
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import newsqa, realnews
from bench.data import EVAL_DIR, SEED_CORPUS, squad_set

ROOT = Path(__file__).resolve().parent.parent
REFUSE = 0.02  # share of answerable dev questions the threshold may refuse
#: The real-news sets that can be fitted on (bench/realnews.py prepares them; ``--realnews``), by the name the tables
#: give them: dev (2024, the committed ranker's) and train (2023: BENCHMARKS.md, "A third real-news set").
#: Check (2025) is never read here.
REALNEWS_SETS = {"dev": "realnews", "train": "realnews-2023"}


@dataclass(frozen=True)
class Question:
    set: str
    text: str
    golds: tuple[str, ...]  # empty: must be refused
    as_of: str | None = None


@dataclass(frozen=True)
class Sample:
    """One question's candidates: their features and labels."""

    question: Question
    table: np.ndarray
    labels: np.ndarray

    @property
    def answerable(self) -> bool:
        return bool(self.question.golds)


def conversation_samples(assistant, records: list[dict]) -> list[Sample]:
    """Questions asked after a conversation: each reading of the question (with and without the conversation) is a
    sample of its own, labelled by the gold answer; the conversation's answers are today's ranker's."""
    from qa.answering import features
    from qa.answering.candidates import gather
    from qa.answering.composer import stage
    from qa.conversation import normalize_history, readings
    from qa.filters import Filters

    out = []
    for r in records:
        history: list[dict] = []
        for q in r["history"]:
            answer = assistant.ask(q, history=history)
            history += [{"role": "user", "content": q}, {"role": "assistant", "content": answer.text}]
        turns = normalize_history(history)
        text = " ".join(r["question"].split())
        filters = Filters.parse(**{k: v for k, v in (r.get("filters") or {}).items() if k in ("source", "since",
                                                                                                 "until")})
        golds = () if r.get("expect_abstain") else tuple(r["expect_any"])
        for reading in readings(text, turns):
            scene = stage(gather(assistant.retriever, text, reading, turns, filters, assistant.k))
            if scene.candidates:
                labels = np.array([any(realnews.holds(t, g) for g in golds) for t in scene.texts])
                out.append(Sample(Question("newsqa-conversation", text, golds), features.table(scene), labels))
    return out


def samples(retriever, questions: list[Question]) -> list[Sample]:
    """Each question's candidates as the assistant sees them (the question read alone)."""
    from qa.answering import features
    from qa.answering.candidates import gather
    from qa.answering.composer import stage
    from qa.assistant import PASSAGES
    from qa.conversation import Reading
    from qa.when import as_of_day, period

    out = []
    for q in questions:
        text = " ".join(q.text.split())
        when = period(text, as_of_day(q.as_of)) if q.as_of else None
        filters = _until(q.as_of)
        scene = stage(gather(retriever, text, Reading(text, text, False), (), filters, PASSAGES, period=when,
                                as_of=q.as_of))
        if not scene.candidates:
            out.append(Sample(q, np.zeros((0, len(features.FEATURES))), np.zeros(0, bool)))
            continue
        labels = np.array([any(realnews.holds(t, g) for g in q.golds) for t in scene.texts])
        out.append(Sample(q, features.table(scene), labels))
    return out


def _until(as_of: str | None):
    from qa.filters import Filters

    return Filters(until=as_of) if as_of else Filters()


def collect(log=print, realnews_sets: tuple[str, ...] = ("dev",)) -> list[Sample]:
    """Every dev question's samples. QA_CHUNK_TOKENS / QA_OVERLAP (as for bench.realnews, whose kept index must have
    that chunking: QA_REALNEWS_INDEX) chunk the sets indexed here."""
    import os

    from qa import Retriever, sync
    from qa.encoders import load_embedder
    from qa.environment import configure_offline, settings_from_env

    configure_offline()
    settings = settings_from_env(os.environ)
    # torch fp32, as the suite's regression gate: the same features, so the same ranker.json, on every CPU (the
    # default openvino computes in bfloat16 where the CPU can). The real-news index is read with its own encoder.
    embedder = load_embedder("all-MiniLM-L6-v2", encoder="torch")
    out: list[Sample] = []
    for name in realnews_sets:
        retriever = realnews.open_index(name, settings=settings)
        news = [Question(REALNEWS_SETS[name], r["question"], (r["answer"],), r["as_of"]) for r in realnews.load(name)]
        out += samples(retriever, news)
        retriever.close()
        log(f"realnews {name}: {len(news)} questions")

    data = squad_set(EVAL_DIR)
    with tempfile.TemporaryDirectory() as tmp:
        from bench.data import write_squad_corpus

        write_squad_corpus(Path(tmp) / "squad", data.passages)
        sync(Path(tmp) / "squad", Path(tmp) / "squad-index", embedder=embedder, settings=settings)
        retriever = Retriever(Path(tmp) / "squad-index", embedder)
        squad = [Question("squad", q.question, () if q.is_impossible else q.answers) for q in data.questions]
        out += samples(retriever, squad)
        retriever.close()
        log(f"squad: {len(squad)} questions")

        sync(SEED_CORPUS, Path(tmp) / "seed-index", embedder=embedder, settings=settings)
        retriever = Retriever(Path(tmp) / "seed-index", embedder)
        out += samples(retriever, [Question("out-of-corpus", q.question, ()) for q in data.questions])
        retriever.close()

        corpus = newsqa.build_corpus(Path(tmp) / "news")
        sync(corpus, Path(tmp) / "news-index", embedder=embedder, settings=settings)
        retriever = Retriever(Path(tmp) / "news-index", embedder)
        records = [r for r in newsqa.load("dev") if not r.get("history") and not r.get("filters")
                   and not r.get("expect_no_match")]
        asked = [Question("newsqa", r["question"], () if r.get("expect_abstain") else tuple(r["expect_any"]))
                 for r in records]
        out += samples(retriever, asked)
        conversations = [r for r in newsqa.load("dev") if r.get("history") and not r.get("expect_no_match")]
        from qa import Assistant
        from qa.answering.composer import ExtractiveAnswerer
        # The conversations' earlier turns are answered by a ranker fitted on the questions read alone, not by the
        # committed file: answered by the committed ranker, each `make train` fitted on the last one's answers and
        # gave another file (coefficients up to 0.02 apart). This way the file depends on the data only, and a
        # refit works when the features have changed.
        first = ExtractiveAnswerer(ranker=ranker_of(out))
        out += conversation_samples(Assistant(retriever, answerer=first), conversations)
        retriever.close()
        log(f"newsqa dev: {len(asked)} questions and {len(conversations)} conversations")
    return out


def fit(train: list[Sample], c: float = 1.0):
    """A logistic regression over the standardised features of every candidate of ``train``."""
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([s.table for s in train if len(s.labels)])
    y = np.concatenate([s.labels for s in train if len(s.labels)])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=c, max_iter=2000).fit((x - mean) / scale, y)
    return mean, scale, model.coef_[0], float(model.intercept_[0])


def ranker_of(samples_: list[Sample], c: float = 1.0, refuse: float = REFUSE, about: str = ""):
    """The ranker fitted on ``samples_``, with its refusal threshold."""
    from qa.answering.features import NAMES
    from qa.answering.model import Ranker

    mean, scale, coef, intercept = fit(samples_, c)
    ranker = Ranker(NAMES, mean, scale, coef, intercept, 0.0)
    return Ranker(NAMES, mean, scale, coef, intercept, threshold(samples_, ranker, refuse), about)


def best_probability(sample: Sample, ranker) -> tuple[float, bool]:
    """The question's best candidate's probability, and whether that candidate holds the answer."""
    if not len(sample.labels):
        return 0.0, False
    p = ranker.probabilities(sample.table)
    best = int(np.argmax(p))
    return float(p[best]), bool(sample.labels[best])


def threshold(train: list[Sample], ranker, refuse: float = REFUSE) -> float:
    """The highest threshold that refuses at most ``refuse`` of the answerable questions."""
    best = sorted(best_probability(s, ranker)[0] for s in train if s.answerable)
    return float(best[int(np.floor(refuse * len(best)))]) if best else 0.5


def report(samples_: list[Sample], ranker) -> list[str]:
    lines = ["| set | n | first (answerable) | refused: answerable | refused: must refuse |",
             "|---|---:|---:|---:|---:|"]
    for name in dict.fromkeys(s.question.set for s in samples_):
        group = [s for s in samples_ if s.question.set == name]
        scored = [(best_probability(s, ranker), s.answerable) for s in group]
        answerable = [(p, ok) for (p, ok), a in scored if a]
        refuse = [p for (p, _), a in scored if not a]
        first = sum(ok and p >= ranker.threshold for p, ok in answerable) / len(answerable) if answerable else None
        refused = sum(p < ranker.threshold for p, _ in answerable) / len(answerable) if answerable else None
        must = sum(p < ranker.threshold for p in refuse) / len(refuse) if refuse else None
        cell = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731
        lines.append(f"| {name} | {len(group)} | {cell(first)} | {cell(refused)} | {cell(must)} |")
    return lines


def learning_curve(samples_: list[Sample], folds: int = 5, fractions=(0.1, 0.25, 0.5, 1.0)) -> list[str]:
    """Cross-validated first-sentence accuracy on answerable real-news dev questions (held-out folds) against the
    share of the other folds trained on."""
    from qa.answering.model import Ranker

    rng = np.random.default_rng(0)
    order = rng.permutation(len(samples_))
    fold_of = np.empty(len(samples_), int)
    fold_of[order] = np.arange(len(samples_)) % folds
    sets = [*REALNEWS_SETS.values(), "squad"]
    lines = ["| trained on | " + " | ".join(f"{name} first (held-out folds)" for name in sets) + " |",
             "|---:|" + "---:|" * len(sets)]
    for fraction in fractions:
        hits: dict[str, list[bool]] = {name: [] for name in sets}
        for f in range(folds):
            train = [s for i, s in enumerate(samples_) if fold_of[i] != f]
            train = [train[i] for i in sorted(rng.permutation(len(train))[:max(1, int(fraction * len(train)))])]
            mean, scale, coef, intercept = fit(train)
            ranker = Ranker(tuple(), mean, scale, coef, intercept, 0.0)
            for i, s in enumerate(samples_):
                if fold_of[i] == f and s.answerable and s.question.set in hits:
                    hits[s.question.set].append(best_probability(s, ranker)[1])
        cells = [f"{np.mean(h):.1%}" if h else "-" for h in hits.values()]
        lines.append(f"| {fraction:.0%} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.train", description=__doc__.splitlines()[0])
    parser.add_argument("--refuse", type=float, default=REFUSE, help="share of answerable dev questions refused")
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--dry-run", action="store_true", help="report, but leave qa/answering/ranker.json as it is")
    parser.add_argument("--no-curve", action="store_true", help="skip the learning curve")
    parser.add_argument("--realnews", default="dev", help="the real-news sets fitted on, comma-separated: dev, "
                        "train (2023); '' for none (quick trials only)")
    parser.add_argument("--cache", type=Path, help="keep the dev questions' features here and reuse them")
    args = parser.parse_args(argv)
    from qa.answering.features import NAMES
    from qa.answering.model import MODEL_FILE

    if args.cache and args.cache.exists():
        data = pickle.loads(args.cache.read_bytes())
    else:
        data = collect(lambda m: print(m, file=sys.stderr), tuple(x for x in args.realnews.split(",") if x))
        if args.cache:
            args.cache.write_bytes(pickle.dumps(data))
    counts = {name: sum(s.question.set == name for s in data) for name in dict.fromkeys(s.question.set for s in data)}
    about = (f"logistic regression (C={args.c}) on {sum(len(s.labels) for s in data)} candidates of "
             f"{len(data)} dev questions ({', '.join(f'{k} {v}' for k, v in counts.items())}); threshold: "
             f"{args.refuse:.0%} of answerable dev questions refused")
    ranker = ranker_of(data, args.c, args.refuse, about)
    print(f"threshold {ranker.threshold:.3f}\n")
    print("\n".join(report(data, ranker)))
    print("\n| feature | coefficient (standardised) |\n|---|---:|")
    for name, w in sorted(zip(NAMES, ranker.coef, strict=True), key=lambda t: -abs(t[1])):
        print(f"| {name} | {w:+.3f} |")
    if not args.no_curve:
        print()
        print("\n".join(learning_curve(data)))
    if not args.dry_run:
        MODEL_FILE.write_text(json.dumps(ranker.to_dict(), indent=1) + "\n", encoding="utf-8")
        print(f"\nwrote {MODEL_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
