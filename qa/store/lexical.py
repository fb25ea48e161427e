"""The local index's lexical search: BM25 over each chunk string, in a tantivy index that is updated in place.

tantivy (Lucene's design in Rust) keeps immutable segments and merges them in the background, so a commit
costs what it adds, not the archive's size. Chosen by measurement over bm25s (rebuilt whole on every sync) and
SQLite FTS5: BENCHMARKS.md, "Lexical search that updates in place". Its search scores every posting of every
query word: tantivy's block-max WAND runs only under a bare ``TopDocs`` collector, and tantivy-py 0.27's
``Searcher.search`` always wraps that in a ``MultiCollector`` (``count=False`` included), whose default
``collect_segment`` calls ``Weight::for_each``; at 1M chunks a search took the same time for the top 10 as for
the top 50, and with 1, 2 or 6 segments. Its cost is the postings of the words searched (12-20 ns each on
this machine), hence :data:`COMMON_SHARE`.

Each document holds the chunk id, the commit (generation) that added it, the article's source and date (as
YYYYMMDD, 0 for undated) for filters, and the chunk string (title and chunk text, :func:`qa.chunking.chunk_string`),
tokenized by tantivy's default analyzer: split on anything but letters and digits, lowercased, no stemming and
no stop list, as bm25s did (see :data:`COMMON_SHARE` for the one exception, made for speed).

The database is the authority on what is committed (:mod:`qa.store.local` explains the order of writes): a
document here counts only while the database holds its chunk, so the caller filters hits by liveness.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import cast

import tantivy

from qa.errors import IndexUnusable
from qa.files import is_read_only, storage_error
from qa.filters import Filters

#: In an index of at least COMMON_MIN documents, query words found in more than COMMON_SHARE of them are left out
#: of the query when that still finds ``k`` documents: at 1M chunks a question's "the", "of" and "what" each
#: match most documents, and scoring them took 21 ms per query (p50) against 2.9 ms without them, while their
#: BM25 weight (IDF) is a small fraction of a rarer word's (BENCHMARKS.md, "Lexical search that updates in
#: place", for the overlap with the full ranking). Smaller indexes are searched with every word. The share trades
#: time for ranking (1M synthetic chunks, one run: 0.2 keeps 0.82 of the full top 10; 0.1 is a
#: quarter faster and keeps 0.69); leaving words out by a postings budget or by their share of the query's IDF
#: did worse for the time, and rescoring the rarer words' top 100 with the other words (one query per word,
#: restricted to those ids) ranks better but costs more than it saves.
COMMON_SHARE, COMMON_MIN = 0.2, 50_000
#: tantivy's smallest writer heap (per thread), enough for a sync's batch.
WRITER_HEAP = 50_000_000
_WORD = re.compile(r"[^\W_]+")  # what tantivy's default tokenizer keeps: runs of letters and digits


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("id", indexed=True, fast=True)
    builder.add_integer_field("generation", indexed=True, fast=True)
    builder.add_text_field("source", tokenizer_name="raw", index_option="basic")
    builder.add_integer_field("date", indexed=True, fast=True)
    builder.add_text_field("text", tokenizer_name="default", index_option="freq")
    return builder.build()


SCHEMA = _schema()


def day_number(date: str | None) -> int:
    """YYYY-MM-DD as the integer YYYYMMDD; 0 for undated."""
    return int(date[:10].replace("-", "")) if date else 0


def words(query: str) -> list[str]:
    """The query's distinct words as the index holds them."""
    return list(dict.fromkeys(w.lower() for w in _WORD.findall(query) if len(w) <= 40))


class LexicalIndex:
    """A tantivy index in one folder. Readers see the state of their last :meth:`refresh`."""

    def __init__(self, folder: Path, create: bool = False):
        self.folder = folder
        self._copy: tempfile.TemporaryDirectory | None = None
        try:
            if create:
                folder.mkdir(parents=True, exist_ok=True)
                self.index = tantivy.Index(SCHEMA, path=str(folder), reuse=False)
            else:
                if not (folder / "meta.json").is_file():
                    raise FileNotFoundError(folder / "meta.json")
                try:
                    self.index = tantivy.Index.open(str(folder))
                except ValueError:
                    if not is_read_only(folder):
                        raise
                    # tantivy locks its folder even to read, which a read-only mount refuses: read a copy.
                    self._copy = tempfile.TemporaryDirectory(prefix="qa-lexical-")
                    copy = Path(self._copy.name) / folder.name
                    shutil.copytree(folder, copy)
                    self.index = tantivy.Index.open(str(copy))
            self.index.config_reader(reload_policy="Manual")
            self.index.reload()
            self.searcher = self.index.searcher()
        except (OSError, ValueError) as exc:  # a full or read-only disk first: rebuilding would not help there
            raise storage_error(folder, exc) or IndexUnusable(
                f"the lexical index in {folder} is missing or damaged ({exc}); run `qa index --rebuild`") from None

    def refresh(self) -> None:
        self.index.reload()
        self.searcher = self.index.searcher()

    @property
    def size(self) -> int:
        """Documents held, dead ones not yet deleted included."""
        return self.searcher.num_docs

    def ids(self) -> list[int]:
        """Every document's chunk id (dead ones included), for checks."""
        if not self.size:
            return []
        hits = self.searcher.search(tantivy.Query.all_query(), self.size, count=False).hits
        return _chunk_ids(self.searcher.fast_field_values("id", [address for _, address in hits]))

    def search(self, query: str, k: int, filters: Filters, share: float = COMMON_SHARE) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) pairs, best first; ``share`` is :data:`COMMON_SHARE` but for benchmarks."""
        terms = words(query)
        if not terms or k < 1 or not self.size:
            return []
        searcher = self.searcher
        if len(terms) > 1 and searcher.num_docs >= COMMON_MIN:
            limit = share * searcher.num_docs
            rare = [t for t in terms if searcher.doc_freq("text", t) <= limit]
            if rare and len(rare) < len(terms):
                found = self._search(rare, k, filters)
                if len(found) >= k:
                    return found
        return self._search(terms, k, filters)

    def _search(self, terms: list[str], k: int, filters: Filters) -> list[tuple[int, float]]:
        should = tantivy.Occur.Should
        query = tantivy.Query.boolean_query([(should, tantivy.Query.term_query(SCHEMA, "text", t)) for t in terms])
        searcher = self.searcher
        try:
            hits = searcher.search(self._filtered(query, filters), k, count=False).hits
            ids = searcher.fast_field_values("id", [address for _, address in hits])
        except ValueError as exc:
            raise IndexUnusable(f"the lexical index in {self.folder} cannot be searched ({exc}); "
                                "run `qa index --rebuild`") from None
        return [(i, float(score)) for (score, _), i in zip(hits, _chunk_ids(ids), strict=True) if score > 0]

    @staticmethod
    def _filtered(query: tantivy.Query, filters: Filters) -> tantivy.Query:
        must = tantivy.Occur.Must
        parts = [(must, query)]
        if filters.source:
            parts.append((must, tantivy.Query.term_query(SCHEMA, "source", filters.source)))
        if filters.dated:
            low = day_number(filters.since) if filters.since else 1
            high = day_number(filters.until) if filters.until else None
            dated = tantivy.Query.range_query(SCHEMA, "date", tantivy.FieldType.Integer, low, high)
            if filters.undated:
                undated = tantivy.Query.term_query(SCHEMA, "date", 0)
                dated = tantivy.Query.boolean_query([(tantivy.Occur.Should, dated), (tantivy.Occur.Should, undated)])
            parts.append((must, dated))
        return tantivy.Query.boolean_query(parts) if len(parts) > 1 else query


class LexicalWriter:
    """Adds and deletes documents of one lexical index; nothing is visible before :meth:`commit`."""

    def __init__(self, folder: Path, create: bool = False):
        self.index = LexicalIndex(folder, create).index
        self.writer = self.index.writer(heap_size=WRITER_HEAP, num_threads=1)

    def add(self, rows: Iterable[tuple[int, int, str | None, str | None, str]]) -> None:
        """Add (chunk id, generation, source, date, chunk string) documents."""
        for chunk_id, generation, source, date, text in rows:
            doc = tantivy.Document(id=chunk_id, generation=generation, date=day_number(date), text=text)
            if source:
                doc.add_text("source", source)
            self.writer.add_document(doc)

    def delete(self, chunk_ids: Sequence[int]) -> None:
        for chunk_id in chunk_ids:
            self.writer.delete_documents_by_term("id", int(chunk_id))

    def delete_after(self, generation: int) -> None:
        """Delete the documents of commits after ``generation`` (left by a commit that did not happen)."""
        self.writer.delete_documents_by_query(
            tantivy.Query.range_query(SCHEMA, "generation", tantivy.FieldType.Integer, generation + 1, None))

    def commit(self) -> None:
        self.writer.commit()

    def close(self) -> None:
        """Finish background merges, then release the writer."""
        self.writer.wait_merging_threads()


def _chunk_ids(values: Sequence[object]) -> list[int]:
    """The ``id`` fast field's values: ints by the schema (tantivy types the values of any fast field)."""
    return [int(cast(int, value)) for value in values]
