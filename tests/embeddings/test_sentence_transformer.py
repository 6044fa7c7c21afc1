"""SentenceTransformerEmbeddingFunction against a fake ``sentence_transformers`` module
(torch is not installed; nothing is downloaded)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

import gleandb
from gleandb.embeddings import functions
from gleandb.embeddings.functions import build_ef, describe_ef
from gleandb.embeddings.sentence_transformer import (
    SentenceTransformerEmbeddingFunction,
    SentenceTransformersNotInstalledError,
)

DIM = 8


class FakeSentenceTransformer:
    instances: list["FakeSentenceTransformer"] = []

    def __init__(self, model_name_or_path=None, device=None, **kwargs):
        self.model_name_or_path = model_name_or_path
        self.device = device
        self.kwargs = kwargs
        self.encode_calls: list[tuple[list[str], dict]] = []
        FakeSentenceTransformer.instances.append(self)

    def encode(self, sentences, **kw):
        self.encode_calls.append((list(sentences), kw))
        out = np.zeros((len(sentences), DIM), dtype=np.float64)
        for i, s in enumerate(sentences):
            out[i, len(s) % DIM] = 3.0
            out[i, (len(s) + 1) % DIM] = 4.0 + i  # not unit length
        if kw.get("normalize_embeddings"):
            out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out


@pytest.fixture
def fake_st(monkeypatch):
    mod = types.ModuleType("sentence_transformers")
    mod.SentenceTransformer = FakeSentenceTransformer
    FakeSentenceTransformer.instances = []
    monkeypatch.setitem(sys.modules, "sentence_transformers", mod)
    monkeypatch.setattr(SentenceTransformerEmbeddingFunction, "models", {})
    return FakeSentenceTransformer


def test_model_built_lazily_with_name_device_kwargs(fake_st):
    ef = SentenceTransformerEmbeddingFunction("my-model", device="cuda:1", trust_remote_code=True)
    assert fake_st.instances == []  # nothing loaded until the first embedding
    out = ef(["hello", "a longer document"])
    (model,) = fake_st.instances
    assert model.model_name_or_path == "my-model"
    assert model.device == "cuda:1"
    assert model.kwargs == {"trust_remote_code": True}
    docs, kw = model.encode_calls[0]
    assert docs == ["hello", "a longer document"]
    assert kw["normalize_embeddings"] is False and kw["convert_to_numpy"] is True
    assert kw["show_progress_bar"] is False
    assert len(out) == 2 and all(isinstance(v, np.ndarray) and v.dtype == np.float32 and v.shape == (DIM,) for v in out)
    # not normalised: norms are 5 and sqrt(9+25)
    np.testing.assert_allclose([np.linalg.norm(v) for v in out], [5.0, np.sqrt(34.0)], rtol=1e-6)
    # the model is cached per process
    SentenceTransformerEmbeddingFunction("my-model", device="cuda:1", trust_remote_code=True)(["x"])
    assert len(fake_st.instances) == 1


def test_normalize_and_single_string_and_empty(fake_st):
    ef = SentenceTransformerEmbeddingFunction(normalize_embeddings=True)
    out = ef(["one", "two", "three"])
    np.testing.assert_allclose(np.linalg.norm(np.vstack(out), axis=1), 1.0, rtol=1e-6)
    assert fake_st.instances[0].model_name_or_path == "all-MiniLM-L6-v2"
    assert fake_st.instances[0].device == "cpu"
    assert len(ef("just one")) == 1
    assert ef([]) == []
    assert len(ef.embed_query(["q"])) == 1
    with pytest.raises(ValueError, match="NoneType at index 1"):
        ef(["ok", None])


def test_protocol_and_config(fake_st):
    ef = SentenceTransformerEmbeddingFunction("m", device="cpu", normalize_embeddings=True, cache_folder="/x")
    assert ef.name() == "sentence_transformer"
    assert ef.default_space() == "cosine"
    assert ef.get_config() == {"model_name": "m", "device": "cpu", "normalize_embeddings": True, "kwargs": {"cache_folder": "/x"}}
    again = SentenceTransformerEmbeddingFunction.build_from_config(ef.get_config())
    assert again.get_config() == ef.get_config()
    assert describe_ef(ef) == {"type": "known", "name": "sentence_transformer", "config": ef.get_config()}
    with pytest.raises(ValueError, match="not a primitive type"):
        SentenceTransformerEmbeddingFunction(bad=object())
    with pytest.raises(ValueError):
        SentenceTransformerEmbeddingFunction.validate_config({"device": 3})


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import raises ImportError
    monkeypatch.setattr(SentenceTransformerEmbeddingFunction, "models", {})
    ef = SentenceTransformerEmbeddingFunction()  # building never fails (reopening a collection must not)
    with pytest.raises(SentenceTransformersNotInstalledError, match=r"pip install 'gleandb\[sentence-transformers\]'") as ei:
        ef(["text"])
    assert isinstance(ei.value, ImportError) and isinstance(ei.value, ValueError)


def test_registered_for_a_fresh_process(monkeypatch):
    # a fresh process has not imported the module: build_ef imports it from _PROVIDER_MODULES
    assert functions._PROVIDER_MODULES["sentence_transformer"] == "gleandb.embeddings.sentence_transformer"
    monkeypatch.delitem(functions.known_embedding_functions, "sentence_transformer")
    monkeypatch.delitem(sys.modules, "gleandb.embeddings.sentence_transformer")
    ef = build_ef({"type": "known", "name": "sentence_transformer",
                   "config": {"model_name": "m2", "device": "cpu", "normalize_embeddings": False, "kwargs": {}}})
    assert ef is not None and ef.name() == "sentence_transformer" and ef.model_name == "m2"


def test_persistent_round_trip(fake_st, tmp_path):
    path = str(tmp_path / "store")
    ef = SentenceTransformerEmbeddingFunction("round-trip", normalize_embeddings=True, cache_folder="/models")
    client = gleandb.PersistentClient(path=path)
    col = client.create_collection("st-docs", embedding_function=ef)
    col.add(ids=["a", "b"], documents=["alpha", "beta gamma"])
    assert col.configuration_json["embedding_function"] == {
        "type": "known", "name": "sentence_transformer", "config": ef.get_config()}
    client.close()

    client = gleandb.PersistentClient(path=path)
    col = client.get_collection("st-docs")  # no embedding function given: rebuilt from the configuration
    rebuilt = col._embedding_function
    assert isinstance(rebuilt, SentenceTransformerEmbeddingFunction)
    assert rebuilt.get_config() == ef.get_config()
    res = col.query(query_texts=["alpha"], n_results=1)
    assert res["ids"] == [["a"]]
    assert fake_st.instances[-1].encode_calls[-1][0] == ["alpha"]
    client.close()
