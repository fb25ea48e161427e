"""The page's rendering: pure functions from answers and index facts to escaped Markdown and HTML.

Everything that comes from articles or users is escaped here before it reaches the page.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from urllib.parse import urlparse

from qa.answer import WRITTEN, Answer, Checked, Citation
from qa.conversation import Turn
from qa.digest import DIGEST
from qa.filters import Filters
from qa.listing import ArticlePage, ArticleView, local_time
from qa.retriever import Passage, Status

#: The Filters checkbox that lets the question's time words ("this week") make a preferred date window.
TIME_WORDS = "Dates from the question"
#: The Filters badge's words for it unticked.
TIME_WORDS_OFF = "dates from the question ignored"
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
        text = _with_author(answer, escape_markdown(answer.text))
        if answer.related:
            text += "\n\n*The closest passages are listed under Sources as related reading; they are not an answer.*"
        return text
    titles = {c.number: c.title for c in answer.citations}

    def link(n: int) -> str:
        return f'[\\[{n}\\]](#{card_id(turn, n)} "{_link_title(titles.get(n, ""))}")'

    if answer.answerer == DIGEST:  # one story a line, after the window's words
        lines = [f"- {escape_markdown(s.text)} {''.join(link(n) for n in s.citations)}"
                 for s in answer.sentences[:sentences]]
        return escape_markdown(answer.caveat or "") + "\n\n" + "\n".join(lines)
    parts = []
    if answer.caveat:  # its markers were escaped with the rest; link them again
        parts.append(re.sub(r"\\\[(\d+)\\\]", lambda m: link(int(m[1])), escape_markdown(answer.caveat)))
    for sentence in answer.sentences[:sentences]:
        parts.append(f"{escape_markdown(sentence.text)} {''.join(link(n) for n in sentence.citations)}")
    return _with_author(answer, " ".join(parts))


def writing_markdown(quoted: Answer, turn: int, written: str = "", checked: Sequence[Checked] = ()) -> str:
    """While a model writes: the quotes, shown at once, and below them the written answer as it arrives, then each
    of its sentences marked as checked (kept) or left out, and why. The final answer replaces all of it."""
    if checked:
        marks = [f"✓ {escape_markdown(c.text)}" if c.supported else
                 f"✗ ~~{escape_markdown(c.text)}~~ *(left out: {escape_markdown(c.reason or 'not supported')})*"
                 for c in checked]
        below = "*Written; each sentence checked against the sentences it cites:*\n\n" + "\n\n".join(marks)
    elif written:
        below = f"*Being written, not yet checked:* {escape_markdown(written)} ▍"
    else:
        below = "*A written answer is on its way; until then, the quotes.*"
    return f"{answer_markdown(quoted, turn)}\n\n---\n\n{below}"


def _with_author(answer: Answer, body: str) -> str:
    """A written answer says who wrote it and what its check left out; quotes standing in for one say why."""
    if answer.notice:
        body = f"*{escape_markdown(f'{answer.author}: {answer.notice}')}*\n\n{body}"
    if answer.period:  # the days the question's time words name, shown like a filter, and how to remove it
        note = f'Preferring articles of {answer.period}; untick "{TIME_WORDS}" under Filters to search every date'
        body = f"*{escape_markdown(note)}*\n\n{body}"
    if answer.answerer == WRITTEN:
        left_out = len(answer.unsupported)
        note = f"{answer.author}; every sentence checked against the sentences it cites"
        if left_out:
            note += f"; {left_out} sentence{'s' * (left_out != 1)} left out as unsupported"
        body += f"\n\n*{escape_markdown(note)}.*"
    return body


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
            f'<span class="qa-title">{_text(citation.title)}</span>'
            f'<button type="button" class="qa-copy" data-copy="{html.escape(citation_text(citation))}" '
            'title="Copy the quote and its link">Copy</button></div>'
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


#: The verdicts a reader can give an answer, and their buttons' words.
FEEDBACK = {"good": "Good", "wrong": "Wrong", "refuse": "Should have refused"}


def citation_text(citation: Citation) -> str:
    """A citation as copied: the quote, then where it comes from and its link."""
    meta = ", ".join(x for x in (citation.source, citation.date) if x)
    url = safe_url(citation.url)
    return (f"“{' '.join(citation.snippet.split())}” — {' '.join(citation.title.split())}"
            + (f" ({meta})" if meta else "") + (f" {url}" if url else ""))


def answer_text(answer: Answer) -> str:
    """An answer as copied: its text with the ``[n]`` markers, then its numbered sources."""
    text = " ".join(answer.text.split())
    if not answer.citations:
        return text
    return text + "\n\nSources:\n" + "\n".join(f"[{c.number}] {citation_text(c)}" for c in answer.citations)


def answer_actions(answer: Answer, turn: int, feedback: str | None = None) -> str:
    """The bar under an answer's question in the Sources panel: Copy the answer, and the reader's verdict."""
    verdicts = "".join(f'<button type="button" class="qa-fb" data-feedback="{key}" data-turn="{turn}" '
                       f'aria-pressed="{str(key == feedback).lower()}">{words}</button>'
                       for key, words in FEEDBACK.items())
    return (f'<div class="qa-actions"><button type="button" class="qa-copy" data-copy="'
            f'{html.escape(answer_text(answer))}" title="Copy the answer with its numbered sources">Copy answer'
            f'</button><span class="qa-fb-label">Feedback:</span>{verdicts}</div>')


def sources_group(answer: Answer, turn: int, feedback: str | None = None) -> str:
    """The cards of one answer (the body of a ``<details>``, whose summary is the question), after the answer's
    Copy and feedback buttons (``feedback``: the verdict given, if any)."""
    question = f'<summary class="qa-question">{_text(answer.question)}</summary>'
    question += answer_actions(answer, turn, feedback)
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


def status_html(info: Status) -> str:
    """The status line: articles, chunks, model and when the index last changed."""
    articles = f"{info.articles} article{'s' * (info.articles != 1)}"
    bits = [f"<b>{articles}</b>", f"{info.chunks} chunks", f"model {html.escape(info.model)}",
            f"updated {info.updated()}"]
    # The dots come from CSS inside each part, so that a wrapped line never starts with a lone "·".
    return '<div class="qa-status">' + "".join(f"<span>{b}</span>" for b in bits) + "</div>"


_LINK = re.compile(r'\[\\\[(\d+)\\\]\]\(#[^)\s]*(?:\s+"(?:[^"\\]|\\.)*")?\)')  # answer_markdown's [n] links


def plain_text(markdown: str) -> str:
    """A chat message of ours as plain text: ``answer_markdown``'s links back to ``[n]`` markers and the escapes
    of ``escape_markdown`` undone, so that a follow-up reads the previous answer's sentences as the articles wrote
    them ("$310 million", not "\\$310 million"): the answerer recognises a sentence an earlier answer quoted by its
    text."""
    return re.sub(r"\\(.)", r"\1", html.unescape(_LINK.sub(lambda m: f"[{m[1]}]", markdown)))


def chat_turns(messages: Sequence | None) -> list[Turn]:
    """Conversation turns from Gradio chat messages, whose content may be a string or a list of parts
    (``[{"type": "text", "text": ...}]``), as plain text (the page escapes both sides); other items (Turn objects,
    pairs) are passed on as they are."""
    turns: list = []
    for item in messages or []:
        if isinstance(item, dict) and item.get("role") in ("user", "assistant"):
            content = item.get("content")
            if isinstance(content, list):
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            elif isinstance(content, dict):
                content = str(content.get("text", ""))
            content = content if isinstance(content, str) else ""
            turns.append(Turn(item["role"], plain_text(content)))
        else:
            turns.append(item)
    return turns



# --- The archive: the list of articles and one article opened --------------------------------------------

#: Column headings of the Articles list, by sort key (qa.listing.SORT_KEYS), in the order shown.
COLUMNS = {"title": "Title", "date": "Date", "source": "Source", "file": "File", "chunks": "Passages",
           "indexed_at": "Indexed"}


def articles_table(page: ArticlePage, sort: str, descending: bool) -> str:
    """The list as an HTML table: headings sort (the server sorts every page, not just this one), a row opens
    its article. Ids travel in escaped ``data-`` attributes only."""
    arrow = " ▼" if descending else " ▲"
    heads = "".join(f'<th><button type="button" class="qa-sort" data-sort="{key}" aria-sort='
                    f'"{("descending" if descending else "ascending") if key == sort else "none"}">'
                    f"{label}{arrow if key == sort else ''}</button></th>" for key, label in COLUMNS.items())
    if not page.rows:
        body = f'<tr><td colspan="{len(COLUMNS)}" class="qa-note">No articles match.</td></tr>'
    else:
        body = "".join(
            f'<tr data-id="{html.escape(r.id, quote=True)}" tabindex="0"><td class="qa-col-title">{_text(r.title)}</td>'
            f"<td>{html.escape(r.date or '—')}</td><td>{_text(r.source or '—')}</td>"
            f'<td class="qa-col-file">{_text(r.file or "")}</td><td>{r.chunks}</td>'
            f"<td>{local_time(r.indexed_at)}</td></tr>"
            for r in page.rows)
    return (f'<div class="qa-table-wrap"><table class="qa-table"><thead><tr>{heads}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def pager_text(page: ArticlePage, query: str = "") -> str:
    if not page.total:
        return "No articles" + (f" match “{_text(query)}”" if query else " yet")
    last = page.offset + len(page.rows)
    matching = f" matching “{_text(query)}”" if query else ""
    return f"{page.offset + 1:,}–{last:,} of {page.total:,} article{'s' * (page.total != 1)}{matching}"


def article_html(article: ArticleView, file_articles: int) -> str:
    """One article to read: title, its metadata, and its text in paragraphs, all escaped."""
    meta = [("Date", article.date), ("Source", article.source), ("Author", article.author),
            ("File", article.file), ("Id", article.id), ("Passages", str(article.chunks)),
            ("Indexed", local_time(article.indexed_at))]
    rows = "".join(f"<dt>{k}</dt><dd>{_text(v)}</dd>" for k, v in meta if v)
    link = safe_url(article.url)
    if link:
        rows += (f'<dt>Link</dt><dd><a href="{html.escape(link)}" target="_blank" rel="noopener noreferrer nofollow">'
                 f"{html.escape(link)}</a></dd>")
    if file_articles > 1:
        rows += f"<dt>In the file</dt><dd>{file_articles:,} articles</dd>"
    paragraphs = "".join(f"<p>{_text(p)}</p>" for p in re.split(r"\n\s*\n", article.text) if p.strip())
    return (f'<article class="qa-reader"><h2 class="qa-h2">{_text(article.title)}</h2><dl class="qa-dl">{rows}</dl>'
            f'<div class="qa-reader-text">{paragraphs}</div></article>')


def delete_question(file: str, file_articles: int) -> str:
    """The confirmation asked before a delete: what goes, from where, in one step."""
    what = (f"its {file_articles:,} articles" if file_articles > 1 else "its article")
    return (f'<div class="qa-ask">Delete <b>{_text(file)}</b>? The file leaves the corpus folder and {what} '
            "leave the index, in one step; the answers stop citing them. This cannot be undone from the page."
            + (" (Every article of a JSON Lines or JSON file is in that one file: deleting one deletes the file.)"
               if file_articles > 1 else "") + "</div>")


# --- Filters ---------------------------------------------------------------------------------------------

def filters_label(filters: Filters | None, time_words: bool = True) -> str:
    """The Filters bar's heading, with a badge of how many are on (visible while it is folded). ``time_words``
    unticked (the question's dates not read) counts as one: it is not the default either."""
    count, words = 0, []
    if filters is not None and filters.active:  # "undated" alone changes nothing: it applies to a date range
        count, words = bool(filters.source) + filters.dated, [filters.describe()]
    if not time_words:
        count, words = count + 1, [*words, TIME_WORDS_OFF]
    return f"Filters · {count} on: {', '.join(words)}" if count else "Filters"


def filter_message(error: str | None) -> str:
    return f'<div class="qa-bad" role="alert">{html.escape(error)}</div>' if error else ""
