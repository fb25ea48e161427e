"""FAISS indexes of chunk vectors: exact search (IndexFlatIP) up to a limit, approximate (IVF) above.

Used by :mod:`qa.store.segments`, each segment for its own size. An IVF index keeps its vectors in 16-bit floats
(:func:`new_ivf`); one written before that (IndexIVFFlat, 32-bit) is read and searched as it is, and the first merge
into it rewrites it in 16-bit floats, in the same lists (:func:`_in_16_bits`: no k-means, no vector moves list).
"""

from __future__ import annotations

import faiss
import numpy as np

from qa.config import Settings, cpu_threads


def new_vector_index(dimension: int) -> faiss.Index:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


#: IVF lists probed per query, as a fraction of all lists: the recall/speed trade-off chosen in bench/ann.py.
PROBE_FRACTION = 1 / 8
#: k-means training sample per list, and iterations (FAISS's default 25 buys little recall and costs minutes).
TRAIN_PER_LIST, TRAIN_ITERATIONS = 40, 10


def new_ivf(dimension: int, lists: int) -> faiss.Index:
    """An empty IVF index of ``lists`` lists whose vectors are kept in 16-bit floats, as they are (not as residuals
    of their list's centroid). On 557,377 real news vectors, against 32-bit floats (IndexIVFFlat) with the same lists
    probed: recall@10 0.987 against 0.988 on the dev questions (0.995 / 0.997 on check), a search 4.1 against 6.6
    ms, and half the memory (BENCHMARKS.md, "IVF in 16-bit floats"). 8-bit codes lost recall (0.979)."""
    index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dimension), dimension, lists,
                                          faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    index.by_residual = False
    return index


def is_approximate(index: faiss.Index) -> bool:
    return isinstance(index, faiss.IndexIVF)


def describe(index: faiss.Index) -> str:
    """How ``index`` is searched, for status lines: "exact", or "approximate (IVF: n lists, m probed per query)",
    which says so when its vectors are still in 32-bit floats (an index written before 16-bit IVF)."""
    if not is_approximate(index):
        return "exact"
    older = "; 32-bit vectors until a merge into them rewrites them in 16 bits: `qa index --compact`" * isinstance(
        index, faiss.IndexIVFFlat)
    return f"approximate (IVF: {index.nlist} lists, {index.nprobe} probed per query{older})"


def ivf_lists(n: int) -> int:
    """IVF lists for ``n`` vectors: about 4√n, a multiple of 16 (never more lists than vectors)."""
    return max(1, min(n, max(16, int(4 * np.sqrt(n)) // 16 * 16)))


def fit_vector_index(index: faiss.Index, exact_limit: int = Settings.exact_limit) -> faiss.Index:
    """The index to keep for its current size: exact up to ``exact_limit`` vectors, IVF above.

    An IVF index is trained again once it has grown enough to want twice its lists (4x the vectors), and goes
    back to exact search below half the limit, so an index near the limit does not flip on every sync.
    """
    n = index.ntotal
    if is_approximate(index):
        if n <= exact_limit // 2:
            return _rebuild(index, None)
        if ivf_lists(n) >= 2 * index.nlist:
            return _rebuild(index, ivf_lists(n))
        return _in_16_bits(index) if isinstance(index, faiss.IndexIVFFlat) else index
    return _rebuild(index, ivf_lists(n)) if n > exact_limit else index


def _rebuild(index: faiss.Index, lists: int | None) -> faiss.Index:
    """The same vectors and ids in an exact index (``lists`` None) or in a newly trained IVF of ``lists`` lists."""
    ids, vectors = vector_ids(index), all_vectors(index)
    if lists is None:
        out = new_vector_index(index.d)
        out.add_with_ids(vectors, ids)
        return out
    out = new_ivf(index.d, lists)
    out.cp.niter = TRAIN_ITERATIONS
    sample = np.random.default_rng(0).choice(len(vectors), min(len(vectors), lists * TRAIN_PER_LIST), replace=False)
    # k-means on every core, even in a process whose retriever keeps FAISS searches on one thread.
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(cpu_threads())
    try:
        out.train(vectors[np.sort(sample)])
        out.set_direct_map_type(faiss.DirectMap.Hashtable)  # for remove_ids and reconstruct by chunk id
        out.nprobe = max(1, round(lists * PROBE_FRACTION))
        out.add_with_ids(vectors, ids)
    finally:
        faiss.omp_set_num_threads(threads)
    return out


def _in_16_bits(old: faiss.Index) -> faiss.Index:
    """An IndexIVFFlat (32-bit floats, before :func:`new_ivf`) as the 16-bit kind: the same centroids and lists, each
    list's vectors rounded to 16 bits. Nothing is trained or assigned again, so search finds what it found."""
    out = new_ivf(old.d, old.nlist)
    out.quantizer.add(old.quantizer.reconstruct_n(0, old.nlist))  # the same centroids, in the same order
    out.is_trained = True  # 16-bit floats need no training of their own
    out.nprobe = old.nprobe
    for i, size in _filled_lists(old):
        codes = _list_vectors(old, i, size, np.float32).astype(np.float16)
        ids = faiss.rev_swig_ptr(old.invlists.get_ids(i), size)
        out.invlists.add_entries(i, size, faiss.swig_ptr(ids), faiss.swig_ptr(codes.view(np.uint8)))
    out.ntotal = old.ntotal
    out.set_direct_map_type(faiss.DirectMap.Hashtable)  # built from the lists just filled
    return out


def vector_ids(index: faiss.Index) -> np.ndarray:
    """The ids (chunk ids) of every vector in ``index``, exact or IVF."""
    if not is_approximate(index):
        return faiss.vector_to_array(index.id_map).astype(np.int64) if index.ntotal else np.zeros(0, np.int64)
    parts = [faiss.rev_swig_ptr(index.invlists.get_ids(i), size).copy() for i, size in _filled_lists(index)]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def all_vectors(index: faiss.Index) -> np.ndarray:
    """Every vector, in the order of :func:`vector_ids`."""
    if not is_approximate(index):
        return index.index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d), np.float32)
    codes = _code_type(index)
    if codes is None:  # codes of another kind: decoded one by one through the id table (slower, any IVF)
        return index.reconstruct_batch(vector_ids(index)) if index.ntotal else np.zeros((0, index.d), np.float32)
    parts = [_list_vectors(index, i, size, codes).astype(np.float32) for i, size in _filled_lists(index)]
    return np.vstack(parts) if parts else np.zeros((0, index.d), np.float32)


def _filled_lists(index: faiss.Index) -> list[tuple[int, int]]:
    """(list number, size) of each of an IVF index's lists that holds vectors, in order."""
    return [(i, size) for i in range(index.nlist) if (size := index.invlists.list_size(i))]


def _list_vectors(index: faiss.Index, i: int, size: int, codes: type[np.floating]) -> np.ndarray:
    """The vectors of list ``i`` as stored (``codes``: the numbers' type), one row each; a view of FAISS's memory."""
    raw = faiss.rev_swig_ptr(index.invlists.get_codes(i), size * index.invlists.code_size)
    return np.frombuffer(raw, dtype=codes).reshape(size, index.d)


def _code_type(index: faiss.Index) -> type[np.floating] | None:
    """The type an IVF index stores each vector's numbers as, where its codes are the plain vectors: 32-bit floats
    (IndexIVFFlat, written before 16-bit floats), 16-bit floats (:func:`new_ivf`); None for other codes."""
    if isinstance(index, faiss.IndexIVFFlat):
        return np.float32
    if (isinstance(index, faiss.IndexIVFScalarQuantizer) and not index.by_residual
            and index.sq.qtype == faiss.ScalarQuantizer.QT_fp16):
        return np.float16
    return None
