"""The object store failing under a writer: 500/503s and slow answers from a fault-injecting
proxy (tests/s3_server.py) between gleandb and the S3 server. Writes succeed or fail with a
clear error and never half-apply; reads retry."""

import numpy as np
import pytest
from s3_server import ACCESS_KEY, REGION, SECRET_KEY, FaultProxy

import gleandb
from gleandb.api.errors import ObjectStoreUnavailableError
from gleandb.engine.database import clear_engines


@pytest.fixture
def proxy(s3_server):
    p = FaultProxy(s3_server.port)
    yield p
    p.stop()


def _client(proxy, bucket, prefix="db"):
    return gleandb.PersistentClient(f"s3://{bucket}/{prefix}", storage_options={
        "endpoint": proxy.endpoint, "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY,
        "region": REGION, "timeout": 2.0, "retries": 3, "lease_ttl": 30.0})


def _emb(n, seed):
    return np.random.default_rng(seed).normal(size=(n, 4)).astype("float32")


def _is_wal_put(method, path):
    return method == "PUT" and "/wal/" in path


def test_lost_answers_and_503s_on_a_wal_put_are_retried_and_the_write_lands_once(proxy, s3_bucket):
    c = _client(proxy, s3_bucket)
    try:
        col = c.create_collection("col", embedding_function=None)
        faults = iter([("after", 500), ("status", 503)])  # landed but answered 500, then a 503

        def rule(method, path, query):
            return next(faults, None) if _is_wal_put(method, path) else None

        proxy.rule = rule
        col.add(ids=["a", "b"], embeddings=_emb(2, 1))
        proxy.rule = lambda *a: None
        wal_puts = [o for m, p, o in proxy.log if m == "PUT" and "/wal/" in p]
        assert wal_puts[:3] == ["forwarded 200, injected 500", "injected 503", "412"], wal_puts
        assert col.count() == 2
    finally:
        c.close()
    clear_engines()
    c = _client(proxy, s3_bucket)
    try:
        col = c.get_collection("col")
        assert sorted(col.get()["ids"]) == ["a", "b"]  # once, not twice
        col.add(ids=["c"], embeddings=_emb(1, 2))  # numbering continues after the retried group
        assert col.count() == 3
    finally:
        c.close()


def test_a_write_the_store_refuses_fails_clearly_and_changes_nothing(proxy, s3_bucket):
    c = _client(proxy, s3_bucket)
    try:
        col = c.create_collection("col", embedding_function=None)
        col.add(ids=["keep"], embeddings=_emb(1, 3), documents=["before"])
        proxy.rule = lambda m, p, q: ("status", 500) if _is_wal_put(m, p) else None
        with pytest.raises(ObjectStoreUnavailableError, match="wal/") as e:
            col.upsert(ids=["keep", "new"], embeddings=_emb(2, 4), documents=["changed", "new"])
        assert "conditional PUT" in str(e.value)
        assert col.count() == 1  # rolled back: readers never saw it
        assert col.get(ids=["keep"])["documents"] == ["before"]
        assert col.get(ids=["new"])["ids"] == []
        proxy.rule = lambda *a: None
        col.add(ids=["after"], embeddings=_emb(1, 5))  # the store works again
    finally:
        c.close()
    clear_engines()
    c = _client(proxy, s3_bucket)
    try:
        col = c.get_collection("col")
        assert sorted(col.get()["ids"]) == ["after", "keep"]
        assert col.get(ids=["keep"])["documents"] == ["before"]
    finally:
        c.close()


def test_a_failed_manifest_publish_leaves_the_previous_version(proxy, s3_bucket):
    c = _client(proxy, s3_bucket)
    try:
        col = c.create_collection("col", embedding_function=None)
        col.add(ids=[f"r{i}" for i in range(20)], embeddings=_emb(20, 6))
        proxy.rule = lambda m, p, q: ("status", 503) if m == "PUT" and "/manifests/" in p else None
        c.engine.flush()  # the background flush fails to publish: logged, the data stays in the WAL
        proxy.rule = lambda *a: None
        assert col.count() == 20
    finally:
        c.close()
    clear_engines()
    c = _client(proxy, s3_bucket)
    try:
        col = c.get_collection("col")
        assert col.count() == 20  # from the WAL: no manifest names a half-written flush
        c.engine.flush()
        col.add(ids=["x"], embeddings=_emb(1, 7))
        assert col.count() == 21
    finally:
        c.close()


def test_reads_retry_through_errors_and_slow_answers(proxy, s3_bucket):
    c = _client(proxy, s3_bucket)
    try:
        col = c.create_collection("col", embedding_function=None)
        col.add(ids=[f"r{i}" for i in range(30)], embeddings=_emb(30, 8), documents=[f"d{i}" for i in range(30)])
        c.engine.flush()
    finally:
        c.close()
    clear_engines()
    # a 503, a GET slower than the client's 2 s timeout, a slow one within it, a 500:
    # each fault is followed by a good answer before the 3 retries run out
    faults = iter([("status", 503), ("delay", 3.0), None, ("delay", 0.3), ("status", 500)])
    proxy.rule = lambda m, p, q: next(faults, None) if m == "GET" else None
    c = _client(proxy, s3_bucket)  # opening reads the catalog, manifests and segments
    try:
        col = c.get_collection("col")
        assert col.count() == 30
        res = col.query(query_embeddings=_emb(30, 8)[5:6], n_results=1, include=["documents"])
        assert res["ids"][0] == ["r5"] and res["documents"][0] == ["d5"]
    finally:
        c.close()
    injected = [o for _m, _p, o in proxy.log if o.startswith("injected")]
    assert injected == ["injected 503", "injected 500"]
