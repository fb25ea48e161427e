"""What a question asks that the evidence does not say: the checks that refuse an answer however well its best
sentence scores (README, "Refusals").

- a name or number of the question that no passage or title contains ("the port of Rotterdam" in an archive about
  another port); a name spelt one letter off counts as found;
- a year the question names that is not the chosen sentence's, and a day after its article's date for a question
  about what happened;
- for "how many X" (and "what is Y's salary", "top wind speed"): a best sentence that does not count X, or lacks
  the names that qualify it, or gives no value in a measure's unit;
- for "Who is the ROLE of X?": a ROLE-holder the evidence gives as another's ROLE;
- for "What is the capital of X?" (a place by its relation, :data:`qa.asked.PLACE_RELATIONS`) and "Who is the
  coach of X?": evidence that never says "capital" or "coach";
- a scope the question puts on its answer ("worldwide", "nationwide"), or a death or injury it asks about, that
  the sentence does not state.
"""

from __future__ import annotations

import re
from difflib import get_close_matches

from qa import facts
from qa.answering.candidates import Candidate, Evidence
from qa.answering.terms import WORDS, covers, stems
from qa.asked import MEASURES, PLACE_RELATIONS, Kind, asks_what_happened, counted_names

#: The kinds of thing :func:`parts` finds unsaid, each a feature of the answer ranker (qa/answering/features.py).
PARTS = ("absent", "other_time", "uncounted", "role", "unstated")


def unsaid(focus: str, kind: Kind, noun: str | None, evidence: Evidence, chosen: Candidate,
           chars: int) -> tuple[str, ...]:
    """What ``focus`` (a question of ``kind``, about ``noun``) asks that ``evidence`` and its ``chosen`` sentence do
    not say; empty when nothing is missing. ``chars``: the prefix length two word forms share (``terms.covers``)."""
    return tuple(x for found in parts(focus, kind, noun, evidence, chosen, chars).values() for x in found)


def parts(focus: str, kind: Kind, noun: str | None, evidence: Evidence, chosen: Candidate,
          chars: int, haystack: str | None = None) -> dict[str, tuple[str, ...]]:
    """:func:`unsaid`, by :data:`PARTS`: names or numbers no passage holds ("absent"), another year or a later day
    ("other_time"), what "how many" counts ("uncounted"), a role held elsewhere or never named ("role"), a scope, a
    death or an injury the sentence does not state ("unstated"). ``haystack``: :func:`evidence_text` of the evidence,
    when the caller has it (it is the same for every candidate)."""
    haystack = evidence_text(evidence) if haystack is None else haystack
    absent, other_time = _absent(focus, haystack, evidence, chosen)
    uncounted: tuple[str, ...] = ()
    if kind is Kind.QUANTITY and noun and noun not in _GENERIC:
        uncounted = _uncounted(focus, noun, chosen, evidence.kin, chars)
    role: tuple[str, ...] = ()
    if kind is Kind.PERSON and (asked := _ROLE_OF.search(focus)):
        role = _role_of_another(asked, evidence, chosen, chars)
        # its head word: "defence minister" is also written "Defense Minister"
        role += _unnamed(asked[1].split()[-1].lower(), haystack, chars)
    if kind is Kind.PLACE and noun in PLACE_RELATIONS:
        role += _unnamed(noun, haystack, chars)
    return {"absent": absent, "other_time": other_time, "uncounted": uncounted, "role": role,
            "unstated": _unstated(focus, chosen.sentence.text)}


def evidence_text(evidence: Evidence) -> str:
    """Every passage and its title, joined: what "the evidence says" means."""
    return " ".join(f"{p.title} {p.text}" for p in evidence.passages)


def _absent(focus: str, haystack: str, evidence: Evidence,
            chosen: Candidate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What the question names that the evidence does not: a name or number no passage or title contains ("the
    port of Rotterdam" in an archive about another port), a year ("in 2020", "last year") that is not the chosen
    sentence's, or a day after its article's date for a question about what happened (README, "Refusals"). A name
    spelt nearly as in the evidence (one letter off: "Zeria" for "Zeira") counts as found. ``haystack``: the
    evidence's passages and titles, joined."""
    lowered = haystack.lower()
    names = [w for w in dict.fromkeys(facts.names_in(focus)) if w not in lowered]
    if names:  # only then are the evidence's words needed (the spelling check)
        words = set(WORDS.findall(lowered))
        names = [w for w in names if not _close(w, words)]
    numbers = facts.numbers_in(focus)  # most questions give none: the evidence's are not read then
    absent = tuple(names + sorted(numbers - facts.numbers_in(haystack) if numbers else ()))
    out: list[str] = []
    asked = facts.years(focus)
    year = (chosen.passage.date or "")[:4]
    if asked and year.isdigit():
        # A dated article's sentence speaks of the article's year unless it names another: "Who won last year?"
        # is not answered by this year's winner, nor "the 2020 election" by Tuesday's.
        asked = facts.absolute_years(asked, int(year))
        said = facts.absolute_years(facts.years_mentioned(chosen.sentence.text), int(year)) | {year}
        out += sorted(asked - said)
    elif asked:  # undated: a year anywhere in the article; "last year" only in the sentence (whose last year?)
        article = [p.text for p in evidence.passages if p.article_id == chosen.sentence.article_id]
        said = facts.years_mentioned(" ".join(article)) - set(facts.RELATIVE_YEARS)
        said |= facts.years_mentioned(chosen.sentence.text)
        out += [y for y in asked if y not in said]
    later = facts.dates_after(focus, chosen.passage.date) if chosen.passage.date else []
    if later and asks_what_happened(focus):
        # An article does not report what happened after it was written: "What did the bank decide at its May 21
        # meeting?" is not answered by an April article's "The bank's next decision is on May 21". News dev
        # must-refuse +1 question, nothing else moved (BENCHMARKS.md, "Measures, later days and corrections").
        out += later
    return absent, tuple(out)


def _unnamed(noun: str, haystack: str, chars: int) -> tuple[str, ...]:
    """``noun`` (a place or a person by its relation: "capital", "coach"), when no passage or title (``haystack``)
    holds the word: "What is the capital of South Korea?" is not answered by a headline that names Russia, nor by
    "Seoul" in a sentence that does not say it is the capital; "Who is the coach of Ashford City?" not by a match
    report that names no coach."""
    held = set(stems(haystack))
    return () if any(covers(t, held, chars) for t in stems(noun)) else (noun,)


def _uncounted(focus: str, noun: str, c: Candidate, kin: frozenset[str], chars: int) -> tuple[str, ...]:
    """What "how many ``noun``" asks that ``c`` does not count: the noun itself, when the sentence counts something
    else ("How many soldiers were killed?"; "10,000 troops" is a count of them: ``Evidence.kin``), and the names
    that qualify it ("How many South Korean troops ...?" is not answered by "North Korea has sent 10,000 troops").
    News dev must-refuse refused 35.7% -> 50.0% -> 57.1%, nothing else changed there or on SQuAD (BENCHMARKS.md,
    "The asked-for thing"); switching to another sentence that counts it, when one scored nearly as well, changed
    nothing either."""
    out = () if _counts(noun, c, kin, chars) else (noun,)
    text = c.sentence.text.replace(".", "")  # "U.S." is "US"
    said, words = set(stems(text)), set(WORDS.findall(text.lower()))
    return out + tuple(n for n in counted_names(focus) if n not in words and not any(
        covers(t, said, chars) for t in stems(n)))


def _counts(noun: str, c: Candidate, kin: frozenset[str], chars: int) -> bool:
    """Whether ``c`` speaks of ``noun``: its sentence or its article's title holds the word, or its sentence a word
    of like meaning (``kin``; a title's kin is no sign: "pay" in a headline does not give anyone's salary)."""
    if noun in MEASURES:
        return facts.measured(MEASURES[noun], c.sentence.text)
    said = set(stems(c.sentence.text))
    held = said | set(stems(c.passage.title))
    return any(covers(t, held, chars) for t in stems(noun)) or bool(said & kin)


#: What a question can ask that a sentence must state in one of these ways, whatever else it says: a scope
#: ("How many people does the company employ worldwide?" is not answered by the plant's "employs about 640 people"),
#: a death or an injury ("How many soldiers have been killed?" is not answered by "North Korea has sent over 10,000
#: troops", nor "How many were hurt?" by "Two people died").
_STATED = {
    "world": r"\b(?:world-?wide|globally|(?:around|across|all over) the world|in the world)\b",
    "nation": r"\b(?:nation-?wide|(?:across|all over) the country)\b",
    # not "global", "national", "international": they are in names ("Ashford International Airport")
    "death": r"\b(?:kill|die[ds]?\b|dying|dead|death|fatal|perish|drown|murder|toll\b|bodies\b|casualt|"
             r"(?:lost|lose|losing) (?:their |his |her )?lives|lives (?:were |have been )?lost)\w*",
    "injury": r"\b(?:injur|wound|hurt|casualt|treated\b|hospital)\w*",
}
#: Asked in lowercase ("killed", not "the Black Death"); stated in any case ("Killed were ...").
_ASKED = [re.compile(way) for way in _STATED.values()]
_SAID = [re.compile(way, re.IGNORECASE) for way in _STATED.values()]


def _unstated(focus: str, text: str) -> tuple[str, ...]:
    """What ``focus`` asks of :data:`_STATED` ("worldwide", "killed") that the sentence ``text`` does not state."""
    return tuple(m[0] for asked, said in zip(_ASKED, _SAID, strict=True)
                 if (m := asked.search(focus)) and not said.search(text))


_NAMED = r"(?:[A-Z][\w'’-]*\s+)*?[A-Z][\w'’-]*"
_ROLE_OF = re.compile(r"\b(?i:who\s+(?:is|was|are|were)\s+(?:the\s+)?(?:current\s+|new\s+|former\s+)?"
                      r"([a-z]+(?:\s+[a-z]+)?)\s+of)\s+(?:the\s+)?(" + _NAMED + r")(?=[\s?.,]|$)")


def _role_of_another(asked: re.Match, evidence: Evidence, chosen: Candidate, chars: int) -> tuple[str, ...]:
    """For "Who is the ROLE of X?" (``asked``: its match of :data:`_ROLE_OF`): X, when the chosen sentence's ROLE is
    someone the evidence gives as another's ROLE. "Who is the president of Ukraine?" is not answered by "...
    discussed with President Yoon Suk-yeol" when another sentence says "The President of South Korea, Yoon
    Suk-yeol"."""
    role, place = r"\s+".join(map(re.escape, asked[1].split())), asked[2]
    held = re.search(rf"(?i:\b{role})\s+({_NAMED})", chosen.sentence.text)
    if not held:
        return ()
    name = re.escape(held[1].split()[0])
    wanted = stems(place)
    qualifiers = []
    for c in evidence.candidates:
        text = c.sentence.text
        qualifiers += [m[1] for m in re.finditer(rf"({_NAMED})\s+(?i:{role})\s+{name}\b", text)]
        qualifiers += [m[1] for m in re.finditer(rf"(?i:{role}\s+of)\s+(?:the\s+)?({_NAMED}),?\s+{name}\b", text)]
    qualifiers = [q for q in qualifiers if facts.facts(q).names]  # "The President Yoon": no qualifier
    if not qualifiers or any(covers(t, set(stems(q)), chars) for q in qualifiers for t in wanted):
        return ()
    return (place,)


def _close(word: str, words: set[str]) -> bool:
    return bool(get_close_matches(word, [w for w in words if abs(len(w) - len(word)) <= 2], n=1, cutoff=0.8))


_GENERIC = {"name", "kind", "type", "sort", "number", "amount", "total", "figure", "value", "size", "part", "thing",
            "one", "ones", "way", "most", "percentage", "share", "proportion", "rate", "level"}
