"""Follower mode: a read-only engine over the writer's files.

The writer is an ordinary PersistentClient; the follower is a second engine over a second
LocalStorage of the same directory (what a query node process does), so everything between
them goes through the files. Checked: the follower converges to the writer's exact records
after random writes, flushes and compactions; a concurrent reader only ever sees whole write
batches; catalog changes arrive; and the follower never writes a byte.
"""

from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest

import gleandb
from gleandb.api.errors import ReadOnlyStoreError
from gleandb.engine import segment as segment_module
from gleandb.engine.database import Engine
from gleandb.engine.follower import Follower
from gleandb.engine.store import CollectionStore, StoreParams
from gleandb.storage.local import LocalStorage
from gleandb.storage.readonly import ReadOnlyStorage

WAIT_S = 30  # upper bound for convergence on a loaded machine; not a speed expectation
POLL_S = 0.02


class Recording(LocalStorage):
    """Local storage that records every write-side call (a follower must make none)."""

    def __init__(self, root):
        super().__init__(root)
        self.writes: list[str] = []

    def _note(self, op, key):
        self.writes.append(f"{op} {key}")

    def put(self, key, data):
        self._note("put", key)
        return super().put(key, data)

    def put_many(self, items):
        for key, data in items:
            self.put(key, data)

    def put_from_file(self, key, write):
        self._note("put_from_file", key)
        return super().put_from_file(key, write)

    def put_if_absent(self, key, data):
        self._note("put_if_absent", key)
        return super().put_if_absent(key, data)

    def delete(self, key):
        self._note("delete", key)
        return super().delete(key)

    def delete_prefix(self, prefix):
        self._note("delete_prefix", prefix)
        return super().delete_prefix(prefix)

    def open_log(self, key):
        self._note("open_log", key)
        return super().open_log(key)

    def remove_temp_files(self):
        self._note("remove_temp_files", "")


def _follower(path):
    inner = Recording(str(path))
    engine = Engine(ReadOnlyStorage(inner), StoreParams(), path=str(path), read_only=True)
    follower = Follower(engine, POLL_S)
    return engine, follower, inner


def _records(store: CollectionStore) -> dict:
    snap = store.snapshot()
    picks = [(vi, r) for vi, v in enumerate(snap) for r in range(v.seg.n)
             if v.deleted is None or not v.deleted[r]]
    h = CollectionStore.hydrate(snap, picks, {"documents", "metadatas", "embeddings"}, store.dimension)
    return {i: (h.documents[j], h.metadatas[j], tuple(np.asarray(h.embeddings[j], dtype=np.float32).tolist()))
            for j, i in enumerate(h.ids)}


def _writer_records(col) -> dict:
    g = col.get(include=["documents", "metadatas", "embeddings"])
    return {i: (g["documents"][j], g["metadatas"][j], tuple(np.asarray(g["embeddings"][j], dtype=np.float32).tolist()))
            for j, i in enumerate(g["ids"])}


def _store(engine, client, name):
    rec = client.get_collection(name)._record
    return engine.store(rec.id, client._params_for(rec))


def _converge(engine, client, name, want, follower):
    deadline = time.monotonic() + WAIT_S
    while True:
        follower.refresh()
        got = _records(_store(engine, client, name))
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(POLL_S)


@pytest.fixture
def writer(tmp_path):
    path = tmp_path / "store"
    c = gleandb.PersistentClient(str(path), settings=gleandb.Settings(
        memtable_max_rows=40, index_min_rows=30, compaction_min_segments=3))
    yield path, c
    c.close()


def test_follower_converges_to_the_writer_and_never_writes(writer):
    path, w = writer
    col = w.create_collection("docs", embedding_function=None)
    col.add(ids=["seed"], embeddings=[[0.0, 0.0, 1.0]])
    engine, follower, inner = _follower(path)
    rng = random.Random(7)
    ids = [f"id{i}" for i in range(120)]
    try:
        for step in range(12):
            for _ in range(rng.randint(1, 6)):
                op = rng.choice(["add", "upsert", "update", "delete"])
                batch = rng.sample(ids, rng.randint(1, 15))
                emb = [[rng.random(), rng.random(), rng.random()] for _ in batch]
                meta = [{"step": step, "n": rng.randint(0, 9)} for _ in batch]
                docs = [f"doc {b} at {step}" for b in batch]
                if op == "add":
                    col.add(ids=batch, embeddings=emb, metadatas=meta, documents=docs)
                elif op == "upsert":
                    col.upsert(ids=batch, embeddings=emb, metadatas=meta, documents=docs)
                elif op == "update":
                    col.update(ids=batch, metadatas=meta)
                else:
                    col.delete(ids=batch)
            if step % 4 == 3:
                w.flush()
            if step % 6 == 5:
                w.compact()
            want = _writer_records(col)
            assert _converge(engine, w, "docs", want, follower) == want, f"step {step}"
        assert follower.reopens > 0  # flushes and compactions were followed by reopening
        assert follower.failed_polls == 0, follower.last_error
        assert inner.writes == []
        # and a write through the follower is refused, naming why
        store = _store(engine, w, "docs")
        with pytest.raises(ReadOnlyStoreError, match="read-only"):
            store.commit(lambda s: None)
        with pytest.raises(ReadOnlyStoreError, match="writer"):
            engine.catalog.create_database("other", "default_tenant")
        assert inner.writes == []
    finally:
        engine.close()


def test_readers_see_whole_batches_only(writer):
    path, w = writer
    col = w.create_collection("batches", embedding_function=None)
    col.add(ids=["b0-0"], embeddings=[[1.0, 0.0]])
    col.delete(ids=["b0-0"])
    engine, follower, inner = _follower(path)
    follower.start()
    rec = col._record
    params = w._params_for(rec)
    bad: list[str] = []
    reads = [0]
    stop = threading.Event()

    def read():
        while not stop.is_set():
            reads[0] += 1
            store = engine.store(rec.id, params)
            if store._closed:  # swapped by a reopen: take the new one
                continue
            counts: dict[str, int] = {}
            for i in _records(store):
                counts[i.split("-")[0]] = counts.get(i.split("-")[0], 0) + 1
            bad.extend(f"{b}: {n}" for b, n in counts.items() if n != 8)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for b in range(1, 30):
            col.add(ids=[f"b{b}-{j}" for j in range(8)], embeddings=[[float(b), float(j)] for j in range(8)])
            time.sleep(0.005)  # let the reader and the poll run between writes
            if b % 10 == 0:
                col.delete(ids=[f"b{b - 5}-{j}" for j in range(8)])  # a whole batch goes at once too
        want = _writer_records(col)
        assert _converge(engine, w, "batches", want, follower) == want
    finally:
        stop.set()
        reader.join()
        engine.close()
    assert bad == []
    assert reads[0] > 10 and follower.reopens > 0
    assert inner.writes == []


def test_catalog_changes_arrive(writer):
    path, w = writer
    a = w.create_collection("first", embedding_function=None)
    a.add(ids=["x"], embeddings=[[1.0]])
    engine, follower, inner = _follower(path)
    try:
        rec_a = a._record
        assert engine.store(rec_a.id, w._params_for(rec_a)).count() == 1
        b = w.create_collection("second", embedding_function=None)
        b.add(ids=["y", "z"], embeddings=[[1.0], [2.0]])
        # a lookup that misses looks at the files again before answering "not found"
        time.sleep(0.06)
        assert engine.catalog.has_collection_id(b._record.id)
        # a fork (its first manifest lives in the catalog) reads as the writer's fork does
        fork = b.fork("second-fork")
        fork.add(ids=["f"], embeddings=[[3.0]])
        time.sleep(0.02)
        assert engine.catalog.has_collection_id(fork._record.id)
        fstore = engine.store(fork._record.id, w._params_for(fork._record))
        assert _records(fstore) == _writer_records(fork)
        w.delete_collection("first")
        deadline = time.monotonic() + WAIT_S
        while rec_a.id in dict(engine.open_stores()) and time.monotonic() < deadline:
            follower.refresh()
            time.sleep(POLL_S)
        assert rec_a.id not in dict(engine.open_stores())
        assert not engine.catalog.has_collection_id(rec_a.id)
        assert inner.writes == []
    finally:
        engine.close()


class Reads(LocalStorage):
    """Local storage that records which keys were read."""

    def __init__(self, root):
        super().__init__(root)
        self.read: list[str] = []

    def get(self, key):
        self.read.append(key)
        return super().get(key)

    def get_buffer(self, key):
        self.read.append(key)
        return super().get_buffer(key)

    def local_path(self, key):
        self.read.append(key)
        return super().local_path(key)


def test_cold_open_reads_only_what_the_query_needs(tmp_path, monkeypatch):
    # segments written as separate files (a small segment is one ``segment.pack`` holding its
    # text indexes too, so reading it reads them: that case is the next test)
    monkeypatch.setattr(segment_module, "PACK_MAX_ROWS", 0)
    path = tmp_path / "store"
    w = gleandb.PersistentClient(str(path))
    rng = np.random.default_rng(0)
    for name in ("wanted", "other"):
        c = w.create_collection(name, embedding_function=None)
        c.add(ids=[f"{name}{i}" for i in range(300)], embeddings=rng.standard_normal((300, 4)).astype(np.float32),
              documents=[f"text number {i}" for i in range(300)])
    w.flush()
    wanted = w.get_collection("wanted")._record
    other_prefix = f"collections/{w.get_collection('other')._record.id}/"
    params = w._params_for(wanted)
    w.close()
    storage = Reads(str(path))
    engine = Engine(ReadOnlyStorage(storage), StoreParams(), path=str(path), read_only=True)
    try:
        opened_at = len(storage.read)  # the catalog only
        assert all(k.startswith("catalog") for k in storage.read)
        store = engine.store(wanted.id, params)
        seg_keys = [k for k in storage.read[opened_at:] if "segments/" in k]
        text_files = ("fulltext.idx", "trigram.idx")
        assert seg_keys and not any(k.endswith(text_files) for k in storage.read)  # k-NN needs no text index
        assert not any(other_prefix in k for k in storage.read)
        # the other collection's segments were never read
        other_segs = {k for k in storage.list("segments/")} - {k for k in seg_keys}
        assert other_segs and not (other_segs & set(storage.read))
        # a text query reads the text index then, once
        seg = store.snapshot()[0].seg
        assert seg.trigram_index() is not None and seg.fulltext(store.fulltext_config).n == 300
        idx_reads = [k for k in storage.read if k.endswith(text_files)]
        assert sorted(k.rsplit("/", 1)[1] for k in idx_reads) == ["fulltext.idx", "trigram.idx"]
        seg.trigram_index()
        seg.fulltext(store.fulltext_config)
        assert len([k for k in storage.read if k.endswith(text_files)]) == 2
    finally:
        engine.close()


def test_cold_open_of_small_packed_segments_reads_one_file_per_segment(tmp_path):
    path = tmp_path / "store"
    w = gleandb.PersistentClient(str(path))
    c = w.create_collection("small", embedding_function=None)
    c.add(ids=[f"s{i}" for i in range(50)], embeddings=np.ones((50, 4), np.float32),
          documents=[f"text {i}" for i in range(50)])
    w.flush()
    rec = w.get_collection("small")._record
    params = w._params_for(rec)
    w.close()
    storage = Reads(str(path))
    engine = Engine(ReadOnlyStorage(storage), StoreParams(), path=str(path), read_only=True)
    try:
        store = engine.store(rec.id, params)
        seg_reads = [k for k in storage.read if "segments/" in k]
        assert seg_reads and all(k.endswith("segment.pack") for k in seg_reads)
        assert store.snapshot()[0].seg.fulltext(store.fulltext_config).n == 50
        assert [k for k in storage.read if "segments/" in k] == seg_reads  # nothing fetched again
    finally:
        engine.close()


class Ranged(LocalStorage):
    def __init__(self, root):
        super().__init__(root)
        self.ranges: list[tuple[str, int, int]] = []

    def get_range(self, key, start, length):
        self.ranges.append((key, start, length))
        return super().get_range(key, start, length)


def test_wal_is_read_incrementally_and_a_torn_tail_once(writer):
    path, w = writer
    col = w.create_collection("tail", embedding_function=None)
    col.add(ids=["a"], embeddings=[[1.0, 2.0]])
    storage = Ranged(str(path))
    engine = Engine(ReadOnlyStorage(storage), StoreParams(), path=str(path), read_only=True)
    follower = Follower(engine, POLL_S)
    try:
        rec = col._record
        store = engine.store(rec.id, w._params_for(rec))
        follower.refresh()
        col.add(ids=["b"], embeddings=[[3.0, 4.0]])
        storage.ranges.clear()
        follower.refresh()
        assert store.count() == 2
        (key, start, length), = storage.ranges
        assert start > 0  # only the bytes appended since the last poll
        follower.refresh()
        assert len(storage.ranges) == 1  # unchanged: not read again
        # a crash mid-append leaves half a record: read once, never applied, not re-read
        with open(storage._path(key), "ab") as f:
            f.write(b"\x40\x00\x00\x00\x00\x00\x00\x00half")
        follower.refresh()
        follower.refresh()
        assert len(storage.ranges) == 2 and store.count() == 2
        assert follower.failed_polls == 0
    finally:
        engine.close()


class Heads(LocalStorage):
    def __init__(self, root):
        super().__init__(root)
        self.heads: list[str] = []

    def size_of(self, key):
        self.heads.append(key)
        return super().size_of(key)


def test_closed_wal_files_are_not_looked_at_again(tmp_path):
    path = tmp_path / "store"
    w = gleandb.PersistentClient(str(path))
    col = w.create_collection("many", embedding_function=None)
    col.add(ids=["a"], embeddings=[[1.0]])
    rec = col._record
    params = w._params_for(rec)
    w.close()
    for i in range(3):  # each open of the writer starts a new WAL file
        w = gleandb.PersistentClient(str(path))
        w.get_collection("many", embedding_function=None).add(ids=[f"b{i}"], embeddings=[[float(i)]])
        w.close()
    storage = Heads(str(path))
    engine = Engine(ReadOnlyStorage(storage), StoreParams(), path=str(path), read_only=True)
    follower = Follower(engine, POLL_S)
    try:
        store = engine.store(rec.id, params)
        assert store.count() == 4
        wal = [k for k in storage.list(f"collections/{rec.id}/wal/")]
        assert len(wal) == 4
        follower.refresh()
        follower.refresh()
        storage.heads.clear()
        follower.refresh()
        assert [k for k in storage.heads if "/wal/" in k] == [wal[-1]]  # only the newest file
        assert store.count() == 4 and follower.failed_polls == 0
    finally:
        engine.close()
