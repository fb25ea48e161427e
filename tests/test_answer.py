"""The assistant over the bundled corpus: the seed questions, citations, abstention and follow-ups."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import EVAL

from qa import Assistant, Retriever

SEED_QUESTIONS = [json.loads(line) for line in (EVAL / "seed_questions.jsonl").read_text().splitlines() if line]

#: A behaviour of the hand-set rules that the learned answer ranker (issue 26) does not reproduce: a strict expected
#: failure, listed in BENCHMARKS.md ("Real news"); a change that brings it back fails here until the mark goes.
LEARNED = pytest.mark.xfail(strict=True, reason="the learned answer ranker does not reproduce this hand-set behaviour")


@pytest.fixture(scope="module")
def assistant(seed_index, embedder):
    return Assistant(Retriever(seed_index, embedder))


@pytest.fixture(scope="module")
def article_texts(seed_index):
    from qa.store.database import connect

    con = connect(seed_index, readonly=True)
    return dict(con.execute("SELECT id, text FROM articles").fetchall())


@pytest.mark.parametrize("case", SEED_QUESTIONS, ids=[c["question"] for c in SEED_QUESTIONS])
def test_seed_question(assistant, article_texts, case):
    answer = assistant.ask(case["question"])
    if case.get("expect_abstain"):
        assert answer.abstained, answer.text
        assert not answer.citations
        return
    assert not answer.abstained
    assert any(s in answer.text for s in case["expect_any"]), answer.text
    assert any(s in c.snippet for c in answer.citations for s in case["expect_any"])
    for c in answer.citations:
        assert article_texts[c.article_id][c.start:c.end] == c.snippet
    if case.get("expect_all_articles"):
        assert {c.article_id for c in answer.citations} == set(article_texts)


def test_every_answer_sentence_is_a_cited_sentence(assistant, article_texts):
    answer = assistant.ask("What ammunition was discussed?")
    numbers = [n for s in answer.sentences for n in s.citations]
    assert sorted(set(numbers)) == [c.number for c in answer.citations]  # numbered in order of first use
    by_number = {c.number: c for c in answer.citations}
    for sentence in answer.sentences:
        assert " ".join(by_number[sentence.citations[0]].snippet.split()) == " ".join(sentence.text.split())
        assert f"[{sentence.citations[0]}]" in answer.text


def test_follow_up_uses_the_conversation(assistant):
    first = assistant.ask("What ammunition was discussed?")
    history = [{"role": "user", "content": "What ammunition was discussed?"},
               {"role": "assistant", "content": first.text}]
    answer = assistant.ask("How many of the 105mm shells does Seoul have?", history=history)
    assert "3.4 million" in answer.text
    follow = assistant.ask("and who proposed it?", history=history)
    assert not follow.abstained
    assert any("xpert" in c.snippet for c in follow.citations), follow.text


def test_empty_question_gets_a_message(assistant):
    answer = assistant.ask("   ")
    assert answer.abstained and "question" in answer.text.lower()


def test_every_sentence_has_a_vector_close_to_its_own_embedding(seed_index, embedder):
    """Sentence vectors are pooled from the chunk pass; they must still mean what the sentence says."""
    import numpy as np

    from qa.store.database import connect

    con = connect(seed_index, readonly=True)
    rows = con.execute("SELECT substr(a.text, s.start + 1, s.\"end\" - s.start), s.vector FROM sentences s "
                       "JOIN articles a ON a.id = s.article_id").fetchall()
    assert len(rows) > 20 and all(blob is not None for _, blob in rows)
    pooled = np.stack([np.frombuffer(blob, dtype=np.float16).astype(np.float32) for _, blob in rows])
    own = embedder.encode([text for text, _ in rows])
    agreement = (pooled * own).sum(axis=1)
    assert np.allclose(np.linalg.norm(pooled, axis=1), 1, atol=1e-2)
    # A one-word "sentence" such as "Background." means little on its own; the rest must agree.
    assert np.median(agreement) > 0.8 and np.mean(agreement > 0.5) > 0.9, agreement


def test_a_question_or_two_get_the_vectors_the_model_gives(embedder):
    """Embedder.encode calls the model's modules directly for a few texts; the vectors must be encode()'s."""
    import numpy as np

    texts = ["What ammunition was discussed?", "Who proposed it, and when did the talks in Seoul begin?", "Why?"]
    for few in (texts[:1], texts[:2], texts):
        expected = embedder.model.encode(few, normalize_embeddings=True, convert_to_numpy=True)
        assert np.allclose(embedder.encode(few), expected, atol=1e-5)


def test_how_many_troops_is_answered_with_the_count_alone(assistant):
    # A further sentence must add a value the question asks for: "82% oppose sending weapons" is no count of soldiers
    # (it was the second sentence of this answer until a share stopped counting as a "how many" value).
    answer = assistant.ask("How many North Korean soldiers are in Russia?")
    assert "10,000 troops" in answer.sentences[0].text, answer.text
    assert "82%" not in answer.text, answer.text


@LEARNED
def test_other_word_forms_rank_sentences_but_do_not_make_a_question_answerable(assistant):
    # "supply" covers "supplier" for ranking; counted in the confidence too, it answered this out-of-corpus question
    # from "Pyongyang has also emerged as a key supplier of artillery shells ..." (bench.calibrate's gap went < 0).
    answer = assistant.ask("Who has an emergency supply of O?")
    assert answer.abstained and not answer.citations, answer.text


def test_evidence_takes_the_day_asked(assistant):
    """``Assistant.evidence`` reads ``as_of`` as ``ask`` does: no article dated after it, and the evidence keeps the
    day (the features count ages from it)."""
    question = "How many North Korean soldiers are in Russia?"
    everything = assistant.evidence(question)
    dated = sorted(p.date[:10] for p in everything.passages if p.date)
    assert dated, "the seed articles are dated"
    day = dated[len(dated) // 2]
    early = assistant.evidence(question, as_of=day)
    assert early.as_of == day and everything.as_of is None
    assert all(p.date is None or p.date[:10] <= day for p in early.passages)


def test_names_are_fitted_to_the_asked_for_thing_by_the_models_word_vectors(seed_index, embedder):
    """The automaker among the names of a recall report is the likest to "automaker"; no pass through the model."""
    from qa.answering.candidates import Candidate, name_fits
    from qa.store import Passage, Sentence

    texts = ["Ford recalled the vehicles, NHTSA said in Michigan.", "Jim Farley declined to comment.",
             "Cuba's grid failed, AP reported, and Miguel Diaz-Canel spoke in Havana."]
    candidates = [Candidate(Sentence("a", i, 0, len(t), t, np.zeros(384, np.float32)),
                            Passage(1.0, "T", None, None, None, "a", i, 0, len(t), t)) for i, t in enumerate(texts)]
    retriever = Retriever(seed_index, embedder)
    fits = name_fits(retriever, "automaker", candidates)
    assert max(fits, key=fits.get) == "ford" and set(fits) >= {"nhtsa", "michigan", "jim farley", "cuba", "havana"}
    country = name_fits(retriever, "country", candidates)
    assert country["cuba"] > max(country["ap"], country["miguel diaz-canel"], country["jim farley"])
