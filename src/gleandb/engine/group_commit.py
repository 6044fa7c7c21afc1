"""Group commit: concurrent writes to one collection share one sync (one PUT on object storage).

LevelDB's write queue: each writer queues its request; when no group is running, the writer
that finds its own request still pending becomes the leader, takes every request queued so far,
and runs them as one group under the collection's write lock (``run_group``: resolve and apply
each in order, make the group durable once, publish it to readers). The others sleep on a
condition variable until their request is done, then return its result: they never wait for
the write lock, so a finished writer is not held up by the next group's PUT. While a leader
waits on its sync or PUT, new requests queue up and form the next group, so throughput grows
with the number of writers instead of being one write per round trip.

Each request is resolved in its caller's context (``contextvars``), so a deadline or result
budget set by the caller applies to its own request even when the leader runs it.
"""

from __future__ import annotations

import contextvars
import threading
from typing import Any, Callable


class WriteRequest:
    __slots__ = ("build", "ctx", "result", "error", "done")

    def __init__(self, build: Callable) -> None:
        self.build = build
        self.ctx = contextvars.copy_context()
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = False

    def run_build(self, *args) -> Any:
        return self.ctx.run(self.build, *args)


class WriteQueue:
    def __init__(self, lock: "threading.RLock") -> None:
        self._lock = lock  # the collection's write lock: held by the leader for the whole group
        self._cv = threading.Condition(threading.Lock())
        self._pending: list[WriteRequest] = []
        self._leading = False
        self.groups = 0  # groups committed (and requests in them), for tests and metrics
        self.requests = 0

    def submit(self, build: Callable, run_group: Callable[[list[WriteRequest]], None]) -> Any:
        req = WriteRequest(build)
        with self._cv:
            self._pending.append(req)
            while self._leading and not req.done:
                self._cv.wait()
            if not req.done:
                self._leading = True
                group, self._pending = self._pending, []
        if not req.done:
            try:
                with self._lock:
                    run_group(group)
            finally:
                with self._cv:
                    self.groups += 1
                    self.requests += len(group)
                    for r in group:
                        r.done = True
                    self._leading = False
                    self._cv.notify_all()
        if req.error is not None:
            raise req.error
        return req.result
