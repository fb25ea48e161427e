"""Chunking with the real tokenizer: exact offsets, the model's length limit, long sentences, overlap."""

from __future__ import annotations

import json
import random

import pytest
from conftest import CORPUS, EVAL
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.chunking import Chunker, split_sentences
from qa.corpus import make_article, read_corpus

SQUAD = [json.loads(line) for line in (EVAL / "squad2_sample_passages.jsonl").read_text().splitlines() if line]


def squad_articles():
    return [make_article(r["id"], "", r["text"], {}) for r in SQUAD]


def bundled_articles():
    articles, problems = read_corpus(CORPUS)
    assert articles and not problems
    return articles


def model_tokens(embedder, text: str) -> int:
    """Tokens the model sees, special tokens included."""
    return len(embedder.model.tokenizer(text)["input_ids"])  # transformers' own, not ours (qa.tokens)


def check_chunks(embedder, chunker: Chunker, article) -> tuple[list, list]:
    """Every offset holds, every chunk fits the model with its title, and no text is lost."""
    sentences, chunks = chunker.split(article)
    text = article.text
    assert chunks, article.id
    for s in sentences:
        piece = text[s.start:s.end]
        assert piece and piece == piece.strip()
    assert all(a.end <= b.start for a, b in zip(sentences, sentences[1:], strict=False))  # in order, disjoint
    title = chunker.embed_title(article.title)
    for i, c in enumerate(chunks):
        assert c.position == i and c.article_id == article.id
        assert text[c.start:c.end] == c.text
        assert (c.start, c.end) == (sentences[c.first_sentence].start, sentences[c.last_sentence].end)
        assert embedder.count([c.text])[0] <= chunker.max_tokens
        assert model_tokens(embedder, c.embed_text(title)) <= embedder.max_tokens
    # Sentences cover all text but whitespace, and chunks cover all sentences.
    bounds = [0] + [x for s in sentences for x in (s.start, s.end)] + [len(text)]
    assert all(not text[a:b].strip() for a, b in zip(bounds[::2], bounds[1::2], strict=True))
    assert chunks[0].first_sentence == 0 and chunks[-1].last_sentence == len(sentences) - 1
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert a.first_sentence < b.first_sentence <= a.last_sentence + 1
    return sentences, chunks


@pytest.fixture(scope="module")
def chunker(embedder):
    return Chunker(embedder, 128, 1, embedder.max_tokens)


def test_embedder_limits(embedder):
    assert embedder.max_tokens == 256  # all-MiniLM-L6-v2's max_seq_length
    assert embedder.count(["Hello world", ""]) == [2, 0]


def test_offsets_and_limits_on_the_bundled_corpus(embedder, chunker):
    for article in bundled_articles():
        sentences, chunks = check_chunks(embedder, chunker, article)
        assert len(chunks) > 1 and len(sentences) > len(chunks)


@pytest.mark.parametrize("size", [16, 128, 238])
def test_offsets_and_limits_on_squad_passages(embedder, size):
    chunker = Chunker(embedder, size, 1, embedder.max_tokens)
    for article in squad_articles():
        check_chunks(embedder, chunker, article)


def test_a_very_long_sentence_is_cut_into_pieces_that_fit(embedder, chunker):
    text = " ".join(f"word{i}" for i in range(2000))  # no punctuation at all
    assert len(split_sentences(text)) == 1
    article = make_article("long.txt", "A long sentence", text, {})
    sentences, chunks = check_chunks(embedder, chunker, article)
    assert len(sentences) > 1  # cut into pieces
    assert len(chunks) >= embedder.count([text])[0] // chunker.max_tokens


def test_pieces_cut_inside_words_still_fit(embedder):
    """Words glued together get cut mid-word; a piece alone or rejoined can take more tokens than counted."""
    words = " ".join(r["text"] for r in SQUAD[:40]).split()
    rng = random.Random(7)
    for size in (16, 20, 33, 128):
        chunker = Chunker(embedder, size, 1, embedder.max_tokens)
        for n in range(25):
            glue = ["", "", " ", "-", "\u00a0"]
            text = "".join(rng.choice(words).strip(".,;:!?") + rng.choice(glue) for _ in range(rng.randint(50, 400)))
            title = " ".join(rng.choice(words) for _ in range(rng.randint(1, 150)))
            check_chunks(embedder, chunker, make_article(f"glued-{size}-{n}", title, text, {}))


def test_a_long_title_is_cut_so_title_and_chunk_fit(embedder):
    chunker = Chunker(embedder, 200, 1, embedder.max_tokens)
    title = " ".join(f"headline{i}" for i in range(90))  # 979 characters (the limit is 1,000), ~270 tokens
    text = " ".join(f"Sentence number {i} says something plain." for i in range(200))
    check_chunks(embedder, chunker, make_article("t.md", title, text, {}))
    cut = chunker.embed_title(title)
    assert title.startswith(cut) and len(cut) < len(title)
    assert chunker.embed_title("Short title") == "Short title"


@pytest.mark.parametrize("overlap", [0, 1, 2])
def test_neighbouring_chunks_share_overlap_sentences(embedder, overlap):
    text = "\n".join(f"Item {i} of the list is about topic {i % 7} and nothing else." for i in range(60))
    article = make_article("list.md", "List", text, {})
    chunker = Chunker(embedder, 64, overlap, embedder.max_tokens)
    sentences, chunks = check_chunks(embedder, chunker, article)
    assert len(chunks) > 3
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert a.last_sentence - b.first_sentence + 1 == overlap
        if overlap:
            shared = text[sentences[b.first_sentence].start:sentences[a.last_sentence].end]
            assert a.text.endswith(shared) and b.text.startswith(shared)
        else:
            assert a.end < b.start


def test_sentences_split_within_lines(embedder, chunker):
    text = "Dr. Smith arrived at 5 p.m. on Monday. He left.\nA heading without a stop\nLast one!"
    spans = split_sentences(text)
    assert [text[s.start:s.end] for s in spans] == [
        "Dr. Smith arrived at 5 p.m. on Monday.", "He left.", "A heading without a stop", "Last one!"]


@pytest.mark.parametrize("size,overlap,message", [
    (8, 1, "too small"), (250, 1, "no room for the title"), (128, -1, "0 or more")])
def test_invalid_chunk_settings(embedder, size, overlap, message):
    with pytest.raises(ValueError, match=message):
        Chunker(embedder, size, overlap, embedder.max_tokens)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["Word", "ünï", "東京", "😀", "1,5", "e.g.", "Dr.", ". ", "! ", "? ", " ", "  ", "\n",
                                 "\n\n", "\t", "\u00a0", "\u2028", "—", "“quote”", "x" * 120, "a-b", "##"]),
                min_size=1, max_size=300).map("".join))
def test_offsets_hold_for_any_text(embedder, text):
    if not text.strip():
        return
    article = make_article("any.txt", "Any", text, {})
    check_chunks(embedder, Chunker(embedder, 16, 1, embedder.max_tokens), article)
