"""Tests for gleandb.index.filters.

Expected id lists marked "observed" were produced by chromadb 1.5.9
(EphemeralClient) on the same records.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filter_reference import matches
from gleandb.api.errors import InvalidArgumentError
from gleandb.index.filters import (
    Filter,
    compile_filter,
    metadata_columns,
    translate_regex,
    validate_where,
    validate_where_document,
)


def make_table(metadatas, documents=None, ids=None):
    n = len(metadatas)
    ids = ids or [f"r{i}" for i in range(n)]
    documents = documents if documents is not None else [None] * n
    return pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "document": pa.array(documents, pa.string()),
            **metadata_columns(metadatas),
        }
    )


def select(table, where=None, where_document=None):
    f = compile_filter(where, where_document)
    assert isinstance(f, Filter)
    mask = f.evaluate(table)
    assert isinstance(mask, np.ndarray) and mask.dtype == np.bool_
    assert mask.shape == (table.num_rows,)
    return [i for i, m in zip(table.column("id").to_pylist(), mask) if m]


# ---------------------------------------------------------------------------
# metadata_columns
# ---------------------------------------------------------------------------


def test_metadata_columns_types_and_layout():
    cols = metadata_columns(
        [
            {"a": True, "b": 1, "c": 1.5, "d": "x", "e:f": ["p", "q"]},
            None,
            {"a": 2, "li": [1, 2], "lf": [1.0], "lb": [False], "gone": None},
            {},
        ]
    )
    assert set(cols) == {"b:a", "i:b", "f:c", "s:d", "ls:e:f", "i:a", "li:li", "lf:lf", "lb:lb"}
    assert cols["b:a"].type == pa.bool_() and cols["b:a"].to_pylist() == [True, None, None, None]
    assert cols["i:a"].to_pylist() == [None, None, 2, None]
    assert cols["i:b"].type == pa.int64()
    assert cols["f:c"].type == pa.float64()
    assert cols["s:d"].type == pa.string()
    assert cols["ls:e:f"].type == pa.list_(pa.string())
    assert cols["ls:e:f"].to_pylist() == [["p", "q"], None, None, None]
    assert cols["li:li"].type == pa.list_(pa.int64())
    assert cols["lf:lf"].type == pa.list_(pa.float64())
    assert cols["lb:lb"].type == pa.list_(pa.bool_())
    assert all(len(c) == 4 for c in cols.values())


def test_metadata_columns_rejects_bad_values():
    with pytest.raises(ValueError):
        metadata_columns([{"k": [1, "a"]}])
    with pytest.raises(ValueError):
        metadata_columns([{"k": [True, 1]}])
    with pytest.raises(ValueError):
        metadata_columns([{"k": []}])
    with pytest.raises(ValueError):
        metadata_columns([{"k": {"nested": 1}}])
    assert metadata_columns([]) == {}


# ---------------------------------------------------------------------------
# where: scalar operators
# ---------------------------------------------------------------------------

# chromadb 1.5.9 probe data (probe 1)
P1_MD = [
    {"k": 1, "s": "x", "tags": ["a", "b"], "nums": [1, 2]},
    {"k": 2.0, "b": True},
    {"k": True, "s": "X"},
    None,
    {"k": 2.5, "nums": [1.0, 3.5]},
    {"bl": [True, False]},
    {"s": "y"},
]
P1_DOCS = ["Hello world 123", "hello there", None, "abc\ndef", "x", "HELLO", "y"]
P1_IDS = list("abcdefg")


@pytest.fixture
def p1():
    return make_table(P1_MD, P1_DOCS, P1_IDS)


@pytest.mark.parametrize(
    "where, expected",
    [
        ({"k": 1.0}, ["a"]),
        ({"k": 2}, ["b"]),
        ({"k": True}, ["c"]),
        ({"k": 1}, ["a"]),
        ({"k": {"$ne": 1}}, ["b", "c", "d", "e", "f", "g"]),
        ({"k": {"$gte": 2}}, ["b", "e"]),
        ({"k": {"$in": [2]}}, ["b"]),
        ({"k": {"$nin": [2, 1]}}, ["c", "d", "e", "f", "g"]),
        ({"tags": {"$contains": "a"}}, ["a"]),
        ({"tags": {"$not_contains": "a"}}, ["b", "c", "d", "e", "f", "g"]),
        ({"nums": {"$contains": 1}}, ["a"]),
        ({"nums": {"$contains": 1.0}}, ["e"]),
        ({"nums": {"$contains": 3.5}}, ["e"]),
        ({"nums": {"$contains": True}}, []),
        ({"bl": {"$contains": True}}, ["f"]),
        ({"bl": {"$contains": 1}}, []),
        ({"s": {"$contains": "x"}}, []),
        ({"s": {"$not_contains": "x"}}, list("abcdefg")),
        ({"tags": "a"}, []),
        ({"tags": {"$in": ["a"]}}, []),
        ({"tags": {"$ne": "a"}}, list("abcdefg")),
        ({"$and": [{"k": 1}, {"s": "x"}]}, ["a"]),
        ({"$or": [{"k": 1}, {"s": "y"}]}, ["a", "g"]),
        ({"k": {"$eq": 1.5}}, ["a"]),
        ({"#document": {"$contains": "hello"}}, ["b"]),
        ({"#document": {"$not_contains": "hello"}}, ["a", "c", "d", "e", "f", "g"]),
        ({"#id": "a"}, []),
        ({"#id": {"$in": ["a", "b"]}}, []),
        ({"#id": {"$ne": "a"}}, list("abcdefg")),
        ({"k": {"$gt": 2**70}}, []),
        ({"k": {"$eq": 2**70}}, []),
        ({"s": "x"}, ["a"]),
        ({"s": "X"}, ["c"]),
        ({"s": {"$in": ["x", "y"]}}, ["a", "g"]),
    ],
)
def test_where_observed_probe1(p1, where, expected):
    assert select(p1, where) == expected
    for i, (md, doc) in enumerate(zip(P1_MD, P1_DOCS)):
        assert matches(where, None, md, doc) == (P1_IDS[i] in expected)


# probe 2: int/float crossing as chromadb's engine does it (a float operand is
# truncated toward zero when compared with int values)
P2_MD = [
    {"k": 1}, {"k": 2}, {"k": 3}, {"k": 1.5}, {"k": 2.0}, {"k": 2.5},
    {"k": True}, {"k": "1"}, {"k": 2**62}, {"k": -7},
]  # fmt: skip
P2_DOCS = [
    "abc \u0663 x", "\u00c9 \u00e9", "a\u00a0b", "stra\u00dfe caf\u00e9", "foo\nbar",
    "foo bar\n", "a_b c", "word1 word2", "Hello", "x",
]  # fmt: skip


def _r(*idx):
    return [f"r{i}" for i in idx]


P2_CASES = [
    ({"$eq": 1.5}, _r(0, 3)),
    ({"$eq": 1.0}, _r(0)),
    ({"$eq": 2.0}, _r(1, 4)),
    ({"$eq": 2}, _r(1, 4)),
    ({"$eq": 0.5}, []),
    ({"$eq": 1.9}, _r(0)),
    ({"$eq": 2.1}, _r(1)),
    ({"$ne": 1.5}, _r(1, 2, 4, 5, 6, 7, 8, 9)),
    ({"$ne": 2}, _r(0, 2, 3, 5, 6, 7, 8, 9)),
    ({"$gt": 1.5}, _r(1, 2, 4, 5, 8)),
    ({"$gt": 1.0}, _r(1, 2, 3, 4, 5, 8)),
    ({"$gt": 2}, _r(2, 5, 8)),
    ({"$gt": 0.5}, _r(0, 1, 2, 3, 4, 5, 8)),
    ({"$gt": -6.5}, _r(0, 1, 2, 3, 4, 5, 8)),
    ({"$gte": 1.5}, _r(0, 1, 2, 3, 4, 5, 8)),
    ({"$gte": 1.9}, _r(0, 1, 2, 4, 5, 8)),
    ({"$gte": 2.1}, _r(1, 2, 5, 8)),
    ({"$lt": 1.5}, _r(9)),
    ({"$lt": 2.0}, _r(0, 3, 9)),
    ({"$lt": 1.9}, _r(3, 9)),
    ({"$lt": 2.1}, _r(0, 3, 4, 9)),
    ({"$lte": 1.5}, _r(0, 3, 9)),
    ({"$lte": 1.0}, _r(0, 9)),
    ({"$lte": 2}, _r(0, 1, 3, 4, 9)),
    ({"$in": [1.5]}, _r(0, 3)),
    ({"$nin": [1.5]}, _r(1, 2, 4, 5, 6, 7, 8, 9)),
    ({"$in": [2]}, _r(1, 4)),
    ({"$in": [1.5, 2.5]}, _r(0, 1, 3, 5)),
    ({"$nin": [1.5, 2.5]}, _r(2, 4, 6, 7, 8, 9)),
    ({"$in": ["1"]}, _r(7)),
    ({"$in": [True]}, _r(6)),
    ({"$nin": [True]}, _r(0, 1, 2, 3, 4, 5, 7, 8, 9)),
    ({"$lt": 2**70}, _r(0, 1, 2, 3, 4, 5, 8, 9)),
    ({"$gt": -(2**70)}, _r(0, 1, 2, 3, 4, 5, 8, 9)),
    ({"$eq": 2**62}, _r(8)),
    ({"$eq": float(2**62)}, _r(8)),
    ({"$eq": 2**62 + 1}, []),
    ({"$in": [2**70]}, []),
    ({"$eq": "1"}, _r(7)),
    ({"$eq": False}, []),
    ({"$ne": True}, _r(0, 1, 2, 3, 4, 5, 7, 8, 9)),
    # many values: the hash-set path of $in
    ({"$in": [1.5, 2.5, 7.0, 8.0, 9.0, 10.0]}, _r(0, 1, 3, 5)),
    ({"$nin": [-7, 3, 7, 8, 9, 10]}, _r(0, 1, 3, 4, 5, 6, 7, 8)),
]


@pytest.mark.parametrize("cond, expected", P2_CASES)
def test_numeric_crossing_observed(cond, expected):
    table = make_table(P2_MD, P2_DOCS)
    where = {"k": cond}
    assert select(table, where) == expected
    for i, md in enumerate(P2_MD):
        assert matches(where, None, md, P2_DOCS[i]) == (f"r{i}" in expected)


# probe 3: truncation toward zero for negative operands, doc-less records
P3_MD = [
    {"k": -6}, {"k": -7}, {"k": 6}, {"k": -6.0}, None, {"li": [1, 2]},
    {"lf": [1.5, 2.0]}, {"k": 9007199254740993},
]  # fmt: skip
P3_DOCS = ["a%b", "a_b", "a\\b", None, None, "", "x", "y"]

P3_CASES = [
    ({"k": {"$eq": -6.5}}, None, _r(0)),
    ({"k": {"$eq": 6.5}}, None, _r(2)),
    ({"k": {"$gt": -6.5}}, None, _r(2, 3, 7)),
    ({"k": {"$gt": 6.5}}, None, _r(7)),
    ({"k": {"$gte": -6.5}}, None, _r(0, 2, 3, 7)),
    ({"k": {"$gte": 6.5}}, None, _r(2, 7)),
    ({"k": {"$lt": -6.5}}, None, _r(1)),
    ({"k": {"$lt": 6.5}}, None, _r(0, 1, 3)),
    ({"k": {"$lte": -6.5}}, None, _r(0, 1)),
    ({"k": {"$lte": 6.5}}, None, _r(0, 1, 2, 3)),
    ({"k": {"$eq": 9007199254740992}}, None, []),
    ({"k": {"$eq": 9007199254740992.0}}, None, []),
    ({"k": {"$gt": 9007199254740992.0}}, None, _r(7)),
    ({"k": {"$eq": 1e30}}, None, []),
    ({"k": {"$lt": 1e30}}, None, _r(0, 1, 2, 3, 7)),
    ({"k": {"$gt": -1e30}}, None, _r(0, 1, 2, 3, 7)),
    ({"li": {"$contains": 1}}, None, _r(5)),
    ({"li": {"$contains": 1.5}}, None, []),
    ({"lf": {"$contains": 2}}, None, []),
    ({"lf": {"$contains": 2.0}}, None, _r(6)),
    ({"li": {"$not_contains": 1}}, None, _r(0, 1, 2, 3, 4, 6, 7)),
    ({"li": {"$gt": 0}}, None, []),
    ({"li": {"$eq": 1}}, None, []),
    ({"li": {"$in": [1]}}, None, []),
    ({"li": {"$nin": [1]}}, None, _r(0, 1, 2, 3, 4, 5, 6, 7)),
    ({"#document": {"$contains": "%"}}, None, _r(0)),
    ({"#document": {"$contains": "_"}}, None, _r(1)),
    ({"#document": {"$contains": "\\"}}, None, _r(2)),
    ({"#document": {"$contains": ""}}, None, _r(0, 1, 2, 5, 6, 7)),
    ({"#document": {"$not_contains": ""}}, None, _r(3, 4)),
    ({"#document": {"$not_contains": "a"}}, None, _r(3, 4, 5, 6, 7)),
    ({"#document": {"$eq": 1}}, None, []),
    ({"#document": {"$ne": 1}}, None, _r(0, 1, 2, 3, 4, 5, 6, 7)),
    ({"#document": {"$lt": 1}}, None, []),
    ({"#document": {"$nin": [1]}}, None, _r(0, 1, 2, 3, 4, 5, 6, 7)),
    ({"#document": {"$in": [True]}}, None, []),
    ({"#document": {"$eq": 1.5}}, None, []),
    ({"#document": {"$contains": "a"}}, {"$contains": "b"}, _r(0, 1, 2)),
    ({"#id": {"$contains": "r1"}}, None, []),
    (None, {"$contains": "%"}, _r(0)),
    (None, {"$contains": "\\"}, _r(2)),
    (None, {"$regex": "x*"}, _r(0, 1, 2, 5, 6, 7)),
    (None, {"$regex": "^$"}, _r(5)),
    (None, {"$not_regex": "x*"}, _r(3, 4)),
    (None, {"$not_contains": "a"}, _r(3, 4, 5, 6, 7)),
    ({"k": {"$eq": True}}, None, []),
    (
        {"$or": [{"k": {"$gt": 0}}, {"$and": [{"k": {"$lt": 0}}, {"k": {"$ne": -7}}]}]},
        None,
        _r(0, 2, 3, 7),
    ),
]


@pytest.mark.parametrize("where, where_document, expected", P3_CASES)
def test_observed_probe3(where, where_document, expected):
    table = make_table(P3_MD, P3_DOCS)
    assert select(table, where, where_document) == expected
    for i, (md, doc) in enumerate(zip(P3_MD, P3_DOCS)):
        assert matches(where, where_document, md, doc) == (f"r{i}" in expected)


def test_strings_case_sensitive_and_bool_vs_int():
    t = make_table(
        [{"s": "Apple"}, {"s": "apple"}, {"f": True}, {"f": 1}, {"f": 0}, {"f": False}, {}]
    )
    assert select(t, {"s": "apple"}) == ["r1"]
    assert select(t, {"s": {"$ne": "apple"}}) == ["r0", "r2", "r3", "r4", "r5", "r6"]
    assert select(t, {"f": True}) == ["r2"]
    assert select(t, {"f": 1}) == ["r3"]
    assert select(t, {"f": {"$in": [False]}}) == ["r5"]
    assert select(t, {"f": {"$in": [0, 1]}}) == ["r3", "r4"]
    assert select(t, {"f": {"$gte": 0}}) == ["r3", "r4"]  # ranges never match bools
    assert select(t, {"f": {"$nin": [True, False]}}) == ["r0", "r1", "r3", "r4", "r6"]


def test_keys_with_colons_and_missing_columns():
    t = make_table([{"a:b": 1}, {"a": 1}, {"a:b:c": "x"}])
    assert select(t, {"a:b": 1}) == ["r0"]
    assert select(t, {"a": 1}) == ["r1"]
    assert select(t, {"a:b:c": "x"}) == ["r2"]
    assert select(t, {"nope": 1}) == []
    assert select(t, {"nope": {"$ne": 1}}) == ["r0", "r1", "r2"]
    assert select(t, {"nope": {"$nin": ["x"]}}) == ["r0", "r1", "r2"]
    assert select(t, {"nope": {"$not_contains": "x"}}) == ["r0", "r1", "r2"]
    assert select(t, {"nope": {"$contains": "x"}}) == []


def test_nested_logic():
    md = [{"a": i, "b": i % 3, "c": f"s{i % 2}"} for i in range(10)]
    t = make_table(md)
    where = {
        "$or": [
            {"$and": [{"a": {"$gte": 2}}, {"a": {"$lt": 5}}, {"c": "s0"}]},
            {"$and": [{"b": 0}, {"$or": [{"a": 9}, {"a": 0}]}]},
        ]
    }
    expected = [f"r{i}" for i in range(10) if (2 <= i < 5 and i % 2 == 0) or (i % 3 == 0 and i in (0, 9))]
    assert select(t, where) == expected == ["r0", "r2", "r4", "r9"]


def test_where_and_where_document_are_anded(p1):
    assert select(p1, {"k": 1}, {"$contains": "Hello"}) == ["a"]
    assert select(p1, {"k": 2}, {"$contains": "Hello"}) == []


# ---------------------------------------------------------------------------
# where_document
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "wd, expected",
    [
        ({"$contains": "hello"}, ["b"]),
        ({"$not_contains": "hello"}, ["a", "c", "d", "e", "f", "g"]),
        ({"$regex": "(?i)hello"}, ["a", "b", "f"]),
        ({"$regex": "^abc$"}, []),
        ({"$regex": "(?m)^def$"}, ["d"]),
        ({"$regex": "\\d+"}, ["a"]),
        ({"$not_regex": "hello"}, ["a", "c", "d", "e", "f", "g"]),
        ({"$or": [{"$contains": "x"}, {"$contains": "abc"}]}, ["d", "e"]),
        ({"$and": [{"$contains": "o"}, {"$not_contains": "w"}]}, ["b"]),
        ({"$contains": "%"}, []),
        ({"$contains": "_"}, []),
    ],
)
def test_where_document_observed(p1, wd, expected):
    assert select(p1, None, wd) == expected


@pytest.mark.parametrize(
    "pattern, expected",
    [  # observed on chromadb 1.5.9 (Rust regex: Unicode classes by default)
        ("\\d", _r(0, 7)),
        ("[\\d]", _r(0, 7)),
        ("\\D", _r(*range(10))),
        ("(?i)\u00e9", _r(1, 3)),
        ("\\s", _r(0, 1, 2, 3, 4, 5, 6, 7)),
        ("[\\s]", _r(0, 1, 2, 3, 4, 5, 6, 7)),
        ("a\\sb", _r(2)),
        ("\\w", _r(*range(10))),
        ("\\W", _r(0, 1, 2, 3, 4, 5, 6, 7)),
        ("caf\\w", _r(3)),
        ("foo.bar", _r(5)),
        ("(?s)foo.bar", _r(4, 5)),
        ("bar$", _r(4)),
        ("^foo", _r(4, 5)),
        ("(?m)^bar$", _r(4)),
        ("\\pL", _r(*range(10))),
        ("[[:alpha:]]", _r(0, 2, 3, 4, 5, 6, 7, 8, 9)),
        ("(?P<n>x)", _r(0, 9)),
        ("x*", _r(*range(10))),
        ("\\x{FF}", []),
        ("\\z", _r(*range(10))),
        ("(?i)STRASSE", []),
        ("(?i)hello", _r(8)),
        ("\\bword1\\b", _r(7)),
        ("(?U)o+", _r(4, 5, 7, 8)),
    ],
)
def test_regex_observed(pattern, expected):
    table = make_table(P2_MD, P2_DOCS)
    assert select(table, None, {"$regex": pattern}) == expected
    negated = [r for r in _r(*range(10)) if r not in expected]
    assert select(table, None, {"$not_regex": pattern}) == negated


def test_contains_special_characters_are_literal():
    docs = ["a.b", "axb", "(x)", "[x]", "a\\b", "^$", "a+b*", "x\x00y", "caf\u00e9", None]
    t = make_table([None] * len(docs), docs)
    for needle in [".", "a.b", "(x)", "[x]", "\\", "^$", "+b*", "\x00", "\u00e9", "{", "|"]:
        expected = [f"r{i}" for i, d in enumerate(docs) if d is not None and needle in d]
        assert select(t, None, {"$contains": needle}) == expected, needle
        assert select(t, {"#document": {"$contains": needle}}) == expected, needle


@pytest.mark.parametrize(
    "pattern, fragment",
    [
        ("(?=a)", "look-around"),
        ("(?<!a)b", "look-around"),
        ("(a)\\1", "backreferences are not supported"),
        ("(", "missing )"),
        ("a{2,1}", "invalid repetition size"),
        ("[a[bc]]", "nested character classes"),
        ("[a&&b]", "set operation"),
        ("\\C", "unrecognized escape"),
        ("\\Qa.b\\E", "unrecognized escape"),
        ("a\\", "incomplete escape"),
    ],
)
def test_bad_regex_fails_at_compile_time(pattern, fragment):
    with pytest.raises(InvalidArgumentError) as exc:
        compile_filter(None, {"$regex": pattern})
    msg = str(exc.value)
    assert repr(pattern) in msg and fragment in msg
    # also nested and negated, and in combination with a valid where
    with pytest.raises(InvalidArgumentError):
        compile_filter({"k": 1}, {"$or": [{"$contains": "x"}, {"$not_regex": pattern}]})


def test_translate_regex_unicode_classes():
    assert translate_regex("a\\db") == "a\\p{Nd}b"
    assert translate_regex("[\\dx]") == "[\\p{Nd}x]"
    assert translate_regex("\\\\d") == "\\\\d"  # escaped backslash then 'd'
    assert translate_regex("[]\\d]") == "[]\\p{Nd}]"
    assert translate_regex("\\p{Greek}\\x{41}") == "\\p{Greek}\\x{41}"


# ---------------------------------------------------------------------------
# Tables: empty, chunked, sliced, no document column
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where, wd",
    [
        ({"k": 1}, None),
        ({"k": {"$ne": 1}}, None),
        ({"tags": {"$contains": "a"}}, None),
        (None, {"$regex": "a"}),
        (None, {"$not_contains": "a"}),
        ({"$or": [{"k": {"$gt": 1}}, {"s": {"$nin": ["a"]}}]}, {"$contains": "a"}),
    ],
)
def test_empty_tables(where, wd):
    f = compile_filter(where, wd)
    bare = pa.table({"id": pa.array([], pa.string()), "document": pa.array([], pa.string())})
    typed = make_table([]).append_column("ls:tags", pa.array([], pa.list_(pa.string())))
    for t in (bare, typed):
        mask = f.evaluate(t)
        assert mask.dtype == np.bool_ and mask.shape == (0,)


def test_chunked_and_sliced_tables():
    md = [{"k": i, "tags": [f"t{i % 3}", "all"]} if i % 4 else {"s": "x"} for i in range(40)]
    docs = [f"doc {i}" if i % 5 else None for i in range(40)]
    full = make_table(md, docs)
    chunked = pa.concat_tables([full.slice(0, 7), full.slice(7, 20), full.slice(27)])
    assert chunked.column("ls:tags").num_chunks == 3
    sliced = full.slice(5, 30)
    for where, wd in [
        ({"tags": {"$contains": "t1"}}, None),
        ({"tags": {"$not_contains": "all"}}, None),
        ({"k": {"$gte": 10}}, None),
        ({"k": {"$in": [1, 2, 3, 5, 6, 7, 9]}}, {"$regex": "1"}),
        (None, {"$not_contains": "1"}),
    ]:
        f = compile_filter(where, wd)
        expected = np.array([matches(where, wd, m, d) for m, d in zip(md, docs)])
        assert (f.evaluate(full) == expected).all()
        assert (f.evaluate(chunked) == expected).all()
        assert (f.evaluate(sliced) == expected[5:35]).all()


def test_table_without_document_column():
    t = pa.table({"id": pa.array(["a", "b"]), **metadata_columns([{"k": 1}, None])})
    assert compile_filter(None, {"$contains": "x"}).evaluate(t).tolist() == [False, False]
    assert compile_filter(None, {"$not_regex": "x"}).evaluate(t).tolist() == [True, True]
    assert compile_filter({"k": 1}, None).evaluate(t).tolist() == [True, False]


def test_no_filter_returns_none():
    assert compile_filter(None, None) is None


# ---------------------------------------------------------------------------
# Validation messages (chromadb 1.5.9 client-side, without " in get.")
# ---------------------------------------------------------------------------

WHERE_ERRORS = [
    ({}, "Expected where to have exactly one operator, got {}"),
    ([1], "Expected where to be a dict, got [1]"),
    ({"a": 1, "b": 2}, "Expected where to have exactly one operator, got {'a': 1, 'b': 2}"),
    ({1: 2}, "Expected where key to be a str, got 1"),
    (
        {"$contains": "a"},
        "Expected where key to be a metadata field name or a logical operator ($and, $or), got $contains",
    ),
    (
        {"$not_contains": "a"},
        "Expected where key to be a metadata field name or a logical operator ($and, $or), got $not_contains",
    ),
    ({"k": None}, "Expected where value to be a str, int, float, or operator expression, got None"),
    ({"k": [1, 2]}, "Expected where value to be a str, int, float, or operator expression, got [1, 2]"),
    ({"$and": "x"}, "Expected where value for $and or $or to be a list of where expressions, got x"),
    (
        {"$and": [{"k": 1}]},
        "Expected where value for $and or $or to be a list with at least two where expressions, got [{'k': 1}]",
    ),
    (
        {"$or": []},
        "Expected where value for $and or $or to be a list with at least two where expressions, got []",
    ),
    ({"$and": [1, 2]}, "Expected where to be a dict, got 1"),
    ({"$or": [{"k": 1}, {}]}, "Expected where to have exactly one operator, got {}"),
    ({"k": {}}, "Expected operator expression to have exactly one operator, got {}"),
    (
        {"k": {"$lt": 1, "$gt": 0}},
        "Expected operator expression to have exactly one operator, got {'$lt': 1, '$gt': 0}",
    ),
    ({"s": {"$gt": "a"}}, "Expected operand value to be an int or a float for operator $gt, got a"),
    ({"k": {"$lte": None}}, "Expected operand value to be an int or a float for operator $lte, got None"),
    ({"k": {"$in": "abc"}}, "Expected operand value to be an list for operator $in, got abc"),
    ({"k": {"$nin": 1}}, "Expected operand value to be an list for operator $nin, got 1"),
    (
        {"#document": {"$contains": 1}},
        "Expected operand value to be a str for operator $contains on #document, got 1",
    ),
    (
        {"k": {"$contains": [1]}},
        "Expected operand value to be a str, int, float, or bool for operator $contains, got [1]",
    ),
    (
        {"k": {"$not_contains": None}},
        "Expected operand value to be a str, int, float, or bool for operator $not_contains, got None",
    ),
    (
        {"k": {"$regex": "x"}},
        "Expected where operator to be one of $gt, $gte, $lt, $lte, $ne, $eq, $in, $nin, $contains, $not_contains, got $regex",
    ),
    (
        {"#document": {"$regex": "x"}},
        "Expected where operator to be one of $gt, $gte, $lt, $lte, $ne, $eq, $in, $nin, $contains, $not_contains, got $regex",
    ),
    (
        {"k": {"$and": [{"a": 1}, {"b": 2}]}},
        "Expected where operator to be one of $gt, $gte, $lt, $lte, $ne, $eq, $in, $nin, $contains, $not_contains, got $and",
    ),
    (
        {"k": {"$eq": {"a": 1}}},
        "Expected where operand value to be a str, int, float, bool, or list of those type, got {'a': 1}",
    ),
    (
        {"k": {"$ne": None}},
        "Expected where operand value to be a str, int, float, bool, or list of those type, got None",
    ),
    (
        {"k": {"$in": []}},
        "Expected where operand value to be a non-empty list, and all values to be of the same type got []",
    ),
    (
        {"k": {"$in": [True, 1]}},
        "Expected where operand value to be a non-empty list, and all values to be of the same type got [True, 1]",
    ),
    (
        {"k": {"$nin": [1, 2.5]}},
        "Expected where operand value to be a non-empty list, and all values to be of the same type got [1, 2.5]",
    ),
]


@pytest.mark.parametrize("where, message", WHERE_ERRORS)
def test_where_validation_messages(where, message):
    with pytest.raises(ValueError) as exc:
        validate_where(where)
    assert str(exc.value) == message
    assert not isinstance(exc.value, InvalidArgumentError)
    with pytest.raises(ValueError) as exc2:
        compile_filter(where, None)
    assert str(exc2.value) == message


DOC_ERRORS = [
    ({}, "Expected where document to have exactly one operator, got {}"),
    ([1], "Expected where document to be a dictionary, got [1]"),
    (
        {"$contains": "a", "$regex": "b"},
        "Expected where document to have exactly one operator, got {'$contains': 'a', '$regex': 'b'}",
    ),
    (
        {"$foo": "x"},
        "Expected where document operator to be one of $contains, $not_contains, $regex, $not_regex, $and, $or, got $foo",
    ),
    (
        {"$and": "x"},
        "Expected document value for $and or $or to be a list of where document expressions, got x",
    ),
    (
        {"$and": [{"$contains": "o"}]},
        "Expected document value for $and or $or to be a list with at least two where document expressions, got [{'$contains': 'o'}]",
    ),
    ({"$contains": 1}, "Expected where document operand value for operator $contains to be a str, got 1"),
    ({"$regex": None}, "Expected where document operand value for operator $regex to be a str, got None"),
    ({"$contains": ""}, "Expected where document operand value for operator $contains to be a non-empty str"),
    ({"$not_regex": ""}, "Expected where document operand value for operator $not_regex to be a non-empty str"),
    ({"$or": [{"$contains": "a"}, {"$nope": "b"}]}, "Expected where document operator to be one of $contains, $not_contains, $regex, $not_regex, $and, $or, got $nope"),
]


@pytest.mark.parametrize("wd, message", DOC_ERRORS)
def test_where_document_validation_messages(wd, message):
    with pytest.raises(ValueError) as exc:
        validate_where_document(wd)
    assert str(exc.value) == message
    with pytest.raises(ValueError) as exc2:
        compile_filter(None, wd)
    assert str(exc2.value) == message


@pytest.mark.parametrize(
    "where",
    [
        {"k": {"$gt": True}},
        {"k": {"$in": [1, True]}},
        {"k": {"$eq": [1, 2]}},
        {"tags": {"$eq": ["a", "b"]}},
        {"k": {"$in": [[1]]}},
        {"k": {"$nin": [None]}},
        {"$in": [1]},
        {"$nin": [1]},
        {"$foo": 1},
        {"$foo": {"$eq": 1}},
        {"$and": [{"k": 1}, {"$bar": 2}]},
        {"k": {"$gt": float("nan")}},
        {"k": {"$lt": float("inf")}},
        {"k": {"$eq": float("-inf")}},
        {"k": {"$in": [1.0, float("nan")]}},
    ],
)
def test_engine_rejects_invalid_where_clause(where):
    validate_where(where)  # passes chromadb's client-side checks
    with pytest.raises(InvalidArgumentError, match="^Invalid where clause$"):
        compile_filter(where, None)


@pytest.mark.parametrize(
    "where",
    [
        {"#document": "x"},
        {"#document": {"$eq": "x"}},
        {"#document": {"$ne": "x"}},
        {"#document": {"$in": ["x"]}},
        {"#document": {"$nin": ["x"]}},
    ],
)
def test_document_key_string_comparisons_rejected(where):
    with pytest.raises(InvalidArgumentError) as exc:
        compile_filter(where, None)
    assert str(exc.value) == (
        "Cannot filter using metadata key '#document' with type 'Str' because indexing is disabled"
    )


# ---------------------------------------------------------------------------
# Property test against the pure-Python reference
# ---------------------------------------------------------------------------

KEYS = ["a", "b", "c:d"]
ints = st.integers(-3, 3)
floats = st.sampled_from([-2.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
strs = st.sampled_from(["", "x", "y", "X", "xy", "a b"])
bools = st.booleans()
scalars = st.one_of(ints, floats, strs, bools)
lists = st.one_of(
    st.lists(ints, min_size=1, max_size=3),
    st.lists(floats, min_size=1, max_size=3),
    st.lists(strs, min_size=1, max_size=3),
    st.lists(bools, min_size=1, max_size=3),
)
metadata_st = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(KEYS), st.one_of(scalars, lists), max_size=3),
)
DOC_ALPHABET = "abcAB 1\u00e9\n."
documents_st = st.one_of(st.none(), st.text(alphabet=DOC_ALPHABET, max_size=12))

key_st = st.sampled_from(KEYS + ["missing"])
literal_st = st.one_of(ints, floats, strs.filter(bool), bools)


@st.composite
def leaf_where(draw):
    key = draw(key_st)
    op = draw(
        st.sampled_from(
            ["short", "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$contains",
             "$not_contains", "doc"]
        )
    )  # fmt: skip
    if op == "short":
        return {key: draw(literal_st)}
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return {key: {op: draw(st.one_of(ints, floats))}}
    if op in ("$in", "$nin"):
        elems = draw(st.sampled_from([ints, floats, strs, bools]))
        return {key: {op: draw(st.lists(elems, min_size=1, max_size=7))}}
    if op == "doc":
        return {"#document": {draw(st.sampled_from(["$contains", "$not_contains"])): draw(
            st.text(alphabet=DOC_ALPHABET, max_size=3))}}
    return {key: {op: draw(literal_st)}}


where_st = st.recursive(
    leaf_where(),
    lambda inner: st.builds(
        lambda op, items: {op: items},
        st.sampled_from(["$and", "$or"]),
        st.lists(inner, min_size=2, max_size=3),
    ),
    max_leaves=6,
)

def with_ascii_word_boundaries(where_document):
    """The reference with gleandb's one documented regex deviation (docs/ARCHITECTURE.md):
    RE2's word boundary is ASCII-only, so ``\\ba`` matches "éa" where Rust's regex (and
    Python's) do not. Patterns with ``\\b`` get Python's ``(?a)`` flag in the reference; the
    test patterns that use ``\\b`` have no other class whose meaning that flag changes."""
    if isinstance(where_document, dict):
        return {op: with_ascii_word_boundaries(v) if op in ("$and", "$or") else
                ("(?a)" + v if op.endswith("regex") and "\\b" in v else v)
                for op, v in where_document.items()}
    if isinstance(where_document, list):
        return [with_ascii_word_boundaries(w) for w in where_document]
    return where_document


REGEXES = [
    "a", "ab", "^a", "b$", "a.b", "(?i)ab", "[ab]+1", "\\d", "\\w\\s\\w", "(?s)a.b",
    "(?m)^b", "a|\u00e9", "[^a ]", "(a|b){2}", "\\.", "A*", "\\ba", "1\\b",
]  # fmt: skip
doc_leaf = st.one_of(
    st.builds(
        lambda op, s: {op: s},
        st.sampled_from(["$contains", "$not_contains"]),
        st.text(alphabet=DOC_ALPHABET, min_size=1, max_size=3),
    ),
    st.builds(
        lambda op, p: {op: p},
        st.sampled_from(["$regex", "$not_regex"]),
        st.sampled_from(REGEXES),
    ),
)
where_document_st = st.recursive(
    doc_leaf,
    lambda inner: st.builds(
        lambda op, items: {op: items},
        st.sampled_from(["$and", "$or"]),
        st.lists(inner, min_size=2, max_size=3),
    ),
    max_leaves=4,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(st.tuples(metadata_st, documents_st), max_size=10),
    where=st.one_of(st.none(), where_st),
    where_document=st.one_of(st.none(), where_document_st),
    chunks=st.integers(1, 3),
)
def test_property_matches_reference(records, where, where_document, chunks):
    # Python's re and Rust's regex disagree on "$" before a trailing newline:
    # keep such documents out of the comparison
    records = [(m, d.rstrip("\n") if d else d) for m, d in records]
    mds = [m for m, _ in records]
    docs = [d for _, d in records]
    table = make_table(mds, docs)
    if chunks > 1 and table.num_rows > 1:
        cut = table.num_rows // 2
        table = pa.concat_tables([table.slice(0, cut), table.slice(cut)])
    f = compile_filter(where, where_document)
    if f is None:
        assert where is None and where_document is None
        return
    got = f.evaluate(table)
    ref_where_document = with_ascii_word_boundaries(where_document)
    expected = [matches(where, ref_where_document, m, d) for m, d in zip(mds, docs)]
    assert got.tolist() == expected



# --- the required-literal shortcut of $regex never changes a result ----------------

import pyarrow as _pa  # noqa: E402

from gleandb.index.filters import compile_filter as _compile, required_literal  # noqa: E402


@pytest.mark.parametrize(
    "pattern,literal",
    [
        (r"\b(?:is|are) (?:not )?supported\b", "supported"),
        ("api[_ ]key", "api"),
        ("(?i)hello", None),
        ("abc|def", None),
        ("[[:alpha:]]xyz", None),
        ("a+bcd", "bcd"),
    ],
)
def test_required_literal(pattern, literal):
    assert required_literal(pattern) == literal


@pytest.mark.parametrize(
    "pattern",
    [r"\bis supported\b", "api[_ ]key", "[[:alpha:]]xyz", "(?m)^end$", r"\d+ items", "o w", "(?s)a.b"],
)
def test_regex_prefilter_agrees_with_full_scan(pattern):
    import re as _re

    docs = ["it is supported", "api_key here", "api key", "Axyz", "]xyz", "line\nend", "3 items",
            "hello world", "a\nb", None, "", "apikey", "xyz"]
    table = _pa.table({"id": [str(i) for i in range(len(docs))], "document": _pa.array(docs, _pa.string())})
    got = _compile(None, {"$regex": pattern}).evaluate(table)
    rust_like = pattern.replace("[[:alpha:]]", "[A-Za-z]").replace(r"\d", "[0-9]")
    want = [d is not None and _re.search(rust_like, d) is not None for d in docs]
    assert got.tolist() == want


def test_long_contains_needles_use_the_linear_matcher_with_the_same_answers():
    """Needles over RE2_LITERAL_MAX_BYTES go through Arrow's KMP match_substring; the
    answers equal Python's ``in`` (metacharacters, NUL and non-ASCII included)."""
    from gleandb.index import filters as F

    base = "a.b*c(d)[e]{f}|g^h$i\\j\x00é漢" * 40
    docs = [base, base[:-1], "x" + base + "y", None, "a" * 2_000, "a" * 2_000 + "b"]
    table = make_table([None] * len(docs), documents=docs)
    for needle in (base[: F.RE2_LITERAL_MAX_BYTES + 50], base, "a" * 600 + "b", "a" * 600):
        node = F._DocContains(needle)
        assert node.long == (len(needle.encode()) > F.RE2_LITERAL_MAX_BYTES)
        want = [i for i, d in enumerate(docs) if d is not None and needle in d]
        got = np.flatnonzero(compile_filter(None, {"$contains": needle}).evaluate(table)).tolist()
        assert got == want, needle[:20]
        got = np.flatnonzero(compile_filter(None, {"$not_contains": needle}).evaluate(table)).tolist()
        assert got == [i for i in range(len(docs)) if i not in want]
