"""Saved conversations: the chats a browser keeps (Gradio's BrowserState, in its local storage), as plain data.

The store is ``{"chats": [{"id", "title", "answers": [Answer.to_dict(), ...]}, ...], "current": id}``: answers
as data, never rendered HTML, so the page is always drawn again by :mod:`qa.web.render` (which escapes
everything) and a value changed in the browser's storage can at worst show wrong text, never run script. Nothing
of a chat is kept on the server. At most :data:`MAX_CHATS` chats of :data:`MAX_ANSWERS` answers are kept (local
storage holds about 5 MB per site; an answer with its sources is 2-10 KB), the oldest dropped first.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import fields, replace

from qa.answer import Answer, AnswerSentence, Citation
from qa.retriever import Passage
from qa.web.render import answer_markdown, escape_markdown, sources_group

MAX_CHATS, MAX_ANSWERS = 50, 100
#: The store's size as JSON at most: it travels with each question, and the app refuses request bodies over 256 KB
#: (qa.guard); encrypted and base64-encoded it grows by about a third. About 80 answers; the oldest chats go first.
MAX_STORE_CHARS = 150_000
#: Context kept around a saved citation's sentence, and of a related passage (an answer is 1-2 KB so).
_CONTEXT_CHARS, _RELATED_CHARS = 120, 200
_TITLE_CHARS = 60
EMPTY_STORE: dict = {"chats": [], "current": None}


def answer_from_dict(data: dict) -> Answer | None:
    """The :class:`Answer` of ``Answer.to_dict()`` output; None when ``data`` is not one (a damaged store)."""
    try:
        known = {f.name for f in fields(Citation)}
        passages = {f.name for f in fields(Passage)}
        return Answer(
            question=str(data["question"]), text=str(data["text"]),
            sentences=[AnswerSentence(str(s["text"]), tuple(int(n) for n in s["citations"]))
                       for s in data.get("sentences") or []],
            citations=[Citation(**{k: v for k, v in c.items() if k in known}) for c in data.get("citations") or []],
            abstained=bool(data.get("abstained")),
            related=[Passage(**{k: v for k, v in p.items() if k in passages}) for p in data.get("related") or []],
            caveat=data.get("caveat"), reason=data.get("reason"))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def compact(answer: Answer) -> Answer:
    """``answer`` as saved: its citations' context and its related passages cut short (the quotes stay whole)."""
    return replace(answer,
                   citations=[replace(c, before=c.before[-_CONTEXT_CHARS:], after=c.after[:_CONTEXT_CHARS])
                              for c in answer.citations],
                   related=[replace(p, text=p.text[:_RELATED_CHARS]) for p in answer.related])


def clean(store: object) -> dict:
    """``store`` as the app expects it: unknown or damaged parts dropped."""
    if not isinstance(store, dict) or not isinstance(store.get("chats"), list):
        return {"chats": [], "current": None}
    chats = [c for c in store["chats"] if isinstance(c, dict) and isinstance(c.get("id"), str)
             and isinstance(c.get("answers", []), list)][-MAX_CHATS:]
    ids = {c["id"] for c in chats}
    current = store.get("current") if store.get("current") in ids else None
    return {"chats": chats, "current": current}


def current(store: dict) -> dict | None:
    return next((c for c in store["chats"] if c["id"] == store["current"]), None)


def answers(store: dict) -> list[Answer]:
    """The current chat's answers, in order (damaged ones left out)."""
    chat = current(store)
    found = [answer_from_dict(a) for a in (chat or {}).get("answers", []) if isinstance(a, dict)]
    return [a for a in found if a is not None]


def view(items: Sequence[Answer]) -> tuple[list[dict], list[str], list[dict]]:
    """Chat messages, source groups and conversation turns of a chat's answers."""
    messages, groups, turns = [], [], []
    for turn, answer in enumerate(items, 1):
        messages += [{"role": "user", "content": escape_markdown(answer.question)},
                     {"role": "assistant", "content": answer_markdown(answer, turn)}]
        groups.append(sources_group(answer, turn))
        turns += [{"role": "user", "content": answer.question}, {"role": "assistant", "content": answer.text}]
    return messages, groups, turns


def title_of(question: str) -> str:
    text = " ".join(question.split())
    return text if len(text) <= _TITLE_CHARS else text[:_TITLE_CHARS].rsplit(" ", 1)[0] + "…"


def new_chat(store: dict) -> dict:
    """``store`` with no chat chosen: the next question starts a new one (an empty chat is never saved)."""
    return {**clean(store), "current": None}


def add_answer(store: dict, answer: Answer) -> dict:
    """``store`` with ``answer`` appended to the current chat, or to a new chat named after its question."""
    store = clean(store)
    chats = list(store["chats"])
    chat = current(store)
    if chat is None:
        chat = {"id": secrets.token_hex(6), "title": title_of(answer.question), "answers": []}
    else:
        chats.remove(chat)
    chat = {**chat, "answers": [*chat.get("answers", []), answer.to_dict()][-MAX_ANSWERS:]}
    chats = [*chats, chat][-MAX_CHATS:]  # the chat asked in last is the newest
    while len(json.dumps(chats)) > MAX_STORE_CHARS and (len(chats) > 1 or len(chats[0]["answers"]) > 1):
        if len(chats) > 1:
            chats.pop(0)
        else:
            chats[0] = {**chats[0], "answers": chats[0]["answers"][1:]}
    return {"chats": chats, "current": chat["id"]}


def drop_last(store: dict) -> tuple[dict, str | None]:
    """``store`` without the current chat's last answer, and that answer's question (for "ask again")."""
    store = clean(store)
    chat = current(store)
    if not chat or not chat.get("answers"):
        return store, None
    question = str(chat["answers"][-1].get("question", "")) if isinstance(chat["answers"][-1], dict) else None
    chat = {**chat, "answers": chat["answers"][:-1]}
    return {**store, "chats": [chat if c["id"] == chat["id"] else c for c in store["chats"]]}, question


def rename(store: dict, title: str) -> dict:
    store = clean(store)
    title = " ".join(str(title or "").split())[:_TITLE_CHARS * 2]
    if not title or current(store) is None:
        return store
    return {**store, "chats": [{**c, "title": title} if c["id"] == store["current"] else c for c in store["chats"]]}


def delete(store: object) -> dict:
    store = clean(store)
    return {"chats": [c for c in store["chats"] if c["id"] != store["current"]], "current": None}


def choices(store: dict) -> list[tuple[str, str]]:
    """(title, id) of the saved chats, newest first, for the sidebar."""
    return [(str(c.get("title") or "Untitled chat"), c["id"]) for c in reversed(clean(store)["chats"])]


def export_markdown(title: str, items: Sequence[Answer]) -> str:
    """A chat as Markdown: each question, its answer with ``[n]`` markers, and the numbered citations (title,
    date, source, link and the quoted sentence) below it."""
    lines = [f"# {_plain(title) or 'Chat'}", ""]
    for answer in items:
        lines += [f"## {_plain(answer.question)}", "", _plain(answer.text), ""]
        for c in answer.citations:
            meta = ", ".join(x for x in (c.date, c.source) if x)
            head = f"[{c.number}] **{_plain(c.title)}**" + (f" ({_plain(meta)})" if meta else "")
            link = f" <{c.url}>" if c.url and re.match(r"https?://[^\s<>]+$", c.url) else ""
            lines.append(f"- {head}{link}: “{_plain(c.snippet)}” — `{c.article_id}`")
        if answer.citations:
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _plain(text: str | None) -> str:
    return " ".join(str(text or "").split())
