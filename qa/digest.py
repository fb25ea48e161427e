"""Questions about a period ("What happened in early December 2024?", "Summarize the news"): a digest.

An ordinary answer quotes the sentences that answer a question; a question about a period has no such sentence,
so it was refused or answered with unrelated quotes. :func:`digest` answers it instead with the articles of the
window (the time words of :func:`qa.when.period`; without any, the archive's last :data:`DEFAULT_DAYS` days),
grouped by story (articles whose titles and leads say nearly the same), newest story first, each story told by
the lead sentence of its newest article, cited. :func:`Digest.answer` gives it as an :class:`~qa.answer.Answer`,
so it is shown, saved and exported like any answer. It reads the index's article list and articles; it does not
change how other questions are answered.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from qa.answer import Answer, AnswerSentence, Citation
from qa.chunking import split_sentences
from qa.listing import MAX_PAGE_SIZE
from qa.when import Period, as_of_day, period

__all__ = ["DEFAULT_DAYS", "DIGEST", "Digest", "Story", "asks_for_digest", "digest"]

#: The ``answerer`` of a digest's Answer: the page shows its sentences as a list, one story each.
DIGEST = "digest"
#: The window of "Summarize the news" (no time words): the archive's newest day and the days before it.
DEFAULT_DAYS = 7
#: The most stories a digest tells, and the most articles read for one.
MAX_STORIES, MAX_ARTICLES = 8, 400
#: Two articles tell the same story when their title-and-lead word sets overlap at least this much (Jaccard).
SAME_STORY = 0.3
#: Around a lead sentence, the context its card shows.
_CONTEXT_CHARS = 160

#: A question that asks what happened, once its time words are taken out: nothing about a topic may remain.
_DIGEST = re.compile(
    r"(?:please\s+)?(?:(?:what|whats|what's|what\s+is|what\s+was|what\s+has)\s+(?:happened|been\s+happening|"
    r"going\s+on|went\s+on|new|(?:in\s+)?the\s+news)|what\s+(?:were|are)\s+the\s+(?:main\s+|top\s+|big\s+)?"
    r"(?:news|stories|headlines|events)|(?:summari[sz]e|recap|give\s+me\s+(?:a\s+)?(?:summary|digest|recap)\s+of|"
    r"catch\s+me\s+up\s+on)\s+(?:the\s+)?(?:news|articles|stories|headlines|events)|"
    r"(?:a\s+)?(?:news\s+)?(?:digest|summary|recap)(?:\s+of\s+the\s+news)?|(?:the\s+|any\s+)?(?:news|headlines))"
    r"(?:\s+(?:in\s+the\s+(?:news|archive|articles)|in\s+the\s+world|recently|lately|so\s+far))?", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+|\d[\d,.]*")
_STOP = frozenset("""a an the and or of to in on at for with by from as is are was were be been has have had it its
this that these those their his her he she they we you i not but than then into over after before about said says
will would could should may might more most new also""".split())


def asks_for_digest(question: str, as_of: str | dt.date | None = None) -> bool:
    """Whether ``question`` asks what happened (in a period) rather than a fact: "What happened in early December
    2024?", "Summarize the news this week", "What were the main stories last month?"; not "What happened in
    Seoul?" (a topic remains once the time words are out)."""
    text = " ".join(question.split())
    window = period(text, as_of_day(as_of))
    if window is not None:
        text = text.replace(window.words, " ")
    text = re.sub(r"\b(?:in|during|on|over|for|from)\s*$", "", re.sub(r"[?.!,:;\s]+$", "", text).strip()).strip()
    text = re.sub(r"\s*[?.!,:;]+$", "", text)
    return bool(_DIGEST.fullmatch(text))


@dataclass(frozen=True)
class Lead:
    """One article of a story: its metadata and lead sentence (``text[start:end] == sentence``)."""

    article_id: str
    title: str
    date: str | None
    source: str | None
    url: str | None
    sentence: str
    start: int
    end: int
    before: str = ""
    after: str = ""


@dataclass(frozen=True)
class Story:
    """Articles telling one story, newest first; ``articles[0]``'s lead tells it."""

    articles: tuple[Lead, ...]

    @property
    def date(self) -> str | None:
        return self.articles[0].date


@dataclass(frozen=True)
class Digest:
    """The stories of ``window``, newest first; ``total`` articles were dated inside it (``stories`` tell at most
    :data:`MAX_STORIES` of them)."""

    question: str
    window: Period
    stories: tuple[Story, ...]
    total: int

    def answer(self) -> Answer:
        """The digest as an answer: one cited sentence per story (its lead; a story of several articles cites
        up to three), and a caveat naming the window and how many articles it holds."""
        citations: list[Citation] = []
        sentences: list[AnswerSentence] = []
        for story in self.stories:
            numbers = []
            for lead in story.articles[:3]:
                citations.append(Citation(len(citations) + 1, lead.article_id, lead.title, lead.date, lead.source,
                                          lead.url, lead.start, lead.end, lead.sentence, lead.before, lead.after))
                numbers.append(len(citations))
            sentences.append(AnswerSentence(_dated(story.articles[0]), tuple(numbers)))
        days = self.window.since if self.window.since == self.window.until else \
            f"{self.window.since} to {self.window.until}"
        if not sentences:
            return Answer(self.question, f"No articles in the archive are dated {days}.", abstained=True,
                          reason="digest: no articles in the window", answerer=DIGEST)
        told = len(self.stories)
        caveat = (f"Digest of {days}: {self.total} article{'s' * (self.total != 1)}, {told} "
                  f"stor{'ies' if told != 1 else 'y'}{' (the newest)' if told == MAX_STORIES else ''}, newest first.")
        text = " ".join(f"{s.text} {''.join(f'[{n}]' for n in s.citations)}" for s in sentences)
        return Answer(self.question, f"{caveat} {text}", sentences, citations, caveat=caveat, answerer=DIGEST)


def digest(retriever, question: str, as_of: str | dt.date | None = None, source: str | None = None,
           since: str | None = None, until: str | None = None) -> Digest:
    """The digest that answers ``question`` from ``retriever``'s index: the window its time words name (relative
    to ``as_of``, default today); without any, the dates ``since``/``until`` (a form's filters) or else the
    :data:`DEFAULT_DAYS` days up to the archive's newest article. ``source`` keeps that source's articles only.
    The list is read newest first, and only down to the window's first day."""
    window = period(question, as_of_day(as_of))
    lower = window.since if window else since
    rows: list = []
    for row in _newest_first(retriever, source):
        if window is None and not (since or until):  # the archive's last days, from its newest article
            newest = dt.date.fromisoformat(row.date[:10])
            window = Period((newest - dt.timedelta(days=DEFAULT_DAYS - 1)).isoformat(), newest.isoformat(),
                            f"the archive's last {DEFAULT_DAYS} days")
            lower = window.since
        if lower and row.date[:10] < lower:
            break
        rows.append(row)
        if len(rows) >= 20 * MAX_ARTICLES:  # an open window over a large archive: its newest part is enough
            break
    if window is None:
        dates = [r.date[:10] for r in rows if not until or r.date[:10] <= until]
        today = as_of_day(as_of).isoformat()
        window = Period(since or (dates[-1] if dates else today), until or (dates[0] if dates else today),
                        "the filters' dates" if since or until else f"the archive's last {DEFAULT_DAYS} days")
    inside = [r for r in rows if window.holds(r.date)]
    leads = [lead for lead in (_lead(retriever, r) for r in inside[:MAX_ARTICLES]) if lead is not None]
    return Digest(question, window, tuple(_stories(leads)[:MAX_STORIES]), len(inside))


def _newest_first(retriever, source: str | None):
    """The archive's dated articles (of ``source`` only, when given), newest first, a page at a time."""
    offset = 0
    while True:
        page = retriever.articles("", "date", True, offset, MAX_PAGE_SIZE)
        for row in page.rows:
            if row.date and (not source or row.source == source):
                yield row
        offset += len(page.rows)
        if not page.rows or offset >= page.total:
            return


def _lead(retriever, row) -> Lead | None:
    """The article's lead: its first sentence that reads as one (a full stop and some words), else its first."""
    article = retriever.article(row.id)
    if article is None or not article.text.strip():
        return None
    spans = split_sentences(article.text)
    if not spans:
        return None
    text = article.text

    def reads_as_one(span) -> bool:
        words = text[span.start:span.end]
        return words.endswith((".", "!", "?", "”", '"', "’")) and len(words.split()) >= 6

    span = next((s for s in spans if reads_as_one(s)), spans[0])
    return Lead(row.id, row.title, row.date, row.source, article.url, text[span.start:span.end], span.start, span.end,
                text[max(0, span.start - _CONTEXT_CHARS):span.start], text[span.end:span.end + _CONTEXT_CHARS])


def _stories(leads: list[Lead]) -> list[Story]:
    """Leads grouped by story (a greedy pass, newest first: an article joins the first story it shares enough
    words with), the stories newest first."""
    groups: list[tuple[set[str], list[Lead]]] = []
    for lead in leads:
        words = _words(f"{lead.title} {lead.sentence}")
        for seen, members in groups:
            if words and len(words & seen) / len(words | seen) >= SAME_STORY:
                members.append(lead)
                seen |= words
                break
        else:
            groups.append((set(words), [lead]))
    return [Story(tuple(members)) for _, members in groups]


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text) if w.lower() not in _STOP}


def _dated(lead: Lead) -> str:
    """A story's sentence: its lead, after its date and title."""
    when = f"{lead.date[:10]}, " if lead.date else ""
    return f"{when}{lead.title}: {lead.sentence}"
