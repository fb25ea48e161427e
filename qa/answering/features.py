"""What the answerer knows about each candidate sentence: small functions, one number per candidate each.

The answerer's choice is a fitted model over these (:mod:`qa.answering.model`), not a chain of hand-set weights. A
feature is a function of a :class:`Scene` (the question, its evidence and the eligible candidates) that returns one
value per candidate; :data:`FEATURES` lists them in the order the model's coefficients follow. To add one: write the
function, add it to the list and its test to tests/test_features.py, run ``make train`` and compare the dev/check
table of ``python -m bench.realnews`` (the steps in full: :mod:`qa.answering`).

What the rules of earlier rounds computed are features here: whether a sentence states the asked-for kind of value
(:mod:`qa.facts`), whether it states it next to a question word, what the question asks that the evidence does not say
(:mod:`qa.answering.unsaid`, one feature per kind of thing), a headline, a correction's report of what it corrects, a
sentence that leans on the one before.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from qa import facts
from qa.answering import unsaid
from qa.answering.candidates import TITLE, Candidate, Evidence
from qa.answering.terms import WORDS, covers, stem_lists, stemmer, stems
from qa.asked import NAMED, STRICT, Kind
from qa.when import article_day

#: Question terms also found in the passages' titles find the article, not the sentence in it: they count this much.
TOPIC_WEIGHT = 0.25
#: The question's own terms beside those a follow-up borrows from the conversation.
FOCUS_WEIGHT = 2.0
#: A term also covers a word it begins or that begins it, both this long at least ("handler" for "handled").
PREFIX_CHARS = 5
#: "Next to a question term": at most this many words apart.
ANCHOR_WORDS = 3
#: For a follow-up: a borrowed term that an earlier answer already said counts this much.
SAID_TERMS_WEIGHT = 0.3
#: For a follow-up: share of a sentence's similarity measured against the question as asked.
ASKED_SHARE = 0.5


@dataclass(frozen=True)
class Scene:
    """One question's evidence and the candidates the answer may quote, with what several features share."""

    evidence: Evidence
    focus: str  # the question the answer must address (a follow-up with what it continues)
    kind: Kind
    noun: str | None
    candidates: list[Candidate]
    said: str = ""  # what the conversation's earlier answers said, on one line
    known: str = ""  # what counts as asked already ("Who else ...?" adds the earlier answers)

    @cached_property
    def texts(self) -> list[str]:
        return [c.sentence.text for c in self.candidates]

    @cached_property
    def held(self) -> list[set[str]]:
        """Each candidate's stemmed words."""
        return [set(t) for t in stem_lists(self.texts)]

    @cached_property
    def weights(self) -> dict[str, float]:
        """The question's terms and their weights: rarer among the candidates, more weight; title terms less."""
        e = self.evidence
        own = stem_lists([e.question])[0]
        borrowed = [t for t in stem_lists([e.reading.query])[0] if t not in own]
        weights = {t: 1.0 for t in borrowed} | {t: FOCUS_WEIGHT for t in own}
        if e.reading.contextual:
            said = set(stems(self.said))
            weights = {t: w * SAID_TERMS_WEIGHT if t in said and t in borrowed else w for t, w in weights.items()}
        topic = set(stem_lists([" ".join(dict.fromkeys(p.title for p in e.passages))])[0])
        weights = {t: w * (TOPIC_WEIGHT if t in topic else 1.0) for t, w in weights.items()}
        df = {t: sum(t in h for h in self.held) for t in weights}
        return {t: float(np.log1p(len(self.held) / (1 + df[t]))) * w for t, w in weights.items()}

    @cached_property
    def typed(self) -> np.ndarray:
        return np.array([facts.holds(self.kind, t, self.known, self.noun) for t in self.texts], float)

    @cached_property
    def ranks(self) -> dict[int, int]:
        """Each passage's rank in the search (by chunk id), 0 the first."""
        return {id(p): rank for rank, p in enumerate(self.evidence.passages)}

    @cached_property
    def unsaid(self) -> list[dict[str, tuple[str, ...]]]:
        """For each candidate, what the question asks that the evidence and the candidate do not say, by kind."""
        text = unsaid.evidence_text(self.evidence)
        return [unsaid.parts(self.focus, self.kind, self.noun, self.evidence, c, PREFIX_CHARS, text)
                for c in self.candidates]

    @cached_property
    def newest(self) -> dt.date | None:
        """The day the question is asked, else the newest article of the evidence: what age is measured from."""
        if self.evidence.as_of:
            return article_day(self.evidence.as_of)
        days = [d for p in self.evidence.passages if (d := article_day(p.date))]
        return max(days) if days else None


def cosine(s: Scene) -> np.ndarray:
    """Cosine of the sentence's stored vector to the query's (a follow-up: half to the question as asked)."""
    e = s.evidence
    matrix = np.stack([c.sentence.vector for c in s.candidates])
    similarity = matrix @ e.vector
    if e.reading.contextual and e.own_vector is not None:
        similarity = (1 - ASKED_SHARE) * similarity + ASKED_SHARE * (matrix @ e.own_vector)
    return similarity


def coverage(s: Scene) -> np.ndarray:
    """The weighted share of the question's terms the sentence holds (a word's other forms count)."""
    return _share(s, lambda t, held: covers(t, held, PREFIX_CHARS))


def exact(s: Scene) -> np.ndarray:
    """The same with exact stems only."""
    return _share(s, lambda t, held: t in held)


def _share(s: Scene, found: Callable[[str, set[str]], bool]) -> np.ndarray:
    total = sum(s.weights.values())
    if not total:
        return np.zeros(len(s.candidates))
    return np.array([sum(w for t, w in s.weights.items() if found(t, held)) for held in s.held]) / total


def typed(s: Scene) -> np.ndarray:
    """It states a value of the asked-for kind (a number for "how many", a date for "when", ...)."""
    return s.typed if s.kind is not Kind.OTHER else np.zeros(len(s.candidates))


def untyped_strict(s: Scene) -> np.ndarray:
    """The question asks for a number, date, person or place, and the sentence states none."""
    return (1 - s.typed) if s.kind in STRICT else np.zeros(len(s.candidates))


def anchored(s: Scene) -> np.ndarray:
    """It states its value of the asked-for kind within a few words of a question term ("412 flights")."""
    if s.kind is Kind.OTHER:
        return np.zeros(len(s.candidates))
    return np.array([bool(answer_spans(s.kind, s.noun, s.focus, t)) for t in s.texts], float)


def reason(s: Scene) -> np.ndarray:
    """For "why": it states a reason ("because", "to shift spending toward ...")."""
    return s.typed if s.kind is Kind.REASON else np.zeros(len(s.candidates))


def named_place(s: Scene) -> np.ndarray:
    """For "where": it names a place after a preposition ("off Skerry Point"), not only a common noun."""
    if s.kind is not Kind.PLACE:
        return np.zeros(len(s.candidates))
    return np.array([facts.names_a_place(t, s.focus) for t in s.texts], float)


def passage_cosine(s: Scene) -> np.ndarray:
    """Cosine of the query to the passage the sentence was found in."""
    by_passage = dict(zip(map(id, s.evidence.passages), s.evidence.passage_similarity, strict=True))
    return np.array([by_passage.get(id(c.passage), 0.0) for c in s.candidates], float)


def passage_rank(s: Scene) -> np.ndarray:
    """1 for a sentence of the first passage found, 1/2 for the second, ..."""
    return np.array([1 / (1 + s.ranks.get(id(c.passage), len(s.ranks))) for c in s.candidates])


def best_passage(s: Scene) -> np.ndarray:
    """The best passage's cosine (the same for every candidate: how well the archive matches at all)."""
    best = float(s.evidence.passage_similarity.max()) if len(s.evidence.passage_similarity) else 0.0
    return np.full(len(s.candidates), best)


def headline(s: Scene) -> np.ndarray:
    """It is an article's title line (eligible only when it states the asked-for kind)."""
    return np.array([c.part == TITLE for c in s.candidates], float)


def dangling(s: Scene) -> np.ndarray:
    """It leans on the sentence before ("However, ...", "It ...")."""
    return np.array([bool(_DANGLING.match(t)) for t in s.texts], float)


def lead(s: Scene) -> np.ndarray:
    """How near the article's start: 1 for its first sentence (and a title line), 1/2 for the second, ..."""
    return np.array([1 / (1 + max(c.sentence.position, 0)) for c in s.candidates])


def in_period(s: Scene) -> np.ndarray:
    """Its article is dated inside the days the question's time words name ("this week")."""
    period = s.evidence.period
    if period is None:
        return np.zeros(len(s.candidates))
    return np.array([period.holds(c.passage.date) for c in s.candidates], float)


def age(s: Scene) -> np.ndarray:
    """How old its article is on the day asked (else beside the evidence's newest): log(1 + days) / log(366);
    0 for an undated article."""
    if s.newest is None:
        return np.zeros(len(s.candidates))
    days = [(s.newest - d).days if (d := article_day(c.passage.date)) else 0 for c in s.candidates]
    return np.log1p(np.clip(days, 0, None)) / np.log(366)


def superseded(s: Scene) -> np.ndarray:
    """It reports what a correction corrects ("The article also said that 17 ...")."""
    return np.array([facts.is_superseded(t) for t in s.texts], float)


def unknown(s: Scene) -> np.ndarray:
    """It says the fact is not known ("has not said how much ...")."""
    return np.array([facts.is_unknown(t) for t in s.texts], float)


def absent(s: Scene) -> np.ndarray:
    """How many names or numbers of the question no passage or title holds (the same for every candidate)."""
    return _unsaid(s, "absent")


def other_time(s: Scene) -> np.ndarray:
    """The question names a year the sentence is not about, or asks what happened on a day after its article."""
    return _unsaid(s, "other_time")


def uncounted(s: Scene) -> np.ndarray:
    """For "how many X": the sentence does not count X (nor a word of like meaning), or lacks X's qualifiers."""
    return _unsaid(s, "uncounted")


def role_elsewhere(s: Scene) -> np.ndarray:
    """For "Who is the ROLE of X?" or "the capital of X": the role is another's, or the evidence never names it."""
    return _unsaid(s, "role")


def unstated(s: Scene) -> np.ndarray:
    """A scope ("worldwide"), a death or an injury the question asks about that the sentence does not state."""
    return _unsaid(s, "unstated")


def _unsaid(s: Scene, part: str) -> np.ndarray:
    return np.array([min(len(found[part]), 2) for found in s.unsaid], float)


def repeated(s: Scene) -> np.ndarray:
    """An earlier answer of the conversation already quoted it."""
    if not s.said:
        return np.zeros(len(s.candidates))
    return np.array([" ".join(t.split()) in s.said for t in s.texts], float)


def length(s: Scene) -> np.ndarray:
    """log(words) / log(100): longer sentences hold more, and more that is not the answer."""
    return np.array([np.log1p(len(t.split())) / np.log(100) for t in s.texts])


def asked_thing(s: Scene) -> np.ndarray:
    """For "which automaker": how much less like an automaker the sentence's likest name not in the question is than
    the likest of all candidates' names (the evidence's ``fits``; a sentence without another name counts 0): 0 for
    the sentence that holds it, and for every sentence of a question that names no such thing or asks for a number
    or date. Measured from the likest, not as is, so that questions it does not apply to keep their calibration."""
    fits = s.evidence.fits
    if not s.noun or not fits or s.kind not in NAMED:
        return np.zeros(len(s.candidates))
    asked = {facts.name_word(w) for w in WORDS.findall(s.evidence.question)}
    best = np.array([max((fits.get(n, 0.0) for n in facts.name_phrases(t) if not set(n.split()) <= asked),
                         default=0.0) for t in s.texts])
    return best - best.max() if len(best) else best


#: The features in the order of the model's coefficients (qa/answering/ranker.json names them; a mismatch is refused).
FEATURES: tuple[Callable[[Scene], np.ndarray], ...] = (
    cosine, coverage, exact, typed, untyped_strict, anchored, reason, named_place, passage_cosine, passage_rank,
    best_passage, headline, dangling, lead, in_period, age, superseded, unknown, absent, other_time, uncounted,
    role_elsewhere, unstated, repeated, length, asked_thing,
)
NAMES = tuple(f.__name__ for f in FEATURES)


def table(scene: Scene) -> np.ndarray:
    """The candidates' features: one row per candidate, one column per :data:`FEATURES` entry."""
    return np.stack([np.asarray(f(scene), float) for f in FEATURES], axis=1)


def answer_spans(kind: Kind, noun: str | None, focus: str, text: str) -> list[tuple[int, int]]:
    """The spans of ``text``'s values of the asked-for kind that stand within a few words of a question term
    ("412 flights" for "how many flights"); all of them in a sentence about the "which / what X" asked for."""
    values = facts.spans(kind, text, focus, noun)
    terms, asked_noun = _asked_terms(focus, noun)
    if not values or not terms:
        return []
    words = [(m.start(), m.end(), m[0].lower()) for m in WORDS.finditer(text)]
    found = stemmer().stemWords([w for _, _, w in words])
    wanted = set(terms)
    if kind is Kind.THING and asked_noun and asked_noun in found:
        return list(values)  # "what ammunition": a sentence about ammunition
    if kind is Kind.QUANTITY and asked_noun and asked_noun in found:
        wanted = {asked_noun}  # "how many dockworkers": a number of dockworkers
    near = [k for k, stem in enumerate(found) if covers(stem, wanted, PREFIX_CHARS)]
    out = []
    for start, end in values:
        span = {k for k, (a, b, _) in enumerate(words) if a < end and b > start}
        if any(abs(k - v) <= ANCHOR_WORDS for v in span for k in near if k not in span):
            out.append((start, end))
    return out


@lru_cache(maxsize=1024)
def _asked_terms(focus: str, noun: str | None) -> tuple[frozenset[str], str | None]:
    """The question's stemmed terms and its asked-for noun's stem: the same for every candidate sentence."""
    return frozenset(stem_lists([focus])[0]), stemmer().stemWord(noun) if noun else None


_DANGLING = re.compile(r"(however|but|and|also|still|yet|meanwhile|moreover|instead|this|that|these|those|it|its|"
                       r"they|their|he|she|his|her|such)\b", re.IGNORECASE)
