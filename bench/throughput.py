"""Indexing throughput: a fresh sync of the SQuAD paragraphs against plain encoding (the floor) and txtai,
timed in one child process (:func:`bench.process.child`), so its peak memory is its own."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.data import squad_passages
from bench.metrics import timed
from bench.process import child, memory
from qa.config import DEFAULT_MODEL, Settings

#: Times each indexing contender is timed in the throughput run; the fastest run counts.
ROUNDS = 4


def st_encode(embedder, texts: Sequence[str], batch_size: int | None = None):
    """Plain ``SentenceTransformer.encode``, as a user of the library would call it: the floor."""
    return embedder.model.encode(list(texts), batch_size=batch_size or embedder.batch_size,
                                 normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)


# --- Indexing throughput: ours against the floor and txtai, in one child process ------------------------


def index_throughput(paragraphs: int | None = None, peer: bool = True) -> dict:
    """Index SQuAD paragraphs from scratch in a child process; see :func:`index_child`."""
    args = ["--paragraphs", str(paragraphs)] if paragraphs else []
    return child("index", args + ([] if peer else ["--no-peer"]))


def index_child(paragraphs: int | None, peer: bool) -> dict:
    """Time a fresh sync, then each of its parts on their own, then txtai, all in this process.

    The parts: reading the corpus; chunking (sentence splitting and counting tokens); encoding the chunk
    texts with plain ``SentenceTransformer.encode`` (the floor). What is left of the sync's time is its
    sentence vectors, hashing, SQLite, FAISS and BM25. Encoding every sentence on its own is timed too, for
    reference.
    """
    from bench.data import write_squad_corpus
    from qa.chunking import Chunker
    from qa.corpus import read_corpus
    from qa.encoders import load_embedder
    from qa.indexing import sync

    texts = squad_passages()
    if paragraphs:
        texts = dict(list(texts.items())[:paragraphs])
    # The floor is SentenceTransformer.encode, so ours runs torch too (the exported encoders are compared with
    # it in bench.encoders); the default encoder (openvino) has no ``.model`` to call encode on.
    embedder = load_embedder(DEFAULT_MODEL, encoder="torch")
    loaded = memory()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = write_squad_corpus(Path(tmp) / "corpus", texts)
        articles, read_s = timed(lambda: read_corpus(corpus)[0])
        chunker = Chunker(embedder, Settings().chunk_tokens, Settings().overlap, embedder.max_tokens)

        def chunk_all():
            chunk_texts, sentence_texts = [], []
            for article in articles:
                sentences, chunks = chunker.split(article)
                title = chunker.embed_title(article.title)
                chunk_texts += [c.embed_text(title) for c in chunks]
                sentence_texts += [article.text[s.start:s.end] for s in sentences]
            return chunk_texts, sentence_texts

        (chunk_texts, sentence_texts), chunk_s = timed(chunk_all)
        # The first pass over texts of new lengths is about twice as slow (torch sets up kernels per input
        # shape), so every system gets an untimed pass over the same texts first. Then each is timed ROUNDS
        # times, interleaved, starting each round with the next system so none always runs first; medians and
        # the median of the per-round ratios (each measured minutes apart at most) are reported.
        import torch

        threads = torch.get_num_threads()
        st_encode(embedder, chunk_texts)
        txtai = _txtai(peer)
        if txtai is not None:
            txtai.index(list(enumerate(chunk_texts)))
        systems = {"sync": lambda r: sync(corpus, Path(tmp) / f"index-{r}", settings=Settings(encoder="torch"),
                                          embedder=embedder).seconds,
                   "floor": lambda r: timed(lambda: st_encode(embedder, chunk_texts))[1]}
        if txtai is not None:
            systems["txtai"] = lambda r: timed(lambda: _txtai(peer).index(list(enumerate(chunk_texts))))[1]
        runs: dict[str, list[float]] = {name: [] for name in systems}
        names = list(systems)
        for r in range(ROUNDS):
            for name in names[r % len(names):] + names[:r % len(names)]:
                runs[name].append(systems[name](r))
        torch.set_num_threads(1)
        try:
            one_thread = timed(lambda: st_encode(embedder, chunk_texts))[1]
        finally:
            torch.set_num_threads(threads)
        after_sync = memory()
        _, sentence_s = timed(lambda: st_encode(embedder, sentence_texts))
    best = {k: float(np.median(v)) for k, v in runs.items()}
    floor, ours = best["floor"], best["sync"]
    n = len(chunk_texts)
    out = {
        "paragraphs": len(texts), "chunks": n, "sentences": len(sentence_texts), "runs_s": runs, "rounds": ROUNDS,
        "ours": {"seconds": ours, "chunks_per_s": n / ours},
        "floor": {"seconds": floor, "chunks_per_s": n / floor, "torch_threads": threads, "batch_size":
                  embedder.batch_size, "one_thread_seconds": one_thread},
        "overhead_ratio": _paired(runs["sync"], runs["floor"]),
        "breakdown_s": {"read corpus": read_s, "chunking (sentences, token counts)": chunk_s,
                        "encode chunk texts (the floor)": floor,
                        "sync minus the above (sentence vectors, hashing, SQLite, FAISS, BM25)":
                            ours - read_s - chunk_s - floor,
                        "for reference: encoding every sentence on its own": sentence_s},
        "memory_mib": {"model_loaded": loaded["rss_mib"], "peak_after_sync": after_sync["peak_rss_mib"]},
    }
    if "txtai" in best:
        out["txtai"] = {"seconds": best["txtai"], "chunks_per_s": n / best["txtai"], "version": txtai.version,
                        "faiss": txtai.faiss, "vs_floor": _paired(runs["txtai"], runs["floor"]),
                        "ours_vs_txtai": _paired(runs["sync"], runs["txtai"]), "batch_size": 32}
    elif peer:
        out["txtai"] = {"error": "txtai is not installed; run `pip install -e '.[bench]'`"}
    return out


def _paired(a: list[float], b: list[float]) -> float:
    """The median over rounds of a's time over b's time in the same round."""
    return float(np.median([x / y for x, y in zip(a, b, strict=True)]))


def _txtai(peer: bool):
    """A fresh txtai index, or None when left out or not installed."""
    if not peer:
        return None
    from bench.peer import PeerUnavailable, TxtaiIndex

    try:
        return TxtaiIndex()
    except PeerUnavailable:
        return None

