"""evaluate() over ``glean run`` (gleandb.HttpClient) scores exactly as embedded."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import gleandb
from gleandb import evals
from gleandb.embeddings.hashing import HashingEmbeddingFunction

from .conftest import fill

_spec = importlib.util.spec_from_file_location("server_conftest", Path(__file__).parents[1] / "server" / "conftest.py")
_server = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_server)


@pytest.fixture
def server(tmp_path):
    s = _server.Server(tmp_path / "data").start()
    yield s
    assert s.stop() == 0


def test_same_scores_over_http(server, col, golden):
    http = gleandb.HttpClient(host="127.0.0.1", port=server.port)
    remote = http.create_collection("pydocs", embedding_function=HashingEmbeddingFunction(),
                                    metadata={"hnsw:space": "cosine"})
    fill(remote)
    configs = ["default", "dense", "bm25", "hybrid-weighted",
               evals.Config("hash64", mode="dense", embedding_function=HashingEmbeddingFunction(64))]
    a = evals.evaluate(col, golden, configs=configs, progress=False)
    b = evals.evaluate(remote, golden, configs=configs, progress=False)
    for name in a.names:
        for m in evals.metrics.METRICS:
            assert b.result(name).per_query[m] == pytest.approx(a.result(name).per_query[m]), (name, m)
    assert [c.name for c in http.list_collections()] == ["pydocs"]  # the re-embedded copy was removed
