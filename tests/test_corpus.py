"""Reading articles: every input format, its metadata, article ids, content hashes and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import CORPUS, write

from qa.corpus import parse_date, read_corpus, read_file

HTML_PAGE = """<!DOCTYPE html>
<html lang="en"><head>
<title>Harbour Bridge Reopens | Example News</title>
<meta property="og:title" content="Harbour Bridge Reopens After Repairs">
<meta name="author" content="Jane Roe">
<meta property="og:site_name" content="Example News">
<meta property="article:published_time" content="2024-03-05T08:00:00Z">
<link rel="canonical" href="https://news.example.com/bridge">
<script>var tracker = "SCRIPTSECRET in the head";</script>
</head><body>
<nav><a href="/">Home</a> <a href="/world">World</a></nav>
<article>
<h1>Harbour Bridge Reopens After Repairs</h1>
<p>The harbour bridge reopened on Tuesday after six months of repairs to its steel cables, the council said.</p>
<p>Engineers replaced more than two hundred cables and repainted the main span, which carries many cars.</p>
<script>document.write("INLINESECRET in the body");</script>
<p>Traffic returned to normal by the evening rush hour, according to the transport authority.</p>
</article>
<footer>Copyright 2024 Example News</footer>
</body></html>
"""


def by_id(folder: Path) -> dict:
    articles, problems = read_corpus(folder)
    assert not problems, problems
    return {a.id: a for a in articles}


def test_markdown_front_matter_gives_metadata_and_is_not_text(tmp_path):
    write(tmp_path, "world/story.md", "---\ntitle: Floods in the Valley\ndate: 2024-05-01\nsource: Daily Wire\n"
                                      "url: https://example.com/floods\nauthor: Ann Lee\n---\n"
                                      "Heavy rain flooded the valley.\n\nRoads were closed.\n")
    article = by_id(tmp_path)["world/story.md"]  # the id is the path inside the corpus folder
    assert article.title == "Floods in the Valley"
    assert (article.date, article.source, article.url, article.author) == (
        "2024-05-01", "Daily Wire", "https://example.com/floods", "Ann Lee")
    assert article.text == "Heavy rain flooded the valley.\n\nRoads were closed."


@pytest.mark.parametrize("name,first_line", [("note.txt", "Bridge Opens"), ("note.md", "# Bridge Opens")])
def test_without_front_matter_the_first_line_is_the_title(tmp_path, name, first_line):
    write(tmp_path, name, f"{first_line}\r\nThe new bridge opened today.\r\nIt cost a lot.\r\n")
    article = by_id(tmp_path)[name]
    assert article.title == "Bridge Opens"
    assert article.text == "The new bridge opened today.\nIt cost a lot."  # line endings unified
    assert (article.date, article.source, article.url, article.author) == (None, None, None, None)


def test_front_matter_without_title_falls_back_to_first_line(tmp_path):
    write(tmp_path, "a.md", "---\ndate: 5 March 2024\n---\nMarket Rally\nShares rose.\n")
    article = by_id(tmp_path)["a.md"]
    assert (article.title, article.text, article.date) == ("Market Rally", "Shares rose.", "2024-03-05")


@pytest.mark.parametrize("name", ["page.html", "page.htm"])
def test_html_main_text_and_metadata_without_scripts_or_furniture(tmp_path, name):
    write(tmp_path, name, HTML_PAGE)
    article = by_id(tmp_path)[name]
    assert article.title == "Harbour Bridge Reopens After Repairs"
    assert article.date == "2024-03-05"
    assert article.author == "Jane Roe"
    assert article.source == "Example News"
    assert article.url == "https://news.example.com/bridge"
    assert "six months of repairs" in article.text
    assert "evening rush hour" in article.text
    for unwanted in ("SCRIPTSECRET", "INLINESECRET", "tracker", "Copyright", "<p>"):
        assert unwanted not in article.text


def test_json_list_of_records(tmp_path):
    records = [
        {"id": "a1", "title": "First", "text": "Alpha text.", "date": "2024-01-02", "source": "Wire",
         "url": "https://x.test/1", "author": "Al"},
        {"title": "Second", "body": "Beta body."},
        {"id": "", "content": "Gamma content."},
        {"id": 7, "text": "Delta text."},
    ]
    write(tmp_path, "feed.json", json.dumps(records))
    articles = by_id(tmp_path)
    assert list(articles) == ["feed.json#a1", "feed.json#1", "feed.json#2", "feed.json#7"]
    first = articles["feed.json#a1"]
    assert (first.title, first.text, first.date, first.source, first.url, first.author) == (
        "First", "Alpha text.", "2024-01-02", "Wire", "https://x.test/1", "Al")
    assert articles["feed.json#1"].text == "Beta body."
    assert articles["feed.json#2"].text == "Gamma content."
    assert articles["feed.json#2"].title == "Feed"  # no title: from the file name


def test_json_single_object(tmp_path):
    write(tmp_path, "one.json", json.dumps({"id": "solo", "title": "Solo", "text": "Just one."}))
    write(tmp_path, "anon.json", json.dumps({"title": "Anon", "text": "No id."}))
    assert set(by_id(tmp_path)) == {"one.json#solo", "anon.json#0"}


def test_jsonl_records_use_id_or_line_number(tmp_path):
    write(tmp_path, "lines.jsonl", '{"id": "x", "text": "One."}\n\n{"body": "Two.", "date": "March 3, 2024"}\n')
    articles = by_id(tmp_path)
    assert set(articles) == {"lines.jsonl#x", "lines.jsonl#3"}
    assert articles["lines.jsonl#3"].date == "2024-03-03"


def test_record_ids_are_unique_within_a_file(tmp_path):
    # A record without an id at position 1 would otherwise take the id "1" of the first record.
    records = [{"id": "1", "text": "Cats."}, {"text": "Dogs."}, {"id": "1", "text": "Birds."}]
    write(tmp_path, "f.json", json.dumps(records))
    ids = [a.id for a in read_corpus(tmp_path)[0]]
    assert len(set(ids)) == 3
    assert ids[0] == "f.json#1"


def test_bad_records_are_reported_not_raised(tmp_path):
    write(tmp_path, "f.json", json.dumps([{"text": 5}, "not an object", {"text": "Good."}]))
    write(tmp_path, "g.jsonl", '{"text": "Fine."}\nnot json\n')
    articles, problems = read_corpus(tmp_path)
    assert sorted(a.id for a in articles) == ["f.json#2", "g.jsonl#1"]
    reasons = {p.path: p.reason for p in problems}
    assert "'text'" in reasons["f.json (record 0)"]
    assert "not a JSON object" in reasons["f.json (record 1)"]
    assert "invalid JSON" in reasons["g.jsonl (line 2)"]


@pytest.mark.parametrize("name,content,reason", [
    ("broken.json", "[{", "invalid JSON"),
    ("bad.md", "---\ntitle: [unclosed\n---\nText.\n", "front matter"),
    ("empty.txt", "   \n", "no text"),
    ("binary.txt", b"\x00\x01\x02binary", "binary"),
    ("page.html", "<html><body><script>x=1</script></body></html>", "no article text"),
    ("data.csv", "a,b\n1,2\n", "unsupported file type"),
])
def test_unreadable_files_become_problems_with_reasons(tmp_path, name, content, reason):
    write(tmp_path, name, content)
    write(tmp_path, "good.txt", "Good\nA good article.")
    articles, problems = read_corpus(tmp_path)
    assert [a.id for a in articles] == ["good.txt"]
    assert [p.path for p in problems] == [name]
    assert reason in problems[0].reason


def test_hidden_files_are_ignored_and_other_types_reported(tmp_path):
    write(tmp_path, ".hidden/x.md", "X\nHidden.")
    write(tmp_path, ".draft.md", "X\nDraft.")
    write(tmp_path, "notes", "no extension")
    write(tmp_path, "ok.md", "Ok\nVisible.")
    articles, problems = read_corpus(tmp_path)
    assert [a.id for a in articles] == ["ok.md"]
    assert [p.path for p in problems] == ["notes"]


def test_missing_folder_is_a_problem(tmp_path):
    articles, problems = read_corpus(tmp_path / "nope")
    assert articles == []
    assert len(problems) == 1 and "not found" in problems[0].reason


def test_ids_and_hashes_are_stable(tmp_path):
    first, _ = read_corpus(CORPUS)
    second, _ = read_corpus(CORPUS)
    assert [(a.id, a.hash, a.text_hash) for a in first] == [(a.id, a.hash, a.text_hash) for a in second]
    assert len({a.hash for a in first}) == len(first)
    assert sorted(a.id for a in first) == sorted(p.name for p in CORPUS.glob("*.md"))


def test_hash_follows_content_and_text_hash_ignores_metadata_and_spacing(tmp_path):
    write(tmp_path, "a.md", "---\ntitle: T\nsource: One\n---\nSame story here.\n")
    write(tmp_path, "b.md", "---\ntitle: T\nsource: Two\n---\nSame   story\nhere.\n")
    write(tmp_path, "c.md", "---\ntitle: T\nsource: One\n---\nSame story here.\n")
    a, b, c = (by_id(tmp_path)[n] for n in ("a.md", "b.md", "c.md"))
    assert a.hash == c.hash  # same content under another name
    assert a.hash != b.hash  # metadata and text differ
    assert a.text_hash == b.text_hash == c.text_hash
    write(tmp_path, "a.md", "---\ntitle: T\nsource: One\n---\nSame story here, changed.\n")
    changed = by_id(tmp_path)["a.md"]
    assert changed.hash != a.hash and changed.text_hash != a.text_hash


def test_encodings(tmp_path):
    write(tmp_path, "bom.txt", "\ufeffTitle\nCafé crème.".encode())
    write(tmp_path, "utf16.txt", "Title\nCafé crème.".encode("utf-16"))
    write(tmp_path, "latin.txt", "Title\nCafé crème.".encode("cp1252"))
    assert {a.text for a in by_id(tmp_path).values()} == {"Café crème."}


def test_read_file_on_a_missing_file(tmp_path):
    articles, problems = read_file(tmp_path / "gone.md")
    assert articles == [] and "not found" in problems[0].reason


@pytest.mark.parametrize("raw,expected", [
    ("2024-11-27", "2024-11-27"), ("2024-11-27T10:00:00Z", "2024-11-27"), ("2024/11/27", "2024-11-27"),
    ("27 November 2024", "2024-11-27"), ("Nov 27, 2024", "2024-11-27"), ("sometime", None), ("", None),
])
def test_parse_date(raw, expected):
    assert parse_date(raw) == expected


def test_a_readme_at_the_corpus_root_is_not_an_article(tmp_path):
    from qa.corpus import read_corpus

    (tmp_path / "README.md").write_text("# About this folder\n\nArticles go here.\n")
    (tmp_path / "story.md").write_text("A story\n\nSomething happened.\n")
    articles, problems = read_corpus(tmp_path)
    assert [a.id for a in articles] == ["story.md"] and not problems
