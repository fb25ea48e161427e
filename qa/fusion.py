"""Hybrid ranking: dense and lexical hits, their scores combined (as txtai's hybrid scoring does).

Cosine similarity is already on a fixed scale; a BM25 score is divided by the query's best BM25 score. A chunk
found by one side only gets its exact cosine (from its stored vector) or a BM25 of 0. Then the best of them are
scored again with their best sentence's cosine beside the chunk's (:meth:`Fusion.by_sentences`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from qa.store.protocol import Hit

#: Weight of BM25 (normalized by the query's best BM25 score) beside cosine similarity in hybrid mode.
#: 0.3: MRR@10 0.955 on the SQuAD sample with unstemmed BM25 (txtai 0.954; reciprocal rank fusion 0.927). 0.4
#: scores 0.956 there, but lets a chunk that shares one rare word with the query and nothing else rank first
#: for the bundled corpus's "What ammunition was discussed?".
BM25_WEIGHT = 0.3
#: Of the cosine's share of a hybrid score, this much moves from the chunk's vector to its best sentence's: a
#: chunk of long news holds a few sentences, and the one that answers is diluted in the chunk's mean. Fitted on
#: real-news dev and 2023 together (633 questions; the top passages' MRR@10 0.454 -> 0.466 at 0.4 of the score,
#: 0.465-0.466 anywhere from 0.3 to 0.6; BENCHMARKS.md, "The best sentence beside the chunk").
SENTENCE_WEIGHT = 0.4
#: ... among this many of the fused hits (the gain is the same from 20 on).
SENTENCE_DEPTH = 30


@dataclass(frozen=True)
class Fusion:
    """``(1 - weight) * cosine + weight * bm25 / best bm25``, best first; then ``sentence`` of it moves from the
    chunk's cosine to its best sentence's (:meth:`by_sentences`)."""

    weight: float = BM25_WEIGHT
    sentence: float = SENTENCE_WEIGHT

    def __call__(self, dense: Sequence[Hit], lexical: Sequence[Hit], cosines: Callable[[list[int]], np.ndarray],
                 best_sentences: Callable[[list[int]], np.ndarray] | None = None,
                 depth: int = SENTENCE_DEPTH) -> list[Hit]:
        """``cosines(ids)``: the cosine of the query to the stored vectors of chunks only lexical search found.
        ``best_sentences(ids)``: the cosine of each chunk's best sentence (NaN for a chunk without sentence vectors);
        given, the first ``depth`` hits are scored again with it (:meth:`by_sentences`)."""
        cosine = {h.chunk_id: h.score for h in dense}
        scores = dict(cosine)
        if lexical:
            missing = [h.chunk_id for h in lexical if h.chunk_id not in cosine]
            if missing:
                cosine.update(zip(missing, (float(c) for c in cosines(missing)), strict=True))
            bm25 = {h.chunk_id: h.score for h in lexical}
            top = max(bm25.values())
            scores = {i: (1 - self.weight) * c + self.weight * bm25.get(i, 0.0) / top for i, c in cosine.items()}
        ranked = [Hit(i, s) for i, s in sorted(scores.items(), key=lambda pair: -pair[1])]
        if best_sentences is None or not self.sentence or not ranked:
            return ranked
        ids = [h.chunk_id for h in ranked[:depth]]
        return self.by_sentences(ranked[:depth], np.array([cosine[i] for i in ids]), best_sentences(ids)) + \
            ranked[depth:]

    def by_sentences(self, hits: Sequence[Hit], chunk: np.ndarray, best: np.ndarray) -> list[Hit]:
        """``hits`` scored again, best first: ``chunk`` is each one's chunk cosine, ``best`` its best sentence's (NaN
        where it has no sentence vectors: it keeps its score); ``sentence`` of the score moves from the one to the
        other."""
        best = np.where(np.isnan(best), chunk, best)
        moved = [Hit(h.chunk_id, h.score + self.sentence * (float(b) - float(c)))
                 for h, c, b in zip(hits, chunk, best, strict=True)]
        return sorted(moved, key=lambda h: -h.score)
