"""A byte budget for the rows one request may fetch (the server's ``max_response_bytes``).

``CollectionStore.hydrate`` charges the bytes of the rows it takes (strings and vectors:
a lower bound of their JSON) before turning them into Python objects, so a request whose
answer would exceed the limit stops with a clear ``InvalidArgumentError`` instead of
filling the server's memory. Like deadlines, the budget lives in a ``ContextVar``: the
server opens one per request; embedded use has none.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Iterator

from gleandb.errors import InvalidArgumentError

__all__ = ["result_budget", "charge", "charged", "active", "too_large"]

_budget: contextvars.ContextVar[list | None] = contextvars.ContextVar("gleandb_result_budget", default=None)


def too_large(size: str, limit: int, setting: str | None) -> InvalidArgumentError:
    where = f" ({setting})" if setting else ""
    return InvalidArgumentError(
        f"Response too large: {size}; the limit is {limit} bytes{where}. Ask for fewer results "
        f"(n_results, limit), fewer query embeddings per request, or fewer include fields")


@contextmanager
def result_budget(limit: int | None, setting: str | None = None) -> Iterator[None]:
    """Count the rows fetched in this context against ``limit`` bytes (None or 0: no limit)."""
    token = _budget.set([limit, 0, setting] if limit else None)
    try:
        yield
    finally:
        _budget.reset(token)


def active() -> bool:
    return _budget.get() is not None


def charged() -> int | None:
    """Bytes charged so far in this context (None: no budget)."""
    b = _budget.get()
    return None if b is None else b[1]


def charge(nbytes: int) -> None:
    """Count ``nbytes`` against the current budget; InvalidArgumentError once it is spent."""
    b = _budget.get()
    if b is None:
        return
    b[1] += int(nbytes)
    if b[1] > b[0]:
        raise too_large(f"its rows alone take more than {b[1]} bytes", b[0], b[2])
