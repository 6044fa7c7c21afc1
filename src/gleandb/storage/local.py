"""Storage on a local directory: atomic renames, hard-link commits, fsync.

Durability rules (the ones SQLite and LevelDB follow): a new object is written
to a temporary file, fsync'd, then renamed (or hard-linked, for the conditional
put) into place, and the directory is fsync'd so the name survives a crash.

A failed write leaves nothing behind: its temporary file is removed at once, a log
append is cut back to the last whole record, and a full disk (ENOSPC, EDQUOT) is
raised as ``InsufficientStorageError`` naming the store and its free space.
"""

from __future__ import annotations

import errno
import mmap
import os
import shutil
import threading
import uuid
from contextlib import contextmanager
from typing import Iterator

from gleandb.errors import InsufficientStorageError
from gleandb.storage.base import KeyNotFound, LogWriter, Storage, StorageError

_TMP_SUFFIX = ".tmp-"
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


def _human(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover


def disk_full_error(root: str, exc: BaseException) -> InsufficientStorageError:
    """The error a write that hit a full disk raises: what happened, where, how much is free."""
    try:
        free = _human(shutil.disk_usage(root).free)
    except OSError:
        free = "unknown"
    what = "quota exceeded" if getattr(exc, "errno", None) == errno.EDQUOT else "no space left on device"
    return InsufficientStorageError(
        f"Insufficient storage: the disk holding the gleandb store at {root} is full ({what}; "
        f"{free} free). The write was not applied; free some disk space and retry. Reads keep working."
    )


@contextmanager
def _writing(root: str, tmp: str | None = None) -> Iterator[None]:
    """Remove ``tmp`` if the write fails; turn a full disk into InsufficientStorageError."""
    try:
        yield
    except BaseException as exc:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if (isinstance(exc, OSError) and exc.errno in _DISK_FULL) or (
                isinstance(exc, RuntimeError) and "No space left on device" in str(exc)):  # faiss
            raise disk_full_error(root, exc) from exc
        raise


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _LocalLog(LogWriter):
    def __init__(self, path: str, root: str):
        self._root = root
        # O_EXCL: a log is never reopened for append; a torn tail stays a tail.
        with _writing(root):
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        self._size = 0
        with _writing(root):
            _fsync_dir(os.path.dirname(path))

    def append(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            with _writing(self._root):
                while view:
                    n = os.write(self._fd, view)
                    view = view[n:]
        except BaseException:
            self.truncate(self._size)  # no partial record stays behind
            raise
        self._size += len(data)

    def sync(self) -> None:
        with _writing(self._root):
            os.fdatasync(self._fd)

    def truncate(self, size: int) -> None:
        """Cut the log back to ``size`` bytes (best effort: a torn tail is also detected on replay)."""
        try:
            os.ftruncate(self._fd, size)
            self._size = size
        except OSError:
            pass

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    @property
    def size(self) -> int:
        return self._size


class LocalStorage(Storage):
    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        os.makedirs(self.root, exist_ok=True)
        self._made_dirs: set[str] = set()
        self._lock = threading.Lock()

    def _path(self, key: str) -> str:
        if key.startswith("/") or ".." in key.split("/"):
            raise StorageError(f"invalid storage key {key!r}")
        return os.path.join(self.root, *key.split("/"))

    def _ensure_dir(self, path: str) -> None:
        d = os.path.dirname(path)
        if d in self._made_dirs:
            return
        with _writing(self.root):
            self._make_dir(d)
        with self._lock:
            self._made_dirs.add(d)

    def _make_dir(self, d: str) -> None:
        if not os.path.isdir(d):
            # the nearest existing ancestor: only the entries created below it need an fsync
            top = os.path.dirname(d)
            while top != self.root and top.startswith(self.root) and not os.path.isdir(top):
                top = os.path.dirname(top)
            os.makedirs(d, exist_ok=True)
            # make the new directory entries themselves durable (each in its parent)
            parent = d
            while parent != top and parent.startswith(self.root):
                parent = os.path.dirname(parent)
                _fsync_dir(parent)

    def get(self, key: str) -> bytes:
        try:
            with open(self._path(key), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise KeyNotFound(key) from None

    def get_buffer(self, key: str):
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                if os.fstat(f.fileno()).st_size == 0:
                    return b""
                return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            raise KeyNotFound(key) from None

    def local_path(self, key: str) -> str | None:
        path = self._path(key)
        return path if os.path.isfile(path) else None

    def get_range(self, key: str, start: int, length: int) -> bytes:
        try:
            with open(self._path(key), "rb") as f:
                f.seek(start)
                return f.read(length)
        except FileNotFoundError:
            raise KeyNotFound(key) from None

    def _write_tmp(self, path: str, data: bytes) -> str:
        self._ensure_dir(path)
        tmp = f"{path}{_TMP_SUFFIX}{uuid.uuid4().hex}"
        with _writing(self.root, tmp):
            with open(tmp, "wb") as f:
                for part in data if isinstance(data, list) else (data,):  # put_many's parts
                    f.write(part)
                f.flush()
                os.fsync(f.fileno())
        return tmp

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        tmp = self._write_tmp(path, data)
        with _writing(self.root, tmp):
            os.replace(tmp, path)
        with _writing(self.root):
            _fsync_dir(os.path.dirname(path))

    def put_many(self, items) -> None:
        dirs: list[str] = []
        for key, data in items:
            path = self._path(key)
            tmp = self._write_tmp(path, data)
            with _writing(self.root, tmp):
                os.replace(tmp, path)
            del data  # before the next file's bytes are made
            d = os.path.dirname(path)
            if d not in dirs:
                dirs.append(d)
        for d in dirs:  # one sync per folder makes every new name in it durable
            with _writing(self.root):
                _fsync_dir(d)

    def put_from_file(self, key: str, write) -> None:
        path = self._path(key)
        self._ensure_dir(path)
        tmp = f"{path}{_TMP_SUFFIX}{uuid.uuid4().hex}"
        with _writing(self.root, tmp):
            write(tmp)
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        with _writing(self.root):
            _fsync_dir(os.path.dirname(path))

    def put_if_absent(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        tmp = self._write_tmp(path, data)
        try:
            with _writing(self.root):
                os.link(tmp, path)  # atomic, and fails if the name exists
        except FileExistsError:
            return False
        finally:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        with _writing(self.root):
            _fsync_dir(os.path.dirname(path))
        return True

    def exists(self, key: str) -> bool:
        return os.path.exists(self._path(key))

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix.rstrip("/")) if prefix else self.root
        out: list[str] = []
        if not os.path.isdir(base):
            return out
        for dirpath, _dirs, files in os.walk(base):
            rel = os.path.relpath(dirpath, self.root)
            for name in files:
                if _TMP_SUFFIX in name:
                    continue
                key = name if rel == "." else f"{rel.replace(os.sep, '/')}/{name}"
                out.append(key)
        out.sort()
        return out

    def delete(self, key: str) -> None:
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            pass

    def delete_prefix(self, prefix: str) -> None:
        import shutil

        path = self._path(prefix.rstrip("/"))
        shutil.rmtree(path, ignore_errors=True)
        with self._lock:
            self._made_dirs = {d for d in self._made_dirs if not d.startswith(path)}

    def size_of(self, key: str) -> int:
        try:
            return os.path.getsize(self._path(key))
        except FileNotFoundError:
            raise KeyNotFound(key) from None

    def open_log(self, key: str) -> LogWriter:
        path = self._path(key)
        self._ensure_dir(path)
        return _LocalLog(path, self.root)

    def read_log(self, key: str) -> bytes:
        return self.get(key)

    def remove_temp_files(self) -> None:
        """Delete leftovers of writes interrupted by a crash (never referenced)."""
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if _TMP_SUFFIX in name:
                    try:
                        os.unlink(os.path.join(dirpath, name))
                    except FileNotFoundError:
                        pass
