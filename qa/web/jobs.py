"""Long archive actions run beside the page: a sync with progress in plain words, and deleting an article file.

A sync runs in a worker thread while the page's handler reads the progress bars ``qa.indexing`` draws with
tqdm (``progress=True``) and says what they mean: "Reading 3 files", "Splitting 300 articles into passages",
"Embedding 899 passages (about 40 s left)". The bars are only read, never changed; the log shows them as before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from tqdm import tqdm

from qa.config import Settings
from qa.files import put_back, set_aside
from qa.indexing import SyncReport, sync

T = TypeVar("T")
#: Seconds between two looks at the progress bars: often enough to see them move, rarely enough to cost nothing.
POLL_S = 0.5


def progress_words(start: str) -> str:
    """What the sync running now is doing, from its progress bars; ``start`` until a bar appears."""
    with tqdm.get_lock():
        bars = [b for b in list(getattr(tqdm, "_instances", ())) if not b.disable]
    for bar in sorted(bars, key=lambda b: b.start_t, reverse=True):  # the step begun last is the current one
        desc, n, total = (bar.desc or "").rstrip(": "), bar.n, bar.total or 0
        if desc == "reading":
            return f"Reading files ({n / 2**20:,.1f} of {total / 2**20:,.1f} MB)"
        if desc == "chunking":
            return f"Splitting {total:,} articles into passages ({n:,} done)"
        if desc == "embedding":
            elapsed = time.time() - bar.start_t
            left = (total - n) * elapsed / n if n else None
            about = f" (about {_duration(left)} left)" if left is not None else ""
            return f"Embedding {total:,} passages{about}: {n:,} done"
    return start


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def watch(work: Callable[[], T], start: str) -> Iterator[tuple[str | None, T | None]]:
    """Run ``work`` in a thread; yield ``(words, None)`` while it runs (when the words change), then
    ``(None, result)``. Its exception is raised here."""
    box: dict = {}

    def run() -> None:
        try:
            box["result"] = work()
        except BaseException as exc:  # handed to the page's thread below
            box["error"] = exc

    thread = threading.Thread(target=run, name="qa-web-sync", daemon=True)
    thread.start()
    said = None
    while thread.is_alive():
        words = progress_words(start)
        if words != said:
            said = words
            yield words, None
        thread.join(POLL_S)
    if "error" in box:
        raise box["error"]
    yield None, box["result"]


def delete_file(settings: Settings, embedder, name: str) -> SyncReport:
    """Take the corpus file ``name`` out of the corpus folder and its articles out of the index, as one step.

    The file is renamed aside (hidden, in the same folder: one step that needs no space), the index synced,
    and only then is the file deleted; when the sync fails the file is renamed back, whole, so nothing is lost.
    Raises FileNotFoundError for a name that is no corpus file.
    """
    corpus = settings.corpus.resolve()
    path = (settings.corpus / name).resolve()
    if corpus not in path.parents or not path.is_file():
        raise FileNotFoundError(f"{name} is not a file in the corpus folder; sync with the folder to refresh "
                                "the list")
    aside = set_aside(path)
    try:
        # The user chose this file: removing all of a large archive's articles with it is what was asked.
        report = sync(settings=settings, embedder=embedder, allow_mass_removal=True)
    except BaseException:
        put_back(aside, path)
        raise
    aside.unlink(missing_ok=True)
    return report
