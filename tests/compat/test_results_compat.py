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
def clients():
    return chromadb.EphemeralClient(), gleandb.EphemeralClient()


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
