"""Writer fencing on object storage: one writer at a time holds a lease object.

There is no kernel lock across machines, so the single-writer rule is a lease: the object
``lease`` at the store's root says who writes and until when. It is taken with a conditional
create (``If-None-Match``) or, once expired or released, a conditional replace (``If-Match`` on
the ETag read), and renewed the same way by a background thread, so two writers can never
both believe they took or renewed it.

The holder counts its lease as valid until ``ttl - margin`` after the start of its last
successful renewal (monotonic clock), and ``check`` (run before every write and delete,
``S3Storage.fence``) refuses once that has passed or once a renewal found someone else's
lease: the writer stops the moment it cannot prove it holds the store. A new writer takes
over only when the lease's ``expires_at`` has passed on its own clock (clocks must agree to
within ``margin``) or the holder released it. Whatever slips through anyway (a PUT sent just
before expiry that lands late) hits the names the new writer also writes (next manifest,
catalog record, WAL group) and loses the conditional create to exactly one of them.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
import uuid

from gleandb.errors import StoreLockedError, WriterFencedError
from gleandb.storage.base import KeyNotFound
from gleandb.storage.lock import redact_args
from gleandb.storage.s3 import S3Storage

log = logging.getLogger("gleandb.storage")

LEASE_KEY = "lease"
DEFAULT_TTL = 10.0


class ObjectLease:
    def __init__(self, storage: S3Storage, ttl: float = DEFAULT_TTL, margin: float | None = None):
        if ttl <= 0:
            raise ValueError(f"lease ttl must be > 0, got {ttl!r}")
        self.storage = storage
        self.ttl = float(ttl)
        self.margin = float(margin) if margin is not None else min(2.0, self.ttl / 5)
        self.holder = uuid.uuid4().hex
        self._etag: str | None = None
        self._valid_until = 0.0  # monotonic
        self._lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mutex = threading.Lock()

    def _body(self, released: bool = False) -> bytes:
        return json.dumps({
            "holder": self.holder,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "program": os.path.basename(sys.argv[0]) if sys.argv else "",
            "args": [a[:200] for a in redact_args(sys.argv[1:])][:40],
            "ttl": self.ttl,
            "expires_at": 0.0 if released else time.time() + self.ttl,
            "released": released,
        }).encode()

    @staticmethod
    def _describe(info: dict) -> str:
        return (f"holder {info.get('holder')} (pid {info.get('pid')} on {info.get('host')}, "
                f"command {' '.join([str(info.get('program') or '?')] + [str(a) for a in info.get('args') or []])!r})")

    def acquire(self, wait: float | None = None) -> None:
        """Take the lease, waiting up to ``wait`` seconds (default: one ttl and a bit) for a
        holder's lease to expire; raises StoreLockedError naming the holder after that."""
        wait = self.ttl + 2 * self.margin + 1.0 if wait is None else float(wait)
        deadline = time.monotonic() + wait
        while True:
            try:
                raw, etag = self.storage.get_with_etag(LEASE_KEY)
            except KeyNotFound:
                started = time.monotonic()  # the lease runs from the write that takes it
                new = self.storage.create(LEASE_KEY, self._body(), fenced=False)
                if new is not None:
                    return self._took(new, started)
                continue
            try:
                info = json.loads(raw)
            except ValueError:
                info = {}
            expires_at = float(info.get("expires_at") or 0.0)
            if info.get("released") or expires_at <= time.time():
                started = time.monotonic()
                new = self.storage.put_if_match(LEASE_KEY, self._body(), etag, fenced=False)
                if new is not None:
                    return self._took(new, started)
                continue  # someone else renewed or took it meanwhile: look again
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StoreLockedError(
                    f"The gleandb store at {self.storage.url} is held by another writer "
                    f"({self._describe(info)}); its lease expires in {max(0.0, expires_at - time.time()):.1f} s "
                    f"unless renewed. One writer at a time: stop it, or wait for its lease to expire.")
            time.sleep(max(0.01, min(remaining, expires_at - time.time() + 0.01, 0.5)))

    def _took(self, etag: str, started: float) -> None:
        self._etag = etag
        self._valid_until = started + self.ttl - self.margin
        self._lost = None
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew_loop, name=f"gleandb-lease[{self.storage.url}]",
                                        daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        interval = max(0.05, (self.ttl - self.margin) / 3)
        while not self._stop.wait(interval):
            self.renew()
            if self._lost:
                return

    def renew(self) -> None:
        """Extend the lease (If-Match on the ETag we wrote). Losing it is final."""
        with self._mutex:
            if self._lost or self._etag is None:
                return
            started = time.monotonic()
            try:
                new = self.storage.put_if_match(LEASE_KEY, self._body(), self._etag, fenced=False)
            except Exception as e:  # store unreachable: the lease runs out unless a retry works
                log.warning("could not renew the writer lease of %s: %s", self.storage.url, e)
                return
            if new is None:
                self._lost = (f"the writer lease of {self.storage.url} was taken by another writer "
                              f"(If-Match on {LEASE_KEY} refused)")
                log.error("%s; this writer stops accepting writes", self._lost)
                return
            self._etag = new
            self._valid_until = started + self.ttl - self.margin

    def check(self) -> None:
        """Raise WriterFencedError unless this writer can prove it still holds the lease."""
        if self._lost:
            raise WriterFencedError(f"{self._lost}: another writer holds the store; this write was not applied")
        if time.monotonic() >= self._valid_until:
            raise WriterFencedError(
                f"this writer could not renew its lease on {self.storage.url} in time (the object store did not "
                f"answer): another writer may hold the store now, so this write was not applied; reopen the store")

    def release(self) -> None:
        """Stop renewing and mark the lease released, so the next writer need not wait."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._mutex:
            if self._lost or self._etag is None:
                return
            try:
                self.storage.put_if_match(LEASE_KEY, self._body(released=True), self._etag, fenced=False)
            except Exception as e:
                log.warning("could not release the writer lease of %s (it expires by itself): %s",
                            self.storage.url, e)
            self._etag = None
            self._valid_until = 0.0
