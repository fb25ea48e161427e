"""The assistant: resolves a question against its conversation, gathers the evidence once, and answers from it.

One question goes one way: readings (:mod:`qa.conversation`) -> search and evidence (:mod:`qa.evidence`) ->
the reading the articles support better -> the configured answerer. The extractive answerer's judgement is
also the gate that decides which reading wins, whichever answerer then writes the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from qa.answer import EMPTY, NO_MATCH, Answer, Answerer
from qa.conversation import Turn, normalize_history, readings
from qa.evidence import Evidence, gather
from qa.extractive import ExtractiveAnswerer
from qa.filters import Filters
from qa.retriever import MAX_QUERY_CHARS, Retriever

#: A reading that uses the conversation is kept unless reading the question alone is supported this much better:
#: a follow-up that points back ("Who proposed it?") is usually meant as one.
CONTEXT_PREFERENCE = 0.05


class Assistant:
    """Answers questions from one index. Safe to share between threads (see :class:`Retriever`)."""

    def __init__(self, retriever: Retriever, answerer: Answerer | None = None, k: int = 5):
        self.retriever = retriever
        self.judge = answerer if isinstance(answerer, ExtractiveAnswerer) else ExtractiveAnswerer()
        self.answerer = answerer or self.judge
        self.k = k

    @classmethod
    def open(cls, path: str | Path | None = None, **kwargs) -> Assistant:
        return cls(Retriever.open(path), **kwargs)

    def ask(self, question: str, history: Sequence | None = None, *, source: str | None = None,
            since: str | None = None, until: str | None = None, undated: bool = True,
            filters: Filters | None = None) -> Answer:
        """Answer ``question``; ``history`` holds the earlier turns ({"role", "content"} messages or Turn objects).

        ``filters`` (or ``source``/``since``/``until``/``undated``) narrow the articles searched; a bad value
        raises :class:`qa.filters.FilterError` (a ValueError) that names the field.
        """
        filters = filters or Filters.parse(source, since, until, undated)
        # Cut before any work: a 20 MB question through the API must cost no more than a long one.
        question = " ".join(str(question or "")[:2 * MAX_QUERY_CHARS].split())[:MAX_QUERY_CHARS]
        if not question:
            return Answer("", "Please type a question about the news articles.", abstained=True, reason=EMPTY)
        if filters.active and not self.retriever.count(filters):
            return Answer(question, f"No articles match these filters: {filters.describe()}. Clear or widen them "
                                    "to search the whole archive.", abstained=True, reason=NO_MATCH)
        return self.answerer.answer(self.evidence(question, normalize_history(history), filters))

    def evidence(self, question: str, history: Sequence[Turn] = (), filters: Filters | None = None) -> Evidence:
        """The evidence for the reading of ``question`` that the articles support best."""
        history = tuple(history)
        options = [gather(self.retriever, question, r, history, filters, self.k) for r in readings(question, history)]
        if len(options) == 1:
            return options[0]
        judged = [self.judge.judge(e) for e in options]
        contextual, alone = judged
        if (alone.answerable and not contextual.answerable) or (
                alone.answerable == contextual.answerable
                and alone.confidence > contextual.confidence + CONTEXT_PREFERENCE):
            return options[1]
        return options[0]
