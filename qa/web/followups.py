"""Suggested follow-ups under an answer, drawn from the evidence: what else the cited articles say.

For each cited article, the sentences near the cited one that the answer did not quote are read for names (runs
of capitalised words, not at a sentence's start unless they are more than one word) that neither the question
nor the answer mentions; each becomes one question, "What about <name>?", which the assistant reads with the
conversation. Nothing is asked of a model; a name the articles hold is at least one sentence's worth to ask.
"""

from __future__ import annotations

import re

from qa.answer import Answer
from qa.chunking import split_sentences

#: The most questions suggested.
MAX_SUGGESTED = 3
_NAME = re.compile(r"\b[A-Z][\w'’.-]*[\w](?:\s+(?:of\s+|the\s+|de\s+)?[A-Z][\w'’-]*[\w])*")
#: Capitalised words that are not names (sentence starts, titles of months and days...).
_NOT_NAMES = frozenset("""a an the this that these those it its he she they we i in on at for with by from as and or
but if while when after before during however also meanwhile according mr ms mrs dr president minister monday tuesday
neither nor both each some many most all other another wednesday thursday friday saturday sunday january february
march april may june july august september october november december
yet still so then there here what who how why where which experts officials""".split())


def followups(retriever, answer: Answer, limit: int = MAX_SUGGESTED) -> list[str]:
    """Up to ``limit`` questions about names the cited articles hold near the cited sentences, that neither the
    question nor the answer names; none for a refused answer."""
    if answer.abstained or not answer.citations:
        return []
    said = _key(f"{answer.question} {answer.text} " + " ".join(c.title for c in answer.citations))
    found: list[str] = []
    seen_articles: set[str] = set()
    for citation in answer.citations:
        if citation.article_id in seen_articles or citation.part != "text":
            continue
        seen_articles.add(citation.article_id)
        article = retriever.article(citation.article_id)
        if article is None:
            continue
        spans = split_sentences(article.text)
        quoted = {(c.start, c.end) for c in answer.citations if c.article_id == citation.article_id}
        near = sorted((s for s in spans if (s.start, s.end) not in quoted), key=lambda s: abs(s.start - citation.start))
        for span in near:
            sentence = article.text[span.start:span.end]
            if not sentence.rstrip().endswith((".", "!", "?", "”", '"')):
                continue  # a headline or subtitle line, not a sentence of the story
            for name in _names(sentence):
                key = _stems(name)
                if key and not key <= _stems(said) and all(key != _stems(f) for f in found):
                    found.append(name)
                    break
            if len(found) >= limit:
                return [f"What about {name}?" for name in found]
    return [f"What about {name}?" for name in found]


#: A name just after these words, or just before the next ones, is the outlet that reported the news.
_REPORTER_BEFORE = re.compile(r"\b(?:according to|reported by|told|quoted by|citing)\s+(?:the\s+)?$", re.IGNORECASE)
_REPORTER_AFTER = re.compile(r"\s+(?:reported|reports|wrote|writes)\b")


def _names(sentence: str) -> list[str]:
    names = []
    for m in _NAME.finditer(sentence):
        words = re.split(r"[’']s\s+", m[0])[-1].split()  # "South Korea's National Security Adviser": the adviser
        while words and words[0].lower().strip(".") in _NOT_NAMES:
            words = words[1:]
        while words and words[-1].lower() in {"of", "the", "de"}:
            words = words[:-1]
        if not words or (len(words) == 1 and (m.start() == 0 or len(words[0]) < 4)):
            continue  # a lone capitalised word at a sentence's start is as often not a name
        if re.search(r"(?:ian|ean|ese|ish)s?$", words[-1]):
            continue  # "Ukrainian", "South Korean": said of a name, not one
        if _REPORTER_BEFORE.search(sentence[:m.start()]) or _REPORTER_AFTER.match(sentence[m.end():]):
            continue  # "Bloomberg reported", "according to Kyiv Independent": who told it, not what it is about
        names.append(re.sub(r"[’']s$", "", " ".join(words)).rstrip(".’'"))
    return names


def _stems(text: str) -> frozenset[str]:
    """Words cut to 5 letters: "Korean" and "Koreans" are said when "Korea" is."""
    return frozenset(w[:5] for w in _key(text).split() if w not in _NOT_NAMES)


def _key(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))
