"""gleandb.Memory over ``glean run`` (gleandb.HttpClient): the same behaviour as embedded,
scopes isolated on the server, and a tenant-bound token cannot reach another tenant's memories."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import gleandb
from gleandb.embeddings.hashing import HashingEmbeddingFunction
from gleandb.memory import MemoryNotFoundError

_spec = importlib.util.spec_from_file_location("server_conftest", Path(__file__).parents[1] / "server" / "conftest.py")
_server = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_server)

ADMIN, ACME, OTHER = "admin-secret-token", "acme-secret", "other-secret"
CONFIG = f"""
auth_tokens:
  - {ADMIN}
  - {{token: {ACME}, tenant: acme}}
  - {{token: {OTHER}, tenant: other}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("memsrv")
    (d / "glean.yaml").write_text(CONFIG)
    s = _server.Server(d / "data", "--config", str(d / "glean.yaml")).start()
    admin = gleandb.HttpAdminClient(host="127.0.0.1", port=s.port, headers={"Authorization": f"Bearer {ADMIN}"})
    for tenant in ("acme", "other"):
        admin.create_tenant(tenant)
        admin.create_database("default_database", tenant=tenant)
    yield s
    assert s.stop() == 0


def _client(server, token, tenant="default_tenant"):
    return gleandb.HttpClient(host="127.0.0.1", port=server.port, tenant=tenant,
                              headers={"Authorization": f"Bearer {token}"})


def _mem(client, scope, **kw):
    return gleandb.Memory(client, scope, embedding_function=HashingEmbeddingFunction(), **kw)


def test_memory_over_http(server):
    now = [1_700_000_000.0]
    clock = lambda: now[0]  # noqa: E731
    http = _client(server, ADMIN)
    mem, other = _mem(http, {"user": "u42", "agent": "support"}, clock=clock), _mem(http, {"user": "u43"}, clock=clock)
    a = mem.remember("Prefers invoices in EUR; billing contact is ana@example.com", metadata={"kind": "preference"})
    o = other.remember("Prefers invoices in EUR; billing contact is ana@example.com")
    assert o != a and other.last_decision.decision == "unrelated"  # no dedupe across scopes
    hits = mem.recall("which currency for invoices?", k=5)
    assert [h.id for h in hits] == [a] and hits[0].why["bm25"]["rank"] == 0
    old = mem.remember("I live in Paris")
    new = mem.remember("I live in Berlin now")
    assert mem.last_decision.decision == "supersedes" and mem.last_decision.id == old
    mem.update(a, "Prefers invoices in CHF since March")
    assert [e["text"] for e in mem.history(a)] == ["Prefers invoices in EUR; billing contact is ana@example.com",
                                                    "Prefers invoices in CHF since March"]
    assert [h.id for h in mem.recall("where do I live")][:1] == [new]
    ctx = mem.context("prepare the renewal email about invoices", max_tokens=800)
    assert "CHF" in ctx.text and "Berlin" in ctx.text
    for call in (lambda: other.update(a, "x"), lambda: other.history(a)):
        with pytest.raises(MemoryNotFoundError):
            call()
    assert other.forget(a) == 0 and other.get(a) is None
    assert mem.forget(where={"kind": "preference"}) == 1
    assert all(e["text"] is None for e in mem.history(a))
    t = mem.remember("Parked on level 3", ttl=60)
    now[0] += 61
    assert t not in [h.id for h in mem.recall("parked level")]
    assert [e["event"] for e in mem.history(t)] == ["added", "expired"]
    assert [h.text for h in other.list()] == ["Prefers invoices in EUR; billing contact is ana@example.com"]


def test_tenant_bound_token_cannot_reach_another_tenants_memories(server):
    acme = _mem(_client(server, ACME, "acme"), {"user": "u1"})
    secret = acme.remember("Acme's renewal price is 41,000 EUR")
    # the other tenant's token cannot open the acme tenant at all
    with pytest.raises(gleandb.errors.ChromaAuthError) as ei:
        _mem(_client(server, OTHER, "acme"), {"user": "u1"}).recall("renewal price")
    assert "Forbidden" in str(ei.value) and "41,000" not in str(ei.value)
    # in its own tenant, the same scope and collection name are another store
    mine = _mem(_client(server, OTHER, "other"), {"user": "u1"})
    assert mine.recall("renewal price") == [] and mine.get(secret) is None
    with pytest.raises(MemoryNotFoundError):
        mine.history(secret)
    assert mine.forget(secret) == 0
    assert [h.id for h in acme.recall("renewal price")] == [secret]
