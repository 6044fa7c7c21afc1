"""gleandb's ``Schema`` beyond what chromadb's local engine can be compared on."""

from __future__ import annotations

import pytest

import gleandb
from gleandb import Schema, StringInvertedIndexConfig, VectorIndexConfig


class LengthEF(gleandb.EmbeddingFunction):
    def __init__(self) -> None:
        pass

    def __call__(self, input):  # noqa: A002 - chromadb's signature
        return [[1.0, float(len(x))] for x in input]

    @staticmethod
    def name() -> str:
        return "length-ef-test"

    def get_config(self) -> dict:
        return {}

    @staticmethod
    def build_from_config(config):
        return LengthEF()


def test_embedding_function_in_schema_embeds():
    c = gleandb.EphemeralClient()
    col = c.create_collection("ef-schema", schema=Schema().create_index(
        VectorIndexConfig(embedding_function=LengthEF(), space="cosine")))
    col.add(ids=["a", "b"], documents=["hello", "hi"])
    assert col.get(ids=["a"], include=["embeddings"])["embeddings"].tolist() == [[1.0, 5.0]]
    assert col.configuration_json["hnsw"]["space"] == "cosine"
    assert col.configuration_json["embedding_function"]["name"] == "length-ef-test"
    assert col.query(query_texts=["yo"], n_results=1)["ids"] == [["b"]]


def test_schema_json_round_trip_and_dict_input():
    s = Schema().delete_index(StringInvertedIndexConfig(), key="k")
    again = Schema.deserialize_from_json(s.serialize_to_json())
    assert again == s and again != Schema()
    c = gleandb.EphemeralClient()
    col = c.create_collection("from-dict", schema=s.serialize_to_json())
    col.add(ids=["a"], embeddings=[[1.0, 0.0]], metadatas=[{"k": "v", "n": 1}])
    with pytest.raises(gleandb.errors.InvalidArgumentError, match="key 'k' with type 'Str'"):
        col.count(where={"k": "v"})
    assert col.count(where={"n": 1}) == 1
    with pytest.raises(gleandb.errors.InvalidArgumentError, match="schema must be a Schema"):
        c.create_collection("bad-schema", schema=["not", "a", "schema"])


def test_get_or_create_keeps_the_first_schema():
    c = gleandb.EphemeralClient()
    first = c.create_collection("goc", schema=Schema().delete_index(StringInvertedIndexConfig(), key="k"))
    again = c.get_or_create_collection("goc", schema=Schema())
    assert again.schema == first.schema


def test_modify_configuration_shows_in_schema():
    c = gleandb.EphemeralClient()
    col = c.create_collection("mod-schema", schema=Schema().delete_index(StringInvertedIndexConfig(), key="k"))
    col.modify(configuration={"hnsw": {"ef_search": 33}})
    got = c.get_collection("mod-schema").schema.serialize_to_json()
    assert got["keys"]["#embedding"]["float_list"]["vector_index"]["config"]["hnsw"]["ef_search"] == 33
    assert got["keys"]["k"]["string"]["string_inverted_index"]["enabled"] is False


def test_retrieve_checks_the_switches():
    c = gleandb.EphemeralClient()
    col = c.create_collection("ret-schema", schema=Schema().delete_index(StringInvertedIndexConfig(), key="k"))
    col.add(ids=["a"], embeddings=[[1.0, 0.0]], documents=["hello"], metadatas=[{"k": "v"}])
    with pytest.raises(gleandb.errors.InvalidArgumentError, match="key 'k' with type 'Str'"):
        col.retrieve(query_embeddings=[[1.0, 0.0]], where={"k": "v"}, mode="dense")
