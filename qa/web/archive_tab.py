"""The Articles tab: the archive as a sortable, searchable, paged list; read, delete, replace, upload, sync.

Every change goes through the corpus folder and :func:`qa.indexing.sync` (the one way the index changes), so
the folder and the index agree afterwards; the list is read from the index (``Retriever.articles``).
"""

from __future__ import annotations

import html
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from qa.config import Settings
from qa.errors import IndexUnusable
from qa.files import disk_words
from qa.indexing import CorpusNotFound, MassRemoval, sync
from qa.listing import MAX_PAGE_SIZE, PAGE_SIZE, SORT_KEYS
from qa.retriever import Retriever
from qa.web.archive import (
    MAX_UPLOAD_BYTES,
    UploadReport,
    busy,
    claim,
    recover,
    safe_name,
    save_upload,
    settle,
    summarize_uploads,
    sync_report_html,
    upload_report_html,
    withdraw,
)
from qa.web.jobs import delete_file, watch
from qa.web.render import COLUMNS, article_html, articles_table, delete_question, pager_text

#: Columns first sorted descending when chosen (biggest or newest first); the others A to Z.
_DESCENDING_FIRST = {"date", "chunks", "indexed_at"}
#: A row opens its article and a heading sorts: the table's clicks, sent to the server as one event.
TABLE_JS = """
element.addEventListener('click', (event) => {
  const head = event.target.closest('[data-sort]');
  if (head) { trigger('click', {sort: head.dataset.sort}); return; }
  const row = event.target.closest('tr[data-id]');
  if (row) trigger('click', {open: row.dataset.id});
});
element.addEventListener('keydown', (event) => {
  const row = event.target.closest('tr[data-id]');
  if (row && event.key === 'Enter') trigger('click', {open: row.dataset.id});
});
"""
_PRIVATE: dict[str, Any] = dict(api_visibility="private", show_progress="hidden")


def _log(message: str) -> None:
    print(f"qa web: {message}", file=sys.stderr, flush=True)


def progress_html(words: str) -> str:
    return f'<div class="qa-progress" role="status">{html.escape(words)}…</div>'


def _bad(message: str) -> str:
    return done(f'<div class="qa-bad">{html.escape(message)}</div>')


def done(report: str) -> str:
    """A finished action's report, marked as new (``data-at``): a page or a test waiting for the outcome of
    an action can tell it from the one before, even when both read the same."""
    return f'<div class="qa-report" data-at="{time.monotonic_ns()}">{report}</div>'


def file_articles(retriever: Retriever, file: str) -> int:
    """How many indexed articles come from corpus file ``file`` (a JSON Lines file holds many)."""
    page = retriever.articles(file, sort="file", descending=False, limit=MAX_PAGE_SIZE)
    return sum(r.file == file for r in page.rows)


def build(settings: Settings, retriever: Retriever, refresh: Callable, refreshed: list) -> dict:
    """The tab's components and events, inside the Blocks being built; ``refresh()`` gives new values for the
    ``refreshed`` components (the status line, the source filter) after the archive changed. Returns the
    listing event's arguments (for the page's load event)."""
    log = _log
    for words in recover(settings.corpus):
        log(f"corpus folder: {words}")

    def index(uploads: list):
        return index_uploads(settings, retriever.embedder, uploads, log)

    def add(files: list[str] | None):
        files = files or []
        hide = gr.update(visible=False)
        if not files:
            yield done(upload_report_html(UploadReport())), [], hide
            return
        yield progress_html(f"Checking {len(files)} file{'s' * (len(files) != 1)}"), [], hide
        box: dict = {}
        with claim(settings.corpus, [safe_name(Path(f).name) for f in files]) as mine:
            uploads = [save_upload(f, settings.corpus) if safe_name(Path(f).name) in mine else busy(Path(f).name)
                       for f in files]
            for words in _drain(index(uploads), box):
                yield words, [], hide
        result = box["result"]
        pending = [f for f, u in zip(files, uploads, strict=True) if u.conflict]
        yield done(upload_report_html(result)), pending, gr.update(visible=bool(pending))

    def replace(pending: list[str]):
        hide = gr.update(visible=False)
        if not pending:
            yield done('<div class="qa-note">Nothing waits to be replaced.</div>'), [], hide
            return
        box: dict = {}
        with claim(settings.corpus, [safe_name(Path(f).name) for f in pending]) as mine:
            uploads = [save_upload(f, settings.corpus, replace=True) if safe_name(Path(f).name) in mine
                       else busy(Path(f).name) for f in pending]
            for words in _drain(index(uploads), box):
                yield words, [], hide
        yield done(upload_report_html(box["result"])), [], hide

    def keep(pending: list[str]):
        names = ", ".join(Path(f).name for f in pending)
        return (done(f'<div class="qa-note">Kept the archive&#39;s version of {html.escape(names)}; '
                     "the uploaded one was not saved.</div>"), [], gr.update(visible=False))

    def sync_folder():
        report = None
        try:
            for words, result in watch(lambda: sync(settings=settings, embedder=retriever.embedder, progress=True),
                                       "Reading the corpus folder"):
                if words:
                    yield progress_html(words)
                else:
                    report = result
        except (CorpusNotFound, MassRemoval, IndexUnusable, ValueError) as exc:
            log(f"sync from the page not done: {exc}")
            yield _bad(f"Not synced: {exc}")
            return
        log(f"synced from the page: {report.summary()}")
        yield done(sync_report_html(report))

    def page(query: str, sort: str, descending: bool, offset: int):
        sort = sort if sort in SORT_KEYS else SORT_KEYS[0]
        found = retriever.articles(query or "", sort, bool(descending), max(0, int(offset or 0)), PAGE_SIZE)
        if found.offset and not found.rows and found.total:  # the last page emptied by a delete: go back one
            found = retriever.articles(query or "", sort, bool(descending),
                                       (found.total - 1) // PAGE_SIZE * PAGE_SIZE, PAGE_SIZE)
        return (articles_table(found, sort, bool(descending)), f'<div class="qa-pager-text">{pager_text(found, query)}'
                "</div>", gr.update(interactive=found.offset > 0),
                gr.update(interactive=found.offset + len(found.rows) < found.total), found.offset)

    def clicked(evt: gr.EventData, sort: str, descending: bool):
        data = getattr(evt, "_data", None) or {}
        if data.get("sort") in SORT_KEYS:
            key = data["sort"]
            descending = (not descending) if key == sort else key in _DESCENDING_FIRST
            return key, descending, 0, gr.skip(), gr.skip(), gr.skip()
        if isinstance(data.get("open"), str):
            return (gr.skip(), gr.skip(), gr.skip(), *open_article(data["open"]))
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()

    def open_article(article_id: str):
        article = retriever.article(article_id)
        if article is None:
            return _bad("That article is no longer in the archive."), None, gr.update(visible=True)
        count = file_articles(retriever, article.file) if article.file else 1
        return article_html(article, count), article.file, gr.update(visible=True)

    def ask_delete(file: str | None):
        if not file:
            return gr.skip(), gr.update(visible=False)
        return delete_question(file, file_articles(retriever, file)), gr.update(visible=True)

    def delete(file: str | None):
        hide = gr.update(visible=False)
        if not file:
            yield gr.skip(), hide, hide
            return
        try:
            report = None
            with claim(settings.corpus, [file]) as mine:
                if not mine:
                    yield _bad(f"Not deleted: {file} is being changed by another upload or delete at this moment; "
                               "try again when it has finished."), hide, gr.skip()
                    return
                for words, result in watch(lambda: delete_file(settings, retriever.embedder, file),
                                           f"Deleting {file}"):
                    if words:
                        yield progress_html(words), hide, gr.skip()
                    else:
                        report = result
        except (FileNotFoundError, IndexUnusable, ValueError, OSError) as exc:
            log(f"delete of {file} not done: {exc}")
            kept = "" if isinstance(exc, FileNotFoundError) else f" {file} is unchanged."
            yield _bad(f"Not deleted: {why_not(exc)}{kept}"), hide, gr.skip()
            return
        assert report is not None  # watch's last item is the result
        log(f"deleted {file}: {report.summary()}")
        yield done(sync_report_html(report, f"Deleted {file} from the corpus folder and the index")), hide, hide

    gr.HTML('<p class="qa-sub">The articles of the archive. Add Markdown or text files (with optional front '
            "matter: title, date, source, url), HTML pages, or JSON / JSON Lines records with a <code>text</code> "
            f"field, up to {MAX_UPLOAD_BYTES // 2**20} MB per file: they are saved in the corpus folder and indexed "
            "at once. A file whose name is already in the archive replaces it, after you confirm.</p>",
            js_on_load=None)
    with gr.Row(equal_height=False, elem_id="qa-archive-actions"):
        upload = gr.File(label="Upload articles (.md .txt .html .htm .json .jsonl)", file_count="multiple",
                         elem_id="qa-upload", height=120, scale=4)
        with gr.Column(scale=1, min_width=160):
            sync_button = gr.Button("Sync with folder", elem_id="qa-sync")
            gr.HTML('<p class="qa-hint">Picks up files added, changed or removed in the corpus folder by hand.</p>',
                    js_on_load=None)
    result = gr.HTML("", elem_id="qa-upload-result", js_on_load=None)
    pending = gr.State([])
    with gr.Row(visible=False, elem_id="qa-replace-ask") as replace_row:
        replace_button = gr.Button("Replace", variant="primary", elem_id="qa-replace")
        keep_button = gr.Button("Keep the archive's version", elem_id="qa-keep")
    with gr.Group(visible=False, elem_id="qa-reader-box") as reader_box:
        reader = gr.HTML("", elem_id="qa-reader", js_on_load=None)
        opened = gr.State(None)  # the corpus file of the article opened
        with gr.Row():
            delete_button = gr.Button("Delete…", variant="stop", elem_id="qa-delete", size="sm")
            close_button = gr.Button("Close", elem_id="qa-close", size="sm")
        with gr.Column(visible=False, elem_id="qa-delete-ask") as delete_box:
            delete_text = gr.HTML("", js_on_load=None)
            with gr.Row():
                confirm_button = gr.Button("Delete", variant="stop", elem_id="qa-delete-confirm", size="sm")
                cancel_button = gr.Button("Cancel", elem_id="qa-delete-cancel", size="sm")
    with gr.Row(elem_id="qa-list-controls"):
        query = gr.Textbox(label="Search titles, sources and files", elem_id="qa-article-search", scale=3,
                           placeholder="e.g. Korea")
        sort = gr.Dropdown(label="Sort by", choices=[(label, key) for key, label in COLUMNS.items()],
                           value=SORT_KEYS[0], scale=1, elem_id="qa-sort")
        descending = gr.Checkbox(label="Descending", value=True, scale=1, elem_id="qa-descending")
    offset = gr.State(0)
    table = gr.HTML("", elem_id="qa-articles", js_on_load=TABLE_JS)
    with gr.Row(elem_id="qa-pager"):
        previous = gr.Button("← Previous", size="sm", interactive=False, elem_id="qa-prev")
        pager = gr.HTML("", js_on_load=None)
        following = gr.Button("Next →", size="sm", interactive=False, elem_id="qa-next")

    listing: dict[str, Any] = dict(fn=page, inputs=[query, sort, descending, offset],
                   outputs=[table, pager, previous, following, offset], **_PRIVATE)
    first_page: dict[str, Any] = dict(fn=lambda q, s, d: page(q, s, d, 0), inputs=[query, sort, descending],
                      outputs=listing["outputs"], **_PRIVATE)
    after_change: dict[str, Any] = dict(fn=refresh, outputs=refreshed, **_PRIVATE)

    upload.upload(add, upload, [result, pending, replace_row], **_PRIVATE).then(
        lambda: None, None, upload, **_PRIVATE).then(**listing).then(**after_change)
    replace_button.click(replace, pending, [result, pending, replace_row], **_PRIVATE).then(
        **listing).then(**after_change)
    keep_button.click(keep, pending, [result, pending, replace_row], **_PRIVATE)
    sync_button.click(sync_folder, None, result, **_PRIVATE).then(**listing).then(**after_change)
    query.change(**first_page, trigger_mode="always_last")
    for control in (sort, descending):
        control.input(**first_page)
    previous.click(lambda o: max(0, o - PAGE_SIZE), offset, offset, **_PRIVATE).then(**listing)
    following.click(lambda o: o + PAGE_SIZE, offset, offset, **_PRIVATE).then(**listing)
    table.click(clicked, [sort, descending], [sort, descending, offset, reader, opened, reader_box],
                **_PRIVATE).then(**listing)
    close_button.click(lambda: (gr.update(visible=False), gr.update(visible=False)), None,
                       [reader_box, delete_box], **_PRIVATE)
    delete_button.click(ask_delete, opened, [delete_text, delete_box], **_PRIVATE)
    cancel_button.click(lambda: gr.update(visible=False), None, delete_box, **_PRIVATE)
    confirm_button.click(delete, opened, [result, delete_box, reader_box], **_PRIVATE).then(
        **listing).then(**after_change)
    return listing


def index_uploads(settings: Settings, embedder, uploads: list, log: Callable[[str], None] = _log):
    """Index saved uploads, saying how far it got (yields words); returns the report of what became of each
    file. When the sync fails, the uploads are taken back: the folder holds what it held before."""
    report = None
    todo = [u for u in uploads if u.name and not u.existing and not u.conflict]
    if todo:
        try:
            start = f"Reading {len(todo)} file{'s' * (len(todo) != 1)}"
            for words, synced in watch(lambda: sync(settings=settings, embedder=embedder, progress=True), start):
                if words:
                    yield progress_html(words)
                else:
                    report = synced
            assert report is not None  # watch's last item is the result
            log(f"upload synced: {report.summary()}")
        except (IndexUnusable, ValueError, OSError) as exc:  # a full disk, a moved corpus: nothing added
            log(f"upload not indexed: {exc}")
            reason = f"not indexed: {why_not(exc)}"
            uploads = [withdraw(u, settings.corpus, reason + (" The archive's version is unchanged."
                                                              if u.backup else "")) for u in uploads]
    result = summarize_uploads(uploads, report, settings.corpus)
    if result.restored:  # a replaced file came back because nothing of its new version could be indexed
        try:
            sync(settings=settings, embedder=embedder)
        except (IndexUnusable, ValueError, OSError) as exc:
            log(f"restored file not indexed again: {exc}")
    settle(uploads)
    return result


def why_not(exc: BaseException) -> str:
    """Why a change was not made, in plain words: an OSError without its errno or temporary paths."""
    if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
        return disk_words(exc) + "."
    return str(exc).rstrip(".") + "."


def _drain(gen, box: dict):
    """Yield what ``gen`` yields; put what it returns in ``box["result"]``."""
    box["result"] = yield from gen
