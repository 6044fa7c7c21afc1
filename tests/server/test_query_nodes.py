"""Query nodes (``glean run --role query``): real processes over one store directory.

A writer and query nodes share the directory; the chromadb HTTP client talks to a query
node. Checked: writes sent to a query node are forwarded (and read back on it at once),
writes to the writer reach the query node by polling, a query node without --writer-url
refuses writes naming its role and the writer, killing a query node loses no acknowledged
write, /healthcheck says degraded when the storage fails, and bad role settings are named.
"""

from __future__ import annotations

import time

import httpx
import pytest
from conftest import Server  # noqa: E402

from gleandb.server.config import ServerSettings, load_settings
from gleandb.storage.base import StorageError
from gleandb.storage.local import LocalStorage

chromadb = pytest.importorskip("chromadb", reason="the chromadb client is installed by gleandb's test extra")

WAIT_S = 30  # an upper bound on a loaded machine, not a speed expectation
COLS = "/api/v2/tenants/default_tenant/databases/default_database/collections"


def _client(server):
    return chromadb.HttpClient(host="127.0.0.1", port=server.port,
                               settings=chromadb.Settings(anonymized_telemetry=False))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    path = root / "data"
    writer = Server(path, "--role", "writer").start()
    query = Server(path, "--role", "query", "--writer-url", writer.url, "--poll-interval", "0.05",
                   "--cache-dir", str(root / "cache-q1")).start()
    bare = Server(path, "--role", "query", "--poll-interval", "0.05").start()
    yield writer, query, bare
    query.stop()  # killed by test_killing_a_query_node_loses_nothing
    for s in (bare, writer):
        assert s.stop() == 0


def _wait(pred):
    deadline = time.monotonic() + WAIT_S
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_writes_through_a_query_node_are_forwarded_and_read_back(cluster):
    writer, query, _bare = cluster
    q = _client(query)
    col = q.create_collection("forwarded")
    col.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]], documents=["alpha", "beta"])
    # read back on the query node at once (it polls after a forwarded write)
    assert col.count() == 2
    assert col.query(query_embeddings=[[1.0, 0.1]], n_results=1)["ids"] == [["a"]]
    # and the writer holds it
    w = _client(writer).get_collection("forwarded")
    assert sorted(w.get()["ids"]) == ["a", "b"]
    col.upsert(ids=["a"], embeddings=[[0.5, 0.5]], documents=["alpha 2"])
    col.delete(ids=["b"])
    assert col.get(include=["documents"])["documents"] == ["alpha 2"]


def test_writes_on_the_writer_reach_query_nodes(cluster):
    writer, query, bare = cluster
    w = _client(writer).create_collection("polled")
    w.add(ids=[f"r{i}" for i in range(30)], embeddings=[[float(i), 1.0] for i in range(30)])
    for node in (query, bare):
        c = _client(node)
        assert _wait(lambda: c.get_collection("polled").count() == 30)
    w.delete(ids=["r0"])
    c = _client(bare).get_collection("polled")
    assert _wait(lambda: c.count() == 29)
    assert c.get(ids=["r0"])["ids"] == []


def test_query_node_without_writer_refuses_writes_naming_the_writer(cluster):
    writer, _query, bare = cluster
    _client(writer).get_or_create_collection("readonly-here").add(ids=["x"], embeddings=[[1.0]])
    col = _client(bare)
    assert _wait(lambda: "readonly-here" in [c.name for c in col.list_collections()])
    cid = col.get_collection("readonly-here").id
    r = httpx.post(f"{bare.url}{COLS}/{cid}/add", json={"ids": ["y"], "embeddings": [[2.0]]})
    assert r.status_code == 405
    msg = r.json()["message"]
    assert "--role query" in msg and "--writer-url" in msg and "/add" in msg
    r = httpx.post(f"{bare.url}{COLS}", json={"name": "nope"})
    assert r.status_code == 405
    # nothing was written; reads still work
    assert col.get_collection("readonly-here").count() == 1
    assert "nope" not in [c.name for c in _client(writer).list_collections()]
    h = httpx.get(bare.url + "/api/v2/healthcheck").json()
    assert h["gleandb"]["role"] == "query" and h["gleandb"]["degraded"] is False
    node = httpx.get(bare.url + "/api/v2/gleandb/node").json()
    assert node["follower"]["polls"] > 0 and node["follower"]["failed_polls"] == 0
    assert {"hits", "misses", "memory_bytes", "disk_bytes"} <= set(node["cache"])


def test_killing_a_query_node_loses_nothing(cluster):
    # the last test of the module to use ``query``: it is killed here
    writer, doomed, bare = cluster
    c = _client(doomed).create_collection("survives")
    acked: list[str] = []
    acked_after_kill = 0
    try:
        for i in range(40):
            if i == 25:
                doomed.proc.kill()  # SIGKILL, mid-stream
                doomed.proc.wait()
            try:
                c.add(ids=[f"k{i}"], embeddings=[[float(i), 0.0]])
                acked.append(f"k{i}")
                acked_after_kill += i >= 25
            except Exception:
                pass  # not acknowledged: may or may not be there
    finally:
        doomed.proc.kill()
    assert acked and acked_after_kill == 0
    have = set(_client(writer).get_collection("survives").get()["ids"])
    assert set(acked) <= have
    # the other query node serves every acknowledged write too
    other = _client(bare)
    assert _wait(lambda: set(acked) <= set(other.get_collection("survives").get()["ids"]))


class Flaky(LocalStorage):
    down = False

    def _check(self):
        if self.down:
            raise StorageError("connection refused (test: storage down)")

    def list(self, prefix):
        self._check()
        return super().list(prefix)

    def get(self, key):
        self._check()
        return super().get(key)

    def size_of(self, key):
        self._check()
        return super().size_of(key)


def test_healthcheck_degraded_when_storage_fails_and_node_keeps_serving(tmp_path):
    from fastapi.testclient import TestClient

    import gleandb
    from gleandb.server.app import create_app

    path = tmp_path / "store"
    w = gleandb.PersistentClient(str(path))
    col = w.create_collection("kept", embedding_function=None)
    col.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]])
    w.close()
    def tree():
        return {(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in path.rglob("*")}

    before = tree()
    storage = Flaky(str(path))
    settings = ServerSettings(path=str(path), role="query", poll_interval_s=0.02, access_log=False)
    with TestClient(create_app(str(path), settings, storage=storage)) as http:
        cid = http.get(f"{COLS}/kept").json()["id"]
        q = {"query_embeddings": [[1.0, 0.0]], "n_results": 2, "include": []}
        assert http.post(f"{COLS}/{cid}/query", json=q).json()["ids"] == [["a", "b"]]
        assert http.get("/api/v2/healthcheck").json()["gleandb"]["degraded"] is False
        storage.down = True
        assert _wait(lambda: http.get("/api/v2/healthcheck").json()["gleandb"]["degraded"])
        h = http.get("/api/v2/healthcheck")
        assert h.status_code == 200 and "connection refused" in h.json()["gleandb"]["error"]
        # what it has is still served
        assert http.post(f"{COLS}/{cid}/query", json=q).json()["ids"] == [["a", "b"]]
        storage.down = False
        assert _wait(lambda: not http.get("/api/v2/healthcheck").json()["gleandb"]["degraded"])
        assert http.post(f"{COLS}/{cid}/add", json={"ids": ["c"], "embeddings": [[1.0, 1.0]]}).status_code == 405
    assert tree() == before  # the query node wrote nothing: no file added, changed or removed


def test_unreachable_writer_is_named_and_nothing_is_applied(tmp_path):
    import socket

    from fastapi.testclient import TestClient

    import gleandb
    from gleandb.server.app import create_app

    path = tmp_path / "store"
    w = gleandb.PersistentClient(str(path))
    w.create_collection("lonely", embedding_function=None).add(ids=["a"], embeddings=[[1.0]])
    w.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens there once closed
    settings = ServerSettings(path=str(path), role="query", writer_url=dead, access_log=False)
    with TestClient(create_app(str(path), settings)) as http:
        cid = http.get(f"{COLS}/lonely").json()["id"]
        r = http.post(f"{COLS}/{cid}/add", json={"ids": ["b"], "embeddings": [[2.0]]})
        assert r.status_code == 503
        assert dead in r.json()["message"] and "not applied" in r.json()["message"]
        assert http.get(f"{COLS}/{cid}/count").json() == 1


@pytest.mark.parametrize("cli, field", [
    ({"role": "reader"}, "role"),
    ({"role": "writer", "writer_url": "http://x:1"}, "writer_url"),
    ({"role": "query", "writer_url": "ftp://x"}, "writer_url"),
    ({"role": "query", "poll_interval_s": 0}, "poll_interval_s"),
    ({"role": "query", "cache_disk_bytes": -5}, "cache_disk_bytes"),
])
def test_bad_role_settings_are_named(cli, field):
    with pytest.raises(ValueError, match=field):
        load_settings(cli, environ={})


def test_query_node_on_a_missing_directory_is_refused(tmp_path):
    from gleandb.server.app import create_app

    missing = tmp_path / "nothing-here"
    with pytest.raises(ValueError, match="no store directory"):
        create_app(str(missing), ServerSettings(path=str(missing), role="query"))
    assert not missing.exists()
