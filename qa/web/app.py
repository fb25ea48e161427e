"""The Gradio app: the chat, its sources and the Articles tab wired to the index and the corpus folder."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a local app: no usage reports

import gradio as gr  # noqa: E402 - after the setting above

from qa import checks  # noqa: E402
from qa.answer import QUOTES, QUOTES_AUTHOR, WRITTEN, Answer, Checked, Quoted, Token, written_by  # noqa: E402
from qa.assistant import Assistant, assemble  # noqa: E402
from qa.config import DEFAULT_HOST, DEFAULT_PORT, Settings, WebSettings  # noqa: E402
from qa.errors import DiskFull, IndexReadOnly, IndexUnusable  # noqa: E402
from qa.filters import FilterError, Filters  # noqa: E402
from qa.indexing import CorpusNotFound, MassRemoval, sync  # noqa: E402
from qa.listing import PAGE_SIZE, SORT_KEYS  # noqa: E402
from qa.metadata import repair  # noqa: E402
from qa.web import archive_tab, chats  # noqa: E402
from qa.web.archive import MAX_UPLOAD_BYTES, safe_name  # noqa: E402
from qa.web.render import (  # noqa: E402
    answer_markdown,
    chat_turns,
    escape_markdown,
    filter_message,
    filters_label,
    sources_group,
    sources_html,
    status_html,
    writing_markdown,
)

#: Shown in the empty chat; clicking one asks it.
EXAMPLES = (
    "What ammunition was discussed?",
    "Who met in Seoul on November 27?",
    "How many troops has North Korea sent to Russia?",
)
#: Events (questions, uploads) run at once per handler, and requests that may wait in Gradio's queue.
QUEUE_CONCURRENCY = 4
#: The most passages one /search call returns.
MAX_K = 50
QUEUE_MAX_SIZE = 128
#: Visitors' sessions (Gradio's per-session state: about 140 KB each here) kept in memory, the least recently
#: used dropped first. Gradio keeps 10,000: 10,000 API calls (each a new session) grew the app by 1.4-2 GB.
#: A dropped session loses only its page state (a pending Replace question, the list's page); chats are kept
#: in the browser.
SESSIONS_KEPT = 1000
_STREAM_PAUSE = 0.12  # seconds between streamed sentences: enough to see the answer arrive
STATIC = Path(__file__).parent / "static"
#: What the "Delete chat" confirm dialog sends for Cancel.
CANCELLED = "qa-cancelled"


def open_assistant(settings: Settings, embedder=None, log: Callable[[str], None] | None = None) -> Assistant:
    """Bring the index in line with the corpus (a no-op when nothing changed) and open it."""
    log = log or _log

    def opened() -> Assistant:
        return assemble(settings, embedder=embedder)

    try:
        report = sync(settings=settings, embedder=embedder)
        log(f"index {settings.index} synced with {settings.corpus}: {report.summary()}")
    except (CorpusNotFound, MassRemoval, DiskFull, IndexReadOnly) as exc:
        try:
            assistant = opened()
        except IndexUnusable:
            raise exc from None
        # The index itself is fine: serve it as it is rather than not start (the log says why it is not synced).
        log(f"index {settings.index} NOT synced with {settings.corpus}: {exc}; serving the index as it is")
        return assistant
    return opened()


def create_app(settings: Settings, embedder=None, assistant: Assistant | None = None,
               secret: str = WebSettings.secret) -> gr.Blocks:
    """The Gradio app over ``settings``' corpus and index; one Assistant is shared by all sessions.

    ``secret`` encrypts the chats each browser keeps (:mod:`qa.web.chats`). Launch the app with :func:`launch`
    (it adds the page's style and script).
    """
    assistant = assistant or open_assistant(settings, embedder)
    retriever = assistant.retriever

    def status_and_sources():
        choices = [("All sources", "")] + [(s, s) for s in retriever.sources()]
        return status_html(retriever.info()), gr.update(choices=choices)

    def name_model(chosen: str):
        """The answer switch with the model's name as the endpoint gives it (the choice the reader made kept)."""
        name = assistant.writer.model_name() if assistant.writer is not None else None
        # Only the label changes: a question sent before this update arrives still carries a valid value.
        return gr.update(choices=_authors(name), value=chosen) if name else gr.skip()

    def respond(question: str, store: dict, source: str, since: str | None, until: str | None, undated: bool,
                author: str = QUOTES):
        """Stream the answer to ``question`` into the current chat; yields the page's outputs as it goes (a
        partial answer at each step), saving the chat in the browser once the answer is known."""
        store = chats.clean(store)
        messages, groups, turns = chats.view(chats.answers(store))
        question = " ".join(repair(question or "").split())  # a lone surrogate could not be sent to the page
        busy, idle = _busy(True), _busy(False)
        if not question:
            yield "", messages, sources_html(groups), gr.skip(), *idle, gr.skip(), gr.skip()
            return
        asked = [*messages, {"role": "user", "content": escape_markdown(question)}]
        yield "", [*asked, {"role": "assistant", "content": "*Searching the articles…*"}], sources_html(groups), \
            gr.skip(), *busy, gr.skip(), gr.skip()
        turn = len(groups) + 1
        try:
            events = assistant.stream(question, history=chat_turns(turns), source=source or None,
                                      since=since or None, until=until or None, undated=bool(undated),
                                      quotes=author == QUOTES)
            quoted, written, checked = None, "", []
            for event in events:
                if isinstance(event, Answer):
                    answer = event
                    continue
                if isinstance(event, Quoted):  # the quotes at once, saved: Stop keeps them
                    quoted = event.answer
                    kept = chats.add_answer(store, chats.compact(quoted))
                    yield ("", [*asked, {"role": "assistant", "content": writing_markdown(quoted, turn)}],
                           sources_html([*groups, sources_group(quoted, turn)]), kept, *busy,
                           gr.update(choices=chats.choices(kept), value=kept["current"]), True)
                    continue
                if isinstance(event, Token):  # the model's words as they arrive, checked once it has done
                    written += event.text
                elif isinstance(event, Checked):
                    checked.append(event)
                if quoted is None:  # an answerer that streams without quotes first
                    content = escape_markdown(written) + " ▍"
                else:
                    content = writing_markdown(quoted, turn, written, checked)
                yield "", [*asked, {"role": "assistant", "content": content}], gr.skip(), gr.skip(), *busy, \
                    gr.skip(), gr.skip()
        except ValueError as exc:  # a bad filter value: said in the chat with the form's words, not saved
            note = {"role": "assistant", "content": escape_markdown(f"Cannot search: {exc}")}
            yield "", [*asked, note], sources_html(groups), gr.skip(), *idle, gr.skip(), False
            return
        store = chats.add_answer(store, chats.compact(answer))  # in the place of the quotes saved before it
        listed = gr.update(choices=chats.choices(store), value=store["current"])
        groups = [*groups, sources_group(answer, turn)]
        steps = range(1, len(answer.sentences) + 1) if not answer.abstained and answer.sentences else [None]
        for n in steps:
            if n and n > 1:
                time.sleep(_STREAM_PAUSE)
            last = n is None or n == len(answer.sentences)
            # The store goes with every step: Gradio may merge the steps of a fast stream into its last one.
            yield ("", [*asked, {"role": "assistant", "content": answer_markdown(answer, turn, n)}],
                   sources_html(groups), store, *(idle if last else busy), listed, False)

    def stopped(store: dict, writing: bool):
        """Stop: the buttons back; a written answer cut short leaves its quotes (the chat as saved), an answer
        whose sentences were being shown stays as far as it got."""
        ask_button, stop_button, again_button = _busy(False)
        kept = show(store) if writing else (gr.skip(),) * 4 + (again_button,)  # shown: chat ... Ask again
        return ask_button, stop_button, *kept, False

    def again(store: dict):
        store, question = chats.drop_last(store)
        return store, question or ""

    def show(store: dict):
        """The current chat drawn again from the store (on load, and after choosing a chat)."""
        store = chats.clean(store)
        messages, groups, _ = chats.view(chats.answers(store))
        chat = chats.current(store)
        return (messages, sources_html(groups), gr.update(choices=chats.choices(store), value=store["current"]),
                (chat or {}).get("title", ""), gr.update(interactive=bool(messages)))

    def choose(chat_id: str, store: dict):
        store = chats.clean(store)
        if any(c["id"] == chat_id for c in store["chats"]):
            store = {**store, "current": chat_id}
        return store, *show(store)

    def export(store: dict):
        store = chats.clean(store)
        chat = chats.current(store)
        if chat is None:
            return gr.update(value=None, visible=False)
        title = str(chat.get("title") or "chat")
        folder = Path(tempfile.mkdtemp(prefix="qa-chat-"))  # Gradio serves it once, as a download
        path = folder / (safe_name(title.replace(" ", "-"))[:60] + ".md")
        path.write_text(chats.export_markdown(title, chats.answers(store)), encoding="utf-8")
        return gr.update(value=str(path), visible=True)

    def check_filters(source: str, since: str | None, until: str | None, undated: bool):
        """The Filters bar's badge, and what is wrong with a value as the form names it."""
        try:
            parsed = Filters.parse(source or None, since or None, until or None, bool(undated))
        except FilterError as exc:
            return gr.update(label="Filters · check the dates"), filter_message(str(exc))
        return gr.update(label=filters_label(parsed)), ""

    def ask(question: str, history: list[dict] | None = None, source: str | None = None, since: str | None = None,
            until: str | None = None, undated: bool = True) -> dict:
        """Answer a question from the news articles: the answer text and its numbered citations.

        ``source``, ``since`` and ``until`` (YYYY-MM-DD) narrow the search; ``undated``: whether articles
        without a date are kept when a date range is given.
        """
        try:
            question = checks.text(question, "question", EXAMPLES[0], required=True)
            turns = chat_turns(checks.history(history))
            answer = assistant.ask(question, history=turns, source=_optional(source, "source", "Wire"),
                                   since=_optional(since, "since", "2024-11-27"),
                                   until=_optional(until, "until", "2024-11-30"), undated=undated is not False)
        except ValueError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        return answer.to_dict()

    def search(query: str, k: int = 5, source: str | None = None, since: str | None = None,
               until: str | None = None, undated: bool = True, mode: str = "hybrid") -> list[dict]:
        """The ``k`` passages most relevant to ``query`` (best first; ``k`` from 1 to 50), with their articles'
        metadata.

        Filters as for /ask; ``mode``: "hybrid", "dense" or "bm25".
        """
        try:
            query = checks.text(query, "query", EXAMPLES[0], required=True)
            passages = retriever.search(query, k=checks.whole(k, "k", 5, 1, MAX_K), mode=mode,
                                        source=_optional(source, "source", "Wire"),
                                        since=_optional(since, "since", "2024-11-27"),
                                        until=_optional(until, "until", "2024-11-30"), undated=undated is not False)
        except ValueError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        return [asdict(p) for p in passages]

    def articles(query: str = "", sort: str = SORT_KEYS[0], descending: bool = True, offset: int = 0,
                 limit: int = PAGE_SIZE) -> dict:
        """A page of the archive's articles: ``{"rows": [...], "total": n, "offset": o}``.

        ``query`` keeps titles, sources or files that contain it; ``sort`` is one of date, title, source,
        file, chunks, indexed_at; ``limit`` is at most 500.
        """
        try:
            page = retriever.articles(query, sort, descending is not False, offset, limit)
        except ValueError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        return {"rows": [asdict(r) for r in page.rows], "total": page.total, "offset": page.offset}

    private: dict[str, Any] = dict(api_visibility="private")
    # No spinner over the header or the filters.
    quiet: dict[str, Any] = dict(api_visibility="private", show_progress="hidden")
    with gr.Blocks(title="News archive Q&A") as app:
        store = gr.BrowserState(chats.EMPTY_STORE, storage_key="qa-chats", secret=secret)
        with gr.Sidebar(label="Chats", open=False, elem_id="qa-sidebar", width=280):
            new_button = gr.Button("New chat", variant="primary", size="sm", elem_id="qa-new-chat")
            chat_list = gr.Radio(label="Past chats (kept in this browser)", choices=[], elem_id="qa-chats")
            title_box = gr.Textbox(label="Name of this chat", elem_id="qa-chat-title", max_lines=1)
            with gr.Row():
                rename_button = gr.Button("Rename", size="sm", elem_id="qa-rename")
                delete_button = gr.Button("Delete chat", size="sm", variant="stop", elem_id="qa-delete-chat")
            export_button = gr.Button("Export as Markdown", size="sm", elem_id="qa-export")
            export_file = gr.File(label="The chat, with its citations", visible=False, elem_id="qa-export-file")
        with gr.Row(elem_id="qa-header"):
            gr.HTML('<h1 class="qa-h1">News archive Q&amp;A</h1>'
                    '<p class="qa-sub">Answers quote the articles; every sentence is cited.</p>', js_on_load=None)
            status = gr.HTML(status_html(retriever.info()), elem_id="qa-status", js_on_load=None)
        with gr.Tabs():
            with gr.Tab("Ask", id="ask"):
                with gr.Row(equal_height=False, elem_id="qa-ask-tab"):
                    with gr.Column(scale=3, min_width=300, elem_id="qa-chat-col"):
                        chatbot = gr.Chatbot(
                            elem_id="qa-chat", height="calc(100vh - 330px)", min_height=300, show_label=False,
                            sanitize_html=True, allow_tags=False, latex_delimiters=[], feedback_options=None,
                            buttons=[],
                            placeholder="**Ask about the news articles.** Answers quote the articles and cite "
                                        "them with numbered markers. Try one of these:",
                            examples=[{"text": q} for q in EXAMPLES])
                        with gr.Row(elem_id="qa-ask-row"):
                            question = gr.Textbox(placeholder="Ask a question", show_label=False, scale=6,
                                                  elem_id="qa-question", max_lines=3, autofocus=True, min_width=160)
                            send = gr.Button("Ask", variant="primary", scale=1, min_width=64, elem_id="qa-send")
                            stop = gr.Button("Stop", variant="stop", scale=1, min_width=64, visible=False,
                                             elem_id="qa-stop")
                            again_button = gr.Button("Ask again", scale=1, min_width=64, interactive=False,
                                                     elem_id="qa-again")
                        # Configuring QA_LLM_URL turns written answers on; the reader can still ask for quotes.
                        # The model is named as configured here, and as the endpoint lists it once the page loads
                        # (an endpoint that is down must not delay the app's start).
                        author = gr.Radio(_authors(configured_model(assistant)),
                                          value=WRITTEN if assistant.writes else QUOTES, label="Answers",
                                          visible=assistant.writes, elem_id="qa-author",
                                          info="Quotes are exact sentences; a written answer keeps only sentences "
                                               "its citations support.")
                        with gr.Accordion("Filters", open=False, elem_id="qa-filters") as filters_box:
                            with gr.Row():
                                source = gr.Dropdown(label="Source", choices=[("All sources", "")], value="",
                                                     scale=2, elem_id="qa-source", min_width=160)
                                since = gr.DateTime(label="From date", include_time=False, type="string", scale=1,
                                                    elem_id="qa-since")
                                until = gr.DateTime(label="To date", include_time=False, type="string", scale=1,
                                                    elem_id="qa-until")
                            with gr.Row():
                                undated = gr.Checkbox(label="Include undated articles", value=True, scale=2,
                                                      elem_id="qa-undated")
                                clear = gr.Button("Clear filters", size="sm", scale=1, elem_id="qa-clear-filters")
                            filter_note = gr.HTML("", elem_id="qa-filter-note", js_on_load=None)
                    with gr.Column(scale=2, min_width=300, elem_id="qa-sources-col"):
                        sources = gr.HTML(sources_html([]), elem_id="qa-sources", js_on_load=None)
                gr.HTML('<button type="button" id="qa-sources-toggle" aria-controls="qa-sources-col">Sources'
                        "</button>", js_on_load=None, elem_id="qa-sources-toggle-box")
            with gr.Tab("Articles", id="articles"):
                listing = archive_tab.build(settings, retriever, status_and_sources, [status, source])

        buttons = [send, stop, again_button]
        asking = [question, store, source, since, until, undated, author]  # respond's inputs, then its outputs
        writing = gr.State(False)  # a model is writing: the chat shows quotes (saved) and the words as they come
        answering = [question, chatbot, sources, store, *buttons, chat_list, writing]
        answered = gr.on([question.submit, send.click], respond, asking, answering, trigger_mode="once", **private)
        picked = chatbot.example_select(pick_example, None, question, **private).then(
            respond, asking, answering, **private)
        asked_again = again_button.click(again, store, [store, question], **private).then(
            respond, asking, answering, **private)
        shown = [chatbot, sources, chat_list, title_box, again_button]
        stop.click(stopped, [store, writing], [send, stop, *shown, writing], cancels=[answered, picked, asked_again],
                   **private)
        chat_list.input(choose, [chat_list, store], [store, *shown], **private)
        new_button.click(chats.new_chat, store, store, **private).then(show, store, shown, **private)
        rename_button.click(chats.rename, [store, title_box], store, **private).then(show, store, shown, **private)
        title_box.submit(chats.rename, [store, title_box], store, **private).then(show, store, shown, **private)
        delete_button.click(delete_chat, store, store, js="(s) => confirm('Delete this chat from this browser?') "
                            f"? s : '{CANCELLED}'", **private).then(show, store, shown, **private)
        export_button.click(export, store, export_file, **private)
        for box in (source, since, until, undated):
            box.change(check_filters, [source, since, until, undated], [filters_box, filter_note], **quiet)
        clear.click(lambda: ("", None, None, True), None, [source, since, until, undated], **private)
        app.load(show, store, shown, **quiet).then(status_and_sources, None, [status, source], **quiet).then(
            **listing)
        if assistant.writes:
            app.load(name_model, author, author, **quiet)
        gr.api(ask, api_name="ask")
        gr.api(search, api_name="search")
        gr.api(articles, api_name="articles")
    # Chosen on purpose (BENCHMARKS.md, "Load"): the work of an answer is serialized by the Assistant's locks
    # anyway, so a few events at a time only let streamed answers' pauses and HTTP overlap, not CPU work;
    # a bounded queue tells the 129th waiting request "queue full" instead of letting waits grow without end.
    app.queue(default_concurrency_limit=QUEUE_CONCURRENCY, max_size=QUEUE_MAX_SIZE)
    return app


def _optional(value: object, name: str, example: str) -> str | None:
    """An optional text parameter of the API: None when empty; a BadRequest when it is not text."""
    return checks.text(value, name, example) or None


def configured_model(assistant: Assistant) -> str | None:
    """The writing model's name as configured (``QA_LLM_MODEL``), without asking its endpoint."""
    return assistant.writer.endpoint.model if assistant.writer is not None else None


def _authors(model: str | None) -> list[tuple[str, str]]:
    """The answer switch's choices: what the reader sees, and the value an answer is asked with."""
    return [(QUOTES_AUTHOR, QUOTES), (written_by(model), WRITTEN)]


def delete_chat(store: dict | str | None):
    """The "Delete chat" button: the current chat out of ``store``. The page's confirm dialog sends
    :data:`CANCELLED` when the reader pressed Cancel: then nothing changes. (It once sent null, which Gradio
    hands over as the empty store, so Cancel stored no chats at all.)"""
    return gr.skip() if store is None or store == CANCELLED else chats.delete(store)


def pick_example(evt: gr.SelectData) -> str:
    return evt.value["text"] if isinstance(evt.value, dict) else str(evt.value)


def _busy(busy: bool) -> tuple:
    """The Ask, Stop and Ask again buttons while an answer is pending (``busy``) or not."""
    return (gr.update(interactive=not busy, visible=not busy), gr.update(visible=busy),
            gr.update(interactive=not busy))


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


def _log(message: str) -> None:
    print(f"qa web: {message}", file=sys.stderr, flush=True)
