"""First-stage rankers over one snapshot: dense k-NN and BM25, each a ranked list of rows.

Both return ``[(view index, row, value), ...]`` best first, over rows that are live
and allowed by the caller's per-segment masks, so the Search API executor and
``retrieve()`` combine them the same way. Rows are identified by (view index,
row) within one snapshot; ties are broken by the row's insertion rank (``rid``),
so results do not depend on how rows happen to be split into segments.

Scoring (:func:`bm25_top_k`) is BM25 as Lucene computes it::

    idf(t)   = ln(1 + (N - n_t + 0.5) / (n_t + 0.5))
    score    = sum over query terms t of idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avgdl))

with ``N`` (live rows that have a document), ``avgdl`` and each ``n_t`` summed over
every segment and the memtable and counting live rows only. A score therefore never
depends on how rows happen to be split into segments, nor on deleted or replaced
versions. A query term that occurs twice in the query counts twice (as in Lucene's
boolean query, rank-bm25 and bm25s). Rows without a document never match; a
document with no terms counts in ``N`` with length 0.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

from gleandb import deadlines
from gleandb.errors import InvalidArgumentError
from gleandb.engine.query import nearest
from gleandb.engine.store import CollectionStore, SegView
from gleandb.index import arrays
from gleandb.index.fulltext import FullTextIndex, term_hashes
from gleandb.index.tokenize import FullTextConfig, analyze_query

Ranked = list[tuple[int, int, float]]


def dense_top_k(
    store: CollectionStore,
    snap: Sequence[SegView],
    queries: np.ndarray,
    k: int,
    allowed: Sequence[np.ndarray | None],
) -> list[Ranked]:
    """The ``k`` nearest allowed rows of each query (distance ascending, then rid): the
    engine's one k-NN merge (``gleandb.engine.query.nearest``), as ranked lists."""
    nq = queries.shape[0]
    if store.dimension is None or nq == 0:
        return [[] for _ in range(nq)]
    store.check_dimension(queries.shape[1])
    return [list(zip(v.tolist(), r.tolist(), d.astype(np.float64).tolist()))
            for d, v, r in nearest(snap, queries, k, allowed, store.params.ef_search)]


def bm25_ranked(
    store: CollectionStore, snap: Sequence[SegView], query: str, k: int, allowed: Sequence[np.ndarray | None]
) -> Ranked:
    """The ``k`` best allowed rows by BM25 (score descending, then rid); value = BM25 score."""
    if not isinstance(query, str):
        raise InvalidArgumentError(f"BM25 query must be a string, got {type(query).__name__}")
    hits = bm25_top_k(snap, query, int(k), list(allowed), store.fulltext_config)
    rows = [(float(score), int(snap[vi].seg.rids[row]), int(vi), int(row)) for vi, row, score in hits]
    rows.sort(key=lambda t: (-t[0], t[1]))
    return [(vi, row, score) for score, _rid, vi, row in rows[:k]]


def _live_stats(view: SegView, idx: FullTextIndex) -> tuple[int, int]:
    """(rows with a document, total analysed length) among the view's live rows; worked out
    once per version of the view (O(segment rows)), not per query."""
    if view.deleted is None:
        return idx.n_docs, idx.total_len
    key = ("bm25_live_stats", id(idx))  # the segment holds idx while the view lives: a stable id
    got = view.memo.get(key)
    if got is None:
        dead = view.deleted_rows
        got = view.memo[key] = (idx.n_docs - int(np.count_nonzero(idx.has_doc[dead])),
                                idx.total_len - int(idx.doc_len[dead].sum(dtype=np.int64)))
    return got


def _live_count(rows: np.ndarray, view: SegView) -> int:
    """How many of the sorted posting ``rows`` are live: the deleted rows are looked up in
    them (O(deleted x log postings)) when they are fewer than the postings, else the
    postings in the deletion mask (O(postings))."""
    if view.deleted is None:
        return len(rows)
    dead = view.deleted_rows
    if len(dead) * 8 < len(rows):
        return len(rows) - int(np.count_nonzero(arrays.find_sorted(rows, dead)[1]))
    return int(np.count_nonzero(~view.deleted[rows]))


def bm25_top_k(
    snapshot: Sequence[SegView],
    query: str,
    k: int,
    allowed: Sequence[np.ndarray | None] | None,
    config: FullTextConfig,
) -> list[tuple[int, int, float]]:
    """Top-k (view index, row, BM25 score) over the live rows of snapshot, best (highest score) first.
    allowed[i] is a bool mask of rows of snapshot[i] that pass filters (None = all); deleted rows never match.

    Ties are broken by insertion order (``rid``), so the result does not depend on the
    segment layout either.
    """
    if k <= 0:
        return []
    counts = Counter(analyze_query(query, config))
    if not counts:
        return []
    terms = list(counts)
    hashes = term_hashes(terms)  # once, not once per segment (a fork chain has one per commit)
    qtf = np.array([counts[t] for t in terms], dtype=np.float64)
    # collection-wide statistics over live rows
    N = 0
    total_len = 0
    df = np.zeros(len(terms), dtype=np.int64)
    per_view = []
    for view in snapshot:
        deadlines.check()
        idx = view.seg.fulltext(config)
        n_docs, tl = _live_stats(view, idx)
        N += n_docs
        total_len += tl
        posts = []
        for j, t in enumerate(terms):
            tid = idx.term_id(t, hashes[j])
            if tid < 0:
                posts.append(None)
                continue
            rows, tfs = idx.postings(tid)  # deleted rows still in: dropped when scored
            df[j] += _live_count(rows, view)
            posts.append((rows, tfs))
        per_view.append((idx, view.deleted, posts))
    if N == 0 or not df.any():
        return []
    avgdl = total_len / N if total_len else 1.0
    idf = np.log1p((N - df + 0.5) / (df + 0.5))
    k1, b = config.k1, config.b
    cand_v, cand_r, cand_s, cand_rid = [], [], [], []
    for vi, (idx, deleted, posts) in enumerate(per_view):
        if all(p is None for p in posts):
            continue
        deadlines.check()
        amask = allowed[vi] if allowed is not None else None
        arows = None  # the allowed rows, sorted, when the filter is narrower than the postings
        if amask is not None and sum(len(p[0]) for p in posts if p is not None) > len(amask) // 16:
            arows = np.flatnonzero(amask)
        parts = []
        for j, p in enumerate(posts):
            if p is None or not len(p[0]):
                continue
            rows, tf = p
            if arows is not None and len(arows) * 8 < len(rows):
                # a narrow filter (one memory scope among thousands) and a common term: the
                # allowed rows are looked up in the postings, O(allowed x log postings),
                # instead of every posting in the filter's mask (O(postings) per query, which
                # made a scope's recall grow with the collection); the same rows and tfs
                pos, hit = arrays.find_sorted(rows, arows)
                rows, tf = rows[pos[hit]], tf[pos[hit]]
            elif amask is not None:  # filtered first: a narrow filter then scores few rows
                keep = amask[rows]
                rows, tf = rows[keep], tf[keep]
            if deleted is not None and len(rows):  # then the deleted rows go
                keep = ~deleted[rows]
                rows, tf = rows[keep], tf[keep]
            if not len(rows):
                continue
            parts.append((j, rows.astype(np.int64), tf.astype(np.float64)))
        if not parts:
            continue
        if sum(len(r) for _, r, _ in parts) * 8 < idx.n:
            # few postings (a narrow filter, rare terms): score them where they are, not in
            # arrays the size of the segment (per query, those cost O(segment rows));
            # bincount adds each row's terms in the same order as the dense path below
            all_rows = np.concatenate([r for _, r, _ in parts])
            contrib = np.concatenate([qtf[j] * idf[j] * tf * (k1 + 1.0)
                                      / (tf + k1 * (1.0 - b + b * (idx.doc_len[r] / avgdl)))
                                      for j, r, tf in parts])
            rows, inv = np.unique(all_rows, return_inverse=True)
            s = np.bincount(inv, weights=contrib, minlength=len(rows))
        else:
            scores = np.zeros(idx.n, dtype=np.float64)
            touched = np.zeros(idx.n, dtype=bool)
            norm = k1 * (1.0 - b + b * (idx.doc_len / avgdl))
            for j, r, tf in parts:
                scores[r] += qtf[j] * idf[j] * tf * (k1 + 1.0) / (tf + norm[r])
                touched[r] = True
            rows = np.flatnonzero(touched)
            s = scores[rows]
        if len(rows) > k:
            # keep every row tied with the k-th score so rid tie-breaking stays exact
            kth = np.partition(s, len(s) - k)[len(s) - k]
            keep = s >= kth
            rows, s = rows[keep], s[keep]
        cand_v.append(np.full(len(rows), vi, dtype=np.int64))
        cand_r.append(rows)
        cand_s.append(s)
        cand_rid.append(snapshot[vi].seg.rids[rows])
    if not cand_v:
        return []
    V = np.concatenate(cand_v)
    R = np.concatenate(cand_r)
    S = np.concatenate(cand_s)
    RID = np.concatenate(cand_rid)
    order = np.lexsort((RID, -S))[:k]
    return [(int(V[i]), int(R[i]), float(S[i])) for i in order]
