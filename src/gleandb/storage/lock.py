"""One writer process per store directory, enforced with an OS file lock.

The lock is an ``flock`` on ``<path>/LOCK``: the kernel releases it when the
holder dies (even by SIGKILL), so a crash never leaves a stale lock. The holder
writes its pid, program and a *redacted* argument list into the file (mode 0600)
so the error a second process gets can say who holds the store without ever
persisting or echoing a secret given on the command line (``--auth-token``...).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import sys
import time

from gleandb.errors import StoreLockedError

REDACTED = "<redacted>"
# an option whose name contains one of these words carries a secret value
_SECRET_OPTION = re.compile(r"^--?[A-Za-z0-9_-]*(token|password|passwd|auth|key|secret|credential)[A-Za-z0-9_-]*$",
                            re.IGNORECASE)


def redact_args(args: list[str]) -> list[str]:
    """``args`` with the value of every secret-looking option replaced: ``--opt value`` and
    ``--opt=value`` both; the option names stay so the holder can be recognised."""
    out: list[str] = []
    hide_next = False
    for a in args:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        name, eq, _value = a.partition("=")
        if _SECRET_OPTION.match(name):
            if eq:
                out.append(f"{name}={REDACTED}")
            else:
                out.append(a)
                hide_next = True
            continue
        out.append(a)
    return out


class ProcessLock:
    def __init__(self, root: str):
        self.path = os.path.join(root, "LOCK")
        self.root = root
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
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
        try:
            os.fchmod(fd, 0o600)  # a LOCK file made by an older version was 0644
        except OSError:
            pass
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "program": os.path.basename(sys.argv[0]) if sys.argv else "",
            "args": [a[:200] for a in redact_args(sys.argv[1:])][:40],
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd

    @staticmethod
    def _read_holder(fd: int) -> str:
        try:
            info = json.loads(os.pread(fd, 16384, 0) or b"{}")
            if "args" in info:
                program, args = str(info.get("program") or "?"), [str(a) for a in info.get("args") or []]
            else:  # written by an older version: "command", secrets and all
                words = str(info.get("command") or "?").split()
                program, args = os.path.basename(words[0]) if words else "?", words[1:]
            # redacted again here: the file may come from an older version, or have been edited
            command = " ".join([program] + redact_args(args))
            return f"pid {info.get('pid')} on {info.get('host')}, since {info.get('since')}, command: {command!r}"
        except (OSError, ValueError, TypeError, AttributeError):
            return "holder unknown"

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None
