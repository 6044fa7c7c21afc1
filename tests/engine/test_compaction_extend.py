"""Compaction that extends the largest segment's graph instead of rebuilding it (issue
16): the result must hold exactly what a rebuilding compaction holds, and persisted
segments are memory-mapped on open and after they are written."""

from __future__ import annotations

import os

import numpy as np
import pytest

import gleandb
from gleandb.index.vector import exact_search


def _settings():
    # no automatic compaction: the test calls compact() itself
    return gleandb.Settings(memtable_max_rows=100_000, index_min_rows=100, compaction_min_segments=100)


def _vecs(n, d=16, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def _fill(client, space):
    """One big indexed segment, then small ones: an update and a delete that fall in
    the small segments only (the big one keeps all its rows), and new rows."""
    col = client.create_collection("col", metadata={"hnsw:space": space})
    X = _vecs(3000)
    col.add(ids=[f"a{i}" for i in range(2500)], embeddings=X[:2500],
            documents=[f"doc {i}" for i in range(2500)], metadatas=[{"i": i} for i in range(2500)])
    client.flush()
    for lo, hi in ((2500, 2700), (2700, 3000)):
        col.add(ids=[f"a{i}" for i in range(lo, hi)], embeddings=X[lo:hi],
                documents=[f"doc {i}" for i in range(lo, hi)], metadatas=[{"i": i, "late": True} for i in range(lo, hi)])
        client.flush()
    col.update(ids=["a2600", "a2800"], embeddings=_vecs(2, seed=9), documents=["changed", "changed too"])
    col.delete(ids=["a2650", "a2999"])
    client.flush()
    return col, X


def _contents(col):
    got = col.get(include=["embeddings", "documents", "metadatas"])
    order = np.argsort(got["ids"])
    return ([got["ids"][i] for i in order], got["embeddings"][order],
            [got["documents"][i] for i in order], [got["metadatas"][i] for i in order])


@pytest.mark.parametrize("space,small_chunks", [("cosine", False), ("l2", False), ("cosine", True)])
def test_extended_compaction_equals_rebuilt_compaction(tmp_path, monkeypatch, space, small_chunks):
    if small_chunks:  # the new rows stream into the graph in many chunks, normalised in blocks
        from gleandb.engine import segment
        from gleandb.index import vector
        monkeypatch.setattr(segment, "_CHUNK", 64)
        monkeypatch.setattr(vector, "_ADD_CHUNK", 100)
        monkeypatch.setattr(vector, "_NORM_BLOCK", 7)
    gleandb.ClientAPI.clear_system_cache()
    results = {}
    for extend in (True, False):
        path = str(tmp_path / f"db-{extend}")
        client = gleandb.PersistentClient(path, settings=_settings())
        col, X = _fill(client, space)
        store = col._store
        store.params.compaction_extend = extend
        before = _contents(col)
        client.compact()
        client.flush()
        assert len(store.snapshot()) == 1
        assert store.stats["compactions_extended"] == (1 if extend else 0)
        after = _contents(col)
        assert after[0] == before[0] and after[2] == before[2] and after[3] == before[3]
        np.testing.assert_allclose(after[1], before[1], rtol=1e-5, atol=1e-6)
        # the graph answers like exact search over the live rows
        q = _vecs(30, seed=5)
        res = col.query(query_embeddings=q, n_results=10, include=["distances"])
        ids, emb = after[0], after[1]
        _, truth = exact_search(emb, q, 10, space)
        hits = sum(len(set(r) & {ids[j] for j in t}) for r, t in zip(res["ids"], truth))
        assert hits >= 0.99 * 300
        results[extend] = (after, res["ids"])
        client.close()
        # reopened from its files (memory-mapped), the segment answers the same
        gleandb.ClientAPI.clear_system_cache()
        client = gleandb.PersistentClient(path, settings=_settings())
        col = client.get_collection("col")
        again = _contents(col)
        assert again[0] == after[0] and again[3] == after[3]
        np.testing.assert_allclose(again[1], after[1], rtol=1e-6, atol=1e-7)
        assert col.query(query_embeddings=q, n_results=10, include=["distances"])["ids"] == res["ids"]
        client.close()
        gleandb.ClientAPI.clear_system_cache()
    ext, reb = results[True][0], results[False][0]
    assert ext[0] == reb[0] and ext[2] == reb[2] and ext[3] == reb[3]
    np.testing.assert_allclose(ext[1], reb[1], rtol=1e-5, atol=1e-6)


def test_largest_segment_with_deleted_rows_is_rebuilt(tmp_path):
    gleandb.ClientAPI.clear_system_cache()
    client = gleandb.PersistentClient(str(tmp_path), settings=_settings())
    col, _ = _fill(client, "l2")
    col.delete(ids=["a7"])  # a row of the big segment: its row numbers cannot be kept
    client.flush()
    before = _contents(col)
    client.compact()
    client.flush()
    assert col._store.stats["compactions_extended"] == 0
    assert col._store.stats["compactions"] == 1
    after = _contents(col)
    assert after[0] == before[0] and "a7" not in after[0]
    np.testing.assert_allclose(after[1], before[1], rtol=1e-6)
    client.close()


def test_persisted_segments_are_memory_mapped(tmp_path):
    if not os.path.exists("/proc/self/maps"):
        pytest.skip("needs /proc/self/maps")
    gleandb.ClientAPI.clear_system_cache()
    client = gleandb.PersistentClient(str(tmp_path), settings=_settings())
    col = client.create_collection("mapped")
    col.add(ids=[str(i) for i in range(500)], embeddings=_vecs(500))
    client.flush()
    with open("/proc/self/maps") as f:
        mapped = [line.split()[-1] for line in f if line.rstrip().endswith("vectors.faiss")]
    seg = col._store.snapshot()[0].seg
    assert seg.index is not None
    assert any(str(tmp_path) in p for p in mapped)
    client.close()


def test_index_written_and_mapped_before_the_rest_of_the_segment(tmp_path, monkeypatch):
    """with_index_on_disk: the new graph's private copy is replaced by the mapped file at
    once, and writing the segment afterwards does not write that file again."""
    import faiss

    from gleandb.engine.segment import Segment
    from gleandb.engine.store import StoreParams
    from gleandb.index.vector import VectorIndex
    from gleandb.storage.local import LocalStorage

    storage = LocalStorage(str(tmp_path / "files"))
    X = _vecs(3000)
    seg = Segment.from_records("s1", "cosine", [f"a{i}" for i in range(3000)], np.arange(3000), X,
                               [f"doc {i}" for i in range(3000)], [{"i": i} for i in range(3000)], [None] * 3000)
    seg = seg.with_index(VectorIndex.build(seg.vectors(), "cosine"))
    assert faiss.downcast_index(seg.index._index.storage).codes.is_owned
    puts = []
    orig = LocalStorage.put_from_file
    monkeypatch.setattr(LocalStorage, "put_from_file", lambda self, key, write: (puts.append(key), orig(self, key, write)))
    mapped = seg.with_index_on_disk(storage, "segments/s1/")
    assert puts == ["segments/s1/vectors.faiss"]
    assert not faiss.downcast_index(mapped.index._index.storage).codes.is_owned  # the file's pages
    np.testing.assert_array_equal(mapped.embeddings(np.arange(3000)), seg.embeddings(np.arange(3000)))
    mapped.build_text_indexes(StoreParams().fulltext)
    mapped.write(storage, "segments/s1/")
    assert puts == ["segments/s1/vectors.faiss"]  # not written twice
    again = Segment.read(storage, "segments/s1/", "s1", "cosine", True, 16)
    assert again.n == 3000 and again.ids_list() == seg.ids_list()
    d1, r1 = again.search(X[:5], 3, None, 64)
    d2, r2 = seg.search(X[:5], 3, None, 64)
    assert r1.tolist() == r2.tolist()
