"""A size-bounded cache in front of any storage, for the objects that never change.

Segment files, delete masks and published manifests are immutable once written (new
data gets new keys), so a copy is valid for as long as the key exists: a query node can
keep them in memory and on a local disk and read the backing store (object storage)
only on a miss. Everything else (catalog, WAL, listings, writes) passes through.

Two tiers, each with a byte bound and least-recently-used eviction: memory (``bytes``
objects) and a local directory (one file per key, written atomically, memory-mapped on
read). An object larger than the memory bound is kept on disk only. When the backing
store is unreachable, cached objects are still served; only misses fail.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import threading
import uuid
from collections import OrderedDict

from gleandb.storage.base import Storage, WrappedStorage

_IMMUTABLE_PARTS = ("segments/", "masks/", "manifests/")


def is_immutable(key: str) -> bool:
    """Keys whose bytes never change: segment files, delete masks, published manifests."""
    return any(key.startswith(p) or f"/{p}" in key for p in _IMMUTABLE_PARTS)


class CachedStorage(WrappedStorage):
    def __init__(self, inner: Storage, memory_bytes: int = 256 << 20, disk_dir: str | None = None,
                 disk_bytes: int = 10 << 30):
        if memory_bytes < 0:
            raise ValueError(f"cache memory_bytes must be >= 0, got {memory_bytes!r}")
        if disk_bytes < 0:
            raise ValueError(f"cache disk_bytes must be >= 0, got {disk_bytes!r}")
        self.inner = inner
        self.memory_bytes = int(memory_bytes)
        self.disk_bytes = int(disk_bytes) if disk_dir else 0
        self.disk_dir = os.path.abspath(disk_dir) if disk_dir else None
        self._lock = threading.RLock()
        self._mem: OrderedDict[str, bytes] = OrderedDict()
        self._mem_used = 0
        self._disk: OrderedDict[str, int] = OrderedDict()  # file name -> size, oldest first
        self._disk_used = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.fetched_bytes = 0
        if self.disk_dir:
            os.makedirs(self.disk_dir, exist_ok=True)
            self._load_disk_index()

    # ------------------------------------------------------------- bookkeeping

    def _load_disk_index(self) -> None:
        """Files left by an earlier run count as cached (least recently used first)."""
        entries = []
        for name in os.listdir(self.disk_dir):
            path = os.path.join(self.disk_dir, name)
            if ".tmp-" in name:
                os.unlink(path)
                continue
            st = os.stat(path)
            entries.append((st.st_atime, name, st.st_size))
        for _t, name, size in sorted(entries):
            self._disk[name] = size
            self._disk_used += size
        self._evict_disk()

    @staticmethod
    def _file_name(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    def _disk_path(self, key: str) -> str:
        return os.path.join(self.disk_dir, self._file_name(key))

    def stats(self) -> dict:
        with self._lock:
            total = self.hits + self.misses
            return {
                "hits": self.hits,
                "misses": self.misses,
                "hit_rate": round(self.hits / total, 4) if total else None,
                "evictions": self.evictions,
                "fetched_bytes": self.fetched_bytes,
                "memory_bytes": self._mem_used,
                "memory_limit_bytes": self.memory_bytes,
                "memory_objects": len(self._mem),
                "disk_bytes": self._disk_used,
                "disk_limit_bytes": self.disk_bytes,
                "disk_objects": len(self._disk),
                "disk_dir": self.disk_dir,
            }

    def _remember_memory(self, key: str, data: bytes) -> None:
        if len(data) > self.memory_bytes:
            return
        with self._lock:
            old = self._mem.pop(key, None)
            if old is not None:
                self._mem_used -= len(old)
            self._mem[key] = data
            self._mem_used += len(data)
            while self._mem_used > self.memory_bytes:
                _k, v = self._mem.popitem(last=False)
                self._mem_used -= len(v)
                self.evictions += 1

    def _remember_disk(self, key: str, data: bytes) -> str | None:
        if not self.disk_dir or len(data) > self.disk_bytes:
            return None
        name = self._file_name(key)
        path = os.path.join(self.disk_dir, name)
        tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        with self._lock:
            old = self._disk.pop(name, None)
            if old is not None:
                self._disk_used -= old
            self._disk[name] = len(data)
            self._disk_used += len(data)
            self._evict_disk(keep=name)
        return path

    def _evict_disk(self, keep: str | None = None) -> None:
        while self._disk_used > self.disk_bytes and self._disk:
            name, size = next(iter(self._disk.items()))
            if name == keep and len(self._disk) == 1:
                break
            del self._disk[name]
            self._disk_used -= size
            self.evictions += 1
            try:
                os.unlink(os.path.join(self.disk_dir, name))  # a reader's memory map stays valid
            except FileNotFoundError:
                pass

    def _disk_hit(self, key: str) -> str | None:
        if not self.disk_dir:
            return None
        name = self._file_name(key)
        with self._lock:
            if name not in self._disk:
                return None
            self._disk.move_to_end(name)
        path = os.path.join(self.disk_dir, name)
        return path if os.path.exists(path) else None

    def _fetch(self, key: str) -> bytes:
        data = self.inner.get(key)
        with self._lock:
            self.misses += 1
            self.fetched_bytes += len(data)
        return data

    def _hit(self) -> None:
        with self._lock:
            self.hits += 1

    def _cached_file(self, key: str) -> str | None:
        """A local file holding immutable ``key`` (fetched into the disk tier if needed)."""
        path = self._disk_hit(key)
        if path is not None:
            self._hit()
            return path
        with self._lock:
            data = self._mem.get(key)
        if data is not None:
            self._hit()
        else:
            data = self._fetch(key)
        return self._remember_disk(key, data)

    # --------------------------------------------------------------- reads

    def _memory_hit(self, key: str) -> bytes | None:
        """``key``'s bytes from the memory tier (counted as a hit, marked recently used), or None."""
        with self._lock:
            data = self._mem.get(key)
            if data is not None:
                self._mem.move_to_end(key)
                self.hits += 1
            return data

    def get(self, key: str) -> bytes:
        if not is_immutable(key):
            return self.inner.get(key)
        data = self._memory_hit(key)
        if data is not None:
            return data
        path = self._disk_hit(key)
        if path is not None:
            self._hit()
            with open(path, "rb") as f:
                data = f.read()
            self._remember_memory(key, data)
            return data
        data = self._fetch(key)
        self._remember_memory(key, data)
        self._remember_disk(key, data)
        return data

    def get_buffer(self, key: str):
        if not is_immutable(key):
            return self.inner.get_buffer(key)
        if not self.disk_dir:
            return self.get(key)
        data = self._memory_hit(key)
        if data is not None:
            return data
        path = self._cached_file(key)
        if path is None:  # larger than the disk bound
            return self.get(key)
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                return b""
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)

    def local_path(self, key: str) -> str | None:
        if not is_immutable(key) or not self.disk_dir:
            return self.inner.local_path(key) if not is_immutable(key) else None
        return self._cached_file(key)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        if not is_immutable(key):
            return self.inner.get_range(key, start, length)
        return bytes(self.get(key)[start:start + length])

    def exists(self, key: str) -> bool:
        if is_immutable(key):
            with self._lock:
                if key in self._mem:
                    return True
            if self._disk_hit(key) is not None:
                return True
        return self.inner.exists(key)

    def size_of(self, key: str) -> int:
        if is_immutable(key):
            with self._lock:
                data = self._mem.get(key)
            if data is not None:
                return len(data)
            if self.disk_dir:
                size = self._disk.get(self._file_name(key))
                if size is not None:
                    return size
        return self.inner.size_of(key)

    # -------------------------------------------------------------- writes

    def _forget(self, key: str) -> None:
        with self._lock:
            data = self._mem.pop(key, None)
            if data is not None:
                self._mem_used -= len(data)
            if self.disk_dir:
                name = self._file_name(key)
                size = self._disk.pop(name, None)
                if size is not None:
                    self._disk_used -= size
                    try:
                        os.unlink(os.path.join(self.disk_dir, name))
                    except FileNotFoundError:
                        pass

    def put(self, key: str, data: bytes) -> None:
        self._forget(key)
        self.inner.put(key, data)

    def put_many(self, items) -> None:
        def forgetting():
            for key, data in items:
                self._forget(key)
                yield key, data

        self.inner.put_many(forgetting())

    def put_from_file(self, key: str, write) -> None:
        self._forget(key)
        self.inner.put_from_file(key, write)

    def delete(self, key: str) -> None:
        self._forget(key)
        self.inner.delete(key)

    def delete_prefix(self, prefix: str) -> None:
        with self._lock:
            for key in [k for k in self._mem if k.startswith(prefix)]:
                self._forget(key)
        self.inner.delete_prefix(prefix)
