"""Property-based tests: the readers and the chunker on random input never raise and keep offsets exact.

Readers may only raise :class:`ArticleError` internally (``parse_text``, ``parse_html``, ``decode``);
``read_file`` never raises and reports what it could not read as Problems. Example counts are kept
modest so the file runs in well under a minute.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from qa.chunking import Chunker, split_sentences
from qa.corpus import (
    SUPPORTED_EXTENSIONS,
    Article,
    ArticleError,
    Problem,
    decode,
    make_article,
    parse_html,
    parse_text,
    read_file,
)

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Text with the characters that trouble readers: line breaks of every kind, front matter fences, markup,
# JSON punctuation, control characters, combining marks, emoji and CJK.
PIECES = ["---\n", "title: T\n", "date: 2024-02-30\n", "date: 2024-01-01 25:00\n", ": ", "- ", "[", "]", "{", "}",
          '"', "<p>", "</p>", "<script>alert(1)</script>", "<html><body>", "&amp;", "\r\n", "\r", "\n", "\t",
          "\x00", "\x0b", "\x1b", "\u2028", "\u00a0", "é", "e\u0301", "😀", "東京", "ß", "İ", "Dr. ", "e.g. ",
          ". ", "? ", "Word", "x" * 300, " "]
messy_text = st.one_of(st.text(max_size=400), st.lists(st.sampled_from(PIECES), max_size=60).map("".join))
messy_bytes = st.one_of(st.binary(max_size=600), messy_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
                        messy_text.map(lambda t: t.encode("utf-16", "surrogatepass")),
                        messy_text.map(lambda t: t.encode("cp1252", "replace")))


def check_article(article: Article) -> None:
    assert isinstance(article, Article)
    assert article.text and article.text == article.text.strip()
    assert "\r" not in article.text and "\x00" not in article.text
    assert article.title
    assert article.date is None or len(article.date) == 10


@FUZZ
@given(text=messy_text)
@example(text="---\ndate: 2024-02-30\n---\nTitle\nBody.")
@example(text="---\n" + "[" * 3000 + "\n---\nTitle\nBody.")
def test_parse_text_raises_only_article_errors(text):
    try:
        article = parse_text(text, "x.md")
    except ArticleError as exc:
        assert str(exc)
        return
    check_article(article)


@settings(FUZZ, max_examples=40)
@given(text=messy_text)
@example(text="<html><body><script>var secret = 1;</script><p>" + "Visible words here. " * 10 + "</p></body></html>")
def test_parse_html_raises_only_article_errors_and_drops_scripts(text):
    try:
        article = parse_html(text, "x.html")
    except ArticleError as exc:
        assert str(exc)
        return
    check_article(article)
    assert "alert(1)" not in article.text and "secret" not in article.text


@FUZZ
@given(raw=messy_bytes)
@example(raw=b"\xff\xfea")  # UTF-16 BOM and half a character
@example(raw="Title\nCafé".encode("utf-16-le"))
def test_decode_gives_text_or_an_article_error(raw):
    try:
        text = decode(raw)
    except ArticleError as exc:
        assert "binary" in str(exc)
        return
    assert isinstance(text, str)


@pytest.mark.parametrize("ext", SUPPORTED_EXTENSIONS)
@settings(FUZZ, max_examples=25)
@given(raw=messy_bytes)
def test_read_file_never_raises(tmp_path_factory, ext, raw):
    path = tmp_path_factory.mktemp("fuzz") / f"random{ext}"
    path.write_bytes(raw)
    articles, problems = read_file(path, path.name)
    assert all(isinstance(p, Problem) and p.path.startswith(path.name) and p.reason for p in problems)
    for article in articles:
        check_article(article)
        assert article.id == path.name or article.id.startswith(path.name + "#")
    assert len({a.id for a in articles}) == len(articles)
    assert articles or problems  # something is always said about a file
    assert "please report" not in " ".join(p.reason for p in problems)  # no unexpected exception was caught


scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
json_values = st.recursive(scalars,
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=4), max_leaves=12)
records = st.fixed_dictionaries({}, optional={"id": json_values, "title": json_values, "text": json_values,
                                              "body": json_values, "date": json_values, "source": json_values,
                                              "url": json_values})


@FUZZ
@given(items=st.lists(st.one_of(records, json_values), max_size=8), bad_lines=st.sets(st.integers(0, 8)))
def test_json_and_jsonl_records_each_become_an_article_or_a_problem(tmp_path_factory, items, bad_lines):
    folder = tmp_path_factory.mktemp("json")
    lines = [("{not json" if i in bad_lines else json.dumps(item)) for i, item in enumerate(items)]
    (folder / "r.jsonl").write_text("\n".join(lines))
    articles, problems = read_file(folder / "r.jsonl")
    assert len(articles) + records_in(problems) == max(len(items), 1)  # an empty file is one problem
    if len(problems) == records_in(problems):  # listed one by one (a few), not summarised per reason
        assert {p.path for p in problems if "invalid JSON" in p.reason} == {
            f"r.jsonl (line {i + 1})" for i in bad_lines if i < len(items)}
    for article in articles:
        check_article(article)
    (folder / "r.json").write_text(json.dumps(items))
    articles, problems = read_file(folder / "r.json")
    assert len(articles) + records_in(problems) == max(len(items), 1)
    assert len({a.id for a in articles}) == len(articles)


def records_in(problems: list[Problem]) -> int:
    """How many records ``problems`` are about: one each, or the count of a summary ("f.jsonl (6 lines)")."""
    counts = [re.search(r"\((\d[\d,]*) (?:lines|records)\)$", p.path) for p in problems]
    return sum(int(m[1].replace(",", "")) if m else 1 for m in counts)


any_text = st.one_of(st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=600),
                     st.lists(st.sampled_from(PIECES), min_size=1, max_size=80).map("".join))


@FUZZ
@given(text=any_text)
def test_sentence_spans_are_verbatim_trimmed_ordered_and_cover_the_text(text):
    spans = split_sentences(text)
    previous_end = 0
    for s in spans:
        piece = text[s.start:s.end]
        assert 0 <= s.start < s.end <= len(text)
        assert piece == piece.strip()
        assert invisible(text[previous_end:s.start])  # only whitespace is left between sentences
        previous_end = s.end
    assert invisible(text[previous_end:])


def invisible(text: str) -> bool:
    """Whitespace, and what blingfire also treats as space: control and zero-width format characters."""
    return all(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") or ch in "\u2420\u2424" for ch in text)


@pytest.fixture(scope="module")
def chunkers(embedder):
    return [Chunker(embedder, 16, 1, embedder.max_tokens), Chunker(embedder, 128, 2, embedder.max_tokens)]


@FUZZ
@given(text=any_text, title=st.text(max_size=300), which=st.integers(0, 1))
def test_chunks_are_verbatim_whole_sentences_within_the_budget(embedder, chunkers, text, title, which):
    try:
        article = make_article("fuzz.txt", title, text, {})
    except ArticleError:
        assert invisible(text)
        return
    chunker = chunkers[which]
    sentences, chunks = chunker.split(article)
    body = article.text
    assert bool(chunks) == bool(sentences) == (not invisible(body))
    for s in sentences:
        assert body[s.start:s.end] and body[s.start:s.end] == body[s.start:s.end].strip()
    for i, c in enumerate(chunks):
        assert c.position == i
        assert body[c.start:c.end] == c.text
        assert (c.start, c.end) == (sentences[c.first_sentence].start, sentences[c.last_sentence].end)
        assert embedder.count([c.text])[0] <= chunker.max_tokens
        full = c.embed_text(chunker.embed_title(article.title))
        assert len(embedder.model.tokenizer(full)["input_ids"]) <= embedder.max_tokens
    covered = {i for c in chunks for i in range(c.first_sentence, c.last_sentence + 1)}
    assert covered == set(range(len(sentences)))  # no sentence is lost


def test_fuzz_examples_are_written_to_a_temporary_folder(tmp_path: Path):
    """read_file on a path inside a missing folder is a Problem, not an exception (a last, fixed example)."""
    articles, problems = read_file(tmp_path / "missing" / "x.md")
    assert articles == [] and "not found" in problems[0].reason
