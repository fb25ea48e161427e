"""The index behind one seam (:mod:`qa.store.protocol`), and the one place a backend is chosen by name.

    store = open_store(settings)                  # a Store (Searcher + Catalogue), following later commits
    store = open_store(settings, writable=True)   # a WritableStore (Store + Writer), for `qa index`

``Settings.backend`` (``QA_BACKEND``) names the backend: a key of :data:`BACKENDS`, whose value opens it
as ``factory(settings, writable)``. A backend's own modules import their engines (FAISS, tantivy, SQLite...);
nothing above this package does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Literal, overload

from qa.config import Settings
from qa.errors import ConfigError, DiskFull, IndexReadOnly, IndexUnusable  # noqa: F401 - where they were
from qa.store.protocol import (  # noqa: F401 - the seam's types, importable from qa.store
    ArticleWrite,
    Catalogue,
    Commit,
    CompactReport,
    Hit,
    Manifest,
    Passage,
    Searcher,
    Sentence,
    Status,
    Store,
    WritableStore,
    Writer,
)


def _local(settings: Settings, writable: bool) -> WritableStore:
    from qa.store.local import LocalStore

    return LocalStore(settings.index, writable=writable, exact_limit=settings.exact_limit)


def _milvus(settings: Settings, writable: bool) -> WritableStore:
    from qa.store.milvus import MilvusStore  # needs the [milvus] extra, imported only when chosen

    return MilvusStore.from_settings(settings)


#: Backend name -> opener. Another backend adds one entry (and its optional extra in pyproject.toml).
BACKENDS: dict[str, Callable[[Settings, bool], WritableStore]] = {"local": _local, "milvus": _milvus}


@overload
def open_store(settings: Settings | None = None, writable: Literal[False] = False,
               path: str | Path | None = None) -> Store: ...
@overload
def open_store(settings: Settings | None, writable: Literal[True], path: str | Path | None = None
               ) -> WritableStore: ...
@overload
def open_store(settings: Settings | None = None, *, writable: Literal[True], path: str | Path | None = None
               ) -> WritableStore: ...
def open_store(settings: Settings | None = None, writable: bool = False,
               path: str | Path | None = None) -> Store | WritableStore:
    """The index ``settings`` name (``settings.index``, or ``path``), through the backend ``settings.backend``."""
    settings = settings or Settings()
    if path is not None:
        settings = replace(settings, index=Path(path))
    opener = BACKENDS.get(settings.backend)
    if opener is None:
        raise ConfigError(f"QA_BACKEND={settings.backend!r} is not a backend; use one of {', '.join(BACKENDS)}")
    return opener(settings, writable)
