"""The Search API and the /retrieve extension over HTTP: the official chromadb client's
``collection.search`` against ``glean run``, raw wire bodies, gleandb.HttpClient."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

import gleandb

ce = pytest.importorskip("chromadb.execution.expression", reason="chromadb is in gleandb's test extra")

DB = "/api/v2/tenants/default_tenant/databases/default_database"
RNG = np.random.default_rng(7)
E = RNG.integers(-3, 4, size=(40, 4)).astype(np.float32)
DOCS = [f"{'apple' if i % 3 == 0 else 'pear'} {'tart' if i % 4 == 0 else 'juice'} number {i}" for i in range(40)]
METAS = [{"g": i % 4, "p": i} for i in range(40)]


@pytest.fixture
def loaded(http_client, tmp_path):
    col = http_client.create_collection("srch", embedding_function=None)
    ids = [f"r{i:02d}" for i in range(40)]
    col.add(ids=ids, embeddings=E, documents=DOCS, metadatas=METAS)
    col.delete(ids=["r01"])
    local = gleandb.PersistentClient(path=str(tmp_path / "local")).create_collection("srch", embedding_function=None)
    local.add(ids=ids, embeddings=E, documents=DOCS, metadatas=METAS)
    local.delete(ids=["r01"])
    return col, local


SEARCHES = [
    lambda m: m.Search().rank(m.Knn(query=E[1].tolist(), limit=10)).select(m.K.SCORE, m.K.DOCUMENT, "g").limit(5),
    lambda m: m.Search().where((m.K("g") == 1) | m.K.DOCUMENT.contains("tart")).rank(
        m.Rrf([m.Knn(query=E[2].tolist(), return_rank=True, default=100), m.Knn(query=E[3].tolist(), return_rank=True, default=100)])
    ).select(m.K.SCORE).limit(8, offset=1),
    lambda m: m.Search().rank(m.Knn(query=E[4].tolist(), limit=30)).group_by(
        m.GroupBy(keys=m.K("g"), aggregate=m.MinK(keys=m.K.SCORE, k=2))).select(m.K.SCORE, m.K.METADATA),
    lambda m: m.Search().where(m.K.ID.not_in(["r00", "r02"]) & (m.K("p") < 20)).select(m.K.EMBEDDING).limit(3),
    lambda m: m.Search().rank(m.Knn(query=E[5].tolist(), limit=6) * 2 - m.Knn(query=E[6].tolist(), limit=40, default=50.0)).select_all(),
]


def test_official_client_search_matches_embedded(loaded):
    col, local = loaded
    theirs = col.search([b(ce) for b in SEARCHES])
    ours = local.search([b(gleandb) for b in SEARCHES])
    assert type(theirs).__name__ == "SearchResult"
    assert theirs["ids"] == ours["ids"]
    assert theirs["scores"] == ours["scores"]
    assert theirs["documents"] == ours["documents"]
    assert theirs["metadatas"] == ours["metadatas"]
    assert theirs["embeddings"][3] == [[float(x) for x in E[i]] for i in (3, 4, 5)]
    assert "r01" not in sum(theirs["ids"], [])
    assert theirs["ids"][0] and len(theirs["ids"][0]) == 5
    rows = theirs.rows()
    assert rows[0][0]["id"] == theirs["ids"][0][0] and "score" in rows[0][0] and "document" in rows[0][0]


def test_official_client_errors_are_400(loaded):
    col, _local = loaded
    chromadb = pytest.importorskip("chromadb")
    with pytest.raises(chromadb.errors.InvalidArgumentError, match="dimension of 4, got 2"):
        col.search(ce.Search().rank(ce.Knn(query=[1.0, 2.0])))
    with pytest.raises(chromadb.errors.InvalidArgumentError, match="group_by requires a rank"):
        col.search(ce.Search().group_by(ce.GroupBy(keys=ce.K("g"), aggregate=ce.MinK(keys=ce.K.SCORE, k=1))))


def test_wire_extensions_and_limits(loaded, server):
    col, local = loaded
    url = f"{server.url}{DB}/collections/{col.id}/search"
    body = {"searches": [{"rank": {"$bm25": {"query": "apple tart", "limit": 5}}, "select": {"keys": ["#score"]}},
                         {"rank": {"$weighted": {"ranks": [{"$bm25": {"query": "apple"}}, {"$knn": {"query": E[0].tolist()}}],
                                                 "weights": [1, 1]}}, "limit": {"limit": 4}}]}
    r = httpx.post(url, json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    want = local.search(body["searches"])
    assert got["ids"] == want["ids"]
    assert got["scores"][0] == want["scores"][0] and all(s < 0 for s in got["scores"][0])
    assert got["ids"][0][0] == "r00"  # the only "apple tart" documents: r00, r12, r24, r36 (r00 inserted first)
    bad = httpx.post(url, json={"searches": [{"rank": {"$knn": {"query": E[0].tolist(), "limit": 10**6}}}]})
    assert bad.status_code == 400 and "max_query_results" in bad.json()["message"]
    bad = httpx.post(url, json={"searches": [{"rank": {"$knn": {"query": "text"}}}]})
    assert bad.status_code == 400 and "no embedding function" in bad.json()["message"]
    bad = httpx.post(url, json={"searches": [{"rank": {"$sum": [{"$val": 1}]}}]})
    assert bad.json() == {"error": "InvalidArgumentError", "message": "$sum requires at least 2 ranks, got 1"}


def test_retrieve_route_and_gleandb_http_client(loaded, server):
    col, local = loaded
    url = f"{server.url}{DB}/collections/{col.id}/retrieve"
    r = httpx.post(url, json={"query_texts": ["apple tart"], "mode": "bm25", "n_results": 3})
    assert r.status_code == 200, r.text
    assert r.json()["ids"] == local.retrieve(query_texts=["apple tart"], mode="bm25", n_results=3)["ids"]
    r = httpx.post(url, json={"query_texts": ["apple"], "mode": "hybrid"})
    assert r.status_code == 400 and "needs an embedding function" in r.json()["message"]
    r = httpx.post(url, json={"query_texts": ["apple"], "bogus": 1})
    assert r.status_code == 400 and "unknown field 'bogus'" in r.json()["message"]

    client = gleandb.HttpClient(host="127.0.0.1", port=server.port)
    hcol = client.get_collection("srch", embedding_function=None)
    kw = dict(query_texts=["pear juice"], query_embeddings=[E[9]], n_results=6, fusion="weighted",
              weights={"dense": 2, "bm25": 1}, include=["documents", "embeddings"])
    over_http, embedded = hcol.retrieve(**kw), local.retrieve(**kw)
    for key in ("ids", "scores", "ranks", "ranker_scores", "documents"):
        assert over_http[key] == embedded[key], key
    assert np.array_equal(over_http["embeddings"][0], embedded["embeddings"][0])
    s = gleandb.Search().rank(gleandb.Bm25(query="juice", limit=4)).select(gleandb.K.SCORE)
    assert hcol.search(s) == local.search(s)
    with pytest.raises(ValueError, match="mode must be one of"):
        hcol.retrieve(query_texts=["x"], mode="nope")
