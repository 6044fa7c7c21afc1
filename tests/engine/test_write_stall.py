"""A writer faster than the background thread waits once ``max_frozen`` persists are
queued (LevelDB's write stall), so frozen segments, each holding its rows in memory,
cannot pile up; and it never waits for an explicit flush, nor forever."""

from __future__ import annotations

import threading
import time

import numpy as np

import gleandb
from gleandb.engine import store as store_mod
from gleandb.engine.store import FROZEN, CollectionStore


def _settings():
    return gleandb.Settings(memtable_max_rows=100, index_min_rows=100_000, compaction_min_segments=100)


def _add(col, i):
    x = np.random.default_rng(i).standard_normal((100, 4)).astype(np.float32)
    col.add(ids=[f"{i}-{j}" for j in range(100)], embeddings=x)


def _gate_persists(monkeypatch):
    gate = threading.Event()
    orig = CollectionStore._persist_segment

    def slow(self, name):
        gate.wait(30)
        return orig(self, name)

    monkeypatch.setattr(CollectionStore, "_persist_segment", slow)
    return gate


def test_writer_waits_while_max_frozen_persists_are_queued(tmp_path, monkeypatch):
    gate = _gate_persists(monkeypatch)
    client = gleandb.PersistentClient(str(tmp_path / "db"), settings=_settings())
    col = client.create_collection("col", embedding_function=None)
    store = col._store
    assert store.params.max_frozen == 2
    done = threading.Event()

    def writer():
        for i in range(6):
            _add(col, i)
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not done.is_set():
        time.sleep(0.05)
    assert not done.is_set()  # the third full memtable waits for the queued persists
    assert store._persists_queued == 2
    assert sum(v.state == FROZEN for v in store.snapshot()) <= 2
    assert col.count() == 300  # rows before the stall stay readable (two frozen, one in the memtable)
    gate.set()
    t.join(60)
    assert done.is_set()
    client.flush()
    assert col.count() == 600 and store._persists_queued == 0
    assert not any(v.state == FROZEN for v in store.snapshot())
    client.close()
    gleandb.ClientAPI.clear_system_cache()


def test_flush_never_stalls_and_a_stall_ends_after_its_limit(tmp_path, monkeypatch):
    gate = _gate_persists(monkeypatch)
    monkeypatch.setattr(store_mod, "FREEZE_STALL_MAX_S", 0.5)
    client = gleandb.PersistentClient(str(tmp_path / "db"), settings=_settings())
    col = client.create_collection("col", embedding_function=None)
    store = col._store
    for i in range(3):  # explicit flushes queue three persists without waiting
        col.add(ids=[f"f{i}"], embeddings=[[1.0, 0.0, 0.0, float(i)]])
        store.flush()  # schedules a persist; client.flush() would also wait for it
    assert store._persists_queued == 3
    t0 = time.monotonic()
    _add(col, 7)  # fills the memtable: waits at most FREEZE_STALL_MAX_S, then freezes anyway
    assert time.monotonic() - t0 >= 0.4
    assert store._persists_queued == 4
    gate.set()
    store.worker.wait_idle()
    assert col.count() == 103 and store._persists_queued == 0
    client.close()
    gleandb.ClientAPI.clear_system_cache()
