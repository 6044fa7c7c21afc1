"""Cooperative deadlines: a read that runs too long stops itself and frees its thread.

A Python thread cannot be killed, so the long loops (filter evaluation per segment and
per chunk of rows, vector and BM25 search per segment, result hydration) call
:func:`check`, which raises :class:`~gleandb.errors.DeadlineExceededError` once the
deadline of the current context has passed. The deadline lives in a ``ContextVar``: the
server sets one per request (``request_timeout_s``) and it follows the request into the
thread pool; embedded callers have none unless they ask for one::

    with gleandb.deadline(5.0):
        col.get(where_document={"$contains": needle})

Work handed to other threads (the scan pool) carries it with :func:`bind`. A single
pyarrow kernel call is not interruptible, so scans are cut into slices of bounded size
(see ``index/filters.py``), the check runs between them, and under a deadline the caller
waits for a slice only until the deadline: a slow kernel call (a costly regex over one
large document) then finishes in a scan-pool thread while the request has already been
answered and its thread freed.
"""

from __future__ import annotations

import contextvars
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

from gleandb.errors import DeadlineExceededError

__all__ = ["Deadline", "deadline", "check", "current", "bind", "DeadlineExceededError"]

T = TypeVar("T")


class Deadline:
    """An absolute point on the monotonic clock, with what to say when it has passed."""

    __slots__ = ("at", "seconds", "setting")

    def __init__(self, seconds: float, setting: str | None = None) -> None:
        self.seconds = float(seconds)
        self.at = time.monotonic() + self.seconds
        self.setting = setting

    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def error(self) -> DeadlineExceededError:
        where = f" ({self.setting})" if self.setting else ""
        return DeadlineExceededError(
            f"The request was stopped after running longer than the deadline of {self.seconds:g} s{where}; "
            f"narrow the filter (shorter $contains / $regex, fewer documents) or raise the limit")

    def check(self) -> None:
        if time.monotonic() >= self.at:
            raise self.error()


_current: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("gleandb_deadline", default=None)


def current() -> Deadline | None:
    return _current.get()


def check() -> None:
    """Raise DeadlineExceededError when the current context's deadline has passed."""
    d = _current.get()
    if d is not None and time.monotonic() >= d.at:
        raise d.error()


@contextmanager
def deadline(seconds: float | None, setting: str | None = None) -> Iterator[Deadline | None]:
    """Run the block under a deadline of ``seconds`` (None or <= 0: no new deadline).
    An enclosing, earlier deadline stays in force."""
    outer = _current.get()
    if seconds is None or seconds <= 0:
        yield outer
        return
    d = Deadline(seconds, setting)
    if outer is not None and outer.at <= d.at:
        d = outer
    token = _current.set(d)
    try:
        yield d
    finally:
        _current.reset(token)


def bind(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` run under the caller's deadline, from whatever thread runs it."""
    d = _current.get()
    if d is None:
        return fn

    def run(*args: Any, **kwargs: Any) -> T:
        token = _current.set(d)
        try:
            d.check()
            return fn(*args, **kwargs)
        finally:
            _current.reset(token)

    return run
