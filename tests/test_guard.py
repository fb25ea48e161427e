"""The web app's limits per HTTP client (qa/guard.py), on the real running app: request sizes, failed logins."""

from __future__ import annotations

import os
import shutil
import time

import httpx
import pytest
from conftest import CORPUS
from gradio_client import Client
from test_web import free_port

from qa.config import Settings
from qa.guard import FREE_LOGIN_FAILURES, MAX_REQUEST_BYTES
from qa.web import create_app, launch


@pytest.fixture(scope="module")
def guarded(tmp_path_factory, embedder, seed_index):
    root = tmp_path_factory.mktemp("guard")
    shutil.copytree(CORPUS, root / "corpus")
    shutil.copytree(seed_index, root / "index")
    app = create_app(Settings(corpus=root / "corpus", index=root / "index"), embedder)
    url = launch(app, port=free_port(), prevent_thread_lock=True, quiet=True, auth=("alice", "s3cret"))
    yield url
    app.close()


def test_a_huge_request_is_refused_before_any_work_and_the_app_goes_on(guarded):
    question = "What ammunition was discussed? " * (20 * 2**20 // 31)  # 20 MB: 33 s of CPU, echoed back
    started = time.perf_counter()
    reply = httpx.post(guarded + "gradio_api/call/ask", json={"data": [question]}, timeout=60)
    assert reply.status_code == 413 and "request too large" in reply.json()["error"]
    assert time.perf_counter() - started < 10
    small = httpx.post(guarded + "gradio_api/call/ask", json={"data": ["x" * (MAX_REQUEST_BYTES // 2)]}, timeout=60)
    assert small.status_code != 413
    client = Client(guarded, auth=("alice", "s3cret"), verbose=False)
    assert "155" in client.predict("What ammunition was discussed?", api_name="/ask")["text"]


def test_repeated_failed_logins_are_slowed_down(guarded):
    codes = [httpx.post(guarded + "login", data={"username": "alice", "password": f"guess{i}"}, timeout=30).status_code
             for i in range(30)]
    assert codes[:FREE_LOGIN_FAILURES] == [400] * FREE_LOGIN_FAILURES  # 30 wrong passwords were all answered
    assert codes.count(429) >= 20
    # A failure that is answered (400) starts a fresh wait of >= 2 s (it is the 6th failure or later); on a busy
    # machine the 30 tries above can end just as a wait runs out, so the right password is tried right after one.
    while httpx.post(guarded + "login", data={"username": "alice", "password": "guess"}, timeout=30).status_code != 400:
        time.sleep(0.2)
    locked = httpx.post(guarded + "login", data={"username": "alice", "password": "s3cret"}, timeout=30)
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1  # even the right one waits
    time.sleep(int(locked.headers["retry-after"]) + 0.5)
    again = httpx.post(guarded + "login", data={"username": "alice", "password": "s3cret"}, timeout=30)
    assert again.status_code == 200


def test_a_forged_x_forwarded_for_is_no_new_client(embedder, seed_index):
    # 30 failed logins from 127.0.0.1, each naming another client in X-Forwarded-For: none was throttled.
    app = create_app(Settings(corpus=CORPUS, index=seed_index), embedder)
    url = launch(app, port=free_port(), prevent_thread_lock=True, quiet=True, auth=("alice", "s3cret"))
    try:
        codes = [httpx.post(url + "login", data={"username": "alice", "password": f"guess{i}"},
                            headers={"x-forwarded-for": f"203.0.113.{i}"}, timeout=30).status_code for i in range(30)]
    finally:
        app.close()
    assert codes[:FREE_LOGIN_FAILURES] == [400] * FREE_LOGIN_FAILURES and codes.count(429) >= 20, codes


def test_trusted_proxies_are_a_setting_of_the_web_entry_point(monkeypatch):
    from qa.environment import web_settings_from_env

    assert web_settings_from_env(os.environ).trusted_proxies == ""  # none by default: the socket's peer is the client
    monkeypatch.setenv("QA_TRUSTED_PROXIES", " 10.0.0.1, 192.168.0.0/16 ")
    assert web_settings_from_env(os.environ).trusted_proxies == "10.0.0.1,192.168.0.0/16"
