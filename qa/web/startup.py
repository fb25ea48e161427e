"""What happens once when the app starts: the index synced with the corpus folder and opened, uploads that a
crash left half done put right (:func:`start`)."""

from __future__ import annotations

from collections.abc import Callable

from qa.assistant import Assistant, assemble
from qa.config import Settings
from qa.errors import DiskFull, IndexReadOnly, IndexUnusable
from qa.indexing import CorpusNotFound, MassRemoval, sync
from qa.web.archive import recover
from qa.web.state import AppState, log


def open_assistant(settings: Settings, embedder=None, log: Callable[[str], None] | None = None) -> Assistant:
    """Bring the index in line with the corpus (a no-op when nothing changed) and open it."""
    say = log or _log

    def opened() -> Assistant:
        return assemble(settings, embedder=embedder)

    try:
        report = sync(settings=settings, embedder=embedder)
        say(f"{settings.index}/ synced with {settings.corpus}/: {report.summary()}")
    except (CorpusNotFound, MassRemoval, DiskFull, IndexReadOnly) as exc:
        try:
            assistant = opened()
        except IndexUnusable:
            raise exc from None
        # The index itself is fine: serve it as it is rather than not start (the log says why it is not synced).
        say(f"{settings.index}/ NOT synced with {settings.corpus}/: {exc}; serving the index as it is")
        return assistant
    return opened()


def start(settings: Settings, embedder=None, assistant: Assistant | None = None) -> AppState:
    """The app's state: ``assistant``, or one opened over the synced index; the corpus folder recovered from an
    interrupted upload or delete (each thing put right is logged)."""
    state = AppState(settings, assistant or open_assistant(settings, embedder))
    for words in recover(settings.corpus):
        state.log(f"corpus folder: {words}")
    return state


def _log(message: str) -> None:
    log(message)
