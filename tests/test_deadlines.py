"""Cooperative deadlines (gleandb.deadlines): long reads stop themselves between slices
of work and raise DeadlineExceededError; without a deadline (the embedded default)
nothing changes."""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pytest

import gleandb
from gleandb import deadlines
from gleandb.errors import DeadlineExceededError
from gleandb.index import filters


def test_no_deadline_by_default_and_nesting_keeps_the_earliest():
    assert deadlines.current() is None
    deadlines.check()  # nothing to enforce
    with gleandb.deadline(None) as d:
        assert d is None
    with gleandb.deadline(100.0) as outer:
        with gleandb.deadline(1000.0) as inner:
            assert inner is outer  # a later deadline never extends an earlier one
        with gleandb.deadline(0.5) as tighter:
            assert tighter is not outer and tighter.at < outer.at
        assert deadlines.current() is outer
    assert deadlines.current() is None


def test_expired_deadline_raises_with_the_limit_named():
    with gleandb.deadline(1e-9, "request_timeout_s"):
        time.sleep(0.001)
        with pytest.raises(DeadlineExceededError, match=r"deadline of 1e-09 s \(request_timeout_s\)") as info:
            deadlines.check()
    assert info.value.code() == 504


def test_document_scans_stop_between_slices(monkeypatch):
    """A scan is cut into slices of at most SCAN_SLICE_BYTES; once the deadline passes, the
    next slice is not started (the deadline expires inside the first slice here)."""
    monkeypatch.setattr(filters, "SCAN_SLICE_BYTES", 100)
    docs = pa.chunked_array([pa.array(["x" * 60] * 50)])  # 3,000 bytes
    bounds = filters._slice_bounds(docs, 1)
    n_slices = len(bounds) - 1
    assert n_slices >= 3000 // 100 and np.all(np.diff(bounds) * 60 <= 100 + 60)  # <= limit + one row
    calls = []
    pause = [0.0]

    def slow_match(a):
        calls.append(len(a))
        time.sleep(pause[0])
        return np.zeros(len(a), dtype=bool)

    assert filters._scan(docs, slow_match).shape == (50,)  # no deadline: every slice runs
    assert len(calls) == n_slices and sum(calls) == 50
    calls.clear()
    # the first slice outlasts the deadline; the deadline is long enough that a slow
    # machine still starts that slice before it passes (0.01 s was not, once)
    pause[0] = 0.4
    with gleandb.deadline(0.25):
        with pytest.raises(DeadlineExceededError):
            filters._scan(docs, slow_match)
    assert len(calls) == 1


def test_slices_cover_every_row_once():
    docs = pa.chunked_array([pa.array(["a" * 7, None, "", "b" * 300, "c"] * 40)])
    for size in (1, 10, 299, 10_000):
        old = filters.SCAN_SLICE_BYTES
        filters.SCAN_SLICE_BYTES = size
        try:
            for parts in (1, 3):
                b = filters._slice_bounds(docs, parts)
                assert b[0] == 0 and b[-1] == len(docs) and np.all(np.diff(b) > 0)
        finally:
            filters.SCAN_SLICE_BYTES = old


@pytest.fixture
def col():
    c = gleandb.EphemeralClient()
    col = c.create_collection("deadline-docs", embedding_function=None)
    rng = np.random.default_rng(0)
    docs = ["".join(rng.choice(list("abcdefgh "), size=200)) for _ in range(200)]
    col.add(ids=[f"d{i}" for i in range(200)], embeddings=rng.random((200, 4)).tolist(), documents=docs,
            metadatas=[{"k": i % 7} for i in range(200)])
    yield col
    c.delete_collection("deadline-docs")


COSTLY = [
    dict(where={"k": {"$gte": 3}}),
    dict(where_document={"$contains": "abc"}),
    dict(where_document={"$not_contains": "abc"}),
    dict(where_document={"$regex": "(?i)a.c"}),
    dict(where_document={"$not_regex": "a[bc]+d"}),
    dict(where={"$or": [{"k": 1}, {"$and": [{"k": {"$ne": 2}}, {"#document": {"$contains": "ab"}}]}]},
         where_document={"$or": [{"$regex": "h+g"}, {"$and": [{"$contains": "a"}, {"$not_contains": "b"}]}]}),
]


@pytest.mark.parametrize("filt", COSTLY, ids=lambda f: next(iter(f.values())).__repr__()[:40])
def test_every_filter_kind_and_read_path_checks_the_deadline(col, filt):
    q = [[0.5, 0.5, 0.5, 0.5]]
    calls = {
        "get": lambda: col.get(**filt),
        "count": lambda: col.count(**filt),
        "query": lambda: col.query(query_embeddings=q, n_results=5, **filt),
        "delete": lambda: col.delete(**filt),
        "retrieve": lambda: col.retrieve(query_embeddings=q, query_texts=["abc"], n_results=5, **filt),
    }
    expected = col.get(**filt)["ids"]
    for name, call in calls.items():
        with gleandb.deadline(1e-9):
            time.sleep(0.001)
            with pytest.raises(DeadlineExceededError):
                call()
    # stopped reads changed nothing, and the same reads work without a deadline
    assert col.count() == 200
    assert col.get(**filt)["ids"] == expected


def test_a_slow_kernel_call_does_not_hold_the_caller_past_the_deadline():
    """One kernel call cannot be interrupted (e.g. a costly regex over one large document):
    the caller stops waiting at the deadline and raises while that call is still running."""
    import threading

    release, returned = threading.Event(), threading.Event()

    def stuck_match(a):
        release.wait(timeout=30)  # a long, uninterruptible kernel call
        returned.set()
        return np.zeros(len(a), dtype=bool)

    docs = pa.chunked_array([pa.array(["one large document"])])
    try:
        with gleandb.deadline(0.05):
            with pytest.raises(DeadlineExceededError):
                filters._scan(docs, stuck_match)
        assert not returned.is_set()  # raised while the call was still running
    finally:
        release.set()
    assert returned.wait(timeout=30)  # and the pool thread finishes it afterwards


def test_costly_regex_over_one_large_document_stops_at_the_deadline(col):
    """A regex whose RE2 search is slow on one big row: stopped with DeadlineExceededError."""
    big = "".join(np.random.default_rng(1).choice(list("ab"), size=300_000))
    col.add(ids=["big"], embeddings=[[0.1, 0.2, 0.3, 0.4]], documents=[big])
    with gleandb.deadline(0.01):
        with pytest.raises(DeadlineExceededError):
            col.get(where_document={"$regex": "a[ab]{200}x"}, include=[])
    assert "big" in col.get(ids=["big"], include=[])["ids"]
