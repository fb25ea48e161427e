"""The default answerer: quotes the article sentences that answer the question, and nothing else.

For each candidate sentence of the evidence it adds up

- cosine similarity to the query (stored sentence vectors: no model call),
- the weighted share of the question's terms it holds (terms weighted by how rare they are among the
  candidates; the question's own terms count double beside those a follow-up borrows from the conversation),
- a bonus when it states the kind of answer asked for (:mod:`qa.facts`: a number for "how many", a date for
  "when", ...), and a small penalty when it leans on the sentence before ("However, ...").

A sentence that is itself a question is never quoted; a headline or sub-heading only when it states the asked-for
kind of answer. The best sentence comes first (never a correction's report of what it corrects, when the
correction scores nearly as well), up to two more follow if they score nearly as well. Sentences of
other articles that say the same thing (close in meaning *and* agreeing on their numbers, dates and names) add
their citations to it; when articles give different figures for the asked-for value, the answer says so and
cites each. When the best sentence says that the fact is not known ("has not said how much ..."), the answer
abstains and quotes it. It abstains when its confidence is low, when no sentence states the asked-for kind of answer, or
when a name or number of the question appears nowhere in the evidence, or when the best sentence for "how many X"
does not speak of X (nor of a word of like meaning: "troops" for "soldiers").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from qa import facts
from qa.answer import ABSTAIN_TEXT, UNANSWERED, UNKNOWN_TEXT, Answer, AnswerSentence, Citation
from qa.asked import STRICT, Kind, question_kind
from qa.conversation import asks_for_another
from qa.evidence import TITLE, Candidate, Evidence
from qa.terms import WORDS, covers, stem_lists, stemmer, stems
from qa.unsaid import unsaid


@dataclass(frozen=True)
class ExtractiveSettings:
    """Knobs of the extractive answerer; the defaults were chosen on the dev sets (see BENCHMARKS.md)."""

    max_sentences: int = 3  # sentences in an answer
    margin: float = 0.25  # further sentences must score within this of the best one
    lexical_weight: float = 1.25  # weight of question-term coverage beside embedding similarity
    # A term also covers a word it begins or that begins it, both this long at least: the stemmer leaves "handler"
    # and "leader" whole ("Who handled her?", "Who leads the union?"). News dev first 77.4% -> 79.0%, SQuAD cited
    # 0.913 -> 0.917 (4 letters: dev 78.2%, check one question fewer; BENCHMARKS.md, "Follow-ups, word forms and
    # years"). Ranking and the anchor bonus only: the confidence counts exact stems (see _score).
    prefix_chars: int = 5
    focus_weight: float = 2.0  # the question's own terms, beside terms a follow-up takes from the conversation
    topic_weight: float = 0.25  # terms of the passages' titles: they find the article, not the sentence in it
    kind_weight: float = 0.15  # bonus for stating the asked-for kind of answer (ranking only, not confidence)
    # ... and for "why": a stated reason ("because", "to shift spending toward ...") is most of what makes an answer.
    # News dev "why" 7 -> 8 of 9 at 0.6 (0.3 and 0.45: 7; 0.8 and 1.0: 8), check and SQuAD unchanged
    # (BENCHMARKS.md, "The asked-for thing").
    reason_weight: float = 0.6
    anchor_weight: float = 0.15  # and for stating it next to a word of the question ("412 flights", "its director
    #                             of operations, Felix Amundsen-Roy"): the value answers what was asked
    anchor_words: int = 3  # "next to": at most this many words apart
    # ... and for "where": a place's name ("off Skerry Point") more than a common noun ("the approaches to the port").
    # News dev first +0.8 at 0.05-0.2 (check unchanged); SQuAD first unchanged at 0.1, -0.4 at 0.2 (BENCHMARKS.md,
    # "Anchored readings, leaders' titles and places by relation").
    named_weight: float = 0.1
    passage_weight: float = 1.5  # weight of the best passage's similarity in the confidence
    abstain_below: float = 1.12  # abstain when the confidence is lower (set by bench/calibrate.py)
    dangling_penalty: float = 0.1  # for sentences that lean on the one before ("However, ...", "It ...")
    duplicate_above: float = 0.80  # sentences this similar (and agreeing on their facts) state one fact
    differ_above: float = 0.60  # sentences this similar that give other figures for the asked-for value differ
    differ_margin: float = 0.5  # ... if they score within this of the best one
    context_chars: int = 160
    # Follow-ups (a reading with the conversation), chosen on the news dev set (BENCHMARKS.md, "Follow-ups, word
    # forms and years"): the query carries the previous turn, so without these the answer already shown came first.
    asked_share: float = 0.5  # share of a sentence's similarity measured against the question as asked
    repeat_penalty: float = 0.3  # for a sentence an earlier answer of the conversation already quoted
    said_terms_weight: float = 0.3  # weight of borrowed terms that come from an earlier answer


@dataclass(frozen=True)
class Judgement:
    """How the evidence bears on the question: each eligible candidate's score, and the verdict."""

    kind: Kind
    focus: str  # the question the answer must address (a follow-up with what it continues)
    candidates: list[Candidate]  # the sentences that may be quoted
    scores: np.ndarray  # for ranking (with the kind bonus)
    typed: np.ndarray  # whether each states the asked-for kind of answer
    anchored: np.ndarray  # whether it states it next to a word of the question
    best: int  # index of the sentence an answer would start with; -1 when there is none
    sentence_score: float  # the best sentence's score without the kind bonus
    passage_score: float  # the best passage's cosine similarity to the query
    confidence: float  # sentence_score + passage_weight * passage_score
    missing: tuple[str, ...]  # names and numbers of the question found nowhere in the evidence, and the thing
    #                            "how many" counts when the best sentence does not speak of it
    answerable: bool

    @property
    def gated(self) -> bool:
        """Refused whatever the threshold: no sentence states the asked-for kind, or a name is missing."""
        return self.best < 0 or bool(self.missing)


class ExtractiveAnswerer:
    """Answers with verbatim article sentences (see the module's docstring)."""

    def __init__(self, settings: ExtractiveSettings | None = None):
        self.settings = settings or ExtractiveSettings()

    def answer(self, evidence: Evidence, judgement: Judgement | None = None) -> Answer:
        """The answer from ``evidence``; ``judgement`` is :meth:`judge`'s of it, when the caller has it already."""
        judgement = judgement or self.judge(evidence)
        if not judgement.answerable:
            return Answer(evidence.question, ABSTAIN_TEXT, abstained=True, related=evidence.passages,
                          reason=UNANSWERED)
        best = judgement.candidates[judgement.best]
        if facts.is_unknown(best.sentence.text):
            # The article says it does not know ("The company has not said how much the vaccine would cost."):
            # no answer, but the reader sees the sentence that says so.
            citation = self.cite(1, best)
            return Answer(evidence.question, f"{UNKNOWN_TEXT} {_one_line(best.sentence.text)} [1]",
                          [AnswerSentence(best.sentence.text, (1,))], [citation], abstained=True, caveat=UNKNOWN_TEXT,
                          reason=UNANSWERED)
        return self._compose(evidence, judgement)

    def judge(self, evidence: Evidence) -> Judgement:
        s = self.settings
        focus = evidence.reading.focus
        kind, noun = question_kind(focus)
        candidates = [c for c in evidence.candidates if self._eligible(c, kind, noun, focus)]
        if not candidates:
            none = np.zeros(0, bool)
            return Judgement(kind, focus, [], np.zeros(0), none, none, -1, 0.0, 0.0, 0.0, (), False)
        said = _said(evidence.history)
        base, sure = self._score(evidence, candidates, said)
        # "Who else ...?" wants a value the conversation has not given yet: its earlier answers count as asked.
        known = f"{focus} {said}" if asks_for_another(evidence.question) else focus
        typed = np.array([facts.holds(kind, c.sentence.text, known, noun) for c in candidates])
        anchored = self._anchored(kind, noun, focus, candidates) if kind is not Kind.OTHER else np.zeros(len(typed))
        # A name or number is no sign of "which X" being answered (on SQuAD the bonus cost 2 points); its noun is.
        bonus = typed if kind is not Kind.THING else np.zeros(len(typed))
        weight = s.reason_weight if kind is Kind.REASON else s.kind_weight
        scores = base + weight * bonus + s.anchor_weight * anchored
        if kind is Kind.PLACE:
            scores = scores + s.named_weight * np.array([facts.names_a_place(c.sentence.text, focus)
                                                         for c in candidates], float)
        best = int(np.argmax(scores))
        if kind in STRICT and not typed[best]:
            # The asked-for kind of value must be in the answer: the best sentence that states one, if it scores
            # nearly as well; none at all, and the question is not answered here. A count is a number: for "how
            # many" the best sentence with one, whatever its score, unless the best says the figure is not known
            # (news dev first +0.8; on SQuAD, where names, places and dates are often not told apart, doing this for
            # every kind cost 3.3 points: BENCHMARKS.md, "Measures, later days and corrections").
            near = scores >= scores[best] - s.margin
            if kind is Kind.QUANTITY and not facts.is_unknown(candidates[best].sentence.text):
                near = np.ones(len(scores), bool)
            stated = _best_among(typed & near, scores)
            best = stated if stated >= 0 else (best if typed.any() else -1)
        if best >= 0 and facts.is_superseded(candidates[best].sentence.text):
            # "The article also said that 17 people were treated": what a correction corrects comes after the
            # correction ("The hospital has since said that 23 ..."), when one scores nearly as well.
            current = np.array([not facts.is_superseded(c.sentence.text) and (typed[i] or kind not in STRICT)
                                for i, c in enumerate(candidates)])
            correction = _best_among(current & (scores >= scores[best] - s.margin), scores)
            best = correction if correction >= 0 else best
        passage = float(evidence.passage_similarity.max()) if len(evidence.passage_similarity) else 0.0
        missing = unsaid(focus, kind, noun, evidence, candidates[best], s.prefix_chars) if best >= 0 else ()
        sentence = float(sure[best]) if best >= 0 else 0.0
        confidence = sentence + s.passage_weight * passage if best >= 0 else 0.0
        answerable = best >= 0 and not missing and confidence >= s.abstain_below
        return Judgement(kind, focus, candidates, scores, typed, anchored, best, sentence, passage, confidence, missing,
                         answerable)

    @staticmethod
    def _eligible(c: Candidate, kind: Kind, noun: str | None, focus: str) -> bool:
        text = c.sentence.text
        if facts.is_question(text):
            return False
        if c.part == TITLE or facts.is_heading(text):
            return facts.headline_answers(kind, text, focus, noun)
        return True

    def _anchored(self, kind: Kind, noun: str | None, focus: str, candidates: list[Candidate]) -> np.ndarray:
        """Whether each candidate states its value of the asked-for kind within a few words of a question term."""
        return np.array([bool(self._answers(kind, noun, focus, c.sentence.text)) for c in candidates], float)

    def _answers(self, kind: Kind, noun: str | None, focus: str, text: str) -> list[tuple[int, int]]:
        """The spans of ``text``'s values of the asked-for kind that stand within a few words of a question term
        ("412 flights" for "how many flights"); all of them in a sentence about the "which / what X" asked for."""
        values = facts.spans(kind, text, focus, noun)
        terms, asked_noun = _asked_terms(focus, noun)
        if not values or not terms:
            return []
        words = [(m.start(), m.end(), m[0].lower()) for m in WORDS.finditer(text)]
        stems = stemmer().stemWords([w for _, _, w in words])
        wanted = terms
        if kind is Kind.THING and asked_noun and asked_noun in stems:
            return list(values)  # "what ammunition": a sentence about ammunition
        if kind is Kind.QUANTITY and asked_noun and asked_noun in stems:
            wanted = {asked_noun}  # "how many dockworkers": a number of dockworkers
        near = [k for k, stem in enumerate(stems) if covers(stem, wanted, self.settings.prefix_chars)]
        out = []
        for start, end in values:
            span = {k for k, (a, b, _) in enumerate(words) if a < end and b > start}
            if any(abs(k - v) <= self.settings.anchor_words for v in span for k in near if k not in span):
                out.append((start, end))
        return out

    def _score(self, evidence: Evidence, candidates: list[Candidate], said: str) -> tuple[np.ndarray, np.ndarray]:
        """Each candidate's score for ranking, and the score the confidence is read from: the same, but with only
        exact stems as covered terms (a word's other forms re-rank sentences; alone they made "Who has an emergency
        supply of O?" answerable from a sentence about a "supplier" in an archive without the answer). ``said``:
        what the conversation's earlier answers said."""
        s = self.settings
        sentences = [c.sentence for c in candidates]
        matrix = np.stack([x.vector for x in sentences])
        similarity = matrix @ evidence.vector
        own = stem_lists([evidence.question])[0]  # the words of this question; a follow-up borrows the rest
        borrowed = [t for t in stem_lists([evidence.reading.query])[0] if t not in own]
        weights = {t: 1.0 for t in borrowed} | {t: s.focus_weight for t in own}
        repeated = np.zeros(len(sentences))
        if evidence.reading.contextual:
            if evidence.own_vector is not None:
                similarity = (1 - s.asked_share) * similarity + s.asked_share * (matrix @ evidence.own_vector)
            repeated = np.array([_one_line(x.text) in said for x in sentences], float)
            said_terms = set(stems(said))
            weights = {t: w * s.said_terms_weight if t in said_terms and t in borrowed else w
                       for t, w in weights.items()}
        similarity = similarity - s.repeat_penalty * repeated
        if not weights:
            return similarity, similarity
        topic = set(stem_lists([" ".join(dict.fromkeys(p.title for p in evidence.passages))])[0])
        weights = {t: w * (s.topic_weight if t in topic else 1.0) for t, w in weights.items()}
        terms = list(weights)
        held = [set(t) for t in stem_lists([x.text for x in sentences])]
        df = np.array([sum(t in h for h in held) for t in terms])
        idf = np.log1p(len(held) / (1 + df)) * np.array([weights[t] for t in terms])
        coverage = np.array([idf[[covers(t, h, s.prefix_chars) for t in terms]].sum() for h in held]) / idf.sum()
        exact = np.array([idf[[t in h for t in terms]].sum() for h in held]) / idf.sum()
        dangling = np.array([bool(_DANGLING.match(x.text)) for x in sentences])
        rest = similarity - s.dangling_penalty * dangling
        return rest + s.lexical_weight * coverage, rest + s.lexical_weight * exact

    def _compose(self, evidence: Evidence, j: Judgement) -> Answer:
        s, question = self.settings, evidence.question
        vectors = np.stack([c.sentence.vector for c in j.candidates])
        order = [j.best] + [int(i) for i in np.argsort(-j.scores) if i != j.best]
        chosen: list[list[int]] = []  # each: candidates saying one fact, the first one shown
        used: set[int] = set()
        for i in order:
            if len(chosen) == s.max_sentences or j.scores[i] < j.scores[j.best] - s.margin:
                break
            if i in used:
                continue
            group = [i]  # the sentence shown, then one twin per other article that says the same
            articles = {j.candidates[i].sentence.article_id}
            own = facts.facts(j.candidates[i].sentence.text)
            for t in np.flatnonzero(vectors @ vectors[i] >= s.duplicate_above):
                t = int(t)
                other = j.candidates[t].sentence
                if t in used or not own.agrees(facts.facts(other.text)):
                    continue  # other figures, dates or names: a fact of its own, never merged
                if other.article_id not in articles:
                    articles.add(other.article_id)
                    group.append(t)
                used.add(t)
            chosen.append(group)
        rival = self._rival(evidence, j, vectors)
        if rival is not None:  # shown second, whatever its rank
            chosen = [g for g in chosen if g[0] != rival]
            chosen.insert(1, [rival])
        numbers: dict[tuple[str, str, int], int] = {}
        citations: list[Citation] = []
        sentences: list[AnswerSentence] = []
        for group in chosen[:s.max_sentences + (rival is not None)]:
            refs = []
            for i in group:
                c = j.candidates[i]
                key = (c.part, c.sentence.article_id, c.sentence.position)
                if key not in numbers:
                    numbers[key] = len(citations) + 1
                    citations.append(self.cite(numbers[key], c))
                refs.append(numbers[key])
            sentences.append(AnswerSentence(j.candidates[group[0]].sentence.text, tuple(refs)))
        caveat = self._differ(j, chosen[0][0], rival, sentences) if rival is not None else None
        body = " ".join(f"{_one_line(a.text)} {''.join(f'[{n}]' for n in a.citations)}" for a in sentences)
        return Answer(question, f"{caveat} {body}" if caveat else body, sentences, citations, caveat=caveat)

    def _rival(self, evidence: Evidence, j: Judgement, vectors: np.ndarray) -> int | None:
        """A sentence of another article that reports the asked-for figure or date differently, if any: one that
        would answer the question itself (it counts what was asked, states its harm or scope: ``unsaid``), not a
        figure of something else ("1,200 residents evacuated" beside "17 people were treated")."""
        if j.kind not in (Kind.QUANTITY, Kind.DATE):
            return None
        s, best = self.settings, j.candidates[j.best]
        asked = facts.normalized(j.kind, j.focus)
        mine = facts.normalized(j.kind, best.sentence.text) - asked
        if not mine or not j.anchored[j.best]:  # only figures that answer what was asked can disagree
            return None
        own = facts.facts(best.sentence.text)
        for i in np.argsort(-j.scores):
            i = int(i)
            c = j.candidates[i]
            if (i == j.best or not j.typed[i] or c.part == TITLE or c.sentence.article_id == best.sentence.article_id
                    or j.scores[i] < j.scores[j.best] - s.differ_margin
                    or vectors[i] @ vectors[j.best] < s.differ_above):
                continue
            theirs = facts.normalized(j.kind, c.sentence.text) - asked
            if {x.endswith("%") for x in theirs} != {x.endswith("%") for x in mine}:
                continue  # a share and a count do not disagree
            other = facts.facts(c.sentence.text)
            same_day = own.same_time(other) or j.kind is Kind.DATE
            if theirs and not theirs & mine and same_day and not unsaid(
                    j.focus, j.kind, question_kind(j.focus)[1], evidence, c, s.prefix_chars):
                return i
        return None

    def _differ(self, j: Judgement, first: int, rival: int, sentences: list[AnswerSentence]) -> str:
        """ "Reports differ: 4,300 [1] (Harbor Times, 2024-03-02); 4,500 [2] (Wire Press, 2024-03-03)": each
        sentence's values that answer what was asked ("4,500 dockworkers", not "a quarter of the trade"), or all of
        them when none stands next to a question term."""
        bits = []
        noun = question_kind(j.focus)[1]
        asked = facts.normalized(j.kind, j.focus)
        for i, sentence in zip((first, rival), sentences[:2], strict=True):
            c = j.candidates[i]
            text = c.sentence.text
            found = [text[a:b].strip() for a, b in self._answers(j.kind, noun, j.focus, text)] or [
                v for v in facts.values(j.kind, text) if not facts.normalized(j.kind, v) & asked]
            shown = ", ".join(dict.fromkeys(found)) or text
            where = ", ".join(x for x in (c.passage.source, c.passage.date) if x)
            bits.append(f"{shown} [{sentence.citations[0]}]" + (f" ({where})" if where else ""))
        return "Reports differ: " + "; ".join(bits) + "."

    def cite(self, number: int, c: Candidate) -> Citation:
        p, s = c.passage, c.sentence
        if c.part == TITLE:
            return Citation(number, p.article_id, p.title, p.date, p.source, p.url, s.start, s.end, s.text, part=TITLE)
        width = self.settings.context_chars
        before = p.text[max(0, s.start - p.start - width):s.start - p.start]
        after = p.text[s.end - p.start:s.end - p.start + width]
        return Citation(number, p.article_id, p.title, p.date, p.source, p.url, s.start, s.end, s.text,
                        _trim_left(before), _trim_right(after))


def _best_among(mask: np.ndarray, scores: np.ndarray) -> int:
    """The index of the best-scoring candidate ``mask`` keeps, or -1 when it keeps none."""
    pool = np.flatnonzero(mask)
    return int(pool[np.argmax(scores[pool])]) if len(pool) else -1


@lru_cache(maxsize=1024)
def _asked_terms(focus: str, noun: str | None) -> tuple[frozenset[str], str | None]:
    """The question's stemmed terms and its asked-for noun's stem: the same for every candidate sentence."""
    return frozenset(stem_lists([focus])[0]), stemmer().stemWord(noun) if noun else None


def _said(history) -> str:
    """What the conversation's earlier answers said, on one line (their quoted sentences are inside it)."""
    return " ".join(_one_line(t.content) for t in history if t.role == "assistant")


_DANGLING = re.compile(r"(however|but|and|also|still|yet|meanwhile|moreover|instead|this|that|these|those|it|its|"
                       r"they|their|he|she|his|her|such)\b", re.IGNORECASE)


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

