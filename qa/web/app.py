"""The Gradio app: the chat, its sources and the Articles tab wired to the index and the corpus folder."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a local app: no usage reports

import gradio as gr  # noqa: E402 - after the setting above

from qa.assistant import Assistant  # noqa: E402
from qa.config import DEFAULT_HOST, DEFAULT_PORT, Settings, WebSettings  # noqa: E402
from qa.indexing import CorpusNotFound, MassRemoval, sync  # noqa: E402
from qa.retriever import Retriever  # noqa: E402
from qa.store import DB_NAME, DiskFull, IndexReadOnly, IndexUnusable  # noqa: E402
from qa.web.archive import (  # noqa: E402
    MAX_UPLOAD_BYTES,
    UploadReport,
    save_upload,
    summarize_uploads,
    upload_report_html,
    withdraw,
)
from qa.web.render import (  # noqa: E402
    answer_markdown,
    chat_turns,
    escape_markdown,
    sources_group,
    sources_html,
    status_html,
)

#: Shown in the empty chat; clicking one asks it.
EXAMPLES = (
    "What ammunition was discussed?",
    "Who met in Seoul on November 27?",
    "How many troops has North Korea sent to Russia?",
)
#: Events (questions, uploads) run at once per handler, and requests that may wait in Gradio's queue.
QUEUE_CONCURRENCY = 4
QUEUE_MAX_SIZE = 128
_STREAM_PAUSE = 0.12  # seconds between streamed sentences: enough to see the answer arrive
STATIC = Path(__file__).parent / "static"


def open_assistant(settings: Settings, embedder=None, log: Callable[[str], None] | None = None) -> Assistant:
    """Bring the index in line with the corpus (a no-op when nothing changed) and open it."""
    log = log or _log
    try:
        report = sync(settings=settings, embedder=embedder)
        log(f"index {settings.index} synced with {settings.corpus}: {report.summary()}")
    except (CorpusNotFound, MassRemoval, DiskFull, IndexReadOnly) as exc:
        if not (settings.index / DB_NAME).exists():
            raise
        # The index itself is fine: serve it as it is rather than not start (the log says why it is not synced).
        log(f"index {settings.index} NOT synced with {settings.corpus}: {exc}; serving the index as it is")
    return Assistant(Retriever(settings.index, embedder))


def create_app(settings: Settings, embedder=None, assistant: Assistant | None = None,
               secret: str = WebSettings.secret) -> gr.Blocks:
    """The Gradio app over ``settings``' corpus and index; one Assistant is shared by all sessions.

    Launch it with :func:`launch` (it adds the page's style and script).
    """
    assistant = assistant or open_assistant(settings, embedder)
    retriever = assistant.retriever

    def status_and_sources():
        info = retriever.info()
        choices = [("All sources", "")] + [(s, s) for s in info.sources]
        return status_html(info), gr.update(choices=choices)

    def respond(question: str, chat: list, turns: list, groups: list, source: str, since: str, until: str,
                undated: bool = True):
        question = " ".join((question or "").split())
        if not question:
            yield "", chat, turns, groups, sources_html(groups)
            return
        chat = [*chat, {"role": "user", "content": escape_markdown(question)},
                {"role": "assistant", "content": "*Searching the articles…*"}]
        yield "", chat, turns, groups, sources_html(groups)
        try:
            answer = assistant.ask(question, history=chat_turns(turns), source=source or None,
                                   since=since or None, until=until or None, undated=bool(undated))
        except ValueError as exc:  # a bad filter value
            chat[-1] = {"role": "assistant", "content": escape_markdown(f"Cannot search: {exc}")}
            yield "", chat, turns, groups, sources_html(groups)
            return
        turn = len(groups) + 1
        groups = [*groups, sources_group(answer, turn)]
        turns = [*turns, {"role": "user", "content": question}, {"role": "assistant", "content": answer.text}]
        steps = range(1, len(answer.sentences) + 1) if not answer.abstained and answer.sentences else [None]
        for n in steps:
            if n and n > 1:
                time.sleep(_STREAM_PAUSE)
            chat[-1] = {"role": "assistant", "content": answer_markdown(answer, turn, n)}
            yield "", chat, turns, groups, sources_html(groups)

    tracker = gr.Progress(track_tqdm=True)  # shows sync's embedding progress bar on the page

    def add_articles(files: list[str] | None, progress=tracker):
        files = files or []
        if not files:
            yield upload_report_html(UploadReport()), *status_and_sources()
            return
        status_now, sources_now = status_and_sources()
        yield f'<div class="qa-progress">Checking {len(files)} file(s)…</div>', status_now, sources_now
        progress(0.05, desc=f"Checking {len(files)} file(s)")
        uploads = [save_upload(f, settings.corpus) for f in files]
        report = None
        if any(u.name and not u.existing for u in uploads):
            yield '<div class="qa-progress">Indexing…</div>', status_now, sources_now
            progress(0.2, desc="Indexing")
            try:
                report = sync(settings=settings, embedder=retriever.embedder, progress=True)
                _log(f"upload synced: {report.summary()}")
            except (IndexUnusable, ValueError) as exc:  # a full disk, a moved corpus: nothing is added, the app stays
                _log(f"upload not indexed: {exc}")
                uploads = [withdraw(u, settings.corpus, f"not indexed: {exc}") for u in uploads]
        result = summarize_uploads(uploads, report, settings.corpus)
        yield upload_report_html(result), *status_and_sources()

    def pick_example(evt: gr.SelectData) -> str:
        return evt.value["text"] if isinstance(evt.value, dict) else str(evt.value)

    def ask(question: str, history: list[dict] | None = None, source: str | None = None, since: str | None = None,
            until: str | None = None, undated: bool = True) -> dict:
        """Answer a question from the news articles: the answer text and its numbered citations.

        ``source``, ``since`` and ``until`` (YYYY-MM-DD) narrow the search; ``undated``: whether articles
        without a date are kept when a date range is given.
        """
        try:
            answer = assistant.ask(question, history=chat_turns(history), source=source or None,
                                   since=since or None, until=until or None, undated=undated is not False)
        except ValueError as exc:
            raise gr.Error(str(exc)) from None
        return answer.to_dict()

    with gr.Blocks(title="News archive Q&A") as app:
        with gr.Row(elem_id="qa-header"):
            gr.HTML('<h1 class="qa-h1">News archive Q&amp;A</h1>'
                    '<p class="qa-sub">Answers quote the articles; every sentence is cited.</p>', js_on_load=None)
            status = gr.HTML(status_html(retriever.info()), elem_id="qa-status", js_on_load=None)
        with gr.Tabs():
            with gr.Tab("Ask", id="ask"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=420):
                        chatbot = gr.Chatbot(
                            elem_id="qa-chat", height="calc(100vh - 320px)", min_height=320, show_label=False,
                            sanitize_html=True, allow_tags=False, latex_delimiters=[], feedback_options=None,
                            buttons=[],
                            placeholder="**Ask about the news articles.** Answers quote the articles and cite "
                                        "them with numbered markers.",
                            examples=[{"text": q} for q in EXAMPLES])
                        with gr.Row(elem_id="qa-ask-row"):
                            question = gr.Textbox(placeholder="Ask a question, e.g. What ammunition was discussed?",
                                                  show_label=False, scale=6, elem_id="qa-question", max_lines=3,
                                                  autofocus=True)
                            send = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="qa-send")
                        with gr.Accordion("Filters", open=False, elem_id="qa-filters"):
                            with gr.Row():
                                source = gr.Dropdown(label="Source", choices=[("All sources", "")], value="",
                                                     scale=2)
                                since = gr.Textbox(label="From date", placeholder="YYYY-MM-DD", scale=1)
                                until = gr.Textbox(label="To date", placeholder="YYYY-MM-DD", scale=1)
                                undated = gr.Checkbox(label="Include undated articles", value=True, scale=1,
                                                      elem_id="qa-undated")
                    with gr.Column(scale=2, min_width=320):
                        sources = gr.HTML(sources_html([]), elem_id="qa-sources", js_on_load=None)
            with gr.Tab("Articles", id="articles"):
                gr.HTML('<p class="qa-sub">Add news articles to the archive: Markdown or text (with optional '
                        "front matter: title, date, source, url), HTML pages, or JSON / JSON Lines records with a "
                        f"<code>text</code> field. Up to {MAX_UPLOAD_BYTES // 2**20} MB per file. They are saved "
                        "in the corpus folder and indexed at once.</p>", js_on_load=None)
                upload = gr.File(label="Upload articles (.md .txt .html .htm .json .jsonl)", file_count="multiple",
                                 elem_id="qa-upload", height=140)
                upload_result = gr.HTML("", elem_id="qa-upload-result", js_on_load=None)

        turns = gr.State([])
        groups = gr.State([])
        chat_io = dict(inputs=[question, chatbot, turns, groups, source, since, until, undated],
                       outputs=[question, chatbot, turns, groups, sources], api_visibility="private")
        question.submit(respond, **chat_io)
        send.click(respond, **chat_io)
        chatbot.example_select(pick_example, None, question, api_visibility="private").then(respond, **chat_io)
        chatbot.clear(lambda: ([], [], sources_html([])), None, [turns, groups, sources], api_visibility="private")
        upload.upload(add_articles, upload, [upload_result, status, source], api_visibility="private").then(
            lambda: None, None, upload, api_visibility="private")
        app.load(status_and_sources, None, [status, source], api_visibility="private")
        gr.api(ask, api_name="ask")
    # Chosen on purpose (BENCHMARKS.md, "Load"): the work of an answer is serialized by the Assistant's locks
    # anyway, so a few events at a time only let streamed answers' pauses and HTTP overlap, not CPU work;
    # a bounded queue tells the 129th waiting request "queue full" instead of letting waits grow without end.
    app.queue(default_concurrency_limit=QUEUE_CONCURRENCY, max_size=QUEUE_MAX_SIZE)
    return app


def theme() -> gr.themes.Base:
    """Soft colours with the system's fonts (nothing fetched from the network)."""
    return gr.themes.Soft(font=("ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "sans-serif"),
                          font_mono=("ui-monospace", "SFMono-Regular", "Menlo", "monospace"))



def launch(app, host: str = DEFAULT_HOST, port: int | None = DEFAULT_PORT, auth: tuple[str, str] | None = None,
           prevent_thread_lock: bool = False, quiet: bool = False) -> str:
    """Serve ``app`` (from :func:`create_app`) with its style and script; returns the local URL.

    :class:`qa.guard.Guard` limits request sizes and slows down repeated failed logins, per client."""
    from starlette.middleware import Middleware

    from qa.guard import Guard

    css = (STATIC / "style.css").read_text(encoding="utf-8")
    head = f"<script>{(STATIC / 'app.js').read_text(encoding='utf-8')}</script>"
    _, url, _ = app.launch(server_name=host, server_port=port, auth=auth, prevent_thread_lock=prevent_thread_lock,
                           quiet=quiet, theme=theme(), css=css, head=head, max_file_size=MAX_UPLOAD_BYTES,
                           footer_links=["api"], show_error=True, share=False, ssr_mode=False,
                           app_kwargs={"middleware": [Middleware(Guard)]})
    return url


def _log(message: str) -> None:
    print(f"qa web: {message}", file=sys.stderr, flush=True)
