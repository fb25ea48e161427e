"""The HTTP API (``/ask``, ``/search``, ``/articles``, for ``gradio_client``): plain functions of the app's
state; :func:`register` adds them to the Blocks being built. Their docstrings are the API page's words."""

from __future__ import annotations

from dataclasses import asdict

import gradio as gr
from gradio.components.api_component import Api

from qa import checks
from qa.digest import asks_for_digest, digest
from qa.filters import Filters
from qa.listing import PAGE_SIZE, SORT_KEYS
from qa.web.render import chat_turns
from qa.web.state import AppState, bind

#: The questions the empty chat offers, and the API's example.
EXAMPLES = (
    "What ammunition was discussed?",
    "Who met in Seoul on November 27?",
    "How many troops has North Korea sent to Russia?",
)
#: The most passages one /search call returns.
MAX_K = 50


def ask(app: AppState, question: str, history: list[dict] | None = None, source: str | None = None,
        since: str | None = None, until: str | None = None, undated: bool = True, time_words: bool = True) -> dict:
    """Answer a question from the news articles: the answer text and its numbered citations. A question about
    a period ("What happened in early December 2024?") is answered with a digest of that window's stories.

    ``source``, ``since`` and ``until`` (YYYY-MM-DD) narrow the search; ``undated``: whether articles
    without a date are kept when a date range is given; ``time_words``: whether the question's time words
    ("this week", "in early December 2024") make a preferred date window (the answer's ``period``); false
    reads none.
    """
    try:
        question = checks.text(question, "question", EXAMPLES[0], required=True)
        turns = chat_turns(checks.history(history))
        source, since, until = (_optional(source, "source", "Wire"), _optional(since, "since", "2024-11-27"),
                                _optional(until, "until", "2024-11-30"))
        if asks_for_digest(question):  # "What happened in early December 2024?": a digest, as in the chat
            chosen = Filters.parse(source, since, until, undated is not False)  # bad dates refused as for any
            return digest(app.retriever, question, source=chosen.source, since=chosen.since,
                          until=chosen.until).answer().to_dict()
        answer = app.assistant.ask(question, history=turns, source=source, since=since, until=until,
                                   undated=undated is not False, time_words=time_words is not False)
    except ValueError as exc:
        raise gr.Error(str(exc), print_exception=False) from None
    return answer.to_dict()


def search(app: AppState, query: str, k: int = 5, source: str | None = None, since: str | None = None,
           until: str | None = None, undated: bool = True, mode: str = "hybrid") -> list[dict]:
    """The ``k`` passages most relevant to ``query`` (best first; ``k`` from 1 to 50), with their articles'
    metadata.

    Filters as for /ask; ``mode``: "hybrid", "dense" or "bm25".
    """
    try:
        query = checks.text(query, "query", EXAMPLES[0], required=True)
        passages = app.retriever.search(query, k=checks.whole(k, "k", 5, 1, MAX_K), mode=mode,
                                        source=_optional(source, "source", "Wire"),
                                        since=_optional(since, "since", "2024-11-27"),
                                        until=_optional(until, "until", "2024-11-30"), undated=undated is not False)
    except ValueError as exc:
        raise gr.Error(str(exc), print_exception=False) from None
    return [asdict(p) for p in passages]


def articles(app: AppState, query: str = "", sort: str = SORT_KEYS[0], descending: bool = True, offset: int = 0,
             limit: int = PAGE_SIZE) -> dict:
    """A page of the archive's articles: ``{"rows": [...], "total": n, "offset": o}``.

    ``query`` keeps titles, sources or files that contain it; ``sort`` is one of date, title, source,
    file, chunks, indexed_at; ``limit`` is at most 500.
    """
    try:
        page = app.retriever.articles(query, sort, descending is not False, offset, limit)
    except ValueError as exc:
        raise gr.Error(str(exc), print_exception=False) from None
    return {"rows": [asdict(r) for r in page.rows], "total": page.total, "offset": page.offset}


def register(app: AppState) -> None:
    """The API's endpoints, inside the Blocks being built."""
    for fn in (ask, search, articles):
        gr.api(bind(fn, app), api_name=fn.__name__)


class Blocks(gr.Blocks):
    """Blocks whose API endpoints take calls that leave out trailing parameters: those get their defaults.

    gradio_client fills them in from the API's schema, but a raw HTTP call (``{"data": [...]}``) written before
    a parameter was added (``time_words`` of /ask) would otherwise get Gradio's "didn't receive enough input
    values". Only :func:`gr.api` endpoints (all inputs ``Api``) are padded; the page's events are as Gradio has them.
    """

    async def preprocess_data(self, block_fn, inputs, state, explicit_call=False):
        missing = block_fn.inputs[len(inputs):]
        if missing and all(isinstance(block, Api) for block in block_fn.inputs):
            inputs = [*inputs, *(block.value for block in missing)]
        return await super().preprocess_data(block_fn, inputs, state, explicit_call)


def _optional(value: object, name: str, example: str) -> str | None:
    """An optional text parameter of the API: None when empty; a BadRequest when it is not text."""
    return checks.text(value, name, example) or None
