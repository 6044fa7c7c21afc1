"""Deeply nested filters are refused with a clear InvalidArgumentError naming the depth and
the limit, for every read and delete entry point, instead of ending in RecursionError."""

from __future__ import annotations

import pytest

import gleandb
from gleandb import Search
from gleandb.api.errors import InvalidArgumentError
from gleandb.index.depth import MAX_FILTER_DEPTH, filter_depth


def nested_where(levels: int) -> dict:
    w: dict = {"k": 1}
    for _ in range(levels):
        w = {"$and": [w, {"k": 1}]}
    return w


def nested_document(levels: int) -> dict:
    w: dict = {"$contains": "x"}
    for _ in range(levels):
        w = {"$or": [w, {"$contains": "y"}]}
    return w


@pytest.fixture
def col():
    c = gleandb.EphemeralClient()
    col = c.create_collection("depth", embedding_function=None)
    col.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]], documents=["x y", "y z"],
            metadatas=[{"k": 1}, {"k": 2}])
    yield col
    c.delete_collection("depth")


def _calls(col, where=None, where_document=None):
    q = [[1.0, 0.0]]
    return {
        "get": lambda: col.get(where=where, where_document=where_document),
        "query": lambda: col.query(query_embeddings=q, n_results=1, where=where, where_document=where_document),
        "count": lambda: col.count(where=where, where_document=where_document),
        "delete": lambda: col.delete(where=where, where_document=where_document),
        "retrieve": lambda: col.retrieve(query_embeddings=q, where=where, where_document=where_document, mode="dense"),
    }


def test_depth_is_measured_without_recursion():
    assert filter_depth({"k": 1}) == 1
    assert filter_depth({"k": {"$eq": 1}}) == 1
    assert filter_depth({"$and": [{"k": {"$in": [1, 2]}}, {"k": 2}]}) == 3  # operand lists count
    assert filter_depth([[[[[]]]]]) == 3  # any nesting counts, not only $and/$or
    assert filter_depth(nested_where(3)) == 4
    assert filter_depth(nested_where(100_000)) == 100_001  # far past Python's recursion limit


@pytest.mark.parametrize("levels", [400, 20_000])
def test_deep_where_and_where_document_are_refused_everywhere(col, levels):
    for field, kwargs in (("where", {"where": nested_where(levels)}),
                          ("where_document", {"where_document": nested_document(levels)})):
        for name, call in _calls(col, **kwargs).items():
            with pytest.raises(InvalidArgumentError) as info:
                call()
            msg = str(info.value)
            assert f"{field} is nested {levels + 1} levels deep" in msg, (name, msg)
            assert f"limit of {MAX_FILTER_DEPTH}" in msg, (name, msg)
    with pytest.raises(InvalidArgumentError, match=rf"nested {levels + 1} levels deep.*limit of {MAX_FILTER_DEPTH}"):
        col.search(Search().where(nested_where(levels)))
    assert col.count() == 2  # the refused delete changed nothing


def test_filters_up_to_the_limit_still_work(col):
    where = nested_where(MAX_FILTER_DEPTH - 1)  # MAX_FILTER_DEPTH levels of dicts
    assert filter_depth(where) == MAX_FILTER_DEPTH
    for name, call in _calls(col, where=where).items():
        if name != "delete":
            call()
    assert col.get(where=where)["ids"] == ["a"]
    assert col.count(where=where) == 1
    assert [r["id"] for r in col.search(Search().where(where)).rows()[0]] == ["a"]
