"""The written answerer: a language model writes the answer from numbered sentences, and every sentence is checked.

The order of work, for one question:

1. the extractive answer is made first (milliseconds). If it abstains, so does this answerer, and the model is
   never called: the retrieval-confidence gate decides what the archive can answer, whoever writes;
2. the model streams its reply to the prompt of :mod:`qa.written.prompt` (tokens are passed on as they come);
3. each written sentence is checked against the sentences it cites (:mod:`qa.written.check`); a sentence that
   fails is left out of the answer and listed in ``Answer.unsupported`` with its reason (README, "Written
   answers", says why left out rather than shown marked);
4. the kept sentences become the answer, their citations renumbered in order of first use, each pointing at the
   exact characters of its article (``text[start:end] == snippet``), as the quotes do.

A reply that says it cannot answer is an abstention. No kept sentence, or a model that cannot be reached, is
slow, errs or sends something that is not a chat stream: the extractive answer, with a one-line notice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import numpy as np

from qa.answer import (
    ABSTAIN_TEXT,
    UNANSWERED,
    WRITTEN,
    Answer,
    AnswerSentence,
    Checked,
    Citation,
    Event,
    Quoted,
    Token,
    final,
)
from qa.answer import Unsupported as Left
from qa.answering.candidates import Evidence
from qa.answering.composer import ExtractiveAnswerer, Judgement
from qa.written import check, prompt
from qa.written.client import ChatClient, Endpoint, ModelUnavailable


class WrittenAnswerer:
    """Answers with sentences a language model writes, each checked against what it cites."""

    def __init__(self, endpoint: Endpoint, embed: Callable[[list[str]], np.ndarray],
                 judge: ExtractiveAnswerer | None = None):
        self.endpoint = endpoint
        self.client = ChatClient(endpoint)
        self.embed = embed  # texts -> unit vectors, the index's own model (the retriever's embed_texts)
        self.judge = judge or ExtractiveAnswerer()

    def model_name(self) -> str | None:
        """The model's name for the reader ("Written by ..."): as configured, else as the endpoint lists it; None
        while it cannot be reached."""
        try:
            return self.client.model()
        except ModelUnavailable:
            return None

    def answer(self, evidence: Evidence, judgement: Judgement | None = None) -> Answer:
        return final(self.stream(evidence, judgement))

    def stream(self, evidence: Evidence, judgement: Judgement | None = None) -> Iterator[Event]:
        """The quotes (:class:`Quoted`, unless the gate refuses: then they are the answer), tokens as the model
        writes, then a :class:`Checked` per written sentence, then the :class:`Answer`."""
        judgement = judgement or self.judge.judge(evidence)
        quotes = self.judge.answer(evidence, judgement)
        if quotes.abstained:  # the gate: no model time for what the archive cannot answer
            yield quotes
            return
        yield Quoted(quotes)  # the reader has these at once; the written answer follows, or not
        numbered = prompt.select(evidence, judgement)
        messages = prompt.messages(evidence.question, evidence.history, numbered)
        pieces: list[str] = []
        try:
            model = self.client.model()
            for piece in self.client.stream(messages, prompt.MAX_ANSWER_TOKENS):
                pieces.append(piece)
                yield Token(piece)
        except ModelUnavailable as exc:
            yield _with_notice(quotes, str(exc))
            return
        reply = "".join(pieces)
        if prompt.is_cannot(reply):
            yield Answer(evidence.question, ABSTAIN_TEXT, abstained=True, related=evidence.passages,
                         reason=UNANSWERED, answerer=WRITTEN, model=model)
            return
        verdicts = check.check(check.parse(reply, numbered), numbered, self.embed, evidence.reading.focus)
        answer = self._compose(evidence.question, numbered, verdicts, model)
        kept = iter(answer.sentences)
        for v in verdicts:
            citations = next(kept).citations if v.supported else ()
            yield Checked(v.written.text, v.supported, citations, v.reason)
        if not answer.sentences:
            why = "; ".join(dict.fromkeys(v.reason or "" for v in verdicts)) or "it wrote nothing"
            yield _with_notice(quotes, f"no sentence {model} wrote was supported by its citations ({why}); "
                                       "showing quotes", answer.unsupported)
            return
        yield answer

    def _compose(self, question: str, numbered: prompt.Numbered, verdicts: list[check.Verdict], model: str) -> Answer:
        numbers: dict[int, int] = {}  # the prompt's sentence number -> the answer's citation number
        citations: list[Citation] = []
        sentences: list[AnswerSentence] = []
        for v in verdicts:
            if not v.supported:
                continue
            for n in v.written.cited:
                if n not in numbers:
                    numbers[n] = len(citations) + 1
                    citations.append(self.judge.cite(numbers[n], numbered.sentences[n - 1]))
            sentences.append(AnswerSentence(v.written.text, tuple(numbers[n] for n in v.written.cited)))
        left = [Left(v.written.text, v.reason or "") for v in verdicts if not v.supported]
        text = " ".join(f"{s.text} {''.join(f'[{n}]' for n in s.citations)}" for s in sentences)
        return Answer(question, text, sentences, citations, answerer=WRITTEN, model=model, unsupported=left)


def _with_notice(quotes: Answer, notice: str, unsupported: list[Left] | None = None) -> Answer:
    return replace(quotes, notice=notice, unsupported=list(unsupported or []))
