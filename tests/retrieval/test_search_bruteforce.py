"""Search API results equal a brute-force evaluation of the same search, record by record.

The reference below reads the wire dict (what ``Search.to_dict()`` sends) and
evaluates it over every live record in pure Python: the filter with
``tests/filter_reference.py``, each Knn as a full sort of exact distances, and the
rank expression per record as (in support?, value, has default?), which is
Chroma's domain rule restated one record at a time. Embeddings are small
integers, so distances are exact and ties (broken by insertion order) are common.
"""

from __future__ import annotations

import math
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gleandb
from gleandb import Bm25, GroupBy, K, Knn, MaxK, MinK, Rrf, Search, Val, Weighted
from gleandb.api import search as s
from gleandb.retrieval.rankers import bm25_top_k

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from filter_reference import where_document_matches, where_matches  # noqa: E402

DIM = 3
WORDS = ["cat", "dog", "owl", "the"]


# ------------------------------------------------------------------------ reference


def ref_filter(where, rec) -> bool:
    if where is None:
        return True
    ((key, cond),) = where.items()
    if key == "$and":
        return all(ref_filter(w, rec) for w in cond)
    if key == "$or":
        return any(ref_filter(w, rec) for w in cond)
    ((op, val),) = cond.items()
    if key == "#id":
        vals = [val] if op in ("$eq", "$ne") else val
        hit = rec["id"] in vals
        return hit if op in ("$eq", "$in") else not hit
    if key == "#document":
        return where_document_matches({op: val}, rec["document"])
    return where_matches({key: cond}, rec["metadata"], rec["document"])


def knn_list(recs, query, limit):
    q = np.asarray(query, dtype=np.float64)
    scored = sorted((float(((np.asarray(r["embedding"], np.float64) - q) ** 2).sum()), r["rid"], r["id"]) for r in recs)
    return [(rid_id, d) for d, _rid, rid_id in scored[:limit]]


class Ref:
    """Per-record evaluation of a rank wire dict.

    ``bm25`` gives the BM25 score of every live record for a query text (from the
    index, with no filter and no limit: the scores themselves are tested against an
    independent BM25 in tests/index); the top-``limit`` choice among the filtered
    records, ties and the arithmetic are the reference's own."""

    def __init__(self, recs, bm25=None):
        self.recs = recs
        self.bm25 = bm25
        self.cache = {}

    def leaf(self, d, op="$knn"):
        key = op + repr(d)
        if key not in self.cache:
            if op == "$knn":
                ranked = knn_list(self.recs, d["query"], d.get("limit", 16))
            else:
                scores = self.bm25(d["query"])
                hits = sorted((-scores[r["id"]], r["rid"], r["id"]) for r in self.recs if r["id"] in scores)
                ranked = [(id_, neg) for neg, _rid, id_ in hits[: d.get("limit", 16)]]
            self.cache[key] = {rid: (i, v) for i, (rid, v) in enumerate(ranked)}
        return self.cache[key]

    def ev(self, r, rid):
        """(in_support, value, has_default) of record ``rid``."""
        (op, arg), = r.items()
        if op == "$val":
            return False, float(arg), True
        if op in ("$knn", "$bm25"):
            hits = self.leaf(arg, op)
            default = arg.get("default")
            if rid in hits:
                i, dist = hits[rid]
                return True, float(i) if arg.get("return_rank") else dist, default is not None
            return False, (None if default is None else float(default)), default is not None
        if op == "$abs":
            a = self.ev(arg, rid)
            return a[0], None if a[1] is None else abs(a[1]), a[2]
        if op in ("$sum", "$mul", "$max", "$min"):
            fn = {"$sum": lambda x, y: x + y, "$mul": lambda x, y: x * y,
                  "$max": lambda x, y: x if x >= y else y, "$min": lambda x, y: x if x <= y else y}[op]
            start = {"$sum": 0.0, "$mul": 1.0, "$max": -math.inf, "$min": math.inf}[op]
            acc = (False, start, True)
            for sub in arg:
                acc = self.merge(acc, self.ev(sub, rid), fn)
            return acc
        if op == "$sub":
            return self.merge(self.ev(arg["left"], rid), self.ev(arg["right"], rid), lambda x, y: x - y)
        if op == "$div":  # only from Rrf here, whose divisors are k + rank > 0
            return self.merge(self.ev(arg["left"], rid), self.ev(arg["right"], rid), lambda x, y: x / y)
        if op == "$weighted":
            total, any_in = 0.0, False
            for sub, w in zip(arg["ranks"], arg["weights"]):
                sup = {r["id"]: self.ev(sub, r["id"]) for r in self.recs}
                vals = [v[1] for v in sup.values() if v[0]]
                if sup[rid][0]:
                    any_in = True
                    lo, hi = min(vals), max(vals)
                    total += w * ((hi - sup[rid][1]) / (hi - lo) if hi > lo else 1.0)
            return any_in, -total, False
        raise AssertionError(op)

    @staticmethod
    def merge(a, b, fn):
        ina, va, da = a
        inb, vb, db = b
        if da and db:
            return ina or inb, fn(va, vb), True
        if da:
            return inb, fn(va, vb) if inb else None, False
        if db:
            return ina, fn(va, vb) if ina else None, False
        return ina and inb, fn(va, vb) if ina and inb else None, False


def _agg_key(rec, score, keys, desc):
    out = []
    for k in keys:
        v = score if k == "#score" else (rec["metadata"] or {}).get(k)
        if v is None:
            out.append((1, 0))
        else:
            out.append((0, -v if desc else v))
    return tuple(out)


def reference(recs, wire, bm25=None):
    live = [r for r in recs if ref_filter(wire["filter"], r)]
    by_id = {r["id"]: r for r in live}
    rank = wire["rank"]
    if rank is None:
        order = [(r["id"], None) for r in sorted(live, key=lambda r: r["rid"])]
    else:
        ev = Ref(live, bm25)
        order = []
        for r in live:
            inside, val, _d = ev.ev(rank, r["id"])
            if inside:
                order.append((r["id"], val))
        order.sort(key=lambda t: (t[1], by_id[t[0]]["rid"]))
        gb = wire["group_by"]
        if gb:
            (aop, agg), = gb["aggregate"].items()
            groups = {}
            for id_, sc in order:
                md = by_id[id_]["metadata"] or {}
                groups.setdefault(tuple(md.get(k) for k in gb["keys"]), []).append((id_, sc))
            kept = []
            for members in groups.values():
                members.sort(key=lambda t: (_agg_key(by_id[t[0]], t[1], agg["keys"], aop == "$max_k"), by_id[t[0]]["rid"]))
                kept.extend(members[: agg["k"]])
            order = sorted(kept, key=lambda t: (t[1], by_id[t[0]]["rid"]))
    lim = wire["limit"]
    order = order[lim.get("offset", 0):]
    if lim.get("limit") is not None:
        order = order[: lim["limit"]]
    return [i for i, _ in order], [sc for _, sc in order]


# ------------------------------------------------------------------------ strategies

vec = st.lists(st.integers(-2, 2), min_size=DIM, max_size=DIM)


@st.composite
def collections(draw):
    n = draw(st.integers(0, 18))
    recs = []
    for i in range(n):
        md = {"g": draw(st.integers(0, 2)), "p": draw(st.integers(0, 9))}
        if draw(st.booleans()):
            del md["p"]
        recs.append({"id": f"r{i:02d}", "embedding": draw(vec), "metadata": md,
                     "document": " ".join(draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3)))})
    batches = draw(st.integers(1, 3))
    deleted = draw(st.sets(st.integers(0, max(n - 1, 0)), max_size=n // 3)) if n else set()
    flush = draw(st.booleans())
    return recs, batches, sorted(deleted), flush


def knns(draw):
    default = draw(st.one_of(st.none(), st.integers(0, 40).map(float)))
    if draw(st.integers(0, 3)) == 0:
        query = " ".join(draw(st.lists(st.sampled_from(WORDS + ["emu"]), min_size=1, max_size=2)))
        return Bm25(query=query, limit=draw(st.integers(1, 8)), default=default, return_rank=draw(st.booleans()))
    return Knn(query=draw(vec), limit=draw(st.integers(1, 8)), default=default, return_rank=draw(st.booleans()))


@st.composite
def ranks(draw, depth=0):
    if depth >= 2:
        kind = draw(st.sampled_from(["knn", "knn", "val"]))
    else:
        kind = draw(st.sampled_from(["knn", "val", "sum", "sub", "mul", "min", "max", "abs", "rrf", "weighted"]))
    if kind == "knn":
        return knns(draw)
    if kind == "val":
        return Val(float(draw(st.integers(-3, 3))))
    kids = lambda lo, hi: draw(st.lists(ranks(depth + 1), min_size=lo, max_size=hi))  # noqa: E731
    if kind == "sum":
        return s.Sum(kids(2, 3))
    if kind == "mul":
        return s.Mul(kids(2, 3))
    if kind == "min":
        return s.Min(kids(2, 3))
    if kind == "max":
        return s.Max(kids(2, 3))
    if kind == "sub":
        a, b = kids(2, 2)
        return a - b
    if kind == "abs":
        return abs(draw(ranks(depth + 1)))
    if kind == "rrf":
        ks = [Knn(query=draw(vec), limit=draw(st.integers(1, 8)), return_rank=True,
                  default=draw(st.one_of(st.none(), st.just(10.0)))) for _ in range(draw(st.integers(1, 3)))]
        return Rrf(ks, k=draw(st.integers(1, 60)), weights=draw(st.one_of(st.none(), st.just([1.0] * len(ks)))))
    return Weighted(kids(1, 3), weights=None)


def filters(draw):
    leaf = st.sampled_from([
        K("g") == 1, K("g") != 0, K("p") > 4, K("p").is_in([1, 2, 3]), K.DOCUMENT.contains("cat"),
        K.DOCUMENT.not_contains("dog"), K.ID.is_in(["r01", "r02", "r05", "r07"]), K.ID.not_in(["r00"]),
        K.DOCUMENT.regex("^o"),
    ])
    kind = draw(st.sampled_from(["none", "leaf", "and", "or"]))
    if kind == "none":
        return None
    if kind == "leaf":
        return draw(leaf)
    a, b = draw(leaf), draw(leaf)
    return (a & b) if kind == "and" else (a | b)


@st.composite
def searches(draw):
    search = Search(where=filters(draw))
    if draw(st.integers(0, 5)) > 0:
        search = search.rank(draw(ranks()))
        if draw(st.booleans()):
            agg = draw(st.sampled_from([MinK, MaxK]))(keys=draw(st.sampled_from([[K.SCORE], ["p", K.SCORE], ["p"]])),
                                                      k=draw(st.integers(1, 3)))
            search = search.group_by(GroupBy(keys=[K("g")], aggregate=agg))
    if draw(st.booleans()):
        search = search.limit(draw(st.integers(1, 10)), offset=draw(st.integers(0, 4)))
    return search.select(K.SCORE, K.DOCUMENT, "g")


def build(data):
    recs, batches, deleted, flush = data
    client = gleandb.EphemeralClient()
    col = client.create_collection(f"brute-{uuid.uuid4().hex}", embedding_function=None)
    chunks = np.array_split(np.arange(len(recs)), batches) if recs else []
    for idx in chunks:
        if len(idx):
            col.add(ids=[recs[i]["id"] for i in idx], embeddings=[recs[i]["embedding"] for i in idx],
                    metadatas=[recs[i]["metadata"] for i in idx], documents=[recs[i]["document"] for i in idx])
        if flush:
            col.flush()
    if deleted:
        col.delete(ids=[recs[i]["id"] for i in deleted])
    live = [dict(r, rid=i) for i, r in enumerate(recs) if i not in set(deleted)]
    return client, col, live


def all_bm25(col, query):
    """id -> BM25 score of every live record that matches ``query``."""
    store = col._store
    snap = store.snapshot()
    hits = bm25_top_k(snap, query, 1000, None, store.fulltext_config)
    return {snap[vi].seg.ids_list()[row]: score for vi, row, score in hits}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=collections(), search=searches())
def test_search_equals_brute_force(data, search):
    client, col, live = build(data)
    try:
        wire = search.to_dict()
        res = col.search(search)
        ids, scores = reference(live, wire, lambda q: all_bm25(col, q))
        assert res["ids"][0] == ids
        if wire["rank"] is not None:
            assert res["scores"][0] == scores
        by_id = {r["id"]: r for r in live}
        assert res["documents"][0] == [by_id[i]["document"] for i in ids]
        assert res["metadatas"][0] == [{"g": by_id[i]["metadata"]["g"]} for i in ids]
    finally:
        client.delete_collection(col.name)


def test_reference_agrees_on_a_hand_example():
    """The reference itself, on numbers worked out by hand."""
    recs = [{"id": "a", "rid": 0, "embedding": [0, 0, 0], "metadata": {"g": 0}, "document": "cat"},
            {"id": "b", "rid": 1, "embedding": [1, 0, 0], "metadata": {"g": 1}, "document": "dog"},
            {"id": "c", "rid": 2, "embedding": [2, 0, 0], "metadata": {"g": 1}, "document": "owl"}]
    # distances to [0,0,0]: a=0, b=1, c=4; Knn limit 2 → {a, b}; + 1 → a=1, b=2
    wire = Search().rank(Knn(query=[0, 0, 0], limit=2) + 1).to_dict()
    assert reference(recs, wire) == (["a", "b"], [1.0, 2.0])
    # a Knn with a default keeps records the other Knn found: c gets default 10 from the first
    wire = Search().rank(Knn(query=[0, 0, 0], limit=1, default=10) + Knn(query=[2, 0, 0], limit=2)).to_dict()
    # second Knn: c=0, b=1; first: a=0 (others default 10) → b=11, c=10
    assert reference(recs, wire) == (["c", "b"], [10.0, 11.0])
