"""Engine behaviour beyond chromadb's API: flush, compaction, reclaim, recovery, order."""

import os
import threading

import numpy as np
import pytest

import gleandb
from gleandb.engine import store as store_mod


def small_settings(**kw):
    base = dict(memtable_max_rows=50, index_min_rows=40, compaction_min_segments=3)
    base.update(kw)
    return gleandb.Settings(**base)


def _vecs(n, d=8, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def _dir_bytes(path, sub="collections"):
    total = 0
    for root, _dirs, files in os.walk(os.path.join(path, sub)):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def _full(col):
    return col.get(include=["embeddings", "documents", "metadatas"])


def _same(a, b):
    assert a["ids"] == b["ids"]
    assert a["documents"] == b["documents"]
    assert a["metadatas"] == b["metadatas"]
    np.testing.assert_allclose(a["embeddings"], b["embeddings"], rtol=1e-5, atol=1e-6)


@pytest.fixture
def client(tmp_path):
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.PersistentClient(str(tmp_path), settings=small_settings())
    yield c
    c.close()


@pytest.mark.parametrize("space", ["l2", "cosine", "ip"])
def test_segments_memtable_and_reopen_agree(tmp_path, space):
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.PersistentClient(str(tmp_path), settings=small_settings())
    col = c.create_collection("col1", metadata={"hnsw:space": space})
    X = _vecs(230)
    for i in range(0, 230, 23):
        col.add(
            ids=[f"r{j}" for j in range(i, i + 23)],
            embeddings=X[i : i + 23],
            documents=[f"doc {j}" for j in range(i, i + 23)],
            metadatas=[{"j": j, "even": j % 2 == 0} for j in range(i, i + 23)],
        )
    col.update(ids=[f"r{j}" for j in range(0, 230, 7)], metadatas=[{"u": 1}] * 33)
    col.delete(ids=[f"r{j}" for j in range(0, 230, 5)])
    before = _full(col)
    q_before = col.query(query_embeddings=X[:5], n_results=7, where={"even": True})
    c.flush()
    _same(before, _full(col))
    c.close()
    c = gleandb.PersistentClient(str(tmp_path), settings=small_settings())
    col = c.get_collection("col1")
    _same(before, _full(col))
    q_after = col.query(query_embeddings=X[:5], n_results=7, where={"even": True})
    assert q_after["ids"] == q_before["ids"]
    np.testing.assert_allclose(q_after["distances"], q_before["distances"], rtol=1e-4, atol=1e-5)
    c.close()


def test_update_keeps_insertion_position(client):
    col = client.create_collection("order")
    col.add(ids=["a", "b", "c"], embeddings=_vecs(3))
    col.upsert(ids=["a"], embeddings=_vecs(1, seed=3))
    col.update(ids=["b"], documents=["new"], embeddings=_vecs(1, seed=4))
    client.flush()
    assert col.get()["ids"] == ["a", "b", "c"]


def test_delete_then_compact_reclaims_disk(tmp_path):
    gleandb.ClientAPI.clear_system_cache()
    # no version history kept: compaction's old segments go as soon as it publishes
    settings = small_settings(
        memtable_max_rows=500, index_min_rows=100, version_retention_count=1, version_retention_seconds=0
    )
    c = gleandb.PersistentClient(str(tmp_path), settings=settings)
    col = c.create_collection("big")
    n = 3000
    X = _vecs(n, d=32)
    col.add(ids=[str(i) for i in range(n)], embeddings=X, documents=["x" * 200] * n)
    c.flush()
    full = _dir_bytes(str(tmp_path), "")  # segments live in a shared pool beside collections/
    col.delete(ids=[str(i) for i in range(n) if i % 10])
    assert col.count() == 300
    c.compact()
    after = _dir_bytes(str(tmp_path), "")
    assert after < 0.2 * full, (full, after)
    assert col.get(ids=["0", "10", "11"])["ids"] == ["0", "10"]
    got = col.query(query_embeddings=X[10:11], n_results=1, include=["distances"])
    assert got["ids"] == [["10"]]
    c.close()


def test_hundred_thousand_rows_in_one_add(client):
    col = client.create_collection("huge")
    n = 100_000
    X = _vecs(n, d=4)
    col.add(ids=[f"i{k}" for k in range(n)], embeddings=X)
    assert col.count() == n
    assert col.get(ids=["i99999"], include=["embeddings"])["embeddings"].shape == (1, 4)


def test_count_with_filters_and_order_by(client):
    col = client.create_collection("ext")
    col.add(
        ids=["a", "b", "c", "d", "e"],
        embeddings=_vecs(5),
        metadatas=[{"p": 3}, {"p": 1.5}, {"q": 1}, {"p": 10}, {"p": "x"}],
        documents=["red", "blue", "red fish", None, "green"],
    )
    assert col.count(where={"p": {"$gte": 2}}) == 2
    assert col.count(where_document={"$contains": "red"}) == 2
    assert col.count(where={"p": {"$ne": 3}}) == 4
    assert col.get(order_by="p")["ids"] == ["b", "a", "d", "e", "c"]
    assert col.get(order_by="-p")["ids"][:3] == ["d", "a", "b"]
    assert col.get(order_by="p", limit=2, offset=1)["ids"] == ["a", "d"]


def test_reads_during_background_flush_see_whole_versions(tmp_path):
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.PersistentClient(str(tmp_path), settings=small_settings(memtable_max_rows=200, index_min_rows=100))
    col = c.create_collection("busy")
    stop = threading.Event()
    errors = []

    def reader():
        while not stop.is_set():
            n = col.count()
            got = col.get(include=[])
            if n % 50 or len(got["ids"]) % 50:  # writes come in batches of 50
                errors.append((n, len(got["ids"])))

    t = threading.Thread(target=reader)
    t.start()
    X = _vecs(2000)
    for i in range(0, 2000, 50):
        col.add(ids=[str(j) for j in range(i, i + 50)], embeddings=X[i : i + 50])
    stop.set()
    t.join()
    c.flush()
    assert not errors
    assert col.count() == 2000
    c.close()


def test_failed_background_persist_loses_nothing(tmp_path, monkeypatch):
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.PersistentClient(str(tmp_path), settings=small_settings())
    col = c.create_collection("fragile")
    col.add(ids=["a", "b"], embeddings=_vecs(2))
    c.flush()

    def boom(*a, **k):
        raise OSError("disk on fire")

    monkeypatch.setattr(store_mod.Segment, "write", boom)
    col.add(ids=[str(i) for i in range(120)], embeddings=_vecs(120, seed=5))
    c.flush()
    assert col.count() == 122
    c.close()
    monkeypatch.undo()
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.PersistentClient(str(tmp_path), settings=small_settings())
    assert c.get_collection("fragile").count() == 122
    c.close()


def test_orphan_segment_files_are_removed_on_open(tmp_path):
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.PersistentClient(str(tmp_path), settings=small_settings())
    col = c.create_collection("gcx")
    col.add(ids=["a"], embeddings=_vecs(1))
    cid = str(col.id)
    c.flush()
    c.close()
    orphan = tmp_path / "collections" / cid / "segments" / "s-orphan"
    orphan.mkdir(parents=True)
    (orphan / "records.arrow").write_bytes(b"junk")
    c = gleandb.PersistentClient(str(tmp_path), settings=small_settings())
    assert c.get_collection("gcx").count() == 1
    assert not orphan.exists()
    c.close()


def test_delete_collection_removes_its_files(client, tmp_path):
    col = client.create_collection("tmp")
    col.add(ids=["a"], embeddings=_vecs(1))
    client.flush()
    cid = str(col.id)
    assert (tmp_path / "collections" / cid).exists()
    client.delete_collection("tmp")
    assert not (tmp_path / "collections" / cid).exists()
    with pytest.raises(gleandb.errors.NotFoundError):
        client.get_collection("tmp")


def test_data_of_a_collection_missing_from_the_catalog_is_removed(tmp_path):
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.PersistentClient(str(tmp_path), settings=small_settings())
    c.create_collection("keep").add(ids=["a"], embeddings=_vecs(1))
    c.flush()
    c.close()
    stray = tmp_path / "collections" / "11111111-2222-3333-4444-555555555555" / "wal"
    stray.mkdir(parents=True)
    (stray / "x.log").write_bytes(b"")
    c = gleandb.PersistentClient(str(tmp_path), settings=small_settings())
    assert c.get_collection("keep").count() == 1
    assert not stray.parent.exists()
    c.close()
