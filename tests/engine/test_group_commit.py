"""Group commit: concurrent writers share one fsync, in queue order, all or nothing per group,
and readers see a group only once it is durable (engine/store.py ``commit``)."""

import errno
import os
import random
import threading
import time

import numpy as np
import pytest

import gleandb
from gleandb.engine.wal import iter_records
from gleandb.storage.base import LogWriter

DIM = 4


def _emb(k: int) -> list[list[float]]:
    return [[float(k), 1.0, 0.0, -1.0]]


class _Log(LogWriter):
    """A real log writer whose ``sync`` first asks the test's ``Gate``."""

    def __init__(self, inner: LogWriter, gate: "Gate"):
        self.inner, self.gate = inner, gate

    def append(self, data: bytes) -> None:
        self.inner.append(data)

    def sync(self) -> None:
        self.gate.on_sync(self)
        self.inner.sync()

    def truncate(self, size: int) -> None:
        self.inner.truncate(size)

    def close(self) -> None:
        self.inner.close()

    @property
    def size(self) -> int:
        return self.inner.size


class Gate:
    """Storage wrapper for a store's WAL: counts syncs, can hold the first one until the test
    releases it (so that other writers queue up behind it) and can fail a later one."""

    def __init__(self, storage, hold_first: bool = True, fail_sync: int | None = None):
        self.storage = storage
        self.syncs = 0
        self.entered = threading.Event()  # the first sync has started
        self.release = threading.Event()
        if not hold_first:
            self.release.set()
        self.fail_sync = fail_sync  # 1-based number of the sync that raises EIO
        self.keys: list[str] = []  # the log files opened through this wrapper
        self.sizes: list[int] = []

    def on_sync(self, log: "_Log") -> None:
        self.sizes.append(log.inner.size)  # the log's size before this sync
        self.syncs += 1
        n = self.syncs
        if n == 1:
            self.entered.set()
            assert self.release.wait(60), "the test never released the first sync"
        if n == self.fail_sync:
            raise OSError(errno.EIO, "injected fsync failure")

    def open_log(self, key: str) -> LogWriter:
        self.keys.append(key)
        return _Log(self.storage.open_log(key), self)

    def __getattr__(self, name):
        return getattr(self.storage, name)


def _gated(col, **kw) -> Gate:
    """Route the collection's WAL through a ``Gate`` (from its next log file on)."""
    st = col._store
    gate = Gate(st.wal.storage, **kw)
    st.wal.rotate()
    st.wal.storage = gate
    return gate


def _client(path, **kw):
    return gleandb.PersistentClient(path=str(path), settings=gleandb.Settings(**kw))


def _queued(col, n: int, errors: list, timeout: float = 60) -> None:
    """Wait until ``n`` calls are in the collection's writer queue."""
    deadline = time.monotonic() + timeout
    while len(col._store._queue) < n:
        assert not errors, errors
        assert time.monotonic() < deadline, f"{len(col._store._queue)} writers queued, expected {n}"
        time.sleep(0.002)


def _run(fn, errors: list) -> threading.Thread:
    def target():
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - reported to the test
            errors.append(e)

    t = threading.Thread(target=target)
    t.start()
    return t


def _lead_then_queue(col, gate: Gate, calls: list, errors: list) -> list[threading.Thread]:
    """Start ``calls[0]``, hold its sync, start the others one by one (each queued before the
    next starts, so queue order is list order); the caller releases ``gate``."""
    threads = [_run(calls[0], errors)]
    assert gate.entered.wait(60)
    for i, call in enumerate(calls[1:], start=2):
        threads.append(_run(call, errors))
        _queued(col, i, errors)
    return threads


def test_queued_writers_share_one_fsync_and_are_visible_only_once_durable(tmp_path):
    client = _client(tmp_path / "s")
    col = client.create_collection("col", embedding_function=None)
    gate = _gated(col)
    errors: list = []
    n = 6
    calls = [lambda k=k: col.add(ids=[f"id{k}"], embeddings=_emb(k), metadatas=[{"k": k}]) for k in range(n)]
    threads = _lead_then_queue(col, gate, calls, errors)
    # the first write is in its fsync and five more wait behind it: readers see none of them
    assert col.count() == 0
    assert col.get(ids=["id0"])["ids"] == []
    gate.release.set()
    for t in threads:
        t.join(60)
    assert not errors
    assert gate.syncs == 2  # the first alone, then the five queued ones together
    assert col._store.stats["wal_records"] == n and col._store.stats["wal_syncs"] == 2
    got = col.get(include=["metadatas"])
    assert got["ids"] == [f"id{k}" for k in range(n)]  # queue order = insertion order
    assert [m["k"] for m in got["metadatas"]] == list(range(n))
    client.close()
    again = _client(tmp_path / "s").get_collection("col")
    assert again.get()["ids"] == [f"id{k}" for k in range(n)]


def test_same_id_in_one_group_applies_in_queue_order(tmp_path):
    client = _client(tmp_path / "s")
    col = client.create_collection("col", embedding_function=None)
    col.add(ids=["x"], embeddings=_emb(0), metadatas=[{"a": 0, "keep": "yes"}], documents=["x0"])
    gate = _gated(col)
    errors: list = []
    calls = [
        lambda: col.add(ids=["lead"], embeddings=_emb(9)),
        lambda: col.upsert(ids=["x"], embeddings=_emb(1), metadatas=[{"a": 1}]),  # merges: keep stays
        lambda: col.update(ids=["x"], metadatas=[{"b": 2}]),
        lambda: col.delete(ids=["x"]),
        lambda: col.upsert(ids=["x"], embeddings=_emb(3), metadatas=[{"c": 3}]),  # new row after the delete
        lambda: col.update(ids=["x"], metadatas=[{"d": 4}]),
        lambda: col.add(ids=["y"], embeddings=_emb(5), documents=["first"]),
        lambda: col.add(ids=["y"], embeddings=_emb(6), documents=["second"]),  # y exists by then: skipped
        lambda: col.upsert(ids=["z"], embeddings=_emb(7), metadatas=[{"v": 1}]),
        lambda: col.delete(ids=["z"]),
    ]
    threads = _lead_then_queue(col, gate, calls, errors)
    gate.release.set()
    for t in threads:
        t.join(60)
    assert not errors
    assert gate.syncs == 2

    def check(c):
        got = c.get(include=["metadatas", "documents", "embeddings"])
        rows = {i: (m, d, list(e)) for i, m, d, e in zip(got["ids"], got["metadatas"], got["documents"],
                                                         got["embeddings"])}
        assert set(rows) == {"lead", "x", "y"}
        assert rows["x"][0] == {"c": 3, "d": 4} and rows["x"][1] is None and rows["x"][2] == _emb(3)[0]
        assert rows["y"][1] == "first" and rows["y"][2] == _emb(5)[0]
        # the upsert after the delete inserted x anew: it comes after lead in insertion order
        assert got["ids"] == ["lead", "x", "y"]

    check(col)
    client.close()
    check(_client(tmp_path / "s").get_collection("col"))  # the WAL replays in the same order


def test_failed_fsync_fails_the_whole_group_and_leaves_no_trace(tmp_path):
    client = _client(tmp_path / "s")
    col = client.create_collection("col", embedding_function=None)
    gate = _gated(col, fail_sync=2)
    errors: list = []
    calls = [lambda: col.add(ids=["lead"], embeddings=_emb(0))]
    calls += [lambda k=k: col.upsert(ids=[f"g{k}"], embeddings=_emb(k)) for k in range(4)]
    calls += [lambda: col.delete(ids=["lead"])]
    threads = _lead_then_queue(col, gate, calls, errors)
    gate.release.set()
    threads[0].join(60)
    for t in threads[1:]:
        t.join(60)
    # every member of the second group failed with the injected error, the first did not
    assert len(errors) == 5
    assert all(isinstance(e, OSError) and e.errno == errno.EIO for e in errors)
    assert len({id(e) for e in errors}) == 5  # each thread raises its own copy
    assert col.get()["ids"] == ["lead"]
    assert col.count() == 1
    # the log file was cut back to the end of the first group's record
    key, path = gate.keys[0], tmp_path / "s" / gate.keys[0]
    assert os.path.getsize(path) == gate.sizes[0] > 0
    assert [b.seq for b in iter_records(path.read_bytes())] == [1]  # the lead's record only
    # later writes work, in a new log file (nothing is ever appended after a failed record)
    col.upsert(ids=["after"], embeddings=_emb(8), metadatas=[{"ok": True}])
    assert gate.syncs == 3
    assert col.get()["ids"] == ["lead", "after"]
    client.close()
    again = _client(tmp_path / "s").get_collection("col")
    got = again.get(include=["metadatas"])
    assert got["ids"] == ["lead", "after"] and got["metadatas"][1] == {"ok": True}


def test_bad_input_fails_only_its_own_request(tmp_path):
    client = _client(tmp_path / "s")
    col = client.create_collection("col", embedding_function=None)
    gate = _gated(col)
    errors: list = []
    calls = [
        lambda: col.add(ids=["lead"], embeddings=_emb(0)),
        lambda: col.add(ids=["a"], embeddings=_emb(1)),
        lambda: col.add(ids=["bad"], embeddings=[[1.0, 2.0]]),  # wrong dimension: rejected when resolved
        lambda: col.add(ids=["b"], embeddings=_emb(2)),
    ]
    threads = _lead_then_queue(col, gate, calls, errors)
    gate.release.set()
    for t in threads:
        t.join(60)
    assert len(errors) == 1 and "dimension" in str(errors[0])
    assert col.get()["ids"] == ["lead", "a", "b"]
    assert gate.syncs == 2
    client.close()
    assert _client(tmp_path / "s").get_collection("col").get()["ids"] == ["lead", "a", "b"]


@pytest.mark.parametrize("seed", [1, 2])
def test_random_concurrent_ops_match_a_model_in_commit_order(tmp_path, seed):
    """Writers on overlapping pairs of ids; each call's batch seq (its place in the WAL) is
    recorded, and the final state must equal a model that applies the calls in that order.
    Meanwhile a reader checks that it never sees half of a call (both ids of a pair always
    agree), and memtable freezes happen during the run."""
    client = _client(tmp_path / "s", memtable_max_rows=40, index_min_rows=30)
    col = client.create_collection("col", embedding_function=None)
    store = col._store
    local = threading.local()
    real_commit = store.commit

    def commit(build):
        b = real_commit(build)
        local.seq = b.seq if b is not None and (b.put_ids or b.delete_ids) else None
        return b

    store.commit = commit
    log: list[tuple[int, str, int, dict | None]] = []  # (seq, op, pair, metadata)
    log_lock = threading.Lock()
    errors: list = []
    stop = threading.Event()
    torn: list = []

    def writer(w: int) -> None:
        rng = random.Random(seed * 100 + w)
        for i in range(40):
            k = rng.randrange(6)
            ids = [f"p{k}a", f"p{k}b"]
            op = rng.choice(["upsert", "upsert", "update", "delete"])
            md = {rng.choice("uvw"): w * 1000 + i} if op != "delete" else None
            local.seq = None
            if op == "delete":
                col.delete(ids=ids)
            elif op == "upsert":
                col.upsert(ids=ids, embeddings=_emb(k) * 2, metadatas=[md, md])
            else:
                col.update(ids=ids, metadatas=[md, md])
            if local.seq is not None:
                with log_lock:
                    log.append((local.seq, op, k, md))

    def reader() -> None:
        while not stop.is_set():
            got = col.get(include=["metadatas"])
            rows = dict(zip(got["ids"], got["metadatas"]))
            for k in range(6):
                a, b = rows.get(f"p{k}a", "absent"), rows.get(f"p{k}b", "absent")
                if a != b:
                    torn.append((k, a, b))

    threads = [_run(lambda w=w: writer(w), errors) for w in range(6)]
    r = _run(reader, errors)
    for t in threads:
        t.join(120)
    stop.set()
    r.join(60)
    assert not errors and not torn
    seqs = [s for s, *_ in log]
    assert len(set(seqs)) == len(seqs)
    model: dict[str, dict] = {}
    for _seq, op, k, md in sorted(log, key=lambda x: x[0]):
        for id_ in (f"p{k}a", f"p{k}b"):
            if op == "delete":
                model.pop(id_, None)
            elif op == "upsert":
                model[id_] = {**model.get(id_, {}), **md}
            elif id_ in model:
                model[id_] = {**model[id_], **md}
    got = col.get(include=["metadatas"])
    assert dict(zip(got["ids"], got["metadatas"])) == model
    client.close()
    got = _client(tmp_path / "s").get_collection("col").get(include=["metadatas"])
    assert dict(zip(got["ids"], got["metadatas"])) == model


def test_ephemeral_store_commits_concurrently(tmp_path):
    client = gleandb.EphemeralClient()
    col = client.create_collection("gc-ephemeral", embedding_function=None)
    errors: list = []
    threads = [_run(lambda w=w: [col.add(ids=[f"w{w}-{i}"], embeddings=_emb(i)) for i in range(20)], errors)
               for w in range(4)]
    for t in threads:
        t.join(60)
    assert not errors
    assert col.count() == 80
    client.delete_collection("gc-ephemeral")
