"""The chat as an API: the /ask endpoint called with gradio_client, as the README shows."""

from __future__ import annotations

import json
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


def test_ask_reads_the_questions_time_words_unless_told_not_to(client):
    question = "What ammunition was discussed in November 2024?"
    dated = client.predict(question, api_name="/ask")  # time_words left out (as older clients do): read
    assert dated["period"] == "2024-11-01 to 2024-11-30, from the question ('in November 2024')"
    plain = client.predict(question, time_words=False, api_name="/ask")
    assert plain["period"] is None and plain["citations"] and not plain["abstained"]
    event, data = call(client, "/ask", body("/ask", json.dumps(question)))  # a raw call of six values, as before
    assert event == "complete" and json.loads(data)[0]["period"] == dated["period"]


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


def call(client, api: str, body: str) -> tuple[str, str]:
    """One raw API call (JSON as a client may write it: Infinity, NaN, "\\ud800"): the stream's last event and data."""
    import httpx

    url = client.src.rstrip("/") + "/gradio_api/call" + api
    started = httpx.post(url, content=body.encode(), headers={"content-type": "application/json"}, timeout=60)
    assert started.status_code == 200, started.text
    stream = httpx.get(f"{url}/{started.json()['event_id']}", timeout=120).text
    events = [line.split(":", 1)[1].strip() for line in stream.splitlines() if line.startswith("event:")]
    data = [line.split(":", 1)[1].strip() for line in stream.splitlines() if line.startswith("data:")]
    return events[-1], data[-1]


#: Each API's parameters as a client that leaves them out sends them (raw JSON).
DEFAULTS = {"/ask": ['"Who met?"', "null", "null", "null", "null", "true"],
            "/search": ['"ammunition"', "5", "null", "null", "null", "true", '"hybrid"'],
            "/articles": ['""', '"date"', "true", "0", "50"]}


def body(api: str, *values: str) -> str:
    return '{"data": [' + ", ".join([*values, *DEFAULTS[api][len(values):]]) + "]}"


# Each value once gave a traceback in the log and a raw message ('int' object is not iterable, TextEncodeInput...).
HOSTILE_CALLS = [
    ("/ask", ['"Who met?"', "5"], "history 5 is not a list of messages"),
    ("/ask", ['"Who met?"', "[1, 2]"], "history item 1 (1) is not a message"),
    ("/ask", ["5"], "question is 5, not text; give a string"),
    ("/ask", ["null"], "question is missing; give a string"),
    ("/ask", ['"Who met?"', "null", "7"], "source is 7, not text"),
    ("/search", ['"ammunition"', "null"], None),  # k left out: 5
    ("/search", ['"ammunition"', "[1]"], "k [1] is not a whole number; give one from 1 to 50"),
    ("/search", ['"ammunition"', "Infinity"], "k inf is not a whole number"),
    ("/search", ['"ammunition"', "NaN"], "k nan is not a whole number"),
    ("/search", ['"ammunition"', "1e300"], "k 1e+300 is out of range; give a whole number from 1 to 50"),
    ("/search", ['"ammunition"', "500"], "k 500 is out of range; give a whole number from 1 to 50"),
    ("/search", ["null"], "query is missing; give a string"),
    ("/search", ["5"], "query is 5, not text"),
    ("/search", ['"ammunition"', "5", "null", "null", "null", "true", '["x"]'], "mode ['x'] is not one of hybrid"),
    ("/articles", ["5"], "query is 5, not text"),
    ("/articles", ['["x"]'], "query is ['x'], not text"),
    ("/articles", ['""', '"date"', "true", str(10**30)], "offset 1000000000000000000000000000000 is out of range"),
    ("/articles", ['""', '"date"', "true", "0", '"many"'], "limit 'many' is not a whole number"),
    ("/articles", ['""', '["date"]'], "cannot sort by ['date']"),
]


@pytest.mark.parametrize(("api", "values", "message"), HOSTILE_CALLS)
def test_a_value_of_the_wrong_type_is_named_with_the_fix_never_a_traceback(client, capfd, api, values, message):
    capfd.readouterr()
    event, data = call(client, api, body(api, *values))
    if message is None:
        assert event == "complete" and len(json.loads(data)[0]) == 5
    else:
        assert event == "error" and message in data, data
    assert "Traceback" not in capfd.readouterr().err


def test_a_lone_surrogate_in_a_question_is_repaired_not_a_crash(client, capfd, embedder, seed_index):
    capfd.readouterr()
    event, data = call(client, "/ask", body("/ask", '"What ammunition \\ud800 was discussed?"'))
    assert event == "complete", data
    assert "155" in json.loads(data)[0]["text"]
    event, data = call(client, "/search", body("/search", '"ammunition \\ud800"', "2"))
    assert event == "complete" and len(json.loads(data)[0]) == 2
    history = '[{"role": "user", "content": "\\udc80 ammunition?"}, {"role": "assistant", "content": "\\ud800"}]'
    assert call(client, "/ask", body("/ask", '"Who proposed it?"', history))[0] == "complete"
    assert "Traceback" not in capfd.readouterr().err

    from qa.assistant import Assistant
    from qa.retriever import Retriever

    retriever = Retriever(seed_index, embedder)
    answer = Assistant(retriever).ask("What ammunition \ud800 was discussed?", [("\ud800?", "\udc80")])
    retriever.close()
    assert "\ufffd" in answer.question and answer.citations


def test_an_upload_without_a_file_name_is_refused_with_the_reason(client, capfd):
    import httpx

    capfd.readouterr()
    reply = httpx.post(client.src.rstrip("/") + "/gradio_api/upload", files={"files": ("", b"Title\n\nText.\n")},
                       timeout=60)
    assert reply.status_code == 400 and "non-empty file name" in reply.json()["error"]
    assert "Traceback" not in capfd.readouterr().err


def test_the_sessions_kept_in_memory_are_bounded(embedder, seed_index, monkeypatch):
    # Each API call is a new session; Gradio kept 10,000 of them (about 140 KB each): +1.4 GB under many visitors.
    import httpx

    import qa.web.app

    monkeypatch.setattr(qa.web.app, "SESSIONS_KEPT", 20, raising=False)
    app = create_app(Settings(corpus=CORPUS, index=seed_index), embedder)
    url = launch(app, port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        for _ in range(40):
            event = httpx.post(url + "gradio_api/call/articles", json={"data": ["", "date", True, 0, 5]}, timeout=60)
            assert "complete" in httpx.get(f"{url}gradio_api/call/articles/{event.json()['event_id']}", timeout=60).text
        assert len(app.state_holder.session_data) <= 20
    finally:
        app.close()
