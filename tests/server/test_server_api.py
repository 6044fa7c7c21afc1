"""``glean run`` driven by the official chromadb HTTP client and by raw HTTP."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import pytest

chromadb = pytest.importorskip("chromadb", reason="the chromadb client is installed by gleandb's test extra")
from chromadb import errors as cerr  # noqa: E402

from conftest import Server  # noqa: E402

DB = "/api/v2/tenants/default_tenant/databases/default_database"


def _vec(i: int, d: int = 4) -> list[float]:
    rng = np.random.default_rng(i)
    return rng.standard_normal(d).astype(np.float32).tolist()


# ------------------------------------------------------------------ collections


def test_collection_crud(http_client):
    c = http_client
    col = c.create_collection("alpha", metadata={"team": "search", "hnsw:space": "cosine"})
    assert col.name == "alpha" and col.metadata["team"] == "search"
    assert col.configuration_json["hnsw"]["space"] == "cosine"
    assert c.get_collection("alpha").id == col.id
    assert c.get_or_create_collection("alpha").id == col.id
    with pytest.raises(cerr.ChromaError, match=r"Collection \[alpha\] already exists"):
        c.create_collection("alpha")
    for name in ("beta", "gamma"):
        c.create_collection(name)
    assert c.count_collections() == 3
    names = [x.name for x in c.list_collections()]
    assert sorted(names) == ["alpha", "beta", "gamma"]
    assert len(c.list_collections(limit=2)) == 2
    assert len(c.list_collections(limit=2, offset=2)) == 1

    col.modify(name="alpha2", metadata={"team": "ranking"})
    got = c.get_collection("alpha2")
    assert got.id == col.id and got.metadata == {"team": "ranking"}
    with pytest.raises(cerr.NotFoundError, match=r"Collection \[alpha\] does not exist"):
        c.get_collection("alpha")
    col.modify(configuration={"hnsw": {"ef_search": 42}})
    assert c.get_collection("alpha2").configuration_json["hnsw"]["ef_search"] == 42

    c.delete_collection("beta")
    assert c.count_collections() == 2
    with pytest.raises(cerr.NotFoundError):
        c.delete_collection("beta")
    with pytest.raises(Exception, match="Expected a name containing 3-512 characters"):
        c.create_collection("a")  # validated by the client or the server, same message


def test_records_roundtrip(http_client):
    col = http_client.create_collection("recs")
    ids = [f"id{i}" for i in range(20)]
    col.add(
        ids=ids,
        embeddings=[_vec(i) for i in range(20)],
        documents=[f"document number {i}" + (" apple" if i % 2 else "") for i in range(20)],
        metadatas=[{"i": i, "even": i % 2 == 0, "tags": ["x", f"t{i % 3}"], "score": i / 2} for i in range(20)],
        uris=[f"s3://b/{i}" for i in range(20)],
    )
    assert col.count() == 20

    got = col.get(ids=["id3", "id1", "nope"], include=["embeddings", "documents", "metadatas", "uris"])
    assert got["ids"] == ["id1", "id3"]  # insertion order, unknown ids absent
    np.testing.assert_allclose(np.asarray(got["embeddings"][0]), np.asarray(_vec(1), np.float32), rtol=1e-6)
    assert got["documents"] == ["document number 1 apple", "document number 3 apple"]
    assert got["metadatas"][0] == {"i": 1, "even": False, "tags": ["x", "t1"], "score": 0.5}
    assert isinstance(got["metadatas"][0]["i"], int) and isinstance(got["metadatas"][0]["score"], float)
    assert got["uris"] == ["s3://b/1", "s3://b/3"]

    page = col.get(limit=5, offset=5, include=[])
    assert page["ids"] == ids[5:10]
    assert page["documents"] is None and page["metadatas"] is None and page["embeddings"] is None

    peek = col.peek(3)
    assert peek["ids"] == ids[:3] and len(peek["embeddings"]) == 3

    q = col.query(query_embeddings=[_vec(7), _vec(11)], n_results=3,
                  include=["distances", "documents", "metadatas", "embeddings"])
    assert [r[0] for r in q["ids"]] == ["id7", "id11"]
    assert len(q["ids"][0]) == 3 and len(q["distances"][1]) == 3
    assert q["distances"][0][0] == pytest.approx(0.0, abs=1e-5)
    assert q["distances"][0] == sorted(q["distances"][0])
    assert q["metadatas"][0][0]["i"] == 7 and q["documents"][1][0] == "document number 11 apple"
    assert len(q["embeddings"][0]) == 3
    q = col.query(query_embeddings=[_vec(7)], n_results=2)
    assert q["embeddings"] is None and q["distances"] is not None

    col.update(ids=["id0", "missing"], metadatas=[{"i": None, "new": "yes"}, {"x": 1}], documents=["changed", "x"],
               embeddings=[_vec(0), _vec(0)])
    g = col.get(ids=["id0"])
    assert g["documents"] == ["changed"]
    assert g["metadatas"][0] == {"even": True, "tags": ["x", "t0"], "score": 0.0, "new": "yes"}
    assert col.count() == 20

    col.upsert(ids=["id0", "id20"], embeddings=[_vec(100), _vec(20)], documents=["up0", "up20"])
    assert col.count() == 21
    g = col.get(ids=["id0", "id20"], include=["documents", "embeddings"])
    assert g["documents"] == ["up0", "up20"]
    np.testing.assert_allclose(np.asarray(g["embeddings"][0]), np.asarray(_vec(100), np.float32), rtol=1e-6)

    col.delete(ids=["id1", "id2"])
    assert col.count() == 19
    col.delete(where={"even": True})
    assert col.count() == 19 - 9  # id0 (upserted, keeps even) ... id18 minus id2
    assert all(not m["even"] for m in col.get(include=["metadatas"])["metadatas"] if m and "even" in m)


def test_filters(http_client, server):
    col = http_client.create_collection("filt")
    col.add(
        ids=["a", "b", "c", "d"],
        embeddings=[_vec(i) for i in range(4)],
        documents=["Rotate the API_KEY monthly", "billing runs first", "api key leaked", None],
        metadatas=[{"lang": "en", "n": 1, "tags": ["sec", "ops"]}, {"lang": "de", "n": 2, "tags": ["fin"]},
                   {"lang": "en", "n": 3}, {"lang": "fr", "n": 4, "tags": ["ops"]}],
    )

    def ids(**kw):
        return col.get(**kw)["ids"]

    assert ids(where={"lang": {"$in": ["de", "fr"]}}) == ["b", "d"]
    assert ids(where={"lang": {"$nin": ["de", "fr"]}}) == ["a", "c"]
    assert ids(where={"$and": [{"lang": "en"}, {"n": {"$gt": 1}}]}) == ["c"]
    assert ids(where={"$or": [{"n": {"$lte": 1}}, {"lang": "fr"}]}) == ["a", "d"]
    assert ids(where={"tags": {"$contains": "ops"}}) == ["a", "d"]
    assert ids(where={"tags": {"$not_contains": "ops"}}) == ["b", "c"]
    assert ids(where_document={"$contains": "billing"}) == ["b"]
    assert ids(where_document={"$regex": "(?i)api[_ ]key"}) == ["a", "c"]
    assert ids(where={"lang": "en"}, where_document={"$regex": "leak"}) == ["c"]
    q = col.query(query_embeddings=[_vec(0)], n_results=10, where={"lang": "en"})
    assert sorted(q["ids"][0]) == ["a", "c"]
    assert col.count() == 4
    # gleandb extension over HTTP: count with a filter
    url = f"{DB}/collections/{col.id}/count"
    r = httpx.post(server.url + url, json={"where": {"lang": "en"}})
    assert r.status_code == 200 and r.json() == 2


def test_error_classes(http_client, server):
    col = http_client.create_collection("errs")
    col.add(ids=["a"], embeddings=[[1.0, 2.0, 3.0]], documents=["x"])
    with pytest.raises(cerr.InvalidArgumentError, match="Collection expecting embedding with dimension of 3, got 2") as ei:
        col.add(ids=["b"], embeddings=[[1.0, 2.0]])
    assert ei.value.trace_id  # the client copies chroma-trace-id onto the error
    with pytest.raises(cerr.InvalidArgumentError, match="dimension of 3, got 2"):
        col.query(query_embeddings=[[1.0, 2.0]])
    with pytest.raises(cerr.DuplicateIDError):
        col.add(ids=["c", "c"], embeddings=[[1.0, 2.0, 3.0]] * 2)
    with pytest.raises(cerr.InvalidArgumentError, match="(?i)regex"):
        col.get(where_document={"$regex": "(unclosed"})
    with pytest.raises(cerr.InvalidArgumentError, match="Invalid where clause"):
        col.get(where={"$bad": 1})
    http_client.delete_collection("errs")
    with pytest.raises(cerr.NotFoundError, match=r"does not exist"):
        col.count()
    with pytest.raises(cerr.NotFoundError):
        http_client.get_collection("errs")
    assert col.name == "errs"


def test_tenants_and_databases(http_client, server):
    admin = chromadb.AdminClient(chromadb.Settings(
        chroma_api_impl="chromadb.api.fastapi.FastAPI", chroma_server_host="127.0.0.1",
        chroma_server_http_port=server.port, anonymized_telemetry=False))
    admin.create_tenant("acme")
    assert admin.get_tenant("acme")["name"] == "acme"
    with pytest.raises(cerr.ChromaError, match=r"Tenant \[acme\] already exists"):
        admin.create_tenant("acme")
    with pytest.raises(cerr.NotFoundError):
        admin.get_tenant("nobody")
    admin.create_database("prod", tenant="acme")
    admin.create_database("dev", tenant="acme")
    assert [d["name"] for d in admin.list_databases(tenant="acme")] == ["dev", "prod"]
    assert admin.get_database("prod", tenant="acme")["name"] == "prod"
    with pytest.raises(cerr.ChromaError, match=r"already exists"):
        admin.create_database("prod", tenant="acme")

    prod = chromadb.HttpClient(host="127.0.0.1", port=server.port, tenant="acme", database="prod",
                               settings=chromadb.Settings(anonymized_telemetry=False))
    col = prod.create_collection("shared_name")
    col.add(ids=["p"], embeddings=[[1.0, 0.0]])
    http_client.create_collection("shared_name").add(ids=["x", "y"], embeddings=[[0.0, 1.0], [1.0, 1.0]])
    assert prod.get_collection("shared_name").count() == 1
    assert http_client.get_collection("shared_name").count() == 2
    assert prod.count_collections() == 1

    admin.delete_database("prod", tenant="acme")
    with pytest.raises(cerr.NotFoundError):
        admin.get_database("prod", tenant="acme")
    assert [d["name"] for d in admin.list_databases(tenant="acme")] == ["dev"]
    with pytest.raises(Exception, match="(?i)database"):
        chromadb.HttpClient(host="127.0.0.1", port=server.port, tenant="acme", database="prod",
                            settings=chromadb.Settings(anonymized_telemetry=False))


# ------------------------------------------------------------------ raw HTTP


def test_wire_format(http_client, server):
    url = server.url
    r = httpx.get(url + "/api/v2")
    assert r.status_code == 200 and isinstance(r.json()["nanosecond heartbeat"], int)
    assert r.headers["chroma-trace-id"]
    assert httpx.get(url + "/api/v2/version").json() == "1.0.0"
    pf = httpx.get(url + "/api/v2/pre-flight-checks").json()
    assert pf["supports_base64_encoding"] is True and pf["max_batch_size"] >= 100_000
    assert httpx.get(url + "/api/v2/healthcheck").json() == {"is_executor_ready": True, "is_log_client_ready": True}
    assert httpx.get(url + "/api/v2/auth/identity").json()["tenant"] == "default_tenant"
    r = httpx.get(url + "/api/v1/heartbeat")
    assert r.status_code == 410 and r.json()["error"] == "Unimplemented"

    r = httpx.post(url + DB + "/collections", json={"name": "wire", "metadata": {"k": 1}})
    assert r.status_code == 200
    body = r.json()
    assert set(body) >= {"id", "name", "configuration_json", "metadata", "dimension", "tenant", "database",
                         "log_position", "version", "schema"}
    cid = body["id"]
    base = f"{url}{DB}/collections/{cid}"
    assert httpx.get(f"{url}{DB}/collections/by-id/{cid}").json()["name"] == "wire"
    assert httpx.get(f"{url}{DB}/collections_count").json() == 1

    b64 = base64.b64encode(np.asarray([0.5, -1.0, 2.0], "<f4").tobytes()).decode()
    r = httpx.post(base + "/add", json={"ids": ["j", "b"], "embeddings": [[1.0, 2.0, 3.0], b64],
                                        "metadatas": [{"a": 1}, None], "documents": ["doc j", None]})
    assert r.status_code == 201 and r.json() == {}
    r = httpx.post(base + "/get", json={"ids": ["b"], "include": ["embeddings", "uris"]})
    assert r.json() == {"ids": ["b"], "embeddings": [[0.5, -1.0, 2.0]], "documents": None, "uris": [None],
                        "metadatas": None, "include": ["embeddings", "uris"]}
    assert httpx.get(base + "/count").json() == 2
    r = httpx.post(base + "/query", json={"query_embeddings": [[1.0, 2.0, 3.0]], "n_results": 1})
    assert r.json()["ids"] == [["j"]] and r.json()["distances"][0][0] == pytest.approx(0.0)
    assert set(r.json()["include"]) == {"documents", "metadatas", "distances"}
    r = httpx.post(base + "/delete", json={"ids": ["j"]})
    assert r.status_code == 200 and r.json() == {"deleted": 1}

    # error bodies and status codes
    def err(resp, status, name, text=""):
        assert resp.status_code == status, resp.text
        assert resp.json()["error"] == name and text in resp.json()["message"], resp.text
        assert resp.headers["chroma-trace-id"]

    err(httpx.post(base + "/add", content=b"{not json", headers={"content-type": "application/json"}),
        400, "InvalidArgumentError", "Failed to parse the request body as JSON")
    err(httpx.post(base + "/add", json={"ids": "x", "embeddings": [[1.0]]}), 422, "ChromaError",
        "Failed to deserialize the JSON body")
    err(httpx.post(base + "/add", json={"ids": ["x"]}), 422, "ChromaError", "embeddings")
    err(httpx.post(base + "/add", json={"ids": ["x"], "embeddings": [[1.0, 2.0, 3.0]], "metadatas": [{"a": None}]}),
        422, "ChromaError")
    err(httpx.post(base + "/get", json={"include": ["data"]}), 422, "ChromaError")
    err(httpx.post(base + "/get", json={"limit": -1}), 422, "ChromaError")
    err(httpx.post(base + "/add", json={"ids": ["x"], "embeddings": [[1.0, 2.0]]}), 400, "InvalidArgumentError",
        "Collection expecting embedding with dimension of 3, got 2")
    err(httpx.post(base + "/add", json={"ids": ["x"], "embeddings": ["!!notbase64"]}), 400, "InvalidArgumentError")
    err(httpx.post(base + "/get", json={"where": {"$bad": 1}}), 400, "InvalidArgumentError", "Invalid where clause")
    err(httpx.post(base + "/get", json={"where_document": {"$regex": "("}}), 400, "InvalidArgumentError")
    err(httpx.post(base + "/delete", json={"limit": 1}), 400, "InvalidArgumentError", "limit can only be specified")
    err(httpx.post(f"{url}{DB}/collections/not-a-uuid/get", json={}), 400, "InvalidArgumentError",
        "Collection ID is not a valid UUIDv4")
    missing = "11111111-2222-4333-8444-555555555555"
    err(httpx.post(f"{url}{DB}/collections/{missing}/get", json={}), 404, "NotFoundError",
        f"Collection [{missing}] does not exist.")
    err(httpx.get(f"{url}{DB}/collections/nope"), 404, "NotFoundError", "Collection [nope] does not exist")
    err(httpx.post(f"{url}{DB}/collections", json={"name": "wire"}), 409, "ChromaError", "already exists")
    err(httpx.post(f"{url}{DB}/collections", json={"name": "x"}), 400, "InvalidArgumentError")
    err(httpx.post(f"{url}/api/v2/tenants/default_tenant/databases/nodb/collections", json={"name": "abc"}),
        400, "InvalidArgumentError", "Database [nodb] does not exist")
    assert httpx.get(f"{url}/api/v2/tenants/default_tenant/databases/nodb/collections").json() == []
    err(httpx.post(base + "/search", json={}), 400, "InvalidArgumentError", "searches must be a list")
    err(httpx.post(base + "/fork", json={"new_name": "f"}), 400, "InvalidArgumentError", "new_name")
    err(httpx.post(url + "/api/v2/tenants", json={"name": "ab"}), 400, "InvalidArgumentError")

    assert httpx.get(url + "/openapi.json").json()["paths"]
    metrics = httpx.get(url + "/metrics").text
    assert 'glean_http_requests_total{method="POST",route="/api/v2/tenants/{tenant}/databases/{database}/collections/{collection_id}/add",status="201"}' in metrics
    assert "glean_http_request_duration_seconds_bucket" in metrics
    assert "glean_collections 1.0" in metrics
    records = [l for l in metrics.splitlines() if l.startswith('glean_collection_records{collection="wire"')]
    count = httpx.get(base + "/count").json()
    assert records and float(records[0].rsplit(" ", 1)[1]) == count
    assert 'glean_flushes_total{collection="wire"' in metrics
    assert 'glean_compactions_total{collection="wire"' in metrics
    wal = {name: float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
           for name in ("glean_wal_records_total", "glean_wal_syncs_total")
           if line.startswith(name + '{collection="wire"')}
    assert wal and 1 <= wal["glean_wal_syncs_total"] <= wal["glean_wal_records_total"]


def test_update_documents_without_embeddings_keeps_vectors(http_client, server):
    col = http_client.create_collection("upd")
    col.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]], documents=["one", "two"])
    r = httpx.post(f"{server.url}{DB}/collections/{col.id}/update",
                   json={"ids": ["b", "zz"], "documents": ["TWO", "nothing"]})
    assert r.status_code == 200, r.text
    g = col.get(include=["documents", "embeddings"])
    assert g["documents"] == ["one", "TWO"]
    np.testing.assert_allclose(np.asarray(g["embeddings"]), [[1.0, 0.0], [0.0, 1.0]])


def test_body_size_limit_and_reset_refused(tmp_path):
    s = Server(tmp_path / "small", "--max-body-bytes", "2000").start()
    try:
        col = chromadb.HttpClient(host="127.0.0.1", port=s.port,
                                  settings=chromadb.Settings(anonymized_telemetry=False)).create_collection("big")
        col.add(ids=["ok"], embeddings=[[1.0] * 8])
        with pytest.raises(Exception, match="Request body too large"):
            col.add(ids=[f"i{i}" for i in range(200)], embeddings=[[1.0] * 8] * 200)
        r = httpx.post(f"{s.url}{DB}/collections/{col.id}/add", content=b"x" * 5000,
                       headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["error"] == "ChromaError"

        # chunked body (no content-length) over the limit
        def chunks():
            for _ in range(10):
                yield b" " * 500

        r = httpx.post(f"{s.url}{DB}/collections/{col.id}/add", content=chunks(),
                       headers={"content-type": "application/json"})
        assert r.status_code == 413, r.text
        assert col.count() == 1
        r = httpx.post(s.url + "/api/v2/reset")
        assert r.status_code == 403 and r.json() == {"error": "AuthorizationError",
                                                     "message": "Reset is disabled by config"}
        with pytest.raises(cerr.AuthorizationError, match="Reset is disabled"):
            chromadb.HttpClient(host="127.0.0.1", port=s.port,
                                settings=chromadb.Settings(anonymized_telemetry=False, allow_reset=True)).reset()
        assert col.count() == 1
    finally:
        assert s.stop() == 0


def test_reset_allowed(http_client):
    http_client.create_collection("doomed").add(ids=["a"], embeddings=[[1.0]])
    assert http_client.count_collections() == 1
    assert http_client.reset() is True
    assert http_client.count_collections() == 0
