"""The chat as an API: the /ask endpoint called with gradio_client, as the README shows."""

from __future__ import annotations

import socket

import pytest
from conftest import CORPUS

from qa.config import Settings
from qa.web import create_app, launch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def client(embedder, seed_index):
    """A client of the app over the bundled corpus (its index is already in line: the API only reads)."""
    from gradio_client import Client

    app = create_app(Settings(corpus=CORPUS, index=seed_index), embedder)
    url = launch(app, port=free_port(), prevent_thread_lock=True, quiet=True)
    yield Client(url, verbose=False)
    app.close()


def test_ask_returns_the_answer_and_its_citations(client):
    result = client.predict("What ammunition was discussed?", api_name="/ask")
    assert not result["abstained"] and "[1]" in result["text"]
    numbers = [c["number"] for c in result["citations"]]
    assert numbers == list(range(1, len(numbers) + 1))
    assert any("155" in c["snippet"] for c in result["citations"])
    for c in result["citations"]:
        assert c["title"] and c["article_id"].endswith(".md") and c["end"] > c["start"]
        assert f"[{c['number']}]" in result["text"]


def test_ask_follows_up_on_the_history_and_filters(client):
    first = client.predict("What ammunition was discussed?", api_name="/ask")
    history = [{"role": "user", "content": "What ammunition was discussed?"},
               {"role": "assistant", "content": first["text"]}]
    follow = client.predict("How many of the 105mm shells does Seoul have?", history, api_name="/ask")
    assert "3.4 million" in follow["text"]
    dated = client.predict("What ammunition was discussed?", None, None, "2024-11-27", "2024-11-27", False,
                           api_name="/ask")
    assert dated["citations"] and {c["date"] for c in dated["citations"]} == {"2024-11-27"}
    with_undated = client.predict("What ammunition was discussed?", None, None, "2024-11-27", api_name="/ask")
    assert {c["date"] for c in with_undated["citations"]} == {"2024-11-27", None}  # undated kept by default
    none = client.predict("What ammunition was discussed?", None, None, "2030-01-01", None, False, api_name="/ask")
    assert none["abstained"] and not none["citations"] and none["reason"] == "no_match"
    assert none["text"].startswith("No articles match these filters: from 2030-01-01, undated articles left out")


def test_ask_explains_a_bad_date(client):
    with pytest.raises(Exception, match="YYYY-MM-DD"):
        client.predict("What ammunition was discussed?", None, None, "last week", api_name="/ask")


def test_login_is_required_when_auth_is_set(embedder, seed_index):
    from gradio_client import Client

    app = create_app(Settings(corpus=CORPUS, index=seed_index), embedder)
    url = launch(app, port=free_port(), auth=("alice", "s3cret"), prevent_thread_lock=True, quiet=True)
    try:
        with pytest.raises(ValueError, match="credentials were not provided"):
            Client(url, verbose=False)
        with pytest.raises(ValueError, match="Could not login"):
            Client(url, auth=("alice", "wrong"), verbose=False)
        result = Client(url, auth=("alice", "s3cret"), verbose=False).predict("Who met in Seoul?", api_name="/ask")
        assert result["citations"]
    finally:
        app.close()


def test_search_returns_passages_with_filters(client):
    passages = client.predict("What ammunition was discussed?", 3, api_name="/search")
    assert 1 <= len(passages) <= 3 and passages[0]["score"] >= passages[-1]["score"]
    assert any("155" in p["text"] for p in passages) and all(p["article_id"].endswith(".md") for p in passages)
    dated = client.predict("What ammunition was discussed?", 5, None, "2024-11-27", "2024-11-27", False,
                           api_name="/search")
    assert dated and {p["date"] for p in dated} == {"2024-11-27"}


def test_articles_lists_the_archive(client):
    page = client.predict(api_name="/articles")
    assert page["total"] == 2 and page["offset"] == 0
    assert [r["date"] for r in page["rows"]] == ["2024-11-27", None]  # newest first, undated last
    assert all(r["file"] == r["id"] and r["chunks"] > 0 for r in page["rows"])
    found = client.predict("yoon", "title", False, 0, 10, api_name="/articles")
    assert found["total"] == 1 and found["rows"][0]["title"] == "Yoon and Umerov Meet in Seoul"


def test_bad_values_get_a_clear_error_and_no_traceback_in_the_log(client, capfd):
    capfd.readouterr()
    for call in (lambda: client.predict("What ammunition was discussed?", 5, None, "2024-13-45", api_name="/search"),
                 lambda: client.predict("Who met?", None, None, None, "last week", api_name="/ask")):
        with pytest.raises(Exception, match="is not a date; use YYYY-MM-DD"):
            call()
    with pytest.raises(Exception, match="cannot sort by 'size'"):
        client.predict("", "size", api_name="/articles")
    assert "Traceback" not in capfd.readouterr().err
