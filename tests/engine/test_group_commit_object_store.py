"""Group commit: writers that queue while a group is being made durable share the next one,
and a group is visible to readers only once durable."""

import threading
import time

import numpy as np
import pytest

from gleandb.errors import ObjectStoreUnavailableError
from gleandb.engine.store import CollectionStore, StoreParams
from gleandb.engine.wal import WalBatch, iter_records
from gleandb.engine.worker import BackgroundWorker
from gleandb.storage.memory import MemoryStorage


class GatedObjectStorage(MemoryStorage):
    """Memory that behaves like object storage for the WAL (no appends, one object per group)
    and holds each WAL PUT until the test opens the gate."""

    appendable = False

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Semaphore(0)
        self.fail = False
        self.wal_puts = []

    @property
    def durable(self):
        return True

    def put_if_absent(self, key, data):
        if "/wal/" in key:
            self.entered.release()
            assert self.gate.wait(30)
            if self.fail:
                raise ObjectStoreUnavailableError(f"injected failure of {key}")
            self.wal_puts.append(key)
        return super().put_if_absent(key, data)


def _adder(id_):
    def build(st):
        if id_ in st.existing([id_]):
            return None
        b = WalBatch(seq=0, put_ids=[id_], put_rids=[st.next_rid])
        b.put_embeddings = np.ones((1, 4), "float32")
        b.put_documents, b.put_metadatas, b.put_uris = [None], [None], [None]
        return b
    return build


@pytest.fixture
def gated():
    storage = GatedObjectStorage()
    worker = BackgroundWorker("test")
    store = CollectionStore(storage, "collections/c/", StoreParams(memtable_max_rows=10_000), worker)
    yield storage, store
    storage.gate.set()
    store.close()
    worker.stop()


def _ids(store):
    return sorted(i for v in store.snapshot() for i, dead in zip(v.seg.ids_list(), (
        v.deleted if v.deleted is not None else [False] * v.seg.n)) if not dead)


def test_writers_queued_behind_a_put_share_the_next_group(gated):
    storage, store = gated
    first = threading.Thread(target=store.commit, args=(_adder("first"),))
    first.start()
    assert storage.entered.acquire(timeout=30)  # group 1 is waiting on its PUT
    assert _ids(store) == []  # applied for the writers, not yet visible to readers
    others = [threading.Thread(target=store.commit, args=(_adder(f"w{i}"),)) for i in range(7)]
    for t in others:
        t.start()
    time.sleep(0.3)  # let them all queue behind the lock
    storage.gate.set()
    for t in [first] + others:
        t.join(30)
    assert len(storage.wal_puts) == 2  # two PUTs for eight writes
    assert _ids(store) == sorted(["first"] + [f"w{i}" for i in range(7)])
    seqs = [b.seq for key in storage.list("collections/c/wal/") for b in iter_records(storage.read_log(key))]
    assert seqs == list(range(1, 9))


def test_a_failed_group_fails_every_write_in_it_and_leaves_no_trace(gated):
    storage, store = gated
    storage.gate.set()
    store.commit(_adder("before"))
    storage.gate.clear()
    storage.fail = True
    errors = []

    def write(id_):
        try:
            store.commit(_adder(id_))
        except ObjectStoreUnavailableError as e:
            errors.append((id_, e))

    threads = [threading.Thread(target=write, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    assert storage.entered.acquire(timeout=30)
    time.sleep(0.2)
    storage.gate.set()
    for t in threads:
        t.join(30)
    assert sorted(i for i, _ in errors) == [f"w{i}" for i in range(4)]
    assert _ids(store) == ["before"] and store.count() == 1 and store.seq == 1
    storage.fail = False
    store.commit(_adder("after"))  # numbering continues from the last durable write
    assert _ids(store) == ["after", "before"] and store.seq == 2
