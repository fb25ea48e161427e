"""Progress bars on stderr: tqdm's in a terminal; in a log (stderr not a terminal), one plain line every
:data:`PLAIN_EVERY` seconds instead of carriage-return frames ("embedding 12,800 of 69,349 chunks, 14 min left").

Either way the bar is a tqdm instance, so :func:`qa.web.jobs.progress_words` reads how far a sync in the web app
has got the same way.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

#: Seconds between two plain progress lines.
PLAIN_EVERY = 5.0


class PlainBar(tqdm):
    """A tqdm bar that writes a plain line at most every :data:`PLAIN_EVERY` seconds, and one when it ends."""

    def display(self, msg=None, pos=None):
        now = time.monotonic()
        if not hasattr(self, "_started"):
            self._started = now
        ended = msg == "" or (self.total and self.n >= self.total)
        if not ended and now - getattr(self, "_said_at", -PLAIN_EVERY) < PLAIN_EVERY:
            return False
        if ended and getattr(self, "_ended", False):
            return False
        self._said_at, self._ended = now, bool(ended)
        self.fp.write(plain_line(self, now - self._started) + "\n")
        self.fp.flush()
        return False


def plain_line(bar: tqdm, elapsed: float) -> str:
    """ "embedding 12,800 of 69,349 chunks, 14 min left"; "reading 8.0 of 120.3 MB"; "... done in 3 min"."""
    desc = (bar.desc or "").rstrip(": ") or "working"
    n, total = bar.n, bar.total or 0
    if bar.unit == "B":
        line = f"{desc} {n / 2**20:,.1f} of {total / 2**20:,.1f} MB"
    else:
        line = f"{desc} {n:,} of {total:,} {bar.unit}{'s' * (total != 1)}"
    if total and n >= total:
        return f"{line}, done in {_duration(elapsed)}"
    if n and elapsed > 1:
        return f"{line}, {_duration((total - n) * elapsed / n)} left"
    return line


def bar(total: int, desc: str, **options) -> tqdm:
    """A progress bar on stderr: tqdm's in a terminal, :class:`PlainBar` in a log."""
    kind = tqdm if sys.stderr.isatty() else PlainBar
    if kind is PlainBar:
        options["leave"] = False  # its last line says it has ended; no frame to leave
    return kind(total=total, desc=desc, file=sys.stderr, **options)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
