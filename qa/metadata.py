"""Article metadata from untrusted files: YAML front matter without aliases, fields as short plain values.

An uploaded file must never be able to cost more than its own size. YAML aliases can: a 339-byte front matter
whose levels each list nine references to the level before gave a 3.85 MB title at depth 6 (a 23 s, 2.6 GB
sync) and killed the process at depth 7, when the title was turned into a string. So aliases are refused,
every field must be one plain value (text, a number or a date, not a list or a mapping), and each has a
length limit. Text that Python can hold but UTF-8 cannot encode (lone surrogates, from a JSON ``"\\ud800"``)
is repaired to U+FFFD, since SQLite, the tokenizer and the page all need valid UTF-8.
"""

from __future__ import annotations

import datetime as dt
import re

import yaml

#: Front matter larger than this is refused; real front matter is a few hundred bytes.
MAX_FRONT_MATTER_CHARS = 64 * 1024
#: Longest value accepted per field, in characters. Generous: the seed corpus's longest title (a first line)
#: is 138 characters; 2,048 is the URL length browsers and servers commonly accept.
FIELD_LIMITS = {"id": 500, "title": 1000, "date": 100, "source": 200, "url": 2048, "author": 500}

_SURROGATES = re.compile("[\ud800-\udfff]")


class MetadataError(ValueError):
    """A metadata field or block that cannot be used as it is; the message names the field and the fix.

    The corpus reader turns it into a skip reason (:class:`qa.corpus.ArticleError` derives from ValueError too).
    """


class _FrontMatterLoader(yaml.SafeLoader):
    """Safe YAML without aliases, every scalar but ``null`` kept as written: dates go through one rule (no
    ``9999-99-99`` error from YAML while ``"2024-02-30"`` passes), and ``source: NO`` stays "NO", not False."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise MetadataError("front matter uses a YAML alias (*name), which can make a few bytes expand to "
                                "gigabytes; write the value out instead")
        return super().compose_node(parent, index)


_FrontMatterLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag in ("tag:yaml.org,2002:null", "tag:yaml.org,2002:merge")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def load_front_matter(block: str) -> dict:
    """The ``key: value`` mapping of a front matter block; raises :class:`MetadataError` with the fix."""
    if len(block) > MAX_FRONT_MATTER_CHARS:
        raise MetadataError(f"front matter is {len(block):,} characters, over the {MAX_FRONT_MATTER_CHARS:,} "
                            "limit; keep only title, date, source, url and author there")
    try:
        loaded = yaml.load(block, Loader=_FrontMatterLoader)  # noqa: S506 - a SafeLoader subclass
    except MetadataError:
        raise
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
        raise MetadataError(f"front matter is not valid YAML ({first}); fix it or remove the --- block") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise MetadataError("front matter must be 'key: value' lines (title, date, source, url, author)")
    return loaded or {}


def repair(text: str) -> str:
    """``text`` with lone surrogates (not encodable as UTF-8) replaced by U+FFFD."""
    return _SURROGATES.sub("\ufffd", text) if _SURROGATES.search(text) else text


def field(meta: dict, name: str) -> str | None:
    """Metadata field ``name`` as one line of text, None when absent or empty.

    Raises :class:`MetadataError` for a list or mapping, or a value over the field's length limit.
    """
    value = meta.get(name)
    if value is None or isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float | dt.date):
        kind = "a list" if isinstance(value, list | tuple) else "a mapping" if isinstance(value, dict) else "not text"
        raise MetadataError(f"'{name}' is {kind}; it must be a single line of text")
    text = " ".join(repair(str(value)).split())
    limit = FIELD_LIMITS.get(name)
    if limit is not None and len(text) > limit:
        raise MetadataError(f"'{name}' is {len(text):,} characters, over the {limit:,} limit; shorten it")
    return text or None
