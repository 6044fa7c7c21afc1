"""Stateful test of forks: random interleavings of writes, flush, compact, fork, fork of a
fork, fork of a past version, delete-collection, reopen and vacuum, against a model.

The model is a dict per collection (id -> record, in insertion order). Versions are
checked too: after every write the model is recorded under the store's WAL seq, and a
version published with ``manifest.seq == s`` must equal the model recorded at ``s``.
After every step: every collection equals its model, and garbage collection never
deleted a file that a retained manifest of a live collection names.
"""

import copy
import os
import shutil
import sys
import tempfile

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test

import gleandb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fork_checks import missing_referenced_files  # noqa: E402

DIM = 4
IDS = [f"id{i}" for i in range(8)]
GRID = [-1.0, -0.5, 0.0, 0.5, 1.0]
MAX_COLLECTIONS = 6

vectors = st.lists(st.sampled_from(GRID), min_size=DIM, max_size=DIM)
id_lists = st.lists(st.sampled_from(IDS), min_size=1, max_size=4, unique=True)


def tiny_settings(count, seconds):
    # tiny memtable and index threshold: segments, masks, compaction and GC all happen
    return gleandb.Settings(
        memtable_max_rows=3,
        index_min_rows=4,
        compaction_min_segments=2,
        version_retention_count=count,
        version_retention_seconds=seconds,
    )


class ForkMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.path = tempfile.mkdtemp(prefix="gleandb-forks-sm-")
        self.settings = tiny_settings(2, 0)
        self.client = None
        self.models: dict[str, dict] = {}  # name -> {id: (embedding, document, metadata)}
        self.history: dict[str, dict[int, dict]] = {}  # name -> {seq: model then}
        self.cols: dict[str, object] = {}
        self.n_made = 0

    def _open(self):
        gleandb.ClientAPI.clear_system_cache()
        self.client = gleandb.PersistentClient(self.path, settings=self.settings)
        self.cols = {n: self.client.get_collection(n, embedding_function=None) for n in self.models}

    def teardown(self):
        try:
            if self.client is not None:
                self.client.close()
        finally:
            gleandb.ClientAPI.clear_system_cache()
            shutil.rmtree(self.path, ignore_errors=True)

    def _new_name(self):
        self.n_made += 1
        return f"col-{self.n_made}"

    def _record(self, name):
        self.history.setdefault(name, {})[self.cols[name]._store.seq] = copy.deepcopy(self.models[name])

    @initialize(retention=st.sampled_from([(1, 0), (2, 0), (3, 0), (2, 3600)]))
    def start(self, retention):
        self.settings = tiny_settings(*retention)
        self._open()
        name = self._new_name()
        self.cols[name] = self.client.create_collection(name, embedding_function=None)
        self.models[name] = {}
        self._record(name)

    def _pick(self, data):
        return data.draw(st.sampled_from(sorted(self.models)))

    # ------------------------------------------------------------- writes

    @rule(data=st.data(), ids=id_lists)
    def add(self, data, ids):
        name = self._pick(data)
        embs = [data.draw(vectors) for _ in ids]
        docs = [f"{name}:{i}:{data.draw(st.integers(0, 9))}" for i in ids]
        self.cols[name].add(ids=ids, embeddings=embs, documents=docs, metadatas=[{"k": len(d)} for d in docs])
        m = self.models[name]
        for i, e, d in zip(ids, embs, docs):
            if i not in m:
                m[i] = (e, d, {"k": len(d)})
        self._record(name)

    @rule(data=st.data(), ids=id_lists)
    def upsert(self, data, ids):
        name = self._pick(data)
        embs = [data.draw(vectors) for _ in ids]
        docs = [f"u{name}:{i}:{data.draw(st.integers(0, 9))}" for i in ids]
        self.cols[name].upsert(ids=ids, embeddings=embs, documents=docs, metadatas=[{"k": len(d)} for d in docs])
        m = self.models[name]
        for i, e, d in zip(ids, embs, docs):
            m[i] = (e, d, {"k": len(d)})  # an existing id keeps its position
        self._record(name)

    @rule(data=st.data(), ids=id_lists)
    def update(self, data, ids):
        name = self._pick(data)
        docs = [f"x{name}:{i}" for i in ids]
        embs = [data.draw(vectors) for _ in ids]
        self.cols[name].update(ids=ids, embeddings=embs, documents=docs)
        m = self.models[name]
        for i, e, d in zip(ids, embs, docs):
            if i in m:
                m[i] = (e, d, m[i][2])
        self._record(name)

    @rule(data=st.data(), ids=id_lists)
    def delete(self, data, ids):
        name = self._pick(data)
        self.cols[name].delete(ids=ids)
        for i in ids:
            self.models[name].pop(i, None)
        self._record(name)

    # ---------------------------------------------------------- lifecycle

    @rule()
    def flush(self):
        self.client.flush()

    @rule()
    def compact(self):
        self.client.compact()

    @precondition(lambda self: len(self.models) < MAX_COLLECTIONS)
    @rule(data=st.data())
    def fork(self, data):
        src = self._pick(data)
        name = self._new_name()
        self.cols[name] = self.cols[src].fork(name)
        self.models[name] = copy.deepcopy(self.models[src])
        self.history[name] = {0: copy.deepcopy(self.models[name]), 1: copy.deepcopy(self.models[name])}

    @precondition(lambda self: len(self.models) < MAX_COLLECTIONS)
    @rule(data=st.data(), pick=st.integers(0, 1000))
    def fork_past_version(self, data, pick):
        src = self._pick(data)
        store = self.cols[src]._store
        # a background flush may publish (and retention drop an old version) at any time:
        # let it finish so the version drawn is still retained when forked
        store.worker.wait_idle()
        manifests = store._manifests
        if not manifests:
            return
        m = manifests[pick % len(manifests)]  # how many are retained depends on timing: no draw here
        want = self.history[src].get(m.seq)
        assert want is not None, f"{src}: no model recorded at seq {m.seq} (version {m.version})"
        name = self._new_name()
        self.cols[name] = self.cols[src].fork(name, version=m.version)
        self.models[name] = copy.deepcopy(want)
        self.history[name] = {0: copy.deepcopy(want), 1: copy.deepcopy(want)}

    @precondition(lambda self: len(self.models) > 1)
    @rule(data=st.data())
    def delete_collection(self, data):
        name = self._pick(data)
        self.client.delete_collection(name)
        del self.models[name], self.cols[name], self.history[name]

    @rule()
    def reopen(self):
        self.client.close()
        self._open()

    @rule(count=st.sampled_from([None, 1, 2]), seconds=st.sampled_from([None, 0]))
    def vacuum(self, count, seconds):
        self.client.vacuum(retention_count=count, retention_seconds=seconds)

    # ---------------------------------------------------------- invariants

    @invariant()
    def collections_equal_models(self):
        for name, model in self.models.items():
            got = self.cols[name].get(include=["embeddings", "documents", "metadatas"])
            assert list(got["ids"]) == list(model), f"{name}: {list(got['ids'])} != {list(model)}"
            for pos, i in enumerate(got["ids"]):
                e, d, md = model[i]
                assert got["documents"][pos] == d, (name, i)
                assert got["metadatas"][pos] == md, (name, i)
                assert np.allclose(got["embeddings"][pos], e), (name, i)

    @invariant()
    def gc_kept_every_referenced_file(self):
        if self.client is not None:
            # at rest: a publish running meanwhile may prune the version the check is reading
            # (and, rightly, delete its files) between the check's reads
            self.client.engine.worker.wait_idle()
            assert missing_referenced_files(self.path) == []


SETTINGS = settings(
    max_examples=int(os.environ.get("GLEANDB_FORK_SM_EXAMPLES", "60")),
    stateful_step_count=35,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    report_multiple_bugs=False,
)


def test_fork_state_machine():
    run_state_machine_as_test(ForkMachine, settings=SETTINGS)
