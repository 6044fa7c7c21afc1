"""The stored retrieval configuration over HTTP: created, echoed, replaced and used by the
``/retrieve`` route and ``gleandb.HttpClient``, which sends only the arguments it was given."""

from __future__ import annotations

import httpx
import pytest

import gleandb

DB = "/api/v2/tenants/default_tenant/databases/default_database"
DOCS = {
    "a": ("apple pie recipe with cinnamon", [1.0, 0.0, 0.0]),
    "b": ("apple apple orchard tour", [0.0, 1.0, 0.0]),
    "c": ("banana bread", [0.9, 0.1, 0.0]),
    "d": ("cinnamon rolls and apple cider", [0.0, 0.0, 1.0]),
    "e": ("car repair manual", [0.5, 0.5, 0.0]),
}
Q = [1.0, 0.0, 0.0]
ARGS = dict(query_texts=["apple"], query_embeddings=[Q], n_results=5)
BM25_ONLY = {"mode": "hybrid", "fusion": "rrf", "weights": {"dense": 0.0, "bm25": 1.0}}


@pytest.fixture
def hclient(server):
    c = gleandb.HttpClient(host="127.0.0.1", port=server.port)
    c.reset()
    return c


def _fill(col):
    ids = list(DOCS)
    col.add(ids=ids, documents=[DOCS[i][0] for i in ids], embeddings=[DOCS[i][1] for i in ids])
    return col


def test_http_stored_configuration_matches_embedded(hclient, tmp_path):
    hcol = _fill(hclient.create_collection("rcfg", embedding_function=None, configuration={"retrieval": BM25_ONLY}))
    local = _fill(gleandb.PersistentClient(path=str(tmp_path)).create_collection(
        "rcfg", embedding_function=None, configuration={"retrieval": BM25_ONLY}))
    assert hcol.configuration_json["retrieval"] == BM25_ONLY
    again = hclient.get_collection("rcfg", embedding_function=None)
    assert again.configuration_json["retrieval"] == BM25_ONLY
    over_http, embedded = hcol.retrieve(**ARGS), local.retrieve(**ARGS)
    for key in ("ids", "scores", "ranks", "ranker_scores"):
        assert over_http[key] == embedded[key], key
    assert over_http["ids"][0][:3] == ["b", "a", "d"]
    # explicit arguments win over HTTP too
    assert hcol.retrieve(**ARGS, weights={"dense": 1, "bm25": 0})["ids"][0][0] == "a"
    # modify replaces the block; {} returns to the built-in default
    hcol.modify(configuration={"retrieval": {"mode": "dense"}})
    assert hclient.get_collection("rcfg", embedding_function=None).configuration_json["retrieval"] == {"mode": "dense"}
    r = hcol.retrieve(query_embeddings=[Q], n_results=5)
    assert r["ids"][0][0] == "a" and all(x["bm25"] is None for x in r["ranks"][0])
    hcol.modify(configuration={"retrieval": {}})
    local.modify(configuration={"retrieval": {}})
    assert "retrieval" not in hclient.get_collection("rcfg", embedding_function=None).configuration_json
    assert hcol.retrieve(**ARGS)["scores"] == local.retrieve(**ARGS)["scores"]


def test_http_client_sends_only_given_arguments(hclient, server):
    hcol = _fill(hclient.create_collection("rsend", embedding_function=None))
    plain = hcol.retrieve(**ARGS)
    # another client changes the stored configuration; this handle's copy is now stale,
    # but its plain retrieve() must follow the server's stored values, not resend old defaults
    other = gleandb.HttpClient(host="127.0.0.1", port=server.port).get_collection("rsend", embedding_function=None)
    other.modify(configuration={"retrieval": BM25_ONLY})
    r = hcol.retrieve(**ARGS)
    assert r["ids"][0][:3] == ["b", "a", "d"] and r["ids"] != plain["ids"]
    assert r["scores"] == hcol.retrieve(**ARGS, **BM25_ONLY)["scores"]
    # the raw route: omitted fields come from the stored configuration
    url = f"{server.url}{DB}/collections/{hcol.id}/retrieve"
    raw = httpx.post(url, json={"query_texts": ["apple"], "query_embeddings": [Q], "n_results": 5})
    assert raw.status_code == 200, raw.text
    assert raw.json()["ids"] == r["ids"]
    # the server's candidate limit applies to stored candidates too
    other.modify(configuration={"retrieval": {"candidates": 20_000}})
    raw = httpx.post(url, json={"query_texts": ["apple"], "query_embeddings": [Q], "n_results": 5})
    assert raw.status_code == 400 and "candidates is 20000, more than this server's limit" in raw.json()["message"]
    assert len(hcol.retrieve(**ARGS, candidates=5)["ids"][0]) == 5  # an explicit value wins


def test_http_bad_blocks_are_refused(hclient, server):
    with pytest.raises(Exception, match=r"configuration.retrieval.fusion must be one of .* got 'max'"):
        hclient.create_collection("rbad", embedding_function=None, configuration={"retrieval": {"fusion": "max"}})
    col = hclient.create_collection("rbad", embedding_function=None, configuration={"retrieval": {"mode": "bm25"}})
    with pytest.raises(Exception, match=r"unknown key 'k' \(value 3\)"):
        col.modify(configuration={"retrieval": {"k": 3}})
    # the raw route refuses it too (the server validates), and nothing changes
    r = httpx.put(f"{server.url}{DB}/collections/{col.id}", json={"new_configuration": {"retrieval": {"rrf_k": 0}}})
    assert r.status_code == 400 and "configuration.retrieval.rrf_k must be a positive number, got 0" in r.text
    assert hclient.get_collection("rbad", embedding_function=None).configuration_json["retrieval"] == {"mode": "bm25"}


def test_official_chromadb_client_reads_a_collection_with_a_retrieval_block(hclient, server):
    chromadb = pytest.importorskip("chromadb", reason="the chromadb client is installed by gleandb's test extra")
    hclient.create_collection("rchroma", embedding_function=None, configuration={"retrieval": {"mode": "dense"}})
    c = chromadb.HttpClient(host="127.0.0.1", port=server.port,
                            settings=chromadb.Settings(anonymized_telemetry=False))
    col = c.get_collection("rchroma", embedding_function=None)
    col.add(ids=["x"], embeddings=[[1.0, 2.0, 3.0]])
    assert col.count() == 1


def test_context_route_uses_the_stored_mode(hclient, server):
    col = _fill(hclient.create_collection("rctx", embedding_function=None, configuration={"retrieval": {"mode": "bm25"}}))
    url = f"{server.url}{DB}/collections/{col.id}/context"
    r = httpx.post(url, json={"question": "apple", "candidates": 5, "dedupe": None})
    assert r.status_code == 200, r.text  # no query_embedding needed: the stored mode is bm25
    body = r.json()
    assert body["usage"]["first_stage"] == "retrieve bm25"
    assert [c["id"] for c in body["chunks"]][:3] == ["b", "a", "d"]
    col.modify(configuration={"retrieval": {}})  # built-in hybrid: the server cannot embed the question
    r = httpx.post(url, json={"question": "apple", "candidates": 5})
    assert r.status_code == 400 and "mode='hybrid' needs query_embedding" in r.json()["message"]
