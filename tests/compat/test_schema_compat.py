"""``create_collection(schema=...)`` compared live with chromadb 1.5.9 (issue 12): index
switches enforced on filters, vector index configuration, local refusals, the builder's
errors, and what ``collection.schema`` reports."""

from __future__ import annotations

import itertools

import pytest

chromadb = pytest.importorskip("chromadb")

import gleandb  # noqa: E402
from chromadb.api import types as ct  # noqa: E402

from gleandb.api import schema as gs  # noqa: E402

pytestmark = pytest.mark.compat

_n = itertools.count()
CONFIGS = ["StringInvertedIndexConfig", "IntInvertedIndexConfig", "FloatInvertedIndexConfig",
           "BoolInvertedIndexConfig", "FtsIndexConfig", "VectorIndexConfig", "SparseVectorIndexConfig"]


@pytest.fixture(scope="module")
def clients(tmp_path_factory):
    return chromadb.PersistentClient(str(tmp_path_factory.mktemp("chroma"))), gleandb.EphemeralClient()


def _outcome(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return type(e).__name__, str(e)
    return None


def _schemas(build):
    """The same schema built with chromadb's classes and with gleandb's."""
    return build(chromadb.Schema(), ct), build(gleandb.Schema(), gs)


def _pair(clients, build, **kw):
    name = f"sch{next(_n)}"
    out = []
    for c, schema in zip(clients, _schemas(build)):
        col = c.create_collection(name, schema=schema, embedding_function=None, **kw)
        col.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]], documents=["hello world", "bye"],
                metadatas=[{"foo": "x", "n": 1, "f": 0.5, "b": True, "bar": "y"}, {"foo": "z", "n": 2}])
        out.append(col)
    return out


def _off(schema, m):
    return (schema.delete_index(m.StringInvertedIndexConfig(), key="foo")
            .delete_index(m.IntInvertedIndexConfig(), key="n")
            .delete_index(m.FtsIndexConfig(), key="#document"))


WHERES = [
    dict(where={"foo": "x"}), dict(where={"n": 1}), dict(where={"n": {"$gt": 0}}),
    dict(where={"foo": {"$in": ["x", "z"]}}), dict(where={"foo": {"$ne": "x"}}),
    dict(where={"$and": [{"bar": "y"}, {"foo": "x"}]}), dict(where={"$or": [{"bar": "y"}, {"n": 2}]}),
    dict(where={"bar": "y"}), dict(where={"foo": 1}), dict(where={"n": "s"}), dict(where={"f": 0.5}),
    dict(where_document={"$contains": "hello"}), dict(where_document={"$regex": "h.*o"}),
]


@pytest.mark.parametrize("case", WHERES)
def test_filters_on_disabled_indexes(clients, case):
    cc, gc = _pair(clients, _off)
    for method in ("get", "query", "delete"):
        kw = dict(case)
        if method == "query":
            kw["query_embeddings"] = [[1.0, 0.0]]
        expected = _outcome(lambda: getattr(cc, method)(**kw))
        assert _outcome(lambda: getattr(gc, method)(**kw)) == expected
    assert gc.count() == cc.count()


def test_global_switch_and_key_override(clients):
    def build(schema, m):
        return (schema.delete_index(m.StringInvertedIndexConfig())
                .create_index(m.StringInvertedIndexConfig(), key="bar"))
    cc, gc = _pair(clients, build)
    for kw in (dict(where={"foo": "x"}), dict(where={"bar": "y"}), dict(where={"n": 1})):
        expected = _outcome(lambda: cc.get(**kw))
        assert _outcome(lambda: gc.get(**kw)) == expected


def _flags(schema_json):
    return {(scope, vt, ix): entry["enabled"]
            for scope, types in [(None, schema_json["defaults"]), *schema_json["keys"].items()]
            for vt, indexes in types.items() for ix, entry in indexes.items()}


def _vector(schema_json):
    conf = schema_json["keys"]["#embedding"]["float_list"]["vector_index"]["config"]
    return conf["space"], conf["hnsw"], conf.get("source_key")


@pytest.mark.parametrize("build", [
    lambda s, m: s,
    _off,
    lambda s, m: s.create_index(m.VectorIndexConfig(space="cosine", hnsw=m.HnswIndexConfig(ef_search=55, max_neighbors=20))),
    lambda s, m: s.create_index(m.VectorIndexConfig(space="ip", spann=m.SpannIndexConfig(search_nprobe=10))),
    lambda s, m: s.create_index(m.StringInvertedIndexConfig(), key="k").delete_index(m.BoolInvertedIndexConfig()),
])
def test_reported_schema_and_configuration(clients, build):
    cc, gc = _pair(clients, build)
    # refetched: chromadb's collection object keeps the schema it was created with
    got = clients[1].get_collection(gc.name).schema.serialize_to_json()
    expected = clients[0].get_collection(cc.name).schema.serialize_to_json()
    assert _flags(got) == _flags(expected)
    assert _vector(got) == _vector(expected)
    for k in ("space", "ef_search", "max_neighbors", "ef_construction"):
        assert gc.configuration_json["hnsw"][k] == cc.configuration_json["hnsw"][k]
    assert "schema" not in gc.configuration_json
    q = dict(query_embeddings=[[2.0, 0.5]], n_results=2, include=["distances"])
    assert [round(d, 4) for d in gc.query(**q)["distances"][0]] == [round(d, 4) for d in cc.query(**q)["distances"][0]]


@pytest.mark.parametrize("build,kw", [
    (lambda s, m: s.create_index(m.SparseVectorIndexConfig(), key="sp"), {}),
    (lambda s, m: s.create_index(m.VectorIndexConfig(space="cosine")), {"configuration": {"hnsw": {"space": "ip"}}}),
    (_off, {"configuration": {"hnsw": {"ef_search": 20}}}),
    (lambda s, m: s.create_index(m.VectorIndexConfig(space="cosine")), {"metadata": {"hnsw:space": "ip"}}),
    (lambda s, m: s, {"configuration": {"hnsw": {"space": "cosine"}}}),
])
def test_refusals_on_create(clients, build, kw):
    name = f"sch{next(_n)}"
    outcomes = [_outcome(lambda: c.create_collection(name, schema=schema, embedding_function=None, **kw))
                for c, schema in zip(clients, _schemas(build))]
    assert outcomes[1] == outcomes[0]
    if outcomes[0] is not None:  # nothing was created
        with pytest.raises(gleandb.errors.NotFoundError):
            clients[1].get_collection(name)


BUILDER_CALLS = [
    lambda s, m: s.create_index(),
    lambda s, m: s.create_index(key="k"),
    lambda s, m: s.create_index(m.StringInvertedIndexConfig(), key="#embedding"),
    lambda s, m: s.create_index(m.StringInvertedIndexConfig(), key="#document"),
    lambda s, m: s.create_index(m.StringInvertedIndexConfig(), key="#other"),
    lambda s, m: s.create_index(m.VectorIndexConfig(), key="k"),
    lambda s, m: s.create_index(m.FtsIndexConfig(), key="k"),
    lambda s, m: s.create_index(m.SparseVectorIndexConfig()),
    lambda s, m: s.create_index(m.SparseVectorIndexConfig(), key="a").create_index(m.SparseVectorIndexConfig(), key="b"),
    lambda s, m: s.delete_index(),
    lambda s, m: s.delete_index(key="k"),
    lambda s, m: s.delete_index(m.StringInvertedIndexConfig(), key="#embedding"),
    lambda s, m: s.delete_index(m.IntInvertedIndexConfig(), key="#document"),
    lambda s, m: s.delete_index(m.VectorIndexConfig()),
    lambda s, m: s.delete_index(m.SparseVectorIndexConfig(), key="k"),
    lambda s, m: s.delete_index(m.FtsIndexConfig()),
]


@pytest.mark.parametrize("call", range(len(BUILDER_CALLS)))
def test_builder_errors(call):
    fn = BUILDER_CALLS[call]
    assert _outcome(lambda: fn(gleandb.Schema(), gs)) == _outcome(lambda: fn(chromadb.Schema(), ct))


def test_schema_persists_and_forks(tmp_path):
    path = str(tmp_path / "s")
    c = gleandb.PersistentClient(path)
    col = c.create_collection("kept", schema=_off(gleandb.Schema(), gs))
    col.add(ids=["a"], embeddings=[[1.0, 0.0]], metadatas=[{"foo": "x"}])
    fork = col.fork("kept-fork")
    del c, col
    again = gleandb.PersistentClient(path)
    for name in ("kept", "kept-fork"):
        got = again.get_collection(name)
        assert got.schema.serialize_to_json()["keys"]["foo"]["string"]["string_inverted_index"]["enabled"] is False
        with pytest.raises(gleandb.errors.InvalidArgumentError, match="key 'foo' with type 'Str'"):
            got.get(where={"foo": "x"})
    assert fork.name == "kept-fork"


def test_typed_attributes_and_discovered_keys(clients):
    """chromadb's own e2e tests read the schema through typed attributes, and chromadb
    lists every metadata key written (with the defaults' index switches for its type)."""
    def build(schema, m):
        return schema.delete_index(m.StringInvertedIndexConfig()).delete_index(m.StringInvertedIndexConfig(), key="s2")

    name = f"sch{next(_n)}"
    got = []
    for c, schema in zip(clients, _schemas(build)):
        col = c.create_collection(name, schema=schema, embedding_function=None)
        col.add(ids=["a"], embeddings=[[1.0, 0.0]],
                metadatas=[{"s": "x", "i": 1, "f": 1.5, "b": True, "l": [1, 2], "ls": ["a"], "s2": "y", "big": 2**70}])
        sch = c.get_collection(name).schema
        got.append((
            _flags(sch.serialize_to_json()),
            sch.defaults.string.string_inverted_index.enabled,
            sch.defaults.int_value.int_inverted_index.enabled,
            sch.defaults.boolean.bool_inverted_index.enabled,
            sch.keys["#document"].string.fts_index.enabled,
            sch.keys["#embedding"].float_list.vector_index.enabled,
            sch.keys["#embedding"].float_list.vector_index.config.space,
            sch.keys["s2"].string.string_inverted_index.enabled,
            sch.keys["s2"].int_value,
            sch.keys["i"].int_value.int_inverted_index.enabled,
            sorted(sch.keys),
        ))
    assert got[1] == got[0]
