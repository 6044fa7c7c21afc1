"""gleandb.HttpClient / AsyncHttpClient.

* Against a real server: ``glean run`` started as a subprocess on a free loopback
  port (skipped, with the reason, while ``src/gleandb/server/app.py`` does not
  exist). Set ``GLEANDB_TEST_SERVER=host:port`` to run them against a server
  that is already running instead, e.g. Chroma's ``chroma run``
  (``/tmp/chroma-venv/bin/chroma run --path /tmp/x --port 8765``).
  The same call sequences must give the same results through HttpClient as
  through an embedded PersistentClient, and bad input the same error class
  and message. (Against Chroma 1.5.9, run each test on a fresh server: its
  list-valued metadata of deleted collections leaks onto later records.)
* Without a server (always run): URL building, auth headers, the bootstrap
  calls, the wire format of writes and error mapping, on httpx.MockTransport.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest

import gleandb
from gleandb.api import http_client as hc
from gleandb.errors import ChromaError, InvalidArgumentError, NotFoundError

SERVER_APP = Path(gleandb.__file__).parent / "server" / "app.py"


# --------------------------------------------------------------------------- server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, proc: subprocess.Popen | None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"glean run exited with {proc.returncode}: {proc.stdout.read().decode(errors='replace')[-2000:]}")
        try:
            if httpx.get(url + "/api/v2/heartbeat", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no heartbeat from {url} within {timeout} s")


@contextlib.contextmanager
def _glean_run(path: Path, *args: str):
    """``glean run`` as a subprocess on a free loopback port; yields (host, port)."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gleandb.cli.main", "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_ready(f"http://127.0.0.1:{port}", proc)
        yield "127.0.0.1", port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _skip_without_server() -> None:
    if not SERVER_APP.exists():
        pytest.skip(f"the gleandb server is not there yet ({SERVER_APP} does not exist); set GLEANDB_TEST_SERVER=host:port to test against a running server")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(host, port) of a running server."""
    external = os.environ.get("GLEANDB_TEST_SERVER")
    if external:
        host, _, port = external.rpartition(":")
        _wait_ready(f"http://{host}:{port}", None, timeout=5.0)
        yield host, int(port)
        return
    _skip_without_server()
    with _glean_run(tmp_path_factory.mktemp("glean-run")) as addr:
        yield addr


@pytest.fixture
def http(server):
    c = gleandb.HttpClient(host=server[0], port=server[1])
    yield c
    c.close()


@pytest.fixture
def embedded(tmp_path):
    c = gleandb.PersistentClient(path=str(tmp_path / "embedded"))
    yield c
    c.close()


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --------------------------------------------------------------------------- comparing


def _same(a, b, where: str = "") -> None:
    """Equal results: exact for ids/documents/metadatas, float32-close for numbers."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype, where
        assert a.shape == b.shape, where
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=where)
    elif isinstance(a, dict) and isinstance(b, dict):
        assert set(a) == set(b), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        assert len(a) == len(b), f"{where}: {a} != {b}"
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float) and where.split(".")[-1].startswith("distances"):
        assert abs(a - b) <= 1e-5 * max(1.0, abs(a)), f"{where}: {a} != {b}"
    else:
        assert type(a) is type(b) and a == b, f"{where}: {a!r} != {b!r}"


# a deterministic embedding function run on the client (no model needed)
class _CharEF:
    def __call__(self, input):
        out = []
        for text in input:
            vec = np.zeros(4, dtype=np.float32)
            for i, ch in enumerate(text):
                vec[i % 4] += (ord(ch) % 13) / 13.0
            out.append(vec)
        return out


ROWS = dict(
    ids=["a", "b", "c", "d", "e", "f"],
    embeddings=[[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0], [0.1, 0.2, 0.3], [-1, 0.25, 2]],
    documents=["apple pie", "banana split", None, "cherry tart", "apple crumble", "date loaf"],
    metadatas=[
        {"kind": "fruit", "n": 1, "price": 2.5, "tags": ["red", "sweet"]},
        {"kind": "fruit", "n": 2, "ok": True},
        None,
        {"kind": "tart", "n": 4, "price": 4.0},
        {"kind": "pie", "n": 5, "ok": False, "tags": ["sweet"]},
        {"n": 6},
    ],
)

# (label, operation on a collection); run in order on both clients
OPERATIONS = [
    ("add", lambda c: c.add(**ROWS)),
    ("count", lambda c: c.count()),
    ("get all", lambda c: c.get()),
    ("get include all", lambda c: c.get(include=["embeddings", "documents", "metadatas", "uris"])),
    ("get ids", lambda c: c.get(ids=["e", "a", "zz"])),
    ("get where eq", lambda c: c.get(where={"kind": "fruit"})),
    ("get where and/range", lambda c: c.get(where={"$and": [{"n": {"$gte": 2}}, {"n": {"$lt": 6}}]})),
    ("get where $in / $ne", lambda c: c.get(where={"$or": [{"kind": {"$in": ["pie", "tart"]}}, {"ok": {"$ne": True}}]})),
    ("get where list $contains", lambda c: c.get(where={"tags": {"$contains": "sweet"}}, include=["metadatas"])),
    ("get where_document", lambda c: c.get(where_document={"$contains": "apple"})),
    ("get where_document regex", lambda c: c.get(where_document={"$regex": "^[bc]"}, include=["documents"])),
    ("get limit/offset", lambda c: c.get(limit=2, offset=1, include=[])),
    ("peek", lambda c: c.peek(3)),
    ("query", lambda c: c.query(query_embeddings=[[1, 0, 0], [0, 0.9, 0.1]], n_results=3)),
    ("query includes", lambda c: c.query(query_embeddings=[0.2, 0.2, 0.2], n_results=2, include=["embeddings", "distances", "uris"])),
    ("query filtered", lambda c: c.query(query_embeddings=[[0, 0, 1]], n_results=10, where={"n": {"$gt": 1}}, where_document={"$not_contains": "tart"})),
    ("query ids", lambda c: c.query(query_embeddings=[[0, 0.2, 1]], n_results=2, ids=["a", "b", "d"])),
    ("update", lambda c: c.update(ids=["a", "b"], metadatas=[{"n": None, "new": "x"}, {"kind": "veg"}], documents=["apple sauce", "banana bread"], embeddings=[[0.9, 0.1, 0], [0, 1, 0.1]])),
    ("upsert", lambda c: c.upsert(ids=["b", "g"], embeddings=[[0, 2, 0], [3, 3, 3]], metadatas=[{"ok": False}, {"kind": "new"}])),
    ("get after writes", lambda c: c.get(include=["embeddings", "documents", "metadatas"])),
    ("delete ids", lambda c: c.delete(ids=["c"])),
    ("delete where", lambda c: c.delete(where={"kind": "veg"})),
    ("count where", lambda c: c.count(where={"n": {"$gte": 4}})),
    ("count after", lambda c: c.count()),
    ("query after", lambda c: c.query(query_embeddings=[[1, 1, 1]], n_results=4, include=["documents", "distances", "metadatas"])),
]


def _collection_view(col) -> dict:
    return {"name": col.name, "metadata": col.metadata, "hnsw": col.configuration_json.get("hnsw")}


def test_same_results_as_embedded(http, embedded):
    name = _name("same")
    cols = [
        cl.create_collection(name, metadata={"hnsw:space": "l2", "owner": "t"}, embedding_function=None)
        for cl in (embedded, http)
    ]
    assert isinstance(cols[1], gleandb.Collection)
    _same(_collection_view(cols[0]), _collection_view(cols[1]), "create")
    for label, op in OPERATIONS:
        results = [op(c) for c in cols]
        _same(results[0], results[1], label)
    # collection-level calls
    for cl in (embedded, http):
        cl.get_collection(name).modify(metadata={"owner": "u", "v": 2})
    _same(*[_collection_view(cl.get_collection(name)) for cl in (embedded, http)], "modify")
    assert http.get_collection_by_id(cols[1].id).name == name
    assert name in [c.name for c in http.list_collections()]
    assert http.count_collections() >= 1
    same_names = [sorted(c.name for c in cl.list_collections() if c.name == name) for cl in (embedded, http)]
    assert same_names[0] == same_names[1] == [name]
    for cl in (embedded, http):
        cl.delete_collection(name)
    assert name not in [c.name for c in http.list_collections()]


def test_client_side_embedding_and_cosine(http, embedded):
    """Documents without embeddings are embedded by the collection's function on the client."""
    name = _name("ef")
    cols = [
        cl.create_collection(name, configuration={"hnsw": {"space": "cosine"}}, embedding_function=_CharEF())
        for cl in (embedded, http)
    ]
    ops = [
        lambda c: c.add(ids=["x", "y", "z"], documents=["hello world", "goodbye", "hello there"]),
        lambda c: c.query(query_texts=["hello"], n_results=3, include=["documents", "distances", "embeddings"]),
        lambda c: c.get(include=["embeddings"]),
        lambda c: c.update(ids=["y"], documents=["hello again"]),
        lambda c: c.query(query_texts=["hello again"], n_results=1),
    ]
    for i, op in enumerate(ops):
        _same(op(cols[0]), op(cols[1]), f"ef op {i}")
    assert cols[1].configuration_json["hnsw"]["space"] == "cosine"
    for cl in (embedded, http):
        cl.delete_collection(name)


BAD_INPUT = [
    ("duplicate ids", lambda c: c.add(ids=["p", "p"], embeddings=[[1, 2, 3], [1, 2, 3]])),
    ("wrong dimension add", lambda c: c.add(ids=["q"], embeddings=[[1, 2]])),
    ("wrong dimension query", lambda c: c.query(query_embeddings=[[1, 2, 3, 4]])),
    ("bad where", lambda c: c.get(where={"n": {"$foo": 1}})),
    ("bad where type", lambda c: c.query(query_embeddings=[[1, 2, 3]], where={"$and": {"n": 1}})),
    ("bad where_document", lambda c: c.delete(where_document={"$contains": 3})),
    ("n_results=0", lambda c: c.query(query_embeddings=[[1, 2, 3]], n_results=0)),
    ("distances in get", lambda c: c.get(include=["distances"])),
    ("empty id", lambda c: c.add(ids=[""], embeddings=[[1, 2, 3]])),
    ("nan embedding", lambda c: c.upsert(ids=["r"], embeddings=[[1, float("nan"), 3]])),
    ("delete nothing", lambda c: c.delete()),
    ("limit without where", lambda c: c.delete(ids=["a"], limit=1)),
    ("negative limit", lambda c: c.get(limit=-1)),
    ("nothing to embed", lambda c: c.add(ids=["s"])),
    ("metadata not a dict", lambda c: c.add(ids=["t"], embeddings=[[1, 2, 3]], metadatas=[{}])),
]


def _error(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return type(e), str(e)
    return None


def test_same_errors_as_embedded(http, embedded):
    name = _name("bad")
    cols = [cl.create_collection(name, embedding_function=None) for cl in (embedded, http)]
    for c in cols:
        c.add(ids=["a"], embeddings=[[1, 2, 3]], metadatas=[{"n": 1}])
    for label, op in BAD_INPUT:
        errs = [_error(lambda: op(c)) for c in cols]
        assert errs[0] is not None, label
        assert errs[0] == errs[1], f"{label}: embedded {errs[0]} vs http {errs[1]}"
    # nothing was written by the failed calls
    _same(cols[0].get(), cols[1].get(), "after errors")
    # unknown collections
    for fn in (lambda cl: cl.get_collection("no-such-collection"), lambda cl: cl.delete_collection("no-such-collection")):
        errs = [_error(lambda: fn(cl)) for cl in (embedded, http)]
        assert errs[0] == errs[1] and errs[0][0] is NotFoundError, errs
    err = _error(lambda: http.get_collection("no-such-collection"))
    with pytest.raises(NotFoundError) as info:
        http.get_collection("no-such-collection")
    assert info.value.trace_id is None or isinstance(info.value.trace_id, str)
    assert err[1] == "Collection [no-such-collection] does not exist"
    for cl in (embedded, http):
        cl.delete_collection(name)


def test_bootstrap_errors(server):
    with pytest.raises(ValueError, match="Could not connect to a Chroma server. Are you sure it is running?"):
        gleandb.HttpClient(host="127.0.0.1", port=_free_port())
    with pytest.raises(NotFoundError):
        gleandb.HttpClient(host=server[0], port=server[1], tenant="no-such-tenant")
    c = gleandb.HttpClient(host=f"http://{server[0]}:{server[1]}")  # a URL: no port appended
    assert isinstance(c.heartbeat(), int)
    assert c.get_version().count(".") == 2
    with pytest.raises(NotFoundError):
        c.set_database("no-such-database")
    assert c.database == gleandb.DEFAULT_DATABASE
    c.close()


def test_tenants_and_databases(server):
    admin = gleandb.HttpAdminClient(host=server[0], port=server[1])
    tenant, db = _name("tenant"), _name("db")
    admin.create_tenant(tenant)
    assert admin.get_tenant(tenant) == {"name": tenant}
    admin.create_database(db, tenant=tenant)
    assert admin.get_database(db, tenant=tenant)["name"] == db
    assert [d["name"] for d in admin.list_databases(tenant=tenant)] == [db]
    with pytest.raises(InvalidArgumentError, match="database name must be at least 3 characters"):
        admin.create_database("ab", tenant=tenant)
    c = gleandb.HttpClient(host=server[0], port=server[1], tenant=tenant, database=db)
    c.create_collection("in-db", embedding_function=None).add(ids=["x"], embeddings=[[1.0, 2.0]])
    other = gleandb.HttpClient(host=server[0], port=server[1])
    assert "in-db" not in [col.name for col in other.list_collections()]
    other.set_tenant(tenant, db)
    assert (other.tenant, other.database) == (tenant, db)
    assert other.get_collection("in-db").count() == 1
    assert c.count_collections() == 1
    c.delete_collection("in-db")
    admin.delete_database(db, tenant=tenant)
    with pytest.raises(NotFoundError):
        admin.get_database(db, tenant=tenant)
    for cl in (c, other, admin):
        cl.close()


def test_auth_headers_against_glean_run(tmp_path):
    if os.environ.get("GLEANDB_TEST_SERVER"):
        pytest.skip("needs its own glean run with auth enabled")
    _skip_without_server()
    with _glean_run(tmp_path / "auth", "--auth-token", "tok-123", "--auth-basic", "user:pa55") as (host, port):
        with pytest.raises(ChromaError):
            gleandb.HttpClient(host=host, port=port)
        token = "chromadb.auth.token_authn.TokenAuthClientProvider"
        basic = "chromadb.auth.basic_authn.BasicAuthClientProvider"
        for settings in (
            gleandb.Settings(chroma_client_auth_provider=token, chroma_client_auth_credentials="tok-123"),
            gleandb.Settings(chroma_client_auth_provider=token, chroma_client_auth_credentials="tok-123", chroma_auth_token_transport_header="X-Chroma-Token"),
            gleandb.Settings(chroma_client_auth_provider=basic, chroma_client_auth_credentials="user:pa55"),
        ):
            c = gleandb.HttpClient(host=host, port=port, settings=settings)
            col = c.get_or_create_collection("authed", embedding_function=None)
            col.upsert(ids=["a"], embeddings=[[1.0]])
            assert col.count() == 1
            c.close()
        with pytest.raises(ChromaError):
            gleandb.HttpClient(host=host, port=port, settings=gleandb.Settings(chroma_client_auth_provider=token, chroma_client_auth_credentials="wrong"))


def test_async_client(server, embedded):
    name = _name("async")
    ref = embedded.create_collection(name, embedding_function=None)
    ref.add(**ROWS)

    async def main():
        client = await gleandb.AsyncHttpClient(host=server[0], port=server[1])
        assert isinstance(await client.heartbeat(), int)
        col = await client.create_collection(name, embedding_function=None)
        await col.add(**ROWS)
        out = {
            "count": await col.count(),
            "get": await col.get(where={"kind": "fruit"}, include=["metadatas", "embeddings"]),
            "query": await col.query(query_embeddings=[[1, 0, 0]], n_results=3),
        }
        errs = []
        try:
            await col.add(ids=["q"], embeddings=[[1, 2]])
        except InvalidArgumentError as e:
            errs.append(str(e))
        try:
            await client.get_collection("no-such-collection")
        except NotFoundError as e:
            errs.append(str(e))
        names = [c.name for c in await client.list_collections()]
        await client.delete_collection(name)
        await client.close()
        return out, errs, names

    out, errs, names = asyncio.run(main())
    _same(out["count"], ref.count(), "count")
    _same(out["get"], ref.get(where={"kind": "fruit"}, include=["metadatas", "embeddings"]), "get")
    _same(out["query"], ref.query(query_embeddings=[[1, 0, 0]], n_results=3), "query")
    assert errs == ["Collection expecting embedding with dimension of 3, got 2", "Collection [no-such-collection] does not exist"]
    assert name in names


# --------------------------------------------------------------------------- no server


class _FakeServer:
    """Answers the bootstrap and write calls like Chroma; records requests."""

    def __init__(self, preflight=None):
        self.requests: list[httpx.Request] = []
        self.preflight = preflight if preflight is not None else {"max_batch_size": 5461, "supports_base64_encoding": True}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path.endswith("/auth/identity"):
            return httpx.Response(200, json={"user_id": "", "tenant": "default_tenant", "databases": ["default_database"]})
        if path.endswith("/pre-flight-checks"):
            return httpx.Response(200, json=self.preflight)
        if path.endswith("/tenants/nope"):
            return httpx.Response(404, json={"error": "NotFoundError", "message": "Tenant [nope] not found"}, headers={"chroma-trace-id": "abc"})
        if path.endswith("/databases/default_database") or path.endswith("/tenants/default_tenant"):
            return httpx.Response(200, json={"name": "x", "id": "0", "tenant": "default_tenant"})
        if path.endswith("/collections") and request.method == "POST":
            body = json.loads(request.content)
            return httpx.Response(200, json={"id": str(uuid.uuid4()), "name": body["name"], "metadata": None, "configuration_json": {}, "dimension": None, "tenant": "default_tenant", "database": "default_database"})
        if path.endswith("/add"):
            return httpx.Response(201, json={})
        if path.endswith("/teapot"):
            return httpx.Response(418, text="short and stout")
        if path.endswith("/weird"):
            return httpx.Response(400, json={"error": "SomethingElse", "message": "m"})
        return httpx.Response(404, json={"error": "NotFoundError", "message": f"no route {path}"})


@pytest.fixture
def fake(monkeypatch):
    def install(server: _FakeServer):
        transport = httpx.MockTransport(server)
        monkeypatch.setattr(hc.httpx, "Client", functools.partial(httpx.Client, transport=transport))
        monkeypatch.setattr(hc.httpx, "AsyncClient", functools.partial(httpx.AsyncClient, transport=transport))
        return server

    return install


def test_resolve_url():
    assert hc.resolve_url("localhost", False, "/api/v2", 8000) == "http://localhost:8000/api/v2"
    assert hc.resolve_url("localhost", True, "/api/v2", 8443) == "https://localhost:8443/api/v2"
    assert hc.resolve_url("http://example.com", False, "/api/v2", 8000) == "http://example.com/api/v2"
    assert hc.resolve_url("https://example.com:9000/", False, "/api/v2", 1) == "https://example.com:9000/api/v2"
    with pytest.raises(ValueError, match="Unrecognized protocol - ftp"):
        hc.resolve_url("ftp://x/y", False, "/api/v2", 1)


def test_bootstrap_calls_and_auth_headers(fake):
    server = fake(_FakeServer())
    settings = gleandb.Settings(chroma_client_auth_provider="chromadb.auth.token_authn.TokenAuthClientProvider", chroma_client_auth_credentials="s3cret")
    c = gleandb.HttpClient(host="h", port=1234, settings=settings, headers={"X-Extra": "1"})
    assert [r.url.path for r in server.requests] == ["/api/v2/auth/identity", "/api/v2/tenants/default_tenant", "/api/v2/tenants/default_tenant/databases/default_database"]
    first = server.requests[0]
    assert str(first.url).startswith("http://h:1234/api/v2/")
    assert first.headers["authorization"] == "Bearer s3cret" and first.headers["x-extra"] == "1"
    c.close()

    server.requests.clear()
    settings = gleandb.Settings(chroma_client_auth_provider="chromadb.auth.token_authn.TokenAuthClientProvider", chroma_client_auth_credentials="tok", chroma_auth_token_transport_header="X-Chroma-Token")
    gleandb.HttpClient(host="h", port=1, settings=settings).close()
    assert server.requests[0].headers["x-chroma-token"] == "tok" and "authorization" not in server.requests[0].headers

    server.requests.clear()
    settings = gleandb.Settings(chroma_client_auth_provider="chromadb.auth.basic_authn.BasicAuthClientProvider", chroma_client_auth_credentials="user:pass")
    gleandb.HttpClient(host="h", port=1, settings=settings).close()
    assert server.requests[0].headers["authorization"] == "Basic " + base64.b64encode(b"user:pass").decode()

    with pytest.raises(ValueError, match="Invalid token"):
        gleandb.HttpClient(host="h", port=1, settings=gleandb.Settings(chroma_client_auth_provider="token", chroma_client_auth_credentials="a b"))
    with pytest.raises(ValueError, match="is different to the one provided in HttpClient"):
        gleandb.HttpClient(host="h", port=1, settings=gleandb.Settings(chroma_server_host="other"))
    with pytest.raises(NotFoundError, match=r"Tenant \[nope\] not found") as info:
        gleandb.HttpClient(host="h", port=1, tenant="nope")
    assert info.value.trace_id == "abc"


def test_write_wire_format(fake):
    server = fake(_FakeServer())
    c = gleandb.HttpClient(host="h", port=1)
    col = c.create_collection("wire", embedding_function=None)
    col.add(ids=["a", "b"], embeddings=np.array([[1.5, -2.0], [3.4e38, 0.1]]), documents=["x", None])
    body = json.loads(server.requests[-1].content)
    assert server.requests[-1].url.path.endswith("/add")
    rows = [np.frombuffer(base64.b64decode(s), dtype="<f4") for s in body["embeddings"]]
    np.testing.assert_array_equal(np.vstack(rows), np.array([[1.5, -2.0], [3.4e38, 0.1]], dtype=np.float32))
    assert body["documents"] == ["x", None] and body["metadatas"] is None and body["uris"] is None
    preflights = [r for r in server.requests if r.url.path.endswith("/pre-flight-checks")]
    col.add(ids=["c"], embeddings=[[1, 2]])
    assert len([r for r in server.requests if r.url.path.endswith("/pre-flight-checks")]) == len(preflights) == 1  # cached
    c.close()

    server = fake(_FakeServer(preflight={"max_batch_size": 2}))
    c = gleandb.HttpClient(host="h", port=1)
    col = c.create_collection("wire", embedding_function=None)
    col.add(ids=["a"], embeddings=[[0.25, 1]])
    assert json.loads(server.requests[-1].content)["embeddings"] == [[0.25, 1.0]]
    with pytest.raises(ValueError, match="^Batch size 3 exceeds maximum batch size 2$"):
        col.add(ids=["a", "b", "c"], embeddings=[[1, 2]] * 3)
    c.close()


def test_error_mapping(fake):
    fake(_FakeServer())
    c = gleandb.HttpClient(host="h", port=1)
    with pytest.raises(Exception, match="short and stout") as info:
        c._run(_plan_of(("GET", "/teapot", None, None)))
    assert type(info.value) is Exception
    with pytest.raises(Exception) as info:
        c._run(_plan_of(("GET", "/weird", None, None)))
    assert type(info.value) is Exception and "SomethingElse" in str(info.value)
    with pytest.raises(NotFoundError, match="no route"):
        c.get_collection("x")
    c.close()


def _plan_of(req):
    return (yield req)


def test_async_bootstrap_on_fake(fake):
    server = fake(_FakeServer())

    async def main():
        c = await gleandb.AsyncHttpClient(host="h", port=1)
        col = await c.create_collection("a-wire", embedding_function=None)
        await col.add(ids=["a"], embeddings=[[1.0, 2.0]])
        await c.close()

    asyncio.run(main())
    assert [r.url.path.rsplit("/", 1)[-1] for r in server.requests][:3] == ["identity", "default_tenant", "default_database"]
    assert server.requests[-1].url.path.endswith("/add")
