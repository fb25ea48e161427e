"""Set the answerer's abstention rule on ../shared/eval: `python -m bench.calibrate`.

The answerer abstains when ``best sentence score + passage_weight * best passage similarity`` is below
``abstain_below``. For each candidate ``passage_weight`` this script finds the gap between

- the lowest confidence of an answerable seed question (over the seed articles), and
- the highest confidence of a question the index cannot answer: the seed ``expect_abstain`` questions and all
  SQuAD questions asked of the seed articles (out-of-corpus),

and puts the threshold in the middle of it. It prefers the weight that answers every answerable seed question,
abstains on every out-of-corpus one, abstains on the fewest answerable SQuAD questions (over the SQuAD
paragraphs), and then the widest gap. The result is printed; the defaults in qa/answer.py come from it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from bench.data import EVAL_DIR, RESULTS, SEED_CORPUS, seed_questions, squad_set
from bench.eval import build_index, cache_dir

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)


def features(assistant, question: str) -> tuple[float, float]:
    """(best sentence score, best passage similarity) for a question, as the answerer computes them; a question
    the answerer refuses whatever the threshold (no sentence of the asked-for kind, a name the evidence lacks)
    gets -inf."""
    judgement = assistant.judge.judge(assistant.evidence(" ".join(question.split())))
    if judgement.gated:
        return float("-inf"), judgement.passage_score
    return judgement.sentence_score, judgement.passage_score


def calibrate(eval_dir: Path = EVAL_DIR) -> dict:
    from qa import Assistant, Retriever, Settings, sync
    from qa.embedding import load_embedder

    settings = Settings()
    embedder = load_embedder(settings.model)
    data = squad_set(eval_dir)
    squad_index = build_index(cache_dir(data, settings), data.passages, settings, embedder)["path"]
    with tempfile.TemporaryDirectory() as tmp:
        sync(SEED_CORPUS, Path(tmp) / "seed", embedder=embedder)
        seed = Assistant(Retriever(Path(tmp) / "seed", embedder))
        squad = Assistant(Retriever(squad_index, embedder))
        seeds = seed_questions(eval_dir)
        groups = {
            "seed answerable": [features(seed, q.question) for q in seeds if not q.expect_abstain],
            "seed expect_abstain": [features(seed, q.question) for q in seeds if q.expect_abstain],
            "out-of-corpus (SQuAD on seed)": [features(seed, q.question) for q in data.questions],
            "SQuAD answerable": [features(squad, q.question) for q in data.answerable],
            "SQuAD unanswerable": [features(squad, q.question) for q in data.unanswerable],
        }
    rows = []
    for weight in WEIGHTS:
        conf = {name: [s + weight * p for s, p in pairs] for name, pairs in groups.items()}
        low = min(conf["seed answerable"])
        high = max(conf["seed expect_abstain"] + conf["out-of-corpus (SQuAD on seed)"])
        threshold = round((low + high) / 2, 2)
        rates = {name: sum(c < threshold for c in values) / len(values) for name, values in conf.items()}
        rows.append({"passage_weight": weight, "abstain_below": threshold, "gap": low - high, "abstention": rates})
    best = min(rows, key=lambda r: (r["abstention"]["seed answerable"] > 0,
                                    r["abstention"]["out-of-corpus (SQuAD on seed)"] < 1,
                                    r["abstention"]["seed expect_abstain"] < 1,
                                    r["abstention"]["SQuAD answerable"], -r["gap"]))
    return {"rows": rows, "chosen": best}


def render(result: dict) -> str:
    names = list(result["rows"][0]["abstention"])
    lines = ["passage_weight  abstain_below     gap  " + "  ".join(f"{n[:22]:>22}" for n in names)]
    for r in result["rows"]:
        mark = "  <- chosen" if r is result["chosen"] else ""
        lines.append(f"{r['passage_weight']:>14}  {r['abstain_below']:>13}  {r['gap']:>6.3f}  "
                     + "  ".join(f"{r['abstention'][n]:>22.1%}" for n in names) + mark)
    lines.append("(cells: share of questions abstained on)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.calibrate", description=__doc__.splitlines()[0])
    parser.add_argument("--eval-dir", type=Path, default=EVAL_DIR)
    args = parser.parse_args(argv)
    result = calibrate(args.eval_dir)
    print(render(result))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "calibration.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
