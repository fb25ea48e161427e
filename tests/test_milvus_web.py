"""The web chat's browser tests on the Milvus backend: the same test functions as tests/test_web.py, with the app
serving a Milvus Lite index copied from the bundled corpus's index by ``qa migrate`` (nothing re-embedded)."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

pytest.importorskip("pymilvus")

from conftest import CORPUS  # noqa: E402
from test_web import (  # noqa: E402, F401 - the fixtures and tests run here against Milvus
    browser,
    free_port,
    page,
    test_ask_answers_with_linked_cited_sources,
    test_uploaded_article_is_indexed_and_cited,
)

from qa.config import MilvusSettings, Settings  # noqa: E402
from qa.migrate import migrate  # noqa: E402
from qa.web import create_app, launch  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory, embedder, seed_index):
    root = tmp_path_factory.mktemp("web-milvus")
    shutil.copytree(CORPUS, root / "corpus")
    shutil.copytree(seed_index, root / "local")
    local = Settings(corpus=root / "corpus", index=root / "local", milvus=MilvusSettings(uri=str(root / "milvus.db")))
    migrate(local, "milvus")
    settings = replace(local, backend="milvus", index=root / "index")
    app = create_app(settings, embedder)
    url = launch(app, port=free_port(), prevent_thread_lock=True, quiet=True)
    yield url, settings
    app.close()
