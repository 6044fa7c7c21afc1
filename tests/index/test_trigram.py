"""Trigram index: candidates are a superset of the matches, so where_document results
with the index are identical to a full scan (property test over random documents and
patterns), and regexes yield the literal queries that make it useful."""

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from gleandb.api.errors import InvalidArgumentError
from gleandb.index import filters
from gleandb.index.filters import compile_filter
from gleandb.index.trigram import TrigramIndex, regex_query

ALPHABET = "abcab cX.\n-é北😀1"
doc_text = st.text(alphabet=ALPHABET, max_size=40)
docs_st = st.lists(st.one_of(st.none(), doc_text), min_size=1, max_size=40)

atoms = st.one_of(
    st.text(alphabet="abcX é北😀1", min_size=1, max_size=4),  # literal runs (unicode too)
    st.sampled_from([".", "\\.", "\\d", "\\w", "\\s", "[ab]", "[^a]", "[a-c]", "[北é]", "\\n", "-", "^", "$",
                     "\\b", "(?i)", "[[:alpha:]]"]),
)


@st.composite
def regexes(draw, depth=0):
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 5 if depth < 2 else 1))
        if kind <= 1:
            a = draw(atoms)
            if a == "(?i)" and parts:  # only valid at the start
                a = "(?i:a)"
            parts.append(a)
        elif kind == 2:
            parts.append("(" + "|".join(draw(st.lists(regexes(depth + 1), min_size=2, max_size=3))) + ")")
        elif kind == 3:
            parts.append("(?:" + draw(regexes(depth + 1)) + ")" + draw(st.sampled_from(["?", "*", "+", "{2}", "{1,3}", "??"])))
        elif kind == 4:
            parts.append(draw(st.text(alphabet="abc", min_size=1, max_size=3)) + draw(st.sampled_from(["?", "+", "*"])))
        else:
            parts.append("(" + draw(regexes(depth + 1)) + ")")
    return "".join(parts)


def _needles(docs):
    return st.one_of(
        st.text(alphabet=ALPHABET, min_size=1, max_size=6),
        st.sampled_from([d[i:j] for d in docs if d for i in range(len(d)) for j in range(i + 1, min(len(d), i + 8))] or ["a"]),
    )


def _both(table, idx, wd):
    try:
        f = compile_filter(None, wd)
    except InvalidArgumentError:
        return None
    return f.evaluate(table), f.evaluate(table, lambda: idx)


@pytest.fixture(autouse=True)
def _always_use_index(monkeypatch):
    # the engine scans instead when most rows are candidates; here the index path must run
    monkeypatch.setattr(filters, "INDEX_MAX_FRACTION", 1.0)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=docs_st, data=st.data())
def test_contains_identical_to_full_scan(docs, data):
    table = pa.table({"document": pa.array(docs, pa.string())})
    idx = TrigramIndex.build(table.column("document"))
    needle = data.draw(_needles(docs))
    for op in ("$contains", "$not_contains"):
        scan, fast = _both(table, idx, {op: needle})
        np.testing.assert_array_equal(scan, fast)
        expected = [(d is not None and needle in d) == (op == "$contains") for d in docs]
        np.testing.assert_array_equal(fast, expected)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=docs_st, pattern=regexes())
def test_regex_identical_to_full_scan(docs, pattern):
    table = pa.table({"document": pa.array(docs, pa.string())})
    idx = TrigramIndex.build(table.column("document"))
    for op in ("$regex", "$not_regex"):
        got = _both(table, idx, {op: pattern})
        if got is None:
            return  # a pattern chromadb's syntax rejects
        np.testing.assert_array_equal(got[0], got[1], err_msg=pattern)


@settings(max_examples=150, deadline=None)
@given(docs=docs_st, a=regexes(), b=st.text(alphabet="abc é", min_size=1, max_size=5), data=st.data())
def test_and_or_combinations_and_within_identical(docs, a, b, data):
    """Nested document clauses, with metadata clauses before them and a ``within``
    mask (rows the caller keeps): exact on those rows, with or without the index."""
    n = len(docs)
    tag = data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    keep = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    table = pa.table({"document": pa.array(docs, pa.string()), "i:t": pa.array(tag, pa.int64())})
    idx = TrigramIndex.build(table.column("document"))
    wds = ({"$and": [{"$regex": a}, {"$not_contains": b}]}, {"$or": [{"$contains": b}, {"$not_regex": a}]},
           {"$and": [{"$or": [{"$contains": b}, {"$regex": a}]}, {"$not_contains": b[:1]}]})
    for wd in wds:
        for where in (None, {"t": {"$ne": 1}}, {"$or": [{"t": 0}, {"t": 2}]}):
            try:
                f = compile_filter(where, wd)
            except InvalidArgumentError:
                continue
            full = f.evaluate(table)
            np.testing.assert_array_equal(full, f.evaluate(table, lambda: idx))
            np.testing.assert_array_equal(full & keep, f.evaluate(table, lambda: idx, keep) & keep)
            np.testing.assert_array_equal(full & keep, f.evaluate(table, None, keep) & keep)


def test_sliced_and_chunked_columns():
    docs = ["hello world", None, "yellow", "", "mellow fellow"] * 3
    arr = pa.chunked_array([pa.array(docs[:4]), pa.array(docs[4:])])
    idx = TrigramIndex.build(arr)
    assert idx.literal_candidates(b"ello").tolist() == [i for i, d in enumerate(docs) if d and "ello" in d]
    sliced = pa.array(docs).slice(2, 6)
    idx = TrigramIndex.build(sliced)
    assert idx.n == 6
    assert idx.literal_candidates(b"llow").tolist() == [i for i, d in enumerate(docs[2:8]) if d and "llow" in d]
    assert idx.literal_candidates(b"zz") is None
    assert idx.literal_candidates(b"zzz").tolist() == []
    back = TrigramIndex.from_buffer(idx.to_bytes())
    np.testing.assert_array_equal(back.rows, idx.rows)


@pytest.mark.parametrize(
    "pattern, query",
    [
        ("hello", b"hello"),
        ("colou?r", ("or", [b"color", b"colour"])),
        ("(cat|dog)s", ("or", [b"cats", b"dogs"])),
        ("^foo.*bar$", ("and", [b"foo", b"bar"])),
        ("(abc)+x", b"abc"),
        ("error: \\d+ files", ("and", [b"error: ", b" files"])),
        ("x(?i:abc)yzw", b"yzw"),
        ("(?i)hello", None),
        ("\\d+", None),
        (".*", None),
        ("ab|cd", None),
    ],
)
def test_regex_literal_queries(pattern, query):
    assert regex_query(pattern) == query


def test_long_literals_look_up_a_bounded_sample_and_stay_exact():
    """A needle with more distinct trigrams than MAX_QUERY_TRIGRAMS is looked up by a
    sample of them: candidates stay a superset, the filter result stays exact."""
    import random

    import pyarrow as pa

    from gleandb.index import trigram
    from gleandb.index.filters import compile_filter

    rng = random.Random(3)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 "
    docs = ["".join(rng.choices(alphabet, k=5_000)) for _ in range(30)]
    docs[7] = docs[3][:2_500] + "Z" + docs[3][2_501:]  # shares most trigrams with doc 3
    idx = trigram.TrigramIndex.build(pa.array(docs))
    needle = docs[3][100:2_900]
    assert len(trigram._codes(needle.encode())) > trigram.MAX_QUERY_TRIGRAMS
    cand = idx.literal_candidates(needle.encode())
    assert 3 in cand.tolist()
    table = pa.table({"id": [str(i) for i in range(30)], "document": docs})
    for op, want in (("$contains", [3]), ("$not_contains", [i for i in range(30) if i != 3])):
        mask = compile_filter(None, {op: needle}).evaluate(table, lambda: idx)
        assert np.flatnonzero(mask).tolist() == want
