"""The chat page's handlers: plain functions of the :class:`~qa.web.state.AppState` (first) and the values of
the components an event reads, returning (or yielding, to stream) the new values of the components it writes.
:mod:`qa.web.app` wires them to the page's events; each one's inputs and outputs are named there."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import gradio as gr

from qa.answer import QUOTES, QUOTES_AUTHOR, WRITTEN, Answer, Checked, Event, Quoted, Token, written_by
from qa.assistant import Assistant
from qa.digest import DIGEST, asks_for_digest, digest
from qa.filters import FilterError, Filters
from qa.metadata import repair
from qa.web import chats
from qa.web.archive import safe_name
from qa.web.followups import followups
from qa.web.render import (
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
from qa.web.state import AppState

_STREAM_PAUSE = 0.12  # seconds between streamed sentences: enough to see the answer arrive
#: What the "Delete chat" confirm dialog sends for Cancel.
CANCELLED = "qa-cancelled"


def status_and_sources(app: AppState):
    """The header's status line and the Source filter's choices, read from the index again."""
    choices = [("All sources", "")] + [(s, s) for s in app.retriever.sources()]
    return status_html(app.retriever.info()), gr.update(choices=choices)


def name_model(app: AppState, chosen: str):
    """The answer switch with the model's name as the endpoint gives it (the choice the reader made kept)."""
    name = app.assistant.writer.model_name() if app.assistant.writer is not None else None
    # Only the label changes: a question sent before this update arrives still carries a valid value.
    return gr.update(choices=authors(name), value=chosen) if name else gr.skip()


def respond(app: AppState, question: str, store: dict, source: str, since: str | None, until: str | None,
            undated: bool, time_words: bool = True, author: str = QUOTES):
    """Stream the answer to ``question`` into the current chat; yields the page's outputs as it goes (a
    partial answer at each step), saving the chat in the browser once the answer is known. ``time_words``: the
    Filters' "Dates from the question" (the days "this week" names preferred; unticked, no date is)."""
    store = chats.clean(store)
    messages, groups, turns = chats.view(chats.answers(store), chats.notes(store))
    question = " ".join(repair(question or "").split())  # a lone surrogate could not be sent to the page
    busy, idle = buttons(True), buttons(False)
    if not question:
        yield "", messages, sources_html(groups), gr.skip(), *idle, gr.skip(), gr.skip()
        return
    asked = [*messages, {"role": "user", "content": escape_markdown(question)}]
    yield "", [*asked, {"role": "assistant", "content": "*Searching the articles…*"}], sources_html(groups), \
        gr.skip(), *busy, gr.skip(), gr.skip()
    turn = len(groups) + 1
    try:
        if asks_for_digest(question):  # "What happened in early December?": the window's stories
            chosen = Filters.parse(source or None, since or None, until or None, bool(undated))  # checked
            events: Iterator[Event] = iter([digest(app.retriever, question, source=chosen.source, since=chosen.since,
                                  until=chosen.until).answer()])
        else:
            events = app.assistant.stream(question, history=chat_turns(turns), source=source or None,
                                          since=since or None, until=until or None, undated=bool(undated),
                                          time_words=time_words is not False, quotes=author == QUOTES)
        quoted, written = None, ""
        checked: list[Checked] = []
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
    asks = [] if answer.answerer == DIGEST else followups(app.retriever, answer)  # drawn from the cited articles
    store = chats.add_answer(store, chats.compact(answer), asks)  # in the place of the quotes saved before it
    listed = gr.update(choices=chats.choices(store), value=store["current"])
    groups = [*groups, sources_group(answer, turn)]
    steps = range(1, len(answer.sentences) + 1) if not answer.abstained and answer.sentences else [None]
    for n in steps:
        if n and n > 1:
            time.sleep(_STREAM_PAUSE)
        last = n is None or n == len(answer.sentences)
        # The store goes with every step: Gradio may merge the steps of a fast stream into its last one.
        content = answer_markdown(answer, turn, n) + (chats.followups_markdown(asks) if last else "")
        yield ("", [*asked, {"role": "assistant", "content": content}],
               sources_html(groups), store, *(idle if last else busy), listed, False)


def stopped(store: dict, writing: bool):
    """Stop: the buttons back; a written answer cut short leaves its quotes (the chat as saved), an answer
    whose sentences were being shown stays as far as it got."""
    ask_button, stop_button, again_button = buttons(False)
    kept = show(store) if writing else (gr.skip(),) * 4 + (again_button,)  # shown: chat ... Ask again
    return ask_button, stop_button, *kept, False


def again(store: dict):
    """"Ask again": the last answer taken out of the chat, its question back in the box."""
    store, question = chats.drop_last(store)
    return store, question or ""


def show(store: dict):
    """The current chat drawn again from the store (on load, and after choosing a chat)."""
    store = chats.clean(store)
    messages, groups, _ = chats.view(chats.answers(store), chats.notes(store))
    chat = chats.current(store)
    return (messages, sources_html(groups), gr.update(choices=chats.choices(store), value=store["current"]),
            (chat or {}).get("title", ""), gr.update(interactive=bool(messages)))


def choose(chat_id: str, store: dict):
    store = chats.clean(store)
    if any(c["id"] == chat_id for c in store["chats"]):
        store = {**store, "current": chat_id}
    return store, *show(store)


def export(store: dict):
    """The current chat as a Markdown file to download."""
    store = chats.clean(store)
    chat = chats.current(store)
    if chat is None:
        gr.Warning("No chat is chosen: pick one under Past chats, or ask a question, then export.")
        return gr.update(value=None, visible=False)
    title = str(chat.get("title") or "chat")
    return gr.update(value=_download(safe_name(title.replace(" ", "-"))[:60] + ".md",
                                     chats.export_markdown(title, chats.answers(store))), visible=True)


def export_feedback(store: dict):
    """The answers judged with the Feedback buttons, in every chat, as a JSON Lines question set to download."""
    lines = chats.feedback_jsonl(store)
    if not lines:
        gr.Warning("No feedback yet: mark an answer Good, Wrong or Should have refused under Sources first.")
        return gr.update(value=None, visible=False)
    return gr.update(value=_download("feedback.jsonl", lines), visible=True)


def feedback(evt: gr.EventData, store: dict):
    """A Feedback button under Sources: its verdict kept on that answer of the current chat. The page has
    marked the button already (the panel is not drawn again: an older answer's cards, opened, stay open)."""
    data = getattr(evt, "_data", None) or {}
    turn, verdict = data.get("turn"), data.get("verdict")
    if not isinstance(turn, int) or not isinstance(verdict, str):
        return gr.skip()
    return chats.set_feedback(store, turn, verdict)


def _download(name: str, text: str) -> str:
    folder = Path(tempfile.mkdtemp(prefix="qa-chat-"))  # Gradio serves it once, as a download
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def check_filters(source: str, since: str | None, until: str | None, undated: bool, time_words: bool = True):
    """The Filters bar's badge (the question's dates unticked count as one on), and what is wrong with a value
    as the form names it."""
    try:
        parsed = Filters.parse(source or None, since or None, until or None, bool(undated))
    except FilterError as exc:
        return gr.update(label="Filters · check the dates"), filter_message(str(exc))
    return gr.update(label=filters_label(parsed, time_words is not False)), ""


def delete_chat(store: dict | str | None):
    """The "Delete chat" button: the current chat out of ``store``. The page's confirm dialog sends
    :data:`CANCELLED` when the reader pressed Cancel: then nothing changes. (It once sent null, which Gradio
    hands over as the empty store, so Cancel stored no chats at all.)"""
    return gr.skip() if store is None or store == CANCELLED else chats.delete(store)


def pick_example(evt: gr.SelectData) -> str:
    return evt.value["text"] if isinstance(evt.value, dict) else str(evt.value)


def buttons(busy: bool) -> tuple:
    """The Ask, Stop and Ask again buttons while an answer is pending (``busy``) or not."""
    return (gr.update(interactive=not busy, visible=not busy), gr.update(visible=busy),
            gr.update(interactive=not busy))


def configured_model(assistant: Assistant) -> str | None:
    """The writing model's name as configured (``QA_LLM_MODEL``), without asking its endpoint."""
    return assistant.writer.endpoint.model if assistant.writer is not None else None


def authors(model: str | None) -> list[tuple[str, str]]:
    """The answer switch's choices: what the reader sees, and the value an answer is asked with."""
    return [(QUOTES_AUTHOR, QUOTES), (written_by(model), WRITTEN)]
