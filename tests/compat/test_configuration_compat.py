"""Legacy ``hnsw:*`` collection metadata beside ``configuration=``, compared live with
chromadb 1.5.9 (issue 12): chromadb reads the metadata keys only when the configuration
leaves the index at its defaults (no spann block, every hnsw value a default)."""

from __future__ import annotations

import itertools

import pytest

chromadb = pytest.importorskip("chromadb")

import gleandb  # noqa: E402

pytestmark = pytest.mark.compat

_n = itertools.count()

CASES = [
    ({"hnsw:space": "cosine"}, None),
    ({"hnsw:space": "cosine"}, {"hnsw": {"ef_search": 50}}),
    ({"hnsw:space": "cosine"}, {"hnsw": {"ef_search": 100}}),
    ({"hnsw:space": "cosine"}, {"hnsw": {"space": "l2"}}),
    ({"hnsw:space": "cosine"}, {"hnsw": {}}),
    ({"hnsw:space": "cosine", "hnsw:M": 32}, {"hnsw": {"max_neighbors": 16}}),
    ({"hnsw:M": 32}, {"hnsw": {"space": "ip"}}),
    ({"hnsw:space": "ip", "hnsw:search_ef": 77}, {"hnsw": {"ef_construction": 100}}),
    ({"hnsw:space": "ip", "hnsw:search_ef": 77}, {"hnsw": {"ef_construction": 101}}),
    ({"hnsw:space": "ip"}, {"hnsw": {"batch_size": 101}}),
    ({"hnsw:space": "ip"}, {"hnsw": {"resize_factor": 1.3}}),
    ({"hnsw:space": "ip"}, {"spann": {"search_nprobe": 10}}),
    ({"hnsw:space": "ip"}, {"spann": {}}),
    ({"hnsw:space": "ip", "hnsw:M": 20}, {"spann": {"space": "cosine"}}),
]


@pytest.fixture(scope="module")
def clients(tmp_path_factory):
    return chromadb.PersistentClient(str(tmp_path_factory.mktemp("chroma"))), gleandb.EphemeralClient()


@pytest.mark.parametrize("metadata,configuration", CASES)
def test_hnsw_metadata_beside_configuration(clients, metadata, configuration):
    name = f"cfg{next(_n)}"
    out = []
    for c in clients:
        col = c.create_collection(name, metadata=metadata, configuration=configuration, embedding_function=None)
        col.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.5, 0.5]])
        dist = col.query(query_embeddings=[[2.0, 0.0]], n_results=2, include=["distances"])["distances"][0]
        hnsw = c.get_collection(name).configuration_json["hnsw"]
        out.append(({k: hnsw[k] for k in ("space", "ef_construction", "ef_search", "max_neighbors")},
                    [round(d, 5) for d in dist], col.metadata))
    assert out[1] == out[0]
