"""A follower on object storage: the query-node half of issue 15's fault tests.

Runs once the object-storage backend (``gleandb.storage.s3``) and the tests' S3 server
(``tests/s3_server.py``: moto on loopback, plus a fault-injecting proxy) are present;
skipped before. The writer is a PersistentClient on ``s3://``; the follower reads the same
bucket through the fault proxy and a ``CachedStorage``. Checked: it converges to the writer,
sends nothing but reads, and while the store answers 503 it keeps serving what it has and
reports the error; once the store is back it catches up with the writes made meanwhile.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("gleandb.storage.s3", reason="object storage backend not in this build")
s3 = pytest.importorskip("s3_server", reason="the tests' S3 server is not in this build")

import gleandb  # noqa: E402
from gleandb.engine.database import Engine  # noqa: E402
from gleandb.engine.follower import Follower  # noqa: E402
from gleandb.engine.store import CollectionStore, StoreParams  # noqa: E402
from gleandb.storage.cache import CachedStorage  # noqa: E402
from gleandb.storage.readonly import ReadOnlyStorage  # noqa: E402

WAIT_S = 30  # an upper bound on a loaded machine, not a speed expectation


@pytest.fixture(scope="module")
def server():
    srv = s3.S3Server()
    yield srv
    srv.stop()


def _keep_head_sizes(proxy) -> None:
    """The tests' FaultProxy answers a HEAD with ``Content-Length: 0`` (it counts the empty body
    it read); S3 sends the object's size, which a follower reads to see what grew. Send the
    upstream headers as they are for HEAD."""
    handler = proxy.server.RequestHandlerClass
    reply = handler._reply

    def _reply(self, status, headers, data):
        if self.command != "HEAD" or status >= 300:
            return reply(self, status, headers, data)
        self.send_response(status)
        for k, v in headers.items():
            if k.lower() not in ("transfer-encoding", "connection", "server", "date"):
                self.send_header(k, v)
        self.end_headers()

    handler._reply = _reply


def _ids(store: CollectionStore) -> set[str]:
    out = set()
    for v in store.snapshot():
        ids = v.seg.ids_list()
        out.update(ids if v.deleted is None else [ids[i] for i in np.flatnonzero(~v.deleted)])
    return out


def test_follower_on_object_storage_serves_through_an_outage(server, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", s3.REGION)
    bucket = server.new_bucket()
    w = gleandb.PersistentClient(f"s3://{bucket}/store", settings=gleandb.Settings(index_min_rows=10))
    proxy = s3.FaultProxy(server.port)
    _keep_head_sizes(proxy)
    engine = None
    try:
        col = w.create_collection("docs", embedding_function=None)
        rng = np.random.default_rng(0)
        col.add(ids=[f"a{i}" for i in range(40)], embeddings=rng.standard_normal((40, 4)).astype(np.float32))
        w.flush()  # a segment and a manifest in the bucket
        col.add(ids=["wal1"], embeddings=[[1.0, 0.0, 0.0, 0.0]])  # a WAL object after it
        inner = s3.s3_storage_for(proxy, bucket, "store", retries=0, timeout=5.0)
        cache = CachedStorage(inner, memory_bytes=1 << 24, disk_dir=str(tmp_path / "cache"))
        engine = Engine(ReadOnlyStorage(cache), StoreParams(), path=f"s3://{bucket}/store", read_only=True)
        follower = Follower(engine, 0.05)
        rec = col._record
        store = engine.store(rec.id, w._params_for(rec))
        assert _ids(store) == {f"a{i}" for i in range(40)} | {"wal1"}
        assert cache.stats()["misses"] > 0  # the segment came through the cache
        col.add(ids=["wal2"], embeddings=[[0.0, 1.0, 0.0, 0.0]])
        assert follower.refresh() and "wal2" in _ids(engine.store(rec.id, w._params_for(rec)))

        proxy.rule = lambda method, path, query: ("status", 503)  # the store is unreachable
        col.add(ids=["during"], embeddings=[[0.0, 0.0, 1.0, 0.0]])
        assert not follower.refresh()
        st = follower.status()
        assert st["degraded"] and ("503" in st["error"] or "unavailable" in st["error"].lower()), st
        served = engine.store(rec.id, w._params_for(rec))
        assert "wal2" in _ids(served) and len(_ids(served)) == 42  # what it had, still served

        proxy.rule = lambda method, path, query: None  # back
        deadline = time.monotonic() + WAIT_S
        while "during" not in _ids(engine.store(rec.id, w._params_for(rec))) and time.monotonic() < deadline:
            follower.refresh()
            time.sleep(0.05)
        assert "during" in _ids(engine.store(rec.id, w._params_for(rec)))
        assert not follower.status()["degraded"]
        sent = {m for m, _path, _outcome in proxy.log}
        assert sent <= {"GET", "HEAD"}, sent  # a follower only reads
    finally:
        if engine is not None:
            engine.close()
        w.close()
        proxy.stop()
