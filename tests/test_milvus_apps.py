"""Several app processes on one Milvus server, and ``qa migrate`` between the backends.

The apps are real ``python app.py`` processes (each loads the bundled model and syncs its corpus folder into
Milvus at start), asked through the /ask API as the README shows; the server is Milvus Lite's, on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("pymilvus")

from conftest import CORPUS, ROOT, write  # noqa: E402
from milvus_servers import free_port, lite_server  # noqa: E402, F401 - session fixture

from qa.config import MilvusSettings, Settings  # noqa: E402
from qa.migrate import migrate  # noqa: E402
from qa.retriever import Retriever  # noqa: E402

NEW_ARTICLE = """---
title: Harbor ferry moves to a dawn timetable
date: 2024-12-02
source: Harbor Times
---
The harbor ferry will leave the east pier at 5:40 every morning from Monday, the port authority said.
The earlier departure replaces the 7:15 crossing, which carried fewer than forty passengers a day.
"""


def start_app(tmp: Path, name: str, corpus: Path, uri: str, prefix: str):
    port = free_port()
    env = {**os.environ, "QA_BACKEND": "milvus", "QA_MILVUS_URI": uri, "QA_MILVUS_PREFIX": prefix,
           "QA_CORPUS": str(corpus), "QA_INDEX": str(tmp / f"index-{name}"), "QA_PORT": str(port),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    log = open(tmp / f"{name}.log", "wb")
    process = subprocess.Popen([sys.executable, str(ROOT / "app.py")], env=env, cwd=tmp, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    return process, f"http://127.0.0.1:{port}", tmp / f"{name}.log"


def client_of(process, url: str, log: Path, seconds: float = 240):
    from gradio_client import Client

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"app exited with {process.returncode}: {log.read_text()[-3000:]}")
        try:
            return Client(url, verbose=False)
        except Exception:  # noqa: BLE001 - not listening yet
            time.sleep(0.25)
    raise AssertionError(f"app at {url} did not start in {seconds:.0f} s: {log.read_text()[-3000:]}")


@pytest.mark.slow
def test_two_apps_on_one_milvus_answer_alike_and_see_each_others_articles(tmp_path, lite_server):  # noqa: F811
    """App B serves the bundled corpus; app A starts later with one more article in its corpus, which it syncs
    into Milvus at start. Both give the same answer, and B, never restarted, cites A's new article."""
    corpus_b = tmp_path / "corpus-b"
    shutil.copytree(CORPUS, corpus_b)
    corpus_a = tmp_path / "corpus-a"
    shutil.copytree(CORPUS, corpus_a)
    write(corpus_a, "harbor-ferry.md", NEW_ARTICLE)
    apps = []
    try:
        apps.append(start_app(tmp_path, "b", corpus_b, lite_server.uri, "apps"))
        b = client_of(*apps[-1])
        before = b.predict("When does the harbor ferry leave the east pier?", api_name="/ask")
        assert not any(c["article_id"] == "harbor-ferry.md" for c in before["citations"])
        apps.append(start_app(tmp_path, "a", corpus_a, lite_server.uri, "apps"))
        a = client_of(*apps[-1])
        question = "What ammunition was discussed?"
        one, two = a.predict(question, api_name="/ask"), b.predict(question, api_name="/ask")
        assert not one["abstained"] and one["text"] == two["text"]
        assert [c["snippet"] for c in one["citations"]] == [c["snippet"] for c in two["citations"]]
        ferry = b.predict("When does the harbor ferry leave the east pier?", api_name="/ask")
        assert not ferry["abstained"] and "5:40" in ferry["text"]
        assert any(c["article_id"] == "harbor-ferry.md" for c in ferry["citations"])
    finally:
        for process, _, _ in apps:
            process.terminate()
            process.wait(30)


def test_migrate_copies_an_index_both_ways_without_re_embedding(tmp_path, seed_index, embedder):
    source = tmp_path / "local"
    shutil.copytree(seed_index, source)
    # QA_MILVUS_URI: where to copy to
    local = Settings(index=source, milvus=MilvusSettings(uri=str(tmp_path / "milvus.db")))
    milvus = replace(local, backend="milvus")
    report = migrate(local, "milvus")
    assert report.articles == 2 and report.chunks > 2
    back = replace(milvus, index=tmp_path / "back")
    assert migrate(back, "local").chunks == report.chunks
    question = "What ammunition was discussed?"
    results = []
    for settings in (local, milvus, replace(local, index=tmp_path / "back")):
        retriever = Retriever(settings=settings, embedder=embedder)
        results.append(retriever.search(question, k=5, mode="dense"))
        retriever.close()
    keys = [[(p.article_id, p.start, p.end, p.text) for p in found] for found in results]
    assert keys[0] == keys[1] == keys[2]
    for a, b in zip(results[0], results[1], strict=True):
        assert abs(a.score - b.score) < 1e-5  # the same stored vectors, not new ones
    with pytest.raises(Exception, match="already holds"):
        migrate(local, "milvus")  # never over an index that holds articles
