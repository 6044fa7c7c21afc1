"""The one storage interface every byte of a store goes through.

Engine code names objects by keys ("collections/<id>/segments/<name>.arrow"),
never by paths, so the same engine runs on a local directory, in memory, or
(later) on object storage. The operations are the ones object stores offer:
whole and ranged reads, atomic puts, a conditional put that is the commit point
of a manifest, list and delete. Logs (the WAL) are the exception object stores
lack, so they have their own small append interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, Iterable


class StorageError(Exception):
    """An I/O failure below the engine (missing key, failed write)."""


class KeyNotFound(StorageError, KeyError):
    pass


class LogWriter(ABC):
    """Append-only log file. ``append`` is durable once ``sync`` returns."""

    @abstractmethod
    def append(self, data: bytes) -> None: ...

    @abstractmethod
    def sync(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def truncate(self, size: int) -> None:
        """Cut the log back to ``size`` bytes after a failed append or sync (best effort)."""

    @property
    @abstractmethod
    def size(self) -> int: ...


class Storage(ABC):
    """Key → bytes store. Keys use '/' separators and never start with '/'."""

    # False on object storage: a log there is a series of objects, so the WAL writes one
    # object per group of writes (``gleandb.engine.wal``) instead of appending to a file
    appendable = True

    @abstractmethod
    def get(self, key: str) -> bytes:
        """Whole object; raises KeyNotFound."""

    def get_buffer(self, key: str):
        """Object as a buffer-protocol object; local storage memory-maps it."""
        return self.get(key)

    def local_path(self, key: str) -> str | None:
        """A local file holding ``key``, for libraries that read files themselves
        (faiss), or None when the object is not a local file."""
        return None

    @abstractmethod
    def get_range(self, key: str, start: int, length: int) -> bytes: ...

    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Atomically create or replace ``key``; durable when it returns."""

    def put_many(self, items: "Iterable[tuple[str, bytes | list]]") -> None:
        """``put`` each (key, data); all durable when it returns. Not atomic as a group (a
        failure may leave some written): for files that only a later commit point names.
        Local storage syncs each folder once instead of once per file. ``data`` may also
        be a list of bytes-like parts, the file being their concatenation (an index file
        written from its arrays' own memory: ``arrays.pack_parts``); local storage writes
        them in turn, other storages join them (``joined``)."""
        for key, data in items:
            self.put(key, joined(data))

    def put_from_file(self, key: str, write: "Callable[[str], None]") -> None:
        """Create ``key`` from a file that ``write(path)`` produces, for libraries that
        serialise to files (faiss). Local storage writes it in place, atomically; others
        read the file back and ``put`` its bytes."""
        import os
        import tempfile

        fd, path = tempfile.mkstemp(prefix="gleandb-")
        os.close(fd)
        try:
            write(path)
            with open(path, "rb") as f:
                self.put(key, f.read())
        finally:
            os.unlink(path)

    @abstractmethod
    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create ``key`` only if it does not exist (the commit primitive).

        Returns False, writing nothing, when it exists already.
        """

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` (a folder, ending in '/'), sorted."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; missing keys are ignored."""

    def delete_prefix(self, prefix: str) -> None:
        for key in self.list(prefix):
            self.delete(key)

    @abstractmethod
    def size_of(self, key: str) -> int: ...

    @abstractmethod
    def open_log(self, key: str) -> LogWriter:
        """A new, empty append-only log at ``key`` (must not exist)."""

    @abstractmethod
    def read_log(self, key: str) -> bytes:
        """All bytes written to the log so far (torn tails included)."""

    @property
    def durable(self) -> bool:
        """True when puts and syncs survive a process crash."""
        return True


class WrappedStorage(Storage):
    """A ``Storage`` that passes every call to ``inner``: the base of wrappers that change a
    few calls (``ReadOnlyStorage`` refuses writes, ``CachedStorage`` caches immutable reads)
    and inherit the rest."""

    def __init__(self, inner: Storage):
        self.inner = inner

    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def get_buffer(self, key: str):
        return self.inner.get_buffer(key)

    def local_path(self, key: str) -> str | None:
        return self.inner.local_path(key)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        return self.inner.get_range(key, start, length)

    def put(self, key: str, data: bytes) -> None:
        self.inner.put(key, data)

    def put_many(self, items: "Iterable[tuple[str, bytes]]") -> None:
        self.inner.put_many(items)

    def put_from_file(self, key: str, write: "Callable[[str], None]") -> None:
        self.inner.put_from_file(key, write)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        return self.inner.put_if_absent(key, data)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def list(self, prefix: str) -> list[str]:
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def delete_prefix(self, prefix: str) -> None:
        self.inner.delete_prefix(prefix)

    def size_of(self, key: str) -> int:
        return self.inner.size_of(key)

    def open_log(self, key: str) -> LogWriter:
        return self.inner.open_log(key)

    def read_log(self, key: str) -> bytes:
        return self.inner.read_log(key)

    @property
    def durable(self) -> bool:
        return self.inner.durable

    @property
    def appendable(self) -> bool:
        return self.inner.appendable


def joined(data) -> bytes:
    """``data`` as one bytes object: a list of bytes-like parts (``put_many``) concatenated,
    anything else bytes-like copied as it is."""
    return b"".join(data) if isinstance(data, list) else bytes(data)
