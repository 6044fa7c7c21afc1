"""Client and collection management, result shapes and configuration, as chromadb 1.5.9 does them."""

import uuid

import numpy as np
import pytest

import gleandb
from gleandb.errors import InternalError, InvalidArgumentError, NotFoundError


@pytest.fixture
def client(tmp_path):
    gleandb.ClientAPI.clear_system_cache()
    c = gleandb.PersistentClient(str(tmp_path))
    yield c
    c.close()


def test_result_shapes_match_chromadb(client):
    col = client.create_collection("abc", embedding_function=None)
    empty = col.get(include=["embeddings", "documents", "metadatas"])
    assert empty["ids"] == [] and empty["documents"] == [] and empty["metadatas"] == []
    assert isinstance(empty["embeddings"], np.ndarray) and empty["embeddings"].shape == (0,)
    q = col.query(query_embeddings=[[1, 2, 3]], n_results=3, include=["embeddings", "distances", "documents"])
    assert q["ids"] == [[]] and q["distances"] == [[]] and q["documents"] == [[]] and q["metadatas"] is None

    col.add(ids=["a", "b"], embeddings=[[1, 0, 0], [0, 1, 0]], documents=["x", None])
    peek = col.peek()
    assert peek["ids"] == ["a", "b"]
    assert peek["embeddings"].shape == (2, 3)
    assert peek["documents"] == ["x", None] and peek["metadatas"] == [None, None]
    assert peek["included"] == ["embeddings", "documents", "metadatas"]
    q = col.query(query_embeddings=[[1, 0, 0]], n_results=5, include=["embeddings", "distances", "uris"])
    assert q["ids"] == [["a", "b"]]
    assert q["distances"] == [[0.0, 2.0]]  # squared l2
    assert q["uris"] == [[None, None]] and q["documents"] is None
    assert len(q["embeddings"]) == 1 and q["embeddings"][0].shape == (2, 3)


def test_two_queries_nested_lists_and_l2_squared(client):
    col = client.create_collection("two", embedding_function=None)
    col.add(ids=["a", "b", "c", "d"], embeddings=[[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0]])
    r = col.query(query_embeddings=[[1, 0, 0], [0, 0, 1]], n_results=2, include=["distances"])
    assert r["ids"] == [["a", "d"], ["c", "d"]]
    np.testing.assert_allclose(r["distances"], [[0.0, 0.5], [0.0, 1.5]], atol=1e-6)


@pytest.mark.parametrize("space,expected", [("cosine", 1 - 1 / np.sqrt(2)), ("ip", 1 - 0.5)])
def test_distance_spaces(client, space, expected):
    col = client.create_collection(f"sp-{space}", metadata={"hnsw:space": space}, embedding_function=None)
    col.add(ids=["x"], embeddings=[[0.5, 0.5]])
    r = col.query(query_embeddings=[[1.0, 0.0]], n_results=1, include=["distances"])
    assert r["distances"][0][0] == pytest.approx(expected, abs=1e-6)
    assert col.configuration_json["hnsw"]["space"] == space


def test_collection_lifecycle_errors(client):
    client.create_collection("abc", embedding_function=None)
    with pytest.raises(InternalError, match=r"Collection \[abc\] already exists"):
        client.create_collection("abc")
    with pytest.raises(NotFoundError, match=r"Collection \[nope\] does not exist"):
        client.get_collection("nope")
    with pytest.raises(NotFoundError, match=r"Collection \[nope\] does not exist"):
        client.delete_collection("nope")
    with pytest.raises(InvalidArgumentError, match="Got: a"):
        client.create_collection("a")
    with pytest.raises(InvalidArgumentError, match="Failed to parse hnsw parameters"):
        client.create_collection("xyz", metadata={"hnsw:space": "foo"})
    assert [c.name for c in client.list_collections()] == ["abc"]


def test_modify_rename_metadata_and_space_guard(client):
    col = client.create_collection("def", embedding_function=None, metadata={"a": 1})
    col.modify(name="ghi", metadata={"b": 2})
    assert col.name == "ghi" and col.metadata == {"b": 2}
    assert client.get_or_create_collection("ghi", metadata={"zz": 1}).metadata == {"b": 2}
    with pytest.raises(ValueError, match="Changing the distance function"):
        col.modify(metadata={"hnsw:space": "ip"})
    col.modify(configuration={"hnsw": {"ef_search": 250}})
    assert client.get_collection("ghi").configuration_json["hnsw"]["ef_search"] == 250
    assert client.count_collections() == 1
    assert isinstance(col.id, uuid.UUID)


def test_configuration_persists_embedding_function(client, tmp_path):
    col = client.create_collection("jkl")
    assert col.configuration_json["embedding_function"] == {"type": "known", "name": "default", "config": {}}
    assert col.configuration_json["hnsw"] == {
        "space": "l2", "ef_construction": 100, "ef_search": 100,
        "max_neighbors": 16, "resize_factor": 1.2, "sync_threshold": 1000,
    }
    from gleandb.embeddings.hashing import HashingEmbeddingFunction

    col = client.create_collection("hashed", embedding_function=HashingEmbeddingFunction(dim=32))
    col.add(ids=["a", "b"], documents=["red apples", "blue sky"])
    client.close()
    gleandb.ClientAPI.clear_system_cache()
    client2 = gleandb.PersistentClient(str(tmp_path))
    col = client2.get_collection("hashed")  # the function is rebuilt from the persisted configuration
    assert col.query(query_texts=["apples"], n_results=1)["ids"] == [["a"]]
    client2.close()


def test_deleted_collection_object_raises(client):
    col = client.create_collection("gone", embedding_function=None)
    col.add(ids=["a"], embeddings=[[1.0]])
    client.delete_collection("gone")
    with pytest.raises(NotFoundError, match="does not exist"):
        col.count()


def test_no_embedding_function_error(client):
    col = client.create_collection("noef", embedding_function=None)
    with pytest.raises(ValueError, match="You must provide an embedding function"):
        col.add(ids=["a"], documents=["text"])
    assert col.count() == 0


def test_tenants_and_databases(tmp_path):
    gleandb.ClientAPI.clear_system_cache()
    settings = gleandb.Settings(is_persistent=True, persist_directory=str(tmp_path))
    admin = gleandb.AdminClient(settings)
    admin.create_tenant("acme")
    admin.create_database("prod", tenant="acme")
    with pytest.raises(Exception, match=r"Database \[prod\] already exists"):
        admin.create_database("prod", tenant="acme")
    assert [d["name"] for d in admin.list_databases(tenant="acme")] == ["prod"]
    with pytest.raises(NotFoundError):
        admin.get_database("nope", tenant="acme")
    c = gleandb.PersistentClient(str(tmp_path), tenant="acme", database="prod")
    c.create_collection("inprod", embedding_function=None).add(ids=["a"], embeddings=[[1.0]])
    d = gleandb.PersistentClient(str(tmp_path))
    assert d.list_collections() == []  # default tenant/database do not see it
    with pytest.raises(ValueError, match="Could not connect to tenant"):
        gleandb.PersistentClient(str(tmp_path), tenant="ghost")
    admin.delete_database("prod", tenant="acme")
    with pytest.raises(NotFoundError):
        c.get_collection("inprod")
    for x in (c, d, admin):
        x.close()


def test_ephemeral_clients_share_data_and_reset():
    gleandb.ClientAPI.clear_system_cache()
    a = gleandb.EphemeralClient(settings=gleandb.Settings(allow_reset=True))
    b = gleandb.EphemeralClient()
    a.create_collection("mem", embedding_function=None).add(ids=["a"], embeddings=[[1.0, 2.0]])
    assert b.get_collection("mem").count() == 1
    assert a.reset() is True
    assert a.list_collections() == []
    with pytest.raises(gleandb.errors.AuthorizationError, match="^Reset is disabled by config"):
        b.reset()  # chromadb's class and message
    assert b.list_collections() == []  # (a's reset emptied it; b's changed nothing more)
    assert b.get_version() == "1.5.9"  # the chromadb version whose API this is
    gleandb.ClientAPI.clear_system_cache()


def test_unknown_setting_is_rejected():
    with pytest.raises(ValueError, match="Unknown setting 'memtable_rows'"):
        gleandb.Settings(memtable_rows=5)


def test_delete_with_limit_takes_the_first_matches_in_insertion_order(client):
    col = client.create_collection("lim", embedding_function=None)
    col.add(ids=["c", "a", "b", "d"], embeddings=[[1.0]] * 4, metadatas=[{"k": 1}, {"k": 1}, {"k": 2}, {"k": 1}])
    assert col.delete(where={"k": 1}, limit=2) == {"deleted": 2}
    assert col.get()["ids"] == ["b", "d"]


def test_none_items_in_update_lists_keep_the_stored_values(client):
    col = client.create_collection("keep", embedding_function=None)
    col.add(ids=["a", "b"], embeddings=[[1.0], [2.0]], documents=["da", "db"], metadatas=[{"x": 1}, {"y": 2}])
    col.update(ids=["a", "b"], embeddings=[[3.0], [4.0]], documents=[None, "new"], metadatas=[None, {"y": None}])
    got = col.get(include=["documents", "metadatas"])
    assert got["documents"] == ["da", "new"]
    assert got["metadatas"] == [{"x": 1}, None]  # merging every key away leaves None
