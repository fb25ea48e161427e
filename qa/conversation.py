"""Follow-up questions: whether a question leans on the conversation, and how to read it if it does.

The rule (README, "Follow-ups"): a question leans on the conversation only when it says so — a pronoun that
points back ("Who proposed *it*?"), a continuation ("*And* on Wednesday?", "What about the union?"), or no
words of its own beyond the question word ("Why?"). Such a question gets two readings: with the conversation
(the previous question, resolved the same way, and for pronouns the key terms of the previous answer) and as
asked. The assistant keeps the reading the articles support better, the conversation's unless reading it alone
is clearly better. A question that does not lean but names nothing (no name or number: "What was the score?",
"Was anyone sent off?") is read as asked first, and with the conversation only kept when the articles support
that reading better. A question that names something is read only as asked, whatever came before.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from qa.asked import Kind, question_kind
from qa.facts import names_in, numbers_in
from qa.metadata import repair

_CONTINUATION = re.compile(r"^\s*(and|but|also|so|then|what about|how about|what else|anything else|same for|"
                           r"and what about|or)\b", re.IGNORECASE)
_POINTING = re.compile(r"\b(it|its|they|them|their|theirs|he|she|his|her|him|hers|this|that|these|those|there|"
                       r"then|such|the same|the other|the latter|the former|else)\b", re.IGNORECASE)
#: "that"/"this" followed by a noun usually names the thing itself ("that deal" still leans; "that 4% offer"
#: too); these are the words after which "that" is a conjunction or relative pronoun instead.
_NOT_POINTING_AFTER = re.compile(r"\b(so|such|said|says|say|believe|think|know|claim|claimed|reported|report|fact|"
                                 r"mean|means|than|now)\s+that\b", re.IGNORECASE)
_ELSE = re.compile(r"\belse\b", re.IGNORECASE)
_MARKERS = re.compile(r"\s*(\[\d+\])+")
_QUESTION_WORDS = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how", "many", "much", "did",
                   "does", "do", "is", "was", "are", "were", "has", "have", "had", "will", "would", "can", "could",
                   "and", "but", "also", "so", "then", "about", "the", "a", "an", "of", "on", "in", "for", "to",
                   "else", "exactly", "long", "old", "again", "please"}


@dataclass(frozen=True)
class Turn:
    """One earlier message of a conversation."""

    role: str  # "user" or "assistant"
    content: str


@dataclass(frozen=True)
class Reading:
    """One way to read a question: what to search for, and what the answer must address.

    ``focus`` is the question the answer is scored against: the question itself, or for an elliptical one
    ("And on Wednesday?") the question it continues followed by it, so the asked-for kind and terms carry over.
    """

    query: str
    focus: str
    contextual: bool  # True when the conversation was used
    leans: bool = False  # the question points back: this reading is preferred to the one as asked


def leans_on_conversation(question: str) -> bool:
    """Whether ``question`` points back into the conversation (the README's rule)."""
    if _CONTINUATION.match(question):
        return True
    own = [w for w in re.findall(r"[\w'’-]+", question.lower()) if w not in _QUESTION_WORDS]
    if not own:
        return True
    pointing = _POINTING.findall(_NOT_POINTING_AFTER.sub(" ", question))
    return bool(pointing)


def asks_for_another(question: str) -> bool:
    """Whether ``question`` wants a value other than those already given ("Who *else* did he meet?")."""
    return bool(_ELSE.search(question))


def names_nothing(question: str) -> bool:
    """Whether ``question`` names no one and nothing (no capitalised name, no number): "What was the score?"."""
    return not names_in(question) and not numbers_in(question)


def readings(question: str, history: Sequence[Turn]) -> list[Reading]:
    """The readings of ``question`` to try, the preferred one first (module docstring)."""
    alone = Reading(question, question, False)
    leans = leans_on_conversation(question)
    if not leans and not names_nothing(question):
        return [alone]
    previous = _previous_question(history)
    if previous is None:
        return [alone]
    query = f"{question} {previous}"
    if not leans:
        return [alone, Reading(query, question, True)]
    if _POINTING.search(question):
        answer = _previous_answer(history)
        if answer:
            query += " " + _key_terms(answer)
    # An elliptical question ("And on Wednesday?") asks for the same kind of answer as the one it continues.
    kind, _ = question_kind(question)
    focus = question if kind is not Kind.OTHER else f"{previous} {question}"
    return [Reading(query, focus, True, leans=True), alone]


def _previous_question(history: Sequence[Turn], depth: int = 2) -> str | None:
    """The last user question; one that leaned on the conversation or named nothing carries the question before
    it too ("What was the score? Who won the cup final?"), up to ``depth`` questions in all."""
    users = [i for i, t in enumerate(history) if t.role == "user" and t.content.strip()]
    if not users:
        return None
    last = users[-1]
    question = " ".join(history[last].content.split())
    if depth > 1 and (leans_on_conversation(question) or names_nothing(question)):
        before = _previous_question(history[:last], depth - 1)
        if before:
            return f"{question} {before}"
    return question


def _previous_answer(history: Sequence[Turn]) -> str | None:
    for turn in reversed(history):
        if turn.role == "assistant" and turn.content.strip():
            return turn.content
        if turn.role == "user":
            return None
    return None


def _key_terms(answer: str, limit: int = 12) -> str:
    """The first sentence of the previous answer, markers removed, cut to its first ``limit`` content words."""
    first = _MARKERS.split(answer, maxsplit=1)[0]
    words = [w for w in re.findall(r"[\w'’%.,-]+", first) if w.lower() not in _QUESTION_WORDS]
    return " ".join(words[:limit])


def normalize_history(history: Sequence | None) -> list[Turn]:
    """Turns from ``{"role", "content"}`` messages (content a string), (user, assistant) pairs or Turn objects."""
    turns: list[Turn] = []
    for item in history or []:
        if isinstance(item, Turn):
            turns.append(Turn(item.role, _text(item.content)))
        elif isinstance(item, dict) and item.get("role") in ("user", "assistant"):
            turns.append(Turn(item["role"], _text(item.get("content"))))
        elif isinstance(item, list | tuple) and len(item) == 2:
            user, bot = item
            turns += [Turn("user", _text(user)), Turn("assistant", _text(bot))]
    return turns


def _text(content: object) -> str:
    return repair(content) if isinstance(content, str) else ""  # a lone surrogate would stop the tokenizer
