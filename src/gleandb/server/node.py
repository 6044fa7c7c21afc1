"""The scale-out role of one server process (``glean run --role``; docs/deploy.md).

``all`` and ``writer`` open the store for writing as always. ``query`` opens it as a
follower: read-only, without the writer's lock, through a ``CachedStorage``, polled every
``poll_interval_s`` seconds (``gleandb.engine.follower``), and the server forwards writes
(``gleandb.server.forward``). This module builds that and reports on it for
``/healthcheck`` and ``/api/v2/gleandb/node``.
"""

from __future__ import annotations

import os
from typing import Any

from gleandb.engine.store import StoreParams
from gleandb.server.config import ServerSettings
from gleandb.storage.base import Storage
from gleandb.storage.cache import CachedStorage


def open_query_engine(path: str, settings: ServerSettings, storage: Storage | None = None):
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


def node_status(settings: ServerSettings, engine: Any | None, cache: CachedStorage | None) -> dict:
    """Role, freshness and cache figures of this node."""
    out: dict = {"role": settings.role, "degraded": False, "error": None}
    if engine is None:
        return out
    follower = getattr(engine, "follower", None)
    if follower is not None:
        st = follower.status()
        out.update(degraded=st["degraded"], error=st["error"], follower=st)
    if cache is not None:
        out["cache"] = cache.stats()
    if settings.writer_url:
        out["writer_url"] = settings.writer_url
    return out
