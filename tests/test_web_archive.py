"""The Articles view in headless Chromium: list, search, sort, page, open, delete, replace, sync; the source filter.

One app per module over copies of the bundled corpus and its index; the tests run in order and each checks that
the corpus folder and the index agree afterwards (through ``Retriever.articles``, what the page lists).
"""

from __future__ import annotations

import json

import pytest
from test_web import ask, browser, last_answer, serve_copy, upload  # noqa: F401 - fixtures

from qa.config import Settings
from qa.listing import MAX_PAGE_SIZE
from qa.retriever import Retriever

BULK = 60  # more than a page (qa.listing.PAGE_SIZE is 50)
STORY = ("---\ntitle: Busan port strike ends\ndate: 2024-12-03\nsource: Harbour Gazette\n---\n"
         "Dock workers at the port of Busan ended their strike on Tuesday after {days} days.\n\n"
         "The union said the new contract raises night pay.\n")


@pytest.fixture(scope="module")
def archive(tmp_path_factory, embedder, seed_index):
    app, url, settings = serve_copy(tmp_path_factory.mktemp("archive"), embedder, seed_index)
    yield url, settings, Retriever(settings.index, embedder)
    app.close()


@pytest.fixture(scope="module")
def page(browser, archive):  # noqa: F811 - one page for the module's tests, in order (a page load costs 5-10 s)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(archive[0])
    page.wait_for_selector("#qa-question textarea")
    yield page
    context.close()


def listed(retriever: Retriever) -> dict[str, str]:
    """Every indexed article id -> its file, as the list shows them."""
    return {r.id: r.file for r in retriever.articles(limit=MAX_PAGE_SIZE).rows}


def in_folder(settings: Settings) -> set[str]:
    return {p.name for p in settings.corpus.iterdir()}


def articles_tab(page) -> None:
    page.get_by_role("tab", name="Articles").click()
    page.wait_for_selector("#qa-articles tbody tr")


def pager(page) -> str:
    return page.locator("#qa-pager .qa-pager-text").inner_text()


@pytest.mark.browser
def test_a_big_upload_is_summarised_listed_in_pages_searched_sorted_and_opened(page, archive, tmp_path):
    url, settings, retriever = archive
    records = "\n".join(
        json.dumps({"id": f"n{i}", "title": f"Ferry notice {i:02d}", "date": f"2024-10-{i % 28 + 1:02d}",
                    "source": "Ferry Office", "text": f"The ferry number {i} to Ulsan sails from pier {i}."})
        for i in range(BULK))
    report = upload(page, tmp_path, "bulk.jsonl", records)
    assert f"Added {BULK} articles from bulk.jsonl" in report, report
    assert page.locator("#qa-upload-result details").count() == 1  # the 60 ids are folded
    articles_tab(page)
    assert pager(page) == f"1–50 of {BULK + 2} articles"
    assert page.locator("#qa-articles tbody tr").count() == 50
    page.click("#qa-next")
    page.wait_for_function(f"() => document.querySelector('#qa-pager').innerText.includes('51–{BULK + 2}')")
    assert page.locator("#qa-articles tbody tr").count() == BULK + 2 - 50
    page.fill("#qa-article-search textarea", "ferry NOTICE 07")  # case-insensitive, over titles, sources, files
    page.wait_for_function("() => document.querySelector('#qa-pager').innerText.includes('of 1 ')")
    assert page.locator("#qa-articles tbody tr").inner_text().startswith("Ferry notice 07")
    page.fill("#qa-article-search textarea", "bulk.jsonl")
    page.wait_for_function(f"() => document.querySelector('#qa-pager').innerText.includes('of {BULK} ')")
    page.click("#qa-articles [data-sort=title]")  # the server sorts the whole list: A to Z first
    page.wait_for_function("() => document.querySelector('#qa-articles tbody td').innerText === 'Ferry notice 00'")
    page.click("#qa-articles [data-sort=title]")  # again: Z to A
    page.wait_for_function("() => document.querySelector('#qa-articles tbody td').innerText === 'Ferry notice 59'")
    page.locator("#qa-articles tbody tr").first.click()
    reader = page.locator("#qa-reader")
    reader.wait_for()
    text = reader.inner_text()
    assert "Ferry notice 59" in text and "Ferry Office" in text and "bulk.jsonl#n59" in text
    assert "pier 59" in text and f"{BULK} articles" in text  # the file holds the others too
    assert len(listed(retriever)) == BULK + 2


def wait_for_reader(page, text: str) -> None:
    """Wait until the article reader shows ``text`` (the article a row click opened)."""
    page.wait_for_function("t => (document.querySelector('#qa-reader') || {innerText: ''}).innerText.includes(t)",
                           arg=text)


@pytest.mark.browser
def test_delete_asks_then_removes_the_file_from_folder_and_index(page, archive, tmp_path):
    url, settings, retriever = archive
    assert "Added 1 article" in upload(page, tmp_path, "busan.md", STORY.format(days=9))
    articles_tab(page)
    page.fill("#qa-article-search textarea", "Busan")
    page.wait_for_function("() => document.querySelector('#qa-pager').innerText.includes('of 1 ')")
    page.locator("#qa-articles tbody tr").first.click()
    # Delete acts on the article open in the reader: on a busy machine the click's round trip can still be on its
    # way, and Delete then asked about the article opened before (a run under load: "Delete bulk.jsonl?").
    wait_for_reader(page, "busan.md")
    page.click("#qa-delete")
    question = page.locator("#qa-delete-ask")
    question.wait_for()
    assert "leaves the corpus folder" in question.inner_text() and "busan.md" in question.inner_text()
    assert (settings.corpus / "busan.md").exists()  # nothing happens before the confirmation
    page.click("#qa-delete-confirm")
    page.wait_for_function("() => document.querySelector('#qa-upload-result').innerText.includes('Deleted busan.md')")
    assert "1 article removed" in page.locator("#qa-upload-result").inner_text()
    assert "busan.md" not in in_folder(settings) and "busan.md" not in listed(retriever)
    page.wait_for_function("() => document.querySelector('#qa-pager').innerText.includes('No articles match')")

    # One article of a JSON Lines file: the whole file goes, and the page says so before.
    page.fill("#qa-article-search textarea", "Ferry notice 07")
    page.wait_for_function("() => document.querySelector('#qa-pager').innerText.includes('of 1 ')")
    page.locator("#qa-articles tbody tr").first.click()
    wait_for_reader(page, "Ferry notice 07")
    page.click("#qa-delete")
    page.locator("#qa-delete-ask").wait_for()
    assert f"its {BULK} articles" in page.locator("#qa-delete-ask").inner_text()
    page.click("#qa-delete-confirm")
    page.wait_for_function("() => document.querySelector('#qa-upload-result').innerText.includes('Deleted bulk')")
    assert f"{BULK} articles removed" in page.locator("#qa-upload-result").inner_text()
    assert "bulk.jsonl" not in in_folder(settings)
    assert set(listed(retriever).values()) == in_folder(settings)  # folder and index agree


@pytest.mark.browser
def test_uploading_a_known_name_asks_and_replaces_never_a_copy(page, archive, tmp_path):
    url, settings, retriever = archive
    assert "Added 1 article" in upload(page, tmp_path, "strike.md", STORY.format(days=9))
    report = upload(page, tmp_path, "strike.md", STORY.format(days=12))
    assert "Replace it with the uploaded version?" in report
    assert "9 days" in (settings.corpus / "strike.md").read_text()  # nothing replaced before the answer
    page.get_by_role("tab", name="Articles").click()
    page.click("#qa-replace")
    page.wait_for_function("() => document.querySelector('#qa-upload-result').innerText.includes('Updated 1 article')")
    assert "12 days" in (settings.corpus / "strike.md").read_text()
    assert "12 days" in retriever.article("strike.md").text
    assert not [n for n in in_folder(settings) if n.startswith("strike") and n != "strike.md"]  # no strike-2.md
    assert set(listed(retriever).values()) == in_folder(settings)


@pytest.mark.browser
def test_sync_reports_a_file_removed_on_disk(page, archive):
    url, settings, retriever = archive
    (settings.corpus / "strike.md").unlink()
    articles_tab(page)
    before = pager(page)
    page.click("#qa-sync")
    page.wait_for_function("() => document.querySelector('#qa-upload-result').innerText.includes('Synced')")
    result = page.locator("#qa-upload-result").inner_text()
    assert "Synced with the folder: 1 article removed." in result and "strike.md" in result, result
    page.wait_for_function("before => document.querySelector('#qa-pager').innerText !== before", arg=before)
    assert "strike.md" not in listed(retriever) and set(listed(retriever).values()) == in_folder(settings)
    page.wait_for_function("() => document.querySelector('#qa-status').innerText.includes('2 articles')")
    page.click("#qa-sync")  # again: nothing to do, said so
    page.wait_for_function("() => document.querySelector('#qa-upload-result').innerText.includes('nothing changed')")


@pytest.mark.browser
def test_the_source_filter_lists_the_archive_sources_and_shows_a_badge(page, archive, tmp_path):
    upload(page, tmp_path, "velmora.md", "---\ntitle: Velmora lighthouse repainted\nsource: Harbour Gazette\n---\n"
                                         "The Velmora lighthouse was repainted teal in October.\n")
    page.locator("#qa-filters").get_by_text("Filters").click()
    page.locator("#qa-source input").click()
    page.get_by_role("option", name="Harbour Gazette").click()
    page.wait_for_function("() => document.querySelector('#qa-filters').innerText.includes('1 on: source Harbour')")
    ask(page, "What colour was the lighthouse repainted?", turn=1)
    assert "teal" in last_answer(page)
    metas = page.locator("#qa-sources .qa-group[open] .qa-meta").all_inner_texts()
    assert metas and all("Harbour Gazette" in m for m in metas)
    page.click("#qa-clear-filters")
    page.wait_for_function("() => !document.querySelector('#qa-filters').innerText.includes(' on:')")
