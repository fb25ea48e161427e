"""Term matching for the answerer: a text's stemmed content words, and when a question's term is covered.

Terms are what ``bm25s.tokenize`` would give (its token pattern and English stop words, plus question words),
stemmed by Snowball, after irregular forms are put back to their base word ("won" -> "win", "began" -> "begin",
"children" -> "child": lemminflect's dictionary), so "Who won?" finds "a winner" and "When did it begin?" finds
"began". Snowball leaves agent nouns and many derivations whole ("supplier", "handler", "growth"), so a term also
covers a stem it begins or that begins it when they share enough letters, and a verb of leading covers a leader's
title (``covers``: "Who heads the union?" finds "the union's general secretary").
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache

import bm25s.stopwords
import lemminflect

_QUESTION_WORDS = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how", "do", "does", "did",
                   "has", "have", "had", "were", "much", "many", "about", "us", "can", "could", "would", "should",
                   "its", "his", "her", "he", "she", "we", "you", "i", "me", "my", "from", "than", "so", "any", "being",
                   "having"}
_STOPWORDS = frozenset(bm25s.stopwords.STOPWORDS_EN) | _QUESTION_WORDS
_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # bm25s.tokenize's default pattern
#: "non-voting" is not voting: the prefix is kept on its word, so it covers no "vote" ("How did the committee
#: vote?" was answered with "... may send a non-voting observer to its meetings").
_NEGATED = re.compile(r"\b(non)-(?=\w)")
#: A text's words as written, apostrophes kept ("Brigid's"): for offsets and spelling, not for matching terms.
WORDS = re.compile(r"[\w'’]+")


def stem_lists(texts: list[str]) -> list[list[str]]:
    """Stemmed content words of each text: what lexical overlap is measured on."""
    return [list(stems(text)) for text in texts]


@lru_cache(maxsize=8192)
def stems(text: str) -> tuple[str, ...]:
    """As ``bm25s.tokenize(..., stopwords=_STOPWORDS, stemmer=...)`` with each word put to its ``base_form`` first,
    without bm25s's per-call set-up (a third of the answerer's time); cached, since the same sentences come back
    question after question."""
    bases = (base_form(w) for w in _TOKEN.findall(_NEGATED.sub(r"\1", text.lower())) if w not in _STOPWORDS)
    words = [w for w in bases if w not in _STOPWORDS]  # "been", "having": forms of stop words
    return tuple(stemmer().stemWords(words))


@lru_cache(maxsize=65536)
def base_form(word: str) -> str:
    """``word``'s base word when its stem is not the base's ("paid": "pay", "men": "man"), else ``word``; from
    lemminflect's dictionary (loaded on first use, 0.6 s). A word that is itself the base of a noun, adjective or
    adverb is left alone ("left", "rose", "saw"), as is one the dictionary does not know."""
    lemmas = lemminflect.getAllLemmas(word)
    if not lemmas or any(word in lemmas.get(p, ()) for p in ("NOUN", "ADJ", "ADV")):
        return word
    base = (lemmas.get("VERB") or lemmas.get("NOUN") or (word,))[0]
    return base if stemmer().stemWord(base) != stemmer().stemWord(word) else word


def covers(term: str, held: set[str], chars: int) -> bool:
    """Whether the stems ``held`` cover ``term``: the stem itself, or (``chars`` > 0) one it begins or that begins
    it, both at least ``chars`` letters long ("suppli" / "supplier"), or for a verb of leading a leader's title."""
    if term in held:
        return True
    if term in _LEADS and not _LEADERS.isdisjoint(held):
        return True
    return bool(chars) and len(term) >= chars and any(
        len(w) >= chars and w[:chars] == term[:chars] and (w.startswith(term) or term.startswith(w)) for w in held)


#: Verbs of leading and the titles of those who lead (stems): "Who heads the union?" is answered by "the union's
#: general secretary, Park Min-jae", "Who runs Quillfeather?" by "chief executive Priya Raghunathan".
_LEADS = frozenset({"lead", "head", "run", "chair", "helm"})  # not "direct": "directly" stems to it
_LEADERS = frozenset({"leader", "head", "chief", "secretari", "director", "chairman", "chairwoman", "chair",
                      "chairperson", "presid", "governor", "boss", "manag", "captain", "command"})

_local = threading.local()


def stemmer():
    """The English Snowball stemmer; one per thread (it is not thread-safe)."""
    if not hasattr(_local, "stemmer"):
        import Stemmer

        _local.stemmer = Stemmer.Stemmer("english")
    return _local.stemmer
