"""The Articles tab's handlers: the archive as a sortable, searchable, paged list; read, delete, replace, upload,
sync. Plain functions of the :class:`~qa.web.state.AppState` (first) and the values an event reads;
:mod:`qa.web.archive_layout` makes the tab's components and wires them to these.

Every change goes through the corpus folder and :func:`qa.indexing.sync` (the one way the index changes), so
the folder and the index agree afterwards; the list is read from the index (``Retriever.articles``).
"""

from __future__ import annotations

import html
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import gradio as gr

from qa.config import Settings
from qa.errors import IndexUnusable
from qa.files import disk_words
from qa.indexing import CorpusNotFound, MassRemoval, sync
from qa.listing import MAX_PAGE_SIZE, PAGE_SIZE, SORT_KEYS
from qa.retriever import Retriever
from qa.web.archive import (
    UploadReport,
    busy,
    claim,
    safe_name,
    save_upload,
    settle,
    summarize_uploads,
    sync_report_html,
    upload_report_html,
    withdraw,
)
from qa.web.jobs import delete_file, watch
from qa.web.render import article_html, articles_table, delete_question, pager_text
from qa.web.state import AppState
from qa.web.state import log as _log

#: Columns first sorted descending when chosen (biggest or newest first); the others A to Z.
_DESCENDING_FIRST = {"date", "chunks", "indexed_at"}


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


def add(app: AppState, files: list[str] | None):
    files = files or []
    hide = gr.update(visible=False)
    if not files:
        yield done(upload_report_html(UploadReport())), [], hide
        return
    yield progress_html(f"Checking {len(files)} file{'s' * (len(files) != 1)}"), [], hide
    box: dict = {}
    with claim(app.settings.corpus, [safe_name(Path(f).name) for f in files]) as mine:
        uploads = [save_upload(f, app.settings.corpus) if safe_name(Path(f).name) in mine else busy(Path(f).name)
                   for f in files]
        for words in _drain(index_uploads(app.settings, app.retriever.embedder, uploads, app.log), box):
            yield words, [], hide
    result = box["result"]
    pending = [f for f, u in zip(files, uploads, strict=True) if u.conflict]
    yield done(upload_report_html(result)), pending, gr.update(visible=bool(pending))


def replace(app: AppState, pending: list[str]):
    hide = gr.update(visible=False)
    if not pending:
        yield done('<div class="qa-note">Nothing waits to be replaced.</div>'), [], hide
        return
    box: dict = {}
    with claim(app.settings.corpus, [safe_name(Path(f).name) for f in pending]) as mine:
        uploads = [save_upload(f, app.settings.corpus, replace=True) if safe_name(Path(f).name) in mine
                   else busy(Path(f).name) for f in pending]
        for words in _drain(index_uploads(app.settings, app.retriever.embedder, uploads, app.log), box):
            yield words, [], hide
    yield done(upload_report_html(box["result"])), [], hide


def keep(pending: list[str]):
    names = ", ".join(Path(f).name for f in pending)
    return (done(f'<div class="qa-note">Kept the archive&#39;s version of {html.escape(names)}; '
                 "the uploaded one was not saved.</div>"), [], gr.update(visible=False))


def sync_folder(app: AppState):
    report = None
    try:
        for words, result in watch(lambda: sync(settings=app.settings, embedder=app.retriever.embedder, progress=True),
                                   "Reading the corpus folder"):
            if words:
                yield progress_html(words)
            else:
                report = result
    except (CorpusNotFound, MassRemoval, IndexUnusable, ValueError) as exc:
        app.log(f"sync from the page not done: {exc}")
        yield _bad(f"Not synced: {exc}")
        return
    assert report is not None  # watch's last item is the result
    app.log(f"synced from the page: {report.summary()}")
    yield done(sync_report_html(report))


def page(app: AppState, query: str, sort: str, descending: bool, offset: int):
    sort = sort if sort in SORT_KEYS else SORT_KEYS[0]
    found = app.retriever.articles(query or "", sort, bool(descending), max(0, int(offset or 0)), PAGE_SIZE)
    if found.offset and not found.rows and found.total:  # the last page emptied by a delete: go back one
        found = app.retriever.articles(query or "", sort, bool(descending),
                                   (found.total - 1) // PAGE_SIZE * PAGE_SIZE, PAGE_SIZE)
    return (articles_table(found, sort, bool(descending)), f'<div class="qa-pager-text">{pager_text(found, query)}'
            "</div>", gr.update(interactive=found.offset > 0),
            gr.update(interactive=found.offset + len(found.rows) < found.total), found.offset)


def clicked(app: AppState, evt: gr.EventData, sort: str, descending: bool):
    data = getattr(evt, "_data", None) or {}
    if data.get("sort") in SORT_KEYS:
        key = data["sort"]
        descending = (not descending) if key == sort else key in _DESCENDING_FIRST
        return key, descending, 0, gr.skip(), gr.skip(), gr.skip()
    if isinstance(data.get("open"), str):
        return (gr.skip(), gr.skip(), gr.skip(), *open_article(app, data["open"]))
    return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()


def open_article(app: AppState, article_id: str):
    article = app.retriever.article(article_id)
    if article is None:
        return _bad("That article is no longer in the archive."), None, gr.update(visible=True)
    count = file_articles(app.retriever, article.file) if article.file else 1
    return article_html(article, count), article.file, gr.update(visible=True)


def ask_delete(app: AppState, file: str | None):
    if not file:
        return gr.skip(), gr.update(visible=False)
    return delete_question(file, file_articles(app.retriever, file)), gr.update(visible=True)


def delete(app: AppState, file: str | None):
    hide = gr.update(visible=False)
    if not file:
        yield gr.skip(), hide, hide
        return
    try:
        report = None
        with claim(app.settings.corpus, [file]) as mine:
            if not mine:
                yield _bad(f"Not deleted: {file} is being changed by another upload or delete at this moment; "
                           "try again when it has finished."), hide, gr.skip()
                return
            for words, result in watch(lambda: delete_file(app.settings, app.retriever.embedder, file),
                                       f"Deleting {file}"):
                if words:
                    yield progress_html(words), hide, gr.skip()
                else:
                    report = result
    except (FileNotFoundError, IndexUnusable, ValueError, OSError) as exc:
        app.log(f"delete of {file} not done: {exc}")
        kept = "" if isinstance(exc, FileNotFoundError) else f" {file} is unchanged."
        yield _bad(f"Not deleted: {why_not(exc)}{kept}"), hide, gr.skip()
        return
    assert report is not None  # watch's last item is the result
    app.log(f"deleted {file}: {report.summary()}")
    yield done(sync_report_html(report, f"Deleted {file} from the corpus folder and the index")), hide, hide


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
        except Exception as exc:  # a full disk, a moved corpus, or a fault of ours: nothing added either way
            expected = isinstance(exc, (IndexUnusable, ValueError, OSError))
            log(f"upload not indexed: {exc}" if expected else
                "upload not indexed, a fault of the app:\n" + "".join(traceback.format_exception(exc)))
            # A fault of ours is taken back too: a saved file the index lacks would read "Already in the archive,
            # unchanged" when tried again (the soak saw it), and stay unsearchable until the next sync.
            reason = (f"not indexed: {why_not(exc)}" if expected else
                      f"not indexed: the app failed ({type(exc).__name__}); its log says where.")
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
