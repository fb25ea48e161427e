"""Search filters as data: which articles a search may look at (source, date range, undated or not).

A :class:`Filters` value is built once from what a user typed (:meth:`Filters.parse` checks it and says what is
wrong in the words of the form or flags it came from), then handed to the retriever, which turns it into SQL.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from qa.corpus import parse_date
from qa.errors import FilterError

__all__ = ["LABELS", "FilterError", "Filters"]


#: How each field is named in messages: the web form's labels (the CLI's flags say the same in --help).
LABELS = {"source": "Source", "since": "From date", "until": "To date"}


@dataclass(frozen=True)
class Filters:
    """Articles of ``source`` only, dated from ``since`` to ``until`` (inclusive days, YYYY-MM-DD).

    ``undated``: whether articles without a date are kept when a date range is given (they cannot be placed
    inside or outside it). Kept by default, so that a date filter never hides part of the archive unseen.
    """

    source: str | None = None
    since: str | None = None
    until: str | None = None
    undated: bool = True

    @classmethod
    def parse(cls, source: str | None = None, since: str | dt.date | None = None, until: str | dt.date | None = None,
              undated: bool = True, labels: dict[str, str] = LABELS) -> Filters:
        """Checked filters from raw values; raises :class:`FilterError` naming the field (by ``labels``: the
        front end's names for the fields, e.g. the CLI's flags) and the fix."""
        day_since, day_until = _day(since, labels["since"]), _day(until, labels["until"])
        if day_since and day_until and day_since > day_until:
            raise FilterError(f"{labels['since']} {day_since} is after {labels['until']} {day_until}; "
                              "swap them or clear one")
        source = " ".join(str(source).split()) if source else None
        return cls(source or None, day_since, day_until, bool(undated))

    @property
    def active(self) -> bool:
        return bool(self.source or self.since or self.until)

    @property
    def dated(self) -> bool:
        return bool(self.since or self.until)

    def describe(self) -> str:
        """The filters in words, e.g. "source Harbor Times, from 2024-11-01 to 2024-11-30, undated articles
        left out"."""
        bits = []
        if self.source:
            bits.append(f"source {self.source}")
        if self.since and self.until:
            bits.append(f"from {self.since} to {self.until}")
        elif self.since:
            bits.append(f"from {self.since}")
        elif self.until:
            bits.append(f"up to {self.until}")
        if self.dated:
            bits.append("undated articles included" if self.undated else "undated articles left out")
        return ", ".join(bits) or "no filters"


def _day(value: str | dt.date | None, label: str) -> str | None:
    """A filter's day as YYYY-MM-DD; a value that is no date is an error, never "no filter"."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    day = parse_date(value.strip() if isinstance(value, str) else value)
    if day is None:
        raise FilterError(f"{label} {str(value)[:40]!r} is not a date; use YYYY-MM-DD, e.g. 2024-11-27")
    return day
