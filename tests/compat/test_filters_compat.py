"""gleandb's filter engine against real chromadb on the same records.

Skipped unless chromadb is importable, e.g.::

    PYTHONPATH=src:tests /tmp/chroma-venv/bin/python -m pytest tests/compat/test_filters_compat.py
"""

from __future__ import annotations

import random

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

chromadb = pytest.importorskip("chromadb")

from gleandb.api.errors import InvalidArgumentError  # noqa: E402
from gleandb.index.filters import compile_filter, metadata_columns  # noqa: E402

pytestmark = pytest.mark.compat

KEYS = ["a", "b", "c:d"]
INTS = [-3, -2, -1, 0, 1, 2, 3]
FLOATS = [-2.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0]
STRS = ["x", "y", "X", "xy", "a b"]
WORDS = ["alpha", "Beta", "gamma", "d3lta", "caf\u00e9", "x", "y", "%", "_", "a.b"]


def _value(rng: random.Random):
    kind = rng.randrange(8)
    if kind == 0:
        return rng.choice(INTS)
    if kind == 1:
        return rng.choice(FLOATS)
    if kind == 2:
        return rng.choice(STRS)
    if kind == 3:
        return rng.random() < 0.5
    pool = [INTS, FLOATS, STRS, [True, False]][kind - 4]
    return [rng.choice(pool) for _ in range(rng.randint(1, 3))]


def _records(n=60, seed=7):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        md = {k: _value(rng) for k in KEYS if rng.random() < 0.6} or None
        doc = None if rng.random() < 0.15 else " ".join(rng.choices(WORDS, k=rng.randint(0, 5)))
        if doc is not None and rng.random() < 0.2:
            doc = doc.replace(" ", "\n", 1)
        out.append((f"id{i}", md, doc))
    return out


RECORDS = _records()


@pytest.fixture(scope="module")
def both():
    client = chromadb.EphemeralClient()
    name = "filters-compat"
    try:
        client.delete_collection(name)
    except Exception:
        pass
    col = client.create_collection(name, embedding_function=None)
    ids = [r[0] for r in RECORDS]
    col.add(
        ids=ids,
        embeddings=[[float(i), 1.0] for i in range(len(ids))],
        metadatas=[r[1] for r in RECORDS],
        documents=[r[2] for r in RECORDS],
    )
    table = pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "document": pa.array([r[2] for r in RECORDS], pa.string()),
            **metadata_columns([r[1] for r in RECORDS]),
        }
    )
    yield col, table
    client.delete_collection(name)


def _chroma_ids(col, where, where_document):
    res = col.get(where=where, where_document=where_document, include=[])
    return sorted(res["ids"])


def _glean_ids(table, where, where_document):
    f = compile_filter(where, where_document)
    mask = f.evaluate(table)
    return sorted(i for i, m in zip(table.column("id").to_pylist(), mask) if m)


def _check(both, where, where_document):
    col, table = both
    try:
        expected = _chroma_ids(col, where, where_document)
    except ValueError as exc:  # client-side validation
        with pytest.raises(ValueError) as mine:
            compile_filter(where, where_document)
        assert str(exc).startswith(str(mine.value))
        return
    except chromadb.errors.InvalidArgumentError:
        with pytest.raises(InvalidArgumentError):
            compile_filter(where, where_document)
        return
    assert _glean_ids(table, where, where_document) == expected, (where, where_document)


literal = st.one_of(
    st.sampled_from(INTS), st.sampled_from(FLOATS), st.sampled_from(STRS), st.booleans()
)


@st.composite
def leaf_where(draw):
    key = draw(st.sampled_from(KEYS + ["missing", "#id"]))
    op = draw(
        st.sampled_from(
            ["short", "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$contains",
             "$not_contains", "doc"]
        )
    )  # fmt: skip
    if op == "short":
        return {key: draw(literal)}
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return {key: {op: draw(st.one_of(st.sampled_from(INTS), st.sampled_from(FLOATS)))}}
    if op in ("$in", "$nin"):
        pool = draw(st.sampled_from([INTS, FLOATS, STRS, [True, False]]))
        return {key: {op: draw(st.lists(st.sampled_from(pool), min_size=1, max_size=6))}}
    if op == "doc":
        return {"#document": {draw(st.sampled_from(["$contains", "$not_contains"])): draw(
            st.sampled_from(["a", "al", "x", "%", "_", ".", "\u00e9", "B"]))}}
    return {key: {op: draw(literal)}}


def _logic(inner):
    return st.builds(
        lambda op, items: {op: items},
        st.sampled_from(["$and", "$or"]),
        st.lists(inner, min_size=2, max_size=3),
    )


where_st = st.recursive(leaf_where(), _logic, max_leaves=5)
REGEXES = [
    "a", "^a", "a$", "(?i)beta", "\\d", "\\w+\\s\\w+", "(?s)a.b", "(?m)^x$", "caf\\w",
    "[[:upper:]]", "a\\.b", "^$", "(x|y) (x|y)", "\\bx\\b", "\\p{Lu}", ".{20,}",
]  # fmt: skip
doc_leaf = st.one_of(
    st.builds(
        lambda op, s: {op: s},
        st.sampled_from(["$contains", "$not_contains"]),
        st.sampled_from(["a", "al", "x", "%", "_", ".", "\u00e9", "B", "a b", "a\nb"]),
    ),
    st.builds(
        lambda op, p: {op: p},
        st.sampled_from(["$regex", "$not_regex"]),
        st.sampled_from(REGEXES),
    ),
)
where_document_st = st.recursive(doc_leaf, _logic, max_leaves=4)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    where=st.one_of(st.none(), where_st),
    where_document=st.one_of(st.none(), where_document_st),
)
def test_random_filters_match_chromadb(both, where, where_document):
    if where is None and where_document is None:
        return
    _check(both, where, where_document)


@pytest.mark.parametrize(
    "where, where_document",
    [
        ({}, None),
        (None, {}),
        ({"#document": "x"}, None),
        ({"#document": {"$gt": 1}}, None),
        ({"k": {"$gt": True}}, None),
        ({"k": {"$in": [1, True]}}, None),
        ({"$foo": 1}, None),
        ({"k": {"$eq": [1, 2]}}, None),
        ({"a": {"$gt": float("inf")}}, None),
        (None, {"$regex": "(?=a)"}),
        (None, {"$regex": "(a)\\1"}),
        (None, {"$regex": "("}),
        ({"a": {"$gt": 2**70}}, None),
        ({"a": {"$lt": -(2**70)}}, None),
    ],
)
def test_edge_cases_match_chromadb(both, where, where_document):
    _check(both, where, where_document)
