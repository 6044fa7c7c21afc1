"""Admission of record writes: at most ``concurrent_writes`` run at once, the rest wait.

Why: the server is one Python process, so every request's CPU comes out of one GIL, and
each hop between the event loop and the thread pool waits for a busy core. Writers spend
most of their time queued for the group commit (engine/store.py), but a writer that has
been let in still costs parsing, resolving and answering, and every one of them is one
more thread competing with reads. Writes waiting here wait on the event loop: no thread,
no GIL, their bodies not yet parsed. Reads never wait here, so under a mixed load they go
first, while the writes let in still share one fsync per group (docs/ARCHITECTURE.md,
"Reads under a mixed server load").
"""

from __future__ import annotations

import asyncio
import re
import time
import weakref
from typing import Any

# POST .../collections/{id}/add|upsert|update|delete: the routes that go through the WAL
_WRITE_PATH = re.compile(r"^/api/v2/tenants/[^/]+/databases/[^/]+/collections/[^/]+/(?:add|upsert|update|delete)/?$")


def is_record_write(method: str, path: str) -> bool:
    return method == "POST" and _WRITE_PATH.match(path) is not None


class WriteQueue:
    """What ``/metrics`` shows of the queue: writes waiting now, and in total the writes let
    in and the seconds they waited."""

    def __init__(self, limit: int):
        self.limit = limit
        self.waiting = 0
        self.admitted = 0
        self.wait_seconds = 0.0


class WriteAdmission:
    """ASGI middleware: record writes beyond ``queue.limit`` running at once wait for a place,
    in arrival order; every other request passes straight through."""

    def __init__(self, app: Any, queue: WriteQueue):
        self.app = app
        self.queue = queue
        # one semaphore per event loop (asyncio primitives belong to the loop they wait on)
        self._sems: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary())

    def _sem(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        sem = self._sems.get(loop)
        if sem is None:
            sem = self._sems[loop] = asyncio.Semaphore(self.queue.limit)
        return sem

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not is_record_write(scope.get("method", ""), scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        sem, q = self._sem(), self.queue
        start = time.perf_counter()
        q.waiting += 1
        try:
            await sem.acquire()
        finally:
            q.waiting -= 1
        q.admitted += 1
        q.wait_seconds += time.perf_counter() - start
        try:
            await self.app(scope, receive, send)
        finally:
            sem.release()
