"""Flushes come before compactions on the background worker (LevelDB's rule): a frozen
memtable's persist submitted while a long compaction runs is run between the
compaction's steps, not after it, and the two interleave without losing or
duplicating a row."""

from __future__ import annotations

import threading

import numpy as np

import gleandb
from gleandb.engine import segment
from gleandb.engine.worker import BackgroundWorker


def test_run_urgent_runs_urgent_jobs_inside_the_running_job_once_and_in_order():
    w = BackgroundWorker("test-worker")
    ran: list[str] = []
    inside = threading.Event()
    go = threading.Event()

    def long_job():
        ran.append("long-start")
        inside.set()
        go.wait(10)
        w.run_urgent()
        ran.append("long-end")

    try:
        w.submit(long_job)
        assert inside.wait(10)
        w.submit(lambda: ran.append("plain"))  # not urgent: waits for its turn
        w.submit(lambda: ran.append("u1"), urgent=True)
        w.submit(lambda: ran.append("u2"), urgent=True)
        w.run_urgent()  # not the worker's thread: does nothing
        assert ran == ["long-start"]
        go.set()
        w.wait_idle()
        assert ran == ["long-start", "u1", "u2", "long-end", "plain"]
        w.submit(lambda: ran.append("u3"), urgent=True)  # no long job: runs in its turn
        w.wait_idle()
        assert ran[-1] == "u3" and ran.count("u3") == 1
    finally:
        w.stop()


def test_a_flush_during_an_extending_compaction_is_persisted_before_it_ends(tmp_path, monkeypatch):
    monkeypatch.setattr(segment, "_CHUNK", 50)  # the compaction's new rows go in many chunks
    gleandb.ClientAPI.clear_system_cache()
    client = gleandb.PersistentClient(str(tmp_path / "db"), settings=gleandb.Settings(
        memtable_max_rows=100_000, index_min_rows=100, compaction_min_segments=100))
    col = client.create_collection("prio")
    rng = np.random.default_rng(3)
    X = rng.standard_normal((1400, 16)).astype(np.float32)
    for lo, hi in ((0, 600), (600, 800), (800, 1000)):
        col.add(ids=[f"r{i}" for i in range(lo, hi)], embeddings=X[lo:hi], documents=[f"row {i}" for i in range(lo, hi)])
        client.flush()
    store = col._store
    real = store.worker.run_urgent
    seen = {"calls": 0, "flushes_at_first": None, "flushes_later": None}

    def between():  # on the worker thread, inside the compaction
        seen["calls"] += 1
        if seen["calls"] == 1:  # a writer fills and flushes a memtable now
            seen["flushes_at_first"] = store.stats["flushes"]
            col.add(ids=[f"r{i}" for i in range(1000, 1400)], embeddings=X[1000:1400],
                    documents=[f"row {i}" for i in range(1000, 1400)])
            store.flush()
        real()
        if seen["calls"] == 2:
            seen["flushes_later"] = store.stats["flushes"]

    monkeypatch.setattr(store.worker, "run_urgent", between)
    compactions = store.stats["compactions"]
    client.compact()
    client.flush()
    assert store.stats["compactions"] == compactions + 1 and store.stats["compactions_extended"] == 1
    assert seen["calls"] > 2
    # the flush ran inside the compaction, between two of its chunks
    assert seen["flushes_later"] == seen["flushes_at_first"] + 1
    got = col.get(include=["embeddings", "documents"])
    order = np.argsort([int(i[1:]) for i in got["ids"]])
    assert [got["ids"][i] for i in order] == [f"r{i}" for i in range(1400)]
    np.testing.assert_allclose(np.asarray(got["embeddings"])[order], X, rtol=1e-5, atol=1e-6)
    client.clear_system_cache()
    reopened = gleandb.PersistentClient(str(tmp_path / "db"))
    assert reopened.get_collection("prio").count() == 1400
