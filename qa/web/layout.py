"""The chat page's layout: the components, where they sit and how they look, without any behaviour.

:func:`build` makes them inside the Blocks being built and returns them by name (:class:`Page`);
:mod:`qa.web.app` wires their events to :mod:`qa.web.handlers`. The Articles tab is :mod:`qa.web.archive_layout`.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import gradio as gr

from qa.answer import QUOTES, WRITTEN
from qa.web import chats
from qa.web.api import EXAMPLES
from qa.web.handlers import authors, configured_model
from qa.web.render import TIME_WORDS, sources_html, status_html
from qa.web.state import AppState

Page = SimpleNamespace  # the page's components, by the names below
#: A Feedback button under Sources: its verdict sent to the server (Copy buttons are handled by app.js).
FEEDBACK_JS = """
element.addEventListener('click', (event) => {
  const button = event.target.closest('[data-feedback]');
  if (!button) return;
  const on = button.getAttribute('aria-pressed') !== 'true';  // shown at once; the same verdict again takes it back
  button.parentElement.querySelectorAll('[data-feedback]').forEach((b) => b.setAttribute('aria-pressed', 'false'));
  button.setAttribute('aria-pressed', String(on));
  trigger('click', {turn: Number(button.dataset.turn), verdict: button.dataset.feedback});
});
"""


def build(app: AppState, secret: str, articles: Callable[[Page], None]) -> Page:
    """The sidebar of chats, the header and the Ask tab's components; ``articles(page)`` makes the Articles
    tab's inside that tab (it needs the header's status and the Source filter)."""
    p = Page()
    p.store = gr.BrowserState(chats.EMPTY_STORE, storage_key="qa-chats", secret=secret)
    p.writing = gr.State(False)  # a model is writing: the chat shows quotes (saved) and the words as they come
    sidebar(p)
    with gr.Row(elem_id="qa-header"):
        gr.HTML('<h1 class="qa-h1">News archive Q&amp;A</h1>'
                '<p class="qa-sub">Answers quote the articles; every sentence is cited.</p>', js_on_load=None)
        p.status = gr.HTML(status_html(app.retriever.info()), elem_id="qa-status", js_on_load=None)
        gr.HTML('<button type="button" id="qa-theme" title="Light or dark (Alt+T)">Dark</button>',
                js_on_load=None, elem_id="qa-theme-box")
    with gr.Tabs():
        with gr.Tab("Ask", id="ask"):
            ask_tab(p, app)
        with gr.Tab("Articles", id="articles"):
            articles(p)
    return p


def sidebar(p: Page) -> None:
    with gr.Sidebar(label="Chats", open=False, elem_id="qa-sidebar", width=280):
        p.new_button = gr.Button("New chat", variant="primary", size="sm", elem_id="qa-new-chat")
        p.chat_list = gr.Radio(label="Past chats (kept in this browser)", choices=[], elem_id="qa-chats")
        p.title_box = gr.Textbox(label="Name of this chat", elem_id="qa-chat-title", max_lines=1)
        with gr.Row():
            p.rename_button = gr.Button("Rename", size="sm", elem_id="qa-rename")
            p.delete_button = gr.Button("Delete chat", size="sm", variant="stop", elem_id="qa-delete-chat")
        p.export_button = gr.Button("Export as Markdown", size="sm", elem_id="qa-export")
        p.export_file = gr.File(label="The chat, with its citations", visible=False, elem_id="qa-export-file")
        p.feedback_button = gr.Button("Export feedback (JSON Lines)", size="sm", elem_id="qa-export-feedback")
        p.feedback_file = gr.File(label="Judged answers, as a question set", visible=False,
                                  elem_id="qa-feedback-file")
        gr.HTML('<p class="qa-hint">Keys: <kbd>/</kbd> the question, <kbd>Esc</kbd> stop or close, '
                "<kbd>Alt</kbd>+<kbd>N</kbd> new chat.</p>", js_on_load=None)


def ask_tab(p: Page, app: AppState) -> None:
    with gr.Row(equal_height=False, elem_id="qa-ask-tab"):
        with gr.Column(scale=3, min_width=300, elem_id="qa-chat-col"):
            p.chatbot = gr.Chatbot(
                elem_id="qa-chat", height="calc(100vh - 330px)", min_height=300, show_label=False,
                sanitize_html=True, allow_tags=False, latex_delimiters=[], feedback_options=None,
                buttons=[],
                placeholder="**Ask about the news articles.** Answers quote the articles and cite "
                            "them with numbered markers. Try one of these:",
                examples=[{"text": q} for q in EXAMPLES])
            with gr.Row(elem_id="qa-ask-row"):
                p.question = gr.Textbox(placeholder="Ask a question", show_label=False, scale=6,
                                        elem_id="qa-question", max_lines=3, autofocus=True, min_width=160)
                p.send = gr.Button("Ask", variant="primary", scale=1, min_width=64, elem_id="qa-send")
                p.stop = gr.Button("Stop", variant="stop", scale=1, min_width=64, visible=False, elem_id="qa-stop")
                p.again_button = gr.Button("Ask again", scale=1, min_width=64, interactive=False,
                                           elem_id="qa-again")
            # Configuring QA_LLM_URL turns written answers on; the reader can still ask for quotes.
            # The model is named as configured here, and as the endpoint lists it once the page loads
            # (an endpoint that is down must not delay the app's start).
            p.author = gr.Radio(authors(configured_model(app.assistant)),
                                value=WRITTEN if app.assistant.writes else QUOTES, label="Answers",
                                visible=app.assistant.writes, elem_id="qa-author",
                                info="Quotes are exact sentences; a written answer keeps only sentences "
                                     "its citations support.")
            filters(p)
        with gr.Column(scale=2, min_width=300, elem_id="qa-sources-col"):
            p.sources = gr.HTML(sources_html([]), elem_id="qa-sources", js_on_load=FEEDBACK_JS)
    gr.HTML('<button type="button" id="qa-sources-toggle" aria-controls="qa-sources-col">Sources'
            "</button>", js_on_load=None, elem_id="qa-sources-toggle-box")


def filters(p: Page) -> None:
    with gr.Accordion("Filters", open=False, elem_id="qa-filters") as p.filters_box:
        with gr.Row():
            p.source = gr.Dropdown(label="Source", choices=[("All sources", "")], value="",
                                   scale=2, elem_id="qa-source", min_width=160)
            p.since = gr.DateTime(label="From date", include_time=False, type="string", scale=1,
                                  elem_id="qa-since")
            p.until = gr.DateTime(label="To date", include_time=False, type="string", scale=1,
                                  elem_id="qa-until")
        with gr.Row():
            p.undated = gr.Checkbox(label="Include undated articles", value=True, scale=2,
                                    elem_id="qa-undated")
            # "this week", "in early December 2024": the days named are preferred (qa.when); unticked, none are.
            p.time_words = gr.Checkbox(label=TIME_WORDS, value=True, scale=2, elem_id="qa-time-words")
            p.clear = gr.Button("Clear filters", size="sm", scale=1, elem_id="qa-clear-filters")
        p.filter_note = gr.HTML("", elem_id="qa-filter-note", js_on_load=None)
