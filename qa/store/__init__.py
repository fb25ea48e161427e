"""The index behind one seam (:mod:`qa.store.protocol`), and the one place a backend is chosen by name.

    store = open_store(settings)                  # a Store for reading, following later commits
    store = open_store(settings, writable=True)   # a WritableStore, for `qa index`

``Settings.backend`` (``QA_BACKEND``) names the backend: a key of :data:`BACKENDS`.
"""

from __future__ import annotations

from qa.store._old import *  # noqa: F403 - transitional: the old module's names, until the split is done
from qa.store._old import DB_NAME, FORMAT_VERSION, Bm25, connect, damaged, read_manifest  # noqa: F401
from qa.store.protocol import (  # noqa: F401 - the seam's types (protocol.Manifest replaces the old one soon)
    ArticleWrite,
    Commit,
    CompactReport,
    Hit,
    Passage,
    Sentence,
    Status,
    Store,
    WritableStore,
)
