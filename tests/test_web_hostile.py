"""Hostile uploads through the running app (issue 12): the app keeps answering, and restarts cleanly after.

Uses test_web's browser fixtures on an app of its own (its own corpus and index copies).
"""

from __future__ import annotations

import pytest
from gradio_client import Client
from test_hostile import alias_bomb
from test_web import ask, browser, free_port, last_answer, page, served, upload  # noqa: F401 - fixtures

from qa.web import create_app, launch


@pytest.mark.browser
def test_hostile_uploads_leave_the_app_answering_and_restartable(page, tmp_path, served, embedder):  # noqa: F811
    url, settings = served
    report = upload(page, tmp_path, "bomb.md", alias_bomb(7))  # 370 bytes once killed the app for good
    assert "Not added" in report and "YAML alias" in report
    assert not (settings.corpus / "bomb.md").exists()

    report = upload(page, tmp_path, "surrogates.json",
                    '{"title": "\\ud800 Quarry", "text": "The Ostrava quarry \\udc00 reopened for climbers."}')
    assert "Added 1 article" in report  # repaired, not a traceback that blocks every later upload

    many = "\n".join('{"title": "no text", "n": %d}' % i for i in range(300_000))  # noqa: UP031
    report = upload(page, tmp_path, "all-bad.jsonl", many)
    shown = len(page.locator("#qa-upload-result").inner_html())  # the page itself is about 200 KB
    assert "Not added" in report and shown < 20_000, shown
    assert not (settings.corpus / "all-bad.jsonl").exists()  # not kept, so not re-read by every later sync

    report = upload(page, tmp_path, "README.md", "Harbour notes\nThe Velmora pier was painted blue.\n")
    assert "Not added" in report and "never indexed as an article" in report  # it was "Added 1 article", never indexed
    assert not (settings.corpus / "README.md").exists()

    report = upload(page, tmp_path, "after.md", "Harbour news\nThe Velmora ferry now runs at dawn.\n")
    assert "Added 1 article" in report
    ask(page, "When does the Velmora ferry run?", turn=1)
    assert "dawn" in last_answer(page)

    # A lone surrogate in the question once ended the chat's stream with no message (TextEncodeInput...).
    page.evaluate("""() => { const box = document.querySelector('#qa-question textarea');
        box.value = 'When does the \\ud800 Velmora ferry run?';
        box.dispatchEvent(new Event('input')); box.focus(); }""")
    page.keyboard.press("Enter")
    page.wait_for_function("""() => document.querySelectorAll('#qa-chat [data-testid="bot"]').length === 2
        && !document.querySelector('.generating, .pending') && document.querySelector('#qa-send').offsetParent""",
                           timeout=30_000)
    assert "dawn" in last_answer(page)

    # A restart over the same corpus (which still holds everything that was kept) starts and answers.
    app = create_app(settings, embedder)
    try:
        again = launch(app, port=free_port(), prevent_thread_lock=True, quiet=True)
        answer = Client(again, verbose=False).predict("Which quarry reopened for climbers?", api_name="/ask")
        assert "Ostrava" in answer["text"] and answer["citations"]
    finally:
        app.close()
