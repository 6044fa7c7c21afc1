"""First-stage rankers over one snapshot: dense k-NN and BM25, each a ranked list of rows.

Both return ``[(view index, row, value), ...]`` best first, over rows that are live
and allowed by the caller's per-segment masks, so the Search API executor and
``retrieve()`` combine them the same way. Rows are identified by (view index,
row) within one snapshot; ties are broken by the row's insertion rank (``rid``),
so results do not depend on how rows happen to be split into segments.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from gleandb import deadlines
from gleandb.errors import InvalidArgumentError
from gleandb.engine.store import CollectionStore, SegView

Ranked = list[tuple[int, int, float]]


def dense_top_k(
    store: CollectionStore,
    snap: Sequence[SegView],
    queries: np.ndarray,
    k: int,
    allowed: Sequence[np.ndarray | None],
) -> list[Ranked]:
    """The ``k`` nearest allowed rows of each query (distance ascending, then rid)."""
    nq = queries.shape[0]
    if store.dimension is None or nq == 0:
        return [[] for _ in range(nq)]
    store.check_dimension(queries.shape[1])
    parts: list[list[tuple[float, int, int, int]]] = [[] for _ in range(nq)]
    for vi, view in enumerate(snap):
        mask = allowed[vi]
        n_ok = view.seg.n if mask is None else int(np.count_nonzero(mask))
        if n_ok == 0:
            continue
        # never ask a segment for more rows than it can give (a huge limit must not allocate)
        kk = min(int(k), n_ok)
        deadlines.check()
        d, r = view.seg.search(queries, kk, mask, store.params.ef_search)
        rids = view.seg.rids
        for qi in range(nq):
            ok = r[qi] >= 0
            for dist, row in zip(d[qi][ok].tolist(), r[qi][ok].tolist()):
                parts[qi].append((float(dist), int(rids[row]), vi, row))
    out = []
    for qi in range(nq):
        best = sorted(parts[qi])[:k]
        out.append([(vi, row, dist) for dist, _rid, vi, row in best])
    return out


def bm25_ranked(
    store: CollectionStore, snap: Sequence[SegView], query: str, k: int, allowed: Sequence[np.ndarray | None]
) -> Ranked:
    """The ``k`` best allowed rows by BM25 (score descending, then rid); value = BM25 score."""
    try:
        from gleandb.index.fulltext import bm25_top_k
    except ImportError as exc:  # pragma: no cover - only before the full-text index exists
        raise InvalidArgumentError("BM25 ranking needs gleandb.index.fulltext, which is not available") from exc
    if not isinstance(query, str):
        raise InvalidArgumentError(f"BM25 query must be a string, got {type(query).__name__}")
    hits = bm25_top_k(snap, query, int(k), list(allowed), store.fulltext_config)
    rows = [(float(score), int(snap[vi].seg.rids[row]), int(vi), int(row)) for vi, row, score in hits]
    rows.sort(key=lambda t: (-t[0], t[1]))
    return [(vi, row, score) for score, _rid, vi, row in rows[:k]]
