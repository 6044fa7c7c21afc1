"""Unit tests for gleandb.api.validation (messages observed on chromadb 1.5.9)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gleandb.api.errors import DuplicateIDError, InternalError, InvalidArgumentError
from gleandb.api import validation as v

E = [1.0, 2.0, 3.0]


def raises(cls, msg):
    return pytest.raises(cls, match="^" + re.escape(msg) + "$")


# ----------------------------------------------------------------- accepted forms


@pytest.mark.parametrize(
    "emb",
    [
        E,
        [1, 2, 3],
        [1, 2.5, 3],
        np.array(E),
        np.array([E]),
        [np.array(E)],
        [E],
        [(np.array(E, dtype=np.float16))],
        np.array([E], dtype=np.float64),
        np.array([[1, 2, 3]], dtype=np.int32),
        np.array([[1, 2, 3]], dtype=np.int64),
        [np.array([1, 2, 3], dtype=np.int32)],
    ],
)
def test_single_embedding_forms_accepted(emb):
    rs = v.prepare_record_set("add", "a", emb)
    assert rs.ids == ["a"]
    m = v.validate_write_for_engine("add", rs)
    assert m.dtype == np.float32 and m.shape == (1, 3)
    assert m.tolist() == [[1.0, 2.0, 3.0]] or m.tolist() == [[1.0, 2.5, 3.0]]


def test_many_forms_and_one_to_many():
    rs = v.prepare_record_set(
        "add", ["a", "b"], [[1, 2], [3, 4]], metadatas=[{"k": 1}, None], documents=["x", None],
        uris=["u", None],
    )
    assert rs.metadatas == [{"k": 1}, None]
    assert rs.documents == ["x", None]
    assert rs.uris == ["u", None]
    rs = v.prepare_record_set("add", "a", E, metadatas={"k": "v"}, documents="doc", uris="u")
    assert rs.metadatas == [{"k": "v"}] and rs.documents == ["doc"] and rs.uris == ["u"]
    rs = v.prepare_record_set("add", ["a", "b"], np.ones((2, 3), dtype=np.float16))
    assert v.validate_write_for_engine("add", rs).shape == (2, 3)


def test_metadata_value_types_accepted():
    md = {"s": "x", "i": 1, "f": 1.5, "b": True, "ls": ["a"], "li": [1, 2], "lf": [1.0],
          "lb": [True, False], "npf": np.float64(2.5)}
    rs = v.prepare_record_set("add", "a", E, metadatas=md)
    assert rs.metadatas[0]["li"] == [1, 2]
    v.validate_write_for_engine("add", rs)


def test_huge_ints_become_floats():
    rs = v.prepare_record_set("add", "a", E, metadatas={"k": 2**70, "l": [1, 2**70], "s": 5})
    assert rs.metadatas[0] == {"k": float(2**70), "l": [1.0, float(2**70)], "s": 5}
    assert isinstance(rs.metadatas[0]["s"], int)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=20, unique=True),
    st.integers(min_value=1, max_value=5),
)
def test_unique_ids_preserved_in_order(ids, dim):
    embs = np.arange(len(ids) * dim, dtype=np.float64).reshape(len(ids), dim)
    rs = v.prepare_record_set("upsert", ids, embs)
    assert rs.ids == ids
    m = v.validate_write_for_engine("upsert", rs, collection_dimension=dim)
    assert m.shape == (len(ids), dim)
    np.testing.assert_array_equal(m, embs.astype(np.float32))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(max_size=3), min_size=2, max_size=30))
def test_duplicates_always_detected(ids):
    has_dup = len(set(ids)) != len(ids)
    if has_dup:
        with pytest.raises(DuplicateIDError, match=r" in add\.$"):
            v.prepare_record_set("add", ids, [[1.0]] * len(ids))
    else:
        assert v.prepare_record_set("add", ids, [[1.0]] * len(ids)).ids == ids


# ----------------------------------------------------------------- ids


@pytest.mark.parametrize(
    "kwargs,cls,msg",
    [
        (dict(ids=None, embeddings=[E]), ValueError, "Expected IDs to be a list, got NoneType as IDs in add."),
        (dict(ids=5, embeddings=[E]), ValueError, "Expected ID to be a str, got 5 in add."),
        (dict(ids=("a", "b"), embeddings=[E]), ValueError, "Expected ID to be a str, got ('a', 'b') in add."),
        (dict(ids=("a", "b"), embeddings=[E, E]), ValueError, "Unequal lengths for fields: ids: 1, embeddings: 2 in add."),
        (dict(ids=["d", "d"], embeddings=[E, E]), DuplicateIDError, "Expected IDs to be unique, found duplicates of: d in add."),
        (dict(ids=[]), ValueError, "Non-empty lists are required for ['ids'] in add."),
        (dict(ids=[], embeddings=[E]), ValueError, "Non-empty lists are required for ['ids'] in add."),
        (dict(ids=None), ValueError, "At least one of one of ids, metadatas, embeddings, documents, images, uris must be provided in add."),
    ],
)
def test_id_rules(kwargs, cls, msg):
    with raises(cls, msg):
        v.prepare_record_set("add", **kwargs)


def test_many_duplicates_message():
    ids = [str(i // 2) for i in range(30)]
    with raises(DuplicateIDError, "Expected IDs to be unique, found 15 duplicated IDs: 0, 1, 2, 3, 4, ..., 6, 7, 8, 9, 10 in upsert."):
        v.prepare_record_set("upsert", ids, [E] * 30)


# ----------------------------------------------------------------- lengths / emptiness


@pytest.mark.parametrize(
    "kwargs,msg",
    [
        (dict(embeddings=[E], documents=[]), "Non-empty lists are required for ['documents'] in add."),
        (dict(embeddings=[E], metadatas=[]), "Non-empty lists are required for ['metadatas'] in add."),
        (dict(embeddings=[E], uris=[]), "Non-empty lists are required for ['uris'] in add."),
        (dict(ids=["u1", "u2"], embeddings=[E]), "Unequal lengths for fields: ids: 2, embeddings: 1 in add."),
        (dict(ids=["u1", "u2"], embeddings=[E, E], metadatas=[{"a": 1}], documents=["a", "b", "c"]),
         "Unequal lengths for fields: ids: 2, metadatas: 1, embeddings: 2, documents: 3 in add."),
        (dict(ids=[], embeddings=[E], metadatas=[], documents=[]), "Non-empty lists are required for ['ids', 'metadatas', 'documents'] in add."),
    ],
)
def test_length_rules(kwargs, msg):
    kwargs.setdefault("ids", ["u1"])
    with raises(ValueError, msg):
        v.prepare_record_set("add", **kwargs)


# ----------------------------------------------------------------- embeddings


@pytest.mark.parametrize(
    "emb,cls,msg",
    [
        ([], ValueError, "Expected Embeddings to be non-empty list or numpy array, got [] in add."),
        (np.zeros((0, 3)), ValueError, "Expected Embeddings to be non-empty list or numpy array, got [] in add."),
        ([np.array([1, 2, 3], dtype=np.uint8)], ValueError, "Expected each value in the embedding to be a int or float, got an embedding with uint8 - [1 2 3] in add."),
        (np.array([[True, False, True]]), ValueError, "Expected each value in the embedding to be a int or float, got an embedding with bool - [ True False  True] in add."),
        ([np.array(1.0)], ValueError, "Expected a 1-dimensional array, got a 0-dimensional array 1.0 in add."),
        (np.zeros((1, 0)), ValueError, "Expected each embedding in the embeddings to be a 1-dimensional numpy array with at least 1 int/float value. Got a 1-dimensional numpy array with no values at pos 0 in add."),
        (np.zeros((1, 1, 3)), ValueError, "Expected embeddings to be a list of floats or ints, a list of lists, a numpy array, or a list of numpy arrays, got [[[0. 0. 0.]]] in add."),
        ((1.0, 2.0, 3.0), ValueError, "Expected embeddings to be a list of floats or ints, a list of lists, a numpy array, or a list of numpy arrays, got (1.0, 2.0, 3.0) in add."),
        ([True, False, True], ValueError, "Expected embeddings to be a list of floats or ints, a list of lists, a numpy array, or a list of numpy arrays, got [True, False, True] in add."),
        ("abc", ValueError, "Expected embeddings to be a list of floats or ints, a list of lists, a numpy array, or a list of numpy arrays, got abc in add."),
        ([np.array(E), [1.0, 2.0, 3.0]], ValueError, "Expected each embedding in the embeddings to be a numpy array, got ['list', 'ndarray'] in add."),
        ([[1.0, "b", 3.0]], ValueError, "could not convert string to float: 'b' in add."),
        ([[]], IndexError, "list index out of range in add."),
        (5, TypeError, "object of type 'int' has no len() in add."),
    ],
)
def test_embedding_rules(emb, cls, msg):
    ids = ["s", "t"] if isinstance(emb, list) and len(emb) == 2 else ["s"]
    with raises(cls, msg):
        v.prepare_record_set("add", ids, emb)


# ----------------------------------------------------------------- documents / images


def test_document_rules():
    with raises(ValueError, "Expected document to be a str, got 1 in add."):
        v.prepare_record_set("add", ["a"], [E], documents=[1])
    with raises(ValueError, "Expected document to be a str, got None in add."):
        v.prepare_record_set("add", ["a"], documents=[None])
    with raises(ValueError, "Expected document to be a str, got None in update."):
        v.prepare_record_set("update", ["a"], documents=[None])
    assert v.prepare_record_set("add", ["a"], [E], documents=[None]).documents == [None]


def test_image_rule():
    with raises(ValueError, "Expected image to be a numpy array, got [0. 0.] in add."):
        v.prepare_record_set("add", ["a"], [E], images=[np.zeros(2)])


# ----------------------------------------------------------------- metadata


@pytest.mark.parametrize("method", ["add", "upsert", "update"])
@pytest.mark.parametrize(
    "md,cls,msg",
    [
        ({}, ValueError, "Expected metadata to be a non-empty dict, got 0 metadata attributes"),
        ({"chroma:document": "x"}, ValueError, "Expected metadata to not contain the reserved key chroma:document"),
        ({1: 2}, TypeError, "Expected metadata key to be a str, got 1 which is a int"),
        ({"s": {"a": 1}}, ValueError, "Expected metadata value to be a str, int, float, bool, SparseVector, list, or None, got {'a': 1} which is a dict"),
        ({"k": (1, 2)}, ValueError, "Expected metadata value to be a str, int, float, bool, SparseVector, list, or None, got (1, 2) which is a tuple"),
        ({"k": np.int64(1)}, ValueError, "Expected metadata value to be a str, int, float, bool, SparseVector, list, or None, got 1 which is a int64"),
        ({"k": []}, ValueError, "Expected metadata list value for key 'k' to be non-empty"),
        ({"k": [True, 1]}, ValueError, "Expected metadata list value for key 'k' to contain only str, int, float, or bool and all elements must be the same type, got [True, 1]"),
        ({"k": [[1]]}, ValueError, "Expected metadata list value for key 'k' to contain only str, int, float, or bool and all elements must be the same type, got [[1]]"),
        ({"k": [None]}, ValueError, "Expected metadata list value for key 'k' to contain only str, int, float, or bool and all elements must be the same type, got [None]"),
        ("x", AttributeError, "'str' object has no attribute 'items'"),
        ({"s": {"#type": "sparse_vector", "indices": [2, 1], "values": [1.0, 1.0]}}, ValueError,
         "SparseVector indices must be sorted in strictly ascending order, found indices[1]=1 <= indices[0]=2"),
    ],
)
def test_metadata_rules(method, md, cls, msg):
    with raises(cls, msg + f" in {method}."):
        v.prepare_record_set(method, ["a"], [E], metadatas=[md])


def test_metadata_none_value_add_vs_update_upsert():
    rs = v.prepare_record_set("add", ["a"], [E], metadatas=[{"x": None}])
    with raises(TypeError, "argument 'metadatas': Cannot convert Python object to MetadataValue"):
        v.validate_write_for_engine("add", rs)
    for method in ("upsert", "update"):
        rs = v.prepare_record_set(method, ["a"], [E], metadatas=[{"x": None, "y": 1}])
        v.validate_write_for_engine(method, rs)
        assert rs.metadatas == [{"x": None, "y": 1}]


def test_sparse_vector_rejected_locally():
    sv = {"#type": "sparse_vector", "indices": [1], "values": [1.0]}
    rs = v.prepare_record_set("add", ["a"], [E], metadatas=[{"s": sv}])
    with raises(TypeError, "argument 'metadatas': Cannot convert Python object to MetadataValue"):
        v.validate_write_for_engine("add", rs)
    rs = v.prepare_record_set("update", ["a"], metadatas=[{"s": sv}])
    with raises(TypeError, "argument 'metadatas': Cannot convert Python object to UpdateMetadataValue"):
        v.validate_write_for_engine("update", rs)


# ----------------------------------------------------------------- embedding target


def test_embedding_targets():
    rs = v.prepare_record_set("add", ["a"], documents=["x"])
    assert v.embedding_target("add", rs) == "documents" and v.needs_embedding("add", rs)
    rs = v.prepare_record_set("add", ["a"], uris=["x"])
    assert v.embedding_target("add", rs) == "uris"
    with raises(ValueError, "Exactly one of documents, images, uris must be provided in add."):
        v.embedding_target("add", v.prepare_record_set("add", ["a"]))
    with raises(ValueError, "Exactly one of documents, images, uris must be provided in add."):
        v.embedding_target("add", v.prepare_record_set("add", ["a"], documents=["x"], uris=["u"]))
    with raises(ValueError, "Exactly one of documents, images must be provided in upsert."):
        v.embedding_target("upsert", v.prepare_record_set("upsert", ["a"], metadatas=[{"a": 1}]))
    with raises(ValueError, "Exactly one of documents, images must be provided in upsert."):
        v.embedding_target("upsert", v.prepare_record_set("upsert", ["a"], uris=["u"]))
    assert v.embedding_target("update", v.prepare_record_set("update", ["a"])) is None
    assert v.embedding_target("update", v.prepare_record_set("update", ["a"], uris=["u"])) is None
    assert v.embedding_target("update", v.prepare_record_set("update", ["a"], documents=["d"])) == "documents"
    with raises(ValueError, "Exactly one of documents, images must be provided in update."):
        v.embedding_target("update", v.prepare_record_set("update", ["a"], documents=["d"], images=[np.zeros((2, 2))]))
    assert not v.needs_embedding("add", v.prepare_record_set("add", ["a"], [E], documents=["x"]))


def test_missing_ef_and_loader_messages():
    e = v.no_embedding_function_error("add")
    assert type(e) is ValueError
    assert str(e) == "You must provide an embedding function to compute embeddings.https://docs.trychroma.com/guides/embeddings in add."
    assert str(v.no_embedding_function_error()) == "You must provide an embedding function to compute embeddings.https://docs.trychroma.com/guides/embeddings"
    assert str(v.no_data_loader_error("query")) == "You must set a data loader on the collection if loading from URIs. in query."


def test_attach_embeddings():
    rs = v.prepare_record_set("add", ["a", "b"], documents=["x", "y"])
    rs2 = v.attach_embeddings("add", rs, [np.array([1, 2]), np.array([3, 4])])
    assert v.validate_write_for_engine("add", rs2).tolist() == [[1, 2], [3, 4]]
    with raises(ValueError, "Expected Embeddings to be non-empty list or numpy array, got [] in add."):
        v.attach_embeddings("add", rs, [])


def test_validation_context_suffixes_once_and_skips_engine_errors():
    with raises(ValueError, "boom in add."):
        with v.validation_context("add"):
            with v.validation_context("add"):
                raise ValueError("boom")
    with raises(ValueError, "Non-empty lists are required for ['ids'] in add."):
        with v.validation_context("add"):
            v.prepare_record_set("add", [])
    with raises(InvalidArgumentError, "Empty ID, ID must have at least one character"):
        with v.validation_context("add"):
            v.validate_write_for_engine("add", v.prepare_record_set("add", [""], [E]))

    @v.validation_context("get")
    def f():
        raise KeyError("x")

    with pytest.raises(KeyError) as ei:
        f()
    assert ei.value.args == ("'x' in get.",)


# ----------------------------------------------------------------- engine stage


@pytest.mark.parametrize("method", ["add", "upsert", "update"])
def test_engine_rules(method):
    def eng(ids, embs, metadatas=None, dim=None):
        rs = v.prepare_record_set(method, ids, embs, metadatas=metadatas)
        return v.validate_write_for_engine(method, rs, collection_dimension=dim)

    with raises(InvalidArgumentError, "Collection expecting embedding with dimension of 3, got 2"):
        eng(["b"], [[1.0, 2.0]], dim=3)
    with raises(InvalidArgumentError, "Inconsistent dimensions in provided embeddings"):
        eng(["b", "c"], [E, [1.0, 2.0]])
    with raises(InvalidArgumentError, "Inconsistent dimensions in provided embeddings"):
        eng(["b", "c"], [[1.0, 2.0], E], dim=3)
    with raises(InvalidArgumentError, "Empty ID, ID must have at least one character"):
        eng([""], [E])
    for bad in (float("nan"), float("inf"), -float("inf"), 1e300):
        with raises(InvalidArgumentError, "Validation error: embeddings: Embeddings must not contain NaN or Infinity values"):
            eng(["n"], [np.array([1.0, bad, 3.0])])
    for key, idx in (("#k", 0), ("$k", 0), ("", 0)):
        with raises(InvalidArgumentError, f"Validation error: metadatas: Invalid metadata at index {idx}"):
            eng(["m"], [E], metadatas=[{key: 1}])
    with raises(InvalidArgumentError, "Validation error: metadatas: Invalid metadata at index 1"):
        eng(["m", "n"], [E, E], metadatas=[{"k": 1}, {"$k": 1}])
    with raises(InvalidArgumentError, "Validation error: embeddings: Embeddings must not contain NaN or Infinity values\nmetadatas: Invalid metadata at index 0"):
        eng(["", "b"], [[1.0, float("nan"), 3.0], E], metadatas=[{"#a": 1}, {"a": 1}])
    with raises(InvalidArgumentError, "Validation error: embeddings: Embeddings must not contain NaN or Infinity values"):
        eng(["a", "b"], [[1.0, float("nan"), 3.0], [1.0, 2.0]])
    with raises(InvalidArgumentError, "Inconsistent dimensions in provided embeddings"):
        eng(["", "b"], [E, [1.0, 2.0]])
    with raises(InvalidArgumentError, "Collection expecting embedding with dimension of 3, got 2"):
        eng([""], [[1.0, 2.0]], dim=3)


def test_engine_batch_size_and_uris():
    rs = v.prepare_record_set("add", [str(i) for i in range(5462)], np.ones((5462, 3)))
    with raises(InternalError, "ValueError: Batch size of 5462 is greater than max batch size of 5461"):
        v.validate_write_for_engine("add", rs)
    rs = v.prepare_record_set("add", ["a"], [E], uris=[1])
    with raises(TypeError, "argument 'uris': 'int' object cannot be converted to 'PyString'"):
        v.validate_write_for_engine("add", rs)
    rs = v.prepare_record_set("update", [""], metadatas=[{"a": 1}])
    with raises(InvalidArgumentError, "Empty ID, ID must have at least one character"):
        v.validate_write_for_engine("update", rs)
    assert v.validate_write_for_engine("update", v.prepare_record_set("update", ["a"], uris=["u"])) is None


def test_dimension_mismatch_helper():
    e = v.dimension_mismatch_error(3, 2)
    assert isinstance(e, InvalidArgumentError)
    assert str(e) == "Collection expecting embedding with dimension of 3, got 2"


# ----------------------------------------------------------------- query


def test_query_inputs():
    qi = v.prepare_query_inputs(query_embeddings=E)
    assert v.query_embedding_matrix(qi.embeddings, 3).shape == (1, 3)
    np.testing.assert_array_equal(v.normalize_query_embeddings(np.array([[1, 2, 3], [3, 2, 1]], dtype=np.int32)), [[1, 2, 3], [3, 2, 1]])
    assert v.normalize_query_embeddings([[1.0, float("nan")]]).shape == (1, 2)  # NaN allowed
    with raises(ValueError, "At least one of one of embeddings, documents, images, uris must be provided in query."):
        v.prepare_query_inputs()
    with raises(ValueError, "Expected Embeddings to be non-empty list or numpy array, got [] in query."):
        v.prepare_query_inputs(query_embeddings=[])
    with raises(ValueError, "Expected document to be a str, got 1 in query."):
        v.prepare_query_inputs(query_texts=[1])
    with raises(InvalidArgumentError, "Inconsistent dimensions in provided embeddings"):
        v.normalize_query_embeddings([E, [1.0]])
    with raises(InvalidArgumentError, "Collection expecting embedding with dimension of 3, got 2"):
        v.normalize_query_embeddings([[1.0, 2.0]], collection_dimension=3)
    qi = v.prepare_query_inputs(query_texts="hello")
    assert qi.documents == ["hello"] and v.embedding_target("query", qi) == "documents"
    with raises(ValueError, "Exactly one of documents, images, uris must be provided in query."):
        v.embedding_target("query", v.prepare_query_inputs(query_texts=["x"], query_images=[np.zeros((2, 2))]))
    assert v.embedding_target("query", v.prepare_query_inputs(query_embeddings=E, query_texts=["x"])) is None


def test_query_ids():
    assert v.validate_query_ids("a") == ["a"]
    assert v.validate_query_ids(["a", "a"]) == ["a", "a"]
    assert v.validate_query_ids([]) == []
    assert v.validate_query_ids(None) is None
    with raises(TypeError, "argument 'ids': 'int' object cannot be converted to 'PyString'"):
        v.validate_query_ids([1])
    with raises(TypeError, "argument 'ids': 'tuple' object cannot be converted to 'PyString'"):
        v.validate_query_ids(("a",))


def test_n_results():
    assert v.validate_n_results(5) == 5
    assert v.validate_n_results(True) is True
    with raises(TypeError, "Number of requested results 0, cannot be negative, or zero. in query."):
        v.validate_n_results(0)
    with raises(TypeError, "Number of requested results -1, cannot be negative, or zero. in query."):
        v.validate_n_results(-1)
    with raises(ValueError, "Expected requested number of results to be a int, got 1.5 in query."):
        v.validate_n_results(1.5)
    with raises(ValueError, "Expected requested number of results to be a int, got 2 in query."):
        v.validate_n_results(np.int64(2))


# ----------------------------------------------------------------- include


def test_include():
    assert v.validate_include(["documents", "documents"], "get") == ["documents", "documents"]
    assert v.validate_include([], "get") == []
    inc = ["data"]
    assert v.validate_include(inc, "query") == ["data", "uris"] and inc == ["data"]
    assert v.validate_include(["distances"], "query") == ["distances"]
    with raises(ValueError, "Expected include item to be one of documents, embeddings, metadatas, distances, uris, data, got foo in get."):
        v.validate_include(["foo"], "get")
    with raises(ValueError, "Expected include item to be one of documents, embeddings, metadatas, distances, uris, data, got foo in query."):
        v.validate_include(["foo"], "query")
    with raises(ValueError, "Include item cannot be one of distances, got distances in get."):
        v.validate_include(["distances"], "get")
    with raises(ValueError, "Expected include to be a list, got documents in get."):
        v.validate_include("documents", "get")
    with raises(ValueError, "Expected include to be a list, got ('documents',) in get."):
        v.validate_include(("documents",), "get")
    with raises(ValueError, "Expected include item to be a str, got 1 in get."):
        v.validate_include([1], "get")
    with raises(ValueError, "You must set a data loader on the collection if loading from URIs. in get."):
        v.validate_include(["data"], "get")
    assert v.validate_include(["data"], "get", has_data_loader=True) == ["data", "uris"]


# ----------------------------------------------------------------- get / delete


def test_read_ids():
    assert v.validate_ids_for_read("a", "get") == ["a"]
    assert v.validate_ids_for_read([""], "get") == [""]
    assert v.validate_ids_for_read(None, "get") is None
    with raises(ValueError, "Expected IDs to be a non-empty list, got 0 IDs in get."):
        v.validate_ids_for_read([], "get")
    with raises(ValueError, "Expected IDs to be a non-empty list, got 0 IDs in delete."):
        v.validate_ids_for_read([], "delete")
    with raises(DuplicateIDError, "Expected IDs to be unique, found duplicates of: a in get."):
        v.validate_ids_for_read(["a", "a"], "get")
    with raises(ValueError, "Expected ID to be a str, got 1 in get."):
        v.validate_ids_for_read([1], "get")
    with raises(ValueError, "Expected ID to be a str, got ('a', 'b') in get."):
        v.validate_ids_for_read(("a", "b"), "get")
    with raises(ValueError, "Expected ID to be a str, got {'a': 1} in delete."):
        v.validate_ids_for_read({"a": 1}, "delete")


@pytest.mark.parametrize(
    "value,result,cls,msg",
    [
        (None, None, None, None),
        (0, 0, None, None),
        (True, 1, None, None),
        (np.int64(3), 3, None, None),
        (2**32 - 1, 2**32 - 1, None, None),
        (2**32, None, OverflowError, "out of range integral type conversion attempted"),
        (2**63 - 1, None, OverflowError, "out of range integral type conversion attempted"),
        (-1, None, OverflowError, "out of range integral type conversion attempted"),
        (np.int32(-1), None, OverflowError, "out of range integral type conversion attempted"),
        (2**63, None, OverflowError, "Python int too large to convert to C long"),
        (-(2**63) - 1, None, OverflowError, "Python int too large to convert to C long"),
        (1.5, None, TypeError, "argument 'limit': 'float' object cannot be interpreted as an integer"),
        ("1", None, TypeError, "argument 'limit': 'str' object cannot be interpreted as an integer"),
        (np.float64(1.0), None, TypeError, "argument 'limit': 'numpy.float64' object cannot be interpreted as an integer"),
    ],
)
def test_u32_arguments(value, result, cls, msg):
    if cls is None:
        assert v.validate_u32_argument("limit", value) == result
    else:
        with raises(cls, msg):
            v.validate_u32_argument("limit", value)


def test_limit_offset():
    assert v.validate_limit_offset(None, None) == (None, 0)
    assert v.validate_limit_offset(5, 2) == (5, 2)
    with raises(TypeError, "argument 'offset': 'float' object cannot be interpreted as an integer"):
        v.validate_limit_offset(None, 1.5)
    with raises(OverflowError, "out of range integral type conversion attempted"):
        v.validate_limit_offset(-1, None)


def test_delete_args():
    w = {"x": 1}
    assert v.validate_delete_args("a", None, None, None) == (["a"], None)
    assert v.validate_delete_args([""], None, None, None) == ([""], None)
    assert v.validate_delete_args(None, w, None, 0) == (None, 0)
    cases = [
        ((None, None, None, None), ValueError, "At least one of ids, where, or where_document must be provided in delete."),
        ((["a"], None, None, 1), ValueError, "limit can only be specified when a where or where_document clause is provided in delete."),
        ((None, w, None, -1), ValueError, "limit must be a non-negative integer in delete."),
        ((["a"], None, None, -1), ValueError, "limit must be a non-negative integer in delete."),
        ((None, w, None, True), TypeError, "limit must be a non-negative integer in delete."),
        ((None, w, None, 1.0), TypeError, "limit must be a non-negative integer in delete."),
        ((None, w, None, np.int64(1)), TypeError, "limit must be a non-negative integer in delete."),
        (([], None, None, None), ValueError, "Expected IDs to be a non-empty list, got 0 IDs in delete."),
        ((["q", "q"], None, None, None), DuplicateIDError, "Expected IDs to be unique, found duplicates of: q in delete."),
        ((("q",), None, None, None), ValueError, "Expected ID to be a str, got ('q',) in delete."),
    ]
    for args, cls, msg in cases:
        with raises(cls, msg):
            v.validate_delete_args(*args)


# ----------------------------------------------------------------- collections


NAME_MSG = ("Validation error: {f}: Expected a name containing 3-512 characters from [a-zA-Z0-9._-], "
            "starting and ending with a character in [a-zA-Z0-9]. Got: {n}")


@pytest.mark.parametrize("name", ["abc", "ABC_d.e-f", "a" * 512, "1.2.3", "a-b", "01.2.3.4"])
def test_collection_name_ok(name):
    assert v.validate_collection_name(name) == name


@pytest.mark.parametrize("name", ["ab", "a" * 513, "-abc", "abc-", "ab c", "", "é12", "::1abc", "a:b", "abc\n", "_ab"])
def test_collection_name_charset(name):
    with raises(InvalidArgumentError, NAME_MSG.format(f="name", n=name)):
        v.validate_collection_name(name)
    with raises(InvalidArgumentError, NAME_MSG.format(f="new_name", n=name)):
        v.validate_collection_name(name, field="new_name")


def test_collection_name_other_rules():
    with raises(InvalidArgumentError, "Validation error: name: Expected a name that does not contains two consecutive periods (..). Got a..b"):
        v.validate_collection_name("a..b")
    for ip in ("192.168.1.1", "1.2.3.4"):
        with raises(InvalidArgumentError, f"Validation error: name: Expected a name that is not a valid ip address. Got {ip}"):
            v.validate_collection_name(ip)
    with raises(TypeError, "argument 'name': 'int' object cannot be converted to 'PyString'"):
        v.validate_collection_name(123)
    with raises(TypeError, "argument 'new_name': 'NoneType' object cannot be converted to 'PyString'"):
        v.validate_collection_name(None, field="new_name")


@pytest.mark.parametrize(
    "md,cls,msg",
    [
        ({}, InvalidArgumentError, "Validation error: metadata: Metadata cannot be empty"),
        ({"#a": 1}, InvalidArgumentError, "Validation error: metadata: Metadata key cannot start with '#' or '$': #a"),
        ({"$a": 1}, InvalidArgumentError, "Validation error: metadata: Metadata key cannot start with '#' or '$': $a"),
        ({"": 1}, InvalidArgumentError, "Validation error: metadata: Metadata key cannot be empty"),
        ({"#a": 1, "": 2}, InvalidArgumentError, "Validation error: metadata: Metadata key cannot start with '#' or '$': #a"),
        ({"": 2, "#a": 1}, InvalidArgumentError, "Validation error: metadata: Metadata key cannot be empty"),
        ({"a": None}, TypeError, "argument 'metadata': Cannot convert Python object to MetadataValue"),
        ({"a": {"b": 1}}, TypeError, "argument 'metadata': Cannot convert Python object to MetadataValue"),
        ({"a": (1,)}, TypeError, "argument 'metadata': Cannot convert Python object to MetadataValue"),
        ({"a": []}, ValueError, "Empty lists are not allowed as metadata values"),
        ({"a": [1, "x"]}, TypeError, "argument 'metadata': Cannot convert Python list to MetadataValue: mixed or unsupported element types"),
        ({1: 1}, TypeError, "argument 'metadata': 'int' object cannot be converted to 'PyString'"),
        ({1: 2, "a": None}, TypeError, "argument 'metadata': 'int' object cannot be converted to 'PyString'"),
        ({"a": None, 1: 2}, TypeError, "argument 'metadata': Cannot convert Python object to MetadataValue"),
        ("x", TypeError, "argument 'metadata': 'str' object cannot be converted to 'PyDict'"),
        ({"hnsw:space": "foo"}, InvalidArgumentError, "Failed to parse hnsw parameters from segment metadata"),
        ({"hnsw:space": "L2"}, InvalidArgumentError, "Failed to parse hnsw parameters from segment metadata"),
        ({"hnsw:M": "x"}, InvalidArgumentError, "Failed to parse hnsw parameters from segment metadata"),
        ({"hnsw:M": -1}, InvalidArgumentError, "Failed to parse hnsw parameters from segment metadata"),
        ({"hnsw:M": 1.5}, InvalidArgumentError, "Failed to parse hnsw parameters from segment metadata"),
        ({"hnsw:M": True}, InvalidArgumentError, "Failed to parse hnsw parameters from segment metadata"),
        ({"hnsw:batch_size": 1}, InvalidArgumentError, "Failed to parse hnsw parameters from segment metadata"),
        ({"hnsw:sync_threshold": 1}, InvalidArgumentError, "Failed to parse hnsw parameters from segment metadata"),
        ({"hnsw:foo": 1, "#a": 1}, InvalidArgumentError, "Failed to parse hnsw parameters from segment metadata"),
        ({"#a": 1, "hnsw:foo": 1}, InvalidArgumentError, "Failed to parse hnsw parameters from segment metadata"),
        ({"hnsw:space": "ip", "": 1}, InvalidArgumentError, "Validation error: metadata: Metadata key cannot be empty"),
    ],
)
def test_collection_metadata_create(md, cls, msg):
    with raises(cls, msg):
        v.validate_collection_metadata(md, creating=True)


def test_collection_metadata_create_ok():
    assert v.validate_collection_metadata(None) is None
    md = {"chroma:document": 1, "hnsw:space": "cosine", "hnsw:M": 0, "hnsw:resize_factor": -1.0,
          "hnsw:num_threads": 0, "hnsw:construction_ef": 0, "hnsw:search_ef": 0, "hnsw:batch_size": 2, "l": [1, 2]}
    assert v.validate_collection_metadata(md) == md
    out = v.validate_collection_metadata({"a": np.int64(1)})
    assert out == {"a": 1} and type(out["a"]) is int


@pytest.mark.parametrize(
    "md,cls,msg",
    [
        ({}, ValueError, "Expected metadata to be a non-empty dict, got 0 metadata attributes"),
        ({"hnsw:space": "ip"}, ValueError, "Changing the distance function of a collection once it is created is not supported currently."),
        ({"#a": 1}, InvalidArgumentError, "Validation error: new_metadata: Metadata key cannot start with '#' or '$': #a"),
        ({"x": None, "#y": 1}, InvalidArgumentError, "Validation error: new_metadata: Metadata key cannot start with '#' or '$': #y"),
        ({"chroma:document": 1}, ValueError, "Expected metadata to not contain the reserved key chroma:document"),
        ({1: 1}, TypeError, "Expected metadata key to be a str, got 1 which is a int"),
        ("x", ValueError, "Expected metadata to be a dict or None, got str as metadata"),
        ({"x": {"a": 1}}, ValueError, "Expected metadata value to be a str, int, float, bool, SparseVector, list, or None, got {'a': 1} which is a dict"),
    ],
)
def test_collection_metadata_modify(md, cls, msg):
    with raises(cls, msg):
        v.validate_collection_metadata(md, creating=False)


def test_collection_metadata_modify_ok():
    assert v.validate_collection_metadata({"x": None, "z": 1}, creating=False) == {"x": None, "z": 1}
    assert v.validate_collection_metadata({"hnsw:foo": 1, "hnsw:M": -1}, creating=False) == {"hnsw:foo": 1, "hnsw:M": -1}


def test_tenant_and_database_names():
    # chromadb's length check first (its messages), then the Chroma server's name rule (gleandb refuses
    # names that could never be addressed over HTTP: spaces, "/", "..", control characters, > 512 chars)
    assert v.validate_tenant_name("a.b-c_1") == "a.b-c_1"
    for bad in ("a b c", "-abc", "../../etc", "a/b/c", "ab\x00c", "ab\nc", "x" * 5000):
        with pytest.raises(InvalidArgumentError, match="Expected a tenant name containing 3-512 characters"):
            v.validate_tenant_name(bad)
    with raises(InvalidArgumentError, 'Validation error: name: Validation error: length [{"min": Number(3), "value": String("ab")}]'):
        v.validate_tenant_name("ab")
    with raises(InvalidArgumentError, 'Validation error: name: Validation error: length [{"min": Number(3), "value": String("éé")}]'):
        v.validate_tenant_name("éé")
    with raises(TypeError, "argument 'name': 'int' object cannot be converted to 'PyString'"):
        v.validate_tenant_name(5)
    for ok in ("abc", "a b c", "-abc", "a..b", "1.2.3.4", "x" * 600):  # lookups: any name of 3+ characters
        assert v.validate_database_name(ok) == ok
    for ok in ("abc", "1.2.3.4", "x" * 512):
        assert v.validate_database_name(ok, creating=True) == ok
    for bad in ("a b c", "-abc", "a..b", "x" * 513):
        with pytest.raises(InvalidArgumentError, match="Expected a database name containing 3-512 characters"):
            v.validate_database_name(bad, creating=True)
    for bad in ("ab", ""):
        with raises(InvalidArgumentError, "database name must be at least 3 characters"):
            v.validate_database_name(bad)
    with raises(TypeError, "argument 'name': 'int' object cannot be converted to 'PyString'"):
        v.validate_database_name(5)
