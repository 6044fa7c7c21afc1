"""Denial-of-service limits of ``glean run``: response size, request deadline, filter depth,
substring length and the query-embedding count (issue 12, items 2-4)."""

from __future__ import annotations

import httpx
import orjson
import pytest

from gleandb import budgets
from gleandb.errors import InvalidArgumentError
from gleandb.server.responses import SMALL_BYTES, fragments, json_response

from conftest import Server  # noqa: E402

chromadb = pytest.importorskip("chromadb", reason="the chromadb client is installed by gleandb's test extra")

COLS = "/api/v2/tenants/default_tenant/databases/default_database/collections"
RESPONSE_LIMIT = 200_000
CONFIG = f"""
max_response_bytes: {RESPONSE_LIMIT}
max_contains_length: 32
"""


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    d = tmp_path_factory.mktemp("dos")
    cfg = d / "glean.yaml"
    cfg.write_text(CONFIG)
    s = Server(d / "data", "--config", str(cfg)).start()
    yield s
    assert s.stop() == 0


def _client(server):
    return chromadb.HttpClient(host="127.0.0.1", port=server.port,
                               settings=chromadb.Settings(anonymized_telemetry=False))


def _collection(server, name, big_id_bytes=50_000):
    """Two rows, one with a 50 kB id: a few queries make a response over the limit."""
    col = _client(server).get_or_create_collection(name, embedding_function=None)
    col.upsert(ids=["x" * big_id_bytes, "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]],
               documents=["first document", "second document"], metadatas=[{"k": 1}, {"k": 2}])
    return col


# ------------------------------------------------------------------ response size


def test_fragments_serialise_exactly_as_one_dump():
    rows = {"ids": [["a", "é\"\\\n", "x" * 10]], "embeddings": [[[0.1, -2.5e-30, 3.0], [1.0, 2.0, 3.0]]],
            "documents": [[None, "doc", ""]], "metadatas": [[{"k": [1, 2], "s": "ü"}, None, {}]],
            "distances": [[0.0, 1.5, float(2**60)]], "uris": None, "include": ["documents"]}
    for depth in (0, 1, 2, 3):
        assert b"".join(fragments(rows, depth)) == orjson.dumps(rows)
    assert b"".join(fragments({"ids": [], "x": {}}, 2)) == orjson.dumps({"ids": [], "x": {}})


def _body(resp) -> bytes:
    if hasattr(resp, "body_iterator"):
        import asyncio

        async def collect():
            return b"".join([c async for c in resp.body_iterator])

        return asyncio.run(collect())
    return resp.body


def test_small_answers_are_serialised_once_large_ones_streamed_both_exact():
    """Rows charged under SMALL_BYTES: one dump, sent whole; more: sized, then streamed.
    Both bodies are exactly orjson.dumps of the answer, and both paths enforce the limit."""
    rows = {"ids": [["a", "b"]], "documents": [["x" * 100, "y"]], "distances": [[0.5, 1.0]]}
    with budgets.result_budget(10 * SMALL_BYTES):
        budgets.charge(100)
        small = json_response(rows, 10 * SMALL_BYTES, depth=2)
        budgets.charge(SMALL_BYTES)
        big = json_response(rows, 10 * SMALL_BYTES, depth=2)
    assert not hasattr(small, "body_iterator") and hasattr(big, "body_iterator")
    assert _body(small) == _body(big) == orjson.dumps(rows)
    assert int(big.headers["content-length"]) == len(orjson.dumps(rows))
    for charged in (100, SMALL_BYTES):
        with budgets.result_budget(10 * SMALL_BYTES):
            budgets.charge(charged)
            with pytest.raises(InvalidArgumentError, match="Response too large"):
                json_response(rows, 50, depth=2)


def test_response_limit_refuses_large_answers_and_keeps_small_ones_unchanged(limited):
    col = _collection(limited, "resp-limit")
    cid = str(col.id)
    # under the limit: the official client parses the streamed body, and it is exactly the JSON
    res = col.query(query_embeddings=[[1.0, 0.0]] * 3, n_results=2, include=["documents", "distances", "embeddings"])
    assert res["ids"] == [["x" * 50_000, "b"]] * 3 and res["documents"][0] == ["first document", "second document"]
    r = httpx.post(f"{limited.url}{COLS}/{cid}/query", json={"query_embeddings": [[1.0, 0.0]] * 3, "n_results": 2},
                   timeout=60)
    assert r.status_code == 200 and int(r.headers["content-length"]) == len(r.content) < RESPONSE_LIMIT
    assert r.content == orjson.dumps(orjson.loads(r.content))  # compact JSON, as before
    # over the limit while rows are fetched (5 x 50 kB ids), with and without a filter
    for extra in ({}, {"where": {"k": {"$gte": 1}}}, {"where_document": {"$contains": "document"}}):
        with pytest.raises(chromadb.errors.InvalidArgumentError,
                           match=rf"Response too large.*{RESPONSE_LIMIT} bytes.*max_response_bytes"):
            col.query(query_embeddings=[[1.0, 0.0]] * 5, n_results=2, **extra)
    # predictable from the request alone: refused before any work, the limit named
    r = httpx.post(f"{limited.url}{COLS}/{cid}/query",
                   json={"query_embeddings": [[1.0, 0.0]] * 40_000, "n_results": 2}, timeout=60)
    assert r.status_code == 400 and r.json()["error"] == "InvalidArgumentError"
    assert "at least" in r.json()["message"] and str(RESPONSE_LIMIT) in r.json()["message"]
    # get: same limit
    assert col.get(ids=["b"])["ids"] == ["b"]
    for i in range(4):
        col.add(ids=[f"{i}" * 60_000], embeddings=[[0.5, 0.5]])
    with pytest.raises(chromadb.errors.InvalidArgumentError, match=r"max_response_bytes"):
        col.get()
    assert col.count() == 6  # the server still answers


# ---------------------------------------------------------------- substring length


def test_contains_length_limit(limited):
    col = _collection(limited, "contains-limit", big_id_bytes=3)
    assert col.get(where_document={"$contains": "d" * 32})["ids"] == []
    long = "d" * 33
    for call in (lambda: col.get(where_document={"$contains": long}),
                 lambda: col.get(where_document={"$or": [{"$contains": "a"}, {"$not_contains": long}]}),
                 lambda: col.query(query_embeddings=[[1.0, 0.0]], where_document={"$contains": long}),
                 lambda: col.delete(where_document={"$not_contains": long})):
        with pytest.raises(chromadb.errors.InvalidArgumentError, match=r"33 characters.*32.*max_contains_length"):
            call()
    r = httpx.post(f"{limited.url}{COLS}/{col.id}/get", json={"where": {"#document": {"$contains": long}}})
    assert r.status_code == 400 and "max_contains_length" in r.json()["message"]
    assert col.count() == 2


# ---------------------------------------------------------------------- depth


def _nested(levels):
    w = {"k": 1}
    for _ in range(levels):
        w = {"$and": [w, {"k": 1}]}
    return w


def test_deep_filters_are_a_400_on_every_route(limited):
    col = _collection(limited, "depth-limit", big_id_bytes=3)
    base = f"{limited.url}{COLS}/{col.id}"
    w = _nested(400)
    q = [[1.0, 0.0]]
    for route, body in (("get", {"where": w}), ("get", {"where_document": {"$or": [{"$contains": "a"}, _nested(400)]}}),
                        ("query", {"query_embeddings": q, "where": w}), ("delete", {"where": w}),
                        ("count", {"where": w}), ("search", {"searches": [{"filter": w}]}),
                        ("retrieve", {"query_embeddings": q, "where": w, "mode": "dense"})):
        r = httpx.post(f"{base}/{route}", json=body, timeout=60)
        assert r.status_code == 400, (route, r.text)
        assert r.json()["error"] == "InvalidArgumentError" and "limit of 64" in r.json()["message"], (route, r.text)
    for raw in ("[" * 100_000, '{"where":' + '{"$and":[' * 50_000):
        r = httpx.post(f"{base}/get", content=raw, headers={"content-type": "application/json"}, timeout=60)
        assert r.status_code == 400, r.text
    with pytest.raises(chromadb.errors.InvalidArgumentError, match="nested 101 levels deep"):
        col.get(where=_nested(100))  # the official client's JSON encoder stops near 250 levels
    assert col.count() == 2 and col.get(where=_nested(10))["ids"] == ["x" * 3]


# ------------------------------------------------------------------- deadline


COSTLY = [
    {"where": {"k": {"$gte": 1}}},
    {"where_document": {"$contains": "document"}},
    {"where_document": {"$not_contains": "document"}},
    {"where_document": {"$regex": "(?i)d.c"}},
    {"where_document": {"$not_regex": "s[a-z]+d"}},
    {"where": {"$or": [{"k": 1}, {"$and": [{"k": {"$ne": 2}}, {"#document": {"$contains": "fir"}}]}]},
     "where_document": {"$or": [{"$regex": "t+"}, {"$and": [{"$contains": "e"}, {"$not_contains": "z"}]}]}},
]


def test_request_deadline_stops_every_filter_and_the_server_goes_on(tmp_path):
    """A deadline too short for any read: every filtered read is stopped with 504 and a
    Chroma-shaped message naming the setting; the next requests are answered."""
    s = Server(tmp_path / "data", "--request-timeout", "0.000001").start()
    try:
        col = _collection(s, "deadline", big_id_bytes=3)  # writes do not check the deadline
        base = f"{s.url}{COLS}/{col.id}"
        for filt in COSTLY:
            for route, body in (("get", filt), ("count", filt), ("delete", filt),
                                ("query", {"query_embeddings": [[1.0, 0.0]], **filt})):
                r = httpx.post(f"{base}/{route}", json=body, timeout=60)
                assert r.status_code == 504, (route, filt, r.text)
                assert r.json()["error"] == "DeadlineExceededError", r.text
                assert "request_timeout_s" in r.json()["message"], r.text
        assert httpx.get(f"{s.url}/api/v2/heartbeat").status_code == 200
        assert httpx.get(f"{base}/count").json() == 2  # nothing was deleted
    finally:
        assert s.stop() == 0


# ------------------------------------------------------------ query embeddings


def test_many_query_embeddings_are_accepted_by_default(server):
    col = _collection(server, "many-queries", big_id_bytes=3)
    res = col.query(query_embeddings=[[1.0, 0.0]] * 1_585, n_results=1, include=[])
    assert len(res["ids"]) == 1_585 and res["ids"][0] == ["x" * 3]


def test_limit_settings_parse_from_every_source(tmp_path):
    from gleandb.server.config import ServerSettings, load_settings

    d = ServerSettings()
    assert (d.max_response_bytes, d.request_timeout_s, d.max_contains_length) == (256 * 1024 * 1024, 30.0, 65_536)
    s = load_settings({"request_timeout_s": 2.5}, None,
                      environ={"GLEAN_MAX_RESPONSE_BYTES": "1000", "GLEAN_MAX_CONTAINS_LENGTH": "7"})
    assert (s.request_timeout_s, s.max_response_bytes, s.max_contains_length) == (2.5, 1000, 7)
    assert load_settings({}, None, environ={"GLEAN_REQUEST_TIMEOUT_S": "0"}).request_timeout_s == 0.0
    for bad in ("-1", "soon", "inf"):
        with pytest.raises(ValueError, match="request_timeout_s"):
            load_settings({}, None, environ={"GLEAN_REQUEST_TIMEOUT_S": bad})
