"""What a question asks for: the kind of answer, and the thing it names ("which breed" -> a breed).

Rules over the question's words, not a model: "how many" -> a quantity, "when" -> a date, "who" -> a person or
organisation, "where" -> a place, "why" -> a reason, "which X" / "what X" -> an X. The X is the head of the noun
phrase that follows, found as English builds one: its owner ("Park Min-jae's salary", "Norland's inflation rate")
and names are left out, modifiers come before the head ("top wind speed", "automated stacking cranes"), and a plural
noun or a verb ends it ("Which committee members voted", "Which breed won").
"""

from __future__ import annotations

import re
from enum import Enum
from functools import lru_cache

import lemminflect


class Kind(Enum):
    """The kind of answer a question asks for."""

    QUANTITY = "quantity"  # how many, how much, what share
    DATE = "date"  # when, what day, what year
    PERSON = "person"  # who (a person or an organisation)
    PLACE = "place"  # where
    REASON = "reason"  # why
    THING = "thing"  # which X, what X: an X
    OTHER = "other"  # what did they say, what happened...


#: Kinds whose value a sentence either states or does not: an answer without one is no answer.
STRICT = frozenset({Kind.QUANTITY, Kind.DATE, Kind.PERSON, Kind.PLACE})
#: Kinds a name answers ("which automaker", "which state", "which politician"); not "what year" or "what percentage",
#: whose asked-for noun is no name's kind.
NAMED = frozenset({Kind.THING, Kind.PERSON, Kind.PLACE, Kind.OTHER})

PLACE_NOUNS = ("city", "town", "country", "place", "port", "region", "province", "state", "district", "county",
               "capital", "island", "village", "airport", "location", "venue", "area", "street", "site", "harbor",
               "harbour", "neighborhood", "neighbourhood", "coast", "border", "nation", "headquarters", "birthplace",
               "hometown")
#: Place nouns that name a place by its relation to another, not by its type: "the capital of South Korea" is a
#: city the evidence must call the capital, while "What modern city did Khanbaliq become?" is answered by
#: "modern-day Beijing" (:mod:`qa.answering.unsaid`).
PLACE_RELATIONS = frozenset({"capital", "headquarters", "birthplace", "hometown"})
_PERSON_NOUNS = ("person", "people", "man", "woman", "official", "minister", "leader", "company", "firm", "group",
                 "organisation", "organization", "agency", "team", "party", "candidate", "president", "union",
                 "player", "coach", "country", "government", "spokesperson", "spokesman", "spokeswoman", "judge",
                 "court", "ministry", "department", "member", "politician", "mayor", "official", "officials",
                 "airline", "operator", "operators", "insurer", "bank", "club", "newspaper", "outlet", "agency")
_QUANTITY_NOUNS = ("number", "share", "percentage", "percent", "proportion", "amount", "total", "cost", "price",
                   "figure", "rate", "sum", "count", "size", "toll", "value", "budget", "fine", "salary", "wage")
#: Nouns that ask for a measured value, and the kind of unit it is stated in ("top wind speed" -> "110 km/h"): a
#: sentence without such a unit does not give it, even one with the word ("running at reduced speed"; see
#: :func:`qa.facts.measured`). Not "length", which is as often a time ("the length of the strike").
MEASURES = {"speed": "speed", "temperature": "temperature", "height": "length", "distance": "length",
            "depth": "length", "width": "length", "weight": "weight", "revenue": "money",
            "profit": "money", "income": "money", "debt": "money", "deficit": "money", "turnover": "money",
            "fee": "money", "fare": "money", "duration": "time"}  # "duration": what "how long" asks
_DATE_NOUNS = ("day", "date", "year", "month", "time", "week", "hour", "season", "decade", "century")
_REASON_WORDS = ("caused", "cause", "led", "prompted", "reason", "reasons", "triggered", "motivated")

_WH = re.compile(r"\b(how many|how much|how long|how old|how far|how big|how large|how often|when|who|whom|whose|"
                 r"where|why|which|what)\b", re.IGNORECASE)
_QUANTITIES = ("how many", "how much", "how old", "how far", "how big", "how large", "how often")

_AUXILIARIES = {"did", "does", "do", "has", "have", "had", "will", "would", "can", "could", "should", "might", "may",
                "must", "shall"}
_VERBS = {"is", "was", "are", "were", "did", "does", "do", "has", "have", "had", "will", "would", "can", "could",
          "should", "happened", "happens", "said", "says", "say", "made", "makes", "kind", "type", "sort"}
#: Words that end a noun phrase: verbs of the question, prepositions, conjunctions.
_ENDS = _AUXILIARIES | _VERBS | {
    "be", "been", "being", "of", "in", "at", "on", "for", "from", "to", "by", "with", "during", "since", "after",
    "before", "between", "among", "about", "against", "over", "under", "into", "than", "as", "per", "across", "near",
    "around", "like", "within", "without", "through", "and", "or", "but", "that", "who", "which", "whose", "when",
    "where", "while", "if", "not", "the", "a", "an", "this", "these", "those", "its", "their", "his", "her"}
_PLURALS = {"people", "police", "staff", "children", "men", "women", "personnel", "cattle"}
_TOKEN = re.compile(r"[\w'’-]+|[,;:?!.]")


@lru_cache(maxsize=4096)
def question_kind(question: str) -> tuple[Kind, str | None]:
    """The kind of answer ``question`` asks for, and the noun it counts or names ("how many dockworkers",
    "which breed", "what is the capital"), lowercased, where it has one."""
    matches = list(_WH.finditer(question))
    if not matches:
        return Kind.OTHER, None
    match = matches[0]
    comma = question.find(",")
    if len(matches) > 1 and 0 <= comma < matches[1].start() and match.start() < comma:
        match = matches[1]  # "When rich countries trade with poor ones, whose wages increase?": the main clause's
    wh = match[1].lower()
    rest = question[match.end():]
    if wh in _QUANTITIES:
        return Kind.QUANTITY, head_noun(rest, counted=True) if wh == "how many" else None
    if wh == "how long":
        return (Kind.DATE, None) if re.match(r"\s+ago\b", rest) else (Kind.QUANTITY, "duration")
    if wh == "when":
        return Kind.DATE, None
    if wh in ("who", "whom", "whose"):
        return Kind.PERSON, None
    if wh == "where":
        return Kind.PLACE, None
    if wh == "why":
        return Kind.REASON, None
    # which/what: "what share", "which city", "what is the capital", "what caused..."
    first = re.match(r"\s+(\w+)", rest)
    if not first or first[1].lower() in _AUXILIARIES:  # "what did operators offer?": of no set kind
        return Kind.OTHER, None
    phrase = _phrase(rest)[0]  # parsed once: its head and its first two words decide the kind
    head = phrase[-1] if phrase else None
    if head in MEASURES:  # "top wind speed"; not "the temperature forecast"
        return Kind.QUANTITY, head
    words = ([head] if head else []) + phrase[:2]
    for word in words:
        noun = word.rstrip("s") if word not in ("news", "status", "headquarters") else word
        if word in _QUANTITY_NOUNS or noun in _QUANTITY_NOUNS:
            return Kind.QUANTITY, head
        if word in _DATE_NOUNS or noun in _DATE_NOUNS:
            return Kind.DATE, noun
        if word in PLACE_NOUNS or noun in PLACE_NOUNS:
            return Kind.PLACE, noun
        if word in _PERSON_NOUNS or noun in _PERSON_NOUNS:
            return Kind.PERSON, noun
        if word in _REASON_WORDS:
            return Kind.REASON, None
    if head and (wh == "which" or head not in _VERBS):
        return Kind.THING, head
    return Kind.OTHER, None


def head_noun(phrase: str, counted: bool = False) -> str | None:
    """The head of the noun phrase ``phrase`` begins with, lowercased: "North Korean soldiers have been killed" ->
    "soldiers", "is Park Min-jae's salary" -> "salary", "top wind speed" -> "speed"; None when it has none.
    ``counted``: the phrase follows "how many", where "were" is the verb ("how many were treated")."""
    words = _phrase(phrase, counted)[0]
    return words[-1] if words else None


def counted_names(question: str) -> tuple[str, ...]:
    """The names that qualify what a "how many" question counts, lowercased: "How many South Korean troops ..."
    -> ("south", "korean"); the answer must count those troops, not North Korea's."""
    match = re.search(r"\bhow many\b(.*)", question, re.IGNORECASE | re.DOTALL)
    return _phrase(match[1], counted=True)[1] if match else ()


#: Verbs of questions about what is planned rather than what happened ("When was the May 21 meeting scheduled?").
_PLANNED = {"scheduled", "planned", "expected", "due", "supposed", "forecast", "predicted", "proposed"}
#: "set" is a plan only as "is set to", "set for": "What rate did the bank set on May 21?" asks what happened.
_SET_FOR = re.compile(r"\b(?:is|are|was|were|be|been)\s+set\b|\bset\s+(?:to|for)\b", re.IGNORECASE)


def asks_what_happened(question: str) -> bool:
    """Whether ``question`` asks about something that has happened: it has "did", "was" or "were", or a verb's past
    form ("What did the bank decide?", "Who won?"), and no verb of plans ("When is the vote expected?")."""
    words = re.findall(r"[a-z]+", question.lower())
    if _PLANNED & set(words) or _SET_FOR.search(question):
        return False
    return any(w in ("did", "was", "were") or _past_verb(w) for w in words)


#: An owner's "'s" (or a plural owner's bare "'") at a word's end.
_OWNER = re.compile(r"['’]s?$")


def without_owner(word: str) -> str:
    """``word`` without an owner's "'s": "Norland's" -> "Norland"."""
    return _OWNER.sub("", word)


def _phrase(text: str, counted: bool = False) -> tuple[list[str], tuple[str, ...]]:
    """The lowercase words of the noun phrase ``text`` begins with, its owner and names left out; and those names
    (lowercased)."""
    tokens = _TOKEN.findall(text)
    lead = ("the", "a", "an", "of", "more") if counted else ("is", "was", "are", "were", "the", "a", "an", "of")
    while tokens and tokens[0].lower() in lead:
        tokens = tokens[1:]
    words: list[str] = []
    names: list[str] = []
    named = False
    for token in tokens:
        low = token.lower()
        owner = _OWNER.search(token)
        if not token[0].isalnum():
            break
        if low in _ENDS:
            if words or not (named and low == "of"):  # "the Bank of Norland's": "of" inside a name
                break
            continue
        if token[0].isupper() or token[0].isdigit():
            named = True
            if token[0].isupper() and not words:
                names.append(without_owner(low))
        elif (_past_verb(low) or _participle(low)) and (
                words and (_past_verb(low) or _noun(words[-1])) or named and not words):
            break  # "Which breed won", "a commonly used measurement used to", "What was Jacksonville called"
        else:
            words.append(without_owner(low))
            if _plural(low):
                break
        if owner:
            words, names, named = [], [], False  # what came so far owns the thing asked about
    return words, tuple(names)


@lru_cache(maxsize=4096)
def _past_verb(word: str) -> bool:
    """A verb's past or participle form and nothing else ("won", "voted", "attended"; not "automated")."""
    lemmas = lemminflect.getAllLemmas(word)
    verbs = lemmas.get("VERB", ())
    return bool(verbs) and word not in verbs and not word.endswith("ing") and not (
        lemmas.keys() & {"NOUN", "ADJ", "PROPN"})


@lru_cache(maxsize=4096)
def _participle(word: str) -> bool:
    """A verb's "-ed" form, whatever else it may be ("used", "automated"; not "speed")."""
    return word.endswith("ed") and word not in lemminflect.getAllLemmas(word).get("VERB", (word,))


@lru_cache(maxsize=4096)
def _noun(word: str) -> bool:
    return "NOUN" in lemminflect.getAllLemmas(word)


@lru_cache(maxsize=4096)
def _plural(word: str) -> bool:
    nouns = lemminflect.getAllLemmas(word).get("NOUN", ())
    return word in _PLURALS or bool(nouns) and word not in nouns
