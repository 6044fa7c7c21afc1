"""``/mcp`` under a real ``glean run``: streamable HTTP through the SDK's client, behind the
server's auth (no credentials: 401; a tenant-bound token reaches only its tenant)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import httpx
import pytest

from mcp_support import HASHING, Client, call, error, ok, run

httpx2 = pytest.importorskip("httpx2", reason="the mcp SDK's HTTP client")
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

# tests/server's `glean run` fixture, loaded by path (a second module named conftest would clash)
_spec = importlib.util.spec_from_file_location("glean_server_fixture",
                                               Path(__file__).parents[1] / "server" / "conftest.py")
_fixture = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixture)
Server = _fixture.Server

ADMIN = "mcp-admin-token"
ACME = "mcp-acme-token"
CONFIG = f"""
auth_tokens:
  - {ADMIN}
  - {{token: {ACME}, tenant: acme}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("mcpsrv")
    (d / "glean.yaml").write_text(CONFIG)
    s = Server(d / "data", "--config", str(d / "glean.yaml")).start()
    h = {"Authorization": f"Bearer {ADMIN}"}
    assert httpx.post(s.url + "/api/v2/tenants", json={"name": "acme"}, headers=h).status_code == 200
    assert httpx.post(s.url + "/api/v2/tenants/acme/databases", json={"name": "default_database"},
                      headers=h).status_code == 200
    yield s
    assert s.stop() == 0


def _client(server, token: str | None, **headers: str) -> Client:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    http = httpx2.AsyncClient(headers=headers, timeout=60)
    return Client(streamable_http_client(server.url + "/mcp", http_client=http))


def test_no_credentials_is_refused(server):
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "t", "version": "0"}}}
    accept = {"Accept": "application/json, text/event-stream"}
    r = httpx.post(server.url + "/mcp", json=init, headers=accept)
    assert r.status_code == 401 and r.json()["error"] == "AuthError"
    r = httpx.post(server.url + "/mcp", json=init, headers={**accept, "Authorization": "Bearer wrong"})
    assert r.status_code == 401

    async def go():
        async with _client(server, None) as c:
            await c.list_tools()

    with pytest.raises(BaseException):  # the SDK's client cannot even initialize
        run(go())


def test_tools_over_http_and_tenant_binding(server):
    async def admin():
        async with _client(server, ADMIN) as c:
            ok(await call(c, "create_collection", name="secret-plans", configuration=HASHING))
            ok(await call(c, "add", collection="secret-plans", ids=["s"], documents=["default tenant secret"]))
            r = ok(await call(c, "retrieve", collection="secret-plans", query_texts=["secret"]))
            # the unrestricted token may pick a tenant by header
            async with _client(server, ADMIN, **{"X-Glean-Tenant": "acme"}) as a:
                acme_list = ok(await call(a, "list_collections"))
            return r, acme_list

    r, acme_list = run(admin())
    assert r["results"][0]["matches"][0]["id"] == "s"
    assert acme_list == {"collections": []}

    async def acme():
        async with _client(server, ACME) as c:
            ok(await call(c, "create_collection", name="acme-notes", configuration=HASHING))
            ok(await call(c, "add", collection="acme-notes", ids=["a"], documents=["acme roadmap"]))
            mine = ok(await call(c, "list_collections"))
            other = error(await call(c, "get", collection="secret-plans"))
            grep = error(await call(c, "grep", collection="secret-plans", pattern="secret"))
            res = [str(x.uri) for x in (await c.list_resources()).resources]
            listing = (await c.read_resource("gleandb://collections")).contents[0].text
        async with _client(server, ACME, **{"X-Glean-Tenant": "default_tenant"}) as c:
            forbidden = error(await call(c, "list_collections"))
        return mine, other, grep, res, listing, forbidden

    mine, other, grep, res, listing, forbidden = run(acme())
    assert [x["name"] for x in mine["collections"]] == ["acme-notes"]
    assert "'secret-plans' does not exist" in other and "'secret-plans' does not exist" in grep
    assert "gleandb://collections" in res and "acme-notes" in listing and "secret-plans" not in listing
    assert "Forbidden" in forbidden and "default_tenant" in forbidden

    # what the acme token wrote is in acme's tenant, seen over the Chroma API too
    h = {"Authorization": f"Bearer {ADMIN}"}
    names = [c["name"] for c in httpx.get(server.url + "/api/v2/tenants/acme/databases/default_database/collections",
                                          headers=h).json()]
    assert names == ["acme-notes"]


def test_http_backend_fails_closed_without_a_request():
    """A message without its HTTP request has no credentials to check: refused, not unrestricted."""
    from mcp.server.mcpserver.exceptions import ToolError

    from gleandb.server.mcp import HttpBackend

    class State:
        def client(self, tenant, database):  # pragma: no cover - must not be reached
            raise AssertionError("reached the store")

    with pytest.raises(ToolError, match="credentials cannot be checked"):
        HttpBackend(State()).client()


def test_code_tools_read_the_callers_tenant(server, tmp_path):
    """A repository indexed into tenant acme (over the HTTP API, with acme's token) is what acme's
    MCP calls see; the default tenant has no code index."""
    import shutil
    import sys

    if shutil.which("git") is None:
        pytest.skip("the code index runs git")
    import gleandb
    from gleandb.code import CodeIndex
    from gleandb.embeddings.hashing import HashingEmbeddingFunction

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "code"))
    from code_gitrepo import build, git

    path, shas, _feature = build(tmp_path)
    port = int(server.url.rsplit(":", 1)[1])
    http = gleandb.HttpClient("127.0.0.1", port, headers={"Authorization": f"Bearer {ACME}"}, tenant="acme")
    CodeIndex(http, str(path), HashingEmbeddingFunction(64)).index_rev("main")

    async def go():
        async with _client(server, ACME) as c:
            repos = ok(await call(c, "code_repos"))
            grep = ok(await call(c, "code_grep", repo="proj", pattern="^def ", rev="main"))
        async with _client(server, ADMIN) as c:
            elsewhere = error(await call(c, "code_grep", repo="proj", pattern="^def "))
        return repos, grep, elsewhere

    repos, grep, elsewhere = run(go())
    assert [r["repo"] for r in repos["repos"]] == ["proj"] and repos["repos"][0]["aliases"] == {"main": shas[-1]}
    expected = git(path, "grep", "-n", "-E", "^def ", shas[-1]).replace(f"{shas[-1]}:", "").strip()
    assert grep["text"] == expected and grep["commit"] == shas[-1]
    assert "no code index named 'proj'" in elsewhere
