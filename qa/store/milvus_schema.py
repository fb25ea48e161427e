"""The Milvus layout of an index: its collections, their fields, and filters as Milvus expressions.

Collections, named ``<prefix>_meta`` and ``<prefix>_<space>_{articles,chunks,sentences}``:

    meta        key -> value: the manifest row (the one switch, below), the corpus files read, the writer lease
    articles    one row per article and 16,000-character part of its text (VARCHAR holds at most 65,535 bytes)
    chunks      vector, BM25 sparse vector (a server-side ``Function`` over title + chunk text), offsets,
                article key, source key, date as YYYYMMDD (0: undated), and what a Passage shows
    sentences   offsets, text and vector of each sentence, for the answerer

A *space* is one set of the three data collections; a rebuild (which may change the vector dimension) fills
a new space, and the manifest row names the space readers use.

Versions (Milvus has no transaction over several rows): every data row carries ``gen``, the commit that wrote
it, and ``until``, the commit that removed it (:data:`ALIVE` while it is current). A reader reads the manifest
row first, whose ``generation`` G is the last commit, and filters every search with :func:`visible` (``gen <= G
and until > G``). A commit G+1 writes its rows with gen G+1 (invisible at G), marks the rows it removes with
until G+1 (still visible at G), and then upserts the manifest row: one row, so readers see all of the commit
or none of it.

Keys: article ids and sources are matched through 63-bit integer keys (:func:`key`), never through string
literals in expressions: Milvus Lite 3 rejects ``\\u`` escapes, the C++ core finds no row for a ``\\n`` escape,
and Lite 3 does not support expression templates. Rows are checked against the full string when read, so a
key collision (about 1 in 10^11 for a million articles) can only cost an over-fetch.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from qa.filters import Filters

#: ``until`` of a row that no commit has removed.
ALIVE = 2**62
#: Characters of article text per articles row: 4 bytes each at most in UTF-8, under VARCHAR's 65,535 bytes.
PART_CHARS = 16_000
#: VARCHAR's limit in bytes, for every text field (metadata fields are far shorter: qa.metadata.FIELD_LIMITS).
MAX_VARCHAR = 65_535
#: A dummy vector for the meta collection: Milvus loads no collection without a vector field.
META_DIM = 2
#: Ids of rows written by commit ``gen`` are ``gen << ID_SHIFT | n``: unique without a counter in the server.
ID_SHIFT = 32
#: Where in a commit's id range the copies of retired rows, and of rows a crashed commit had marked, start.
RETIRED_IDS, RECOVERED_IDS = 2 << 30, 3 << 30


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # INT64, DOUBLE, VARCHAR, FLOAT_VECTOR, SPARSE_FLOAT_VECTOR
    primary: bool = False
    analyzed: bool = False  # input of the BM25 function


_VERSION = (Field("gen", "INT64"), Field("until", "INT64"))
ARTICLE_FIELDS = (
    Field("id", "INT64", primary=True), Field("akey", "INT64"), Field("article_id", "VARCHAR"),
    Field("part", "INT64"), Field("parts", "INT64"), Field("text", "VARCHAR"), Field("title", "VARCHAR"),
    Field("date", "VARCHAR"), Field("day", "INT64"), Field("source", "VARCHAR"), Field("skey", "INT64"),
    Field("url", "VARCHAR"), Field("author", "VARCHAR"), Field("file", "VARCHAR"), Field("hash", "VARCHAR"),
    Field("text_hash", "VARCHAR"), Field("chunks", "INT64"), Field("indexed_at", "DOUBLE"), *_VERSION,
    Field("vector", "FLOAT_VECTOR"))
CHUNK_FIELDS = (
    Field("id", "INT64", primary=True), Field("akey", "INT64"), Field("article_id", "VARCHAR"),
    Field("position", "INT64"), Field("start", "INT64"), Field("end", "INT64"),
    Field("first_sentence", "INT64"), Field("last_sentence", "INT64"), Field("title", "VARCHAR"),
    Field("date", "VARCHAR"), Field("day", "INT64"), Field("source", "VARCHAR"), Field("skey", "INT64"),
    Field("url", "VARCHAR"), Field("lexical", "VARCHAR", analyzed=True), *_VERSION,
    Field("vector", "FLOAT_VECTOR"), Field("sparse", "SPARSE_FLOAT_VECTOR"))
SENTENCE_FIELDS = (
    Field("id", "INT64", primary=True), Field("akey", "INT64"), Field("article_id", "VARCHAR"),
    Field("position", "INT64"), Field("start", "INT64"), Field("end", "INT64"), Field("text", "VARCHAR"),
    *_VERSION, Field("vector", "FLOAT_VECTOR"))
META_FIELDS = (Field("key", "VARCHAR", primary=True), Field("kind", "VARCHAR"), Field("value", "VARCHAR"),
               Field("vector", "FLOAT_VECTOR"))
DATA = {"articles": ARTICLE_FIELDS, "chunks": CHUNK_FIELDS, "sentences": SENTENCE_FIELDS}
#: The field that tells a row from the other rows of the same article version.
SLOT = {"articles": "part", "chunks": "position", "sentences": "position"}


def identity(kind: str, row: dict) -> tuple[int, int, int]:
    """What a row and its copy (:func:`qa.store.milvus_write._rewrite`) share: readers keep one of each."""
    return row["akey"], row["gen"], row[SLOT[kind]]


def stored(fields: tuple[Field, ...]) -> list[str]:
    """The fields a row is written with and read back (the BM25 function's output is computed by Milvus)."""
    return [f.name for f in fields if f.kind != "SPARSE_FLOAT_VECTOR"]


def schema(client, fields: tuple[Field, ...], dimension: int):
    """A pymilvus schema for ``fields`` (vectors of ``dimension``), with the BM25 function where a field is
    analyzed."""
    from pymilvus import DataType, Function, FunctionType

    out = client.create_schema(auto_id=False, enable_dynamic_field=False)
    for f in fields:
        kind = getattr(DataType, f.kind)
        options: dict = {"is_primary": True} if f.primary else {}
        if f.kind == "VARCHAR":
            options["max_length"] = MAX_VARCHAR
            if f.analyzed:
                options["enable_analyzer"] = True
        if f.kind == "FLOAT_VECTOR":
            options["dim"] = dimension
        out.add_field(f.name, kind, **options)
    for f in fields:
        if f.analyzed:
            out.add_function(Function(name=f"{f.name}_bm25", function_type=FunctionType.BM25,
                                      input_field_names=[f.name], output_field_names=["sparse"]))
    return out


def key(value: str | None) -> int:
    """A 63-bit integer key of a string (0 for None): article ids and sources are filtered by these."""
    if value is None:
        return 0
    return int.from_bytes(hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=8).digest()) >> 1 or 1


def day(date: str | None) -> int:
    """An article date (YYYY-MM-DD...) as the integer YYYYMMDD for range filters; 0 when undated or unreadable."""
    if not date or len(date) < 10:
        return 0
    digits = date[:10].replace("-", "")
    return int(digits) if len(digits) == 8 and digits.isdigit() else 0


def visible(generation: int) -> str:
    """Rows current at commit ``generation``."""
    return f"gen <= {int(generation)} and until > {int(generation)}"


def expression(filters: Filters) -> str:
    """``filters`` as a Milvus boolean expression over ``skey`` and ``day`` ("" for none)."""
    parts = []
    if filters.source:
        parts.append(f"skey == {key(filters.source)}")
    bounds = []
    if filters.since:
        bounds.append(f"day >= {day(filters.since)}")
    if filters.until:
        bounds.append(f"day <= {day(filters.until)}")
    if bounds:
        dated = " and ".join(["day > 0", *bounds])
        parts.append(f"(({dated}) or day == 0)" if filters.undated else f"({dated})")
    return " and ".join(parts)


def any_of(clauses: list[str]) -> str:
    """``clauses`` joined by "or" as a balanced tree: Milvus's C++ core parses a flat chain of n "or"s n deep and
    refuses one past about 45 ("unsupported expr proto node"); balanced, 100 clauses nest 7 deep."""
    if len(clauses) == 1:
        return f"({clauses[0]})"
    half = len(clauses) // 2
    return f"({any_of(clauses[:half])} or {any_of(clauses[half:])})"


def keys_in(name: str, values) -> str:
    return f"{name} in [{', '.join(str(int(v)) for v in values)}]"


def lexical_text(title: str, text: str) -> str:
    """The string BM25 indexes: title and chunk text, as the local backend indexes them."""
    return f"{title}\n{text}"


def passage_text(title: str, lexical: str) -> str:
    """The chunk's text back out of :func:`lexical_text`."""
    return lexical[len(title) + 1:]
