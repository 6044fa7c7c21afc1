"""In-memory storage for EphemeralClient: the same engine, nothing on disk."""

from __future__ import annotations

import threading

from gleandb.storage.base import KeyNotFound, LogWriter, Storage


class _MemoryLog(LogWriter):
    def __init__(self, store: "MemoryStorage", key: str):
        self._store = store
        self._key = key
        self._buf = bytearray()
        store._objects[key] = self._buf

    def append(self, data: bytes) -> None:
        self._buf.extend(data)

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass

    @property
    def size(self) -> int:
        return len(self._buf)


class MemoryStorage(Storage):
    def __init__(self) -> None:
        self._objects: dict[str, bytes | bytearray] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes:
        try:
            return bytes(self._objects[key])
        except KeyError:
            raise KeyNotFound(key) from None

    def get_buffer(self, key: str):
        try:
            obj = self._objects[key]
        except KeyError:
            raise KeyNotFound(key) from None
        return obj if isinstance(obj, bytes) else bytes(obj)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        return self.get(key)[start : start + length]

    def put(self, key: str, data: bytes) -> None:
        with self._lock:
            self._objects[key] = bytes(data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        with self._lock:
            if key in self._objects:
                return False
            self._objects[key] = bytes(data)
            return True

    def exists(self, key: str) -> bool:
        return key in self._objects

    def list(self, prefix: str) -> list[str]:
        with self._lock:
            return sorted(k for k in self._objects if k.startswith(prefix))

    def delete(self, key: str) -> None:
        with self._lock:
            self._objects.pop(key, None)

    def size_of(self, key: str) -> int:
        try:
            return len(self._objects[key])
        except KeyError:
            raise KeyNotFound(key) from None

    def open_log(self, key: str) -> LogWriter:
        with self._lock:
            return _MemoryLog(self, key)

    def read_log(self, key: str) -> bytes:
        return self.get(key)

    @property
    def durable(self) -> bool:
        return False
