"""Turning retrieved passages into a short answer whose every sentence is cited to its source sentence.

The default :class:`ExtractiveAnswerer` writes nothing of its own: it picks the article sentences that best
answer the question, merges the same fact told by several articles into one sentence with all their
citations, and abstains when no sentence is close enough. Any other answerer (an LLM, say) only needs
to implement :class:`Answerer`; retrieval and the UI stay as they are.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import bm25s
import bm25s.stopwords
import numpy as np

from qa.retriever import Passage, Retriever, Sentence

#: What the answer says when the articles do not answer the question.
ABSTAIN_TEXT = "The articles in the archive do not answer this question."


@dataclass(frozen=True)
class Citation:
    """A numbered source: one sentence of one article, quoted exactly (``text[start:end] == snippet``)."""

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

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Turn:
    """One earlier message of a conversation."""

    role: str  # "user" or "assistant"
    content: str


class Answerer(Protocol):
    """Writes an answer to ``question`` from ``passages`` (best first), citing them."""

    def answer(self, question: str, passages: list[Passage], history: Sequence[Turn] = ()) -> Answer: ...


@dataclass(frozen=True)
class ExtractiveSettings:
    """Knobs of the extractive answerer; the defaults were chosen on ../shared/eval (see BENCHMARKS.md)."""

    max_sentences: int = 3  # sentences in an answer
    margin: float = 0.2  # further sentences must score within this of the best one
    lexical_weight: float = 1.0  # weight of question-term coverage beside embedding similarity
    passage_weight: float = 0.75  # weight of the best passage's similarity in the confidence
    abstain_below: float = 0.87  # abstain when the confidence is lower (set by bench/calibrate.py)
    dangling_penalty: float = 0.1  # for sentences that lean on the one before ("However, ...", "It ...")
    duplicate_above: float = 0.80  # sentences this similar state the same fact: merged, all cited
    context_chars: int = 160


class ExtractiveAnswerer:
    """Answers with verbatim article sentences, scored by embedding similarity and term coverage."""

    def __init__(self, retriever: Retriever, settings: ExtractiveSettings | None = None):
        self.retriever = retriever
        self.settings = settings or ExtractiveSettings()

    def answer(self, question: str, passages: list[Passage], history: Sequence[Turn] = ()) -> Answer:
        s = self.settings
        candidates, scores, best_passage = self.assess(question, passages, history)
        if not candidates or self.confidence(scores, best_passage) < s.abstain_below:
            return Answer(question, ABSTAIN_TEXT, abstained=True, related=passages)
        order = np.argsort(-scores)
        vectors = np.stack([c.sentence.vector for c in candidates])
        chosen: list[list[int]] = []  # each: indices of candidates saying one fact, the first one shown
        used: set[int] = set()
        for i in order:
            if len(chosen) == s.max_sentences or scores[i] < scores[order[0]] - s.margin:
                break
            if int(i) in used:
                continue
            group = [int(i)]  # the sentence shown, then one twin per other article that says the same
            articles = {candidates[i].sentence.article_id}
            for j in np.flatnonzero(vectors @ vectors[i] >= s.duplicate_above):
                if j not in used and candidates[j].sentence.article_id not in articles:
                    articles.add(candidates[j].sentence.article_id)
                    group.append(int(j))
                used.add(int(j))
            chosen.append(group)
        return self._compose(question, candidates, chosen)

    def assess(self, question: str, passages: list[Passage], history: Sequence[Turn] = ()
               ) -> tuple[list[_Candidate], np.ndarray, float]:
        """The candidate sentences of the passages, their scores, and the best passage's similarity."""
        query = retrieval_query(question, history)
        candidates = self._candidates(passages)
        if not candidates:
            return [], np.zeros(0), 0.0
        scores = self.score(query, [c.sentence for c in candidates])
        return candidates, scores, float(self.retriever.similarities(query, passages).max())

    def confidence(self, scores: np.ndarray, best_passage: float) -> float:
        """How sure we are the passages answer at all: the best sentence's score plus the best passage's."""
        return float(scores.max()) + self.settings.passage_weight * best_passage if len(scores) else 0.0

    def score(self, query: str, sentences: list[Sentence]) -> np.ndarray:
        """Cosine similarity to the query, plus the weighted share of the question's terms each sentence holds.

        Terms are weighted by how rare they are among the candidate sentences, so that "Kursk" counts for
        more than "North Korea" in an archive about North Korea, and a question whose key terms appear
        nowhere scores low (which is what abstention needs).
        """
        qv = self.retriever.embed_query(query)
        similarity = np.stack([s.vector for s in sentences]) @ qv
        terms = list(dict.fromkeys(_terms([query])[0]))
        if not terms:
            return similarity
        held = [set(t) for t in _terms([s.text for s in sentences])]
        df = np.array([sum(t in h for h in held) for t in terms])
        idf = np.log1p(len(held) / (1 + df))
        coverage = np.array([idf[[t in h for t in terms]].sum() for h in held]) / idf.sum()
        dangling = np.array([bool(_DANGLING.match(s.text)) for s in sentences])
        return similarity + self.settings.lexical_weight * coverage - self.settings.dangling_penalty * dangling

    def _candidates(self, passages: list[Passage]) -> list[_Candidate]:
        by_chunk = self.retriever.sentences(passages)
        seen: set[tuple[str, int]] = set()
        out: list[_Candidate] = []
        for p in passages:
            for sentence in by_chunk.get(p.chunk_id, []):
                key = (sentence.article_id, sentence.position)
                if key not in seen:
                    seen.add(key)
                    out.append(_Candidate(sentence, p))
        return out

    def _compose(self, question: str, candidates: list[_Candidate], chosen: list[list[int]]) -> Answer:
        citations: list[Citation] = []
        numbers: dict[tuple[str, int], int] = {}
        sentences: list[AnswerSentence] = []
        for group in chosen:
            refs = []
            for i in group:
                c = candidates[i]
                key = (c.sentence.article_id, c.sentence.position)
                if key not in numbers:
                    numbers[key] = len(citations) + 1
                    citations.append(self._cite(numbers[key], c))
                refs.append(numbers[key])
            sentences.append(AnswerSentence(candidates[group[0]].sentence.text, tuple(refs)))
        text = " ".join(f"{_one_line(a.text)} {''.join(f'[{n}]' for n in a.citations)}" for a in sentences)
        return Answer(question, text, sentences, citations)

    def _cite(self, number: int, c: _Candidate) -> Citation:
        p, s = c.passage, c.sentence
        width = self.settings.context_chars
        before = p.text[max(0, s.start - p.start - width):s.start - p.start]
        after = p.text[s.end - p.start:s.end - p.start + width]
        return Citation(number, p.article_id, p.title, p.date, p.source, p.url, s.start, s.end, s.text,
                        _trim_left(before), _trim_right(after))


@dataclass(frozen=True)
class _Candidate:
    sentence: Sentence
    passage: Passage


class Assistant:
    """Retrieves passages for a question (and its conversation) and answers from them."""

    def __init__(self, retriever: Retriever, answerer: Answerer | None = None, k: int = 5):
        self.retriever = retriever
        self.answerer = answerer or ExtractiveAnswerer(retriever)
        self.k = k

    @classmethod
    def open(cls, path: str | Path | None = None, **kwargs) -> Assistant:
        return cls(Retriever.open(path), **kwargs)

    def ask(self, question: str, history: Sequence | None = None, *, source: str | None = None,
            since: str | None = None, until: str | None = None) -> Answer:
        """Answer ``question``; ``history`` holds the earlier turns (chat messages or Turn objects)."""
        question = " ".join(str(question or "").split())
        turns = normalize_history(history)
        if not question:
            return Answer("", "Please type a question about the news articles.", abstained=True)
        passages = self.retriever.search(retrieval_query(question, turns), k=self.k, source=source, since=since,
                                         until=until)
        return self.answerer.answer(question, passages, turns)


_FOLLOW_UP = re.compile(r"^(and|but|also|so|what about|how about|then)\b|\b(it|its|they|them|their|that|this|"
                        r"those|these|he|she|his|her|him)\b", re.IGNORECASE)


_DANGLING = re.compile(r"(however|but|and|also|still|yet|meanwhile|moreover|instead|this|that|these|those|it|its|"
                       r"they|their|he|she|his|her|such)\b", re.IGNORECASE)
_QUESTION_WORDS = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how", "do", "does", "did",
                   "has", "have", "had", "were", "much", "many", "about", "us", "can", "could", "would", "should",
                   "its", "his", "her", "he", "she", "we", "you", "i", "me", "my", "from", "than", "so", "any"}
_STOPWORDS = sorted(set(bm25s.stopwords.STOPWORDS_EN) | _QUESTION_WORDS)


def _terms(texts: list[str]) -> list[list[str]]:
    """Stemmed content words: what lexical overlap is measured on."""
    return bm25s.tokenize(texts, stopwords=_STOPWORDS, stemmer=_stemmer(), return_ids=False, show_progress=False)


def retrieval_query(question: str, history: Sequence[Turn]) -> str:
    """The question, preceded by the previous question when this one leans on it ("and who proposed it?")."""
    previous = next((t.content for t in reversed(history) if t.role == "user" and t.content.strip()), None)
    if previous and (_FOLLOW_UP.search(question) or len(question.split()) <= 4):
        return f"{previous} {question}"
    return question


def normalize_history(history: Sequence | None) -> list[Turn]:
    """Turns from Gradio-style messages ({"role", "content"}), (user, assistant) pairs or Turn objects."""
    turns: list[Turn] = []
    for item in history or []:
        if isinstance(item, Turn):
            turns.append(item)
        elif isinstance(item, dict) and item.get("role") in ("user", "assistant"):
            turns.append(Turn(item["role"], _content_text(item.get("content"))))
        elif isinstance(item, list | tuple) and len(item) == 2:
            user, bot = item
            turns += [Turn("user", _content_text(user)), Turn("assistant", _content_text(bot))]
    return turns


def _content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # Gradio 6 content parts: [{"type": "text", "text": ...}]
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    if isinstance(content, dict):
        return str(content.get("text", ""))
    return ""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _trim_left(text: str) -> str:
    """Start the context at a word boundary."""
    if not text or text[0].isspace():
        return text.lstrip()
    cut = text.find(" ")
    return text[cut + 1:] if cut >= 0 else text


def _trim_right(text: str) -> str:
    if not text or text[-1].isspace():
        return text.rstrip()
    cut = text.rfind(" ")
    return text[:cut] if cut >= 0 else text


_local = threading.local()


def _stemmer():
    """The English Snowball stemmer for the answerer's term matching; one per thread (it is not thread-safe)."""
    if not hasattr(_local, "stemmer"):
        import Stemmer

        _local.stemmer = Stemmer.Stemmer("english")
    return _local.stemmer
