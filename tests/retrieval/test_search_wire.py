"""Wire format: gleandb's builder classes and chromadb 1.5.9's produce and read the same dicts;
bad searches raise clear errors and change nothing."""

from __future__ import annotations

import numpy as np
import pytest

import gleandb
from gleandb import Bm25, GroupBy, K, Knn, MaxK, MinK, Rrf, Search, Val, Weighted
from gleandb.api import search as s
from gleandb.api.errors import InvalidArgumentError

ce = pytest.importorskip("chromadb.execution.expression", reason="chromadb is in gleandb's test extra")


def _norm(d):
    """Select keys come from a set in chromadb: compare them as sets."""
    d = dict(d)
    d["select"] = {"keys": sorted(d["select"]["keys"])}
    return d


PAIRS = [
    (lambda m: m.Search()),
    (lambda m: m.Search().where(m.K("cat") == "a").limit(5, offset=2)),
    (lambda m: m.Search().where((m.K("x") > 1) & (m.K("y") <= 2.5) | m.K.DOCUMENT.contains("foo"))),
    (lambda m: m.Search().where(m.K.ID.is_in(["a", "b"]) & m.K("t").not_in([1, 2]) & m.K.DOCUMENT.regex("^a"))),
    (lambda m: m.Search().where(m.K("t").contains("x") & m.K("t").not_contains(3) & m.K.DOCUMENT.not_regex("z") & (m.K("n") != 1) & (m.K("n") >= 0) & (m.K("n") < 9))),
    (lambda m: m.Search().rank(m.Knn(query=[0.1, 0.2, 0.3]))),
    (lambda m: m.Search().rank(m.Knn(query=[0.1, 0.2], limit=7, default=1.5, return_rank=True))),
    (lambda m: m.Search().rank(m.Knn(query=[1.0, 2.0]) * 0.8 + m.Val(0.5) * 0.2 - 1)),
    (lambda m: m.Search().rank((m.Knn(query=[1.0, 2.0]) / 2).exp().log().abs().max(0.0).min(3.0))),
    (lambda m: m.Search().rank(-m.Knn(query=[1.0, 2.0]) + 1 - m.Knn(query=[2.0, 1.0], default=9.0))),
    (lambda m: m.Search().rank(2 / m.Knn(query=[1.0, 2.0]) + (3 - m.Val(1)) * 4)),
    (lambda m: m.Search().rank(m.Rrf([m.Knn(query=[1.0, 0.0], return_rank=True), m.Knn(query=[0.0, 1.0], return_rank=True)], k=10, weights=[2.0, 1.0], normalize=True))),
    (lambda m: m.Search().rank(m.Knn(query=[1.0])).group_by(m.GroupBy(keys=m.K("g"), aggregate=m.MinK(keys=m.K.SCORE, k=3)))),
    (lambda m: m.Search().rank(m.Knn(query=[1.0])).group_by(m.GroupBy(keys=[m.K("g"), m.K("h")], aggregate=m.MaxK(keys=[m.K("p"), m.K.SCORE], k=1)))),
    (lambda m: m.Search().select(m.K.DOCUMENT, m.K.SCORE, "title")),
    (lambda m: m.Search().select_all()),
    (lambda m: m.Search(where={"a": 1}, rank={"$knn": {"query": [1.0, 2.0]}}, limit=3, select=["#score"])),
]


@pytest.mark.parametrize("build", PAIRS)
def test_same_wire_dict_as_chromadb(build):
    ours, theirs = build(gleandb), build(ce)
    assert _norm(ours.to_dict()) == _norm(theirs.to_dict())


@pytest.mark.parametrize("build", PAIRS)
def test_from_dict_round_trip(build):
    wire = build(ce).to_dict()
    again = Search.from_dict(wire).to_dict()
    if wire["rank"] is not None:  # both libraries read query vectors as float32
        wire["rank"] = ce.Rank.from_dict(wire["rank"]).to_dict()
    assert _norm(again) == _norm(wire)
    # and chromadb reads what we write
    ours = build(gleandb).to_dict()
    if ours["rank"]:
        rank = ce.Rank.from_dict(ours["rank"]).to_dict()
        assert rank == ce.Rank.from_dict(rank).to_dict() == s.Rank.from_dict(ours["rank"]).to_dict()
    if ours["filter"]:
        assert ce.Where.from_dict(ours["filter"]).to_dict() == ours["filter"]


def test_extensions_round_trip():
    r = Weighted([Bm25(query="hello world", limit=5, default=0.0, return_rank=True), Knn(query=[1.0, 2.0])], weights=[0.3, 0.7])
    wire = r.to_dict()
    assert wire == {"$weighted": {"ranks": [{"$bm25": {"query": "hello world", "limit": 5, "default": 0.0, "return_rank": True}},
                                            {"$knn": {"query": [1.0, 2.0], "key": "#embedding", "limit": 16}}],
                                  "weights": [0.3, 0.7], "normalize": "minmax"}}
    assert s.Rank.from_dict(wire).to_dict() == wire


def test_rrf_compiles_to_chromadb_arithmetic():
    wire = Rrf([Knn(query=[1.0], return_rank=True)], k=5).to_dict()
    assert wire == {"$mul": [{"$val": -1}, {"$div": {"left": {"$val": 1.0},
                                                     "right": {"$sum": [{"$val": 5}, {"$knn": {"query": [1.0], "key": "#embedding", "limit": 16, "return_rank": True}}]}}}]}


@pytest.mark.parametrize("bad, exc, fragment", [
    ({"rank": {"$knn": {}}}, ValueError, "requires 'query'"),
    ({"rank": {"$knn": {"query": [1.0], "limit": 0}}}, ValueError, "limit must be positive"),
    ({"rank": {"$knn": {"query": [1.0], "limit": "3"}}}, TypeError, "limit must be an integer"),
    ({"rank": {"$knn": {"query": [float("nan")]}}}, ValueError, "NaN"),
    ({"rank": {"$knn": {"query": {"#type": "sparse_vector", "indices": [1], "values": [1.0]}}}}, ValueError, "sparse"),
    ({"rank": {"$bm25": {"query": 3}}}, TypeError, "$bm25 query must be a string"),
    ({"rank": {"$sum": [{"$val": 1}]}}, ValueError, "at least 2 ranks"),
    ({"rank": {"$nope": 1}}, ValueError, "Unknown rank operator: $nope"),
    ({"rank": {"$weighted": {"ranks": [{"$val": 1}], "weights": [-1]}}}, ValueError, "non-negative"),
    ({"rank": {"$weighted": {"ranks": [{"$val": 1}], "normalize": "z"}}}, ValueError, "normalize must be 'minmax'"),
    ({"limit": {"limit": -1}}, ValueError, "Limit limit must be positive"),
    ({"limit": {"offset": -2}}, ValueError, "offset must be non-negative"),
    ({"group_by": {"keys": ["g"]}}, ValueError, "requires 'aggregate'"),
    ({"group_by": {"keys": ["g"], "aggregate": {"$min_k": {"keys": ["#score"], "k": 0}}}}, ValueError, "k must be positive"),
    ({"select": {"keys": [1]}}, TypeError, "Select key must be a string"),
    ({"filter": {"a": {"$bad": 1}}}, ValueError, "Unknown operator: $bad"),
    ({"bogus": 1}, ValueError, "Unexpected keys in search: ['bogus']"),
])
def test_bad_wire_dicts(bad, exc, fragment):
    with pytest.raises(exc) as info:
        Search.from_dict(bad)
    assert fragment in str(info.value)


@pytest.fixture
def col():
    client = gleandb.EphemeralClient()
    c = client.create_collection("wire-errors", embedding_function=None)
    c.add(ids=["a", "b", "c"], embeddings=[[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]], documents=["x", "y", "z"],
          metadatas=[{"g": 1}, {"g": 2}, None])
    yield c
    client.delete_collection(c.name)


@pytest.mark.parametrize("search, fragment", [
    (Search().rank(Knn(query=[1.0, 2.0, 3.0])), "dimension of 2, got 3"),
    (Search().rank(Knn(query=[1.0, 2.0], key="sparse")), "Knn key 'sparse' is not supported"),
    (Search().rank(Knn(query="text")), "no embedding function"),
    (Search().select("#nope"), "select key '#nope' is not known"),
    (Search().group_by(GroupBy(keys=K("g"), aggregate=MinK(keys=K.SCORE, k=1))), "group_by requires a rank"),
    (Search().rank(Knn(query=[1.0, 2.0])).group_by(GroupBy(keys=K.DOCUMENT, aggregate=MinK(keys=K.SCORE, k=1))), "group_by keys must be metadata keys"),
    (Search().where({"#document": {"$eq": "x"}}), "#document supports $contains"),
    (Search().where({"#id": {"$gt": "x"}}), "#id supports $eq, $ne, $in and $nin"),
    ({"filter": {"#id": {"$eq": "x", "$ne": "y"}}}, "exactly one operator"),
    (Search().where({"$or": [{"#id": "x"}, {"year": {"$gt": "soon"}}]}), "got soon"),
    (Search().where({"#embedding": {"$eq": 1}}), "filter key '#embedding' is not supported"),
    (Search().where({"#document": {"$regex": "(?=a)"}}), "(?=a)"),
])
def test_search_errors_name_the_problem_and_change_nothing(col, search, fragment):
    before = col.get(include=["documents", "metadatas", "embeddings"])
    with pytest.raises((InvalidArgumentError, ValueError, TypeError)) as info:
        col.search(search)
    assert fragment in str(info.value)
    after = col.get(include=["documents", "metadatas", "embeddings"])
    assert before["ids"] == after["ids"] and before["documents"] == after["documents"]


def test_accepts_chromadb_objects_dicts_and_batches(col):
    theirs = ce.Search().rank(ce.Knn(query=[0.9, 0.0], limit=2)).select(ce.K.SCORE)
    ours = Search().rank(Knn(query=np.array([0.9, 0.0]), limit=2)).select(K.SCORE)
    raw = {"rank": {"$knn": {"query": [0.9, 0.0], "limit": 2}}, "select": {"keys": ["#score"]}}
    res = col.search([theirs, ours, raw])
    assert res["ids"] == [["b", "a"]] * 3
    assert res["scores"][0] == res["scores"][1] == res["scores"][2]
    assert res["documents"] == [None, None, None]
    assert res.rows()[0] == [{"id": "b", "score": res["scores"][0][0]}, {"id": "a", "score": res["scores"][0][1]}]


def test_no_rank_is_get_order_with_limit_offset(col):
    res = col.search(Search().limit(2, offset=1).select(K.DOCUMENT, K.SCORE, K.METADATA))
    assert res["ids"] == [["b", "c"]]
    assert res["documents"] == [["y", "z"]]
    assert res["metadatas"] == [[{"g": 2}, None]]
    assert res["scores"] == [[None, None]]


def test_val_only_rank_returns_nothing(col):
    """Chroma's domain rule: a constant has no support, so nothing is ranked."""
    assert col.search(Search().rank(Val(1.0)))["ids"] == [[]]


def test_selected_metadata_fields_only(col):
    res = col.search(Search().rank(Knn(query=[0.0, 0.0])).select("g", "missing"))
    assert res["metadatas"] == [[{"g": 1}, {"g": 2}, None]]


def test_maxk_keeps_largest(col):
    col.add(ids=["d"], embeddings=[[3.0, 0.0]], metadatas=[{"g": 1}])
    res = col.search(Search().rank(Knn(query=[0.0, 0.0])).group_by(GroupBy(keys=K("g"), aggregate=MaxK(keys=K.SCORE, k=1))).select(K.SCORE))
    # groups: g=1 {a: 0, d: 9} → d; g=2 {b: 1} → b; missing g {c: 4} → c; re-sorted by score
    assert res["ids"] == [["b", "c", "d"]]
    assert res["scores"] == [[1.0, 4.0, 9.0]]
