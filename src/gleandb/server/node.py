"""The scale-out role of one server process (``glean run --role``; docs/deploy.md).

``all`` and ``writer`` open the store for writing as always. ``query`` opens it as a
follower: read-only, without the writer's lock, through a ``CachedStorage``, polled every
``poll_interval_s`` seconds (``gleandb.engine.follower``), and the server forwards writes
(``gleandb.server.forward``). The api layer builds the follower (``gleandb.api.follower``); this module reports on it for
``/healthcheck`` and ``/api/v2/gleandb/node``.
"""

from __future__ import annotations

from typing import Any

from gleandb.server.config import ServerSettings


def node_status(settings: ServerSettings, engine: Any | None, cache: Any | None) -> dict:
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
