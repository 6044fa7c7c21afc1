"""Stateful model test of the record API (add/upsert/update/delete/get/query/count).

A hypothesis ``RuleBasedStateMachine`` drives random call sequences against the engine
(``db`` fixture: gleandb, or chromadb with GLEANDB_TEST_TARGET=chromadb) and against a
plain in-memory model, and compares every answer:

* ``get``: exact ids in insertion order (an upsert/update of an existing id keeps its
  position; delete + re-add moves it to the end), documents, metadatas, embeddings;
* ``query``: every returned id matches the filters, distances ascending and equal to the
  exact distance for that id, recall@k >= 0.95 against exact search in the model;
* ``count`` and ``delete``'s ``{"deleted": n}``.

Also closes and reopens the PersistentClient (persistence), calls ``client.flush()``
where the engine has it (gleandb: memtable -> segments), and a second variant runs with a
tiny memtable (``Settings(memtable_max_rows=N)``, gleandb only).
"""

import os
import shutil
import sys
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from filter_reference import matches  # noqa: E402

DIM = 4
IDS = [f"id{i}" for i in range(10)]
COLLECTION = "state_machine"
EMB_TOL = 1e-5  # embeddings read back (chromadb's cosine space re-scales them slightly)
DIST_TOL = 1e-4  # distance: |got - exact| <= DIST_TOL * max(1, |exact|)

# ---------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------

GRID = [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0]  # exact in float32
vectors = st.lists(st.sampled_from(GRID), min_size=DIM, max_size=DIM)

documents = st.one_of(
    st.none(),
    st.text(alphabet="abcA ", min_size=0, max_size=6),
)

meta_values = {
    "n": st.one_of(st.integers(-3, 3), st.sampled_from([-1.5, 0.0, 1.0, 2.0, 2.5])),
    "s": st.sampled_from(["a", "b", "c", "ab"]),
    "b": st.booleans(),
    "l": st.lists(st.integers(0, 3), min_size=1, max_size=3),
    "lf": st.lists(st.sampled_from([0.5, 1.0, 2.0]), min_size=1, max_size=2),
    "ls": st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3),
    # scalar <-> array on the same key: writing one type replaces the other
    "m": st.one_of(st.sampled_from(["a", "b"]), st.lists(st.sampled_from(["a", "b"]), min_size=1, max_size=2)),
}
META_KEYS = sorted(meta_values)


@st.composite
def metadata_dicts(draw, allow_none_values):
    keys = draw(st.lists(st.sampled_from(META_KEYS), min_size=1, max_size=3, unique=True))
    out = {}
    for k in keys:
        if allow_none_values and draw(st.integers(0, 4)) == 0:
            out[k] = None
        else:
            out[k] = draw(meta_values[k])
    return out


def metadatas_or_none(allow_none_values):
    return st.one_of(st.none(), metadata_dicts(allow_none_values))


# --- where -----------------------------------------------------------------

num_operand = st.one_of(st.integers(-3, 3), st.sampled_from([-1.5, 0.0, 1.0, 2.0, 2.5]))


@st.composite
def where_leaf(draw):
    key = draw(st.sampled_from(META_KEYS + ["absent"]))
    if key in ("n", "absent"):
        op = draw(st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "short"]))
        if op in ("$in", "$nin"):
            v = draw(
                st.one_of(
                    st.lists(st.integers(-3, 3), min_size=1, max_size=3),
                    st.lists(st.sampled_from([-1.5, 1.0, 2.0, 2.5]), min_size=1, max_size=3),
                )
            )
        else:
            v = draw(num_operand)
    elif key == "s":
        op = draw(st.sampled_from(["$eq", "$ne", "$in", "$nin", "short"]))
        if op in ("$in", "$nin"):
            v = draw(st.lists(meta_values["s"], min_size=1, max_size=3))
        else:
            v = draw(meta_values["s"])
    elif key == "b":
        op = draw(st.sampled_from(["$eq", "$ne", "short"]))
        # an int operand never matches a bool value
        v = draw(st.one_of(st.booleans(), st.sampled_from([0, 1])))
    elif key == "l":
        op = draw(st.sampled_from(["$contains", "$not_contains", "$eq", "$ne"]))
        v = draw(st.integers(0, 3))
    elif key == "lf":
        op = draw(st.sampled_from(["$contains", "$not_contains"]))
        v = draw(st.sampled_from([0.5, 1.0, 2.0]))
    else:  # ls, m
        op = draw(st.sampled_from(["$contains", "$not_contains", "$eq", "$ne", "$in", "$nin"]))
        if op in ("$in", "$nin"):
            v = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=2))
        else:
            v = draw(st.sampled_from(["a", "b", "c"]))
    if op == "short":
        return {key: v}
    return {key: {op: v}}


def wheres():
    return st.recursive(
        where_leaf(),
        lambda children: st.builds(
            lambda op, items: {op: items},
            st.sampled_from(["$and", "$or"]),
            st.lists(children, min_size=2, max_size=3),
        ),
        max_leaves=4,
    )


REGEXES = ["^a", "b$", "a.b", "(?i)ab", "[bc]+a", "A|c", "^$", "a b", "^[^a]*$"]


@st.composite
def where_doc_leaf(draw):
    op = draw(st.sampled_from(["$contains", "$not_contains", "$regex", "$not_regex"]))
    if op in ("$contains", "$not_contains"):
        v = draw(st.sampled_from(["a", "b", "ab", "A", "ca", " "]))
    else:
        v = draw(st.sampled_from(REGEXES))
    return {op: v}


def where_documents():
    return st.recursive(
        where_doc_leaf(),
        lambda children: st.builds(
            lambda op, items: {op: items},
            st.sampled_from(["$and", "$or"]),
            st.lists(children, min_size=2, max_size=3),
        ),
        max_leaves=3,
    )


id_lists = st.lists(st.sampled_from(IDS), min_size=1, max_size=5, unique=True)

# ---------------------------------------------------------------------------
# model helpers
# ---------------------------------------------------------------------------


def f32(vec):
    return [float(x) for x in np.asarray(vec, dtype=np.float32)]


def exact_distance(space, a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if space == "l2":
        return float(np.sum((a - b) ** 2))
    if space == "ip":
        return float(1.0 - np.dot(a, b))
    return float(1.0 - np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def close_dist(got, exact):
    return abs(got - exact) <= DIST_TOL * max(1.0, abs(exact))


def merge_metadata(old, new):
    """update/upsert semantics: key-by-key merge, None deletes; empty -> None."""
    if new is None:
        return old
    merged = dict(old or {})
    for k, v in new.items():
        if v is None:
            merged.pop(k, None)
        else:
            merged[k] = v
    return merged or None


def norm_meta(m):
    """Metadata as read back: None for 'no metadata'; lists stay lists."""
    if m is None:
        return None
    return {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in m.items()} or None


def assert_same_value(got, want, where):
    """Metadata values: same type (int stays int, float stays float, bool stays bool)."""
    assert got == want, f"{where}: got {got!r}, want {want!r}"
    if isinstance(want, list):
        assert [type(x) for x in got] == [type(x) for x in want], f"{where}: element types {got!r} vs {want!r}"
    else:
        assert type(got) is type(want), f"{where}: type {type(got)} vs {type(want)} ({got!r} vs {want!r})"


def assert_same_metadata(got, want, where):
    got = norm_meta(got)
    assert (got is None) == (want is None), f"{where}: metadata {got!r}, want {want!r}"
    if want is not None:
        assert sorted(got) == sorted(want), f"{where}: metadata keys {got!r}, want {want!r}"
        for k in want:
            assert_same_value(got[k], want[k], f"{where}[{k!r}]")


def assert_same_embedding(got, want, where):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{where}: shape {got.shape} vs {want.shape}"
    assert np.allclose(got, want, rtol=EMB_TOL, atol=EMB_TOL), f"{where}: embedding {got} vs {want}"


# ---------------------------------------------------------------------------
# the machine
# ---------------------------------------------------------------------------


class RecordMachine(RuleBasedStateMachine):
    db = None  # module under test, set by the test function
    client_settings = None  # optional Settings object (tiny memtable variant)

    def __init__(self):
        super().__init__()
        self.path = tempfile.mkdtemp(prefix="gleandb-sm-")
        self.client = self._open()
        self.col = None
        self.model = {}  # id -> {"embedding", "document", "metadata"}; dict order = insertion order
        self.space = "l2"
        self.hits = 0
        self.expected = 0

    # --- client lifecycle ---

    def _open(self):
        if self.client_settings is not None:
            return self.db.PersistentClient(path=self.path, settings=self.client_settings)
        return self.db.PersistentClient(path=self.path)

    def _close(self):
        close = getattr(self.client, "close", None)
        if close is not None:
            close()

    def teardown(self):
        try:
            self._close()
        finally:
            shutil.rmtree(self.path, ignore_errors=True)
        if self.expected:
            misses = self.expected - self.hits
            if self.expected >= 20:
                assert self.hits / self.expected >= 0.95, f"recall {self.hits}/{self.expected}"
            else:
                assert misses <= 1, f"recall {self.hits}/{self.expected}"

    @initialize(space=st.sampled_from(["l2", "cosine", "ip"]))
    def create(self, space):
        self.space = space
        self.col = self.client.create_collection(
            COLLECTION, metadata={"hnsw:space": space}, embedding_function=None
        )

    # --- helpers ---

    def vec(self, v):
        if self.space == "cosine" and not any(v):
            v = [1.0] + list(v[1:])
        return f32(v)

    def model_ids(self, where=None, where_document=None):
        return [
            i
            for i, r in self.model.items()
            if (where is None and where_document is None)
            or matches(where, where_document, r["metadata"], r["document"])
        ]

    def check_get_result(self, res, want_ids, what):
        assert list(res["ids"]) == want_ids, f"{what}: ids {list(res['ids'])} != {want_ids}"
        assert res["documents"] is not None and res["metadatas"] is not None and res["embeddings"] is not None
        assert len(res["documents"]) == len(res["metadatas"]) == len(res["embeddings"]) == len(want_ids)
        for pos, i in enumerate(want_ids):
            r = self.model[i]
            assert res["documents"][pos] == r["document"], f"{what}: document of {i}: {res['documents'][pos]!r} != {r['document']!r}"
            assert_same_metadata(res["metadatas"][pos], r["metadata"], f"{what}: metadata of {i}")
            assert_same_embedding(res["embeddings"][pos], r["embedding"], f"{what}: embedding of {i}")

    # --- writes ---

    @rule(
        ids=id_lists,
        data=st.data(),
        with_docs=st.booleans(),
        with_metas=st.booleans(),
    )
    def add(self, ids, data, with_docs, with_metas):
        embs = [self.vec(data.draw(vectors)) for _ in ids]
        docs = [data.draw(documents) for _ in ids] if with_docs else None
        metas = [data.draw(metadatas_or_none(False)) for _ in ids] if with_metas else None
        self.col.add(ids=ids, embeddings=embs, documents=docs, metadatas=metas)
        for n, i in enumerate(ids):
            if i in self.model:
                continue  # add ignores existing ids
            self.model[i] = {
                "embedding": embs[n],
                "document": docs[n] if docs else None,
                "metadata": norm_meta(metas[n]) if metas else None,
            }

    @rule(
        ids=id_lists,
        data=st.data(),
        with_docs=st.booleans(),
        with_metas=st.booleans(),
    )
    def upsert(self, ids, data, with_docs, with_metas):
        embs = [self.vec(data.draw(vectors)) for _ in ids]
        docs = [data.draw(documents) for _ in ids] if with_docs else None
        metas = [data.draw(metadatas_or_none(True)) for _ in ids] if with_metas else None
        self.col.upsert(ids=ids, embeddings=embs, documents=docs, metadatas=metas)
        for n, i in enumerate(ids):
            doc = docs[n] if docs else None
            meta = metas[n] if metas else None
            if i in self.model:
                r = self.model[i]
                r["embedding"] = embs[n]
                if doc is not None:
                    r["document"] = doc
                r["metadata"] = merge_metadata(r["metadata"], meta)
            else:
                self.model[i] = {"embedding": embs[n], "document": doc, "metadata": merge_metadata(None, meta)}

    @rule(
        ids=id_lists,
        data=st.data(),
        with_embs=st.booleans(),
        with_docs=st.booleans(),
        with_metas=st.booleans(),
    )
    def update(self, ids, data, with_embs, with_docs, with_metas):
        # documents without embeddings would be re-embedded by the embedding function:
        # keep the embeddings explicit whenever documents are sent.
        if with_docs:
            with_embs = True
        if not (with_embs or with_metas):
            with_metas = True
        embs = [self.vec(data.draw(vectors)) for _ in ids] if with_embs else None
        docs = [data.draw(documents) for _ in ids] if with_docs else None
        metas = [data.draw(metadatas_or_none(True)) for _ in ids] if with_metas else None
        self.col.update(ids=ids, embeddings=embs, documents=docs, metadatas=metas)
        for n, i in enumerate(ids):
            if i not in self.model:
                continue  # update ignores missing ids
            r = self.model[i]
            if embs is not None:
                r["embedding"] = embs[n]
            if docs is not None and docs[n] is not None:
                r["document"] = docs[n]
            if metas is not None:
                r["metadata"] = merge_metadata(r["metadata"], metas[n])

    @rule(ids=id_lists)
    def delete_ids(self, ids):
        res = self.col.delete(ids=ids)
        for i in ids:
            self.model.pop(i, None)
        if isinstance(res, dict) and "deleted" in res:
            # chromadb (local) reports the number of ids sent
            assert res["deleted"] == len(ids), res

    @rule(
        where=st.one_of(st.none(), wheres()),
        where_document=st.one_of(st.none(), where_documents()),
        ids=st.one_of(st.none(), id_lists),
        limit=st.one_of(st.none(), st.integers(0, 3)),
    )
    def delete_filtered(self, where, where_document, ids, limit):
        if where is None and where_document is None:
            where = {"n": {"$gte": 0}}
        kwargs = dict(where=where, where_document=where_document)
        if ids is not None:
            kwargs["ids"] = ids
        if limit is not None:
            kwargs["limit"] = limit
        res = self.col.delete(**kwargs)
        doomed = [i for i in self.model_ids(where, where_document) if ids is None or i in ids]
        if limit is not None:
            doomed = doomed[:limit]  # the first matches in insertion order
        for i in doomed:
            del self.model[i]
        if isinstance(res, dict) and "deleted" in res:
            assert res["deleted"] == len(doomed), (res, doomed)

    # --- reads ---

    @rule(
        ids=st.one_of(st.none(), id_lists),
        where=st.one_of(st.none(), wheres()),
        where_document=st.one_of(st.none(), where_documents()),
        limit=st.one_of(st.none(), st.integers(0, 6)),
        offset=st.one_of(st.none(), st.integers(0, 6)),
    )
    def get(self, ids, where, where_document, limit, offset):
        res = self.col.get(
            ids=ids,
            where=where,
            where_document=where_document,
            limit=limit,
            offset=offset,
            include=["embeddings", "documents", "metadatas"],
        )
        want = self.model_ids(where, where_document)
        if ids is not None:
            want = [i for i in want if i in ids]  # insertion order, not request order
        start = offset or 0
        want = want[start:] if limit is None else want[start : start + limit]
        self.check_get_result(res, want, f"get(ids={ids}, where={where}, where_document={where_document}, limit={limit}, offset={offset})")

    @rule(
        data=st.data(),
        nq=st.integers(1, 2),
        n_results=st.integers(1, 12),
        where=st.one_of(st.none(), st.none(), wheres()),
        where_document=st.one_of(st.none(), st.none(), where_documents()),
    )
    def query(self, data, nq, n_results, where, where_document):
        qs = []
        for _ in range(nq):
            if self.model and data.draw(st.booleans()):
                qs.append(list(self.model[data.draw(st.sampled_from(sorted(self.model)))]["embedding"]))
            else:
                qs.append(self.vec(data.draw(vectors)))
        res = self.col.query(
            query_embeddings=qs,
            n_results=n_results,
            where=where,
            where_document=where_document,
            include=["distances", "documents", "metadatas", "embeddings"],
        )
        what = f"query(n_results={n_results}, where={where}, where_document={where_document})"
        assert len(res["ids"]) == nq, what
        allowed = self.model_ids(where, where_document)
        for qn, q in enumerate(qs):
            ids = list(res["ids"][qn])
            dists = [float(d) for d in res["distances"][qn]]
            k = min(n_results, len(allowed))
            assert len(ids) == len(dists) <= k, f"{what}: {len(ids)} results, at most {k} expected: {ids}"
            assert len(set(ids)) == len(ids), f"{what}: duplicate ids {ids}"
            exact = {i: exact_distance(self.space, q, self.model[i]["embedding"]) for i in allowed}
            for pos, (i, d) in enumerate(zip(ids, dists)):
                assert i in exact, f"{what}: returned {i!r}, which does not exist or does not match the filter"
                assert close_dist(d, exact[i]), f"{what}: distance of {i} is {d}, exact {exact[i]}"
                r = self.model[i]
                assert res["documents"][qn][pos] == r["document"], f"{what}: document of {i}"
                assert_same_metadata(res["metadatas"][qn][pos], r["metadata"], f"{what}: metadata of {i}")
                assert_same_embedding(res["embeddings"][qn][pos], r["embedding"], f"{what}: embedding of {i}")
            for a, b in zip(dists, dists[1:]):
                assert a <= b + DIST_TOL * max(1.0, abs(b)), f"{what}: distances not ascending {dists}"
            if k:
                kth = sorted(exact.values())[k - 1]
                hits = sum(1 for i in ids if exact[i] <= kth + DIST_TOL * max(1.0, abs(kth)))
                self.hits += hits
                self.expected += k

    @rule()
    def get_all_and_count(self):
        res = self.col.get(include=["embeddings", "documents", "metadatas"])
        self.check_get_result(res, list(self.model), "get()")
        assert self.col.count() == len(self.model)

    # --- lifecycle ---

    @rule()
    def reopen(self):
        self._close()
        self.client = self._open()
        self.col = self.client.get_collection(COLLECTION, embedding_function=None)

    @precondition(lambda self: hasattr(self.client, "flush"))
    @rule()
    def flush(self):
        self.client.flush()

    @invariant()
    def count_matches(self):
        if self.col is not None:
            assert self.col.count() == len(self.model)

    @invariant()
    def recall_so_far(self):
        if self.expected >= 20:
            assert self.hits / self.expected >= 0.95, f"recall {self.hits}/{self.expected}"


SETTINGS = settings(
    max_examples=int(os.environ.get("GLEANDB_SM_EXAMPLES", "120")),
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    report_multiple_bugs=False,
)


def test_record_state_machine(db):
    machine = type("RecordMachineFor_" + db.__name__, (RecordMachine,), {"db": db})
    run_state_machine_as_test(machine, settings=SETTINGS)


def tiny_memtable_settings(db, rows=3):
    """gleandb.Settings(memtable_max_rows=rows), or None where the engine has no such knob."""
    if db.__name__.startswith("chromadb"):
        return None
    make = getattr(db, "Settings", None)
    if make is None:
        return None
    try:
        s = make(memtable_max_rows=rows)
    except Exception:
        return None
    return s if getattr(s, "memtable_max_rows", None) == rows else None


def test_record_state_machine_tiny_memtable(db):
    s = tiny_memtable_settings(db)
    if s is None:
        pytest.skip(f"{db.__name__} has no Settings(memtable_max_rows=...)")
    machine = type(
        "RecordMachineTinyMemtableFor_" + db.__name__,
        (RecordMachine,),
        {"db": db, "client_settings": s},
    )
    run_state_machine_as_test(machine, settings=SETTINGS)
