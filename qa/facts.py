"""What a question asks for, and the facts a sentence states: numbers, dates, names, places and reasons.

Rules over the text, not a model: a question's kind comes from its question words ("how many" -> a quantity,
"when" -> a date, "who" -> a person or organisation, ...), and a sentence *holds* an answer of that kind when it
states such a value that the question does not already contain ("How many troops did North Korea send in 2024?"
is not answered by a sentence whose only number is 2024). The same values decide whether two sentences state one
fact (they must agree on their numbers, dates and names) or disagree.

Values are normalised so that "10,000" = "10000", "Nov. 27" = "November 27" and "five" = "5".
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache

from qa.asked import MEASURES, PLACE_NOUNS, Kind, without_owner

_WORD = r"[A-Za-z][\w'’-]*"

#: Texts whose values are kept (per function): the answerer asks the same of a sentence several times per question,
#: and the same sentences come back for related questions.
CACHED = 8192


_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")
_MONTH_ABBR = {m[:3]: m for m in _MONTHS} | {"sept": "september"}
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
     "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"))} | {
    w: str(30 + 10 * i) for i, w in enumerate(("thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"))}
_SCALE = {"hundred": "100", "hundreds": "100", "thousand": "1000", "thousands": "1000", "million": "1000000",
          "millions": "1000000", "billion": "1000000000", "billions": "1000000000", "dozen": "12", "dozens": "12",
          "half": "0.5", "third": "1/3", "quarter": "1/4", "twice": "2", "double": "2", "triple": "3"}

_DATE = re.compile(
    r"\b(?:(?P<month>" + "|".join(_MONTHS) + r"|(?:jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)\.?)"
    r"(?:\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?\b)?(?:,?\s+(?P<year>(?:19|20)\d\d)\b)?"
    r"|(?P<day2>\d{1,2})(?:st|nd|rd|th)?\s+(?P<month2>" + "|".join(_MONTHS) + r")(?:\s+(?P<year2>(?:19|20)\d\d))?"
    r"|(?P<iso>(?:19|20)\d\d-\d\d-\d\d)"
    r"|(?P<weekday>" + "|".join(_WEEKDAYS) + r")s?"
    r"|(?P<relative>today|yesterday|tomorrow|tonight|overnight|(?:last|next|this|earlier this|later this)\s+"
    r"(?:week|month|year|weekend|spring|summer|autumn|fall|winter|morning|afternoon|evening))"
    r"|(?P<year3>1\d{3}|20\d\d)s?)\b"
    r"|(?P<time>\b\d{1,2}(?::\d\d)?\s*(?:a\.m\.|p\.m\.|am\b|pm\b)|\b(?:noon|midnight|midday|dawn|dusk|daybreak|sunrise|sunset)\b"
    r"|\b(?:in the (?:morning|afternoon|evening)|at night)\b)",
    re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.])(?P<num>\d+(?:[.,]\d+)*)(?:\s*(?P<unit>%|percent|per cent|mm|km|kg|m\b))?"
                     r"|\b(?P<word>" + "|".join([*_NUMBER_WORDS, *_SCALE]) + r")\b", re.IGNORECASE)
_MONEY = re.compile(r"[$€£¥₩]\s?\d|\b\d[\d,.]*\s*(?:dollars|euros|pounds|won|yen|yuan|usd|eur)\b", re.IGNORECASE)
_UNITS = {
    "speed": re.compile(r"\d\s*(?:km/h|kph|mph|knots?|(?:miles|kilomet(?:re|er)s) (?:per|an) hour)\b", re.IGNORECASE),
    "temperature": re.compile(r"\d\s*(?:°|degrees?\b|celsius\b|fahrenheit\b|[CF]\b)", re.IGNORECASE),
    "length": re.compile(r"\d\s*(?:(?:kilo|centi|milli)?met(?:re|er)s?|km|cm|mm|m|feet|foot|ft|inch(?:es)?|miles?|"
                         r"yards?)\b", re.IGNORECASE),
    "weight": re.compile(r"\d\s*(?:(?:kilo)?grams?|kg|g|tonnes?|tons?|pounds|lbs?|ounces?)\b", re.IGNORECASE),
    "time": re.compile(r"\b(?:\d[\d,.]*|an?|" + "|".join(_NUMBER_WORDS) + r"|several|a few|a couple of)[\s-]+"
                       r"(?:(?:and a half|more)\s+)?(?:second|minute|hour|day|night|week|fortnight|month|year|decade)s?"
                       r"\b", re.IGNORECASE),
}
_NAME = re.compile(r"(?<![\w'’-])(?:[A-Z][\w'’-]*|[A-Z]\.)(?:\s+(?:of|de|la|van|von|bin|al|the)?\s*[A-Z][\w'’-]*)*")
_REASON = re.compile(r"\b(because|due to|owing to|as a result|result of|caused by|blamed|citing|cited|in protest|"
                     r"to protest|in order to|so that|after|amid|reasons?|fears? of|concerns? (?:about|over)|"
                     r"following|led to|prompted|aimed at|aim of|in response to|in light of|driven by|thanks to)\b",
                     re.IGNORECASE)
_PLACE_PREP = re.compile(r"\b(?:in|at|from|near|to|into|across|outside|inside|off|toward|towards|through)\s+"
                         r"(?:the\s+)?([A-Z][\w'’-]*(?:\s+(?:of\s+)?[A-Z][\w'’-]*)*)")
_PLACE_WORDS = re.compile(r"\b(" + "|".join(PLACE_NOUNS) + r"|oblast|province|harbou?r|terminal|plant|factory|"
                          r"stadium|hall|square|river|lake|mountain|valley)s?\b", re.IGNORECASE)
_ROLES = re.compile(r"\b(experts?|officials?|analysts?|ministry|government|police|union|company|spokes(?:person|man|"
                    r"woman)|president|minister|leader|chief|director|mayor|council|committee|board|agency|court|"
                    r"judge|researchers?|scientists?|residents?|workers?|operators?|lawmakers?|regulators?|"
                    r"prosecutors?|investigators?|authorities|organi[sz]ers?|management|employers?|manufacturer|"
                    r"owner|founder|chairman|chairwoman|ceo|executive|governor|senator|parliament|army|military|"
                    r"navy|delegation|administration|office)\b", re.IGNORECASE)
#: Capitalised words that begin sentences or questions without naming anyone.
_NOT_NAMES = {"the", "a", "an", "this", "that", "these", "those", "it", "its", "they", "he", "she", "we", "i",
              "in", "on", "at", "after", "before", "during", "while", "but", "and", "or", "so", "however", "also",
              "meanwhile", "still", "yet", "as", "for", "with", "by", "from", "to", "of", "if", "when", "where",
              "who", "what", "which", "why", "how", "there", "here", "some", "many", "most", "more", "several",
              "about", "around", "nearly", "almost", "over", "under", "one", "two", "three", "his", "her", "their",
              "our", "my", "your", "all", "both", "each", "every", "no", "not", "did", "does", "do", "is", "was",
              "are", "were", "has", "have", "had", "will", "would", "can", "could", "should", "may", "might", "mr",
              "mrs", "ms", "dr", "according", "despite", "although", "though", "since", "until", "unlike", "like",
              "other", "such", "than", "then", "now", "only", "even", "just", "among", "against", "between", "into",
              "through", "without", "within", "experts", "officials", "analysts", "residents", "workers",
              *_MONTHS, *_WEEKDAYS, *_NUMBER_WORDS}


@dataclass(frozen=True)
class Facts:
    """The checkable values a text states, normalised: numbers, dates and names (lowercased words)."""

    numbers: frozenset[str]
    dates: frozenset[str]
    names: frozenset[str]

    def agrees(self, other: Facts) -> bool:
        """Whether two sentences can state one fact: where both give numbers they give the same ones, and where
        both give dates (or names) they share one ("on Sunday, March 2" and "at 6 a.m. on Sunday" agree); a
        sentence that gives none of a kind neither agrees nor conflicts on that kind."""
        if self.numbers and other.numbers and self.numbers != other.numbers:
            return False
        return self.same_time(other) and not (self.names and other.names and not self.names & other.names)

    def same_time(self, other: Facts) -> bool:
        return not (self.dates and other.dates and not self.dates & other.dates)


@lru_cache(maxsize=CACHED)
def facts(text: str) -> Facts:
    dates = _dates(text)
    return Facts(frozenset(_numbers(_DATE.sub(" ", text))), frozenset(dates), frozenset(_names(text)))


@lru_cache(maxsize=CACHED)
def _numbers(text: str) -> tuple[str, ...]:
    out = []
    for m in _NUMBER.finditer(text):
        if m["num"]:
            raw = m["num"]
            value = raw.replace(",", "") if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", raw) else raw.replace(",", ".")
            value = value.rstrip("0").rstrip(".") if "." in value else value
            out.append(value + ("%" if _is_share(m) else ""))
        else:
            word = m["word"].lower()
            out.append(_NUMBER_WORDS.get(word) or _SCALE[word])
    return tuple(out)


@lru_cache(maxsize=CACHED)
def _dates(text: str) -> tuple[str, ...]:
    out = []
    for m in _DATE.finditer(text):
        month = m["month"] or m["month2"]
        if month:
            month = _month(month)
            if month == "may" and not (m["day"] or m["year"]):
                continue  # "may" is usually the verb
            day, year = m["day"] or m["day2"], m["year"] or m["year2"]
            out.append(" ".join(x for x in (year, month, day and str(int(day))) if x))
        elif m["iso"]:
            out.append(m["iso"])
        else:
            out.append(" ".join(m[0].lower().split()).rstrip("s") if m["weekday"] else " ".join(m[0].lower().split()))
    return tuple(out)


def _month(raw: str) -> str:
    """A month as written ("Sept.", "Nov", "March"), by its full lowercase name."""
    low = raw.lower().rstrip(".")
    return _MONTH_ABBR.get(low[:4]) or _MONTH_ABBR.get(low[:3], low)


@lru_cache(maxsize=CACHED)
def _names(text: str) -> tuple[str, ...]:
    """Capitalised words that name someone or something, lowercased (sentence-initial common words left out)."""
    return tuple(w for name in name_phrases(text) for w in name.split())


@lru_cache(maxsize=CACHED)
def name_phrases(text: str) -> tuple[str, ...]:
    """The names of ``text``, each as its lowercased words on one line ("harvard university", "luke humphries"):
    runs of capitalised words, sentence-initial common words and dates left out."""
    out = []
    for m in _NAME.finditer(_DATE.sub(" ", text)):
        words = [w for w in re.split(r"\s+", m[0]) if w.lower().strip(".") not in _NOT_NAMES and len(w) > 1]
        if words:
            out.append(" ".join(name_word(w) for w in words))
    return tuple(out)


def name_word(word: str) -> str:
    """A word as :func:`name_phrases` writes it: lowercased, without a full stop or an owner's "'s"."""
    return without_owner(word.lower().strip("."))


def holds(kind: Kind, text: str, question: str, noun: str | None = None) -> bool:
    """Whether ``text`` states a value of ``kind`` that ``question`` does not already contain."""
    return kind is Kind.OTHER or bool(spans(kind, text, question, noun))


#: "What time" wants a clock time, "what year" a year, "what day" a day: the date-like values each accepts.
_DATE_PARTS = {"time": ("time",), "hour": ("time",), "year": ("year", "year3", "iso"),
               "day": ("weekday", "day", "day2", "iso", "relative"), "date": ("day", "day2", "iso", "weekday")}


@lru_cache(maxsize=CACHED)
def spans(kind: Kind, text: str, question: str, noun: str | None = None) -> tuple[tuple[int, int], ...]:
    """Character spans of the values of ``kind`` in ``text`` that ``question`` does not already contain."""
    return tuple(_spans(kind, text, question, noun))


def _spans(kind: Kind, text: str, question: str, noun: str | None) -> list[tuple[int, int]]:
    if kind is Kind.QUANTITY and noun in MEASURES:  # "top wind speed": a speed, not any number
        return [m.span() for m in _measures(MEASURES[noun], text) if m[0].lower() not in question.lower()]
    if kind is Kind.QUANTITY:
        asked = set(_numbers(question))
        counting = noun not in (None, *_SHARE_NOUNS) and _HOW_MANY.search(question) is not None
        dates = [m.span() for m in _DATE.finditer(text) if not m["year3"]]
        out = [m.span() for m in _MONEY.finditer(text)]
        for m in _NUMBER.finditer(text):
            if any(a <= m.start() < b for a, b in dates) or not m[0].strip():
                continue
            if counting and _is_share(m):
                continue  # "How many North Korean soldiers ...?" counts soldiers: "82% oppose" is no count
            if not set(_numbers(m[0])) <= asked:
                out.append(m.span())
        return out
    if kind is Kind.DATE:
        asked = set(_dates(question))
        wanted = _DATE_PARTS.get(noun or "")
        out = []
        for m in _DATE.finditer(text):
            if set(_dates(m[0])) <= asked:
                continue
            if wanted is None or any(m[g] for g in wanted):
                out.append(m.span())
        return out
    if kind is Kind.PERSON:
        asked = set(_names(question)) | _words(question)
        return [m.span() for m in _NAME.finditer(text) if any(
            n not in asked for n in _names(m[0]))] + [m.span() for m in _ROLES.finditer(text)
                                                       if m[0].lower() not in asked]
    if kind is Kind.PLACE:
        words = _words(question)
        return _named_places(text, words) + [m.span() for m in _PLACE_WORDS.finditer(text)
                                             if m[0].lower() not in words]
    if kind is Kind.REASON:
        return [m.span() for m in _REASON.finditer(text)]
    if kind is Kind.THING:
        asked = set(_names(question))
        out = [m.span() for m in _NAME.finditer(text) if any(n not in asked for n in _names(m[0]))]
        if noun:
            out += [m.span() for m in re.finditer(rf"\b{re.escape(noun.rstrip('s'))}", text, re.IGNORECASE)]
        return out + [m.span() for m in _NUMBER.finditer(text)]
    return []


def names_a_place(text: str, question: str) -> bool:
    """Whether ``text`` names a place ``question`` does not ("off Skerry Point"), beyond a common noun ("the
    port")."""
    return bool(_named_places(text, _words(question)))


@lru_cache(maxsize=1024)
def _words(question: str) -> frozenset[str]:
    """A question's words, lowercased: the same for every candidate sentence it is compared with."""
    return frozenset(w.lower() for w in re.findall(_WORD, question))


def _named_places(text: str, asked: frozenset[str]) -> list[tuple[int, int]]:
    """Spans of the names after a preposition of place ("in Seoul", "off Skerry Point") not among ``asked``."""
    return [m.span(1) for m in _PLACE_PREP.finditer(text)
            if any(p not in asked and p not in _NOT_NAMES for p in m[1].lower().split())]


def measured(unit: str, text: str) -> bool:
    """Whether ``text`` states a value in ``unit`` (a kind of :data:`qa.asked.MEASURES`: "110 km/h" is a speed)."""
    return bool(_measures(unit, text))


def _measures(unit: str, text: str) -> list[re.Match]:
    """The values in ``unit`` that ``text`` states; "a day" after a figure is a rate ("$62 million a day", "three
    times a week"), not a time."""
    found = (_MONEY if unit == "money" else _UNITS[unit]).finditer(text)
    return [m for m in found if not (unit == "time" and re.match(r"an?\W", m[0], re.IGNORECASE)
                                     and _RATE_BEFORE.search(text[:m.start()]))]


_RATE_BEFORE = re.compile(r"(?:\d\S*(?:\s+(?:million|billion|thousand))?|\btimes|\bonce|\btwice)\s*$", re.IGNORECASE)


#: "How many" with a noun counts things; a percentage answers it only when the noun is itself a share.
_HOW_MANY = re.compile(r"\bhow many\b", re.IGNORECASE)
_SHARE_NOUNS = ("percent", "percentage", "percentages", "share", "shares", "proportion", "points")


def _is_share(number: re.Match) -> bool:
    """Whether a match of ``_NUMBER`` is a percentage ("82%", "12 per cent")."""
    return bool(number["unit"]) and number["unit"].lower() in ("%", "percent", "per cent")


def values(kind: Kind, text: str) -> list[str]:
    """The values of ``kind`` a text states, as written there (for "Reports differ: 4,300 [1]; 4,500 [2]")."""
    if kind is Kind.QUANTITY:
        cleaned = _DATE.sub(lambda m: " " * len(m[0]), text)
        return [m[0].strip() for m in _NUMBER.finditer(cleaned) if m[0].strip()]
    if kind is Kind.DATE:
        return [m[0] for m in _DATE.finditer(text)]
    return []


def normalized(kind: Kind, text: str) -> frozenset[str]:
    """The values of ``kind`` in ``text``, normalised, to tell whether two sentences give the same answer."""
    if kind is Kind.QUANTITY:
        return frozenset(_numbers(_DATE.sub(" ", text)))
    if kind is Kind.DATE:
        return frozenset(_dates(text))
    return frozenset()


def names_in(text: str) -> tuple[str, ...]:
    """Capitalised names of a question, lowercased: words the evidence must contain for an answer. Its first word
    is capitalised anyway ("Along with drought, ..."), so it counts only as part of a longer name."""
    first = re.match(r"\s*([\w'’-]+)(\s+[A-Z])?", text)
    if first and not first[2]:
        text = text[first.end(1):]
    return _names(text)


def numbers_in(text: str) -> set[str]:
    """The numbers of a text, normalised ("100,000" -> "100000"), dates left out."""
    return {n for n in _numbers(_DATE.sub(" ", text)) if len(n.rstrip("%")) >= 2}


_YEAR = re.compile(r"\b(?:in|of|since|from|during)\s+(?:the\s+)?((?:19|20)\d\d)\b|\b((?:19|20)\d\d)['’]s\b|"
                   r"\b((?:last|next|previous)\s+year)(?:['’]s)?\b|\b(a year ago)\b", re.IGNORECASE)


def years(text: str) -> set[str]:
    """The years a text places itself in: "in 2020", "2020's", and "last year" / "next year" as written."""
    return {" ".join((m[1] or m[2] or m[3] or m[4]).lower().split()) for m in _YEAR.finditer(text)}


def years_mentioned(text: str) -> set[str]:
    """Every year a text mentions (any 4-digit year, "last year"...), to check a question's years against."""
    return years(text) | set(re.findall(r"\b(1\d{3}|20\d\d)\b", text))


RELATIVE_YEARS = {"last year": -1, "previous year": -1, "a year ago": -1, "next year": 1}


def absolute_years(found: set[str], year: int) -> set[str]:
    """``years`` with "last year" / "next year" made absolute, counted from ``year`` (an article's date)."""
    return {str(year + RELATIVE_YEARS[y]) if y in RELATIVE_YEARS else y for y in found}


_UNKNOWN = re.compile(r"\b(?:has|have|had|did|does|do|would|will|could)\s+not\s+(?:yet\s+)?(?:said|say|disclosed?|"
                      r"revealed?|announced?|confirmed?|released?|given|specified|made public)\b|\bdeclined to "
                      r"(?:say|comment|disclose|give|confirm|specify)\b|\b(?:not|never) (?:been )?(?:disclosed|"
                      r"made public|announced|released|revealed)\b|\bis (?:not|un)known\b|\bremains? unclear\b|"
                      r"\bit (?:is|was) (?:not|un)clear\b|\bno (?:details|figures?) (?:were|was|have been) given\b",
                      re.IGNORECASE)


def is_unknown(text: str) -> bool:
    """A sentence that says a fact is not known or not disclosed ("The company has not said how much ...")."""
    return bool(_UNKNOWN.search(text))


#: "The article also said that ...", "An article published on February 20 stated ...", "The earlier report gave ...";
#: not "A report by the agency said ...", which is news of its own.
_SUPERSEDED = re.compile(r"^\W*(?:the|an?|our|that|this)\s+(?:(?:earlier|original|previous|first)\s+(?:report|"
                         r"article|story|version)|article|story|version)\b[^.;]{0,120}?\b(?:said|stated|reported|"
                         r"suggested|gave|put)\b", re.IGNORECASE)


def is_superseded(text: str) -> bool:
    """A sentence that reports what an earlier article said, as a correction does ("The article also said that 17
    people were treated ..."): the corrected figure follows it."""
    return bool(_SUPERSEDED.search(text))


def is_question(text: str) -> bool:
    """A sentence that asks rather than tells ("What does a central bank do?") is never an answer."""
    return text.rstrip().rstrip("\"'”’)»").endswith("?")


def headline_answers(kind: Kind, text: str, question: str, noun: str | None = None) -> bool:
    """Whether a headline or sub-heading may answer ``question``: only when it states the asked-for kind of value
    ("Okafor wins second term as mayor" for "Who won?"), never as a topic line."""
    return kind is not Kind.OTHER and not is_question(text) and holds(kind, text, question, noun)


def is_heading(text: str) -> bool:
    """A headline or sub-heading line: short, without the full stop of a sentence."""
    stripped = text.rstrip()
    return len(stripped.split()) <= 14 and not stripped.endswith((".", "!", "?", "\"", "”", "'", "’", ":", ";", ")"))


def dates_after(text: str, day: str) -> list[str]:
    """The calendar days ``text`` names ("May 21", "21 May 2025") that fall after ``day`` (ISO), as written; a day
    without a year is taken in ``day``'s year."""
    try:
        ref = dt.date.fromisoformat(day[:10])
    except ValueError:
        return []
    out = []
    for m in _DATE.finditer(text):
        month, number = m["month"] or m["month2"], m["day"] or m["day2"]
        if not (month and number):
            continue
        year = int(m["year"] or m["year2"] or ref.year)
        try:
            when = dt.date(year, _MONTHS.index(_month(month)) + 1, int(number))
        except (ValueError, TypeError):
            continue
        if when > ref:
            out.append(m[0])
    return out
