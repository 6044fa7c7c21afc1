"""A storage wrapper that refuses every write: what a query node (a follower) reads through.

A follower shares the writer's files, so one stray write (a checkpoint, a sweep of "dead"
files, a torn-tail cleanup) could destroy data the writer still needs. Wrapping its storage
turns any such bug into a clear error instead of a silent change.
"""

from __future__ import annotations

from gleandb.errors import ReadOnlyStoreError
from gleandb.storage.base import LogWriter, Storage


class ReadOnlyStorage(Storage):
    def __init__(self, inner: Storage):
        self.inner = inner

    def _refuse(self, op: str, key: str) -> ReadOnlyStoreError:
        return ReadOnlyStoreError(
            f"refused {op} of {key!r}: this store is open read-only (a query node reads the writer's "
            "files and never writes them); send writes to the writer")

    # reads pass through
    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def get_buffer(self, key: str):
        return self.inner.get_buffer(key)

    def local_path(self, key: str) -> str | None:
        return self.inner.local_path(key)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        return self.inner.get_range(key, start, length)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def list(self, prefix: str) -> list[str]:
        return self.inner.list(prefix)

    def size_of(self, key: str) -> int:
        return self.inner.size_of(key)

    def read_log(self, key: str) -> bytes:
        return self.inner.read_log(key)

    @property
    def durable(self) -> bool:
        return self.inner.durable

    @property
    def appendable(self) -> bool:
        """Whether the backing store appends to logs (False on object storage)."""
        return getattr(self.inner, "appendable", True)

    # writes are refused
    def put(self, key: str, data: bytes) -> None:
        raise self._refuse("put", key)

    def put_many(self, items) -> None:
        for key, _data in items:
            raise self._refuse("put", key)

    def put_from_file(self, key: str, write) -> None:
        raise self._refuse("put", key)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        raise self._refuse("conditional put", key)

    def delete(self, key: str) -> None:
        raise self._refuse("delete", key)

    def delete_prefix(self, prefix: str) -> None:
        raise self._refuse("delete", prefix)

    def open_log(self, key: str) -> LogWriter:
        raise self._refuse("log open", key)
