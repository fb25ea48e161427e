"""Time words in a question: "this week", "yesterday", "in early December 2024" become a period of days.

News questions are about a time, relative to the day they are asked (``as_of``). :func:`period` reads the words
that place a question in time and returns the days they mean, or None when the question has none (it is then
asked exactly as before). The assistant never uses an article dated after ``as_of``; the period itself is a
*preference*, not a filter: on the real-news dev set only a third of the "this week" questions have an article
holding the answer inside that week (the rest were answered by older reports of the same story), so a hard
window would refuse most of them (BENCHMARKS.md, "Time words").
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

from qa.errors import FilterError

__all__ = ["Period", "as_of_day", "period"]


@dataclass(frozen=True)
class Period:
    """Days ``since`` to ``until`` (inclusive, YYYY-MM-DD) that ``words`` of the question point to."""

    since: str
    until: str
    words: str

    def holds(self, date: str | None) -> bool:
        """Whether an article dated ``date`` (YYYY-MM-DD..., or None) falls inside the period."""
        return bool(date) and self.since <= date[:10] <= self.until  # type: ignore[index]

    def describe(self) -> str:
        """ "2026-01-05 to 2026-01-12, from the question ('this week')" """
        days = self.since if self.since == self.until else f"{self.since} to {self.until}"
        return f"{days}, from the question ({self.words!r})"


def article_day(value: str | None) -> dt.date | None:
    """An article's date (YYYY-MM-DD..., as the store keeps it) as a day; None when it has none or it is no date."""
    try:
        return dt.date.fromisoformat(value[:10]) if value else None
    except ValueError:
        return None


def as_of_day(value: str | dt.date | None, today: dt.date | None = None) -> dt.date:
    """The day a question is asked: ``value`` (a date or YYYY-MM-DD), else today. A bad value raises
    :class:`FilterError` naming the fix."""
    if value is None or value == "":
        return today or dt.date.today()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise FilterError(f"as-of date {str(value)[:40]!r} is not a date; use YYYY-MM-DD, e.g. 2024-11-27") from None


_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS |= {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
_WEEKDAYS = {name.lower(): i for i, name in enumerate(calendar.day_name)}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_PART = (r"(?:(?P<part>early|mid|middle of|late|the end of|end of|the start of|start of|the beginning of|"
         r"beginning of)[\s-]+)?")
_IN_MONTH = re.compile(rf"\b(?:in|during|since|of)\s+{_PART}(?P<month>{_MONTH})\.?(?:\s+(?P<year>(?:19|20)\d\d))?\b",
                       re.IGNORECASE)
_WEEKDAY = re.compile(r"\b(?:on|last|this past)\s+(?P<day>monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b",
                      re.IGNORECASE)
_RELATIVE = [  # (pattern, days back from as_of to the period's start, days back to its end)
    (re.compile(r"\btoday\b|\bthis morning\b|\btonight\b", re.IGNORECASE), 0, 0),
    (re.compile(r"\byesterday\b", re.IGNORECASE), 1, 1),
    (re.compile(r"\b(?:this|the past|the last|past)\s+(?:week|seven days|few days|several days)\b|\bthis weekend\b|"
                r"\bearlier this week\b|\blast weekend\b|\bover the weekend\b", re.IGNORECASE), 7, 0),
    (re.compile(r"\blast week\b", re.IGNORECASE), 14, 7),
    (re.compile(r"\b(?:this|the past|the last|past)\s+(?:month|30 days|few weeks|several weeks)\b|\brecent(?:ly)?\b|"
                r"\blately\b|\blatest\b", re.IGNORECASE), 31, 0),
]
_THIS_YEAR = re.compile(r"\b(?:this|so far this)\s+year\b|\bearlier this year\b", re.IGNORECASE)
_LAST_MONTH = re.compile(r"\blast month\b", re.IGNORECASE)


def period(question: str, as_of: dt.date) -> Period | None:
    """The days ``question``'s time words point to, relative to ``as_of``; None when it has none."""
    month = next((m for m in _IN_MONTH.finditer(question) if m["month"][0].isupper()), None)  # not "in may be"
    if month:
        return _month(month, as_of)
    if m := _WEEKDAY.search(question):
        back = (as_of.weekday() - _WEEKDAYS[m["day"].lower()]) % 7
        day = as_of - dt.timedelta(days=back)
        # A weekday is the last one before as_of; reports of it often come out the day after.
        return Period(day.isoformat(), min(as_of, day + dt.timedelta(days=1)).isoformat(), m[0])
    for pattern, start, end in _RELATIVE:
        if m := pattern.search(question):
            return Period((as_of - dt.timedelta(days=start)).isoformat(),
                          (as_of - dt.timedelta(days=end)).isoformat(), m[0])
    if m := _LAST_MONTH.search(question):
        last = as_of.replace(day=1) - dt.timedelta(days=1)
        return Period(last.replace(day=1).isoformat(), last.isoformat(), m[0])
    if m := _THIS_YEAR.search(question):
        return Period(as_of.replace(month=1, day=1).isoformat(), as_of.isoformat(), m[0])
    return None


def _month(m: re.Match, as_of: dt.date) -> Period:
    """ "in early December 2024": days 1-10 of it; "in December": the last December up to as_of."""
    month = _MONTHS[m["month"].lower().rstrip(".")]
    year = int(m["year"]) if m["year"] else (as_of.year if month <= as_of.month else as_of.year - 1)
    last = calendar.monthrange(year, month)[1]
    first_day, last_day = 1, last
    part = (m["part"] or "").lower()
    if "early" in part or "start" in part or "beginning" in part:
        last_day = 10
    elif "mid" in part:
        first_day, last_day = 11, 20
    elif "late" in part or "end" in part:
        first_day = 21
    since, until = dt.date(year, month, first_day), dt.date(year, month, last_day)
    return Period(since.isoformat(), (min(until, as_of) if since <= as_of else until).isoformat(), m[0].strip())
