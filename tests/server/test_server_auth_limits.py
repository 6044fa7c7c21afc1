"""Tenant-bound tokens, the JSON access log and the per-request limits of ``glean run``."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from gleandb.server.config import ServerSettings, TokenGrant, load_settings, parse_token_entry

from conftest import START_TIMEOUT_S, Server  # noqa: E402

chromadb = pytest.importorskip("chromadb", reason="the chromadb client is installed by gleandb's test extra")

ADMIN = "admin-secret-token"
ACME_PROD = "acme-prod-secret"
ACME_ANY = "acme-any-secret"
OTHER = "other-secret"
SECRETS = (ADMIN, ACME_PROD, ACME_ANY, OTHER)

CONFIG = f"""
auth_tokens:
  - {ADMIN}
  - {{token: {ACME_PROD}, tenant: acme, databases: [prod]}}
  - {{token: {ACME_ANY}, tenant: acme}}
  - {{token: {OTHER}, tenant: other}}
max_query_results: 50
max_query_embeddings: 3
max_regex_length: 16
"""

Q = "/api/v2/tenants/{t}/databases/{d}/collections/{c}/query"


def _settings(token: str, **extra) -> "chromadb.Settings":
    return chromadb.Settings(
        anonymized_telemetry=False,
        chroma_client_auth_provider="chromadb.auth.token_authn.TokenAuthClientProvider",
        chroma_client_auth_credentials=token,
        **extra,
    )


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("authsrv")
    cfg = d / "glean.yaml"
    cfg.write_text(CONFIG)
    s = Server(d / "data", "--config", str(cfg)).start()
    admin = chromadb.AdminClient(_settings(ADMIN, chroma_api_impl="chromadb.api.fastapi.FastAPI",
                                          chroma_server_host="127.0.0.1", chroma_server_http_port=s.port))
    for tenant, dbs in (("acme", ("prod", "staging")), ("other", ("default_database",))):
        admin.create_tenant(tenant)
        for db in dbs:
            admin.create_database(db, tenant=tenant)
    # a collection in the other tenant, created with the unrestricted token
    oc = chromadb.HttpClient(host="127.0.0.1", port=s.port, tenant="other", database="default_database",
                             settings=_settings(ADMIN))
    col = oc.create_collection("secret-plans")
    col.add(ids=["x"], embeddings=[[1.0, 0.0]], documents=["other tenant's document"])
    s.other_collection_id = str(col.id)
    yield s
    assert s.stop() == 0


def _h(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _assert_forbidden(r: httpx.Response) -> None:
    assert r.status_code == 403, (r.status_code, r.text)
    body = r.json()
    assert body["error"] == "AuthError"
    for leak in ("other", "secret", "staging", *SECRETS):
        assert leak not in body["message"]


# ------------------------------------------------------------------ config


def test_token_entries_parse_and_validate(tmp_path):
    cfg = tmp_path / "g.yaml"
    cfg.write_text(CONFIG)
    s = load_settings({}, str(cfg), environ={})
    assert s.auth_tokens[0] == ADMIN
    assert parse_token_entry(s.auth_tokens[1]) == TokenGrant(ACME_PROD, "acme", ("prod",))
    assert parse_token_entry(s.auth_tokens[2]) == TokenGrant(ACME_ANY, "acme", None)
    assert (s.max_query_results, s.max_query_embeddings, s.max_regex_length) == (50, 3, 16)
    d = ServerSettings()
    assert (d.max_query_results, d.max_query_embeddings, d.max_regex_length, d.access_log) == (10_000, 1_000_000, 4_096, True)
    # the environment keeps plain comma-separated tokens
    assert load_settings({}, None, environ={"GLEAN_AUTH_TOKENS": "a,b"}).auth_tokens == ["a", "b"]
    for bad in ("{token: t, databases: [prod]}", "{token: t, tenant: acme, role: admin}", "{tenant: acme}",
                "{token: t, tenant: acme, databases: []}"):
        cfg.write_text(f"auth_tokens: [{bad}]")
        with pytest.raises(ValueError) as ei:
            load_settings({}, str(cfg), environ={})
        assert "auth_tokens" in str(ei.value)
    cfg.write_text("max_query_results: 0")
    with pytest.raises(ValueError, match="max_query_results"):
        load_settings({}, str(cfg), environ={})


# ---------------------------------------------------------- tenant binding


def test_identity_reports_the_binding(auth_server):
    u = auth_server.url + "/api/v2/auth/identity"
    assert httpx.get(u, headers=_h(ACME_PROD)).json() == {"user_id": "token-1", "tenant": "acme", "databases": ["prod"]}
    assert httpx.get(u, headers=_h(ACME_ANY)).json()["databases"] == ["*"]
    assert httpx.get(u, headers=_h(ADMIN)).json()["tenant"] == "default_tenant"
    assert httpx.get(u, headers={"X-Chroma-Token": ACME_PROD}).json()["tenant"] == "acme"
    assert httpx.get(u, headers=_h("nope")).status_code == 401


def test_official_client_picks_up_tenant_and_database(auth_server):
    c = chromadb.HttpClient(host="127.0.0.1", port=auth_server.port, settings=_settings(
        ACME_PROD, chroma_overwrite_singleton_tenant_database_access_from_auth=True))
    assert (c.tenant, c.database) == ("acme", "prod")
    col = c.get_or_create_collection("acme-docs")
    col.upsert(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]], documents=["alpha", "beta"])
    assert col.query(query_embeddings=[[1.0, 0.1]], n_results=1)["ids"] == [["a"]]
    assert [x.name for x in c.list_collections()] == ["acme-docs"]
    # it is really in acme/prod
    admin = chromadb.HttpClient(host="127.0.0.1", port=auth_server.port, tenant="acme", database="prod",
                                settings=_settings(ADMIN))
    assert admin.get_collection("acme-docs").count() == 2
    # a tenant-wide token: tenant from the identity, database stays the default
    c2 = chromadb.HttpClient(host="127.0.0.1", port=auth_server.port, database="prod", settings=_settings(
        ACME_ANY, chroma_overwrite_singleton_tenant_database_access_from_auth=True))
    assert (c2.tenant, c2.database) == ("acme", "prod")
    assert c2.get_collection("acme-docs").count() == 2


def test_official_client_cannot_open_another_tenant(auth_server):
    with pytest.raises(Exception):  # client-side mismatch with the identity
        chromadb.HttpClient(host="127.0.0.1", port=auth_server.port, tenant="other", settings=_settings(
            ACME_PROD, chroma_overwrite_singleton_tenant_database_access_from_auth=True))
    with pytest.raises(Exception) as ei:  # server-side: 403 on get_tenant
        chromadb.HttpClient(host="127.0.0.1", port=auth_server.port, tenant="other", settings=_settings(ACME_PROD))
    assert "other tenant's document" not in str(ei.value)


def test_bound_token_is_refused_outside_its_tenant(auth_server):
    base, h = auth_server.url + "/api/v2", _h(ACME_PROD)
    oid = auth_server.other_collection_id
    other_db = f"{base}/tenants/other/databases/default_database"
    _assert_forbidden(httpx.get(f"{base}/tenants/other", headers=h))
    _assert_forbidden(httpx.get(f"{base}/tenants/other/databases", headers=h))
    _assert_forbidden(httpx.get(f"{other_db}/collections", headers=h))
    _assert_forbidden(httpx.get(f"{other_db}/collections/secret-plans", headers=h))
    _assert_forbidden(httpx.post(f"{other_db}/collections/{oid}/get", json={}, headers=h))
    _assert_forbidden(httpx.post(f"{other_db}/collections/{oid}/add", headers=h,
                                 json={"ids": ["y"], "embeddings": [[0.0, 1.0]]}))
    _assert_forbidden(httpx.post(f"{other_db}/collections/{oid}/delete", json={"ids": ["x"]}, headers=h))
    # the other tenant's collection id under the token's own tenant/database: the same 404 as
    # an id that exists nowhere, so the answer does not reveal that the id exists
    own = f"{base}/tenants/acme/databases/prod/collections"
    missing = "00000000-0000-4000-8000-000000000000"
    for make in (lambda c: httpx.post(f"{own}/{c}/get", json={}, headers=h),
                 lambda c: httpx.post(f"{own}/{c}/query", json={"query_embeddings": [[1.0, 0.0]]}, headers=h),
                 lambda c: httpx.get(f"{own}/by-id/{c}", headers=h)):
        foreign, nowhere = make(oid), make(missing)
        assert foreign.status_code == nowhere.status_code == 404, (foreign.text, nowhere.text)
        assert foreign.json()["error"] == "NotFoundError"
        assert foreign.json()["message"].replace(oid, missing) == nowhere.json()["message"]
    # another database of its own tenant
    _assert_forbidden(httpx.get(f"{base}/tenants/acme/databases/staging/collections", headers=h))
    _assert_forbidden(httpx.post(f"{base}/tenants/acme/databases", json={"name": "newdb"}, headers=h))
    assert [d["name"] for d in httpx.get(f"{base}/tenants/acme/databases", headers=h).json()] == ["prod"]
    # store-wide routes
    _assert_forbidden(httpx.post(f"{base}/reset", headers=h))
    _assert_forbidden(httpx.post(f"{base}/tenants", json={"name": "mine"}, headers=h))
    _assert_forbidden(httpx.get(auth_server.url + "/metrics", headers=h))
    # the other tenant's data is untouched and reachable by its own token and the admin token
    for tok in (OTHER, ADMIN):
        r = httpx.post(f"{other_db}/collections/{oid}/get", json={}, headers=_h(tok))
        assert r.status_code == 200 and r.json()["ids"] == ["x"]
    # a tenant-wide token reaches every database of its tenant, but not other tenants
    assert httpx.get(f"{base}/tenants/acme/databases/staging/collections", headers=_h(ACME_ANY)).status_code == 200
    assert len(httpx.get(f"{base}/tenants/acme/databases", headers=_h(ACME_ANY)).json()) == 2
    _assert_forbidden(httpx.post(f"{other_db}/collections/{oid}/get", json={}, headers=_h(ACME_ANY)))


# ------------------------------------------------------------------ limits


def _acme_collection(server) -> "chromadb.api.models.Collection.Collection":
    c = chromadb.HttpClient(host="127.0.0.1", port=server.port, tenant="acme", database="prod",
                            settings=_settings(ACME_PROD))
    col = c.get_or_create_collection("limits")
    col.upsert(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]], documents=["alpha", "beta"])
    return col


def test_configured_limits_with_the_official_client(auth_server):
    col = _acme_collection(auth_server)
    assert col.query(query_embeddings=[[1.0, 0.0]] * 3, n_results=50)["ids"][0] == ["a", "b"]
    with pytest.raises(chromadb.errors.InvalidArgumentError, match=r"n_results is 51.*50.*max_query_results"):
        col.query(query_embeddings=[[1.0, 0.0]], n_results=51)
    with pytest.raises(chromadb.errors.InvalidArgumentError, match=r"4 embeddings.*3.*max_query_embeddings"):
        col.query(query_embeddings=[[1.0, 0.0]] * 4, n_results=1)
    ok = {"$regex": "a" * 16}
    bad = {"$and": [{"$contains": "a"}, {"$not_regex": "b" * 17}]}
    assert col.get(where_document=ok)["ids"] == []
    for call in (lambda: col.get(where_document=bad), lambda: col.delete(where_document=bad),
                 lambda: col.query(query_embeddings=[[1.0, 0.0]], where_document=bad)):
        with pytest.raises(chromadb.errors.InvalidArgumentError, match=r"17 characters.*16.*max_regex_length"):
            call()
    assert col.count() == 2


def test_default_limits(server):
    """Chroma's defaults on the plain (no auth, default settings) server, with raw HTTP."""
    base = server.url + "/api/v2/tenants/default_tenant/databases/default_database/collections"
    r = httpx.post(base, json={"name": "default-limits", "get_or_create": True})
    cid = r.json()["id"]
    httpx.post(f"{base}/{cid}/upsert", json={"ids": ["a"], "embeddings": [[1.0, 0.0]]}).raise_for_status()

    def query(**body):
        return httpx.post(f"{base}/{cid}/query", json={"query_embeddings": [[1.0, 0.0]], **body}, timeout=60)

    assert query(n_results=10_000).status_code == 200
    r = query(n_results=10_001)
    assert r.status_code == 400 and r.json()["error"] == "InvalidArgumentError"
    assert "10001" in r.json()["message"] and "10000" in r.json()["message"]
    # chromadb has no query-embedding limit (its own tests send 1,585); body and response size bound it
    assert query(query_embeddings=[[1.0, 0.0]] * 1_585, n_results=1).status_code == 200
    assert query(where_document={"$regex": "x" * 4_096}).status_code == 200
    r = query(where_document={"$regex": "x" * 4_097})
    assert r.status_code == 400 and "4097" in r.json()["message"] and "4096" in r.json()["message"]
    r = httpx.post(f"{base}/{cid}/get", json={"where_document": {"$regex": "x" * 4_097}})
    assert r.status_code == 400 and "max_regex_length" in r.json()["message"]


# -------------------------------------------------------------- access log


def _access_lines(server) -> list[dict]:
    out = []
    for line in server.log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def _wait_for(server, trace_id: str) -> dict:
    # the line is written just after the response is sent: wait for it (bounded, not a speed assumption)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        for rec in _access_lines(server):
            if rec.get("trace_id") == trace_id:
                return rec
        time.sleep(0.05)
    raise AssertionError(f"no access-log line for trace {trace_id}:\n{server.log.read_text()}")


def test_access_log_lines(auth_server):
    col = _acme_collection(auth_server)
    base = auth_server.url + "/api/v2"
    body_marker = "do-not-log-this-body-text"
    r = httpx.post(auth_server.url + Q.format(t="acme", d="prod", c=col.id), headers=_h(ACME_PROD),
                   json={"query_embeddings": [[1.0, 0.0]], "n_results": 1, "where_document": {"$contains": body_marker}})
    assert r.status_code == 200
    rec = _wait_for(auth_server, r.headers["chroma-trace-id"])
    assert rec["method"] == "POST"
    assert rec["route"] == Q.format(t="{tenant}", d="{database}", c="{collection_id}")
    assert rec["status"] == 200
    assert isinstance(rec["duration_ms"], (int, float)) and rec["duration_ms"] >= 0
    assert rec["client"].startswith("127.0.0.1:")
    assert rec["user"] == "token-1"
    r401 = httpx.get(base + "/tenants/acme", headers=_h("wrong-token-value"))
    r403 = httpx.get(base + "/tenants/other", headers=_h(ACME_PROD))
    miss = httpx.get(base + "/no/such/route", headers=_h(ADMIN))
    assert _wait_for(auth_server, r401.headers["chroma-trace-id"])["status"] == 401
    assert _wait_for(auth_server, r403.headers["chroma-trace-id"])["status"] == 403
    assert _wait_for(auth_server, miss.headers["chroma-trace-id"])["route"] == "unmatched"
    text = auth_server.log.read_text()
    for secret in (*SECRETS, "wrong-token-value", body_marker, "Bearer"):
        assert secret not in text


def test_access_log_can_be_turned_off(tmp_path):
    s = Server(tmp_path / "data", env={"GLEAN_ACCESS_LOG": "false"}).start()
    try:
        r = httpx.get(s.url + "/api/v2/heartbeat")
        assert r.status_code == 200
    finally:
        assert s.stop() == 0  # graceful stop: every log line is written by now
    assert _access_lines(s) == []
