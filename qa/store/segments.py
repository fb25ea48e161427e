"""The local index's chunk vectors: immutable FAISS files ("segments"), one per commit that adds vectors.

A commit writes only its own vectors, as a new segment; a deleted chunk's vector stays in its segment, listed
as dead in the database and skipped by every search, until its segment is rewritten. Segments are merged as
they pile up (:func:`plan`): a run of the newest ones is merged once it holds as many live vectors as the
segment before it (a binary counter: each vector is rewritten about log2(n) times over its life, and a sync
that adds one article to 1M chunks rewrites a few small segments, not the 1M), and a segment whose vectors
are mostly dead is rewritten without them. ``qa index --compact`` merges everything into one.

Chunk ids grow with each commit, so every segment holds one range of ids (``low``..``high``), and merging
neighbours keeps it so: the segment of a dead id is found from the ranges alone.

Each segment follows the exact/IVF policy of :mod:`qa.store.faiss_index` for its own size: exact search up to
``exact_limit`` vectors, IVF above (so an archive past the limit has one large IVF segment and small exact
ones beside it; searching several exact segments costs what one of their total size does).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from qa.config import cpu_threads
from qa.errors import IndexUnusable
from qa.files import fsync_file
from qa.store.faiss_index import all_vectors, fit_vector_index, is_approximate, new_vector_index, vector_ids

#: On an approximate (IVF) segment, a source/date filter that keeps at most this many of its chunks is searched
#: exactly (reconstructing 10,000 vectors takes about 9 ms).
EXACT_FILTERED = 10_000
#: Threads for one IVF search (:func:`_threads_for`): the cores this process may use.
IVF_THREADS = cpu_threads()
#: A segment is rewritten without its dead vectors once this share of it is dead.
DEAD_SHARE = 0.5


@dataclass(frozen=True)
class SegmentInfo:
    """A segment as the database lists it."""

    name: str
    low: int  # smallest and largest chunk id it may hold
    high: int
    size: int  # vectors in the file, dead ones included
    dead: int = 0

    @property
    def live(self) -> int:
        return self.size - self.dead


def plan(segments: Sequence[SegmentInfo]) -> list[list[int]]:
    """Groups of consecutive segment positions to merge (each into one), and single segments to rewrite
    without their dead vectors; the rest stay as they are."""
    groups: list[list[int]] = []
    run: list[int] = []
    total = 0
    for i in range(len(segments) - 1, -1, -1):  # newest first
        s = segments[i]
        if run and s.live > total:
            break
        run.insert(0, i)
        total += s.live
    if len(run) > 1:
        groups.append(run)
    merged = set(run) if len(run) > 1 else set()
    groups += [[i] for i, s in enumerate(segments) if i not in merged and s.dead and s.dead >= DEAD_SHARE * s.size]
    return sorted(groups)


def write(folder: Path, name: str, index: faiss.Index) -> None:
    """Write a segment file durably (it is listed by the commit that follows)."""
    final = folder / name
    tmp = final.with_name(final.name + ".tmp")
    faiss.write_index(index, str(tmp))
    fsync_file(tmp)
    os.replace(tmp, final)


def read(folder: Path, name: str, dimension: int) -> faiss.Index:
    file = folder / name
    try:
        index = faiss.read_index(str(file))
    except Exception:  # FAISS raises RuntimeError with C++ text for missing or damaged files
        raise IndexUnusable(f"the vector file {file} is missing or damaged; run `qa index --rebuild`") from None
    if index.d != dimension:
        raise IndexUnusable(f"the vector file {file} has dimension {index.d}, the manifest says {dimension}; "
                            "run `qa index --rebuild`")
    return index


def build(vectors: np.ndarray, ids: Sequence[int], exact_limit: int) -> faiss.Index:
    index = new_vector_index(vectors.shape[1])
    index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
    return fit_vector_index(index, exact_limit)


def merge(indexes: Sequence[faiss.Index], dead: np.ndarray, exact_limit: int) -> faiss.Index:
    """One index of the live vectors of ``indexes`` (the first, the largest, is extended rather than copied)."""
    base = indexes[0]
    if len(dead):
        base.remove_ids(np.asarray(dead, dtype=np.int64))  # an array: what an IVF index with a hash table takes
    for other in indexes[1:]:
        ids = vector_ids(other)
        keep = ~np.isin(ids, dead)
        if keep.any():
            base.add_with_ids(all_vectors(other)[keep], ids[keep])
    return fit_vector_index(base, exact_limit)


class Loaded:
    """A segment in memory: its FAISS index and its ids, sorted."""

    def __init__(self, info: SegmentInfo, index: faiss.Index):
        self.info = info
        self.index = index
        self.ids = np.sort(vector_ids(index))

    def holds(self, ids: np.ndarray) -> np.ndarray:
        at = np.searchsorted(self.ids, ids)
        at[at >= len(self.ids)] = 0
        return self.ids[at] == ids if len(self.ids) else np.zeros(len(ids), bool)


def _threads_for(index: faiss.Index) -> None:
    """FAISS's threads for one search, set for the calling thread (OpenMP keeps the setting per thread: set once in
    the thread that opened the store, it never reached the web app's worker threads). An IVF search splits its probed
    lists over the cores (parallel_mode 1): at 1M chunks one search took 11.1 ms against 21.1 on one thread, and two
    or four searches at once were no slower (22.4 and 23.0 ms; 44.0 and 41.8; BENCHMARKS.md, "IVF on both cores").
    An exact search stays on one thread: a thread pool for one query lost badly on a busy machine (12 against 40 ms).
    """
    if is_approximate(index):
        index.parallel_mode = 1
        faiss.omp_set_num_threads(IVF_THREADS)
    else:
        faiss.omp_set_num_threads(1)


def search(segments: Sequence[Loaded], vector: np.ndarray, k: int, dead: np.ndarray,
           allowed: np.ndarray | None) -> list[tuple[int, float]]:
    """(chunk id, cosine) of the ``k`` best live vectors over all segments (only ``allowed`` ids if given)."""
    found: list[tuple[int, float]] = []
    query = vector.reshape(1, -1).astype(np.float32)
    for seg in segments:
        index = seg.index
        if index.ntotal == 0:
            continue
        params = None
        if allowed is not None:
            mine = allowed[seg.holds(allowed)]
            if not len(mine):
                continue
            if is_approximate(index) and len(mine) <= EXACT_FILTERED:
                # The probed lists may hold few of a small filter's chunks: score those chunks exactly instead.
                scores = index.reconstruct_batch(mine) @ vector
                best = np.argsort(-scores)[:k]
                found += [(int(mine[i]), float(scores[i])) for i in best]
                continue
            selector = faiss.IDSelectorBatch(mine)
            if is_approximate(index):
                # Probe more lists the smaller the share of chunks the filter keeps, to find k of them.
                nprobe = min(index.nlist, index.nprobe * -(-index.ntotal // len(mine)))
                params = faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)
            else:
                params = faiss.SearchParameters(sel=selector)
        else:
            mine = dead[(dead >= seg.info.low) & (dead <= seg.info.high)]
            if len(mine):
                selector = faiss.IDSelectorNot(faiss.IDSelectorBatch(mine))
                params = (faiss.SearchParametersIVF(sel=selector, nprobe=index.nprobe) if is_approximate(index)
                          else faiss.SearchParameters(sel=selector))
        _threads_for(index)
        scores, ids = index.search(query, min(k, index.ntotal), params=params)
        found += [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
    found.sort(key=lambda pair: -pair[1])
    return found[:k]


def reconstruct(segments: Sequence[Loaded], ids: Sequence[int], dimension: int) -> np.ndarray:
    """The stored vector of each id (zeros for an id no segment holds)."""
    out = np.zeros((len(ids), dimension), dtype=np.float32)
    wanted = np.asarray(ids, dtype=np.int64)
    todo = np.ones(len(wanted), bool)
    for seg in segments:
        if not todo.any():
            break
        here = todo & seg.holds(wanted)
        if here.any():
            out[here] = seg.index.reconstruct_batch(wanted[here])
            todo &= ~here
    return out
