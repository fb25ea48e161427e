"""Reading the model's reply: its sentences, the numbers each cites, and whether those sentences support it.

A written sentence is kept only when

1. it cites at least one sentence that exists (a number that points nowhere is dropped, and noted);
2. every number, date and name it states appears in a sentence it cites (or in that sentence's headline; a name
   may also come from the question, which names what is asked about), compared normalised by :mod:`qa.facts`
   ("10,000" = "10000", "Nov. 27" = "November 27", "five" = "5"); and
3. it is close in meaning to what it cites: the cosine of its embedding to the nearest cited sentence is at
   least :data:`SIMILAR_ABOVE` (the bundled all-MiniLM-L6-v2; calibrated in ``python -m bench.llm``, see
   BENCHMARKS.md, "Written answers").

The reply is cut into sentences by blingfire (as articles are, :mod:`qa.chunking`) within each line; each cites
the markers in it ("... 4% [2][3].", "[2] ... 4%.") and those right after its full stop ("... 4%. [2]").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import blingfire
import numpy as np

from qa import facts
from qa.written.prompt import Numbered

#: A written sentence must be at least this close in meaning (cosine) to the nearest sentence it cites. Set by
#: ``python -m bench.llm --calibrate`` on the news dev set (81 questions whose quoted answer holds the gold answer;
#: a short answer sentence made of the question and the gold answer, against the quoted sentence and against a
#: sentence of another article): the highest threshold that keeps at least 95% of the supported sentences.
#: At 0.40 it kept 97.5% and rejected 95.1% of the mis-cited ones; 0.45 kept 93.8% (BENCHMARKS.md).
SIMILAR_ABOVE = 0.40

#: Written sentences of fewer words are compared in meaning together with the question they answer.
SHORT_WORDS = 6

_MARKER = r"[ \t]*\[\s*\d+(?:\s*[,;]\s*\d+)*\s*\]"  # "[2]", " [2, 3]"
_MARKERS = re.compile(rf"(?:{_MARKER})+")
_NUMBER = re.compile(r"\d+")
_LEAD = re.compile(r"^\s*(?:answer\s*:\s*)", re.IGNORECASE)
_TRAILING = re.compile(rf"([.!?]+)((?:{_MARKER})+)")
_WORD = re.compile(r"[\w'’-]+")


@dataclass(frozen=True)
class Written:
    """One sentence of the reply, its markers removed, and the sentence numbers it cites."""

    text: str
    cited: tuple[int, ...]  # numbers that point to a sentence of the prompt, in order, without repeats
    dangling: tuple[int, ...] = ()  # numbers that point nowhere (dropped)


@dataclass(frozen=True)
class Verdict:
    """Whether one written sentence is supported by what it cites, and if not, why (one line for the reader)."""

    written: Written
    supported: bool
    reason: str | None = None
    similarity: float = 0.0  # cosine to the nearest cited sentence (0 when nothing was compared)


def parse(reply: str, numbered: Numbered) -> list[Written]:
    """The reply's sentences with their citations (see the module's docstring)."""
    # Markers after a sentence's full stop ("... 4%. [2]") belong to it; markers before its first word
    # ("[1] 10,000 troops.", as Qwen2.5-0.5B often writes) to the sentence they open.
    reply = _TRAILING.sub(lambda m: m[2] + m[1], _LEAD.sub("", reply))
    out: list[Written] = []
    pieces = [p for line in reply.splitlines() if line.strip()
              for p in blingfire.text_to_sentences(line.strip()).split("\n")]
    for piece in pieces:
        numbers = list(dict.fromkeys(int(n) for m in _MARKERS.finditer(piece) for n in _NUMBER.findall(m[0])))
        text = " ".join(_MARKERS.sub("", piece).split())
        text = re.sub(r"\s+([.!?,;:])", r"\1", text)
        if not _WORD.search(text):  # markers with no words ("[1][2]" alone): nothing to cite for
            continue
        out.append(Written(text, tuple(n for n in numbers if numbered.get(n) is not None),
                           tuple(n for n in numbers if numbered.get(n) is None)))
    return out


def check(written: Sequence[Written], numbered: Numbered, embed: Callable[[list[str]], np.ndarray],
          question: str = "") -> list[Verdict]:
    """A verdict for each written sentence (one embedding call for all of them and what they cite)."""
    cited_texts = list(dict.fromkeys(numbered.sentences[n - 1].sentence.text for w in written for n in w.cited))
    # A terse answer ("10,000 troops.") means something only as the answer to its question: it is compared with
    # the question before it (Qwen2.5-0.5B writes such answers; "10,000" alone scored 0.27 against its sentence).
    shown = [w.text if len(w.text.split()) >= SHORT_WORDS or not question else f"{question} {w.text}"
             for w in written]
    vectors = embed(shown + cited_texts) if written else np.zeros((0, 0))
    index = {t: len(written) + i for i, t in enumerate(cited_texts)}
    out = []
    for i, w in enumerate(written):
        if not w.cited:
            why = "cites only sentence numbers that do not exist" if w.dangling else "cites no sentence"
            out.append(Verdict(w, False, why))
            continue
        sources = [numbered.sentences[n - 1] for n in w.cited]
        missing = unsupported_values(w.text, [s.sentence.text for s in sources] + [s.passage.title for s in sources],
                                     question)
        rows = [index[s.sentence.text] for s in sources]
        similarity = float(np.max(vectors[rows] @ vectors[i]))
        if missing:
            out.append(Verdict(w, False, f"states {', '.join(missing)}, which the cited sentences do not", similarity))
        elif similarity < SIMILAR_ABOVE:
            out.append(Verdict(w, False, f"not close in meaning to the cited sentences ({similarity:.2f} < "
                                         f"{SIMILAR_ABOVE:.2f})", similarity))
        else:
            out.append(Verdict(w, True, None, similarity))
    return out


def unsupported_values(text: str, cited: Sequence[str], question: str = "") -> list[str]:
    """The numbers, dates and names of ``text`` that none of the ``cited`` texts states (normalised values); names
    of the ``question`` count as stated."""
    mine = facts.facts(text)
    theirs = [facts.facts(t) for t in cited]
    numbers = set().union(*(f.numbers for f in theirs))
    dates = [set(d.split()) for f in theirs for d in f.dates]
    date_words = set().union(*dates) if dates else set()
    words = {_bare(w) for t in [*cited, question] for w in _WORD.findall(t)}
    out = []
    for n in sorted(mine.numbers):
        # "one" is far more often a pronoun ("one of the largest") than a count: only a written digit must match.
        if n in numbers or n in date_words or (n == "1" and not re.search(r"(?<![\w.,])1(?![\w.,])", text)):
            continue
        out.append(n)
    out += [d for d in sorted(mine.dates) if not any(set(d.split()) <= c for c in dates)
            and not set(d.split()) <= numbers | date_words]
    out += [f"'{n}'" for n in sorted(mine.names) if _bare(n) not in words]
    return out


def _bare(word: str) -> str:
    """A name of the written sentence as the cited text's words are compared: no owner's "'s", no dash or full stop."""
    return facts.name_word(word.strip(".-"))
