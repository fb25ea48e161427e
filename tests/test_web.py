"""The web chat: rendering and upload rules directly, then the real page in headless Chromium.

The browser tests start one app on a free port over a temporary copy of the corpus and a temporary index,
and drive it like a user: ask, read the cited sources, follow a marker, upload articles. In CI (CI=true)
a missing browser fails these tests; elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import pytest
from conftest import CORPUS, ROOT

from qa.answer import Answer, AnswerSentence, Citation
from qa.config import Settings
from qa.retriever import Passage
from qa.web import (
    MAX_UPLOAD_BYTES,
    answer_markdown,
    create_app,
    escape_markdown,
    launch,
    main,
    parse_args,
    safe_name,
    safe_url,
    save_upload,
    sources_group,
    sources_html,
)
from qa.web.archive import take_back
from qa.web.render import chat_turns

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-gpu"]
ARTIFACTS = ROOT / "artifacts"
XSS = '<script>window.__xss=1</script> <img src=x onerror="window.__xss=1;alert(1)">'


# --- Rendering and uploads, without a browser -------------------------------------------------------------

def _citation(number: int = 1, **fields) -> Citation:
    values = dict(article_id="a.md", title="Title", date="2024-11-27", source="Wire", url="https://example.org/a",
                  start=0, end=10, snippet="A sentence.", before="Before.", after="After.")
    values.update(fields)
    return Citation(number, **values)


def test_markdown_escaping_keeps_text_literal():
    text = "1. *bold* [link](http://x) <b>tag</b> & `code` $x$ # not a heading"
    escaped = escape_markdown(text)
    assert "<" not in escaped and "&lt;b&gt;" in escaped and "&amp;" in escaped
    for mark in ("\\*bold\\*", "\\[link\\]", "\\`code\\`", "\\$x\\$", "1\\."):
        assert mark in escaped


def test_answer_markers_link_to_their_cards():
    answer = Answer("Q?", "One. [1][2] Two. [2]", [AnswerSentence("One.", (1, 2)), AnswerSentence("Two.", (2,))],
                    [_citation(1), _citation(2, title='Say "hi"')])
    full = answer_markdown(answer, turn=3)
    assert '[\\[1\\]](#qa-src-3-1 "Title")' in full and '(#qa-src-3-2 "Say \\"hi\\"")' in full
    assert "Two" not in answer_markdown(answer, turn=3, sentences=1)  # streaming shows a prefix


def test_the_chat_hands_the_answerer_its_messages_as_plain_text():
    # A follow-up recognises the sentences an earlier answer quoted by their text; the page's escapes hid them.
    sentence = "It will save about $310 million a year [sic], *now* <b>&"
    answer = Answer("Q?", "", [AnswerSentence(sentence, (1,)), AnswerSentence("2. Second_one | x", (1, 2))],
                    [_citation(1), _citation(2, title='Say "hi" [x] $y')],
                    caveat="Reports differ: 4,300 [1]; 4,500 [2].")
    messages = [{"role": "user", "content": escape_markdown("How much $ *will* it save?")},
                {"role": "assistant", "content": answer_markdown(answer, turn=2)}]
    user, bot = chat_turns(messages)
    assert user.content == "How much $ *will* it save?"
    assert bot.content == f"Reports differ: 4,300 [1]; 4,500 [2]. {sentence} [1] 2. Second_one | x [1][2]"


def test_cards_escape_everything_and_link_only_http():
    bad = _citation(1, title="<b>T</b>", snippet=XSS, before="<i>", url="javascript:alert(1)", source="<s>")
    html = sources_group(Answer("<q>", "x [1]", [AnswerSentence("x", (1,))], [bad]), turn=1)
    assert "<script" not in html and "<img" not in html and "<b>T" not in html and "<i>" not in html
    assert "&lt;script&gt;" in html and "javascript:" not in html and 'id="qa-src-1-1"' in html
    assert "<mark>" in html and "&lt;q&gt;" in html
    assert safe_url("https://example.org/x") == "https://example.org/x"
    assert safe_url("javascript:alert(1)") is None and safe_url("data:text/html,x") is None


def test_abstained_answer_shows_related_passages_as_related():
    passage = Passage(0.1, "Nearby <story>", None, None, None, "b.md", 1, 0, 20, "Some related text.")
    answer = Answer("Q?", "The articles in the archive do not answer this question.", abstained=True,
                    related=[passage])
    group = sources_group(answer, turn=1)
    assert "Related" in group and "not an answer" in answer_markdown(answer, 1)
    assert "Nearby &lt;story&gt;" in group and "qa-num" not in group  # no numbered citation cards
    assert "appear here" in sources_html([])


@pytest.mark.parametrize("name, expected", [
    ("../../etc/evil.md", "evil.md"),
    ("..\\..\\win.TXT", "win.txt"),
    ("my story (final).md", "my-story-final.md"),
    (".hidden.md", "hidden.md"),
    ("ünïcode naïve.html", "n-code-na-ve.html"),
    ("<script>.md", "script.md"),
    ("noext", "noext"),
])
def test_safe_name(name, expected):
    assert safe_name(name) == expected


def test_save_upload_replaces_only_when_asked_and_stays_in_the_corpus(tmp_path):
    corpus = tmp_path / "corpus"
    outside = tmp_path / "evil.md"
    first = tmp_path / "up" / "story.md"
    first.parent.mkdir()
    first.write_text("# Story\n\nFirst text of the story.")
    saved = save_upload(first, corpus, original="../evil.md")
    assert saved.name == "evil.md" and (corpus / "evil.md").read_text() == first.read_text()
    assert not outside.exists()
    assert save_upload(first, corpus, "evil.md").existing  # same bytes: not saved twice
    second = tmp_path / "up" / "other.md"
    second.write_text("# Other\n\nA different text.")
    conflict = save_upload(second, corpus, "evil.md")
    assert conflict.conflict and conflict.name == "evil.md" and (corpus / "evil.md").read_text() == first.read_text()
    replaced = save_upload(second, corpus, "evil.md", replace=True)
    assert not replaced.conflict and (corpus / "evil.md").read_text() == second.read_text()
    assert replaced.backup.read_text() == first.read_text()  # until the new version is indexed
    take_back(replaced, corpus)  # nothing of it indexed: the old file comes back
    assert (corpus / "evil.md").read_text() == first.read_text()
    assert sorted(p.name for p in corpus.iterdir()) == ["evil.md"]  # never a -2 copy, no temporary file left


def test_save_upload_rejects_bad_files_before_saving(tmp_path):
    corpus = tmp_path / "corpus"
    exe = tmp_path / "tool.exe"
    exe.write_bytes(b"MZ")
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * (MAX_UPLOAD_BYTES + 1))
    empty = tmp_path / "empty.md"
    empty.write_text("   \n")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    reasons = {p.name: save_upload(p, corpus).reason for p in (exe, big, empty, broken)}
    assert "unsupported file type '.exe'" in reasons["tool.exe"]
    assert "upload limit" in reasons["big.txt"]
    assert "no text" in reasons["empty.md"]
    assert "invalid JSON" in reasons["broken.json"]
    assert not corpus.exists() or not any(corpus.iterdir())


def test_progress_words_read_the_sync_bars():
    from tqdm import tqdm

    from qa.web.jobs import progress_words

    assert progress_words("Reading 3 files") == "Reading 3 files"  # no bar yet
    with tqdm(total=899, desc="embedding", unit="chunk", disable=False, file=open(os.devnull, "w")) as bar:
        bar.update(128)
        words = progress_words("Reading 3 files")
    assert words.startswith("Embedding 899 passages (about ") and " left): 128 done" in words
    assert progress_words("Reading 3 files") == "Reading 3 files"  # the bar is closed


def test_saved_chats_are_data_bounded_and_exported_with_citations():
    from qa.web import chats

    answer = Answer("What ammunition?", "155 mm shells. [1]", [AnswerSentence("155 mm shells.", (1,))],
                    [_citation(1, title="Shells <b>", snippet="155 mm shells.", before="x" * 500)])
    store = chats.add_answer(chats.EMPTY_STORE, chats.compact(answer))
    assert store["current"] and chats.choices(store) == [("What ammunition?", store["current"])]
    (saved,) = chats.answers(store)
    assert saved.citations[0].snippet == "155 mm shells." and len(saved.citations[0].before) == 120
    messages, groups, turns = chats.view([saved])
    assert "&lt;b&gt;" in groups[0] and turns[1] == {"role": "assistant", "content": "155 mm shells. [1]"}
    markdown = chats.export_markdown("Shells", [saved])
    assert "## What ammunition?" in markdown and "[1] **Shells <b>** (2024-11-27, Wire) <https://example.org/a>" \
        in markdown and "“155 mm shells.”" in markdown
    damaged = {"chats": [{"id": "x", "answers": [{"question": 1}, "junk"]}, "junk"], "current": "x"}
    assert chats.answers(chats.clean(damaged)) == [] and chats.clean("junk") == chats.EMPTY_STORE
    big = chats.EMPTY_STORE
    for _ in range(200):  # bounded: the store travels with every question (qa.guard refuses bodies over 256 KB)
        big = chats.add_answer(chats.new_chat(big), answer)
    assert len(json.dumps(big)) <= chats.MAX_STORE_CHARS and chats.current(big) is not None


def test_cli_help_and_bad_options(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for word in ("--host", "--port", "--corpus", "--index", "--auth", "QA_HOST", "QA_PORT", "QA_AUTH"):
        assert word in out
    for bad, message in ((["--port", "http"], "not a number"), (["--port", "70000"], "out of range"),
                         (["--auth", "nopassword"], "user:password")):
        with pytest.raises(SystemExit) as done:
            main(bad)
        assert done.value.code == 2 and message in capsys.readouterr().err


def test_cli_defaults_come_from_the_environment(monkeypatch):
    args = parse_args([])
    assert (args.host, args.port, args.auth) == ("127.0.0.1", 7860, None)  # this machine only, no login
    monkeypatch.setenv("QA_HOST", "0.0.0.0")
    monkeypatch.setenv("QA_PORT", "8123")
    monkeypatch.setenv("QA_AUTH", "alice:pa:ss")
    args = parse_args([])
    assert (args.host, args.port, args.auth) == ("0.0.0.0", 8123, ("alice", "pa:ss"))
    assert parse_args(["--port", "9000", "--auth", "bob:x"]).port == 9000


# --- The real page in headless Chromium -------------------------------------------------------------------

def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the browser tests must run; install chromium and playwright)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _unavailable(f"playwright is not installed: {exc}")
    if not Path(CHROMIUM).exists():
        _unavailable(f"no Chromium at {CHROMIUM}")
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    except Exception as exc:
        playwright.stop()
        _unavailable(f"Chromium does not start: {exc}")
    yield chromium
    chromium.close()
    playwright.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_copy(root: Path, embedder, seed_index: Path):
    """The app over copies of the corpus and its index in ``root`` (nothing to embed at start): app, URL, settings."""
    shutil.copytree(CORPUS, root / "corpus")
    shutil.copytree(seed_index, root / "index")
    settings = Settings(corpus=root / "corpus", index=root / "index")
    app = create_app(settings, embedder)
    return app, launch(app, port=free_port(), prevent_thread_lock=True, quiet=True), settings


@pytest.fixture(scope="module")
def served(tmp_path_factory, embedder, seed_index):
    """The app over temporary copies of the corpus and its index; URL, settings."""
    app, url, settings = serve_copy(tmp_path_factory.mktemp("web"), embedder, seed_index)
    yield url, settings
    app.close()


@pytest.fixture
def page(browser, served):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.dialogs = []
    page.dismiss_dialogs = lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss())
    page.on("dialog", page.dismiss_dialogs)
    page.goto(served[0])
    page.wait_for_selector("#qa-question textarea")
    yield page
    context.close()


def ask(page, question: str, turn: int) -> None:
    """Ask in the chat box and wait until answer ``turn`` has fully streamed in."""
    page.fill("#qa-question textarea", question)
    page.keyboard.press("Enter")
    page.wait_for_function(
        """([turn, question]) => {
            const groups = document.querySelectorAll('#qa-sources .qa-group');
            const bots = document.querySelectorAll('#qa-chat [data-testid="bot"]');
            return groups.length > 0 && document.querySelector('#qa-sources .qa-group[open] .qa-question')
                .textContent === question && bots.length === turn
                && !document.querySelector('.generating, .pending')  // the stream has ended
                && document.querySelector('#qa-send').offsetParent !== null;  // Ask is back
        }""", arg=[turn, question], timeout=30_000)
    page.wait_for_timeout(300)  # the event ends just after its last output; a question before that is ignored


def last_answer(page) -> str:
    return page.locator('#qa-chat [data-testid="bot"]').last.inner_text()


def upload(page, tmp_path: Path, name: str, text: str) -> str:
    """Upload one article file on the Articles tab; returns the report shown."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    page.get_by_role("tab", name="Articles").click()
    before = page.evaluate("() => document.querySelector('#qa-upload-result .qa-report')?.dataset.at || ''")
    page.locator("#qa-upload input[type=file]").set_input_files(path)
    page.wait_for_function(  # a new report (each has its own data-at), not the previous upload's
        """before => { const report = document.querySelector('#qa-upload-result .qa-report');
                       return report && report.dataset.at !== before; }""", arg=before, timeout=60_000)
    text = page.locator("#qa-upload-result").inner_text()
    page.get_by_role("tab", name="Ask").click()
    return text


@pytest.mark.browser
def test_ask_answers_with_linked_cited_sources(page):
    assert "2 articles" in page.locator("#qa-status").inner_text()
    assert "What ammunition was discussed?" in page.locator("#qa-chat").inner_text()  # an example question
    ask(page, "What ammunition was discussed?", turn=1)
    assert "[1]" in last_answer(page)
    marker = page.locator('#qa-chat a[href="#qa-src-1-1"]')
    assert marker.inner_text() == "[1]"
    cards = page.locator("#qa-sources .qa-card")
    assert any("155" in cards.nth(i).locator("mark").inner_text() for i in range(cards.count()))
    first = page.locator("#qa-src-1-1")
    assert first.locator(".qa-title").inner_text()
    assert any("2024-11-27" in cards.nth(i).inner_text() for i in range(cards.count()))  # the dated article
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-answer.png"))

    ask(page, "How many troops has North Korea sent to Russia?", turn=2)
    assert "10,000" in last_answer(page)
    assert not first.is_visible()  # the first answer's sources are folded away
    marker.click()
    assert first.is_visible()
    page.wait_for_function("""() => { const r = document.getElementById('qa-src-1-1').getBoundingClientRect();
                                     return r.top >= 0 && r.top < window.innerHeight - 40; }""", timeout=5_000)
    assert not page.dialogs


@pytest.mark.browser
def test_uploaded_article_is_indexed_and_cited(page, tmp_path, served):
    article = ("---\ntitle: Velmora lighthouse repainted\ndate: 2024-12-02\nsource: Harbour Gazette\n"
               "url: https://example.org/velmora\n---\n"
               "The Velmora Harbour lighthouse was repainted teal by the Quillon Maritime Society in October.\n\n"
               "Local fishermen said the new colour is easier to see in fog.\n")
    report = upload(page, tmp_path, "velmora lighthouse.md", article)
    assert "Added 1 article" in report and "velmora-lighthouse.md" in report
    assert (served[1].corpus / "velmora-lighthouse.md").read_text(encoding="utf-8") == article
    page.wait_for_function("() => document.querySelector('#qa-status').innerText.includes('3 articles')")

    ask(page, "What colour was the Velmora Harbour lighthouse repainted?", turn=1)
    assert "teal" in last_answer(page) and "[1]" in last_answer(page)
    card = page.locator("#qa-src-1-1")
    assert card.locator(".qa-title").inner_text() == "Velmora lighthouse repainted"
    assert "teal" in card.locator("mark").inner_text()
    assert "Harbour Gazette" in card.locator(".qa-meta").inner_text()
    assert card.locator(".qa-meta a").get_attribute("href") == "https://example.org/velmora"

    (tmp_path / "notes.pdf").write_text("not an article")  # the picker offers only the types the server takes
    page.get_by_role("tab", name="Articles").click()
    page.locator("#qa-upload input[type=file]").set_input_files(tmp_path / "notes.pdf")
    page.get_by_text("Invalid file type: notes.pdf").first.wait_for()  # said at once, nothing sent
    page.get_by_role("tab", name="Ask").click()
    again = upload(page, tmp_path, "velmora lighthouse.md", article)
    assert "Already in the archive" in again and "velmora-lighthouse.md" in again
    copy = upload(page, tmp_path, "copy.md", article)
    assert "Not added" in copy and "same text as velmora-lighthouse.md" in copy
    assert sorted(p.name for p in served[1].corpus.iterdir() if "velmora" in p.name or p.suffix != ".md") == [
        "velmora-lighthouse.md"]  # no .pdf, no copy kept
    assert not (served[1].corpus / "copy.md").exists()


@pytest.mark.browser
def test_markup_in_articles_is_shown_as_text_and_never_runs(page, tmp_path):
    article = ("---\ntitle: 'Zentrix <b>quarry</b> festival'\n---\n"
               f"The Zentrix quarry festival banner read {XSS} in large letters.\n\n"
               "Visitors photographed the banner all weekend.\n")
    report = upload(page, tmp_path, "zentrix.md", article)
    assert "Added 1 article" in report
    ask(page, "What did the Zentrix quarry festival banner read?", turn=1)
    card = page.locator("#qa-src-1-1")
    assert card.locator(".qa-title").inner_text() == "Zentrix <b>quarry</b> festival"
    assert "<script>window.__xss=1</script>" in card.inner_text()
    assert '<img src=x onerror="window.__xss=1;alert(1)">' in card.inner_text()
    assert "<script>window.__xss=1</script>" in last_answer(page)
    page.wait_for_timeout(500)  # give a broken image's onerror time to fire, were it rendered
    assert page.evaluate("window.__xss") is None
    assert page.locator("#qa-sources img, #qa-chat img[src='x'], #qa-sources script, #qa-sources b").count() == 0
    assert not page.dialogs
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-markup.png"))


@pytest.mark.browser
def test_a_follow_up_uses_the_conversation_in_the_chat(page):
    ask(page, "What ammunition was discussed?", turn=1)
    ask(page, "Who proposed it?", turn=2)
    answer = last_answer(page)
    # Asked alone it is refused: an answer about the ammunition with its sources shows the conversation was read.
    assert "ammunition" in answer and "[1]" in answer and "do not answer" not in answer, answer
    ask(page, "How many troops has North Korea sent to Russia?", turn=3)  # self-contained: read as asked
    assert "10,000" in last_answer(page)


def set_date(page, which: str, value: str) -> None:
    """Type into the From/To date picker (``since``/``until``) and leave it, as a user does."""
    box = page.locator(f"#qa-{which} input")
    box.fill(value)
    box.press("Tab")


def filters_bar(page) -> str:
    return page.locator("#qa-filters").inner_text().split("\n")[0]


@pytest.mark.browser
def test_filters_badge_invalid_range_undated_and_clear(page):
    # The question's time words make a preferred window, shown with how to remove it; unticked, none is read.
    ask(page, "What ammunition was discussed in November 2024?", turn=1)
    assert ('Preferring articles of 2024-11-01 to 2024-11-30, from the question (\'in November 2024\'); untick '
            '"Dates from the question" under Filters to search every date') in last_answer(page)
    page.locator("#qa-filters").get_by_text("Filters").click()
    page.get_by_role("checkbox", name="Dates from the question").uncheck()
    page.wait_for_function("() => document.querySelector('#qa-filters').innerText.split('\\n')[0] === "
                           "'Filters · 1 on: dates from the question ignored'")
    page.click("#qa-again")  # the same question, its answer without the window
    page.wait_for_function("""() => { const chat = document.querySelector('#qa-chat').innerText;
        return chat.includes('[1]') && !chat.includes('Preferring') && !document.querySelector('.generating, .pending')
               && document.querySelector('#qa-send').offsetParent !== null; }""", timeout=30_000)
    assert page.locator('#qa-chat [data-testid="bot"]').count() == 1 and "155" in last_answer(page)
    page.wait_for_timeout(300)

    set_date(page, "since", "2024-12-03")
    page.wait_for_function("() => document.querySelector('#qa-filters').innerText.includes('2 on: from 2024-12-03')")
    page.locator("#qa-filters").get_by_text("Filters").first.click()  # folded, the badge still shows
    assert ("Filters · 2 on: from 2024-12-03, undated articles included, dates from the question ignored"
            in filters_bar(page))
    ask(page, "What ammunition was discussed?", turn=2)  # the dated article (2024-11-27) is out, undated kept
    dates = page.locator("#qa-sources .qa-group[open] .qa-card").all_inner_texts()
    assert dates and not any("2024-11-27" in d for d in dates)

    page.locator("#qa-filters").get_by_text("Filters").first.click()
    page.get_by_label("Include undated articles").uncheck()
    page.wait_for_function("() => document.querySelector('#qa-filters').innerText.includes('undated articles left')")
    ask_and_wait_for_text(page, "What ammunition was discussed?", "No articles match these filters")
    assert "from 2024-12-03, undated articles left out" in last_answer(page)

    set_date(page, "until", "2024-11-01")  # before From: said at once, in the form's words
    note = page.locator("#qa-filter-note")
    note.get_by_text("From date 2024-12-03 is after To date 2024-11-01").wait_for()
    assert "check the dates" in filters_bar(page)
    set_date(page, "until", "2030-13-01")
    note.get_by_text("To date '2030-13-01' is not a date").wait_for()
    ask_and_wait_for_text(page, "What ammunition was discussed?", "Cannot search")
    assert "To date '2030-13-01' is not a date; use YYYY-MM-DD" in last_answer(page)

    page.click("#qa-clear-filters")  # one click: every filter off, undated included and the question's dates read again
    page.wait_for_function("() => document.querySelector('#qa-filters').innerText.split('\\n')[0] === 'Filters'")
    assert page.locator("#qa-since input").input_value() == "" and page.locator("#qa-until input").input_value() == ""
    assert page.get_by_label("Include undated articles").is_checked()
    assert page.get_by_role("checkbox", name="Dates from the question").is_checked()
    # The note empties once the checks Clear set off have run (Gradio may show "queue: 1/1" there meanwhile).
    page.wait_for_function("() => document.querySelector('#qa-filter-note').innerText.trim() === ''", timeout=10_000)


def test_cancel_in_the_delete_chat_dialog_changes_nothing():
    import gradio as gr

    from qa.web import chats
    from qa.web.app import CANCELLED, delete_chat

    answer = Answer("What ammunition?", "Shells. [1]", [AnswerSentence("Shells.", (1,))], [_citation(1)])
    store = chats.add_answer(chats.new_chat(chats.add_answer(chats.EMPTY_STORE, answer)), answer)
    assert isinstance(delete_chat(CANCELLED), type(gr.skip()))  # Cancel: the store is not written
    assert len(delete_chat(store)["chats"]) == 1  # OK deletes the current chat only


@pytest.mark.browser
def test_a_conversation_survives_a_reload_and_past_chats_are_listed(page, served):
    ask(page, "What ammunition was discussed?", turn=1)
    ask(page, "Who proposed it?", turn=2)
    page.reload()
    page.wait_for_function("() => document.querySelectorAll('#qa-chat [data-testid=\"bot\"]').length === 2")
    assert "ammunition" in last_answer(page) and page.locator("#qa-src-1-1").count() == 1
    ask(page, "How many troops has North Korea sent to Russia?", turn=3)  # goes on from where it was
    page.locator("#qa-sidebar .toggle-button").click()
    chats = page.locator("#qa-chats label")
    assert chats.count() == 1 and "What ammunition was discussed?" in chats.first.inner_text()

    page.click("#qa-new-chat")
    page.wait_for_function("() => !document.querySelector('#qa-chat [data-testid=\"bot\"]')")
    ask(page, "Who met in Seoul on November 27?", turn=1)
    page.wait_for_function("() => document.querySelectorAll('#qa-chats label').length === 2")
    page.fill("#qa-chat-title input", "Seoul meeting")
    page.click("#qa-rename")
    page.locator("#qa-chats label").get_by_text("Seoul meeting").wait_for()
    with page.expect_download() as download:
        page.click("#qa-export")
        page.locator("#qa-export-file a").first.click()
    markdown = Path(download.value.path()).read_text(encoding="utf-8")
    assert markdown.startswith("# Seoul meeting") and "## Who met in Seoul on November 27?" in markdown
    assert "[1] **" in markdown and "`yoon-umerov-seoul-meeting.md`" in markdown  # its citations

    page.locator("#qa-chats label").get_by_text("What ammunition was discussed?").click()
    page.wait_for_function("() => document.querySelectorAll('#qa-chat [data-testid=\"bot\"]').length === 3")
    page.reload()  # the chosen chat and the list survive a reload; nothing of them is on the server
    page.wait_for_function("() => document.querySelectorAll('#qa-chat [data-testid=\"bot\"]').length === 3")
    page.locator("#qa-sidebar .toggle-button").click()
    page.click("#qa-delete-chat")  # Cancel in "Delete this chat from this browser?" (the fixture dismisses it)
    page.wait_for_timeout(2000)  # the event's round trip: it once stored an empty list of chats here
    assert page.dialogs and page.locator("#qa-chats label").count() == 2
    page.reload()
    page.wait_for_function("() => document.querySelectorAll('#qa-chat [data-testid=\"bot\"]').length === 3")
    page.locator("#qa-sidebar .toggle-button").click()
    assert page.locator("#qa-chats label").count() == 2  # nothing was deleted, for good either
    page.remove_listener("dialog", page.dismiss_dialogs)
    page.once("dialog", lambda dialog: dialog.accept())  # "Delete this chat from this browser?"
    page.click("#qa-delete-chat")
    page.wait_for_function("() => document.querySelectorAll('#qa-chats label').length === 1")
    assert page.locator("#qa-chat [data-testid=\"bot\"]").count() == 0


@pytest.mark.browser
def test_stop_while_streaming_ask_disabled_while_pending_and_ask_again(page, monkeypatch):
    import qa.web.handlers

    # Slow enough to press Stop in the middle, also on a loaded machine: at 1.5 s, with two suites on 2 cores, Stop
    # landed only after the fourth citation.
    monkeypatch.setattr(qa.web.handlers, "_STREAM_PAUSE", 3.0)
    page.fill("#qa-question textarea", "What ammunition was discussed?")
    page.keyboard.press("Enter")
    page.locator("#qa-stop").wait_for()
    assert not page.locator("#qa-send").is_visible()  # no second question while one is pending
    page.wait_for_function("() => document.querySelectorAll('#qa-chat a[href^=\"#qa-src-1-\"]').length >= 1")
    page.click("#qa-stop")
    page.locator("#qa-send").wait_for()
    assert page.locator("#qa-send").is_enabled() and not page.locator("#qa-stop").is_visible()
    stopped = last_answer(page)
    page.wait_for_timeout(3500)  # the stream is over: nothing more arrives, though a pause has passed
    # The full answer cites [1] to [3] (tests/baseline.jsonl pins it): stopped after the first, it never gets its last.
    assert last_answer(page) == stopped and "[3]" not in stopped
    assert page.locator("#qa-chat [data-testid=\"bot\"]").count() == 1

    monkeypatch.setattr(qa.web.handlers, "_STREAM_PAUSE", 0.05)
    page.click("#qa-again")  # the last question once more, in place of its answer
    page.wait_for_function("() => document.querySelector('#qa-chat').innerText.includes('[3]')", timeout=30_000)
    page.locator("#qa-send").wait_for()
    assert page.locator("#qa-chat [data-testid=\"bot\"]").count() == 1
    assert page.locator("#qa-chat [data-testid=\"user\"]").count() == 1


@pytest.mark.browser
def test_phone_layout_wraps_the_header_and_opens_sources_beside_the_chat(browser, served):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone = context.new_page()
    try:
        phone.goto(served[0])
        phone.wait_for_selector("#qa-question textarea")
        wide = "() => document.documentElement.scrollWidth"
        assert phone.evaluate(wide) <= 390
        status = phone.locator("#qa-status").bounding_box()
        assert status["x"] >= 0 and status["x"] + status["width"] <= 390  # readable, not cut at the edge
        assert not [t for t in phone.locator("#qa-status span").all_inner_texts() if t.strip() in ("·", "")]
        box = phone.locator("#qa-question textarea").bounding_box()
        send = phone.locator("#qa-send").bounding_box()
        assert box["x"] + box["width"] <= send["x"] and send["x"] + send["width"] <= 390  # the input fits
        ask(phone, "What ammunition was discussed?", turn=1)
        assert not phone.locator("#qa-src-1-1").is_visible() or not phone.locator("#qa-src-1-1").bounding_box() \
            or phone.locator("#qa-src-1-1").bounding_box()["x"] >= 390  # in the closed drawer
        phone.locator('#qa-chat a[href="#qa-src-1-1"]').click()  # a marker opens the drawer at its card
        phone.wait_for_function("""() => { const r = document.getElementById('qa-src-1-1').getBoundingClientRect();
                                           return r.left >= 0 && r.right <= 390 && r.top >= 0 && r.top < 844; }""")
        phone.click("#qa-sources-toggle")  # back to the chat, the question still in view
        phone.wait_for_function("() => document.getElementById('qa-sources-col').getBoundingClientRect().left >= 390")
        assert phone.locator("#qa-question textarea").is_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        phone.screenshot(path=str(ARTIFACTS / "web-phone.png"))
        phone.get_by_role("tab", name="Articles").click()
        phone.wait_for_selector("#qa-articles tbody tr")
        assert phone.evaluate(wide) <= 390
    finally:
        context.close()


def ask_and_wait_for_text(page, question: str, text: str) -> None:
    """Ask, and wait for the last answer to contain ``text`` (answers without sources add no source group)."""
    page.fill("#qa-question textarea", question)
    page.keyboard.press("Enter")
    page.wait_for_function(
        """text => { const bots = document.querySelectorAll('#qa-chat [data-testid="bot"]');
                     return bots.length && bots[bots.length - 1].innerText.includes(text)
                            && !document.querySelector('.generating, .pending')
                            && document.querySelector('#qa-send').offsetParent !== null; }""", arg=text, timeout=30_000)
    page.wait_for_timeout(300)
