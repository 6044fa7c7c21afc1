"""The stored retrieval configuration (``configuration={"retrieval": ...}``), the built-in
default of ``retrieve()``, and the z-score / adaptive fusions, embedded and after reopen."""

from __future__ import annotations

import math

import pytest

import gleandb
from gleandb.retrieval import config as rconfig
from gleandb.retrieval import fusion

DOCS = {
    "a": ("apple pie recipe with cinnamon", [1.0, 0.0, 0.0]),
    "b": ("apple apple orchard tour", [0.0, 1.0, 0.0]),
    "c": ("banana bread", [0.9, 0.1, 0.0]),
    "d": ("cinnamon rolls and apple cider", [0.0, 0.0, 1.0]),
    "e": ("car repair manual", [0.5, 0.5, 0.0]),
}
Q = [1.0, 0.0, 0.0]
ARGS = dict(query_texts=["apple"], query_embeddings=[Q], n_results=5)


def _fill(col):
    ids = list(DOCS)
    col.add(ids=ids, documents=[DOCS[i][0] for i in ids], embeddings=[DOCS[i][1] for i in ids])
    return col


@pytest.fixture
def client():
    c = gleandb.EphemeralClient()
    yield c
    for col in c.list_collections():
        c.delete_collection(col.name)


def _same(r1, r2):
    assert r1["ids"] == r2["ids"]
    assert r1["scores"][0] == pytest.approx(r2["scores"][0], rel=1e-12)


# --------------------------------------------------------------------- fusions


def test_zscore_by_hand():
    got = fusion.zscore({"x": [("p", 0.0), ("q", 2.0)], "y": [("q", 6.0), ("r", 2.0), ("s", 1.0)]},
                        {"x": False, "y": True}, {"x": 1.0, "y": 2.0})
    # x (distances, lower better): u = [0, -2], mean -1, std 1 -> p +1, q -1; floor -1
    # y: mean 3, std sqrt(14/3) -> q 3/s, r -1/s, s -2/s; floor -2/s
    s = math.sqrt(14 / 3)
    expected = {"p": 1 + 2 * (-2 / s), "q": -1 + 2 * (3 / s), "r": -1 + 2 * (-1 / s), "s": -1 + 2 * (-2 / s)}
    assert got == pytest.approx(expected, rel=1e-12)
    # a lone match (no spread) still counts: 1 for it, 0 for what the ranker did not return
    lone = fusion.zscore({"x": [("p", 0.0), ("q", 2.0)], "y": [("q", 4.0)]}, {"x": False, "y": True})
    assert lone == pytest.approx({"p": 1.0, "q": -1.0 + 1.0})


def test_confidence_and_adaptive_by_hand():
    assert fusion.confidence([1.0, 2.0], True) is None  # too few candidates to judge
    assert fusion.confidence([5.0, 5.0, 5.0], True) == 0.0  # flat: cannot tell candidates apart
    # distances 0, 3, 3: oriented [0, -3, -3], mean -2, std sqrt(2) -> best stands 2/sqrt(2) above
    assert fusion.confidence([0.0, 3.0, 3.0], False) == pytest.approx(math.sqrt(2))
    scored = {"dense": [("a", 0.0), ("b", 3.0), ("c", 3.0)], "bm25": [("b", 9.0), ("c", 8.0), ("a", 7.0)]}
    hib = {"dense": False, "bm25": True}
    c_d, c_b = math.sqrt(2), fusion.confidence([9.0, 8.0, 7.0], True)
    assert c_b == pytest.approx(1 / math.sqrt(2 / 3))
    got = fusion.adaptive(scored, hib, {"dense": 1.0, "bm25": 1.0})
    assert got == pytest.approx(fusion.weighted(scored, hib, {"dense": c_d, "bm25": c_b}), rel=1e-12)
    assert max(got, key=got.get) == "a"  # dense stands out more on this query, so its best wins
    # a flat ranker everywhere: fixed weights are kept
    flat = {"dense": [("a", 1.0), ("b", 1.0), ("c", 1.0)], "bm25": [("b", 2.0), ("c", 2.0), ("a", 2.0)]}
    assert fusion.adaptive(flat, hib, {"dense": 1.0, "bm25": 0.5}) == fusion.weighted(flat, hib, {"dense": 1.0, "bm25": 0.5})


# ------------------------------------------------------------ built-in default


def test_plain_retrieve_uses_the_builtin_default(client):
    col = _fill(client.create_collection("dflt", embedding_function=None))
    plain = col.retrieve(**ARGS)
    explicit = col.retrieve(**ARGS, mode=rconfig.BUILTIN["mode"], fusion=rconfig.BUILTIN["fusion"],
                            weights=rconfig.BUILTIN["weights"], rrf_k=rconfig.BUILTIN["rrf_k"])
    _same(plain, explicit)
    # a named fusion means that fusion with equal weights, not a mix with the default's weights
    _same(col.retrieve(**ARGS, fusion="rrf"), col.retrieve(**ARGS, fusion="rrf", weights={"dense": 1, "bm25": 1}))
    _same(col.retrieve(**ARGS, fusion="weighted"),
          col.retrieve(**ARGS, fusion="weighted", weights={"dense": 1, "bm25": 1}))


@pytest.mark.parametrize("fusion_name", ["zscore", "adaptive"])
def test_new_fusions_through_retrieve(client, fusion_name):
    col = _fill(client.create_collection("fus", embedding_function=None))
    r = col.retrieve(**ARGS, fusion=fusion_name)
    dense = col.retrieve(query_embeddings=[Q], n_results=5, mode="dense")
    bm = col.retrieve(query_texts=["apple"], n_results=5, mode="bm25")
    scored = {"dense": [(i, s["dense"]) for i, s in zip(dense["ids"][0], dense["ranker_scores"][0])],
              "bm25": [(i, s["bm25"]) for i, s in zip(bm["ids"][0], bm["ranker_scores"][0])]}
    fn = getattr(fusion, fusion_name)
    expected = fn(scored, {"dense": False, "bm25": True}, {"dense": 1.0, "bm25": 1.0})
    assert dict(zip(r["ids"][0], r["scores"][0])) == pytest.approx(expected, rel=1e-9)
    assert r["scores"][0] == sorted(r["scores"][0], reverse=True)


# ----------------------------------------------------- stored configuration


def test_stored_configuration_is_used_echoed_and_replaced(client):
    stored = {"mode": "hybrid", "fusion": "rrf", "weights": {"dense": 0.0, "bm25": 1.0}, "rrf_k": 1}
    col = _fill(client.create_collection("cfg", embedding_function=None, configuration={"retrieval": stored}))
    assert col.configuration_json["retrieval"] == stored
    assert col.configuration["retrieval"] == stored
    _same(col.retrieve(**ARGS), col.retrieve(**ARGS, **stored))
    assert col.retrieve(**ARGS)["ids"][0][:3] == ["b", "a", "d"]  # BM25 only (dense weight 0)
    # explicit arguments win over the stored ones
    _same(col.retrieve(**ARGS, weights={"dense": 1, "bm25": 0}),
          col.retrieve(**ARGS, fusion="rrf", rrf_k=1, weights={"dense": 1, "bm25": 0}))
    assert col.retrieve(**ARGS, mode="dense")["ids"][0][0] == "a"
    # modify replaces the block as a whole (rrf_k and weights are gone)
    col.modify(configuration={"retrieval": {"mode": "dense"}})
    assert col.configuration_json["retrieval"] == {"mode": "dense"}
    r = col.retrieve(query_embeddings=[Q], n_results=5)
    assert all(x["bm25"] is None for x in r["ranks"][0]) and r["ids"][0][0] == "a"
    # the stored fusion without weights means equal weights
    col.modify(configuration={"retrieval": {"fusion": "weighted"}})
    _same(col.retrieve(**ARGS), col.retrieve(**ARGS, fusion="weighted", weights={"dense": 1, "bm25": 1}))
    # {} goes back to the built-in default; other configuration is untouched
    col.modify(configuration={"retrieval": {}})
    assert "retrieval" not in col.configuration_json
    assert col.configuration_json["hnsw"]["space"] == "l2"
    _same(col.retrieve(**ARGS), col.retrieve(**ARGS, fusion=rconfig.BUILTIN["fusion"],
                                             weights=rconfig.BUILTIN["weights"]))


@pytest.mark.parametrize("block, fragment", [
    ({"mode": "sparse"}, "configuration.retrieval.mode must be one of hybrid, dense, bm25, got 'sparse'"),
    ({"fusion": "max"}, "configuration.retrieval.fusion must be one of rrf, weighted, zscore, adaptive, got 'max'"),
    ({"weights": {"dense": 1, "sparse": 2}}, "unknown ranker 'sparse' (value 2)"),
    ({"weights": {"bm25": -1}}, "weights['bm25'] must be a finite number >= 0, got -1"),
    ({"weights": {"dense": 0, "bm25": 0}}, "at least one weight > 0"),
    ({"weights": [1, 0.5]}, "configuration.retrieval.weights must be an object"),
    ({"candidates": 0}, "configuration.retrieval.candidates must be a positive integer or null (derived from n_results), got 0"),
    ({"rrf_k": -5}, "configuration.retrieval.rrf_k must be a positive number, got -5"),
    ({"n_results": 5}, "unknown key 'n_results' (value 5)"),
    ("dense", "configuration.retrieval must be an object"),
])
def test_bad_blocks_are_refused_and_change_nothing(client, block, fragment):
    with pytest.raises(gleandb.errors.InvalidArgumentError) as info:
        client.create_collection("bad", embedding_function=None, configuration={"retrieval": block})
    assert fragment in str(info.value)
    assert [c.name for c in client.list_collections()] == []
    col = client.create_collection("good", embedding_function=None, configuration={"retrieval": {"mode": "bm25"}})
    with pytest.raises(gleandb.errors.InvalidArgumentError) as info:
        col.modify(configuration={"retrieval": block})
    assert fragment in str(info.value)
    assert client.get_collection("good", embedding_function=None).configuration_json["retrieval"] == {"mode": "bm25"}


def test_stored_candidates_null_and_int(client):
    col = _fill(client.create_collection("cand", embedding_function=None, configuration={"retrieval": {"candidates": 1}}))
    assert set(col.retrieve(**ARGS)["ids"][0]) == {"a", "b"}  # one candidate per ranker
    assert len(col.retrieve(**ARGS, candidates=None)["ids"][0]) == 5  # explicit None: derived from n_results
    col.modify(configuration={"retrieval": {"candidates": None}})
    assert col.configuration_json["retrieval"] == {"candidates": None}
    assert len(col.retrieve(**ARGS)["ids"][0]) == 5


def test_stored_configuration_survives_reopen(tmp_path):
    c = gleandb.PersistentClient(path=str(tmp_path))
    col = _fill(c.create_collection("persist", embedding_function=None))
    col.modify(configuration={"retrieval": {"fusion": "zscore", "weights": {"dense": 1.0, "bm25": 0.25}}})
    before = col.retrieve(**ARGS)
    c.close()
    c = gleandb.PersistentClient(path=str(tmp_path))
    col = c.get_collection("persist", embedding_function=None)
    assert col.configuration_json["retrieval"] == {"fusion": "zscore", "weights": {"dense": 1.0, "bm25": 0.25}}
    after = col.retrieve(**ARGS)
    _same(before, after)
    _same(after, col.retrieve(**ARGS, fusion="zscore", weights={"dense": 1.0, "bm25": 0.25}))
    fork = col.fork("persist-fork")  # a fork starts with its source's stored configuration
    assert fork.configuration_json["retrieval"] == col.configuration_json["retrieval"]
    _same(fork.retrieve(**ARGS), after)
    c.close()


def test_context_first_stage_uses_the_stored_mode(client):
    col = _fill(client.create_collection("ctx", embedding_function=None,
                                         configuration={"retrieval": {"mode": "bm25"}}))
    ctx = col.context("apple", candidates=5, dedupe=None)
    assert ctx.usage.first_stage == "retrieve bm25"
    assert [c.id for c in ctx.chunks][:3] == ["b", "a", "d"]
    ctx = col.context("apple", candidates=5, dedupe=None, mode="dense", query_embedding=Q)
    assert ctx.usage.first_stage == "retrieve dense"
    col.modify(configuration={"retrieval": {"mode": "hybrid", "fusion": "rrf", "weights": {"dense": 0, "bm25": 1}}})
    ctx = col.context("apple", candidates=5, dedupe=None, query_embedding=Q)
    assert ctx.usage.first_stage == "retrieve hybrid"
    assert [c.id for c in ctx.chunks][:3] == ["b", "a", "d"]  # the stored weights reach the first stage
