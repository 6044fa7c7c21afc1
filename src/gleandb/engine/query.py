"""Reads of one collection below the API: which rows pass, in what order, and k-NN.

``gleandb.api.collection`` validates a request and shapes the result; what happens in
between is here, over one snapshot of a ``CollectionStore`` (a tuple of ``SegView``, so
a read sees one whole version while writes go on):

* filters become an allowed-row mask per segment (``CollectionStore.allowed_masks``:
  live rows only, so deleted and shadowed rows never pass);
* ``get``: the allowed rows in insertion order (``rid``), or by metadata keys, then
  offset / limit, then the columns asked for;
* ``knn``: each segment (memtable segments included) searched for its ``k`` best allowed
  rows, then one vectorised merge of every segment's candidates by distance;
* ``count`` and ``matching_rows`` (the rows a filtered delete removes).

Rows are named (view index, row) within a snapshot until they are hydrated.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa

from gleandb import deadlines
from gleandb.engine.store import CollectionStore, Hydrated, SegView
from gleandb.errors import InternalError
from gleandb.index.filters import parse_column_name
from gleandb.index.vector import raw_distances


def ids_set(ids: Sequence[str] | None) -> pa.Array | None:
    return None if ids is None else pa.array(list(ids), pa.string())

def select(snap: Sequence[SegView], filt, ids) -> list[tuple[int, np.ndarray]]:
    """(view index, rows) of the live rows that pass ``filt`` (and are among ``ids``): by ids
    through each segment's id index, so a get by k ids costs O(k), not O(rows)."""
    return CollectionStore.select_rows(snap, filt, ids)

def matching_rows(snap, filt, ids, limit) -> tuple[list[str], np.ndarray]:
    """The ids of the first ``limit`` live rows that pass (insertion order) and their
    (view index, row) picks, which a delete hands on so they are not looked up again."""
    picks = ordered_picks(snap, select(snap, filt, ids), None)
    if limit is not None:
        picks = picks[:limit]
    return CollectionStore.hydrate(snap, picks, set(), None).ids, picks

def ordered_picks(snap, selected, order_by) -> np.ndarray:
    if not selected:
        return np.zeros((0, 2), dtype=np.int64)
    vis = np.concatenate([np.full(len(r), vi, dtype=np.int64) for vi, r in selected])
    rows = np.concatenate([r for _vi, r in selected])
    if order_by is None:
        rids = np.concatenate([snap[vi].seg.rids[r] for vi, r in selected])
        if np.all(rids[:-1] <= rids[1:]):  # segments hold disjoint rid ranges in order: common
            return np.stack([vis, rows], axis=1)
        order = np.argsort(rids, kind="stable")
    else:
        order = _order_by(snap, selected, order_by)
    return np.stack([vis[order], rows[order]], axis=1)  # (n, 2): view index, row

def _order_by(snap, selected, order_by) -> np.ndarray:
    keys = [order_by] if isinstance(order_by, str) else list(order_by)
    if not keys or not all(isinstance(k, str) and k.lstrip("-") for k in keys):
        raise ValueError(f"Expected order_by to be a metadata key or a list of keys, got {order_by!r}")
    rids = np.concatenate([snap[vi].seg.rids[r] for vi, r in selected])
    sort_cols: list[np.ndarray] = [rids]  # last resort: insertion order
    for spec in reversed(keys):
        desc = spec.startswith("-")
        key = spec[1:] if desc else spec
        nums, strs, kind = [], [], []
        for vi, r in selected:
            table = snap[vi].seg.table
            num = np.full(len(r), np.nan)
            sv = np.full(len(r), "", dtype=object)
            k = np.full(len(r), 3, dtype=np.int8)  # 0 number, 1 string, 2 bool, 3 missing
            for col in table.column_names:
                parsed = parse_column_name(col)
                if parsed is None or parsed[1] != key or parsed[0] not in ("i", "f", "s", "b"):
                    continue
                vals = table.column(col).take(pa.array(r, pa.int64())).to_pylist()
                for j, x in enumerate(vals):
                    if x is None:
                        continue
                    if parsed[0] == "s":
                        sv[j], k[j] = x, 1
                    elif parsed[0] == "b":
                        num[j], k[j] = float(x), 2
                    else:
                        num[j], k[j] = float(x), 0
            nums.append(num)
            strs.append(sv)
            kind.append(k)
        num = np.concatenate(nums)
        sv = np.concatenate(strs)
        kd = np.concatenate(kind)
        # strings ranked among themselves, then everything as one numeric key
        uniq, srank = np.unique(sv.astype(str), return_inverse=True)
        value = np.where(kd == 1, srank.astype(np.float64), np.nan_to_num(num))
        if desc:
            value = -value
        sort_cols.append(value)
        sort_cols.append(kd)  # present values before missing ones, numbers first
    return np.lexsort(tuple(sort_cols))

def _require_query_ids(snap, masks, id_list) -> None:
    """chromadb refuses ``query(ids=...)`` naming an id that is not in the collection
    (unless a where/where_document filter is given): InternalError, here naming them."""
    wanted = list(dict.fromkeys(id_list))
    sizes = [view.seg.n if mask is None else int(np.count_nonzero(mask)) for view, mask in zip(snap, masks)]
    if sum(sizes) >= len(wanted):
        return
    picks = [(vi, int(r)) for vi, (view, mask) in enumerate(zip(snap, masks))
             for r in (range(view.seg.n) if mask is None else np.flatnonzero(mask))]
    found = set(CollectionStore.hydrate(snap, picks, set(), None).ids)
    missing = [i for i in wanted if i not in found]
    shown = ", ".join(repr(i) for i in missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
    raise InternalError(
        f"Error executing plan: Internal error: Error finding id: {len(missing)} of the query's ids "
        f"are not in the collection: {shown}"
    )

def _nonfinite_distances(snap, queries, bad, picks_out, dists_out, space) -> None:
    """Distances of the picked rows to each query that holds NaN or infinities."""
    for qi_ in np.flatnonzero(bad).tolist():
        picks = picks_out[qi_]
        if not picks:
            continue
        vecs = np.vstack([snap[vi].seg.embeddings(np.array([row])) for vi, row in picks])
        dists_out[qi_] = [float(x) for x in raw_distances(vecs, queries[qi_], space)]



def count(store: CollectionStore, filt) -> int:
    """Live rows, or those that pass ``filt``."""
    if filt is None:
        return store.count()
    snap = store.snapshot()
    return sum(len(r) for _vi, r in select(snap, filt, None))


def get(store: CollectionStore, filt, ids, order_by, offset: int | None, limit: int | None,
        fields: set[str]) -> Hydrated:
    """Rows by ids and/or filter, in insertion order (or ``order_by`` metadata keys, '-' for
    descending), after ``offset``, at most ``limit``, with the columns ``fields``."""
    snap = store.snapshot()
    picks = ordered_picks(snap, select(snap, filt, ids), order_by)
    picks = picks[offset:] if offset else picks
    if limit is not None:
        picks = picks[:limit]
    return CollectionStore.hydrate(snap, picks, fields, store.dimension)


def knn(store: CollectionStore, queries: np.ndarray, k: int, filt, id_list,
        fields: set[str]) -> tuple[list[Hydrated], list[list[float]]]:
    """The ``k`` nearest allowed rows of each query: (rows with the columns ``fields``,
    distances) per query, nearest first."""
    dim = store.dimension
    nq = queries.shape[0]
    if dim is None:
        return [Hydrated(embeddings=np.zeros((0, 0), np.float32)) for _ in range(nq)], [[] for _ in range(nq)]
    snap = store.snapshot()
    ids_set_ = ids_set(id_list)
    # chromadb answers a query holding NaN or infinities (its distances are NaN/inf);
    # the index cannot search with one, so such a query takes the rows a zero vector
    # finds, and its distances are computed from its real values afterwards
    bad = ~np.isfinite(queries).all(axis=1)
    search_q = queries
    if bad.any():
        search_q = queries.copy()
        search_q[bad] = 0.0
    cand_d, cand_v, cand_r = [], [], []
    masks = CollectionStore.allowed_masks(snap, filt, ids_set_)
    if id_list is not None and filt is None:
        _require_query_ids(snap, masks, id_list)
    for vi, (view, mask) in enumerate(zip(snap, masks)):
        if mask is not None and not mask.any():
            continue
        deadlines.check()
        d, r = view.seg.search(search_q, k, mask, store.params.ef_search)
        cand_d.append(d)
        cand_r.append(r)
        cand_v.append(np.full(r.shape, vi, dtype=np.int64))
    dists_out, picks_out = [], []
    if cand_d:
        D = np.concatenate(cand_d, axis=1)
        R = np.concatenate(cand_r, axis=1)
        V = np.concatenate(cand_v, axis=1)
        D = np.where(R < 0, np.inf, D)
        order = np.argsort(D, axis=1, kind="stable")[:, :k]
        for qi_ in range(nq):
            o = order[qi_]
            o = o[R[qi_, o] >= 0]
            dists_out.append([float(x) for x in D[qi_, o]])
            picks_out.append(list(zip(V[qi_, o].tolist(), R[qi_, o].tolist())))
    else:
        dists_out = [[] for _ in range(nq)]
        picks_out = [[] for _ in range(nq)]
    if bad.any():
        _nonfinite_distances(snap, queries, bad, picks_out, dists_out, store.params.space)
    # every query's rows count against a response budget before any is built
    CollectionStore.charge_budget(snap, picks_out, fields, dim)
    hyd = [CollectionStore.hydrate(snap, p, fields, dim, charged=True) for p in picks_out]
    return hyd, dists_out


def metadata_columns(store: CollectionStore) -> list[tuple[str, str]]:
    """(type tag, metadata key) of every metadata column in the current snapshot's segments."""
    out = []
    for view in store.snapshot():
        for col in view.seg.table.column_names:
            parsed = parse_column_name(col)
            if parsed:
                out.append((parsed[0], parsed[1]))
    return out
