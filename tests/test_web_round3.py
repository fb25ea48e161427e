"""The web chat, round 3 (issue 29): readable in any light, comfortable on any screen, and what people expect.

One app (its own copies of the corpus, plus two December articles of one source) serves every browser test here;
each test opens its own page (1280x800, or a phone at 390x844), in the order written. Without a browser these
tests are skipped as test_web's are (failed with CI=true).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_web import ARTIFACTS, ask, browser, free_port, last_answer  # noqa: F401 - fixtures

from qa.answer import Answer, AnswerSentence
from qa.web import chats
from qa.web.render import answer_text, citation_text

DECEMBER = {
    "velmora-lighthouse.md": ("---\ntitle: Velmora lighthouse repainted\ndate: 2024-12-02\nsource: Harbour Gazette\n"
                              "url: https://example.org/velmora\n---\nThe Velmora Harbour lighthouse was repainted "
                              "teal by the Quillon Maritime Society in October.\n\nLocal fishermen said the new colour "
                              "is easier to see in fog, according to harbour master Odile Brandt.\n\n"
                              "The repainting took three weeks and was paid for by the Brennick Trust.\n\n"
                              "The lamp itself dates from 1911.\n"),
    "quillon-ferry.md": ("---\ntitle: Quillon ferry timetable changes\ndate: 2024-12-05\nsource: Harbour Gazette\n"
                         "---\nThe Quillon ferry will run every forty minutes from January, the island council said on "
                         "Thursday.\n\nThe council expects the change to save about 200 tonnes of fuel a year.\n"),
}


# --- Without a browser ------------------------------------------------------------------------------------

def _answer(question: str = "What ammunition?") -> Answer:
    from test_web import _citation

    return Answer(question, "Shells. [1]", [AnswerSentence("Shells.", (1,))], [_citation(1, snippet="Shells.")])


def test_two_chats_never_share_a_title():
    store = chats.add_answer(chats.EMPTY_STORE, _answer())
    store = chats.add_answer(chats.new_chat(store), _answer())
    store = chats.add_answer(chats.new_chat(store), _answer())
    assert [t for t, _ in chats.choices(store)] == ["What ammunition? (3)", "What ammunition? (2)", "What ammunition?"]


def test_feedback_is_kept_with_the_answer_and_exported_as_a_question_set():
    store = chats.add_answer(chats.EMPTY_STORE, _answer(), ["What about Seoul?"])
    store = chats.add_answer(store, _answer("Who proposed it?"))
    assert chats.feedback_jsonl(store) == ""
    store = chats.set_feedback(store, 2, "refuse")
    store = chats.set_feedback(store, 1, "good")
    store = chats.set_feedback(store, 1, "bogus")  # unknown verdicts and turns change nothing
    store = chats.set_feedback(store, 9, "good")
    assert [n["feedback"] for n in chats.notes(store)] == ["good", "refuse"]
    assert chats.notes(store)[0]["followups"] == ["What about Seoul?"]
    records = [json.loads(line) for line in chats.feedback_jsonl(store).splitlines()]
    assert [r["kind"] for r in records] == ["feedback-good", "feedback-refuse"]
    second = records[1]
    assert second["question"] == "Who proposed it?" and second["expect_abstain"] is True
    assert second["history"] == [{"role": "user", "content": "What ammunition?"},
                                 {"role": "assistant", "content": "Shells. [1]"}]
    assert {"id", "kind", "history", "question", "expect_any", "expect_abstain", "article", "filters"} <= set(second)
    assert chats.notes(chats.set_feedback(store, 1, "good"))[0]["feedback"] is None  # the same again: taken back


def test_copied_text_holds_the_answer_and_its_numbered_sources():
    answer = _answer()
    text = answer_text(answer)
    assert text.startswith("Shells. [1]\n\nSources:\n[1] “Shells.” — Title (Wire, 2024-11-27) https://example.org/a")
    assert citation_text(answer.citations[0]) in text


# --- In the browser ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served3(tmp_path_factory, embedder, seed_index):
    import shutil

    from conftest import CORPUS

    from qa.config import Settings
    from qa.web import create_app, launch

    root = tmp_path_factory.mktemp("web3")
    shutil.copytree(CORPUS, root / "corpus")
    shutil.copytree(seed_index, root / "index")
    for name, text in DECEMBER.items():
        (root / "corpus" / name).write_text(text, encoding="utf-8")
    settings = Settings(corpus=root / "corpus", index=root / "index")
    app = create_app(settings, embedder)  # syncs: the December articles are embedded at start
    url = launch(app, port=free_port(), prevent_thread_lock=True, quiet=True)
    yield url, settings
    app.close()


@contextmanager
def open_page(browser, url: str, **options) -> Iterator:  # noqa: F811
    """The app's page in a new browser context (1280x800 unless ``options`` say otherwise), closed after."""
    context = browser.new_context(**{"viewport": {"width": 1280, "height": 800}, **options})
    try:
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.dismiss())
        page.goto(url)
        page.wait_for_selector("#qa-question textarea")
        yield page
    finally:
        context.close()


def contrast(foreground: str, background: str) -> float:
    """WCAG contrast ratio of two computed CSS colours ("rgb(r, g, b)")."""
    def luminance(colour: str) -> float:
        channels = [int(float(x)) / 255 for x in colour[colour.index("(") + 1:colour.index(")")].split(",")[:3]]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


MARK_COLOURS = """() => { const m = document.querySelector('#qa-sources .qa-group[open] mark');
                         const s = getComputedStyle(m); return [s.color, s.backgroundColor]; }"""


@pytest.mark.browser
@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_the_cited_sentence_is_readable_in_either_theme(browser, served3, scheme):  # noqa: F811
    with open_page(browser, served3[0], color_scheme=scheme) as page:
        assert page.evaluate("document.body.classList.contains('dark')") == (scheme == "dark")
        ask(page, "What ammunition was discussed?", turn=1)
        colour, background = page.evaluate(MARK_COLOURS)
        assert contrast(colour, background) >= 4.5, (colour, background)
        text = page.evaluate("getComputedStyle(document.querySelector('#qa-sources .qa-title')).color")
        card = page.evaluate("getComputedStyle(document.querySelector('#qa-sources .qa-card')).backgroundColor")
        assert contrast(text, card) >= 4.5, (text, card)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"web3-{scheme}.png"))
        page.click("#qa-theme")  # the header's toggle flips it, and the choice survives a reload
        page.wait_for_function("dark => document.body.classList.contains('dark') === dark", arg=scheme != "dark")
        page.reload()
        page.wait_for_selector("#qa-question textarea")
        page.wait_for_function("dark => document.body.classList.contains('dark') === dark", arg=scheme != "dark")
        page.wait_for_selector("#qa-sources mark")
        colour, background = page.evaluate(MARK_COLOURS)
        assert contrast(colour, background) >= 4.5, (colour, background)


@pytest.mark.browser
def test_filters_fit_the_screen_list_a_lone_source_and_the_badge_follows_clear(browser, served3):  # noqa: F811
    with open_page(browser, served3[0]) as page:
        page.locator("#qa-filters").get_by_text("Filters").click()
        page.wait_for_timeout(600)
        for control in ("#qa-source", "#qa-since", "#qa-until", "#qa-undated", "#qa-time-words", "#qa-clear-filters"):
            box = page.locator(control).bounding_box()
            assert box["y"] >= 0 and box["y"] + box["height"] <= 800, (control, box)  # opened: in view
        for which in ("since", "until"):  # the calendar button inside its box, the input wide enough for a date
            field = page.locator(f"#qa-{which}").bounding_box()
            button = page.locator(f"#qa-{which} button").first.bounding_box()
            assert button["x"] + button["width"] <= field["x"] + field["width"] + 1
            assert page.locator(f"#qa-{which} input").bounding_box()["width"] >= 100
        page.locator("#qa-source input").click()  # one source in the archive: it is offered beside "All sources"
        options = page.locator("[role=option]").all_inner_texts()
        assert any("Harbour Gazette" in o for o in options) and any("All sources" in o for o in options), options
        page.keyboard.press("Escape")
        page.locator("#qa-since input").fill("2024-12-01")
        page.locator("#qa-since input").press("Tab")
        page.wait_for_function("() => document.querySelector('#qa-filters').innerText.includes('from 2024-12-01')",
                               timeout=2000)  # at once
        page.click("#qa-clear-filters")
        page.wait_for_function("() => document.querySelector('#qa-filters').innerText.split('\\n')[0] === 'Filters'",
                               timeout=2000)
        page.wait_for_timeout(1500)  # no late badge with the old dates comes after
        assert page.locator("#qa-filters").inner_text().split("\n")[0] == "Filters"


@pytest.mark.browser
def test_digest_copy_feedback_export_and_a_follow_up_by_click(browser, served3):  # noqa: F811
    with open_page(browser, served3[0]) as page:
        page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        assert page.locator("#qa-again").evaluate("b => b.getBoundingClientRect().height") < 48  # one line
        page.click("#qa-sidebar .toggle-button")
        page.click("#qa-export")  # no chat chosen: said, not silently nothing
        page.get_by_text("No chat is chosen").wait_for(timeout=5000)
        page.click("#qa-sidebar .toggle-button")

        ask(page, "What happened in early December 2024?", turn=1)
        digest = last_answer(page)
        assert "Digest of 2024-12-01 to 2024-12-10: 2 articles, 2 stories, newest first." in digest, digest
        assert digest.index("Quillon ferry") < digest.index("Velmora lighthouse")  # newest first
        assert "[1]" in digest and "[2]" in digest
        assert "every forty minutes" in page.locator("#qa-src-1-1 mark").inner_text()  # each story's lead, cited
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "web3-digest.png"))

        ask(page, "What colour was the Velmora Harbour lighthouse repainted?", turn=2)
        page.click("#qa-sources .qa-group[open] .qa-actions .qa-copy")
        page.wait_for_timeout(300)
        copied = page.evaluate("navigator.clipboard.readText()")
        assert "teal" in copied and "[1]" in copied and "\n\nSources:\n[1] “" in copied
        assert "https://example.org/velmora" in copied
        page.click("#qa-src-2-1 .qa-copy")  # a citation: its quote and link
        page.wait_for_timeout(300)
        quote = page.evaluate("navigator.clipboard.readText()")
        cited = page.locator("#qa-src-2-1 mark").inner_text()
        assert quote == f"“{cited}” — Velmora lighthouse repainted (Harbour Gazette, 2024-12-02) https://example.org/velmora"

        page.click("#qa-sources .qa-group[open] .qa-fb[data-feedback=good]")
        page.wait_for_timeout(1500)
        page.locator("details.qa-older summary").first.click()  # the digest's group
        page.click("details.qa-older .qa-fb[data-feedback=wrong]")
        page.wait_for_timeout(1500)  # the verdict's round trip to the store
        assert page.locator("details.qa-older[open]").count() == 1  # the older answer stays open
        page.reload()  # kept with the chat
        page.wait_for_selector("#qa-sources .qa-group[open] .qa-fb[data-feedback=good][aria-pressed=true]")
        page.click("#qa-sidebar .toggle-button")
        with page.expect_download() as download:
            page.click("#qa-export-feedback")
            page.locator("#qa-feedback-file a").first.click()
        records = [json.loads(line) for line in Path(download.value.path()).read_text(encoding="utf-8").splitlines()]
        assert [(r["kind"], r["question"]) for r in records] == [
            ("feedback-wrong", "What happened in early December 2024?"),
            ("feedback-good", "What colour was the Velmora Harbour lighthouse repainted?")]
        assert records[1]["article"] == "velmora-lighthouse.md" and records[1]["expect_abstain"] is False
        page.click("#qa-sidebar .toggle-button")

        suggested = page.locator('#qa-chat [data-testid="bot"]').last.locator('a[href="#qa-ask"]')
        assert suggested.count() >= 1
        follow_up = suggested.first.inner_text()
        names = " ".join(suggested.all_inner_texts())
        assert follow_up.startswith("What about ") and ("Odile Brandt" in names or "Brennick Trust" in names), names
        suggested.first.click()  # one click asks it
        page.wait_for_function("""q => { const users = document.querySelectorAll('#qa-chat [data-testid="user"]');
                                         return users.length === 3 && users[2].innerText.includes(q); }""",
                               arg=follow_up.removeprefix("What about ").rstrip("?"), timeout=30_000)


@pytest.mark.browser
def test_keys_slash_escape_and_new_chat(browser, served3, monkeypatch):  # noqa: F811
    import qa.web.handlers

    with open_page(browser, served3[0]) as page:
        page.locator("#qa-status").click()
        page.keyboard.press("/")
        assert page.evaluate("document.activeElement === document.querySelector('#qa-question textarea')")
        assert page.locator("#qa-question textarea").input_value() == ""  # the key is not typed
        monkeypatch.setattr(qa.web.handlers, "_STREAM_PAUSE", 3.0)  # slow enough to stop in the middle
        page.fill("#qa-question textarea", "What ammunition was discussed?")
        page.keyboard.press("Enter")
        page.locator("#qa-stop").wait_for()
        page.wait_for_function("() => document.querySelectorAll('#qa-chat a[href^=\"#qa-src-1-\"]').length >= 1")
        page.keyboard.press("Escape")  # stops the answer
        page.locator("#qa-send").wait_for(timeout=5000)
        assert "[3]" not in last_answer(page)
        monkeypatch.setattr(qa.web.handlers, "_STREAM_PAUSE", 0.05)
        page.locator("#qa-status").click()
        page.keyboard.press("Alt+n")  # a new chat: the page empties
        page.wait_for_function("() => !document.querySelector('#qa-chat [data-testid=\"bot\"]')")
        toggle = page.locator("#qa-sidebar .toggle-button").bounding_box()
        assert toggle["x"] >= 0 and toggle["width"] >= 56  # the chats toggle, whole and labelled
        page.click("#qa-sidebar .toggle-button")
        page.wait_for_selector(".sidebar.open")
        page.locator("#qa-status").click()
        page.keyboard.press("Escape")  # closes the chats
        page.wait_for_selector(".sidebar.open", state="detached")
        assert "Chats" in page.evaluate(
            "getComputedStyle(document.querySelector('#qa-sidebar .toggle-button'), '::after').content")


@pytest.mark.browser
def test_phone_drawer_closes_with_escape_and_leaves_markers_and_articles_readable(browser, served3):  # noqa: F811
    with open_page(browser, served3[0], viewport={"width": 390, "height": 844}, is_mobile=True,
                   has_touch=True) as phone:
        ask(phone, "What ammunition was discussed?", turn=1)
        toggle = phone.locator("#qa-sources-toggle").bounding_box()
        for marker in phone.locator('#qa-chat a[href^="#qa-src-1-"]').all():
            box = marker.bounding_box()
            overlaps = not (box["x"] + box["width"] <= toggle["x"] or toggle["x"] + toggle["width"] <= box["x"]
                            or box["y"] + box["height"] <= toggle["y"] or toggle["y"] + toggle["height"] <= box["y"])
            assert not overlaps, (box, toggle)
        phone.click("#qa-sources-toggle")
        phone.wait_for_function("() => document.getElementById('qa-sources-col').getBoundingClientRect().left < 390")
        phone.keyboard.press("Escape")
        phone.wait_for_function("() => document.getElementById('qa-sources-col').getBoundingClientRect().left >= 390")
        ARTIFACTS.mkdir(exist_ok=True)
        phone.screenshot(path=str(ARTIFACTS / "web3-phone.png"))
        phone.get_by_role("tab", name="Articles").click()
        phone.wait_for_selector("#qa-articles tbody tr")
        table = phone.locator("#qa-articles table").bounding_box()
        assert table["x"] >= 0 and table["x"] + table["width"] <= 390, table  # not cut off
        heights = [r.bounding_box()["height"] for r in phone.locator("#qa-articles tbody tr").all()]
        assert max(heights) < 120, heights
        phone.screenshot(path=str(ARTIFACTS / "web3-phone-articles.png"))


@pytest.mark.browser
def test_the_file_picker_offers_only_the_types_the_server_takes(browser, served3):  # noqa: F811
    from qa.corpus import SUPPORTED_EXTENSIONS

    with open_page(browser, served3[0]) as page:
        page.get_by_role("tab", name="Articles").click()
        accept = page.locator("#qa-upload input[type=file]").get_attribute("accept")
        assert sorted(a.strip() for a in accept.split(",")) == sorted(SUPPORTED_EXTENSIONS), accept
