"""A storage wrapper that refuses every write: what a query node (a follower) reads through.

A follower shares the writer's files, so one stray write (a checkpoint, a sweep of "dead"
files, a torn-tail cleanup) could destroy data the writer still needs. Wrapping its storage
turns any such bug into a clear error instead of a silent change.
"""

from __future__ import annotations

from gleandb.errors import ReadOnlyStoreError
from gleandb.storage.base import LogWriter, WrappedStorage


class ReadOnlyStorage(WrappedStorage):
    """Reads pass through; every write raises ``ReadOnlyStoreError``."""

    def _refuse(self, op: str, key: str) -> ReadOnlyStoreError:
        return ReadOnlyStoreError(
            f"refused {op} of {key!r}: this store is open read-only (a query node reads the writer's "
            "files and never writes them); send writes to the writer")

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
