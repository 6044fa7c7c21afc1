"""Forks over HTTP: the official chromadb client's ``collection.fork`` / ``fork_count``
against ``glean run``, gleandb's HttpClient (fork, fork(version=N), versions)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

chromadb = pytest.importorskip("chromadb", reason="the chromadb client is installed by gleandb's test extra")

import gleandb  # noqa: E402

DB = "/api/v2/tenants/default_tenant/databases/default_database"


def _vecs(n, d=4, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32).tolist()


def test_official_client_fork_and_fork_count(http_client):
    src = http_client.create_collection("fork-src", metadata={"team": "x"}, embedding_function=None)
    src.add(ids=[f"r{i}" for i in range(50)], embeddings=_vecs(50), documents=[f"d{i}" for i in range(50)])
    fork = src.fork("fork-dst")
    assert fork.name == "fork-dst" and fork.id != src.id
    assert fork.metadata == {"team": "x"}
    assert fork.count() == 50
    fork.delete(ids=["r0"])
    fork.update(ids=["r1"], documents=["changed"], embeddings=_vecs(1, seed=9))
    src.add(ids=["new"], embeddings=_vecs(1, seed=3))
    assert src.count() == 51 and fork.count() == 49
    assert src.get(ids=["r1"])["documents"] == ["d1"]
    assert fork.get(ids=["r1"])["documents"] == ["changed"]
    assert src.fork_count() == 1 and fork.fork_count() == 0
    fork.fork("fork-dst-2")
    assert fork.fork_count() == 1
    # same error as create_collection for a taken name
    with pytest.raises(Exception) as fork_err:
        src.fork("fork-dst")
    with pytest.raises(Exception) as create_err:
        http_client.create_collection("fork-dst")
    assert type(fork_err.value) is type(create_err.value)
    assert str(fork_err.value) == str(create_err.value)
    assert "already exists" in str(fork_err.value)
    # still usable through get_collection after the fork call
    assert http_client.get_collection("fork-dst-2").count() == 49


def test_fork_route_errors(http_client, server):
    src = http_client.create_collection("fork-errors", embedding_function=None)
    base = f"{server.url}{DB}/collections/{src.id}"
    r = httpx.post(base + "/fork", json={"new_name": "x"})
    assert r.status_code == 400 and "new_name" in r.json()["message"]
    r = httpx.post(base + "/fork", json={"new_name": "ok-name", "version": 999})
    assert r.status_code == 400 and "not retained" in r.json()["message"]
    r = httpx.post(f"{server.url}{DB}/collections/11111111-2222-4333-8444-555555555555/fork", json={"new_name": "abc"})
    assert r.status_code == 404
    assert [c.name for c in http_client.list_collections()] == ["fork-errors"]


def test_gleandb_http_client_fork_versions(http_client, server):
    c = gleandb.HttpClient(host="127.0.0.1", port=server.port)
    col = c.create_collection("hv-src", embedding_function=None)
    col.add(ids=[f"r{i}" for i in range(20)], embeddings=_vecs(20))
    f = col.fork("hv-fork")
    assert f.count() == 20 and f.name == "hv-fork"
    assert col.fork_count() == 1
    assert col.versions() == []  # nothing published yet: the rows are in the memtable (WAL)
    versions = f.versions()  # a fork's first manifest is published by the fork itself
    assert [v["version"] for v in versions] == [1] and versions[0]["records"] == 20
    assert versions[0]["forked_from"] == {"collection": str(col.id), "version": 0}
    f.add(ids=["later"], embeddings=_vecs(1, seed=5))
    old = f.fork("hv-old", version=1)
    assert old.count() == 20 and f.count() == 21
    with pytest.raises(gleandb.errors.InvalidArgumentError, match="not retained"):
        col.fork("hv-none", version=1)
    c.close()
