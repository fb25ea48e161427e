"""What the page's handlers share: the app's state, and :func:`bind`, which hands it to a handler.

Handlers are plain module functions whose first parameter is the :class:`AppState`
(:mod:`qa.web.handlers` for the chat, :mod:`qa.web.archive_tab` for the Articles tab, :mod:`qa.web.api` for the
HTTP API); :func:`bind` makes of one the callable Gradio wires to an event, with the signature Gradio reads
(inputs by position, ``gr.EventData`` by type) and streaming kept for generators.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from qa.assistant import Assistant
from qa.config import Settings
from qa.retriever import Retriever


def log(message: str) -> None:
    print(f"qa web: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class AppState:
    """One app's shared state: its settings, the Assistant every session asks, and where it logs."""

    settings: Settings
    assistant: Assistant
    log: Callable[[str], None] = field(default=log)

    @property
    def retriever(self) -> Retriever:
        return self.assistant.retriever


def bind(fn: Callable, state: AppState) -> Callable:
    """``fn`` with ``state`` as its first argument, as Gradio needs it: its other parameters and their type
    hints visible, a generator still a generator function (Gradio streams only those), its name kept."""
    if inspect.isgeneratorfunction(fn):
        def bound(*args, **kwargs):
            return (yield from fn(state, *args, **kwargs))
    else:
        def bound(*args, **kwargs):
            return fn(state, *args, **kwargs)
    functools.update_wrapper(bound, fn)
    signature = inspect.signature(fn)
    cast(Any, bound).__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])
    return bound
