"""What an answer is: sentences, each cited to the exact sentence of the article it came from.

An :class:`Answerer` turns the :class:`~qa.evidence.Evidence` the assistant gathered into an :class:`Answer`.
The default, :class:`qa.extractive.ExtractiveAnswerer`, writes nothing of its own; any other (a language model,
say) implements the same protocol, and retrieval and the UI stay as they are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Protocol

from qa.retriever import Passage

if TYPE_CHECKING:
    from qa.evidence import Evidence

#: What the answer says when the articles do not answer the question.
ABSTAIN_TEXT = "The articles in the archive do not answer this question."
#: Said before the quoted sentence when the articles say the fact is not known.
UNKNOWN_TEXT = "The articles do not say; they report:"
#: Why an answer abstained, in ``Answer.reason``.
UNANSWERED, NO_MATCH, EMPTY = "unanswered", "no_match", "empty"


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

    def to_dict(self) -> dict:
        return asdict(self)


class Answerer(Protocol):
    """Writes an answer from the evidence for a question, citing it."""

    def answer(self, evidence: Evidence) -> Answer: ...
