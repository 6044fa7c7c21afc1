"""A PersistentClient on s3:// end to end, against the tests' S3 server."""

import numpy as np
import pytest

import gleandb
from gleandb.api.errors import StoreLockedError
from gleandb.engine.database import clear_engines


def _vecs(n, d=8, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype("float32")


def test_add_query_flush_reopen(s3_env, s3_bucket):
    url = f"s3://{s3_bucket}/db1"
    settings = gleandb.Settings(index_min_rows=10)  # the flushed segment gets its vector index
    c = gleandb.PersistentClient(url, settings=settings)
    try:
        col = c.create_collection("docs", embedding_function=None)
        emb = _vecs(50)
        col.add(ids=[f"id{i}" for i in range(50)], embeddings=emb,
                documents=[f"doc number {i}" for i in range(50)], metadatas=[{"i": i} for i in range(50)])
        col.update(ids=["id3"], metadatas=[{"i": 300}])
        col.delete(ids=["id4"])
        res = col.query(query_embeddings=emb[7:8], n_results=3)
        assert res["ids"][0][0] == "id7"
        c.engine.flush()  # a segment and a manifest on the object store
        col.add(ids=["late"], embeddings=_vecs(1, seed=9), documents=["after the flush"])  # WAL only
    finally:
        c.close()
    clear_engines()
    c = gleandb.PersistentClient(url, settings=settings)
    try:
        col = c.get_collection("docs")
        assert any(v.seg.index is not None for v in col._store.snapshot())  # read back from the bucket
        assert col.count() == 50  # 50 - id4 + late
        assert col.get(ids=["id3"])["metadatas"][0] == {"i": 300}
        assert col.get(ids=["id4"])["ids"] == []
        assert col.get(ids=["late"])["documents"] == ["after the flush"]
        res = col.query(query_embeddings=_vecs(50)[11:12], n_results=1, include=["documents"])
        assert res["ids"][0] == ["id11"] and res["documents"][0] == ["doc number 11"]
    finally:
        c.close()


def test_second_writer_is_refused_while_the_lease_is_held(s3_env, s3_bucket):
    url = f"s3://{s3_bucket}/db2"
    c = gleandb.PersistentClient(url, storage_options={"lease_ttl": 30.0, "lease_wait": 0.2})
    try:
        from gleandb.engine.database import _open_object_store
        from gleandb.engine.store import StoreParams

        with pytest.raises(StoreLockedError, match="held by another writer"):
            _open_object_store(url, StoreParams(), {"lease_ttl": 30.0, "lease_wait": 0.2})
    finally:
        c.close()
    # released on close: the next writer need not wait for the ttl
    c = gleandb.PersistentClient(url, storage_options={"lease_wait": 0.5})
    c.close()


def test_glean_run_serves_a_store_on_object_storage(s3_env, s3_bucket, tmp_path):
    import os
    import subprocess
    import sys
    import time

    import httpx
    from s3_server import clean_exit, free_port

    port = free_port()
    url = f"s3://{s3_bucket}/served"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    glean = os.path.join(os.path.dirname(sys.executable), "glean")
    log = open(tmp_path / "run.log", "w")
    proc = subprocess.Popen([glean, "run", "--storage", url, "--port", str(port)], stdout=log,
                            stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "run.log").read_text()
            time.sleep(0.1)
        c = gleandb.HttpClient(port=port)
        col = c.create_collection("served", embedding_function=None)
        col.add(ids=["x", "y"], embeddings=[[1.0, 0.0], [0.0, 1.0]], documents=["ex", "why"])
        assert col.query(query_embeddings=[[0.9, 0.1]], n_results=1)["ids"] == [["x"]]
    finally:
        proc.terminate()
        rc = proc.wait(timeout=30)
        log.close()
    output = (tmp_path / "run.log").read_text()
    assert clean_exit(rc, output), f"glean run exited with {rc}: {output[-3000:]}"
    # the server's writes are on the object store: a client opens them after the server stopped
    clear_engines()
    c = gleandb.PersistentClient(url)
    try:
        assert sorted(c.get_collection("served").get()["ids"]) == ["x", "y"]
    finally:
        c.close()


def test_fork_delete_and_vacuum_on_object_storage(s3_env, s3_bucket):
    url = f"s3://{s3_bucket}/forks"
    c = gleandb.PersistentClient(url)
    try:
        src = c.create_collection("source", embedding_function=None)
        src.add(ids=[f"s{i}" for i in range(30)], embeddings=_vecs(30, seed=3))
        c.engine.flush()
        src.add(ids=["tail"], embeddings=_vecs(1, seed=4))  # unflushed: goes with the fork
        fork = src.fork("copy")
        fork.add(ids=["only-in-fork"], embeddings=_vecs(1, seed=5))
        src.delete(ids=["s0"])
        assert fork.count() == 32 and src.count() == 30
        c.engine.flush()
        c.delete_collection("source")
        c.vacuum()
    finally:
        c.close()
    clear_engines()
    c = gleandb.PersistentClient(url)
    try:
        assert [col.name for col in c.list_collections()] == ["copy"]
        fork = c.get_collection("copy")
        ids = set(fork.get()["ids"])
        assert len(ids) == 32 and {"s0", "tail", "only-in-fork"} <= ids
    finally:
        c.close()
