"""Result shapes and read behaviour compared live with chromadb 1.5.9 (issue 12).

The same calls go to a chromadb ``EphemeralClient`` and a gleandb one, with explicit
embeddings; the results (or the exception class) must be the same.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

chromadb = pytest.importorskip("chromadb")

import gleandb  # noqa: E402

pytestmark = pytest.mark.compat

_n = itertools.count()


class Loader:
    def __call__(self, uris):
        return [f"D:{u}" for u in uris]


@pytest.fixture(scope="module")
def clients(tmp_path_factory):
    # a store of its own: chromadb's shared in-memory one leaks list metadata of deleted
    # collections (other test modules') onto new records
    return chromadb.PersistentClient(str(tmp_path_factory.mktemp("chroma"))), gleandb.EphemeralClient()


def _pair(clients, loader=None):
    name = f"res{next(_n)}"
    cc = clients[0].create_collection(name, embedding_function=None, data_loader=loader)
    gc = clients[1].create_collection(name, embedding_function=None, data_loader=loader)
    for c in (cc, gc):
        c.add(ids=["a", "b", "c"], embeddings=[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]],
              metadatas=[{"x": 1}, {"x": 2}, None], documents=["d1", "d2", "d3"], uris=["u1", "u2", "u3"])
    return cc, gc


def _plain(x):
    """Comparable form: numpy arrays as lists, NaN as a marker."""
    if isinstance(x, np.ndarray):
        return ("ndarray", x.tolist())
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_plain(v) for v in x]
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    return x


def _outcome(fn):
    try:
        return ("ok", _plain(fn()))
    except Exception as e:  # noqa: BLE001
        return ("raises", type(e).__name__)


@pytest.mark.parametrize("include", [["data"], ["data", "distances"], ["data", "embeddings"], ["uris"],
                                     ["metadatas", "documents", "distances"], []])
@pytest.mark.parametrize("loader", [None, Loader()])
def test_query_include_shapes_match(clients, include, loader):
    cc, gc = _pair(clients, loader)
    q = dict(query_embeddings=[[1.0, 0.0], [0.0, 1.0]], n_results=2)
    expected = _outcome(lambda: cc.query(**q, include=list(include)))
    got = _outcome(lambda: gc.query(**q, include=list(include)))
    assert got == expected
    assert list(gc.query(**q, include=list(include))) == list(cc.query(**q, include=list(include)))  # key order


@pytest.mark.parametrize("include", [["data"], ["uris"], [], ["embeddings", "metadatas"]])
def test_get_include_shapes_match(clients, include):
    cc, gc = _pair(clients, Loader())
    assert _outcome(lambda: gc.get(include=list(include))) == _outcome(lambda: cc.get(include=list(include)))


def test_results_are_plain_dicts(clients):
    cc, gc = _pair(clients)
    for c in (cc, gc):
        assert type(c.get()) is dict
        assert type(c.query(query_embeddings=[[1.0, 0.0]], n_results=1)) is dict
        assert type(c.peek()) is dict


@pytest.mark.parametrize("bad", [[float("nan"), 0.0], [float("inf"), 0.0], [float("-inf"), float("nan")]])
@pytest.mark.parametrize("space", ["l2", "cosine", "ip"])
def test_nonfinite_query_is_answered_like_chromadb(clients, bad, space):
    """chromadb answers a query vector holding NaN/inf (n_results rows, non-finite
    distances) and answers the batch's other queries as usual; which rows come back for
    the bad query is arbitrary in chromadb (HNSW over NaN), so only the shape is compared."""
    name = f"nan{next(_n)}"
    cols = [c.create_collection(name, embedding_function=None, configuration={"hnsw": {"space": space}})
            for c in clients]
    for c in cols:
        c.add(ids=[f"r{i}" for i in range(6)], embeddings=[[float(i), 1.0] for i in range(6)])
    res = [c.query(query_embeddings=[bad, [2.0, 1.0]], n_results=3, include=["distances", "metadatas"])
           for c in cols]
    expected, got = res
    assert len(got["ids"][0]) == len(expected["ids"][0]) == 3
    assert len(set(got["ids"][0])) == 3
    assert all(not math.isfinite(d) for d in got["distances"][0])
    assert all(not math.isfinite(d) for d in expected["distances"][0])
    assert got["ids"][1] == expected["ids"][1]
    assert np.allclose(got["distances"][1], expected["distances"][1], atol=1e-5)


@pytest.mark.parametrize("ids,where", [(["a", "zz", "yy"], None), ("zz", None), (["a", "a"], None),
                                       ([], None), (["a", "zz"], {"x": 1}), (["a", "deleted"], None)])
def test_query_ids_naming_unknown_ids(clients, ids, where):
    """chromadb raises InternalError when query(ids=...) names an id that is not in the
    collection (its upstream test_query_id_filtering_e2e expects an error), except under
    a where filter; gleandb raises the same class and names the missing ids."""
    cc, gc = _pair(clients)
    for c in (cc, gc):
        c.add(ids=["deleted"], embeddings=[[2.0, 2.0]])
        c.delete(ids=["deleted"])
    q = dict(query_embeddings=[[1.0, 0.0]], n_results=2, ids=ids, where=where)
    expected = _outcome(lambda: cc.query(**q))
    assert _outcome(lambda: gc.query(**q)) == expected
    if expected[0] == "raises":
        with pytest.raises(gleandb.errors.InternalError) as info:
            gc.query(**q)
        missing = [i for i in ([ids] if isinstance(ids, str) else ids) if i not in ("a", "b", "c")]
        for i in missing:
            assert repr(i) in str(info.value)
        assert "'a'" not in str(info.value)
