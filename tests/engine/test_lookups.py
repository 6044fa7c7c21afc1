"""Lookups that scale with the answer: the id index, the equality index, and filters
narrowed to the rows still undecided, checked against brute-force models.

The state machine runs writes, flushes, compaction, reopen and forks on a persistent
collection whose segments are tiny, with the equality and trigram indexes forced on
every segment (their size thresholds patched to 0), and after every step compares
get by ids, ``$eq`` / ``$in`` / ``$ne`` / ``$nin`` and document ``$contains`` /
``$not_contains`` / ``$not_regex`` answers with a dict model.
"""

import os
import re
import shutil
import tempfile

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

import gleandb
from gleandb.engine import segment as segmod
from gleandb.index.equality import EqualityIndex
from gleandb.index.filters import compile_filter
from gleandb.index.ids import IdIndex, IdQuery, sorted_matches
from gleandb.index.strhash import hash_one, hash_strings

# ------------------------------------------------------------------ units


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=30))
def test_hash_one_equals_vectorised_hash(words):
    """The Python path (a few strings) and the numpy path give the same stored hashes."""
    vec = hash_strings(pa.array(words, pa.string())) if words else np.zeros(0, np.uint64)
    assert [hash_one(w) for w in words] == [int(h) for h in vec]
    # chunking does not change hashes
    if len(words) > 3:
        parts = np.concatenate([hash_strings(pa.array(words[:3])), hash_strings(pa.array(words[3:]))])
        assert (parts == vec).all()


def test_hash_separates_close_strings():
    words = ["", "a", "b", "ab", "ba", "a\x00", "\x00a", "aa", "é", "e\u0301"] + [f"id-{i}" for i in range(5000)]
    assert len(set(hash_strings(pa.array(words)).tolist())) == len(words)


def test_sorted_matches_handles_repeats_and_misses():
    keys = np.array([1, 3, 3, 3, 7], dtype=np.uint64)
    qi, pos = sorted_matches(keys, np.array([3, 2, 7, 3], dtype=np.uint64))
    pairs = sorted(zip(qi.tolist(), pos.tolist()))
    assert pairs == [(0, 1), (0, 2), (0, 3), (2, 4), (3, 1), (3, 2), (3, 3)]


def test_sorted_matches_of_unique_keys_equal_the_general_search():
    rng = np.random.default_rng(7)
    for n, m in ((0, 5), (1, 3), (50, 0), (200, 40), (200, 300)):
        keys = np.unique(rng.integers(0, 1000, n).astype(np.uint64))
        wanted = rng.integers(0, 1000, m).astype(np.uint64)
        fast = sorted(zip(*(a.tolist() for a in sorted_matches(keys, wanted, unique=True))))
        assert fast == sorted(zip(*(a.tolist() for a in sorted_matches(keys, wanted))))
        assert len(fast) == int(np.isin(wanted, keys).sum())


@pytest.mark.parametrize("k", [1, 3, 40])  # the few-ids path and the vectorised one
def test_id_index_checks_candidates_when_hashes_collide(k):
    """Every id given the same hash: the index must still return only the real row."""
    ids = pa.chunked_array([pa.array([f"x{i}" for i in range(50)])])
    idx = IdIndex(50, np.zeros(50, np.uint64), np.arange(50, dtype=np.uint32))
    asked = [f"x{i}" for i in range(0, 2 * k, 2)] + ["nope"]
    q = IdQuery(asked)
    q.hashes = np.zeros(len(q.ids), np.uint64)
    qi, rows = idx.find(ids, q)
    found = {q.ids[a]: int(r) for a, r in zip(qi.tolist(), rows.tolist())}
    assert found == {f"x{i}": i for i in range(0, 2 * k, 2) if i < 50}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "", "ab"]) | st.none(), min_size=1, max_size=60),
       st.lists(st.integers(-3, 3) | st.none(), min_size=1, max_size=60),
       st.lists(st.booleans() | st.none(), min_size=1, max_size=60),
       st.lists(st.sampled_from(["a", "b", "c", ""]), min_size=1, max_size=4))
def test_equality_index_equals_scan(strs, ints, bools, asked):
    for tag, values, want in (("s", strs, asked), ("i", ints, [0, 1, -3, 9]), ("b", bools, [True])):
        col = pa.chunked_array([pa.array(values, {"s": pa.string(), "i": pa.int64(), "b": pa.bool_()}[tag])])
        idx = EqualityIndex.build(tag, col)
        for vals in ([want[0]], want):
            expect = [r for r, x in enumerate(values) if x is not None and x in vals]
            assert idx.rows_equal(col, vals).tolist() == expect


def test_equality_index_checks_string_collisions():
    col = pa.chunked_array([pa.array(["a", "b", None, "a"])])
    idx = EqualityIndex.build("s", col)
    idx.keys = np.zeros(len(idx.keys), np.uint64)  # every value collides
    original = EqualityIndex.rows_equal

    assert original(idx, col, ["a"]).tolist() in ([0, 3], [])  # the asked hash differs: nothing or right
    import gleandb.index.equality as eq
    saved = eq.hash_strings
    eq.hash_strings = lambda v: np.zeros(len(v), np.uint64)
    try:
        assert idx.rows_equal(col, ["a"]).tolist() == [0, 3]
        assert idx.rows_equal(col, ["b", "zz"]).tolist() == [1]
    finally:
        eq.hash_strings = saved


def test_narrowed_scan_equals_full_scan():
    """A comparison evaluated only on the ``within`` rows agrees with the full scan there."""
    rng = np.random.default_rng(3)
    n = 400
    md = [{"k": int(x), "s": str(x % 3)} if x % 5 else None for x in rng.integers(0, 10, n)]
    from gleandb.engine.segment import build_table
    table = build_table([f"i{j}" for j in range(n)], np.arange(n), [None] * n, md, [None] * n)
    for where in ({"k": {"$gt": 4}}, {"k": {"$ne": 3}}, {"s": {"$in": ["0", "2"]}}, {"s": {"$nin": ["1"]}},
                  {"$and": [{"s": "1"}, {"k": {"$lte": 7}}]}, {"$or": [{"s": "1"}, {"k": 9}]}):
        f = compile_filter(where, None)
        full = f.evaluate(table)
        for frac in (0.02, 0.2, 0.9):
            within = rng.random(n) < frac
            assert (f.evaluate(table, within=within)[within] == full[within]).all(), (where, frac)


# ------------------------------------------------------- state machine

DIM = 3
IDS = [f"id{i}" for i in range(10)]
DOCS = ["alpha beta", "beta gamma", "gamma delta", "alphabet soup", "zeta", None]
NEEDLES = ["alpha", "beta", "gam", "soup", "xyz", "a", "ta"]
STRS = ["red", "green", "blue"]

metas = st.fixed_dictionaries({}, optional={"s": st.sampled_from(STRS), "i": st.integers(0, 3),
                                            "b": st.booleans()})
id_lists = st.lists(st.sampled_from(IDS), min_size=1, max_size=5, unique=True)


def _vec(i):
    return [float(i), 1.0, -float(i)]


class LookupMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.path = tempfile.mkdtemp(prefix="gleandb-lookups-")
        self.settings = gleandb.Settings(memtable_max_rows=4, index_min_rows=3, compaction_min_segments=2)
        self.models: dict[str, dict] = {}
        self.client = None
        self.active = "col0"
        self.n_forks = 0

    def _open(self):
        gleandb.ClientAPI.clear_system_cache()
        self.client = gleandb.PersistentClient(self.path, settings=self.settings)

    def col(self, name=None):
        return self.client.get_collection(name or self.active, embedding_function=None)

    def teardown(self):
        try:
            if self.client is not None:
                self.client.close()
        finally:
            gleandb.ClientAPI.clear_system_cache()
            shutil.rmtree(self.path, ignore_errors=True)

    @initialize()
    def start(self):
        self._open()
        self.client.create_collection("col0", embedding_function=None)
        self.models["col0"] = {}

    @property
    def model(self):
        return self.models[self.active]

    @rule(ids=id_lists, data=st.data())
    def add(self, ids, data):
        docs = [data.draw(st.sampled_from(DOCS)) for _ in ids]
        mds = [data.draw(metas) for _ in ids]
        self.col().add(ids=ids, embeddings=[_vec(j) for j in range(len(ids))], documents=docs,
                       metadatas=[m or None for m in mds])
        for i, d, m in zip(ids, docs, mds):
            self.model.setdefault(i, (d, dict(m)))

    @rule(ids=id_lists, data=st.data())
    def upsert(self, ids, data):
        docs = [data.draw(st.sampled_from(DOCS[:-1])) for _ in ids]
        mds = [data.draw(metas) for _ in ids]
        self.col().upsert(ids=ids, embeddings=[_vec(j) for j in range(len(ids))], documents=docs,
                          metadatas=[m or None for m in mds])
        for i, d, m in zip(ids, docs, mds):
            if i in self.model:
                old = dict(self.model[i][1])
                old.update(m)
                self.model[i] = (d, old)
            else:
                self.model[i] = (d, dict(m))

    @rule(ids=id_lists, data=st.data())
    def update(self, ids, data):
        mds = [data.draw(metas) for _ in ids]
        self.col().update(ids=ids, metadatas=[m or None for m in mds])
        for i, m in zip(ids, mds):
            if i in self.model and m:
                old = dict(self.model[i][1])
                old.update(m)
                self.model[i] = (self.model[i][0], old)

    @rule(ids=id_lists)
    def delete_ids(self, ids):
        self.col().delete(ids=ids)
        for i in ids:
            self.model.pop(i, None)

    @rule(v=st.sampled_from(STRS))
    def delete_where(self, v):
        self.col().delete(where={"s": v})
        for i in [i for i, (_d, m) in self.model.items() if m.get("s") == v]:
            del self.model[i]

    @rule()
    def flush(self):
        self.col().flush()

    @rule()
    def compact(self):
        self.col().compact()

    @rule()
    def reopen(self):
        self.client.close()
        self._open()

    @rule()
    def fork(self):
        self.n_forks += 1
        name = f"fork{self.n_forks}"
        self.col().fork(name)
        self.models[name] = dict(self.model)

    @rule(data=st.data())
    def switch(self, data):
        self.active = data.draw(st.sampled_from(sorted(self.models)))

    # ---------------------------------------------------------- checks

    def _ids_where(self, pred):
        return [i for i, (d, m) in self.model.items() if pred(d, m)]

    def _get(self, **kw):
        return self.col().get(include=["documents", "metadatas"], **kw)

    @invariant()
    def answers_equal_model(self):
        if self.client is None:
            return
        model = self.model
        col = self.col()
        # get by ids (some missing), in insertion order, with their records
        for asked in (IDS[:3], IDS[2:9:2] + ["nope"], IDS):
            got = self._get(ids=asked)
            want = [i for i in model if i in asked]
            assert got["ids"] == want
            assert got["documents"] == [model[i][0] for i in want]
            assert [m or {} for m in got["metadatas"]] == [model[i][1] for i in want]
        assert col.count() == len(model)
        # ids and a filter together
        got = set(self._get(ids=IDS[:6], where={"s": "red"})["ids"])
        assert got == {i for i in IDS[:6] if i in model and model[i][1].get("s") == "red"}
        # equality filters, answered by the equality index on every segment
        for v in STRS:
            assert set(self._get(where={"s": v})["ids"]) == set(self._ids_where(lambda d, m: m.get("s") == v))
            assert set(self._get(where={"s": {"$ne": v}})["ids"]) == set(
                self._ids_where(lambda d, m: m.get("s") != v))
        for j in range(4):
            assert set(self._get(where={"i": j})["ids"]) == set(self._ids_where(lambda d, m: m.get("i") == j))
        assert set(self._get(where={"i": {"$in": [0, 2]}})["ids"]) == set(
            self._ids_where(lambda d, m: m.get("i") in (0, 2)))
        assert set(self._get(where={"s": {"$nin": ["red", "blue"]}})["ids"]) == set(
            self._ids_where(lambda d, m: m.get("s") not in ("red", "blue")))
        assert set(self._get(where={"b": True})["ids"]) == set(self._ids_where(lambda d, m: m.get("b") is True))
        assert set(self._get(where={"$and": [{"s": "green"}, {"i": {"$gte": 1}}, {"b": False}]})["ids"]) == set(
            self._ids_where(lambda d, m: m.get("s") == "green" and m.get("i", -1) >= 1 and m.get("b") is False))
        # document filters, narrowed by the trigram index
        for needle in NEEDLES:
            has = set(self._ids_where(lambda d, m: d is not None and needle in d))
            assert set(self._get(where_document={"$contains": needle})["ids"]) == has
            assert set(self._get(where_document={"$not_contains": needle})["ids"]) == set(model) - has
        rx = re.compile(r"alpha\w*|gamma")
        has = set(self._ids_where(lambda d, m: d is not None and rx.search(d) is not None))
        assert set(self._get(where_document={"$not_regex": r"alpha\w*|gamma"})["ids"]) == set(model) - has
        assert set(self._get(where={"s": "red"}, where_document={"$not_contains": "beta"})["ids"]) == (
            set(self._ids_where(lambda d, m: m.get("s") == "red")) - has_beta(model))


def has_beta(model):
    return {i for i, (d, _m) in model.items() if d is not None and "beta" in d}


def test_lookups_state_machine(monkeypatch):
    monkeypatch.setattr(segmod, "EQUALITY_MIN_ROWS", 0)
    monkeypatch.setattr(segmod, "TRIGRAM_LAZY_MIN_ROWS", 0)
    run_state_machine_as_test(
        LookupMachine,
        settings=settings(max_examples=int(os.environ.get("LOOKUP_EXAMPLES", "20")), stateful_step_count=25,
                          deadline=None, suppress_health_check=list(HealthCheck)),
    )


# ------------------------------------------------------ compatibility


def test_segments_without_id_index_file_still_open(tmp_path):
    """A store written before ids.idx existed (the file removed here) opens, answers
    by id, and accepts updates and deletes of those rows."""
    s = gleandb.Settings(memtable_max_rows=50, index_min_rows=10)
    client = gleandb.PersistentClient(str(tmp_path), settings=s)
    col = client.create_collection("coll", embedding_function=None)
    ids = [f"r{i}" for i in range(120)]
    col.add(ids=ids, embeddings=[[float(i), 0.0] for i in range(120)], metadatas=[{"k": i % 7} for i in range(120)])
    col.flush()
    client.close()
    gleandb.ClientAPI.clear_system_cache()
    files = [os.path.join(d, f) for d, _s, fs in os.walk(tmp_path) for f in fs if f == segmod.IDS_FILE]
    assert files, "flushed segments carry an id index"
    for f in files:
        os.remove(f)
    client = gleandb.PersistentClient(str(tmp_path), settings=s)
    col = client.get_collection("coll", embedding_function=None)
    got = col.get(ids=["r5", "r119", "r0", "missing"], include=["metadatas"])
    assert got["ids"] == ["r0", "r5", "r119"] and got["metadatas"] == [{"k": 0}, {"k": 5}, {"k": 0}]
    col.update(ids=["r5"], metadatas=[{"k": 100}])
    col.delete(ids=["r0"])
    assert col.get(ids=["r0", "r5"], include=["metadatas"])["metadatas"] == [{"k": 100}]
    assert col.count() == 119
    assert sorted(col.get(where={"k": 100})["ids"]) == ["r5"]
    client.close()
    gleandb.ClientAPI.clear_system_cache()


WHERES = [
    {"s": "red"}, {"s": {"$ne": "blue"}}, {"s": {"$in": ["red", "green", "nope"]}}, {"s": {"$nin": ["red"]}},
    {"i": 2}, {"i": 2.0}, {"i": 2.5}, {"i": {"$in": [0, 3]}}, {"i": {"$in": [1.5, 3.0]}}, {"i": {"$ne": 1}},
    {"b": True}, {"b": {"$ne": False}}, {"b": {"$in": [False]}},
    {"$and": [{"s": "green"}, {"i": {"$gte": 1}}]}, {"$or": [{"s": "red"}, {"b": False}]},
    {"$and": [{"i": 1}, {"s": {"$in": ["red", "blue"]}}, {"b": True}]},
]


@settings(max_examples=30, deadline=None)
@given(st.lists(metas, min_size=1, max_size=80), st.integers(0, 2**32 - 1))
def test_filters_with_equality_index_equal_scans(mds, seed):
    """Filter.evaluate with the equality indexes gives the scan's answer, with and
    without a ``within`` narrowing."""
    from gleandb.engine.segment import build_table
    from gleandb.index.filters import parse_column_name

    n = len(mds)
    table = build_table([f"i{j}" for j in range(n)], np.arange(n), [None] * n, [m or None for m in mds], [None] * n)
    built = {}

    def values(name):
        tag = parse_column_name(name)[0]
        if tag not in ("s", "i", "b"):
            return None
        if name not in built:
            built[name] = EqualityIndex.build(tag, table.column(name))
        return built[name]

    within = np.random.default_rng(seed).random(n) < 0.5
    for where in WHERES:
        f = compile_filter(where, None)
        full = f.evaluate(table)
        assert (f.evaluate(table, values=values) == full).all(), where
        assert (f.evaluate(table, within=within, values=values)[within] == full[within]).all(), where
