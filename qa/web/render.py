"""The page's rendering: pure functions from answers and index facts to escaped Markdown and HTML.

Everything that comes from articles or users is escaped here before it reaches the page.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from urllib.parse import urlparse

from qa.answer import Answer, Citation
from qa.conversation import Turn
from qa.retriever import IndexInfo, Passage

_RELATED_CHARS = 320  # how much of a related passage to show when the answer abstains

_MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]~|$])")  # special anywhere in a line
_MARKDOWN_LINE_START = re.compile(r"^([#>+=-]|\d+(?=[.)]))")  # headings, quotes, lists


def escape_markdown(text: str) -> str:
    """``text`` on one line, as Markdown that renders literally: markup characters backslash-escaped and
    ``<>&`` written as entities, so no HTML or Markdown in it takes effect."""
    text = _MARKDOWN_INLINE.sub(r"\\\1", " ".join(str(text).split()))
    text = _MARKDOWN_LINE_START.sub(lambda m: m[1] + "\\" if m[1][0].isdigit() else "\\" + m[1], text)
    return html.escape(text, quote=False)


def card_id(turn: int, number: int) -> str:
    """The HTML id of the card of citation ``number`` of answer ``turn`` (markers link to it)."""
    return f"qa-src-{turn}-{number}"


def answer_markdown(answer: Answer, turn: int, sentences: int | None = None) -> str:
    """The chat message for ``answer``: its caveat ("Reports differ: ...") if any, then its first ``sentences``
    sentences (all by default), each followed by its ``[n]`` markers as links to the source cards."""
    if not answer.sentences:
        text = escape_markdown(answer.text)
        if answer.related:
            text += "\n\n*The closest passages are listed under Sources as related reading; they are not an answer.*"
        return text
    titles = {c.number: c.title for c in answer.citations}

    def link(n: int) -> str:
        return f'[\\[{n}\\]](#{card_id(turn, n)} "{_link_title(titles.get(n, ""))}")'

    parts = []
    if answer.caveat:  # its markers were escaped with the rest; link them again
        parts.append(re.sub(r"\\\[(\d+)\\\]", lambda m: link(int(m[1])), escape_markdown(answer.caveat)))
    for sentence in answer.sentences[:sentences]:
        parts.append(f"{escape_markdown(sentence.text)} {''.join(link(n) for n in sentence.citations)}")
    return " ".join(parts)


def _link_title(title: str) -> str:
    return escape_markdown(title).replace('"', '\\"')


def _text(value: str) -> str:
    """Escaped text on one line (line breaks inside articles would only make gaps in a card)."""
    return html.escape(" ".join(value.split()))


def safe_url(url: str | None) -> str | None:
    """``url`` when it is a plain http(s) link, else None: ``javascript:`` and friends are never linked."""
    if not url:
        return None
    parsed = urlparse(url.strip())
    return url.strip() if parsed.scheme in ("http", "https") and parsed.netloc else None


def _meta_html(date: str | None, source: str | None, url: str | None) -> str:
    bits = [html.escape(x) for x in (date, source) if x]
    link = safe_url(url)
    if link:
        host = urlparse(link).netloc
        bits.append(f'<a href="{html.escape(link)}" target="_blank" rel="noopener noreferrer nofollow">'
                    f"{html.escape(host)} ↗</a>")
    return f'<div class="qa-meta">{" · ".join(bits)}</div>' if bits else ""


def citation_card(citation: Citation, turn: int) -> str:
    """One numbered source card: title, date, source, link, and the cited sentence in its context (for a
    headline that holds the answer, the title line, marked as such)."""
    before = f"…{_text(citation.before)} " if citation.before.strip() else ""
    after = f" {_text(citation.after)}…" if citation.after.strip() else ""
    if citation.part == "title":  # a headline that holds the answer: the title line itself
        before = '<span class="qa-tag">Headline</span> '
    return (f'<article class="qa-card" id="{card_id(turn, citation.number)}">'
            f'<div class="qa-card-head"><span class="qa-num">{citation.number}</span>'
            f'<span class="qa-title">{_text(citation.title)}</span></div>'
            f"{_meta_html(citation.date, citation.source, citation.url)}"
            f'<p class="qa-snippet">{before}<mark>{_text(citation.snippet)}</mark>{after}</p></article>')


def related_card(passage: Passage) -> str:
    """A passage shown when the answer abstains: marked as related reading, not as an answer."""
    text = " ".join(passage.text.split())
    if len(text) > _RELATED_CHARS:
        text = text[:_RELATED_CHARS].rsplit(" ", 1)[0] + "…"
    return (f'<article class="qa-card qa-related"><div class="qa-card-head"><span class="qa-tag">Related</span>'
            f'<span class="qa-title">{_text(passage.title)}</span></div>'
            f"{_meta_html(passage.date, passage.source, passage.url)}"
            f'<p class="qa-snippet">{_text(text)}</p></article>')


def sources_group(answer: Answer, turn: int) -> str:
    """The cards of one answer (the body of a ``<details>``, whose summary is the question)."""
    question = f'<summary class="qa-question">{_text(answer.question)}</summary>'
    if answer.citations:
        cards = "".join(citation_card(c, turn) for c in answer.citations)
    elif answer.related:
        cards = ('<p class="qa-note">No passage answers this question. These are the closest ones, '
                 "for related reading:</p>" + "".join(related_card(p) for p in answer.related))
    else:
        cards = '<p class="qa-note">No sources for this answer.</p>'
    return question + cards


def sources_html(groups: Sequence[str]) -> str:
    """The Sources panel: the newest answer's cards open, earlier answers' folded below."""
    heading = '<h2 class="qa-h2">Sources</h2>'
    if not groups:
        return (f'{heading}<div class="qa-sources-empty">The sources of each answer appear here, numbered as in '
                "the answer. Click a marker such as [1] to jump to its source.</div>")
    newest = f'<details class="qa-group" open>{groups[-1]}</details>'
    older = "".join(f'<details class="qa-group qa-older">{g}</details>' for g in reversed(groups[:-1]))
    if older:
        older = f'<div class="qa-older-label">Earlier answers</div>{older}'
    return f'{heading}<div class="qa-sources">{newest}{older}</div>'


def status_html(info: IndexInfo) -> str:
    """The status line: articles, chunks, model and when the index last changed."""
    updated = info.updated_at.strftime("%Y-%m-%d %H:%M") if info.updated_at else "never"
    articles = f"{info.articles} article{'s' * (info.articles != 1)}"
    bits = [f"<b>{articles}</b>", f"{info.chunks} chunks", f"model {html.escape(info.model)}", f"updated {updated}"]
    return '<div class="qa-status">' + " · ".join(f"<span>{b}</span>" for b in bits) + "</div>"


def chat_turns(messages: Sequence | None) -> list[Turn]:
    """Conversation turns from Gradio chat messages, whose content may be a string or a list of parts
    (``[{"type": "text", "text": ...}]``); other items (Turn objects, pairs) are passed on as they are."""
    turns: list = []
    for item in messages or []:
        if isinstance(item, dict) and item.get("role") in ("user", "assistant"):
            content = item.get("content")
            if isinstance(content, list):
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            elif isinstance(content, dict):
                content = str(content.get("text", ""))
            turns.append(Turn(item["role"], content if isinstance(content, str) else ""))
        else:
            turns.append(item)
    return turns

