"""How a memory is laid out as a collection record, and the filters that select them.

A memory is one record: ``document`` = its current text, the collection's embedding of it,
and metadata = the caller's keys plus reserved ``_mem.*`` keys. Everything (scope,
status, times, importance, expiry, history) lives in the record, so ``gleandb.Memory``
needs nothing but the public Collection API and works unchanged over HTTP.

Reserved keys:

- ``_mem.scope``: the scope as canonical JSON (sorted keys); every read and write filters
  on equality with it, which is what isolates scopes.
- ``_mem.status``: ``live`` (recalled), ``superseded``, ``forgotten``, ``expired``.
- ``_mem.created`` / ``_mem.updated`` / ``_mem.expires`` (unix seconds; no expiry is
  ``NO_EXPIRY``), ``_mem.importance`` (0..1), ``_mem.superseded_by`` (an id or "").
- ``_mem.h.event`` / ``_mem.h.time`` / ``_mem.h.text`` / ``_mem.h.ref``: the history, one
  list entry per event (text "" when erased; ref = the related memory id or "").
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from gleandb.memory.errors import MemoryArgumentError

PREFIX = "_mem."
SCOPE = "_mem.scope"
STATUS = "_mem.status"
CREATED = "_mem.created"
UPDATED = "_mem.updated"
EXPIRES = "_mem.expires"
IMPORTANCE = "_mem.importance"
SUPERSEDED_BY = "_mem.superseded_by"
H_EVENT, H_TIME, H_TEXT, H_REF = "_mem.h.event", "_mem.h.time", "_mem.h.text", "_mem.h.ref"
NO_EXPIRY = 253402300799.0  # 9999-12-31: a number, so "expires > now" is one range filter

LIVE, SUPERSEDED, FORGOTTEN, EXPIRED = "live", "superseded", "forgotten", "expired"
EVENTS = ("added", "updated", "superseded", "forgotten", "expired")


def canonical_scope(scope: Any) -> tuple[dict, str]:
    """The scope checked and as its canonical string (the isolation key)."""
    if not isinstance(scope, dict) or not scope:
        raise MemoryArgumentError(f"scope must be a non-empty dict such as {{'user': 'u42'}}, got {scope!r}")
    for k, v in scope.items():
        if not isinstance(k, str) or not k:
            raise MemoryArgumentError(f"scope keys must be non-empty strings, got {k!r}")
        if isinstance(v, bool) or not isinstance(v, (str, int)) or (isinstance(v, str) and not v):
            raise MemoryArgumentError(f"scope[{k!r}] must be a non-empty string or an int, got {v!r}")
    clean = dict(sorted(scope.items()))
    return clean, json.dumps(clean, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def check_user_metadata(metadata: Any, field_name: str = "metadata") -> dict:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise MemoryArgumentError(f"{field_name} must be a dict or None, got {metadata!r}")
    for k, v in metadata.items():
        if not isinstance(k, str) or not k:
            raise MemoryArgumentError(f"{field_name} keys must be non-empty strings, got {k!r}")
        if k.startswith(PREFIX):
            raise MemoryArgumentError(
                f"{field_name} key {k!r} is reserved (keys starting with {PREFIX!r} are gleandb's)")
        if not isinstance(v, (str, int, float, bool)) or (isinstance(v, float) and not math.isfinite(v)):
            raise MemoryArgumentError(f"{field_name}[{k!r}] must be a str, int, float or bool, got {v!r}")
    return dict(metadata)


def check_where(where: Any) -> None:
    """A user ``where`` may not name reserved keys (it could otherwise reach other scopes)."""
    if where is None:
        return
    if not isinstance(where, dict):
        raise MemoryArgumentError(f"where must be a dict or None, got {where!r}")

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if isinstance(k, str) and k.startswith(PREFIX):
                    raise MemoryArgumentError(f"where may not use the reserved key {k!r}")
                walk(v)
        elif isinstance(node, list):
            for x in node:
                walk(x)

    walk(where)


def and_(*clauses: dict | None) -> dict:
    parts = [c for c in clauses if c]
    return parts[0] if len(parts) == 1 else {"$and": parts}


def live_filter(scope_key: str, now: float, where: dict | None = None) -> dict:
    """Live, unexpired memories of one scope (and the caller's ``where``)."""
    return and_({SCOPE: scope_key}, {STATUS: LIVE}, {EXPIRES: {"$gt": now}}, where)


@dataclass
class Event:
    event: str
    time: float
    text: str | None
    memory_id: str
    ref: str | None = None

    def to_dict(self) -> dict:
        return {"event": self.event, "time": self.time, "text": self.text, "memory_id": self.memory_id,
                "ref": self.ref}


def events_of(mid: str, meta: dict) -> list[Event]:
    ev, tm = meta.get(H_EVENT) or [], meta.get(H_TIME) or []
    tx, rf = meta.get(H_TEXT) or [""] * len(ev), meta.get(H_REF) or [""] * len(ev)
    return [Event(e, float(t), x or None, mid, r or None) for e, t, x, r in zip(ev, tm, tx, rf)]


def with_event(meta: dict, event: str, time: float, text: str | None, ref: str | None = None) -> dict:
    out = dict(meta)
    out[H_EVENT] = list(meta.get(H_EVENT) or []) + [event]
    out[H_TIME] = list(meta.get(H_TIME) or []) + [float(time)]
    out[H_TEXT] = list(meta.get(H_TEXT) or []) + [text or ""]
    out[H_REF] = list(meta.get(H_REF) or []) + [ref or ""]
    return out


def erased(meta: dict) -> dict:
    """The metadata a tombstone keeps: scope, status, times and event kinds, no text and
    none of the caller's metadata (which may hold what the text said)."""
    keep = {k: v for k, v in meta.items() if k.startswith(PREFIX)}
    keep[H_TEXT] = [""] * len(keep.get(H_EVENT) or [])
    return keep


def user_metadata(meta: dict | None) -> dict:
    return {k: v for k, v in (meta or {}).items() if not k.startswith(PREFIX)}


@dataclass
class MemoryHit:
    """One memory as recall / get / list return it. ``score`` and ``why`` are None outside recall."""

    id: str
    text: str
    metadata: dict
    scope: dict
    created_at: float
    updated_at: float
    importance: float
    expires_at: float | None = None
    score: float | None = None
    why: dict | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {"id": self.id, "text": self.text, "score": self.score, "metadata": self.metadata,
                "scope": self.scope, "created_at": self.created_at, "updated_at": self.updated_at,
                "importance": self.importance, "expires_at": self.expires_at, "why": self.why}


def hit_from(mid: str, text: str, meta: dict, scope: dict) -> MemoryHit:
    exp = float(meta.get(EXPIRES, NO_EXPIRY))
    return MemoryHit(id=mid, text=text, metadata=user_metadata(meta), scope=dict(scope),
                     created_at=float(meta[CREATED]), updated_at=float(meta[UPDATED]),
                     importance=float(meta.get(IMPORTANCE, 0.5)),
                     expires_at=None if exp >= NO_EXPIRY else exp)
