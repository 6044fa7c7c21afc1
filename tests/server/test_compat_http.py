"""Issue 12 compatibility items over HTTP: ``glean run`` driven by chromadb's official
HTTP client and by gleandb.HttpClient. Expected messages were recorded from Chroma
1.5.9's own server (``chroma run``) with the same requests."""

from __future__ import annotations

import math

import httpx
import pytest

import gleandb
from gleandb.errors import InternalError

DB = "/api/v2/tenants/default_tenant/databases/default_database"


@pytest.fixture
def glean_http(server, http_client):  # http_client resets the server first
    return gleandb.HttpClient(host="127.0.0.1", port=server.port)


@pytest.mark.parametrize("query,message", [
    ("limit=-1", "limit: invalid digit found in string"),
    ("offset=-1", "offset: invalid digit found in string"),
    ("limit=1.5", "limit: invalid digit found in string"),
    ("limit=4294967296", "limit: number too large to fit in target type"),
    ("limit=", "limit: cannot parse integer from empty string"),
])
@pytest.mark.parametrize("path", [DB + "/collections", "/api/v2/tenants/default_tenant/databases"])
def test_list_paging_refuses_what_chroma_refuses(server, path, query, message):
    r = httpx.get(f"{server.url}{path}?{query}")
    assert r.status_code == 400
    assert r.json() == {"error": "InvalidArgumentError", "message": f"Failed to deserialize query string: {message}"}


def test_list_collections_negative_limit_is_not_a_slice(http_client, glean_http):
    for name in ("c-one", "c-two", "c-three"):
        http_client.create_collection(name, embedding_function=None)
    with pytest.raises(Exception) as info:
        http_client.list_collections(limit=-1)
    assert type(info.value).__name__ == "InvalidArgumentError"
    assert "limit: invalid digit found in string" in str(info.value)
    with pytest.raises(OverflowError, match="out of range integral type conversion attempted"):
        glean_http.list_collections(offset=-1)  # the same error as the embedded client
    assert len(http_client.list_collections(limit=2)) == 2
    assert [c.name for c in glean_http.list_collections(offset=2)] == [http_client.list_collections()[2].name]


def test_query_unknown_ids_and_data_include(http_client, glean_http):
    col = http_client.create_collection("ids-test", embedding_function=None)
    col.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]], metadatas=[{"x": 1}, {"x": 2}], uris=["u1", None])
    gcol = glean_http.get_collection("ids-test", embedding_function=None)
    for c in (col, gcol):
        with pytest.raises(Exception) as info:
            c.query(query_embeddings=[[1.0, 0.0]], n_results=2, ids=["a", "zz"])
        assert type(info.value).__name__ == "InternalError" and "'zz'" in str(info.value)
        # over HTTP, "data" does not bring the metadatas (chromadb's HTTP client filters it out)
        res = c.query(query_embeddings=[[1.0, 0.0]], n_results=2, include=["data"])
        assert type(res) is dict
        assert res["metadatas"] is None and res["data"] is None
        assert res["uris"] == [["u1", None]] and res["included"] == ["data", "uris"]
    with pytest.raises(InternalError):
        gcol.query(query_embeddings=[[1.0, 0.0]], ids="zz")


def test_nan_query_and_nan_metadata_through_gleandb_client(glean_http):
    col = glean_http.create_collection("nan-test", embedding_function=None)
    col.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]],
            metadatas=[{"n": float("nan"), "z": -0.0, "k": 1}, {"i": float("inf")}])
    got = col.get(include=["metadatas"])["metadatas"]
    assert got == [{"z": 0.0, "k": 1}, None]
    assert math.copysign(1.0, got[0]["z"]) == 1.0
    res = col.query(query_embeddings=[[float("nan"), 0.0], [1.0, 0.0]], n_results=2, include=["distances"])
    assert len(res["ids"][0]) == 2 and all(math.isnan(d) for d in res["distances"][0])
    assert res["ids"][1] == ["a", "b"] and res["distances"][1][0] == 0.0
    col.modify(metadata={"v": None, "w": float("nan"), "z": 1})
    assert glean_http.get_collection("nan-test").metadata == {"z": 1}


def test_schema_over_http(http_client, glean_http, server):
    """A Schema sent on create (chromadb's HTTP client and gleandb's) is kept by the server,
    reported in the collection model and enforced on filters."""
    from chromadb.api.types import FtsIndexConfig as CFts, StringInvertedIndexConfig as CStr

    import chromadb

    schema = chromadb.Schema().delete_index(CStr(), key="foo").delete_index(CFts(), key="#document")
    col = http_client.create_collection("schema-c", schema=schema, embedding_function=None)
    gschema = gleandb.Schema().delete_index(gleandb.StringInvertedIndexConfig(), key="foo")
    gcol = glean_http.create_collection("schema-g", schema=gschema, embedding_function=None)
    for c in (col, gcol):
        c.add(ids=["a"], embeddings=[[1.0, 0.0]], metadatas=[{"foo": "x", "bar": "y"}], documents=["hello"])
        with pytest.raises(Exception) as info:
            c.get(where={"foo": "x"})
        assert type(info.value).__name__ == "InvalidArgumentError"
        assert "Cannot filter using metadata key 'foo' with type 'Str' because indexing is disabled" in str(info.value)
        assert c.get(where={"bar": "y"})["ids"] == ["a"]
    with pytest.raises(Exception, match="FTS indexing is disabled"):
        col.get(where_document={"$contains": "hel"})
    assert gcol.get(where_document={"$contains": "hel"})["ids"] == ["a"]
    for name in ("schema-c", "schema-g"):
        model = httpx.get(f"{server.url}{DB}/collections/{name}").json()
        assert model["schema"]["keys"]["foo"]["string"]["string_inverted_index"]["enabled"] is False
        assert "schema" not in model["configuration_json"]
    again = http_client.get_collection("schema-c")
    assert again.schema.serialize_to_json()["keys"]["#document"]["string"]["fts_index"]["enabled"] is False
    fetched = glean_http.get_collection("schema-g").schema
    assert fetched.keys["foo"].string.string_inverted_index.enabled is False
    assert fetched.keys["bar"].string.string_inverted_index.enabled is True  # discovered on write
    with pytest.raises(Exception, match="Sparse vector indexing is not enabled in local"):
        glean_http.create_collection("schema-sparse", embedding_function=None,
                                     schema=gleandb.Schema().create_index(gleandb.SparseVectorIndexConfig(), key="sp"))


def test_schema_vector_config_over_http(http_client, glean_http):
    from chromadb.api.types import HnswIndexConfig as CHnsw, VectorIndexConfig as CVec

    import chromadb

    g = glean_http.create_collection("schema-vg", embedding_function=None, schema=gleandb.Schema().create_index(
        gleandb.VectorIndexConfig(space="cosine", hnsw=gleandb.HnswIndexConfig(ef_search=55))))
    c = http_client.create_collection("schema-vc", embedding_function=None, schema=chromadb.Schema().create_index(
        CVec(space="cosine", hnsw=CHnsw(ef_search=55))))
    for col in (g, c):
        assert col.configuration_json["hnsw"]["space"] == "cosine"
        assert col.configuration_json["hnsw"]["ef_search"] == 55


def test_schema_embedding_function_through_gleandb_client(glean_http):
    class LenEF(gleandb.EmbeddingFunction):
        def __init__(self):
            pass

        def __call__(self, input):  # noqa: A002
            return [[1.0, float(len(x))] for x in input]

        @staticmethod
        def name():
            return "len-ef-http-test"

        def get_config(self):
            return {}

    col = glean_http.create_collection("schema-ef", schema=gleandb.Schema().create_index(
        gleandb.VectorIndexConfig(embedding_function=LenEF())))
    col.add(ids=["a"], documents=["hello"])
    assert col.get(include=["embeddings"])["embeddings"].tolist() == [[1.0, 5.0]]
