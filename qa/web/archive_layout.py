"""The Articles tab's layout and events: its components, wired to the handlers of :mod:`qa.web.archive_tab`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from qa.corpus import SUPPORTED_EXTENSIONS
from qa.listing import PAGE_SIZE, SORT_KEYS
from qa.web import archive_tab as tab
from qa.web.archive import MAX_UPLOAD_BYTES
from qa.web.render import COLUMNS
from qa.web.state import AppState, bind

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


def build(app: AppState, refresh: Callable, refreshed: list) -> dict:
    """The tab's components and events, inside the Blocks being built; ``refresh()`` gives new values for the
    ``refreshed`` components (the status line, the source filter) after the archive changed. Returns the
    listing event's arguments (for the page's load event)."""
    gr.HTML('<p class="qa-sub">The articles of the archive. Add Markdown or text files (with optional front '
            "matter: title, date, source, url), HTML pages, or JSON / JSON Lines records with a <code>text</code> "
            f"field, up to {MAX_UPLOAD_BYTES // 2**20} MB per file: they are saved in the corpus folder and indexed "
            "at once. A file whose name is already in the archive replaces it, after you confirm.</p>",
            js_on_load=None)
    with gr.Row(equal_height=False, elem_id="qa-archive-actions"):
        upload = gr.File(label="Upload articles (.md .txt .html .htm .json .jsonl)", file_count="multiple",
                         elem_id="qa-upload", height=120, scale=4, file_types=list(SUPPORTED_EXTENSIONS))
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

    listing: dict[str, Any] = dict(fn=bind(tab.page, app), inputs=[query, sort, descending, offset],
                   outputs=[table, pager, previous, following, offset], **_PRIVATE)
    first_page: dict[str, Any] = dict(fn=lambda q, s, d: tab.page(app, q, s, d, 0), inputs=[query, sort, descending],
                      outputs=listing["outputs"], **_PRIVATE)
    after_change: dict[str, Any] = dict(fn=refresh, outputs=refreshed, **_PRIVATE)

    upload.upload(bind(tab.add, app), upload, [result, pending, replace_row], **_PRIVATE).then(
        lambda: None, None, upload, **_PRIVATE).then(**listing).then(**after_change)
    replace_button.click(bind(tab.replace, app), pending, [result, pending, replace_row], **_PRIVATE).then(
        **listing).then(**after_change)
    keep_button.click(tab.keep, pending, [result, pending, replace_row], **_PRIVATE)
    sync_button.click(bind(tab.sync_folder, app), None, result, **_PRIVATE).then(**listing).then(**after_change)
    query.change(**first_page, trigger_mode="always_last")
    for control in (sort, descending):
        control.input(**first_page)
    previous.click(lambda o: max(0, o - PAGE_SIZE), offset, offset, **_PRIVATE).then(**listing)
    following.click(lambda o: o + PAGE_SIZE, offset, offset, **_PRIVATE).then(**listing)
    table.click(bind(tab.clicked, app), [sort, descending], [sort, descending, offset, reader, opened, reader_box],
                **_PRIVATE).then(**listing)
    close_button.click(lambda: (gr.update(visible=False), gr.update(visible=False)), None,
                       [reader_box, delete_box], **_PRIVATE)
    delete_button.click(bind(tab.ask_delete, app), opened, [delete_text, delete_box], **_PRIVATE)
    cancel_button.click(lambda: gr.update(visible=False), None, delete_box, **_PRIVATE)
    confirm_button.click(bind(tab.delete, app), opened, [result, delete_box, reader_box], **_PRIVATE).then(
        **listing).then(**after_change)
    return listing
