"""The evidence for one reading of a question, gathered once and handed to whichever answerer is configured.

The assistant resolves the question (:mod:`qa.conversation`), searches, and collects here everything an answerer
needs: the query and its vector, the passages with their similarity to it, and the sentences the answer may
quote with their stored vectors, plus each passage's article title as a line of its own (a headline may hold
the answer). Answerers read this and never call back into the retriever.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from qa.answering.terms import stems
from qa.asked import NAMED, Kind, question_kind
from qa.conversation import Reading, Turn
from qa.corpus import fallback_title
from qa.facts import headline_answers, name_phrases
from qa.filters import Filters
from qa.retriever import Passage, Retriever, Sentence
from qa.when import Period

#: Where a candidate's offsets point: into the article's text, or into its title.
TEXT, TITLE = "text", "title"


@dataclass(frozen=True)
class Candidate:
    """A sentence an answer may quote, the passage it was found in, and which part of the article it is."""

    sentence: Sentence
    passage: Passage
    part: str = TEXT  # TITLE: offsets index the article's title, which is not part of its text


@dataclass(frozen=True)
class Evidence:
    """What the archive offers for one reading of a question."""

    question: str  # as asked (whitespace collapsed)
    reading: Reading
    vector: np.ndarray  # the reading's query, embedded
    passages: list[Passage]
    passage_similarity: np.ndarray  # cosine of the query to each passage's chunk vector
    candidates: list[Candidate]
    history: tuple[Turn, ...] = ()
    filters: Filters = field(default_factory=Filters)
    #: For a reading with the conversation: the question as asked, embedded. The query's vector carries the
    #: previous turn, so it alone would rank the previous answer first again.
    own_vector: np.ndarray | None = None
    #: For "how many X": stems of the candidates' words that mean nearly what X means ("troops" for "How many
    #: soldiers ...?"), X's own stems aside. The answerer's only use of them is for such questions.
    kin: frozenset[str] = frozenset()
    #: The days the question's time words name ("this week"), relative to the day it is asked; None without any.
    period: Period | None = None
    as_of: str | None = None  # the day it is asked (YYYY-MM-DD), when the caller gave one
    #: For a question that names the thing it asks for ("Which automaker ...?"): each name the candidates hold
    #: ("ford", "nhtsa"), and how like that thing it is (cosine of the model's input word vectors).
    fits: Mapping[str, float] = field(default_factory=dict)


def gather(retriever: Retriever, question: str, reading: Reading, history: tuple[Turn, ...] = (),
           filters: Filters | None = None, k: int = 5, mode: str = "hybrid", period: Period | None = None,
           as_of: str | None = None) -> Evidence:
    """Search for ``reading`` (in retrieval ``mode``, preferring articles of ``period``) and collect its evidence
    (one search, one query embedding)."""
    filters = filters or Filters()
    passages = retriever.search(reading.query, k=k, mode=mode, filters=filters, prefer=period, as_of=as_of)
    vector = retriever.embed_query(reading.query)
    similarity = retriever.chunk_vectors(passages) @ vector if passages else np.zeros(0, np.float32)
    by_chunk = retriever.sentences(passages)
    seen: set[tuple[str, int]] = set()
    candidates: list[Candidate] = []
    for p in passages:
        for sentence in by_chunk.get(p.chunk_id, []):
            key = (sentence.article_id, sentence.position)
            if key not in seen:
                seen.add(key)
                candidates.append(Candidate(sentence, p))
    # Each article's best passage, for its title line; a title made from the file name is no headline. Only a
    # title that could answer is embedded (a model call fewer for most questions: BENCHMARKS.md, "`ask` at 20,000
    # chunks").
    firsts = {p.article_id: p for p in reversed(passages) if p.title and p.title != fallback_title(p.article_id)}
    kind, noun = question_kind(reading.focus)
    titled = [p for p in passages
              if firsts.get(p.article_id) is p and headline_answers(kind, p.title, reading.focus, noun)]
    if titled:
        vectors = retriever.embed_texts([p.title for p in titled])
        candidates += [Candidate(Sentence(p.article_id, -1, 0, len(p.title), p.title, v), p, TITLE)
                       for p, v in zip(titled, vectors, strict=True)]
    own = retriever.embed_query(question) if reading.contextual else None
    kin = _kin(retriever, noun, candidates) if noun and kind is Kind.QUANTITY else frozenset()
    fits = name_fits(retriever, noun, candidates) if noun and kind in NAMED else {}  # features.asked_thing's
    return Evidence(question, reading, vector, passages, similarity, candidates, tuple(history), filters, own, kin,
                    period, as_of, fits)


#: Words this close to the asked-for noun (cosine of the model's input word vectors) mean the same thing: with
#: all-MiniLM-L6-v2 synonyms score 0.45-0.69 ("men"/"males", "ballots"/"votes", "soldiers"/"troops"), other words of
#: the same sentences at most 0.32 ("people"/"workers"); BENCHMARKS.md, "The asked-for thing".
KIN_ABOVE = 0.45


def _kin(retriever: Retriever, noun: str, candidates: list[Candidate]) -> frozenset[str]:
    words = sorted({w for c in candidates for w in _WORD.findall(c.sentence.text.lower())} - {noun})
    if not words:
        return frozenset()
    vectors = retriever.word_vectors([noun, *words])
    close = vectors[1:] @ vectors[0] >= KIN_ABOVE
    return frozenset(t for w, near in zip(words, close, strict=True) if near for t in stems(w))


_WORD = re.compile(r"[a-z]{3,}")


def name_fits(retriever: Retriever, noun: str, candidates: list[Candidate]) -> dict[str, float]:
    """How like ``noun`` each name of the candidates is: the cosine of the mean of its words' input vectors to the
    noun's. Context-free, no pass through the model: on real-news questions that name what they ask for, the
    sentence with the likest name holds the answer with a within-question AUC of 0.73 (dev) and 0.69 (2023), where
    the sentence's cosine to the question gives 0.62 and 0.63 (BENCHMARKS.md, "The asked-for thing, by name")."""
    names = sorted({n for c in candidates for n in name_phrases(c.sentence.text)})
    if not names:
        return {}
    words = sorted({w for n in names for w in n.split()} | {noun})
    vectors = dict(zip(words, retriever.word_vectors(words), strict=True))
    out = {}
    for name in names:
        mean = np.mean([vectors[w] for w in name.split()], axis=0)
        size = float(np.linalg.norm(mean))
        out[name] = float(mean @ vectors[noun]) / size if size else 0.0
    return out
