"""``gleandb.engine.query``: reads below the API, checked against brute force over the live rows.

The store is spread over flushed segments, an update that shadows older rows and an
unflushed memtable, so the k-NN merge, the live masks and the insertion order all matter.
"""

import numpy as np
import pytest

import gleandb
from gleandb.engine import query
from gleandb.index.filters import compile_filter

D = 8


@pytest.fixture
def col(tmp_path):
    # segments below index_min_rows are searched exactly: the answer is exact, not approximate
    c = gleandb.PersistentClient(str(tmp_path / "s"), settings=gleandb.Settings(memtable_max_rows=50,
                                                                              index_min_rows=10_000))
    col = c.create_collection("rows", configuration={"hnsw": {"space": "l2"}})
    rng = np.random.default_rng(7)
    n = 160
    col.add(ids=[f"r{i}" for i in range(n)], embeddings=rng.standard_normal((n, D)).astype(np.float32),
            metadatas=[{"g": i % 4, "k": int(rng.integers(0, 1000))} for i in range(n)])
    col.flush()
    # shadow some flushed rows with new vectors and metadata, delete others, leave a memtable
    upd = [f"r{i}" for i in range(0, n, 7)]
    col.update(ids=upd, embeddings=rng.standard_normal((len(upd), D)).astype(np.float32),
               metadatas=[{"g": 9, "k": None} for _ in upd])  # None deletes the key
    col.delete(ids=[f"r{i}" for i in range(3, n, 11)])
    col.add(ids=[f"m{i}" for i in range(20)], embeddings=rng.standard_normal((20, D)).astype(np.float32),
            metadatas=[{"g": i % 4, "k": i} for i in range(20)])
    yield col
    c.close()


def _live(col):
    """Every live row (id, embedding, metadata) read through the public API, insertion order."""
    r = col.get(include=["embeddings", "metadatas"])
    return r["ids"], np.asarray(r["embeddings"], dtype=np.float32), r["metadatas"]


def test_the_store_under_test_has_segments_and_a_memtable(col):
    states = {v.state for v in col._store.snapshot()}
    assert len(col._store.snapshot()) >= 2 and len(states) >= 2, states


@pytest.mark.parametrize("where", [None, {"g": 9}, {"g": {"$in": [1, 2]}}])
def test_knn_equals_brute_force_over_live_rows(col, where):
    ids, emb, metas = _live(col)
    keep = [i for i, m in enumerate(metas) if where is None or
            (m["g"] == where["g"] if not isinstance(where["g"], dict) else m["g"] in where["g"]["$in"])]
    queries = np.random.default_rng(1).standard_normal((5, D)).astype(np.float32)
    k = 10
    hyd, dists = query.knn(col._store, queries, k, compile_filter(where, None), None, {"embeddings"})
    for qi, q in enumerate(queries):
        d = ((emb[keep] - q) ** 2).sum(axis=1)
        want = [ids[keep[j]] for j in np.argsort(d, kind="stable")[:k]]
        assert hyd[qi].ids == want
        np.testing.assert_allclose(dists[qi], np.sort(d)[:k], rtol=1e-4, atol=1e-4)
        # the hydrated vectors are the live (updated) ones, not a shadowed version
        got = dict(zip(ids, emb))
        for rid, vec in zip(hyd[qi].ids, hyd[qi].embeddings):
            np.testing.assert_array_equal(vec, got[rid])


def test_get_count_and_matching_rows_follow_insertion_order_and_filters(col):
    ids, _emb, metas = _live(col)
    filt = compile_filter({"g": {"$in": [0, 9]}}, None)
    want = [i for i, m in zip(ids, metas) if m["g"] in (0, 9)]
    assert query.get(col._store, filt, None, None, 2, 5, set()).ids == want[2:7]
    assert query.count(col._store, filt) == len(want)
    assert query.count(col._store, None) == len(ids)
    snap = col._store.snapshot()
    got, picks = query.matching_rows(snap, filt, None, 3)
    assert got == want[:3]
    assert [snap[vi].seg.ids_list()[row] for vi, row in picks.tolist()] == got  # the rows of those ids
    # ids narrow the filter; an id not in the collection is simply absent
    asked = [want[-1], "r3", "nope", want[0]]
    assert query.get(col._store, filt, asked, None, None, None, set()).ids == [want[0], want[-1]]


def test_get_order_by_a_metadata_key(col):
    ids, _emb, metas = _live(col)
    got = query.get(col._store, None, None, "-k", None, None, {"metadatas"})
    ks = [m.get("k") for m in got.metadatas]
    present = [k for k in ks if k is not None]
    assert present == sorted(present, reverse=True)
    assert ks[: len(present)] == present and len(present) < len(ks)  # rows without the key come last
    assert sorted(got.ids) == sorted(ids)
