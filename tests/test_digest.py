"""qa.digest: questions about a period answered with the articles of the window, by story, newest first."""

from __future__ import annotations

import pytest

from qa.digest import MAX_STORIES, Digest, asks_for_digest, digest
from qa.retriever import Retriever


@pytest.mark.parametrize("question", ["What happened in early December 2024?", "Summarize the news",
                                      "Summarise the news this week", "What were the main stories last month?",
                                      "what's in the news?", "Give me a recap of the news this week",
                                      "Catch me up on the news"])
def test_period_questions_ask_for_a_digest(question):
    assert asks_for_digest(question)


@pytest.mark.parametrize("question", ["What ammunition was discussed?", "Who met in Seoul on November 27?",
                                      "How many troops has North Korea sent to Russia?"])
def test_fact_questions_do_not(question):
    assert not asks_for_digest(question)


@pytest.fixture(scope="module")
def retriever(seed_index, embedder):
    found = Retriever(seed_index, embedder)
    yield found
    found.close()


def test_a_digest_of_a_window_cites_each_story_lead(retriever):
    result = digest(retriever, "What happened in late November 2024?", as_of="2024-12-31")
    assert isinstance(result, Digest) and (result.window.since, result.window.until) == ("2024-11-21", "2024-11-30")
    assert result.total >= 1 and 1 <= len(result.stories) <= MAX_STORIES
    lead = result.stories[0].articles[0]
    article = retriever.article(lead.article_id)
    assert article.text[lead.start:lead.end] == lead.sentence and lead.date.startswith("2024-11-27")
    answer = result.answer()
    assert not answer.abstained and answer.sentences[0].citations[0] == 1
    assert answer.citations[0].snippet == lead.sentence and "Digest of 2024-11-21 to 2024-11-30" in answer.caveat
    assert "[1]" in answer.text and lead.sentence in answer.text
    dates = [s.date for s in result.stories]
    assert dates == sorted(dates, reverse=True)  # newest first


def test_an_empty_window_says_so_and_no_time_words_take_the_archive_last_days(retriever):
    empty = digest(retriever, "What happened in early March 2023?", as_of="2024-12-31").answer()
    assert empty.abstained and "No articles in the archive are dated 2023-03-01 to 2023-03-10" in empty.text
    recent = digest(retriever, "Summarize the news")
    assert recent.window.until == "2024-11-27" and recent.stories  # the archive's newest dated article


@pytest.mark.parametrize("question", ["What happened in Seoul?", "What happened to the shells?",
                                      "Summarize the article about ammunition", "What is new in the ammunition talks?"])
def test_a_topic_left_after_the_time_words_is_a_fact_question(question):
    assert not asks_for_digest(question)


def test_without_time_words_the_filters_dates_and_source_make_the_window(retriever):
    result = digest(retriever, "Summarize the news", since="2024-11-01", until="2024-11-30")
    assert (result.window.since, result.window.until) == ("2024-11-01", "2024-11-30") and result.total == 1
    assert digest(retriever, "Summarize the news", source="Nowhere Wire").answer().abstained
    timed = digest(retriever, "What happened in early March 2023?", as_of="2024-12-31", since="2024-11-01")
    assert timed.window.since == "2023-03-01"  # the question's own time words come first


def test_the_api_answers_a_period_question_with_a_digest(seed_index, embedder, tmp_path):
    import shutil

    from conftest import CORPUS

    from qa.config import Settings
    from qa.web import api
    from qa.web.startup import start

    shutil.copytree(CORPUS, tmp_path / "corpus")
    shutil.copytree(seed_index, tmp_path / "index")
    state = start(Settings(corpus=tmp_path / "corpus", index=tmp_path / "index"), embedder)
    try:
        answer = api.ask(state, "What happened in late November 2024?")
        assert answer["answerer"] == "digest" and answer["citations"] and not answer["abstained"]
        assert "Digest of 2024-11-21 to 2024-11-30" in answer["text"]
    finally:
        state.retriever.close()
