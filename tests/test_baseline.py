"""The regression gate: no change to retrieval or answers moves an answer unless the baseline in the same commit
says so (bench/baseline.py; ``make baseline`` rewrites tests/baseline.jsonl)."""

from __future__ import annotations

import pytest

from bench.baseline import BASELINE, changes, line, load
from qa.answer import Answer, AnswerSentence


def quoted(sentence: str) -> Answer:
    return Answer("Who met?", f"{sentence} [1]", [AnswerSentence(sentence, (1,))])


def test_a_moved_answer_is_listed_with_what_it_was_and_is():
    before = [line("newsqa-dev", "Who met?", quoted("Yoon met Umerov."))]
    after = [line("newsqa-dev", "Who met?", quoted("Umerov met Yoon."))]
    assert changes(before, before) == []
    (moved,) = changes(before, after)
    assert "Who met?" in moved and "'Yoon met Umerov.'" in moved and "'Umerov met Yoon.'" in moved
    refused = [line("newsqa-dev", "Who met?", Answer("Who met?", "The articles ...", abstained=True))]
    assert "now: refused" in changes(before, refused)[0]
    assert changes(before, []) == ["question gone [newsqa-dev] Who met?"]


def test_the_shared_sets_text_stays_outside_the_project():
    row = line("squad", "Who met?", quoted("Yoon met Umerov."))
    assert "Who met" not in str(row) and "Yoon" not in str(row) and row["question"].startswith("sha256:")
    moved = changes([row], [line("squad", "Who met?", quoted("Umerov met Yoon."))])
    assert len(moved) == 1 and "[squad] sha256:" in moved[0]


@pytest.mark.skipif(not (BASELINE.parent.parent.parent / "shared" / "eval").is_dir(), reason="needs ../shared/eval")
def test_no_answer_moves_unless_the_baseline_in_the_same_commit_says_so(embedder, seed_index, news_index):
    from bench.baseline import answers

    moved = changes(load(), list(answers(embedder, seed_index=seed_index, news_index=news_index)))
    assert not moved, (f"{len(moved)} answers moved:\n" + "\n".join(moved[:30]) + "\nIf that is intended, run "
                       "`make baseline` and commit tests/baseline.jsonl with the change (BENCHMARKS.md says why).")
