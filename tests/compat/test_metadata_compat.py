"""Stored metadata values compared live with chromadb 1.5.9 (issue 12): NaN and infinite
record metadata values are no value, -0.0 reads back as 0.0, and collection metadata
drops None and NaN values on create and modify."""

from __future__ import annotations

import itertools
import math

import pytest

chromadb = pytest.importorskip("chromadb")

import gleandb  # noqa: E402
from gleandb.errors import InvalidArgumentError  # noqa: E402

pytestmark = pytest.mark.compat

_n = itertools.count()
NAN, INF = float("nan"), float("inf")


@pytest.fixture(scope="module")
def clients(tmp_path_factory):
    # a store of its own: chromadb's shared in-memory one leaks list metadata of deleted
    # collections (other test modules') onto new records
    return chromadb.PersistentClient(str(tmp_path_factory.mktemp("chroma"))), gleandb.EphemeralClient()


def _canon(x):
    if isinstance(x, dict):
        return {k: _canon(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_canon(v) for v in x]
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        return ("float", x, math.copysign(1.0, x))  # tells -0.0 from 0.0
    return x


def _both(clients, write):
    """Run ``write(col)`` on a fresh collection of each engine; the stored metadatas."""
    out = []
    name = f"md{next(_n)}"
    for c in clients:
        col = c.create_collection(name, embedding_function=None)
        col.add(ids=["x"], embeddings=[[1.0, 1.0]], metadatas=[{"k": 1, "q": 2}])
        write(col)
        got = col.get(include=["metadatas"])
        out.append(_canon(dict(zip(got["ids"], got["metadatas"]))))
    return out


WRITES = {
    "add nan": lambda col: col.add(ids=["y"], embeddings=[[1.0, 1.0]], metadatas=[{"n": NAN, "k": 1}]),
    "add inf": lambda col: col.add(ids=["y"], embeddings=[[1.0, 1.0]], metadatas=[{"n": -INF, "k": 1}]),
    "add only nan": lambda col: col.add(ids=["y"], embeddings=[[1.0, 1.0]], metadatas=[{"n": NAN}]),
    "add -0.0": lambda col: col.add(ids=["y"], embeddings=[[1.0, 1.0]], metadatas=[{"z": -0.0, "l": [-0.0, 1.0]}]),
    "upsert new nan": lambda col: col.upsert(ids=["y"], embeddings=[[1.0, 1.0]], metadatas=[{"n": NAN, "z": -0.0}]),
    "upsert existing nan": lambda col: col.upsert(ids=["x"], embeddings=[[1.0, 1.0]], metadatas=[{"k": NAN}]),
    "update nan": lambda col: col.update(ids=["x"], metadatas=[{"k": NAN, "z": -0.0}]),
    "update inf": lambda col: col.update(ids=["x"], metadatas=[{"q": INF}]),
    "update all nan": lambda col: col.update(ids=["x"], metadatas=[{"k": NAN, "q": NAN}]),
}


@pytest.mark.parametrize("case", list(WRITES))
def test_record_metadata_values_stored_like_chromadb(clients, case):
    expected, got = _both(clients, WRITES[case])
    assert got == expected


def test_where_matches_zero_for_negative_zero(clients):
    for c in clients:
        col = c.create_collection(f"md{next(_n)}", embedding_function=None)
        col.add(ids=["z"], embeddings=[[1.0, 1.0]], metadatas=[{"z": -0.0}])
        assert col.get(where={"z": 0.0})["ids"] == ["z"]


def test_list_with_nan_is_refused_and_changes_nothing(clients):
    """chromadb accepts it and then fails every read of the collection; gleandb refuses it."""
    col = clients[1].create_collection(f"md{next(_n)}")
    col.add(ids=["x"], embeddings=[[1.0, 1.0]])
    with pytest.raises(InvalidArgumentError, match="key 'l'.*NaN or infinite"):
        col.add(ids=["y"], embeddings=[[1.0, 1.0]], metadatas=[{"l": [1.0, NAN]}])
    assert col.get()["ids"] == ["x"]


def _collection_metadata(clients, create_md, modify_md=None, persistent_dir=None):
    out = []
    name = f"cm{next(_n)}"
    for c in clients:
        col = c.create_collection(name, metadata=create_md, embedding_function=None)
        if modify_md is not None:
            col.modify(metadata=modify_md)
        out.append(_canon(c.get_collection(name).metadata))
    return out


@pytest.mark.parametrize("create_md,modify_md", [
    ({"a": INF, "b": -INF, "c": -0.0, "d": NAN, "e": 1}, None),
    ({"d": NAN}, None),
    ({"v": 1, "w": 2}, {"v": None, "z": 3}),
    ({"v": 1}, {"v": None}),
    ({"v": 1}, {"v": NAN, "z": -0.0, "i": INF}),
])
def test_collection_metadata_stored_like_chromadb(clients, create_md, modify_md):
    expected, got = _collection_metadata(clients, create_md, modify_md)
    assert got == expected


def test_collection_metadata_survives_reopen(tmp_path):
    c = gleandb.PersistentClient(str(tmp_path / "s"))
    c.create_collection("cmp", metadata={"a": INF, "c": -0.0, "d": NAN, "e": 1})
    c.get_collection("cmp").modify(metadata={"a": INF, "v": None, "c": -0.0})
    del c
    again = gleandb.PersistentClient(str(tmp_path / "s"))
    assert _canon(again.get_collection("cmp").metadata) == _canon({"a": INF, "c": 0.0})
