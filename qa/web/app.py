"""The Gradio app: :func:`create_app` puts the parts together, :func:`launch` serves it.

Where things are, for a newcomer:

- :mod:`qa.web.startup`: what runs once at start (the index synced and opened, the corpus folder recovered);
- :mod:`qa.web.layout` and :mod:`qa.web.archive_layout`: the components, where they sit;
- :mod:`qa.web.handlers` and :mod:`qa.web.archive_tab`: what the events do, plain functions of the app's
  state (:mod:`qa.web.state`);
- this module: which event calls which handler, with which inputs and outputs; :mod:`qa.web.api`: the HTTP API;
- ``static/style.css`` and ``static/app.js``: the page's look and its few scripts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a local app: no usage reports

import gradio as gr  # noqa: E402 - after the setting above

from qa.assistant import Assistant  # noqa: E402
from qa.config import DEFAULT_HOST, DEFAULT_PORT, Settings, WebSettings  # noqa: E402
from qa.web import api, archive_layout, chats, handlers, layout  # noqa: E402
from qa.web.api import EXAMPLES, MAX_K  # noqa: E402, F401 - the API's, named here as before
from qa.web.archive import MAX_UPLOAD_BYTES  # noqa: E402
from qa.web.handlers import CANCELLED, configured_model, delete_chat, pick_example  # noqa: E402, F401
from qa.web.startup import open_assistant, start  # noqa: E402, F401
from qa.web.state import AppState, bind, log  # noqa: E402

#: Events (questions, uploads) run at once per handler, and requests that may wait in Gradio's queue.
QUEUE_CONCURRENCY = 4
QUEUE_MAX_SIZE = 128
#: Visitors' sessions (Gradio's per-session state: about 140 KB each here) kept in memory, the least recently
#: used dropped first. Gradio keeps 10,000: 10,000 API calls (each a new session) grew the app by 1.4-2 GB.
#: A dropped session loses only its page state (a pending Replace question, the list's page); chats are kept
#: in the browser.
SESSIONS_KEPT = 1000
STATIC = Path(__file__).parent / "static"
_log = log


def create_app(settings: Settings, embedder=None, assistant: Assistant | None = None,
               secret: str = WebSettings.secret) -> gr.Blocks:
    """The Gradio app over ``settings``' corpus and index; one Assistant is shared by all sessions.

    ``secret`` encrypts the chats each browser keeps (:mod:`qa.web.chats`). Launch the app with :func:`launch`
    (it adds the page's style and script).
    """
    state = start(settings, embedder, assistant)
    refresh = bind(handlers.status_and_sources, state)
    with api.Blocks(title="News archive Q&A") as app:  # API calls may leave out newer parameters
        listing: dict = {}
        page = layout.build(state, secret, lambda p: listing.update(
            archive_layout.build(state, refresh, [p.status, p.source])))
        wire(state, page, refresh, listing, app)
        api.register(state)
    # Chosen on purpose (BENCHMARKS.md, "Load"): the work of an answer is serialized by the Assistant's locks
    # anyway, so a few events at a time only let streamed answers' pauses and HTTP overlap, not CPU work;
    # a bounded queue tells the 129th waiting request "queue full" instead of letting waits grow without end.
    app.queue(default_concurrency_limit=QUEUE_CONCURRENCY, max_size=QUEUE_MAX_SIZE)
    return app


def wire(state: AppState, p: layout.Page, refresh, listing: dict, app: gr.Blocks) -> None:
    """The chat page's events: which handler each one calls, with which inputs and outputs."""
    private: dict[str, Any] = dict(api_visibility="private")
    # No spinner over the header or the filters.
    quiet: dict[str, Any] = dict(api_visibility="private", show_progress="hidden")
    respond = bind(handlers.respond, state)
    store = p.store
    buttons = [p.send, p.stop, p.again_button]
    asking = [p.question, store, p.source, p.since, p.until, p.undated, p.time_words, p.author]  # respond's inputs
    answering = [p.question, p.chatbot, p.sources, store, *buttons, p.chat_list, p.writing]  # ... its outputs
    answered = gr.on([p.question.submit, p.send.click], respond, asking, answering, trigger_mode="once", **private)
    picked = p.chatbot.example_select(pick_example, None, p.question, **private).then(
        respond, asking, answering, **private)
    asked_again = p.again_button.click(handlers.again, store, [store, p.question], **private).then(
        respond, asking, answering, **private)
    shown = [p.chatbot, p.sources, p.chat_list, p.title_box, p.again_button]
    p.stop.click(handlers.stopped, [store, p.writing], [p.send, p.stop, *shown, p.writing],
                 cancels=[answered, picked, asked_again], **private)
    p.chat_list.input(handlers.choose, [p.chat_list, store], [store, *shown], **private)
    p.new_button.click(chats.new_chat, store, store, **private).then(handlers.show, store, shown, **private)
    p.rename_button.click(chats.rename, [store, p.title_box], store, **private).then(
        handlers.show, store, shown, **private)
    p.title_box.submit(chats.rename, [store, p.title_box], store, **private).then(
        handlers.show, store, shown, **private)
    p.delete_button.click(delete_chat, store, store, js="(s) => confirm('Delete this chat from this browser?') "
                          f"? s : '{CANCELLED}'", **private).then(handlers.show, store, shown, **private)
    p.export_button.click(handlers.export, store, p.export_file, **private)
    p.feedback_button.click(handlers.export_feedback, store, p.feedback_file, **private)
    p.sources.click(handlers.feedback, store, store, **private)
    filters = [p.source, p.since, p.until, p.undated, p.time_words]
    badge = [p.filters_box, p.filter_note]
    for box in filters:  # one at a time, the last change's values winning: the badge never shows older ones
        box.change(handlers.check_filters, filters, badge, concurrency_id="filters", concurrency_limit=1,
                   trigger_mode="always_last", **quiet)
    # quiet: a pending Clear must not write Gradio's "queue: 1/1" status into the filters' note.
    p.clear.click(lambda: ("", None, None, True, True, gr.update(label="Filters"), ""), None, [*filters, *badge],
                  **quiet)
    app.load(handlers.show, store, shown, **quiet).then(refresh, None, [p.status, p.source], **quiet).then(
        **listing)
    if state.assistant.writes:
        app.load(bind(handlers.name_model, state), p.author, p.author, **quiet)


def theme() -> gr.themes.Base:
    """Soft colours with the system's fonts (nothing fetched from the network)."""
    return gr.themes.Soft(font=("ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "sans-serif"),
                          font_mono=("ui-monospace", "SFMono-Regular", "Menlo", "monospace"))


def launch(app, host: str = DEFAULT_HOST, port: int | None = DEFAULT_PORT, auth: tuple[str, str] | None = None,
           prevent_thread_lock: bool = False, quiet: bool = False, trusted_proxies: str = "") -> str:
    """Serve ``app`` (from :func:`create_app`) with its style and script; returns the local URL.

    :class:`qa.guard.Guard` limits request sizes and slows down repeated failed logins, per client: the address
    that connected, unless it is one of ``trusted_proxies`` (``QA_TRUSTED_PROXIES``), whose X-Forwarded-For
    header then names the client. Without that, any local program could name itself a new client per try."""
    from starlette.middleware import Middleware

    from qa.guard import Guard

    # uvicorn, under Gradio, believes X-Forwarded-For from the addresses in FORWARDED_ALLOW_IPS (loopback by
    # default) and rewrites the client's address before the Guard sees it; it reads the variable at launch.
    os.environ["FORWARDED_ALLOW_IPS"] = trusted_proxies
    css = (STATIC / "style.css").read_text(encoding="utf-8")
    head = f"<script>{(STATIC / 'app.js').read_text(encoding='utf-8')}</script>"
    _, url, _ = app.launch(server_name=host, server_port=port, auth=auth, prevent_thread_lock=prevent_thread_lock,
                           quiet=quiet, theme=theme(), css=css, head=head, max_file_size=MAX_UPLOAD_BYTES,
                           footer_links=["api"], show_error=True, share=False, ssr_mode=False,
                           state_session_capacity=SESSIONS_KEPT,
                           app_kwargs={"middleware": [Middleware(Guard)]})
    return url

