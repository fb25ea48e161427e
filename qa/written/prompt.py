"""The prompt, in one place: the question, the conversation, and the evidence as numbered sentences.

The model sees the best-scoring sentences of the evidence (the extractive answerer's ranking), grouped by
article in reading order and numbered [1], [2], ...; it is asked for a short answer in which every sentence
ends with the numbers of the sentences it rests on. Those numbers are what :mod:`qa.written.check` checks, and
what becomes the answer's citations with their exact offsets.

Size: at most :data:`MAX_SENTENCES` sentences and :data:`MAX_EVIDENCE_CHARS` characters of them, the last
:data:`MAX_TURNS` turns of the conversation cut to :data:`MAX_TURN_CHARS` each, and :data:`MAX_ANSWER_TOKENS` to
write: under 1,000 tokens in all at about 4 characters a token of news English (an estimate, not counted with
the model's tokenizer), well inside a 4k context. Fewer sentences also mean less prompt to read: on the 2 shared
cores the first version's 12 sentences took 22-45 s to the first token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from qa.answering.candidates import TITLE, Candidate, Evidence
from qa.answering.composer import Judgement
from qa.conversation import Turn

MAX_SENTENCES = 8
MAX_EVIDENCE_CHARS = 2500
MAX_TURNS = 4
MAX_TURN_CHARS = 300
MAX_ANSWER_TOKENS = 120

#: What the model is told to say when the sentences do not answer; any reply that says so is an abstention.
CANNOT = "I cannot answer."
_CANNOT = re.compile(r"\b(?:i\s+)?(?:cannot|can['’]?t|can not|am unable to|could not|couldn['’]t)\s+(?:answer|find|"
                     r"determine|tell)|\b(?:do(?:es)? not|don['’]t|doesn['’]t)\s+(?:say|mention|state|answer|"
                     r"provide|contain)|\bno information\b|\bnot (?:mentioned|stated|provided)\b", re.IGNORECASE)

SYSTEM = f"""You answer questions about news articles. Use only the numbered sentences you are given.
Write a short answer of one to three sentences.
End every sentence with the numbers of the sentences that support it, in square brackets, like [2] or [1][3].
Copy numbers, dates and names exactly as the sentences write them. Add nothing they do not say.
If the sentences do not answer the question, reply only: {CANNOT}"""


@dataclass(frozen=True)
class Numbered:
    """The sentences shown to the model: ``sentences[n - 1]`` is the one numbered [n]."""

    sentences: tuple[Candidate, ...]

    def get(self, number: int) -> Candidate | None:
        return self.sentences[number - 1] if 1 <= number <= len(self.sentences) else None


def select(evidence: Evidence, judgement: Judgement) -> Numbered:
    """The best-scoring eligible sentences that fit the budget, in the order they stand in their articles."""
    if not judgement.candidates:
        return Numbered(())
    chosen: list[Candidate] = []
    size = 0
    for i in np.argsort(-judgement.scores, kind="stable"):
        c = judgement.candidates[int(i)]
        if len(chosen) == MAX_SENTENCES or size + len(c.sentence.text) > MAX_EVIDENCE_CHARS:
            break
        chosen.append(c)
        size += len(c.sentence.text)
    articles = list(dict.fromkeys(p.article_id for p in evidence.passages))
    chosen.sort(key=lambda c: (articles.index(c.sentence.article_id) if c.sentence.article_id in articles
                               else len(articles), c.part != TITLE, c.sentence.start))
    return Numbered(tuple(chosen))


def messages(question: str, history: tuple[Turn, ...], numbered: Numbered) -> list[dict[str, str]]:
    """The chat messages for ``question``: the system rules, then one user message with everything else."""
    lines: list[str] = []
    article = None
    for n, c in enumerate(numbered.sentences, start=1):
        if c.sentence.article_id != article:
            article = c.sentence.article_id
            meta = ", ".join(x for x in (c.passage.source, c.passage.date) if x)
            lines += ["", f"Article: {_one_line(c.passage.title)}" + (f" ({meta})" if meta else "")]
        lines.append(f"[{n}] {_one_line(c.sentence.text)}")
    turns = [t for t in history if t.content.strip()][-MAX_TURNS:]
    if turns:
        lines += ["", "Conversation so far:"]
        lines += [f"{'User' if t.role == 'user' else 'Assistant'}: {_one_line(t.content)[:MAX_TURN_CHARS]}"
                  for t in turns]
    lines += ["", f"Question: {_one_line(question)}",
              "Answer in one to three sentences, each ending with the [numbers] of the sentences above it uses:"]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Sentences:" + "\n".join(lines)}]


def is_cannot(text: str) -> bool:
    """Whether a reply says the sentences do not answer (it cites nothing, or starts by saying so)."""
    head = text.strip()[:120]
    return bool(_CANNOT.search(head)) and ("[" not in head or head.lower().startswith(("i cannot", "i can't")))


def _one_line(text: str) -> str:
    return " ".join(text.split())
