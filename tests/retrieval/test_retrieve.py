"""``Collection.retrieve``: fusion math by hand, weights, modes, filters, deletes, errors."""

from __future__ import annotations


import numpy as np
import pytest

import gleandb
from gleandb.retrieval import fusion

DOCS = {
    "a": ("apple pie recipe with cinnamon", [1.0, 0.0, 0.0], {"kind": "food"}),
    "b": ("apple apple orchard tour", [0.0, 1.0, 0.0], {"kind": "travel"}),
    "c": ("banana bread", [0.9, 0.1, 0.0], {"kind": "food"}),
    "d": ("cinnamon rolls and apple cider", [0.0, 0.0, 1.0], {"kind": "food"}),
    "e": ("car repair manual", [0.5, 0.5, 0.0], {"kind": "misc"}),
}


@pytest.fixture
def col():
    client = gleandb.EphemeralClient()
    c = client.create_collection("retrieve-test", embedding_function=None)
    ids = list(DOCS)
    c.add(ids=ids, documents=[DOCS[i][0] for i in ids], embeddings=[DOCS[i][1] for i in ids],
          metadatas=[DOCS[i][2] for i in ids])
    yield c
    client.delete_collection(c.name)


Q = [1.0, 0.0, 0.0]


def test_rrf_by_hand(col):
    r = col.retrieve(query_texts=["apple"], query_embeddings=[Q], n_results=5, fusion="rrf", rrf_k=60)
    dense = col.retrieve(query_texts=["apple"], query_embeddings=[Q], n_results=5, mode="dense")
    bm25 = col.retrieve(query_texts=["apple"], n_results=5, mode="bm25")
    d_rank = {i: n for n, i in enumerate(dense["ids"][0])}
    b_rank = {i: n for n, i in enumerate(bm25["ids"][0])}
    # dense (squared l2 to [1,0,0]): a 0, c 0.02, e 0.5, b 2, d 2 (tie → inserted first)
    assert dense["ids"][0] == ["a", "c", "e", "b", "d"]
    # bm25 "apple": b has it twice, a and d once (a shorter than d); c, e do not match
    assert bm25["ids"][0] == ["b", "a", "d"]
    expected = {i: (1 / (60 + d_rank[i]) if i in d_rank else 0) + (1 / (60 + b_rank[i]) if i in b_rank else 0)
                for i in set(d_rank) | set(b_rank)}
    got = dict(zip(r["ids"][0], r["scores"][0]))
    assert got == pytest.approx(expected, rel=1e-12)
    # a: 1/60 + 1/61; b: 1/63 + 1/60; c: 1/61; d: 1/64 + 1/62; e: 1/62
    assert r["ids"][0] == ["a", "b", "d", "c", "e"]
    assert r["scores"][0] == sorted(r["scores"][0], reverse=True)
    assert r["ranks"][0][0] == {"dense": 0, "bm25": 1}
    assert r["ranks"][0][3] == {"dense": 1, "bm25": None}
    assert r["ranker_scores"][0][0]["dense"] == 0.0
    assert r["ranker_scores"][0][0]["bm25"] == bm25["ranker_scores"][0][1]["bm25"] > 0
    assert r["ranker_scores"][0][3]["bm25"] is None


def test_weights_shift_rrf(col):
    only_bm25 = col.retrieve(query_texts=["apple"], query_embeddings=[Q], n_results=3, fusion="rrf",
                             weights={"dense": 0, "bm25": 1})
    assert only_bm25["ids"][0] == ["b", "a", "d"]
    only_dense = col.retrieve(query_texts=["apple"], query_embeddings=[Q], n_results=3, fusion="rrf",
                              weights={"dense": 1, "bm25": 0})
    assert only_dense["ids"][0] == ["a", "c", "e"]


def test_weighted_fusion_by_hand(col):
    r = col.retrieve(query_texts=["apple"], query_embeddings=[Q], n_results=5, fusion="weighted",
                     weights={"dense": 0.5, "bm25": 2.0})
    dense = col.retrieve(query_embeddings=[Q], n_results=5, mode="dense")["ranker_scores"][0]
    bm = col.retrieve(query_texts=["apple"], n_results=5, mode="bm25")
    dist = {i: s["dense"] for i, s in zip(col.retrieve(query_embeddings=[Q], n_results=5, mode="dense")["ids"][0], dense)}
    bms = {i: s["bm25"] for i, s in zip(bm["ids"][0], bm["ranker_scores"][0])}
    lo, hi = min(dist.values()), max(dist.values())
    blo, bhi = min(bms.values()), max(bms.values())
    expected = {i: 0.5 * (hi - dist[i]) / (hi - lo) + (2.0 * (bms[i] - blo) / (bhi - blo) if i in bms else 0.0)
                for i in dist}
    got = dict(zip(r["ids"][0], r["scores"][0]))
    assert got == pytest.approx(expected, rel=1e-9)
    assert r["ids"][0][0] == "b"  # BM25's best, weighted 4x


def test_fusion_functions():
    assert fusion.rrf({"x": ["p", "q"], "y": ["q"]}, k=1) == {"p": 1.0, "q": 0.5 + 1.0}
    assert fusion.weighted({"x": [("p", 0.0), ("q", 2.0)], "y": [("q", 5.0), ("r", 1.0)]},
                           {"x": False, "y": True}) == {"p": 1.0, "q": 0.0 + 1.0, "r": 0.0}
    assert fusion.minmax_normalize([3.0, 3.0], True) == [1.0, 1.0]
    with pytest.raises(ValueError, match="weight of ranker 'x'"):
        fusion.rrf({"x": ["p"]}, weights={"x": -1})


def test_filters_and_deletes(col):
    r = col.retrieve(query_texts=["apple"], query_embeddings=[Q], n_results=5, where={"kind": "food"})
    assert set(r["ids"][0]) == {"a", "c", "d"}
    r = col.retrieve(query_texts=["apple"], query_embeddings=[Q], n_results=5, where_document={"$contains": "cinnamon"})
    assert set(r["ids"][0]) == {"a", "d"}
    col.delete(ids=["a", "b"])
    r = col.retrieve(query_texts=["apple"], query_embeddings=[Q], n_results=5)
    assert "a" not in r["ids"][0] and "b" not in r["ids"][0]
    col.update(ids=["d"], documents=["nothing relevant"], embeddings=[[0.0, 0.0, 1.0]])
    r = col.retrieve(query_texts=["apple"], n_results=5, mode="bm25")
    assert r["ids"][0] == []


def test_modes_include_and_candidates(col):
    r = col.retrieve(query_texts=["apple", "banana"], query_embeddings=[Q, [0, 1, 0]], n_results=2,
                     include=["embeddings", "uris"])
    assert len(r["ids"]) == 2 and all(len(x) == 2 for x in r["ids"])
    assert r["documents"] is None and r["metadatas"] is None
    assert r["embeddings"][0].shape == (2, 3)
    assert r["uris"] == [[None, None], [None, None]]
    r = col.retrieve(query_texts=["apple"], query_embeddings=[Q], n_results=5, candidates=1)
    assert set(r["ids"][0]) == {"a", "b"}  # one candidate per ranker
    r = col.retrieve(query_texts=["apple"], n_results=5, mode="bm25", fusion="weighted")
    assert r["scores"][0][0] == 1.0 and r["scores"][0][-1] == 0.0
    assert all(x["dense"] is None for x in r["ranks"][0])


def test_dense_embeds_texts_with_the_collection_function():
    class EF(gleandb.EmbeddingFunction):
        def __init__(self):
            pass

        def __call__(self, input):
            return [np.array([1.0, 0.0, 0.0] if "fruit" in t else [0.0, 0.0, 1.0], dtype=np.float32) for t in input]

        @staticmethod
        def name():
            return "test-ef"

    client = gleandb.EphemeralClient()
    c = client.create_collection("retrieve-ef", embedding_function=EF())
    c.add(ids=["x", "y"], documents=["fruit salad", "engine oil"])
    r = c.retrieve(query_texts=["fruit"], n_results=1, mode="dense")
    assert r["ids"] == [["x"]]
    r = c.retrieve(query_texts=["oil please"], n_results=2)
    assert r["ids"][0][0] == "y" and r["ranks"][0][0] == {"dense": 0, "bm25": 0}
    client.delete_collection(c.name)


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(query_embeddings=[Q]), "mode='hybrid' needs query_texts"),
    (dict(query_embeddings=[Q], mode="bm25"), "mode='bm25' needs query_texts"),
    (dict(query_texts=["x"], mode="sparse"), "mode must be one of hybrid, dense, bm25, got 'sparse'"),
    (dict(query_texts=["x"], fusion="max"), "fusion must be one of rrf, weighted, zscore, adaptive, got 'max'"),
    (dict(query_texts=["x"], weights={"dense": 1, "sparse": 1}), "weights keys must be 'dense' and/or 'bm25', got 'sparse'"),
    (dict(query_texts=["x"], weights={"dense": -1}), "weights['dense'] must be a finite number >= 0, got -1"),
    (dict(query_texts=["x"], weights={"dense": 0, "bm25": 0}), "weight 0"),
    (dict(query_texts=["x"], n_results=0), "n_results must be a positive integer, got 0"),
    (dict(query_texts=["x"], candidates=-3), "candidates must be a positive integer, got -3"),
    (dict(query_texts=["x"], rrf_k=0), "rrf_k must be a positive number, got 0"),
    (dict(query_texts=["x"], include=["distances"]), "include must be a list of"),
    (dict(query_texts=[3]), "query_texts[0] must be a string, got 3"),
    (dict(query_texts=["x", "y"], query_embeddings=[Q]), "query_texts has 2 queries but query_embeddings has 1"),
    (dict(query_texts=["x"], mode="dense"), "needs an embedding function"),
    (dict(query_texts=["x"], query_embeddings=[[1.0, 2.0]]), "dimension of 3, got 2"),
    (dict(query_texts=["x"], where={"kind": {"$bad": 1}}), "$bad"),
])
def test_errors(col, kwargs, fragment):
    before = col.get()
    with pytest.raises((ValueError, TypeError, gleandb.errors.ChromaError)) as info:
        col.retrieve(**kwargs)
    assert fragment in str(info.value)
    assert col.get() == before


def test_empty_collection():
    client = gleandb.EphemeralClient()
    c = client.create_collection("retrieve-empty", embedding_function=None)
    r = c.retrieve(query_texts=["x"], query_embeddings=[[1.0, 2.0]])
    assert r["ids"] == [[]] and r["scores"] == [[]]
    client.delete_collection(c.name)
