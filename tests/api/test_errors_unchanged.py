"""Bad input raises chromadb's exception class and leaves the collection unchanged.

Each case is a call on a collection holding a few records. The call must raise the
class chromadb 1.5.9 raises (recorded below, from running these cases against chromadb:
``GLEANDB_TEST_TARGET=chromadb /tmp/chroma-venv/bin/python -m pytest <this file>``), and
afterwards ``get`` with every include and ``count`` must return exactly what they did
before.
"""

import builtins
import json

import pytest

NAN = float("nan")
INF = float("inf")

GOOD = [1.0, 2.0, 3.0]


def rows(n, start=0):
    return [f"new{start + k}" for k in range(n)]


def embs(n):
    return [[float(k), 0.5, -1.0] for k in range(n)]


# (case id, expected class name or tuple of accepted names, call). Names resolve to
# builtins (ValueError, TypeError, ...) or to ``<module>.errors.<Name>``.
# Not a case: query with a NaN query embedding, which chromadb 1.5.9 accepts.
CASES = [
    # --- ids ---
    ("add_ids_not_list", "ValueError", lambda c: c.add(ids=5, embeddings=[GOOD])),
    ("add_id_not_str", "ValueError", lambda c: c.add(ids=[1], embeddings=[GOOD])),
    ("add_id_empty_str", "InvalidArgumentError", lambda c: c.add(ids=[""], embeddings=[GOOD])),
    ("add_ids_empty_list", "ValueError", lambda c: c.add(ids=[], embeddings=[])),
    ("add_duplicate_ids", "DuplicateIDError", lambda c: c.add(ids=["x", "y", "x"], embeddings=embs(3))),
    ("upsert_duplicate_ids", "DuplicateIDError", lambda c: c.upsert(ids=["a", "a"], embeddings=embs(2))),
    ("update_duplicate_ids", "DuplicateIDError", lambda c: c.update(ids=["a", "a"], embeddings=embs(2))),
    ("get_ids_empty_list", "ValueError", lambda c: c.get(ids=[])),
    ("delete_id_not_str", "ValueError", lambda c: c.delete(ids=[3])),
    # --- lengths ---
    ("add_lengths_differ", "ValueError", lambda c: c.add(ids=rows(2), embeddings=embs(1))),
    ("add_documents_length_differs", "ValueError", lambda c: c.add(ids=rows(2), embeddings=embs(2), documents=["d"])),
    ("add_metadatas_length_differs", "ValueError", lambda c: c.add(ids=rows(2), embeddings=embs(2), metadatas=[{"k": 1}] * 3)),
    # --- embeddings ---
    ("add_wrong_dimension", "InvalidArgumentError", lambda c: c.add(ids=rows(1), embeddings=[[1.0, 2.0]])),
    ("add_wrong_dimension_longer", "InvalidArgumentError", lambda c: c.add(ids=rows(1), embeddings=[[1.0, 2.0, 3.0, 4.0]])),
    ("add_mixed_dimensions", "InvalidArgumentError", lambda c: c.add(ids=rows(2), embeddings=[GOOD, [1.0, 2.0]])),
    ("add_nan_embedding", "InvalidArgumentError", lambda c: c.add(ids=rows(1), embeddings=[[NAN, 1.0, 2.0]])),
    ("add_inf_embedding", "InvalidArgumentError", lambda c: c.add(ids=rows(1), embeddings=[[INF, 1.0, 2.0]])),
    # chromadb 1.5.9 raises IndexError here (client bug); the documented ValueError is accepted too
    ("add_empty_embedding", ("IndexError", "ValueError"), lambda c: c.add(ids=rows(1), embeddings=[[]])),
    ("add_string_embedding", "ValueError", lambda c: c.add(ids=rows(1), embeddings=[["a", "b", "c"]])),
    ("add_bool_embedding", "ValueError", lambda c: c.add(ids=rows(1), embeddings=[[True, False, True]])),
    ("update_wrong_dimension", "InvalidArgumentError", lambda c: c.update(ids=["a"], embeddings=[[1.0, 2.0]])),
    ("update_nan_embedding", "InvalidArgumentError", lambda c: c.update(ids=["a"], embeddings=[[NAN, 0.0, 0.0]])),
    ("upsert_wrong_dimension", "InvalidArgumentError", lambda c: c.upsert(ids=["a"], embeddings=[[1.0, 2.0, 3.0, 4.0]])),
    # --- documents ---
    ("add_document_not_str", "ValueError", lambda c: c.add(ids=rows(1), embeddings=embs(1), documents=[5])),
    # --- metadata ---
    ("add_metadata_empty_dict", "ValueError", lambda c: c.add(ids=rows(1), embeddings=embs(1), metadatas=[{}])),
    ("update_metadata_empty_dict", "ValueError", lambda c: c.update(ids=["a"], metadatas=[{}])),
    # chromadb 1.5.9 raises AttributeError here (client bug); the documented ValueError is accepted too
    ("add_metadata_not_dict", ("AttributeError", "ValueError"), lambda c: c.add(ids=rows(1), embeddings=embs(1), metadatas=["k"])),
    ("add_metadata_nested_dict", "ValueError", lambda c: c.add(ids=rows(1), embeddings=embs(1), metadatas=[{"k": {"a": 1}}])),
    ("add_metadata_tuple_value", "ValueError", lambda c: c.add(ids=rows(1), embeddings=embs(1), metadatas=[{"k": (1, 2)}])),
    ("add_metadata_key_not_str", "TypeError", lambda c: c.add(ids=rows(1), embeddings=embs(1), metadatas=[{1: "a"}])),
    ("add_metadata_key_empty", "InvalidArgumentError", lambda c: c.add(ids=rows(1), embeddings=embs(1), metadatas=[{"": "a"}])),
    ("add_metadata_key_dollar", "InvalidArgumentError", lambda c: c.add(ids=rows(1), embeddings=embs(1), metadatas=[{"$k": "a"}])),
    ("add_metadata_key_hash", "InvalidArgumentError", lambda c: c.add(ids=rows(1), embeddings=embs(1), metadatas=[{"#k": "a"}])),
    ("add_metadata_reserved_key", "ValueError", lambda c: c.add(ids=rows(1), embeddings=embs(1), metadatas=[{"chroma:document": "a"}])),
    ("add_metadata_empty_list", "ValueError", lambda c: c.add(ids=rows(1), embeddings=embs(1), metadatas=[{"k": []}])),
    ("add_metadata_mixed_list", "ValueError", lambda c: c.add(ids=rows(1), embeddings=embs(1), metadatas=[{"k": [1, "a"]}])),
    ("add_metadata_bool_int_list", "ValueError", lambda c: c.add(ids=rows(1), embeddings=embs(1), metadatas=[{"k": [True, 1]}])),
    ("add_metadata_nested_list", "ValueError", lambda c: c.add(ids=rows(1), embeddings=embs(1), metadatas=[{"k": [[1], [2]]}])),
    ("update_metadata_bad_value", "ValueError", lambda c: c.update(ids=["a"], metadatas=[{"k": {"x": 1}}])),
    ("upsert_metadata_key_dollar", "InvalidArgumentError", lambda c: c.upsert(ids=["a"], embeddings=[GOOD], metadatas=[{"$k": 1}])),
    # --- a bad row in the middle of a batch of good rows: nothing of the batch lands ---
    (
        "upsert_bad_row_nan_middle",
        "InvalidArgumentError",
        lambda c: c.upsert(ids=["a", "new1", "b", "new2"], embeddings=[GOOD, GOOD, [1.0, NAN, 0.0], GOOD]),
    ),
    (
        "upsert_bad_row_dimension_middle",
        "InvalidArgumentError",
        lambda c: c.upsert(ids=["a", "new1", "b", "new2"], embeddings=[GOOD, GOOD, [1.0, 2.0], GOOD]),
    ),
    (
        "upsert_bad_row_metadata_middle",
        "ValueError",
        lambda c: c.upsert(
            ids=["a", "new1", "b", "new2"],
            embeddings=embs(4),
            metadatas=[{"k": 1}, {"k": 2}, {"k": {"bad": 1}}, {"k": 3}],
        ),
    ),
    (
        "upsert_bad_row_metadata_key_middle",
        "InvalidArgumentError",
        lambda c: c.upsert(
            ids=["a", "new1", "b", "new2"],
            embeddings=embs(4),
            metadatas=[{"k": 1}, {"k": 2}, {"#k": 1}, {"k": 3}],
        ),
    ),
    (
        "upsert_bad_row_empty_id_middle",
        "InvalidArgumentError",
        lambda c: c.upsert(ids=["a", "new1", "", "new2"], embeddings=embs(4)),
    ),
    (
        "upsert_bad_row_document_middle",
        "ValueError",
        lambda c: c.upsert(ids=["a", "new1", "b", "new2"], embeddings=embs(4), documents=["d1", "d2", 7, "d4"]),
    ),
    (
        "add_bad_row_nan_middle",
        "InvalidArgumentError",
        lambda c: c.add(ids=rows(4), embeddings=[GOOD, GOOD, [NAN, 0.0, 0.0], GOOD]),
    ),
    (
        "update_bad_row_dimension_middle",
        "InvalidArgumentError",
        lambda c: c.update(ids=["a", "b", "c"], embeddings=[GOOD, [1.0], GOOD]),
    ),
    # --- where ---
    ("get_where_not_dict", "ValueError", lambda c: c.get(where="k")),
    ("get_where_two_keys", "ValueError", lambda c: c.get(where={"k": 1, "s": "a"})),
    ("get_where_unknown_operator", "ValueError", lambda c: c.get(where={"k": {"$foo": 1}})),
    ("get_where_two_operators", "ValueError", lambda c: c.get(where={"k": {"$gt": 1, "$lt": 3}})),
    ("get_where_gt_string", "ValueError", lambda c: c.get(where={"k": {"$gt": "a"}})),
    # bool passes the client check (bool is an int in Python); the engine rejects it
    ("get_where_gt_bool", "InvalidArgumentError", lambda c: c.get(where={"k": {"$gt": True}})),
    ("get_where_in_empty", "ValueError", lambda c: c.get(where={"k": {"$in": []}})),
    ("get_where_in_mixed", "ValueError", lambda c: c.get(where={"k": {"$in": [1, "a"]}})),
    ("get_where_in_not_list", "ValueError", lambda c: c.get(where={"k": {"$in": 1}})),
    ("get_where_and_one_item", "ValueError", lambda c: c.get(where={"$and": [{"k": 1}]})),
    ("get_where_or_not_list", "ValueError", lambda c: c.get(where={"$or": {"k": 1}})),
    ("get_where_top_level_contains", "ValueError", lambda c: c.get(where={"$contains": "a"})),
    ("get_where_value_list", "ValueError", lambda c: c.get(where={"k": [1, 2]})),
    ("get_where_value_dict_empty", "ValueError", lambda c: c.get(where={"k": {}})),
    ("query_bad_where", "ValueError", lambda c: c.query(query_embeddings=[GOOD], where={"k": {"$foo": 1}})),
    ("delete_bad_where", "ValueError", lambda c: c.delete(where={"k": {"$foo": 1}})),
    ("delete_where_in_empty", "ValueError", lambda c: c.delete(where={"k": {"$nin": []}})),
    # --- where_document ---
    ("get_where_document_not_dict", "ValueError", lambda c: c.get(where_document="a")),
    ("get_where_document_unknown_op", "ValueError", lambda c: c.get(where_document={"$foo": "a"})),
    ("get_where_document_non_str", "ValueError", lambda c: c.get(where_document={"$contains": 5})),
    ("get_where_document_empty_str", "ValueError", lambda c: c.get(where_document={"$contains": ""})),
    ("get_where_document_two_keys", "ValueError", lambda c: c.get(where_document={"$contains": "a", "$regex": "b"})),
    ("get_where_document_and_one", "ValueError", lambda c: c.get(where_document={"$and": [{"$contains": "a"}]})),
    ("get_bad_regex_paren", "InvalidArgumentError", lambda c: c.get(where_document={"$regex": "("})),
    ("get_bad_regex_not_regex", "InvalidArgumentError", lambda c: c.get(where_document={"$not_regex": "a[b"})),
    ("query_bad_regex", "InvalidArgumentError", lambda c: c.query(query_embeddings=[GOOD], where_document={"$regex": "("})),
    ("delete_bad_regex", "InvalidArgumentError", lambda c: c.delete(where_document={"$regex": "("})),
    # --- query ---
    ("query_n_results_zero", "TypeError", lambda c: c.query(query_embeddings=[GOOD], n_results=0)),
    ("query_n_results_negative", "TypeError", lambda c: c.query(query_embeddings=[GOOD], n_results=-1)),
    ("query_n_results_str", "ValueError", lambda c: c.query(query_embeddings=[GOOD], n_results="3")),
    ("query_wrong_dimension", "InvalidArgumentError", lambda c: c.query(query_embeddings=[[1.0, 2.0]])),
    ("query_bad_include", "ValueError", lambda c: c.query(query_embeddings=[GOOD], include=["bogus"])),
    # --- include ---
    ("get_include_distances", "ValueError", lambda c: c.get(include=["distances"])),
    ("get_include_unknown", "ValueError", lambda c: c.get(include=["bogus"])),
    # --- delete ---
    ("delete_no_arguments", "ValueError", lambda c: c.delete()),
    ("delete_limit_without_where", "ValueError", lambda c: c.delete(ids=["a"], limit=1)),
    ("delete_limit_negative", "ValueError", lambda c: c.delete(where={"k": 1}, limit=-1)),
]


def _resolve(db, name):
    if isinstance(name, tuple):
        return tuple(_resolve(db, n) for n in name)
    cls = getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, BaseException):
        return cls
    return getattr(db.errors, name)


def _snapshot(col):
    res = col.get(include=["embeddings", "documents", "metadatas"])
    embs_ = res["embeddings"]
    return json.dumps(
        {
            "ids": list(res["ids"]),
            "embeddings": [[float(x) for x in e] for e in (embs_ if embs_ is not None else [])],
            "documents": list(res["documents"]),
            "metadatas": list(res["metadatas"]),
            "count": col.count(),
        },
        sort_keys=True,
    )


@pytest.fixture
def filled(db, client):
    col = client.create_collection("errors", embedding_function=None)
    col.add(
        ids=["a", "b", "c"],
        embeddings=[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.25]],
        documents=["alpha doc", None, "gamma"],
        metadatas=[{"k": 1, "s": "x", "l": [1, 2]}, None, {"k": 2.5, "b": True}],
    )
    return col


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_and_changes_nothing(db, client, filled, case):
    _name, expected, call = case
    cls = _resolve(db, expected)
    before = _snapshot(filled)
    with pytest.raises(Exception) as info:
        call(filled)
    assert isinstance(info.value, cls), f"raised {type(info.value).__module__}.{type(info.value).__name__}: {info.value}; expected {expected}"
    assert _snapshot(filled) == before, "the failed call changed the collection"
    # the same holds for a fresh client on the same directory (nothing half-written on disk)
    again = client.get_collection("errors", embedding_function=None)
    assert _snapshot(again) == before


def test_snapshot_sees_changes(db, client, filled):
    """Guard: the unchanged-check would notice a change of any field."""
    before = _snapshot(filled)
    filled.update(ids=["b"], metadatas=[{"z": 1}])
    assert _snapshot(filled) != before
    before = _snapshot(filled)
    filled.update(ids=["c"], embeddings=[[0.5, 0.5, 0.5]])
    assert _snapshot(filled) != before
    before = _snapshot(filled)
    filled.upsert(ids=["a"], embeddings=[[1.0, 0.0, 0.0]], documents=["other"])
    assert _snapshot(filled) != before
