"""One writer process per store directory, enforced with an OS file lock.

The lock is an ``flock`` on ``<path>/LOCK``: the kernel releases it when the
holder dies (even by SIGKILL), so a crash never leaves a stale lock. The holder
writes its pid and command line into the file so the error a second process
gets can say who holds the store.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time

from gleandb.api.errors import StoreLockedError


class ProcessLock:
    def __init__(self, root: str):
        self.path = os.path.join(root, "LOCK")
        self.root = root
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._read_holder(fd)
            os.close(fd)
            raise StoreLockedError(
                f"The gleandb store at {self.root} is already open for writing by another process "
                f"({holder}). One process writes a store at a time: close that process, or share "
                f"the store through the server (`glean run --path {self.root}`)."
            ) from None
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": " ".join(sys.argv)[:300],
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd

    @staticmethod
    def _read_holder(fd: int) -> str:
        try:
            info = json.loads(os.pread(fd, 4096, 0) or b"{}")
            return f"pid {info.get('pid')} on {info.get('host')}, since {info.get('since')}, command: {info.get('command')!r}"
        except (OSError, ValueError):
            return "holder unknown"

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None
