"""Splitting an article into sentences and token-sized chunks that keep exact character offsets.

Sentences come from blingfire, within each line of the text. Chunks pack whole sentences up to a token
budget measured with the embedding model's own tokenizer, so the model never silently truncates a chunk;
neighbouring chunks share ``overlap`` sentences. For every chunk ``article.text[chunk.start:chunk.end] ==
chunk.text`` holds, and likewise for every sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import blingfire

from qa.corpus import Article


class Tokenizer(Protocol):
    """The two things chunking needs from the embedding model's tokenizer."""

    def count(self, texts: Sequence[str]) -> list[int]:
        """Number of tokens of each text, without special tokens."""

    def split(self, text: str, max_tokens: int) -> list[tuple[int, int]]:
        """Character ranges that cut ``text`` into pieces of at most ``max_tokens`` tokens."""


@dataclass(frozen=True)
class Span:
    """A sentence: its character range in the article's text."""

    start: int
    end: int


@dataclass(frozen=True)
class Chunk:
    """A run of whole sentences, the unit that is embedded and retrieved."""

    article_id: str
    position: int  # 0, 1, 2... within the article
    start: int
    end: int
    text: str
    first_sentence: int  # index into the article's sentence list
    last_sentence: int  # inclusive

    def embed_text(self, title: str) -> str:
        """What the model sees: the title gives every chunk its article's context."""
        return chunk_string(title, self.text)


def chunk_string(title: str, text: str) -> str:
    """A chunk as the model embeds it and lexical search indexes it: the title gives it its article's context."""
    return f"{title}\n{text}" if title else text


def split_sentences(text: str) -> list[Span]:
    """Sentence spans of ``text``: each line is split by blingfire, whitespace trimmed off the ends."""
    spans: list[Span] = []
    line_start = 0
    for line in text.split("\n"):
        if line.strip():
            _, offsets = blingfire.text_to_sentences_and_offsets(line)
            for a, b in offsets:
                span = _trimmed(text, line_start + a, line_start + b)
                if span is not None:
                    spans.append(span)
        line_start += len(line) + 1
    return spans


def _trimmed(text: str, start: int, end: int) -> Span | None:
    """The span ``text[start:end]`` without whitespace at its ends; None when nothing else is in it."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(start, end) if end > start else None


#: A chunk holds at most this many characters per token of its budget. The tokenizer turns a word of over 100
#: characters into one [UNK] token, so a 100,000-character word made one 100,000-character chunk. Real text
#: has at most 7.6 characters per token in a sentence (4.9 on average; the SQuAD sample and the bundled corpus).
MAX_CHARS_PER_TOKEN = 16


class Chunker:
    """Packs sentences into chunks of at most ``max_tokens`` model tokens (and ``MAX_CHARS_PER_TOKEN`` times as
    many characters).

    ``model_max_tokens`` is the model's maximum sequence length. A chunk is embedded after its article's
    title; the title is cut to what is left after the chunk and the two special tokens, so the whole
    always fits.
    """

    def __init__(self, tokenizer: Tokenizer, max_tokens: int, overlap: int = 1, model_max_tokens: int = 512):
        if max_tokens < 16:
            raise ValueError(f"chunk size {max_tokens} tokens is too small; use at least 16")
        if max_tokens > model_max_tokens - 18:
            raise ValueError(f"chunk size {max_tokens} tokens leaves no room for the title within the model's "
                             f"{model_max_tokens} tokens; use at most {model_max_tokens - 18}")
        if overlap < 0:
            raise ValueError(f"overlap {overlap} must be 0 or more sentences")
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.overlap = overlap
        self.model_max_tokens = model_max_tokens
        self.max_chars = max_tokens * MAX_CHARS_PER_TOKEN

    def embed_title(self, title: str) -> str:
        """The title as embedded with each chunk, cut to the tokens left beside a full chunk."""
        limit = self.model_max_tokens - 2 - self.max_tokens
        if not title or self.tokenizer.count([title])[0] <= limit:
            return title
        end = self.tokenizer.split(title, limit)[0][1]
        return title[:end]

    def split(self, article: Article) -> tuple[list[Span], list[Chunk]]:
        """The article's sentences, and its chunks over them."""
        text = article.text
        budget = self.max_tokens
        sentences, sizes = self._sentences(text, budget)
        chunks: list[Chunk] = []
        first = 0
        while first < len(sentences):
            last, used = first, sizes[first]
            while (last + 1 < len(sentences) and used + sizes[last + 1] <= budget
                   and sentences[last + 1].end - sentences[first].start <= self.max_chars):
                last += 1
                used += sizes[last]
            # Pieces of a cut sentence may rejoin mid-word and take more tokens together than apart.
            while last > first and self.tokenizer.count([text[sentences[first].start:sentences[last].end]])[0] > budget:
                last -= 1
            start, end = sentences[first].start, sentences[last].end
            chunks.append(Chunk(article.id, len(chunks), start, end, text[start:end], first, last))
            if last + 1 >= len(sentences):
                break
            # Share up to `overlap` sentences with the next chunk, but always move forward.
            first = max(first + 1, last + 1 - self.overlap)
        return sentences, chunks

    def _sentences(self, text: str, budget: int) -> tuple[list[Span], list[int]]:
        """Sentence spans and their token counts; a sentence over the budget is cut into pieces."""
        spans: list[Span] = []
        sizes: list[int] = []
        found = split_sentences(text)
        found = [piece for span in found for piece in (
            [span] if span.end - span.start <= self.max_chars else self._cut_chars(text, span))]
        for span, size in zip(found, self.tokenizer.count([text[s.start:s.end] for s in found]), strict=True):
            if size <= budget:
                spans.append(span)
                sizes.append(size)
                continue
            for piece, piece_size in self._cut(text, span, budget):
                spans.append(piece)
                sizes.append(piece_size)
        return spans, sizes

    def _cut_chars(self, text: str, span: Span) -> list[Span]:
        """Pieces of at most ``max_chars`` characters, cut after a space where there is one (else anywhere)."""
        out: list[Span] = []
        start = span.start
        while start < span.end:
            end = min(span.end, start + self.max_chars)
            if end < span.end:
                space = text.rfind(" ", start + 1, end)
                end = space if space > start else end
            piece = _trimmed(text, start, end)
            if piece is not None:
                out.append(piece)
            start = end
        return out

    def _cut(self, text: str, span: Span, budget: int) -> list[tuple[Span, int]]:
        """Pieces of an over-long sentence, each at most ``budget`` tokens when counted on its own.

        A piece that starts or ends inside a word can take more tokens alone than it did in the sentence
        ("##ire" becomes "ir", "##e"), so such a piece is cut again; pieces get shorter each time.
        """
        pieces = [Span(span.start + a, span.start + b) for a, b in self.tokenizer.split(text[span.start:span.end],
                                                                                         budget)]
        out: list[tuple[Span, int]] = []
        for piece, size in zip(pieces, self.tokenizer.count([text[p.start:p.end] for p in pieces]), strict=True):
            if size > budget and len(pieces) > 1:
                out += self._cut(text, piece, budget)
            else:
                out.append((piece, size))
        return out
