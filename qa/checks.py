"""Checks of the values a caller hands in (the web API's ``/ask``, ``/search``, ``/articles``, and the library).

Each wrong type or out-of-range value becomes a :class:`~qa.errors.BadRequest` that names the parameter and
what to give, in the words of the date messages ("From date 'x' is not a date; use YYYY-MM-DD, e.g. ..."), never
a traceback. Text that Python can hold but UTF-8 cannot encode (a lone surrogate, from JSON's ``"\\ud800"``) is
repaired to U+FFFD, as the corpus reader does: the tokenizer would refuse it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

from qa.errors import BadRequest
from qa.metadata import repair

#: The largest list offset asked for: far past any archive, and within SQLite's integers.
MAX_OFFSET = 10**9
_HISTORY_EXAMPLE = '[{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]'


def shown(value: object) -> str:
    """``value`` as a message quotes it: short, and its type when it is not text."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def text(value: object, name: str, example: str, required: bool = False) -> str:
    """``value`` as text (None is empty unless ``required``); anything else is a BadRequest."""
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        what = "missing" if value is None else f"{shown(value)}, not text"
        raise BadRequest(f"{name} is {what}; give a string, e.g. {example!r}")
    return repair(value)


def whole(value: object, name: str, default: int, low: int, high: int) -> int:
    """``value`` as a whole number from ``low`` to ``high`` (None is ``default``); a BadRequest otherwise."""
    if value is None:
        return default
    number = value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value)
    if isinstance(number, numbers.Real) and not isinstance(number, numbers.Integral) and math.isfinite(number) \
            and float(number).is_integer():
        number = int(float(number))  # an integral float: exactly this int
    if isinstance(number, bool) or not isinstance(number, numbers.Integral):
        raise BadRequest(f"{name} {shown(value)} is not a whole number; give one from {low:,} to {high:,}, "
                         f"e.g. {default}")
    whole_number = int(number)
    if not low <= whole_number <= high:
        raise BadRequest(f"{name} {shown(value)} is out of range; give a whole number from {low:,} to {high:,}")
    return whole_number


def history(value: object) -> list[dict]:
    """A chat history: None, or a list of ``{"role", "content"}`` messages (other items: a BadRequest)."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise BadRequest(f"history {shown(value)} is not a list of messages; give {_HISTORY_EXAMPLE}, or leave "
                         "it out")
    for n, item in enumerate(value, 1):
        if not isinstance(item, dict) or item.get("role") not in ("user", "assistant"):
            raise BadRequest(f"history item {n} ({shown(item)}) is not a message; each item must be like "
                             '{"role": "user", "content": "..."} (role "user" or "assistant")')
    return list(value)
