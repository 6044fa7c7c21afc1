"""chromadb's embedding-function protocol: user-written functions work unchanged."""

from __future__ import annotations

import numpy as np
import pytest

import gleandb
from gleandb.embeddings.functions import (
    EmbeddingFunction,
    build_ef,
    describe_ef,
    known_embedding_functions,
    register_embedding_function,
)


def _vec(text: str) -> list[float]:
    # deterministic 3-d "embedding": (length, vowels, 1)
    return [float(len(text)), float(sum(c in "aeiou" for c in text)), 1.0]


@register_embedding_function
class CountingEF:
    """Written the way chromadb's docs show a custom function (no gleandb imports needed)."""

    calls: list[tuple[str, list[str]]] = []

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def __call__(self, input):
        CountingEF.calls.append(("call", list(input)))
        return [np.array(_vec(t), dtype=np.float32) * self.scale for t in input]

    def embed_query(self, input):
        CountingEF.calls.append(("query", list(input)))
        return [np.array(_vec(t), dtype=np.float32) * self.scale for t in input]

    @staticmethod
    def name() -> str:
        return "test_counting"

    def get_config(self) -> dict:
        return {"scale": self.scale}

    @staticmethod
    def build_from_config(config: dict) -> "CountingEF":
        return CountingEF(scale=config.get("scale", 1.0))

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine", "l2"]


class LegacyEF:
    """Only ``__call__``: persisted as legacy, still used for embedding."""

    def __call__(self, input):
        return [_vec(t) for t in input]  # plain lists are fine too


def test_registered_function_is_used_persisted_and_rebuilt(tmp_path):
    CountingEF.calls.clear()
    client = gleandb.PersistentClient(path=str(tmp_path / "db"))
    col = client.create_collection("ccc", embedding_function=CountingEF(scale=2.0))
    cfg = col.configuration_json
    assert cfg["embedding_function"] == {"type": "known", "name": "test_counting", "config": {"scale": 2.0}}
    assert cfg["hnsw"]["space"] == "cosine"  # default_space() chooses the collection's space
    col.add(ids=["a", "b"], documents=["aaaa", "bbbbbbbbbb"])
    assert CountingEF.calls[-1] == ("call", ["aaaa", "bbbbbbbbbb"])
    col.query(query_texts=["aaaa"], n_results=1)
    assert CountingEF.calls[-1] == ("query", ["aaaa"])  # embed_query is used for queries
    client.close()
    gleandb.ClientAPI.clear_system_cache()
    client2 = gleandb.PersistentClient(path=str(tmp_path / "db"))
    col2 = client2.get_collection("ccc")  # no function passed: rebuilt from the configuration
    assert isinstance(col2._embedding_function, CountingEF) and col2._embedding_function.scale == 2.0
    assert col2.query(query_texts=["aaaa"], n_results=1)["ids"] == [["a"]]
    client2.close()


def test_legacy_function_without_name(tmp_path):
    client = gleandb.EphemeralClient()
    col = client.create_collection("legacy_ef", embedding_function=LegacyEF())
    assert col.configuration_json["embedding_function"] == {"type": "legacy"}
    col.add(ids=["x", "y"], documents=["aeiou", "zzzzzzz"])
    assert col.query(query_texts=["aeiou"], n_results=1)["ids"] == [["x"]]
    client.delete_collection("legacy_ef")


def test_protocol_helpers():
    assert isinstance(CountingEF(), EmbeddingFunction)
    assert known_embedding_functions["test_counting"] is CountingEF
    assert known_embedding_functions["default"] is gleandb.DefaultEmbeddingFunction
    assert describe_ef(CountingEF(3.0)) == {"type": "known", "name": "test_counting", "config": {"scale": 3.0}}
    assert describe_ef(None) is None
    assert describe_ef(LegacyEF()) == {"type": "legacy"}
    assert build_ef({"type": "legacy"}) is None
    assert build_ef({"type": "known", "name": "no_such_function", "config": {}}) is None
    assert build_ef({"type": "known", "name": "test_counting", "config": {"scale": 5}}).scale == 5


def test_wrong_number_of_vectors_is_rejected():
    class Broken:
        def __call__(self, input):
            return [[1.0, 2.0]] * (len(input) + 1)  # one vector too many

    client = gleandb.EphemeralClient()
    col = client.create_collection("broken_ef", embedding_function=Broken())
    try:
        with pytest.raises(Exception, match="Inconsistent number of IDs"):
            col.add(ids=["a"], documents=["text"])
        assert col.count() == 0
    finally:
        client.delete_collection("broken_ef")
