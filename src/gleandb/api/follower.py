"""Opening a store as a query node's follower (``glean run --role query``; docs/deploy.md).

The server reaches the engine only through the api layer: this module builds the read-only
follower engine (no writer lock, a ``CachedStorage`` over the backing store, polled every
``poll_interval_s`` seconds; ``gleandb.engine.follower``) that the server's clients then use.
"""

from __future__ import annotations

import os
from typing import Any

from gleandb.engine.database import release_engine
from gleandb.engine.store import StoreParams
from gleandb.storage.base import Storage
from gleandb.storage.cache import CachedStorage

__all__ = ["open_query_engine", "release_engine"]


def open_query_engine(path: str, settings: Any, storage: Storage | None = None):
    """(engine, cache): the follower engine a query node serves from, registered for ``path`` so
    the server's clients use it, and the cache it reads through. ``storage``: the backing store
    (default: the local directory ``path``)."""
    from gleandb.engine.follower import open_follower

    if storage is None and "://" in path and not path.startswith("file://"):
        try:  # an object store URL (``glean run --storage s3://...``)
            from gleandb.storage.urls import open_storage
        except ImportError:
            raise ValueError(f"--role query on {path!r}: this build has no object storage support") from None
        storage = open_storage(path)
    if storage is None:
        if path.startswith("file://"):
            path = path[len("file://"):]
        if not os.path.isdir(path):
            raise ValueError(f"--role query: no store directory at {path!r} (a query node never creates "
                             "one: start the writer on it first, or fix --path)")
        from gleandb.storage.local import LocalStorage

        storage = LocalStorage(path)
    cached = CachedStorage(storage, memory_bytes=settings.cache_memory_bytes,
                           disk_dir=settings.cache_dir or None, disk_bytes=settings.cache_disk_bytes)
    return open_follower(path, cached, StoreParams(), settings.poll_interval_s), cached
