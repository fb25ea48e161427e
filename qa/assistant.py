"""The assistant: resolves a question against its conversation, gathers the evidence once, and answers from it.

One question goes one way: readings (:mod:`qa.conversation`) -> search and evidence (:mod:`qa.answering.candidates`) ->
the reading the articles support better -> the configured answerer. The extractive answerer's judgement is
also the gate that decides which reading wins, whichever answerer then writes the answer.

With an :class:`~qa.written.Endpoint` (``QA_LLM_URL``) a language model writes the answer
(:class:`qa.written.WrittenAnswerer`, a :class:`ModelAnswerer`); :meth:`Assistant.stream` shows it as it is
written. :func:`assemble` puts an assistant together from settings: the one place that does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from qa.answer import EMPTY, NO_MATCH, Answer, Event, Quoted, final
from qa.answering.candidates import Evidence, gather
from qa.answering.composer import ExtractiveAnswerer, Judgement
from qa.conversation import Turn, normalize_history, readings
from qa.filters import Filters
from qa.metadata import repair
from qa.retriever import MAX_QUERY_CHARS, Retriever
from qa.when import Period, as_of_day, period

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.embedding import Embedder
    from qa.written import Endpoint

#: Passages the answerer reads. 8 rather than 5: on real-news dev the answer is in the top 5 passages for under
#: half of the questions; with 8, first sentence 20.4% -> 20.8%, answer 30.8% -> 32.1%, refused 4.2% -> 2.5%
#: (BENCHMARKS.md, "Real news").
PASSAGES = 8


class Answerer(Protocol):
    """Writes an answer from the evidence for a question, citing it (:class:`ExtractiveAnswerer` quotes it)."""

    def answer(self, evidence: Evidence) -> Answer: ...


class ModelAnswerer(Protocol):
    """An answerer whose answers a language model writes, gated by an extractive judge: what the assistant and the
    web page use of :class:`qa.written.WrittenAnswerer`."""

    #: Where the model is reached (its ``model``: the name configured, None for the endpoint's first).
    endpoint: Endpoint
    #: The extractive answerer whose judgement decides whether the model is asked at all, and whose quotes stand in.
    judge: ExtractiveAnswerer

    def model_name(self) -> str | None:
        """The model's name as configured, else as the endpoint lists it; None while it cannot be reached."""
        ...

    def stream(self, evidence: Evidence, judgement: Judgement | None = None) -> Iterator[Event]:
        """The quotes (:class:`~qa.answer.Quoted`), then the model's :class:`~qa.answer.Token` pieces and
        :class:`~qa.answer.Checked` sentences, then the :class:`~qa.answer.Answer`. ``judgement``: the judge's,
        of this evidence, when already made."""
        ...


class Assistant:
    """Answers questions from one index. Safe to share between threads (see :class:`Retriever`)."""

    def __init__(self, retriever: Retriever, answerer: Answerer | None = None, k: int = PASSAGES,
                 writer: ModelAnswerer | None = None):
        """``answerer``: quotes the evidence (default: an :class:`ExtractiveAnswerer`, also the judge of readings);
        ``writer``: a language model's answerer, which then answers unless quotes are asked for (:func:`assemble`
        makes one from settings)."""
        self.retriever = retriever
        if isinstance(answerer, ExtractiveAnswerer):
            self.judge = answerer
        else:
            self.judge = writer.judge if writer is not None else ExtractiveAnswerer()
        self.answerer: Answerer = answerer or self.judge
        self.writer = writer
        self.k = k

    @classmethod
    def open(cls, path: str | Path | None = None, **kwargs) -> Assistant:
        return cls(Retriever.open(path), **kwargs)

    def ask(self, question: str, history: Sequence | None = None, *, source: str | None = None,
            since: str | None = None, until: str | None = None, undated: bool = True,
            filters: Filters | None = None, quotes: bool = False, as_of: str | dt.date | None = None,
            time_words: bool = True) -> Answer:
        """Answer ``question``; ``history`` holds the earlier turns ({"role", "content"} messages or Turn objects).

        ``filters`` (or ``source``/``since``/``until``/``undated``) narrow the articles searched; a bad value
        raises :class:`qa.filters.FilterError` (a ValueError) that names the field. ``quotes``: answer with quoted
        sentences even when a language model is configured (the web chat's "Quotes" switch).

        ``as_of``: the day the question is asked (YYYY-MM-DD or a date; default today). Articles dated after it are
        not used, and time words ("this week", "yesterday", "in early December 2024") are read relative to it: the
        articles of the days they name are preferred, and ``Answer.period`` says which days
        (:mod:`qa.when`). ``time_words=False`` reads none.
        """
        return final(self.stream(question, history, source=source, since=since, until=until, undated=undated,
                                 filters=filters, quotes=quotes, as_of=as_of, time_words=time_words))

    def stream(self, question: str, history: Sequence | None = None, *, source: str | None = None,
               since: str | None = None, until: str | None = None, undated: bool = True,
               filters: Filters | None = None, quotes: bool = False, as_of: str | dt.date | None = None,
               time_words: bool = True) -> Iterator[Event]:
        """As :meth:`ask`, as it is written: for a written answer first the quotes (:class:`~qa.answer.Quoted`,
        to show at once), then :class:`~qa.answer.Token` pieces as the model writes, then a
        :class:`~qa.answer.Checked` per written sentence, then the :class:`~qa.answer.Answer` (always last, and
        the only event of the extractive answerer)."""
        filters = filters or Filters.parse(source, since, until, undated)
        # Cut before any work: a 20 MB question through the API must cost no more than a long one.
        # A lone surrogate ("\ud800" from JSON) is repaired: the tokenizer refuses text UTF-8 cannot encode.
        question = " ".join(repair(str(question or "")[:2 * MAX_QUERY_CHARS]).split())[:MAX_QUERY_CHARS]
        if not question:
            yield Answer("", "Please type a question about the news articles.", abstained=True, reason=EMPTY)
            return
        if filters.active and not self.retriever.count(filters):
            yield Answer(question, f"No articles match these filters: {filters.describe()}. Clear or widen them "
                                   "to search the whole archive.", abstained=True, reason=NO_MATCH)
            return
        day = as_of_day(as_of)
        when = period(question, day) if time_words else None
        if as_of is not None:  # no article from after the day asked; without as_of, every article is from before today
            filters = dataclasses.replace(filters, until=min(filters.until or day.isoformat(), day.isoformat()))
        evidence, judgement = self._resolve(question, normalize_history(history), filters, when,
                                            day.isoformat() if as_of is not None else None)
        # The judgement that chose the reading is passed on to answerers gated by it: it is not made twice.
        events: Iterator[Event]
        if self.writer is not None and not quotes:
            events = self.writer.stream(evidence, judgement if self.writer.judge is self.judge else None)
        elif quotes or self.answerer is self.judge:
            events = iter([self.judge.answer(evidence, judgement)])
        else:
            events = iter([self.answerer.answer(evidence)])
        for event in events:
            yield _dated(event, when) if when else event

    @property
    def writes(self) -> bool:
        """Whether a language model writes the answers (``QA_LLM_URL``); ``ask(..., quotes=True)`` still quotes."""
        return self.writer is not None

    def evidence(self, question: str, history: Sequence[Turn] = (), filters: Filters | None = None,
                 when: Period | None = None, as_of: str | dt.date | None = None) -> Evidence:
        """The evidence for the reading of ``question`` that the articles support best; ``as_of`` as for
        :meth:`ask` (no article dated after it; ages are counted from it)."""
        day = None
        if as_of is not None:
            day = as_of_day(as_of).isoformat()
            filters = filters or Filters()
            filters = dataclasses.replace(filters, until=min(filters.until or day, day))
        return self._resolve(question, history, filters, when, day)[0]

    def _resolve(self, question: str, history: Sequence[Turn] = (), filters: Filters | None = None,
                 when: Period | None = None, as_of: str | None = None) -> tuple[Evidence, Judgement]:
        """The best-supported reading's evidence, and the judgement of it that chose it."""
        history = tuple(history)
        options = [gather(self.retriever, question, r, history, filters, self.k, period=when, as_of=as_of)
                   for r in readings(question, history)]
        judged = [self.judge.judge(e) for e in options]
        if len(options) == 1:
            return options[0], judged[0]
        first, second = judged
        # The reading the articles support better: answered rather than refused, then the higher confidence (on a
        # tie, the first: the conversation's for a question that points back). A head start for the conversation's
        # reading of such a question (0.05 in confidence, hand-set) moved no answer of the regression sets and no
        # newsqa conversation from 0 to 0.2: removed (BENCHMARKS.md, tenth session).
        if first.answerable and second.answerable and _anchored(first) != _anchored(second):
            # A reading whose best sentence states the asked-for kind next to the question's words ("They walked
            # out because ...") is the better supported, whatever the confidences: the conversation's query carries
            # the previous turn, which lifts its passages' similarity (news dev conversations 13 -> 14 of 15, no
            # other dev, check or SQuAD question moved: BENCHMARKS.md, "Anchored readings, leaders' titles and
            # places by relation").
            return (options[1], second) if _anchored(second) else (options[0], first)
        if second.answerable and not first.answerable or (
                first.answerable == second.answerable and second.confidence > first.confidence):
            return options[1], second
        return options[0], first


def assemble(settings: Settings, retriever: Retriever | None = None, embedder: Embedder | None = None,
             k: int = PASSAGES) -> Assistant:
    """The assistant ``settings`` describe, over ``retriever`` (default: the index they name, with ``embedder``):
    a language model writes its answers when ``settings.llm`` names an endpoint, else it quotes."""
    from qa.written import Endpoint

    retriever = retriever or Retriever(embedder=embedder, settings=settings)
    return with_endpoint(retriever, Endpoint.from_settings(settings.llm), k)


def with_endpoint(retriever: Retriever, endpoint: Endpoint | None, k: int = PASSAGES) -> Assistant:
    """An assistant over ``retriever`` whose answers the model at ``endpoint`` writes (None: quotes), judged by
    one extractive answerer."""
    judge = ExtractiveAnswerer()
    if endpoint is None:
        return Assistant(retriever, judge, k)
    from qa.written import WrittenAnswerer

    return Assistant(retriever, judge, k, writer=WrittenAnswerer(endpoint, retriever.embed_texts, judge))


def _dated(event: Event, when: Period) -> Event:
    """An answer (quoted first, or final) that says which days the question's time words named."""
    if isinstance(event, Answer):
        return dataclasses.replace(event, period=when.describe())
    if isinstance(event, Quoted):
        return Quoted(dataclasses.replace(event.answer, period=when.describe()))
    return event


def _anchored(j: Judgement) -> bool:
    """Whether the judgement's best sentence states its value of the asked-for kind next to a question term."""
    return j.best >= 0 and bool(j.anchored[j.best])
