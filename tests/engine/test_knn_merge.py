"""The one k-NN merge (``engine.query.nearest`` / ``merge_top_k``) equals brute force.

Random writes (adds, updates, upserts, deletes, re-adds), split into segments at random
(a tiny memtable, flushes, compaction) and searched under random masks (a metadata
filter, an ids restriction). Vectors are small integers, so distances are exact in
float32 and ties are common: the answer must be exactly brute force over the live rows,
ordered by distance, then insertion rank (an update keeps a row's rank; delete and
re-add moves it to the end), whatever the segment split. Segments stay below
``index_min_rows``, so every search is exact and the comparison can be exact too.

Both users of the merge are checked: ``engine.query.knn`` (``Collection.query``) and
``retrieval.rankers.dense_top_k`` (the Search API and ``retrieve``).
"""

import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gleandb
from gleandb.engine import query
from gleandb.engine.store import CollectionStore
from gleandb.index.filters import compile_filter
from gleandb.retrieval.rankers import dense_top_k

D = 3
IDS = [f"id{i}" for i in range(24)]
vec = st.lists(st.integers(-2, 2), min_size=D, max_size=D)
op = st.one_of(
    st.tuples(st.just("add"), st.lists(st.tuples(st.sampled_from(IDS), vec, st.integers(0, 2)), min_size=1,
                                       max_size=8)),
    st.tuples(st.just("upsert"), st.lists(st.tuples(st.sampled_from(IDS), vec, st.integers(0, 2)), min_size=1,
                                          max_size=4)),
    st.tuples(st.just("update"), st.lists(st.tuples(st.sampled_from(IDS), vec, st.integers(0, 2)), min_size=1,
                                          max_size=4)),
    st.tuples(st.just("delete"), st.lists(st.sampled_from(IDS), min_size=1, max_size=4)),
    st.tuples(st.just("flush"), st.none()),
)


def _apply(client, col, model: dict, kind: str, arg) -> None:
    """One write, to the collection and to the model (an insertion-ordered dict)."""
    if kind == "flush":
        client.flush()
        return
    if kind == "delete":
        col.delete(ids=list(dict.fromkeys(arg)))
        for i in arg:
            model.pop(i, None)
        return
    rows = list({i: (i, v, g) for i, v, g in arg}.values())  # one row per id, the last wins
    if kind == "add":
        rows = [r for r in rows if r[0] not in model]  # add skips existing ids
    elif kind == "update":
        rows = [r for r in rows if r[0] in model]  # update of a missing id is an error
    if not rows:
        return
    getattr(col, kind)(ids=[r[0] for r in rows], embeddings=[[float(x) for x in r[1]] for r in rows],
                       metadatas=[{"g": r[2]} for r in rows])
    for i, v, g in rows:
        model[i] = (np.asarray(v, np.float64), g)  # an existing key keeps its place: its rank


def _brute_force(model: dict, q: np.ndarray, k: int, space: str, g, ids) -> list[tuple[str, float]]:
    rows = []
    for rank, (i, (v, gi)) in enumerate(model.items()):
        if (g is None or gi == g) and (ids is None or i in ids):
            d = float(((v - q) ** 2).sum()) if space == "l2" else 1.0 - float(v @ q)
            rows.append((d, rank, i))
    return [(i, d) for d, _rank, i in sorted(rows)[:k]]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    space=st.sampled_from(["l2", "ip"]),
    memtable=st.integers(2, 9),
    ops=st.lists(op, min_size=1, max_size=14),
    queries=st.lists(vec, min_size=1, max_size=3),
    k=st.integers(1, 26),
    g=st.one_of(st.none(), st.integers(0, 2)),
    id_pick=st.one_of(st.none(), st.lists(st.sampled_from(IDS), min_size=1, max_size=10)),
)
def test_merged_knn_equals_brute_force_over_live_rows(space, memtable, ops, queries, k, g, id_pick):
    with tempfile.TemporaryDirectory() as tmp:
        client = gleandb.PersistentClient(tmp, settings=gleandb.Settings(
            memtable_max_rows=memtable, index_min_rows=10_000, compaction_min_segments=3))
        try:
            col = client.create_collection("merge", configuration={"hnsw": {"space": space}},
                                           embedding_function=None)
            model: dict = {}
            for kind, arg in ops:
                _apply(client, col, model, kind, arg)
            store = col._store
            if store.dimension is None:
                return
            # an ids restriction without a filter must name existing ids (chromadb's rule)
            ids = id_pick if id_pick is None or g is not None else [i for i in id_pick if i in model] or None
            filt = compile_filter({"g": g}, None) if g is not None else None
            qs = np.asarray(queries, dtype=np.float32)
            hyd, dists = query.knn(store, qs, k, filt, ids, set())
            snap = store.snapshot()
            masks = CollectionStore.allowed_masks(snap, filt, ids)
            ranked = dense_top_k(store, snap, qs, k, masks)
            for qi, q in enumerate(qs):
                want = _brute_force(model, q.astype(np.float64), k, space, g, None if ids is None else set(ids))
                assert hyd[qi].ids == [i for i, _d in want], (len(snap), qi)
                np.testing.assert_allclose(dists[qi], [d for _i, d in want], atol=1e-5)
                got = [(snap[vi].seg.table.column("id")[row].as_py(), d) for vi, row, d in ranked[qi]]
                assert [i for i, _d in got] == [i for i, _d in want]
                np.testing.assert_allclose([d for _i, d in got], [d for _i, d in want], atol=1e-5)
        finally:
            client.close()


@pytest.mark.parametrize("m", [40, 3000])  # a full sort, and argpartition first
@pytest.mark.parametrize("k", [1, 5, 60])
def test_merge_top_k_breaks_ties_by_rid(m, k):
    """Candidates from three views with few distinct distances (ties everywhere, also at
    the k-th one): exactly the (distance, rid) order, whichever candidates a partition
    happened to keep; missing candidates (inf) never come before real ones."""
    rng = np.random.default_rng(m + k)
    nq = 4
    view_rids = [rng.permutation(m) * 3 + v for v in range(3)]  # distinct rids across views
    views = rng.integers(0, 3, (nq, m))
    rows = np.stack([rng.permutation(m) for _ in range(nq)])
    dists = rng.integers(0, 6, (nq, m)).astype(np.float32)
    dists[0] = np.arange(m, dtype=np.float32)[::-1]  # one query without ties
    dists[1, : m // 2] = np.inf  # half of them missing
    order = query.merge_top_k(dists, views, rows, view_rids, k)
    assert order.shape == (nq, min(k, m))
    for q in range(nq):
        key = [(float(dists[q, j]), int(view_rids[views[q, j]][rows[q, j]]) if np.isfinite(dists[q, j]) else 0, j)
               for j in range(m)]
        finite = sorted(t for t in key if np.isfinite(t[0]))
        want = [t[2] for t in finite][:k]
        assert order[q, : len(want)].tolist() == want
        assert np.isinf(dists[q, order[q, len(want):]]).all()


def test_merge_top_k_with_fewer_candidates_than_k():
    dists = np.array([[0.3, 0.1, 0.3, np.inf]], dtype=np.float32)
    order = query.merge_top_k(dists, np.zeros((1, 4), np.int64), np.array([[0, 1, 2, 3]]), [np.array([9, 8, 7, 6])], 10)
    assert order.tolist() == [[1, 2, 0, 3]]  # 0.3 at rid 7 before 0.3 at rid 9


def test_a_view_cut_at_a_tied_kth_distance_is_asked_again(tmp_path):
    """A view whose rows are not in rid order: one upsert batch of a new id then an
    existing one (which keeps its old rank), kept as its own memtable segment. Asked for
    k rows it cuts among equals by row, so the merge must ask it for more."""
    client = gleandb.PersistentClient(str(tmp_path / "s"), settings=gleandb.Settings(memtable_max_rows=1000))
    try:
        col = client.create_collection("ties", embedding_function=None)
        far = [f"far{i}" for i in range(6)]
        col.add(ids=["a", *far], embeddings=[[9.0, 0.0]] + [[5.0 + i, 0.0] for i in range(6)])
        col.upsert(ids=["c", "a"], embeddings=[[1.0, 0.0], [1.0, 0.0]])  # c: a new rank; a keeps rank 0
        views = col._store.snapshot()
        assert [v.seg.rids.tolist() for v in views][-1] == [7, 0], "the view under test is not out of rid order"
        got = col.query(query_embeddings=[[1.0, 0.0]], n_results=1, include=[])["ids"][0]
        assert got == ["a"]
        res = col.search(gleandb.Search().rank(gleandb.Knn(query=[1.0, 0.0])).limit(1))  # dense_top_k
        assert res["ids"][0] == ["a"]
    finally:
        client.close()


def test_views_are_searched_again_only_for_a_tie(tmp_path, monkeypatch):
    """Without equal distances every view is searched once, even when one view holds all
    of the k nearest (its last row is then the k-th); with a tie at the k-th distance in
    a view out of rid order, that view is searched again."""
    from gleandb.engine.segment import Segment

    calls = []
    search = Segment.search
    monkeypatch.setattr(Segment, "search", lambda self, *a, **kw: calls.append(self.name) or search(self, *a, **kw))
    client = gleandb.PersistentClient(str(tmp_path / "s"), settings=gleandb.Settings(memtable_max_rows=1000))
    try:
        col = client.create_collection("ties", embedding_function=None)
        rng = np.random.default_rng(5)
        col.add(ids=[f"r{i}" for i in range(40)], embeddings=rng.standard_normal((40, 4)).astype(np.float32))
        views = len(col._store.snapshot())
        col.query(query_embeddings=rng.standard_normal((3, 4)).astype(np.float32), n_results=5, include=[])
        assert len(calls) == views
        calls.clear()
        col.upsert(ids=["new", "r0"], embeddings=[[9.0, 9.0, 9.0, 9.0]] * 2)  # one view, rows out of rid order
        views = len(col._store.snapshot())
        assert col.query(query_embeddings=[[9.0] * 4], n_results=1, include=[])["ids"] == [["r0"]]
        assert len(calls) > views
    finally:
        client.close()
