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
