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

from qa.answer import QUOTES, Answer, AnswerSentence, Citation
from qa.digest import DIGEST
from qa.retriever import Passage
from qa.web.render import FEEDBACK, answer_markdown, escape_markdown, sources_group

MAX_CHATS, MAX_ANSWERS = 50, 100
#: The store's size as JSON at most: it travels with each question, and the app refuses request bodies over 256 KB
#: (qa.guard); encrypted and base64-encoded it grows by about a third. About 80 answers; the oldest chats go first.
MAX_STORE_CHARS = 150_000
#: Context kept around a saved citation's sentence, and of a related passage (an answer is 1-2 KB so).
_CONTEXT_CHARS, _RELATED_CHARS = 120, 200
_TITLE_CHARS = 60
#: The most follow-up questions suggested under an answer.
MAX_FOLLOWUPS = 3
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
            caveat=data.get("caveat"), reason=data.get("reason"),
            answerer=DIGEST if data.get("answerer") == DIGEST else QUOTES)
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


def notes(store: dict) -> list[dict]:
    """What the current chat keeps beside each of its answers (as :func:`answers` lists them): the reader's
    ``feedback`` and the suggested ``followups``."""
    chat = current(store)
    return [{"feedback": a.get("feedback") if a.get("feedback") in FEEDBACK else None,
             "followups": [str(q) for q in a.get("followups") or [] if isinstance(q, str)][:MAX_FOLLOWUPS]}
            for a in (chat or {}).get("answers", []) if isinstance(a, dict) and answer_from_dict(a) is not None]


def view(items: Sequence[Answer], extras: Sequence[dict] | None = None) -> tuple[list[dict], list[str], list[dict]]:
    """Chat messages, source groups and conversation turns of a chat's answers (``extras``: their
    :func:`notes`)."""
    messages, groups, turns = [], [], []
    extras = list(extras or [])
    for turn, answer in enumerate(items, 1):
        extra = extras[turn - 1] if turn <= len(extras) else {}
        messages += [{"role": "user", "content": escape_markdown(answer.question)},
                     {"role": "assistant", "content": answer_markdown(answer, turn) +
                      followups_markdown(extra.get("followups") or [])}]
        groups.append(sources_group(answer, turn, extra.get("feedback")))
        turns += [{"role": "user", "content": answer.question}, {"role": "assistant", "content": answer.text}]
    return messages, groups, turns


def title_of(question: str) -> str:
    text = " ".join(question.split())
    return text if len(text) <= _TITLE_CHARS else text[:_TITLE_CHARS].rsplit(" ", 1)[0] + "…"


def new_chat(store: dict) -> dict:
    """``store`` with no chat chosen: the next question starts a new one (an empty chat is never saved)."""
    return {**clean(store), "current": None}


def unique_title(title: str, taken: Sequence[str]) -> str:
    """``title``, or ``title (2)``, ``(3)``... when a chat already has it."""
    n, found = 1, title
    while found in taken:
        n += 1
        found = f"{title} ({n})"
    return found


def add_answer(store: dict, answer: Answer, followups: Sequence[str] = ()) -> dict:
    """``store`` with ``answer`` appended to the current chat, or to a new chat named after its question (a
    title no other chat has); ``followups``: the questions suggested under it."""
    store = clean(store)
    chats = list(store["chats"])
    chat = current(store)
    if chat is None:
        taken = [str(c.get("title")) for c in chats]
        chat = {"id": secrets.token_hex(6), "title": unique_title(title_of(answer.question), taken), "answers": []}
    else:
        chats.remove(chat)
    saved = answer.to_dict()
    if followups:
        saved["followups"] = list(followups)[:MAX_FOLLOWUPS]
    chat = {**chat, "answers": [*chat.get("answers", []), saved][-MAX_ANSWERS:]}
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


def set_feedback(store: dict, turn: int, verdict: str) -> dict:
    """``store`` with the reader's ``verdict`` (a key of :data:`~qa.web.render.FEEDBACK`) on answer ``turn``
    (from 1) of the current chat; the same verdict again takes it back."""
    store = clean(store)
    chat = current(store)
    if chat is None or verdict not in FEEDBACK or not 1 <= turn <= len(chat.get("answers", [])):
        return store
    kept = [a for a in chat["answers"]]
    if isinstance(kept[turn - 1], dict):
        old = kept[turn - 1].get("feedback")
        kept[turn - 1] = {**kept[turn - 1], "feedback": None if old == verdict else verdict}
    chat = {**chat, "answers": kept}
    return {**store, "chats": [chat if c["id"] == chat["id"] else c for c in store["chats"]]}


def feedback_jsonl(store: dict) -> str:
    """Every answer the reader judged, in every chat, as JSON Lines in the format of the question sets
    (``bench/data/newsqa_dev.jsonl``): ``id``, ``kind`` ("feedback-good", "-wrong", "-refuse"), ``history`` (the
    chat's earlier questions and answers), ``question``, ``expect_any`` (empty: a person fills in what a right
    answer must say), ``expect_abstain``, ``article`` (the first cited), ``filters``, and the ``answer`` given."""
    lines = []
    for chat in clean(store)["chats"]:
        history: list[dict] = []
        for n, data in enumerate(a for a in chat.get("answers", []) if isinstance(a, dict)):
            answer = answer_from_dict(data)
            if answer is None:
                continue
            verdict = data.get("feedback")
            if verdict in FEEDBACK:
                lines.append(json.dumps({
                    "id": f"{chat['id']}-{n + 1}", "kind": f"feedback-{verdict}", "history": list(history),
                    "question": answer.question, "expect_any": [], "expect_abstain": verdict == "refuse",
                    "article": answer.citations[0].article_id if answer.citations else None, "filters": {},
                    "answer": _plain(answer.text), "refused": answer.abstained, "feedback": verdict},
                    ensure_ascii=False))
            history += [{"role": "user", "content": answer.question},
                        {"role": "assistant", "content": _plain(answer.text)}]
    return "".join(line + "\n" for line in lines)


def followups_markdown(questions: Sequence[str]) -> str:
    """The questions suggested under an answer, as links the page turns into questions asked (``#qa-ask``)."""
    if not questions:
        return ""
    links = " · ".join(f"[{escape_markdown(q)}](#qa-ask)" for q in questions)
    return f"\n\n*Ask next:* {links}"


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
