"""Dense vector index of one immutable segment, and exact (brute-force) search.

The ANN structure is faiss ``IndexHNSWFlat`` (chosen by measurement, see
docs/architecture/vector-index.md and bench/bench_ann_libraries.py). Filtered queries
run either as exact search over the allowed rows or as HNSW search with a native
``faiss.IDSelectorBitmap`` (no Python callback per visited node), depending on how many
rows the filter lets through.

HNSW recall falls as a graph grows, so M, ef_construction and ef_search are not
constants: ``build_params(n)`` and ``search_ef(n, k, ...)`` raise them with the segment
size, by the table bench/bench_ann_params.py measured (recall@10 >= 0.99 filtered or
not, measured up to 300k rows, extrapolated beyond), and each graph measures the ef its
own data needs when it is built (``calibrate_ef``). Configured values are lower bounds.

A persisted index is memory-mapped (``from_faiss_file(..., mmap=True)``: faiss's
``IO_FLAG_MMAP_IFC`` maps both the vectors and the graph), so its pages are the page
cache's, shared and reclaimable, not a private copy. ``extended`` adds rows to a copy
of an existing graph (compaction into the largest segment) instead of rebuilding it.

Distances follow chromadb:

* ``"l2"``: squared euclidean distance;
* ``"cosine"``: ``1 - cos(x, q)``; vectors and queries are L2-normalised first, a zero
  vector stays zero (its distance to anything is 1, never NaN);
* ``"ip"``: ``1 - x . q``.

Every distance returned (from either path) is recomputed in float64 for the returned rows
and rounded to float32, so the same (row, query) pair always yields the same distance and
ties are broken by the lower row number.

Thread safety: a :class:`VectorIndex` is immutable after ``build``/``from_bytes``;
``search`` only reads it and allocates per-call state, faiss releases the GIL while it
searches, so any number of Python threads may search one index concurrently.
"""

from __future__ import annotations

import math
import os
import struct

import faiss
import numpy as np

from gleandb.index.rowfile import RowFile

__all__ = ["QUANTIZATIONS", "SPACES", "VectorIndex", "exact_search", "num_threads"]

SPACES = ("l2", "cosine", "ip")
#: Optional compression of the vectors the graph walks over: "sq8" stores one byte per
#: dimension (faiss ``IndexHNSWSQ``, 4x less than float32); candidates are then
#: re-scored exactly from the full-precision vectors, kept in a file beside the index.
QUANTIZATIONS = (None, "sq8")
#: With quantization, HNSW fetches this many candidates per result before re-scoring.
RESCORE_FACTOR = 3

# --- thresholds measured with bench/bench_ann_libraries.py (100k x 384, clustered) -----
#: Below this many allowed rows, exact search is always used: it costs about as much as
#: one unfiltered HNSW query (~0.2-0.5 ms) and its recall is 1.
EXACT_MAX_ROWS = 2048
#: Below this fraction of allowed rows, exact search is used whatever the segment size.
#: Filtered HNSW needs a fast-growing ef for recall@10 >= 0.99 as selectivity falls
#: (cosine: 64 at 10%, 256 at 5%, 768 at 3%, 1024 at 2%, 3072 at 1%, not reached at 0.3%
#: with ef 4096); at 100k rows exact search over 3% (3k rows) costs about what HNSW with
#: ef 768 does (~1.5-2 ms), and is 40x faster at 1% (0.2 ms vs 9 ms).
EXACT_MAX_FRACTION = 0.04
#: For exact search over a subset, gather the allowed rows (``x[rows] @ q``) when fewer
#: than this fraction pass; above it a full product plus a mask is cheaper.
GATHER_MAX_FRACTION = 0.15
#: Queries per block in exact search (bounds the (queries x rows) distance matrix).
_EXACT_BLOCK_ELEMS = 1 << 23

# --- size rules measured with bench/bench_ann_params.py (clustered 384-d, cosine) -------
#: (segment rows, M, ef_construction): the graph parameters from that size up. M stays
#: 16 (a graph can then always be extended by compaction; M=32 builds 2-4x slower, for
#: ef 192 instead of 320 at 300k); a larger ef_construction halves the ef needed at
#: 300k (640 -> 320 for recall 0.995). See docs/architecture/vector-index.md.
_BUILD_TIERS = ((0, 16, 100), (200_000, 16, 200))
#: (segment rows, ef_search) reaching recall@10 >= 0.995 (k=10, unfiltered) for the
#: graph that ``build_params`` builds at that size; between points ef is interpolated
#: in log(rows), beyond the last it is extrapolated (see ``base_ef``).
_EF_POINTS = ((30_000, 64), (100_000, 128), (300_000, 320))
#: With a filter, ef = unfiltered ef x max(1, this / fraction). Measured (min ef for
#: recall@10 >= 0.99 relative to unfiltered): 1.2-1.3x at 30 %, 2-5x at 10 %, 5-13x at
#: 5 %; this gives 1.7x, 5x and 10x over the unfiltered ef *with margin* (the 0.995 one).
_FILTER_EF_SCALE = 0.5
#: For k > 10 the unfiltered ef is at least this x k (measured: recall@100 >= 0.99
#: needed ef 128-160 at 30k-100k rows).
_K_EF_SCALE = 2.0
#: ef values tried by ``calibrate_ef``.
_CALIBRATION_SWEEP = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)
#: Rows normalised per step (bounds the float64 temporary).
_NORM_BLOCK = 8192
#: Rows added per ``faiss.add`` call while building (bounds the normalised copy).
_ADD_CHUNK = 65_536


def build_params(n: int, M: int = 0, ef_construction: int = 0) -> tuple[int, int]:
    """(M, ef_construction) for an HNSW graph of ``n`` rows: the measured tier for that
    size, or the given values where they are higher (a configuration is a lower bound)."""
    tier = _BUILD_TIERS[0]
    for t in _BUILD_TIERS:
        if n >= t[0]:
            tier = t
    return max(int(M), tier[1]), max(int(ef_construction), tier[2])


def base_ef(n: int) -> int:
    """ef_search for recall@10 >= 0.99 (with margin) over ``n`` rows, unfiltered.

    Read from ``_EF_POINTS`` (interpolated in log n); above the last measured size
    (300k: larger ones were not measured on the 2-core machine) it grows by the slope of
    the last two points per doubling of n (x1.78: ~870 at 1M), never less than +25 % per
    doubling (see docs/architecture/vector-index.md).
    """
    pts = _EF_POINTS
    if n <= pts[0][0]:
        return pts[0][1]
    for (n0, e0), (n1, e1) in zip(pts, pts[1:]):
        if n <= n1:
            t = math.log(n / n0) / math.log(n1 / n0)
            return int(math.ceil(e0 * (e1 / e0) ** t))
    (n0, e0), (n1, e1) = pts[-2], pts[-1]
    per_doubling = max((e1 / e0) ** (math.log(2) / math.log(n1 / n0)), 1.25)
    return int(math.ceil(e1 * per_doubling ** math.log2(n / n1)))


def search_ef(n: int, k: int, ef_search: int, fraction: float = 1.0, calibrated: int = 0) -> int:
    """ef for a k-NN search over ``n`` rows of which ``fraction`` are allowed.

    The largest of the configured ``ef_search`` and the measured rule: the unfiltered
    ef for recall@10 (the larger of ``base_ef(n)`` and ``calibrated``, the ef the segment
    measured on its own rows when built), at least 2k for larger k, and, when a filter
    allows fewer than half the rows, times 0.5 / fraction (faiss's candidate queue fills
    with disallowed rows, so the needed ef grows like 1/selectivity).
    """
    k = int(k)
    b = max(base_ef(n), int(calibrated))
    if k > 10:
        b = max(b, int(math.ceil(_K_EF_SCALE * k)))
    if fraction < 1.0:
        b = int(math.ceil(b * max(1.0, _FILTER_EF_SCALE / max(fraction, 1e-9))))
    return max(int(ef_search), k, min(b, max(int(n), 1)))


def calibrate_ef(index, x: np.ndarray, space: str, target: float = 0.995, queries: int = 200,
                 rescore: bool = False) -> int:
    """The smallest ef (from a sweep) for which HNSW finds ``target`` of the exact 10
    nearest neighbours of ``queries`` of the index's own rows (each row's own match left
    out), x 1.25 as a margin: how hard this segment's data is, measured when it is built.
    ``x`` are the stored (prepared) vectors; with ``rescore`` (a quantized index) the
    candidates are re-scored exactly first, as ``VectorIndex.search`` does."""
    n = int(index.ntotal)
    if n <= EXACT_MAX_ROWS:
        return 0
    rng = np.random.default_rng(n)
    rows = np.sort(rng.choice(n, size=min(queries, n), replace=False))
    q = np.ascontiguousarray(x[rows])
    sq = np.einsum("ij,ij->i", x, x) if space != "cosine" else None
    # a few queries at a time: their (queries x n) score matrices are the only temporaries,
    # and the graph's build buffers are still alive (200 at once: +80 MiB at 50k rows)
    truth = np.concatenate([_exact(x, q[s : s + 16], 11, space, None, rows_normalized=True, sq_norms=sq)[1]
                            for s in range(0, len(q), 16)])
    want = [t[t != r][:10] for t, r in zip(truth, rows)]
    total = sum(len(w) for w in want)
    fetch = min(n, RESCORE_FACTOR * 11) if rescore else 11
    for ef in _CALIBRATION_SWEEP:
        _, found = index.search(q, fetch, params=faiss.SearchParametersHNSW(efSearch=max(ef, fetch)))
        if rescore:
            found = np.stack([_rescored(x, qi, f, space, 11) for qi, f in zip(q, found)])
        hits = sum(len(np.intersect1d(f[(f >= 0) & (f != r)][:10], w)) for f, w, r in zip(found, want, rows))
        if hits >= target * total:
            return int(math.ceil(1.25 * ef))
    return _CALIBRATION_SWEEP[-1]


_MAGIC = b"GLVI"
_VERSION = 1
_HEADER = struct.Struct("<4sHBBIQ")  # magic, version, space code, reserved, dim, n
_SPACE_CODE = {"l2": 0, "cosine": 1, "ip": 2}
_CODE_SPACE = {v: k for k, v in _SPACE_CODE.items()}


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def num_threads(requested: int | None = None) -> int:
    """Threads the library may use: ``requested`` capped at the usable cores."""
    cores = _cores()
    if requested is None:
        return cores
    if requested < 1:
        raise ValueError(f"num_threads must be >= 1, got {requested}")
    return min(int(requested), cores)


# OpenMP's thread count is per calling thread in libgomp; set it here for the importing
# thread and again (cheaply) in every build/search call, for the calling thread.
faiss.omp_set_num_threads(num_threads())
_resolve_threads = num_threads


def _check_space(space: str) -> str:
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
    return space


def _as_matrix(a, name: str, dim: int | None = None) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim == 1 and name == "queries":
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-d array, got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name} have dimension {arr.shape[1]}, expected {dim}")
    if arr.dtype.kind not in "fiub":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if arr.size and not np.isfinite(arr).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    return arr


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _normalize(x: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation (norms and quotients in float64, result float32); zero
    rows stay 0. Done ``_NORM_BLOCK`` rows at a time into the result: the whole float64
    quotient was a transient of 3x the vectors (+225 MiB normalising 50k x 384 to build
    a graph), for the same values."""
    if x.size == 0:
        return np.ascontiguousarray(x, dtype=np.float32)
    out = np.empty(x.shape, dtype=np.float32)
    for s in range(0, len(x), _NORM_BLOCK):
        b = x[s : s + _NORM_BLOCK]
        norms = np.sqrt(np.einsum("ij,ij->i", b, b, dtype=np.float64))
        norms[norms == 0.0] = 1.0
        np.divide(b, norms[:, None], out=out[s : s + _NORM_BLOCK])
    return out


def _exact_distances(xs: np.ndarray, q: np.ndarray, space: str, normalize_rows: bool) -> np.ndarray:
    """Accurate distances of rows ``xs`` (m, d) to one prepared query ``q`` (d,), float32.

    ``q`` is already normalised for cosine. Computed in float64, per row, so identical
    rows get identical distances wherever they are computed.
    """
    if space == "cosine" and normalize_rows:
        xs = _normalize(xs)
    x64 = xs.astype(np.float64)
    q64 = q.astype(np.float64)
    if space == "l2":
        diff = x64 - q64
        d = np.einsum("ij,ij->i", diff, diff)
    else:
        d = 1.0 - x64 @ q64
        if space == "cosine":
            d = np.maximum(d, 0.0)  # rounding can push an exact match a hair below zero
    return d.astype(np.float32)


def _prepare_queries(queries: np.ndarray, space: str) -> np.ndarray:
    return _normalize(queries) if space == "cosine" else queries


def _exact(
    x: np.ndarray,
    queries: np.ndarray,
    k: int,
    space: str,
    rows: np.ndarray | None,
    *,
    rows_normalized: bool,
    sq_norms: np.ndarray | None = None,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k. ``queries`` already prepared (normalised for cosine).

    ``rows`` (sorted or not, unique) restricts the candidates; ``mask`` (bool, len n) may
    be given together with ``rows`` so that a full product plus mask can be used when many
    rows pass. Returns (q, k') with k' = min(k, candidates).
    """
    n = x.shape[0]
    nq = queries.shape[0]
    cand = n if rows is None else len(rows)
    kk = min(k, cand)
    out_d = np.empty((nq, kk), dtype=np.float32)
    out_r = np.empty((nq, kk), dtype=np.int64)
    if kk == 0 or nq == 0:
        return out_d, out_r

    use_mask = rows is not None and mask is not None and cand > GATHER_MAX_FRACTION * n
    if rows is None or use_mask:
        sub, sub_rows = x, None
    else:
        sub, sub_rows = x[rows], rows  # gather once for all queries
    width = sub.shape[0]

    # cheap ranking scores (float32 BLAS); accurate distances are recomputed afterwards
    if space == "cosine" and rows_normalized:
        sn = None
        row_scale = 1.0
    else:
        if sq_norms is None:
            sn = np.einsum("ij,ij->i", sub, sub)
        else:
            sn = sq_norms if sub_rows is None else sq_norms[sub_rows]
        row_scale = float(np.sqrt(sn.max())) if width else 1.0
    if space == "cosine" and not rows_normalized:
        inv = np.sqrt(sn)
        inv[inv == 0] = 1.0
        inv = (1.0 / inv).astype(np.float32)
        row_scale = 1.0

    block = max(1, _EXACT_BLOCK_ELEMS // max(width, 1))
    for s in range(0, nq, block):
        qb = queries[s : s + block]
        g = qb @ sub.T  # (b, width)
        if space == "l2":
            qn = np.einsum("ij,ij->i", qb, qb)
            scores = sn[None, :] - 2.0 * g + qn[:, None]
        elif space == "cosine" and not rows_normalized:
            scores = 1.0 - g * inv[None, :]
        else:
            scores = 1.0 - g
        if use_mask:
            scores[:, ~mask] = np.inf
        for i in range(qb.shape[0]):
            qi = qb[i]
            sc = scores[i]
            qnorm = float(np.sqrt(np.dot(qi, qi)))
            # bound on float32 rounding in the scores; candidates within it are re-checked
            scale = (row_scale + qnorm) ** 2 if space == "l2" else row_scale * qnorm
            eps = 1e-4 * scale + 1e-6
            if kk < width:
                kth = np.partition(sc, kk - 1)[kk - 1]
                pos = np.flatnonzero(sc <= kth + eps)
            else:
                pos = np.arange(width)
            if use_mask:
                pos = pos[mask[pos]]
            cand_rows = pos if sub_rows is None else sub_rows[pos]
            xs = sub[pos]
            d = _exact_distances(xs, qi, space, normalize_rows=not rows_normalized)
            order = np.lexsort((cand_rows, d))[:kk]
            out_d[s + i] = d[order]
            out_r[s + i] = cand_rows[order]
    return out_d, out_r


def exact_search(
    vectors: np.ndarray,
    queries: np.ndarray,
    k: int,
    space: str,
    rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force k nearest neighbours of each query.

    ``vectors`` (n, d) are raw (not normalised even for "cosine"); ``queries`` (q, d) or
    (d,); ``rows`` an optional array of unique allowed row numbers. Returns
    ``(distances float32 (q, k'), rows int64 (q, k'))`` with ``k' = min(k, candidates)``,
    sorted by ascending distance, ties broken by the lower row number.
    """
    _check_space(space)
    k = _check_k(k)
    x = _as_matrix(vectors, "vectors")
    q = _as_matrix(queries, "queries", x.shape[1])
    if rows is not None:
        rows = np.asarray(rows)
        if rows.ndim != 1 or (rows.size and rows.dtype.kind not in "iu"):
            raise ValueError("rows must be a 1-d array of integer row numbers")
        rows = rows.astype(np.int64, copy=False)
        if rows.size and (rows.min() < 0 or rows.max() >= x.shape[0]):
            raise ValueError(f"rows must lie in [0, {x.shape[0]})")
    return _exact(x, _prepare_queries(q, space), k, space, rows, rows_normalized=False)


def raw_distances(vectors: np.ndarray, query: np.ndarray, space: str) -> np.ndarray:
    """Distances of raw ``vectors`` (m, d) to one ``query`` (d,) that may hold NaN or
    infinities: no finiteness check, so the result carries them (NaN, inf) as chromadb's
    distances do for such a query. For ordinary queries use ``exact_search``."""
    _check_space(space)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        q = _prepare_queries(np.asarray(query, dtype=np.float32)[None, :], space)[0]
        return _exact_distances(np.asarray(vectors, dtype=np.float32), q, space, normalize_rows=True)


def _rescored(x: np.ndarray, q: np.ndarray, cand: np.ndarray, space: str, k: int) -> np.ndarray:
    """The k best of candidate rows ``cand`` (-1 = none) by exact distance (-1 padded)."""
    cand = cand[cand >= 0]
    d = _exact_distances(x[cand], q, space, normalize_rows=False)
    out = np.full(k, -1, dtype=np.int64)
    best = cand[np.lexsort((cand, d))[:k]]
    out[: len(best)] = best
    return out


def _reserve(index, total: int) -> None:
    """Size the index's vector storage for ``total`` rows before rows are added. faiss
    grows it (a ``std::vector``) as each chunk is added, by doubling and copying: adding
    the last chunks of a large build held the old and the new buffer at once, a
    transient of up to twice the vectors (measured: +250 MiB extending a 50k graph by
    150k rows). Growing it once, then shrinking its size (not its capacity) back, lets
    every ``add`` fill it in place."""
    storage = faiss.downcast_index(index.storage)
    codes = storage.codes
    cur, want = int(codes.size()), int(total) * int(storage.code_size)
    if want > cur:
        codes.resize(want)
        codes.resize(cur)


def _add_rows(index, x: np.ndarray, space: str, threads: int) -> None:
    """Insert rows of ``x`` into ``index`` in chunks (normalised per chunk for cosine)."""
    faiss.omp_set_num_threads(threads)
    _reserve(index, index.ntotal + len(x))
    for s in range(0, len(x), _ADD_CHUNK):
        chunk = x[s : s + _ADD_CHUNK]
        index.add(_normalize(chunk) if space == "cosine" else np.ascontiguousarray(chunk))


class _Owner:
    """Keeps the faiss index alive for as long as a numpy view of its storage exists."""

    def __init__(self, index, arr: np.ndarray):
        self._index = index
        self.__array_interface__ = arr.__array_interface__


class VectorIndex:
    """HNSW index (faiss IndexHNSWFlat, or IndexHNSWSQ with "sq8") over the vectors of
    one segment.

    Unquantized, the index is the only copy of the vectors: :meth:`stored_vectors`
    returns them (for "cosine" these are the L2-normalised vectors). Quantized, the
    full-precision vectors are a separate array (``vectors``; memory-mapped from the
    segment's file once persisted) used to re-score candidates exactly. Immutable; safe
    to search from several threads at once.
    """

    __slots__ = ("_index", "_space", "_n", "_dim", "_x", "_sq_norms", "_threads", "_quantized")

    def __init__(self, index, space: str, threads: int | None = None, vectors: np.ndarray | None = None):
        # use build / from_faiss_file; ``vectors`` (prepared) are required for a quantized index
        self._index = index
        self._space = _check_space(space)
        self._n = int(index.ntotal)
        self._dim = int(index.d)
        self._threads = num_threads(threads)
        self._sq_norms = None
        self._quantized = isinstance(index, faiss.IndexHNSWSQ)
        if self._quantized:
            if vectors is None or tuple(vectors.shape) != (self._n, self._dim):
                raise ValueError("a quantized vector index needs its full-precision vectors")
            if isinstance(vectors, RowFile):  # read row by row, never all at once
                self._x = vectors
                return
            view = np.asarray(vectors, dtype=np.float32)
            if view.flags.writeable:
                view = view.view()
                view.flags.writeable = False
            self._x = view
            return
        storage = faiss.downcast_index(index.storage)
        if self._n:
            raw = faiss.rev_swig_ptr(storage.get_xb(), self._n * self._dim)
            view = np.asarray(_Owner(index, raw)).reshape(self._n, self._dim)
        else:
            view = np.empty((0, self._dim), dtype=np.float32)
        view.flags.writeable = False
        self._x = view

    # -- construction ------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        space: str,
        *,
        M: int = 0,
        ef_construction: int = 0,
        num_threads: int | None = None,
        quantization: str | None = None,
    ) -> "VectorIndex":
        """Build an index over ``vectors`` (n, d); row i of the input is row number i.

        ``M`` / ``ef_construction`` are lower bounds: ``build_params`` raises them with n.
        Rows are added in chunks, so at most one chunk is copied (normalised) at a time.
        ``quantization="sq8"`` builds an ``IndexHNSWSQ`` (trained on up to 64k rows) and
        keeps the prepared full-precision vectors beside it for re-scoring.
        """
        if quantization not in QUANTIZATIONS:
            raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
        _check_space(space)
        x = _as_matrix(vectors, "vectors")
        if x.shape[1] < 1:
            raise ValueError("vectors must have dimension >= 1")
        if M < 0 or ef_construction < 0 or M == 1:
            raise ValueError(f"need M >= 2 and ef_construction >= 1, got M={M}, ef_construction={ef_construction}")
        M, ef_construction = build_params(len(x), M, ef_construction)
        metric = faiss.METRIC_L2 if space == "l2" else faiss.METRIC_INNER_PRODUCT
        threads = _resolve_threads(num_threads)
        full = None
        if quantization == "sq8":
            index = faiss.IndexHNSWSQ(x.shape[1], faiss.ScalarQuantizer.QT_8bit, int(M), metric)
            full = _normalize(x) if space == "cosine" else np.array(x, dtype=np.float32)  # own copy
            if len(full):
                faiss.omp_set_num_threads(threads)
                sample = full[np.random.default_rng(0).choice(len(full), min(len(full), 65_536), replace=False)]
                index.train(np.ascontiguousarray(sample))
            index.hnsw.efConstruction = int(ef_construction)
            _add_rows(index, full, "l2", threads)  # already prepared
        else:
            index = faiss.IndexHNSWFlat(x.shape[1], int(M), metric)
            index.hnsw.efConstruction = int(ef_construction)
            _add_rows(index, x, space, threads)
        out = cls(index, space, threads, full)
        out._calibrate()
        return out

    def extended(self, vectors, *, source_path: str | None = None,
                 num_threads: int | None = None, rows: int | None = None) -> "VectorIndex":
        """A new index holding this one's rows (same row numbers) followed by ``vectors``:
        an (m, d) array, or an iterable of such arrays (consecutive chunks, so the caller
        never holds all the new rows at once; ``rows``, their total, sizes the storage once).

        This index is not changed (readers may be searching it): the graph is copied, read
        afresh from ``source_path`` when given (the index's own file, e.g. when this one is
        memory-mapped), else cloned in memory, and the new rows are inserted into it, which
        costs about what building a graph of only the new rows does. Used by compaction
        when the largest segment has no deleted rows.
        """
        if isinstance(vectors, (np.ndarray, list, tuple)):  # one array(-like)
            x = _as_matrix(vectors, "vectors", self._dim)
            chunks, rows = iter([x]), len(x)
        else:
            if rows is None:
                raise ValueError("rows (the number of new rows) is needed when vectors come in chunks")
            chunks = (_as_matrix(c, "vectors", self._dim) for c in vectors)
        if source_path is not None:
            try:
                index = faiss.read_index(source_path)
            except RuntimeError as e:
                raise ValueError(f"corrupt vector index {source_path}: {e}") from None
            if index.ntotal != self._n or index.d != self._dim:
                raise ValueError(f"vector index {source_path} does not match the loaded one")
        else:
            index = faiss.clone_index(self._index)
        _, efc = build_params(self._n + int(rows), self.M, int(index.hnsw.efConstruction))
        index.hnsw.efConstruction = efc
        threads = _resolve_threads(num_threads)
        _reserve(index, self._n + int(rows))
        full = None
        if self._quantized:
            # one array for the full-precision vectors, filled in place: the new rows were
            # first gathered in a list and then concatenated with the old ones (the new rows
            # twice over, +2.8 GiB of private memory at the 800k-row compaction of 1M sq8)
            full = np.empty((self._n + int(rows), self._dim), dtype=np.float32)
            for lo in range(0, self._n, _ADD_CHUNK):
                hi = min(self._n, lo + _ADD_CHUNK)
                full[lo:hi] = self._x[lo:hi]
            at = self._n
            for c in chunks:
                if at + len(c) > len(full):
                    raise ValueError(f"expected {rows} new rows, got more")
                part = full[at : at + len(c)]
                part[...] = _normalize(c) if self._space == "cosine" else c
                _add_rows(index, part, "l2", threads)
                at += len(c)
        else:
            for c in chunks:
                _add_rows(index, c, self._space, threads)
        if index.ntotal != self._n + int(rows):
            raise ValueError(f"expected {rows} new rows, got {index.ntotal - self._n}")
        out = VectorIndex(index, self._space, threads, full)
        out._calibrate()
        return out

    def _calibrate(self) -> None:
        """Measure this graph's ef (``calibrate_ef``) and keep it in the index's own
        ``efSearch`` field, which faiss saves with it (older files hold faiss's default
        16, below every size rule, so they fall back to the rule)."""
        faiss.omp_set_num_threads(self._threads)
        self._index.hnsw.efSearch = max(16, calibrate_ef(self._index, self._x, self._space,
                                                         rescore=self._quantized))

    @property
    def calibrated_ef(self) -> int:
        """The ef this graph measured on its own rows when built (16 when not measured)."""
        return int(self._index.hnsw.efSearch)

    def to_bytes(self) -> bytes:
        """Serialise (header + faiss index); the inverse of :meth:`from_bytes`."""
        if self._quantized:
            raise ValueError("a quantized index is saved as its faiss file plus its vectors")
        header = _HEADER.pack(_MAGIC, _VERSION, _SPACE_CODE[self._space], 0, self._dim, self._n)
        return header + faiss.serialize_index(self._index).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> "VectorIndex":
        buf = np.frombuffer(data, dtype=np.uint8)
        if buf.size < _HEADER.size:
            raise ValueError("corrupt vector index: too short")
        magic, version, code, _, dim, n = _HEADER.unpack(buf[: _HEADER.size].tobytes())
        if magic != _MAGIC:
            raise ValueError("corrupt vector index: bad magic")
        if version != _VERSION:
            raise ValueError(f"unsupported vector index version {version}")
        if code not in _CODE_SPACE:
            raise ValueError(f"corrupt vector index: unknown space code {code}")
        space = _CODE_SPACE[code]
        try:
            index = faiss.deserialize_index(buf[_HEADER.size :])
        except RuntimeError as e:
            raise ValueError(f"corrupt vector index: {e}") from None
        # deserialize_index already returns the concrete, owning proxy (downcast_index
        # would return a non-owning one and let this one free the index)
        metric = faiss.METRIC_L2 if space == "l2" else faiss.METRIC_INNER_PRODUCT
        if (
            not isinstance(index, faiss.IndexHNSWFlat)
            or index.ntotal != n
            or index.d != dim
            or index.metric_type != metric
        ):
            raise ValueError("corrupt vector index: header does not match the index")
        return cls(index, space)

    def faiss_buffer(self) -> np.ndarray:
        """The index in faiss's own file format (uint8 array, no header): what a segment
        writes, so that :meth:`from_faiss_file` can load it without extra copies."""
        return faiss.serialize_index(self._index)

    def write_faiss_file(self, path: str) -> None:
        """Write the index in faiss's file format straight to ``path`` (no in-memory copy)."""
        faiss.write_index(self._index, path)

    @classmethod
    def from_faiss_file(cls, path: str, space: str, *, mmap: bool = False,
                        vectors: np.ndarray | None = None) -> "VectorIndex":
        """Load a file written from :meth:`faiss_buffer` (3-5x faster than from bytes:
        faiss reads straight into the index instead of copying a buffer twice).

        With ``mmap`` the vectors and the graph stay in the file, mapped read-only
        (``IO_FLAG_MMAP_IFC``): nothing is copied, pages load on first touch and belong to
        the page cache. The file must then not be changed while the index lives (segment
        files never are; unlinking it is harmless). A quantized index needs ``vectors``,
        its full-precision (prepared) vectors."""
        _check_space(space)
        try:
            index = faiss.read_index(path, faiss.IO_FLAG_MMAP_IFC if mmap else 0)
        except RuntimeError as e:
            raise ValueError(f"corrupt vector index {path}: {e}") from None
        return cls._checked(index, space, None, None, vectors)

    @classmethod
    def from_faiss_buffer(cls, data: bytes | memoryview, space: str,
                          vectors: np.ndarray | None = None) -> "VectorIndex":
        _check_space(space)
        try:
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except RuntimeError as e:
            raise ValueError(f"corrupt vector index: {e}") from None
        return cls._checked(index, space, None, None, vectors)

    @classmethod
    def _checked(cls, index, space: str, n: int | None, dim: int | None,
                 vectors: np.ndarray | None = None) -> "VectorIndex":
        metric = faiss.METRIC_L2 if space == "l2" else faiss.METRIC_INNER_PRODUCT
        if (
            not isinstance(index, (faiss.IndexHNSWFlat, faiss.IndexHNSWSQ))
            or (n is not None and index.ntotal != n)
            or (dim is not None and index.d != dim)
            or index.metric_type != metric
        ):
            raise ValueError("corrupt vector index: not the expected HNSW index")
        if isinstance(index, faiss.IndexHNSWSQ) and (vectors is None or len(vectors) != index.ntotal):
            raise ValueError("corrupt vector index: a quantized index without its full-precision vectors")
        return cls(index, space, None, vectors if isinstance(index, faiss.IndexHNSWSQ) else None)

    # -- properties --------------------------------------------------------------------
    @property
    def n(self) -> int:
        return self._n

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def space(self) -> str:
        return self._space

    @property
    def quantization(self) -> str | None:
        return "sq8" if self._quantized else None

    @property
    def M(self) -> int:
        """The graph's M (neighbours per node above level 0; 2M at level 0)."""
        return int(self._index.hnsw.nb_neighbors(1))

    def search_ef(self, k: int, ef_search: int, fraction: float = 1.0) -> int:
        """The ef a search of this index uses (see the module's ``search_ef``)."""
        return search_ef(self._n, k, ef_search, fraction, self.calibrated_ef)

    def stored_vectors(self) -> np.ndarray:
        """The indexed vectors, (n, d) float32, read-only view of the index memory (no
        copy). For "cosine" these are the L2-normalised input vectors (zero rows stay
        zero); for "l2" and "ip" they equal the input. A quantized index read from a
        local file holds its full-precision vectors as a :class:`RowFile` (rows read on
        demand: index it, or ``np.asarray`` for all rows)."""
        return self._x

    def _norms(self) -> np.ndarray:
        sn = self._sq_norms
        if sn is None:  # benign race: concurrent callers compute the same array
            sn = np.einsum("ij,ij->i", self._x, self._x)
            self._sq_norms = sn
        return sn

    # -- search ------------------------------------------------------------------------
    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        ef_search: int = 100,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """k nearest rows of each query, restricted to ``allowed`` (bool mask, len n).

        Returns ``(distances float32 (q, k), rows int64 (q, k))`` sorted ascending
        (ties by lower row); missing results are row -1 with distance +inf. Every returned
        row is allowed. Uses exact search when few rows are allowed (see EXACT_MAX_ROWS,
        EXACT_MAX_FRACTION) and HNSW with a native bitmap selector otherwise.
        """
        k = _check_k(k)
        if isinstance(ef_search, bool) or int(ef_search) < 1:
            raise ValueError(f"ef_search must be a positive integer, got {ef_search!r}")
        q = _as_matrix(queries, "queries", self._dim)
        nq = q.shape[0]
        out_d = np.full((nq, k), np.inf, dtype=np.float32)
        out_r = np.full((nq, k), -1, dtype=np.int64)
        if allowed is not None:
            allowed = np.asarray(allowed)
            if allowed.dtype != np.bool_ or allowed.shape != (self._n,):
                raise ValueError(f"allowed must be a bool array of shape ({self._n},), got "
                                 f"{allowed.dtype} {allowed.shape}")
            count = int(np.count_nonzero(allowed))
            if count == self._n:
                allowed = None
        else:
            count = self._n
        if nq == 0 or count == 0:
            return out_d, out_r
        qp = _prepare_queries(q, self._space)
        fraction = count / self._n

        if count <= EXACT_MAX_ROWS or fraction < EXACT_MAX_FRACTION:
            rows = None if allowed is None else np.flatnonzero(allowed)
            d, r = self._exact(qp, k, rows, allowed)
            out_d[:, : d.shape[1]] = d
            out_r[:, : r.shape[1]] = r
            return out_d, out_r

        ef = self.search_ef(k, ef_search, fraction)
        bits = None
        if allowed is None:
            params = faiss.SearchParametersHNSW(efSearch=ef)
            sel = None
        else:
            bits = np.packbits(allowed, bitorder="little")
            sel = faiss.IDSelectorBitmap(self._n, faiss.swig_ptr(bits))
            params = faiss.SearchParametersHNSW(efSearch=ef, sel=sel)
        faiss.omp_set_num_threads(self._threads)
        fetch = min(self._n, RESCORE_FACTOR * k) if self._quantized else k
        if fetch > ef:
            params.efSearch = fetch
        _, ids = self._index.search(qp, fetch, params=params)
        del params, sel, bits  # kept alive until here: faiss holds raw pointers

        want = min(k, count)
        for i in range(nq):
            r = ids[i]
            r = r[r >= 0]
            if allowed is not None:
                r = r[allowed[r]]  # defensive: the selector already guarantees this
            if len(r) < want:  # graph could not reach enough allowed rows: exact instead
                rows = None if allowed is None else np.flatnonzero(allowed)
                d1, r1 = self._exact(qp[i : i + 1], k, rows, allowed)
                out_d[i, : d1.shape[1]] = d1[0]
                out_r[i, : r1.shape[1]] = r1[0]
                continue
            d = _exact_distances(self._x[r], qp[i], self._space, normalize_rows=False)
            order = np.lexsort((r, d))[:k]  # quantized: the best k of the re-scored candidates
            out_d[i, : len(order)] = d[order]
            out_r[i, : len(order)] = r[order]
        return out_d, out_r

    def _exact(self, qp, k, rows, mask):
        x, sq = self._x, None
        if isinstance(x, RowFile):
            # only the allowed rows are read (no mask: a product over every row would read
            # them all), and their norms are computed from what was read
            mask = None
            if rows is None:  # every row: a segment of <= 2048 rows, or the graph's rare fallback
                x = np.asarray(x)
        elif self._space != "cosine":
            sq = self._norms()
        return _exact(x, qp, k, self._space, rows, rows_normalized=True, sq_norms=sq, mask=mask)

    def __repr__(self) -> str:
        return f"VectorIndex(n={self._n}, dim={self._dim}, space={self._space!r})"
