"""What an answer is: sentences, each cited to the exact sentence of the article it came from.

An answerer (:class:`qa.assistant.Answerer`) turns the evidence the assistant gathered into an :class:`Answer`. The
default, :class:`qa.answering.composer.ExtractiveAnswerer`, writes nothing of its own; any other (a language model,
say) implements the same protocol, and retrieval and the UI stay as they are. This module depends on no answerer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from qa.retriever import Passage

#: What the answer says when the articles do not answer the question.
ABSTAIN_TEXT = "The articles in the archive do not answer this question."
#: Said before the quoted sentence when the articles say the fact is not known.
UNKNOWN_TEXT = "The articles do not say; they report:"
#: Said before an answer whose sentences do not say all that the question asks (qa/answering/unsaid.py), and what.
UNSAID_TEXT = "Not said in these articles:"
#: Why an answer abstained, in ``Answer.reason``.
UNANSWERED, NO_MATCH, EMPTY = "unanswered", "no_match", "empty"
#: Who wrote an answer, in ``Answer.answerer``: quoted sentences, or a language model (``Answer.model``).
QUOTES, WRITTEN = "quotes", "written"
#: What the reader is told wrote a quoted answer (the web chat's switch: this or "Written by <model>").
QUOTES_AUTHOR = "Quotes"


@dataclass(frozen=True)
class Citation:
    """A numbered source: one sentence of one article, quoted exactly.

    ``part`` says what the offsets index: "text" (``article.text[start:end] == snippet``) or "title" (a headline
    that holds the answer: ``article.title[start:end] == snippet``).
    """

    number: int
    article_id: str
    title: str
    date: str | None
    source: str | None
    url: str | None
    start: int
    end: int
    snippet: str
    before: str = ""  # a little of the article's text just before the snippet, for context
    after: str = ""  # and just after it
    part: str = "text"


@dataclass(frozen=True)
class AnswerSentence:
    """One sentence of the answer and the numbers of the citations that support it."""

    text: str
    citations: tuple[int, ...]


@dataclass(frozen=True)
class Unsupported:
    """A sentence the language model wrote that its citations do not support: left out of the answer."""

    text: str
    reason: str  # one line, e.g. "states 12000, which the cited sentences do not"


@dataclass(frozen=True)
class Answer:
    """An answer, its citations (numbered in order of first use), and whether the articles answer at all."""

    question: str
    text: str
    sentences: list[AnswerSentence] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    abstained: bool = False
    related: list[Passage] = field(default_factory=list)  # closest passages, when abstaining
    #: Said before the sentences, e.g. "Reports differ: about 4,300 [1]; 4,500 [2]."; part of ``text``.
    caveat: str | None = None
    #: Why the answer abstained: UNANSWERED (the articles do not say), NO_MATCH (no article passes the filters),
    #: EMPTY (no question); None when it answers.
    reason: str | None = None
    answerer: str = QUOTES  # QUOTES or WRITTEN
    model: str | None = None  # the language model that wrote it, when WRITTEN
    #: One line when the configured language model could not answer and these are the quotes instead.
    notice: str | None = None
    unsupported: list[Unsupported] = field(default_factory=list)  # written sentences left out, and why
    #: The days the question's time words named, preferred in the search: "2026-01-05 to 2026-01-12, from the
    #: question ('this week')" (:mod:`qa.when`); None when it has none.
    period: str | None = None

    @property
    def author(self) -> str:
        """For the reader: "Quotes" or "Written by <model>"."""
        return written_by(self.model) if self.answerer == WRITTEN else QUOTES_AUTHOR

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Token:
    """Streamed: a piece of the written answer as the model sends it (not yet checked)."""

    text: str


@dataclass(frozen=True)
class Checked:
    """Streamed after the tokens: one written sentence and its verdict. ``citations`` are numbered as in the final
    :class:`Answer` (empty when the sentence is left out)."""

    text: str
    supported: bool
    citations: tuple[int, ...] = ()
    reason: str | None = None


#: What :meth:`qa.assistant.Assistant.stream` yields: tokens, then checked sentences, then the Answer (always last).
@dataclass(frozen=True)
class Quoted:
    """Streamed first by a written answer, before the model is asked: the quoted answer to show at once, while the
    model writes. The stream's last event, the :class:`Answer`, replaces it (written, or these quotes again)."""

    answer: Answer


Event = Quoted | Token | Checked | Answer


def written_by(model: str | None) -> str:
    """Who wrote a written answer, for the reader: "Written by qwen2.5-0.5b"."""
    return f"Written by {model or 'the model'}"


def final(events: Iterable[Event]) -> Answer:
    """The Answer that ends a stream of events (the events before it consumed)."""
    answer = None
    for answer in events:  # noqa: B007 - the last one is the answer
        pass
    if not isinstance(answer, Answer):
        raise TypeError("a stream of answer events must end with its Answer")
    return answer
