"""The default answerer: quotes the article sentences that answer the question, and nothing else.

Each candidate sentence of the evidence is described by features (:mod:`qa.answering.features`: its similarity to the
query, the question's terms it holds, whether it states the asked-for kind of value and next to a question word, its
passage's rank, its article's age, what the question asks that it does not say, ...) and scored by a fitted model
(:mod:`qa.answering.model`): the probability that it holds the answer. The best sentence comes first; the answer is
refused when that probability is below the ranker's threshold (chosen on the dev sets by ``make train``).

A sentence that is itself a question is never quoted; a headline or sub-heading only when it states the asked-for kind
of answer, and only first. Up to two more sentences follow when they score nearly as well *and* state the asked-for kind
of value (each adds a fact the question asks for), in article order within an article. Sentences of other articles that
say the same thing (close in meaning *and* agreeing on their numbers, dates and names) add their citations to it; when
articles give different figures for the asked-for value, the answer says so and cites each. What the question asks that
the evidence and the answer do not say (:mod:`qa.answering.unsaid`: a name no passage holds, another year, a death the
sentence does not state) is said before the answer ("Not said in these articles: died."). When the best sentence says
that the fact is not known ("has not said how much ..."), the answer abstains and quotes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from qa import facts
from qa.answer import ABSTAIN_TEXT, UNANSWERED, UNKNOWN_TEXT, UNSAID_TEXT, Answer, AnswerSentence, Citation
from qa.answering import features
from qa.answering.candidates import TITLE, Candidate, Evidence
from qa.answering.features import Scene, answer_spans
from qa.answering.model import Ranker, probability
from qa.answering.model import load as load_ranker
from qa.answering.unsaid import unsaid
from qa.asked import Kind, question_kind
from qa.conversation import asks_for_another


@dataclass(frozen=True)
class ExtractiveSettings:
    """Knobs of how an answer is composed; which sentence answers, and whether any does, is the fitted ranker's
    (:mod:`qa.answering.model`, ``make train``)."""

    max_sentences: int = 3  # sentences in an answer
    # Further sentences must score within this of the best one (logits of the ranker: odds within e^1.5 ~ 4.5x)
    # and state the asked-for kind of value: each adds a fact the question asks for.
    margin: float = 1.5
    abstain_below: float | None = None  # refuse below this probability; None: the ranker's threshold
    duplicate_above: float = 0.80  # sentences this similar (and agreeing on their facts) state one fact
    differ_above: float = 0.60  # sentences this similar that give other figures for the asked-for value differ
    differ_margin: float = 2.0  # ... if they score within this of the best one (logits)
    context_chars: int = 160


@dataclass(frozen=True)
class Judgement:
    """How the evidence bears on the question: each eligible candidate's score, and the verdict."""

    kind: Kind
    focus: str  # the question the answer must address (a follow-up with what it continues)
    candidates: list[Candidate]  # the sentences that may be quoted
    scores: np.ndarray  # the ranker's logit for each
    typed: np.ndarray  # whether each states the asked-for kind of answer
    anchored: np.ndarray  # whether it states it next to a word of the question
    best: int  # index of the sentence an answer would start with; -1 when there is none
    confidence: float  # the ranker's probability that the best sentence holds the answer
    missing: tuple[str, ...]  # what the question asks that the evidence and the best sentence do not say (unsaid)
    answerable: bool

    @property
    def gated(self) -> bool:
        """No candidate at all."""
        return self.best < 0


class ExtractiveAnswerer:
    """Answers with verbatim article sentences (see the module's docstring)."""

    def __init__(self, settings: ExtractiveSettings | None = None, ranker: Ranker | None = None):
        self.settings = settings or ExtractiveSettings()
        self.ranker = ranker or load_ranker()

    @property
    def threshold(self) -> float:
        s = self.settings
        return self.ranker.threshold if s.abstain_below is None else s.abstain_below

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
        """Each eligible candidate's features, scored by the ranker: the best one, and whether it answers."""
        scene = stage(evidence)
        focus, kind, candidates = scene.focus, scene.kind, scene.candidates
        if not candidates:
            none = np.zeros(0, bool)
            return Judgement(kind, focus, [], np.zeros(0), none, none, -1, 0.0, (), False)
        table = features.table(scene)
        scores = self.ranker.logits(table)
        best = int(np.argmax(scores))
        confidence = float(probability(scores)[best])
        missing = tuple(x for found in scene.unsaid[best].values() for x in found)  # the features' own, not again
        return Judgement(kind, focus, candidates, scores, scene.typed.astype(bool),
                         table[:, features.NAMES.index("anchored")].astype(bool), best, confidence, missing,
                         confidence >= self.threshold)

    def _compose(self, evidence: Evidence, j: Judgement) -> Answer:
        s, question = self.settings, evidence.question
        vectors = np.stack([c.sentence.vector for c in j.candidates])
        order = [j.best] + [int(i) for i in np.argsort(-j.scores) if i != j.best]
        chosen: list[list[int]] = []  # each: candidates saying one fact, the first one shown
        used: set[int] = set()
        for i in order:
            if len(chosen) == s.max_sentences or j.scores[i] < j.scores[j.best] - s.margin:
                break
            if i in used or chosen and not self._adds(j, i):
                continue
            group = [i]  # the sentence shown, then one twin per other article that says the same
            articles = {j.candidates[i].sentence.article_id}
            own = facts.facts(j.candidates[i].sentence.text)
            for t in np.flatnonzero(vectors @ vectors[i] >= s.duplicate_above).tolist():
                other = j.candidates[t].sentence
                if t in used or not own.agrees(facts.facts(other.text)):
                    continue  # other figures, dates or names: a fact of its own, never merged
                if other.article_id not in articles:
                    articles.add(other.article_id)
                    group.append(t)
                used.add(t)
            chosen.append(group)
        # The best first; the rest as the articles tell them: an article's sentences in its order.
        rank = {j.candidates[g[0]].sentence.article_id: n for n, g in reversed(list(enumerate(chosen)))}
        chosen[1:] = sorted(chosen[1:], key=lambda g: (rank[j.candidates[g[0]].sentence.article_id],
                                                         j.candidates[g[0]].sentence.position))
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
        if j.missing:  # what the question asks that the answer does not say is said, not hidden
            said = dict.fromkeys(_as_asked(x, evidence.question) for x in j.missing)
            unsaid_note = f"{UNSAID_TEXT} {', '.join(f'“{x}”' for x in said)}."
            caveat = f"{unsaid_note} {caveat}" if caveat else unsaid_note
        body = " ".join(f"{_one_line(a.text)} {''.join(f'[{n}]' for n in a.citations)}" for a in sentences)
        return Answer(question, f"{caveat} {body}" if caveat else body, sentences, citations, caveat=caveat)

    @staticmethod
    def _adds(j: Judgement, i: int) -> bool:
        """Whether a further sentence may join the answer: not a headline (only ever first), and it states a value
        of the asked-for kind (for a question of no particular kind, any sentence)."""
        if j.candidates[i].part == TITLE:
            return False
        return j.kind is Kind.OTHER or bool(j.typed[i])

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
                    j.focus, j.kind, question_kind(j.focus)[1], evidence, c, features.PREFIX_CHARS):
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
            found = [text[a:b].strip() for a, b in answer_spans(j.kind, noun, j.focus, text)] or [
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


def stage(evidence: Evidence) -> Scene:
    """The question's scene: its evidence and the candidates an answer may quote (what the features read)."""
    focus = evidence.reading.focus
    kind, noun = question_kind(focus)
    candidates = [c for c in evidence.candidates if _eligible(c, kind, noun, focus)]
    said = _said(evidence.history)
    # "Who else ...?" wants a value the conversation has not given yet: its earlier answers count as asked.
    known = f"{focus} {said}" if asks_for_another(evidence.question) else focus
    return Scene(evidence, focus, kind, noun, candidates, said, known)


def _eligible(c: Candidate, kind: Kind, noun: str | None, focus: str) -> bool:
    """A sentence that is itself a question is never quoted; a headline or sub-heading only when it states the
    asked-for kind of answer."""
    text = c.sentence.text
    if facts.is_question(text):
        return False
    if c.part == TITLE or facts.is_heading(text):
        return facts.headline_answers(kind, text, focus, noun)
    return True


def _said(history) -> str:
    """What the conversation's earlier answers said, on one line (their quoted sentences are inside it)."""
    return " ".join(_one_line(t.content) for t in history if t.role == "assistant")


def _as_asked(word: str, question: str) -> str:
    """``word`` as the question writes it ("South" for the check's "south"), else as it is."""
    found = re.search(rf"\b{re.escape(word)}\b", question, re.IGNORECASE)
    return found[0] if found else word


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

