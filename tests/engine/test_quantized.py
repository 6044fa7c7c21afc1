"""A collection configured with ``vector_index.quantization = "sq8"`` (issue 16): its
segments hold 8-bit codes plus full-precision vectors on disk, queries re-score
exactly, and everything reads back after a reopen."""

from __future__ import annotations

import os

import numpy as np
import pytest

import gleandb
from gleandb.index.rowfile import RowFile
from gleandb.index.vector import exact_search


def _settings():
    return gleandb.Settings(memtable_max_rows=100_000, index_min_rows=100, compaction_min_segments=100)


def test_quantized_collection_round_trip(tmp_path):
    gleandb.ClientAPI.clear_system_cache()
    client = gleandb.PersistentClient(str(tmp_path), settings=_settings())
    col = client.create_collection("quant", metadata={"hnsw:space": "cosine"},
                                   configuration={"vector_index": {"quantization": "sq8"}})
    assert col.configuration_json["vector_index"] == {"quantization": "sq8"}
    X = np.random.default_rng(0).standard_normal((2600, 24)).astype(np.float32) * 3
    col.add(ids=[f"r{i}" for i in range(2600)], embeddings=X)
    client.flush()
    seg = col._store.snapshot()[0].seg
    assert seg.index is not None and seg.index.quantization == "sq8"
    files = {f for _, _, fs in os.walk(tmp_path) for f in fs}
    assert {"vectors.faiss", "vectors.f32"} <= files
    q = np.random.default_rng(1).standard_normal((20, 24)).astype(np.float32)
    res = col.query(query_embeddings=q, n_results=5, include=["distances", "embeddings"])
    dists, truth = exact_search(X, q, 5, "cosine")
    assert sum(len({f"r{j}" for j in t} & set(r)) for t, r in zip(truth, res["ids"])) >= 0.99 * 100
    for qi in range(20):
        rows = [int(i[1:]) for i in res["ids"][qi]]
        np.testing.assert_allclose(res["embeddings"][qi], X[rows], rtol=1e-5, atol=1e-5)  # as written
        ref = exact_search(X[rows], q[qi], 5, "cosine")[0][0]
        np.testing.assert_allclose(sorted(res["distances"][qi]), ref, rtol=1e-5, atol=1e-6)
    client.close()
    gleandb.ClientAPI.clear_system_cache()
    client = gleandb.PersistentClient(str(tmp_path), settings=_settings())
    col = client.get_collection("quant")
    index = col._store.snapshot()[0].seg.index
    assert index.quantization == "sq8"
    again = col.query(query_embeddings=q, n_results=5, include=["distances", "embeddings"])
    assert again["ids"] == res["ids"]
    np.testing.assert_allclose(again["distances"], res["distances"])
    np.testing.assert_allclose(again["embeddings"], res["embeddings"])
    # re-scoring reads its rows with pread: the full-precision file is never mapped (mapped,
    # sparse reads left the whole file resident)
    assert isinstance(index.stored_vectors(), RowFile)
    if os.path.exists("/proc/self/maps"):
        with open("/proc/self/maps") as f:
            assert not [line for line in f if line.rstrip().endswith("vectors.f32")]
    # filtered queries (exact search over the allowed rows, and HNSW with a selector) too
    col.update(ids=[f"r{i}" for i in range(0, 2600, 50)], metadatas=[{"k": 1}] * 52)
    for where in ({"k": 1}, {"k": {"$ne": 1}}):
        got = col.query(query_embeddings=q[:3], n_results=5, where=where, include=["distances"])
        allowed = [i for i in range(2600) if (i % 50 == 0) == (where == {"k": 1})]
        for qi in range(3):
            rows = [int(i[1:]) for i in got["ids"][qi]]
            assert set(rows) <= set(allowed)
            ref = exact_search(X[rows], q[qi], 5, "cosine")[0][0]
            np.testing.assert_allclose(sorted(got["distances"][qi]), ref, rtol=1e-5, atol=1e-6)
    client.close()


@pytest.mark.parametrize("bad", [{"quantization": "pq"}, {"quantize": "sq8"}, "sq8"])
def test_bad_quantization_is_refused_and_creates_nothing(tmp_path, bad):
    gleandb.ClientAPI.clear_system_cache()
    client = gleandb.PersistentClient(str(tmp_path), settings=_settings())
    with pytest.raises(gleandb.errors.InvalidArgumentError) as e:
        client.create_collection("quant", configuration={"vector_index": bad})
    assert "vector_index" in str(e.value)
    assert client.list_collections() == []
    col = client.create_collection("plain")
    with pytest.raises(gleandb.errors.InvalidArgumentError, match="vector_index"):
        col.modify(configuration={"vector_index": {"quantization": "sq8"}})
    client.close()


def test_full_precision_vectors_are_written_once_before_the_text_indexes(tmp_path, monkeypatch):
    """A flush writes a quantized segment's vectors.f32 with its graph, before the text
    indexes are built, and serves it from the file from then on (not kept in memory through
    the rest of the flush), and the segment's writing does not write it a second time."""
    gleandb.ClientAPI.clear_system_cache()
    client = gleandb.PersistentClient(str(tmp_path), settings=_settings())
    col = client.create_collection("quant", metadata={"hnsw:space": "cosine"},
                                   configuration={"vector_index": {"quantization": "sq8"}})
    storage = col._store.storage
    puts: list[str] = []
    orig = type(storage).put_many

    def put_many(self, items):
        items = list(items)
        puts.extend(k.rsplit("/", 1)[-1] for k, _ in items)
        return orig(self, items)

    monkeypatch.setattr(type(storage), "put_many", put_many)
    from gleandb.engine.segment import Segment
    built: list[object] = []
    orig_build = Segment.build_text_indexes

    def build_text_indexes(self, config):
        built.append(self.index.stored_vectors())  # what the segment holds meanwhile
        return orig_build(self, config)

    monkeypatch.setattr(Segment, "build_text_indexes", build_text_indexes)
    X = np.random.default_rng(3).standard_normal((500, 24)).astype(np.float32)
    col.add(ids=[f"r{i}" for i in range(500)], embeddings=X, documents=[f"doc {i}" for i in range(500)])
    client.flush()
    assert puts.count("vectors.f32") == 1
    assert len(built) == 1 and isinstance(built[0], RowFile)
    got = col.get(ids=["r7", "r499"], include=["embeddings"])
    np.testing.assert_allclose(got["embeddings"], X[[7, 499]], rtol=1e-5, atol=1e-6)
    client.close()


def test_quantized_collection_on_object_storage(s3_server, s3_bucket):
    """On object storage (no local file to read rows from) a flush writes each file once,
    the full-precision vectors stay in memory, and a fresh client reads them back."""
    from s3_server import ACCESS_KEY, REGION, SECRET_KEY

    from gleandb.engine.database import clear_engines

    url = f"s3://{s3_bucket}/q"
    opts = {"endpoint": s3_server.endpoint, "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY,
            "region": REGION}
    client = gleandb.PersistentClient(url, storage_options=opts, settings=_settings())
    col = client.create_collection("quant", metadata={"hnsw:space": "cosine"},
                                   configuration={"vector_index": {"quantization": "sq8"}})
    storage = col._store.storage
    puts: list[str] = []
    orig = type(storage).put

    def put(self, key, data):
        puts.append(key.rsplit("/", 1)[-1])
        return orig(self, key, data)

    X = np.random.default_rng(4).standard_normal((400, 24)).astype(np.float32)
    q = X[:5] + 0.01
    try:
        type(storage).put = put
        col.add(ids=[f"r{i}" for i in range(400)], embeddings=X)
        client.flush()
    finally:
        type(storage).put = orig
    assert puts.count("vectors.f32") == 1 and puts.count("vectors.faiss") == 1
    seg = col._store.snapshot()[0].seg
    assert seg.index.quantization == "sq8" and isinstance(seg.index.stored_vectors(), np.ndarray)
    res = col.query(query_embeddings=q, n_results=3, include=["distances", "embeddings"])
    assert [r[0] for r in res["ids"]] == [f"r{i}" for i in range(5)]
    client.close()
    clear_engines()
    fresh = gleandb.PersistentClient(url, storage_options=opts, settings=_settings())
    try:
        got = fresh.get_collection("quant").query(query_embeddings=q, n_results=3,
                                                  include=["distances", "embeddings"])
        assert got["ids"] == res["ids"]
        np.testing.assert_allclose(got["distances"], res["distances"], rtol=1e-6)
        np.testing.assert_allclose(got["embeddings"], res["embeddings"], rtol=1e-6)
    finally:
        fresh.close()


def test_exact_filtered_search_reads_only_the_allowed_rows(tmp_path, monkeypatch):
    """A filter letting half of a small quantized segment through is searched exactly over
    those rows, read from the file (never every row), with exact answers."""
    gleandb.ClientAPI.clear_system_cache()
    client = gleandb.PersistentClient(str(tmp_path), settings=_settings())
    col = client.create_collection("quant", metadata={"hnsw:space": "l2"},
                                   configuration={"vector_index": {"quantization": "sq8"}})
    X = np.random.default_rng(5).standard_normal((2600, 24)).astype(np.float32)
    col.add(ids=[f"r{i}" for i in range(2600)], embeddings=X, metadatas=[{"odd": i % 2 == 1} for i in range(2600)])
    client.flush()
    assert isinstance(col._store.snapshot()[0].seg.index.stored_vectors(), RowFile)
    read: list[int] = []
    orig = RowFile.__getitem__

    def getitem(self, key):
        out = orig(self, key)
        read.append(len(out))
        return out

    monkeypatch.setattr(RowFile, "__getitem__", getitem)
    monkeypatch.setattr(RowFile, "__array__", lambda *a, **k: pytest.fail("read every row"))
    q = np.random.default_rng(6).standard_normal((4, 24)).astype(np.float32)
    got = col.query(query_embeddings=q, n_results=5, where={"odd": True}, include=["distances"])
    odd = np.arange(1, 2600, 2)
    _, truth = exact_search(X[odd], q, 5, "l2")
    assert got["ids"] == [[f"r{odd[j]}" for j in t] for t in truth]
    assert read and max(read) <= 1300
    client.close()
