"""CachedStorage: immutable objects are fetched once, the byte bounds hold, hits and misses are
counted, mutable keys always pass through, and cached objects outlive an unreachable store."""

from __future__ import annotations

import os

import pytest

from gleandb.storage.base import StorageError
from gleandb.storage.cache import CachedStorage, is_immutable
from gleandb.storage.memory import MemoryStorage


class Counting(MemoryStorage):
    """Memory storage that counts reads and can be switched off (an unreachable store)."""

    def __init__(self):
        super().__init__()
        self.reads: list[str] = []
        self.down = False

    def get(self, key):
        if self.down:
            raise StorageError(f"connection refused reading {key}")
        self.reads.append(key)
        return super().get(key)

    def exists(self, key):
        if self.down:
            raise StorageError("connection refused")
        return super().exists(key)


SEG = "segments/s-1/records.arrow"
MASK = "masks/c-s-1-2.npy"
MANIFEST = "collections/c1/manifests/00000000000000000003.json"
WAL = "collections/c1/wal/00000000000000000001-ab.log"
CATALOG = "catalog/log-00000000000000000001"


def test_which_keys_are_immutable():
    assert all(is_immutable(k) for k in (SEG, MASK, MANIFEST, "collections/c1/segments/s-2/vectors.f32"))
    assert not any(is_immutable(k) for k in (WAL, CATALOG, "catalog.json"))


def test_immutable_fetched_once_mutable_passes_through():
    inner = Counting()
    inner.put(SEG, b"x" * 10)
    inner.put(CATALOG, b"v1")
    c = CachedStorage(inner, memory_bytes=1 << 20)
    assert c.get(SEG) == b"x" * 10 and c.get(SEG) == b"x" * 10 and c.get_range(SEG, 2, 3) == b"xxx"
    assert inner.reads.count(SEG) == 1
    assert c.get(CATALOG) == b"v1"
    inner.put(CATALOG, b"v2")
    assert c.get(CATALOG) == b"v2"  # never cached
    st = c.stats()
    assert (st["hits"], st["misses"], st["fetched_bytes"]) == (2, 1, 10)


def test_memory_bound_evicts_least_recently_used():
    inner = Counting()
    for i in range(4):
        inner.put(f"segments/s{i}/records.arrow", bytes([i]) * 100)
    c = CachedStorage(inner, memory_bytes=250)
    for i in range(3):
        c.get(f"segments/s{i}/records.arrow")
    c.get("segments/s1/records.arrow")  # s1 is now more recent than s2
    c.get("segments/s3/records.arrow")  # evicts s2 (s0 went when s2 came in)
    st = c.stats()
    assert st["memory_bytes"] <= 250 and st["memory_objects"] == 2
    before = len(inner.reads)
    c.get("segments/s1/records.arrow")
    assert len(inner.reads) == before  # kept
    c.get("segments/s2/records.arrow")
    assert len(inner.reads) == before + 1  # evicted, fetched again
    assert c.stats()["evictions"] >= 2


def test_disk_tier_bound_mmap_and_restart(tmp_path):
    inner = Counting()
    for i in range(5):
        inner.put(f"segments/s{i}/records.arrow", bytes([65 + i]) * 100)
    d = tmp_path / "cache"
    c = CachedStorage(inner, memory_bytes=0, disk_dir=str(d), disk_bytes=300)
    for i in range(5):
        buf = c.get_buffer(f"segments/s{i}/records.arrow")
        assert bytes(buf) == bytes([65 + i]) * 100
    files = os.listdir(d)
    assert sum(os.path.getsize(d / f) for f in files) <= 300 and len(files) == 3
    assert c.stats()["disk_bytes"] <= 300
    path = c.local_path("segments/s4/records.arrow")
    assert path is not None and open(path, "rb").read() == b"E" * 100
    # a new process finds the disk tier warm: no fetch for what it holds
    inner.reads.clear()
    c2 = CachedStorage(inner, memory_bytes=0, disk_dir=str(d), disk_bytes=300)
    assert bytes(c2.get_buffer("segments/s4/records.arrow")) == b"E" * 100
    assert inner.reads == [] and c2.stats()["hits"] == 1


def test_cached_objects_survive_an_unreachable_store(tmp_path):
    inner = Counting()
    inner.put(SEG, b"seg")
    inner.put(MASK, b"mask")
    c = CachedStorage(inner, memory_bytes=1 << 20, disk_dir=str(tmp_path / "c"))
    c.get(SEG)
    inner.down = True
    assert c.get(SEG) == b"seg" and c.exists(SEG)
    with pytest.raises(StorageError, match="connection refused"):
        c.get(MASK)


def test_writes_and_deletes_drop_the_cached_copy():
    inner = Counting()
    inner.put(SEG, b"old")
    c = CachedStorage(inner, memory_bytes=1 << 20)
    assert c.get(SEG) == b"old"
    c.put(SEG, b"new")
    assert c.get(SEG) == b"new"
    c.delete(SEG)
    assert not c.exists(SEG)


def test_bad_bounds_named():
    with pytest.raises(ValueError, match="memory_bytes.*-1"):
        CachedStorage(MemoryStorage(), memory_bytes=-1)
