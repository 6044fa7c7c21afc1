"""Forks and vacuum: the operations that span the collections of one store.

A fork is a new collection whose first manifest names its source's segment
directories and masks (shared, immutable files) and whose WAL holds the
source's unflushed tail as one resolved batch. Nothing else is copied, so the
cost does not depend on the collection's size. The first manifest, and the tail
when it is small, are written by the catalog log record that creates the fork,
which is the commit point and the fork's one fsync (a large tail gets a WAL file
first). Until that record is durable such a WAL file belongs to a collection the
catalog does not know, which the next open deletes (keeping the shared files,
which the source still names).

Vacuum flushes, compacts what is worth compacting, prunes versions beyond
retention, deletes what no retained version names, and sweeps crash orphans.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import TYPE_CHECKING, Any, Callable, Protocol

from gleandb.errors import InvalidArgumentError
from gleandb.engine import gc
from gleandb.engine import manifest as mf
from gleandb.engine.wal import WriteAheadLog, encode_batch

# A fork's unflushed tail up to this size rides in its catalog record instead of a WAL file of
# its own (a fork then costs 1 fsync instead of ~5). The fork's first flush hands it over to
# the WAL (see CollectionStore._publish: the tail's WAL file before any manifest file).
INLINE_TAIL_BYTES = 64 << 10

if TYPE_CHECKING:
    from gleandb.engine.store import CollectionStore, StoreParams


class Engine(Protocol):
    """What a fork and a vacuum use of the store directory (``engine.database.Engine``),
    declared here so this module does not import the one that calls it."""

    storage: Any
    catalog: Any
    refs: gc.FileReferences
    worker: Any
    fork_lock: Any

    def store(self, cid: str, params: "StoreParams") -> "CollectionStore": ...

    def collection_prefix(self, cid: str) -> str: ...

    def open_stores(self) -> list[tuple[str, "CollectionStore"]]: ...


def fork(engine: "Engine", src_cid: str, src_params: "StoreParams", make_record: Callable[[str], object],
         params: "StoreParams", version: int | None = None):
    """Fork ``src_cid`` (its current state, or retained ``version``); returns ``make_record(new_cid)``."""
    src = engine.store(src_cid, src_params)
    new_cid = str(uuid.uuid4())
    prefix = engine.collection_prefix(new_cid)
    storage = engine.storage
    if not storage.durable:
        if version is not None:
            raise InvalidArgumentError(
                f"version {version!r}: versions are kept only by a PersistentClient; an in-memory "
                "collection can be forked at its current state only"
            )
        with src._lock:
            views, next_rid, dim = src.clone_memory_state()
            rec = make_record(new_cid)
        engine.store(new_cid, params).adopt_memory_state(views, next_rid, dim)
        return rec
    with engine.fork_lock, src._lock:
        m, tail = src.fork_source(version)
        m.forked_from = {"collection": src_cid, "version": m.forked_from["version"]}
        m.created_at = time.time()
        try:
            inline = None
            if tail is not None:
                tail.seq = 1
                record = encode_batch(tail)
                if len(record) <= INLINE_TAIL_BYTES:
                    inline = base64.b64encode(record).decode()
                else:  # a large tail gets a WAL file of its own (a few more fsyncs)
                    wal = WriteAheadLog(storage, prefix, sync=True)
                    wal.append(tail)
                    wal.close()
            # the first manifest (and a small tail) go into the catalog record that creates
            # the fork: one fsync
            engine.catalog.stage_manifest(new_cid, json.loads(m.to_json()), inline)
            engine.refs.set(prefix, mf.referenced_keys(prefix, [m]))
            rec = make_record(new_cid)  # the commit point
        except BaseException:
            engine.catalog.unstage_manifest(new_cid)
            engine.refs.drop(prefix)  # nothing dies: the source still names every file
            storage.delete_prefix(prefix)
            raise
    return rec


def _total_bytes(storage) -> int:
    if not storage.durable:
        return 0
    return gc.size_of_keys(storage, storage.list(""))


def vacuum(engine: "Engine", stores: list["CollectionStore"], keep_count: int | None = None,
           keep_seconds: float | None = None) -> dict:
    """Flush and compact ``stores`` (every collection), prune versions, delete unreferenced files."""
    if keep_count is not None and (isinstance(keep_count, bool) or not isinstance(keep_count, int) or keep_count < 1):
        raise InvalidArgumentError(f"Invalid retention_count {keep_count!r}: expected an integer >= 1")
    if keep_seconds is not None and (
        isinstance(keep_seconds, bool) or not isinstance(keep_seconds, (int, float)) or keep_seconds < 0
    ):
        raise InvalidArgumentError(f"Invalid retention_seconds {keep_seconds!r}: expected a number >= 0")
    t0 = time.perf_counter()
    storage = engine.storage
    before = _total_bytes(storage)
    for s in stores:
        s.flush()
    engine.worker.wait_idle()
    compactions = sum(s.stats["compactions"] for s in stores)
    for s in stores:
        s._maybe_schedule_compaction()
    engine.worker.wait_idle()
    compactions = sum(s.stats["compactions"] for s in stores) - compactions
    versions_before = sum(len(s._manifests) for s in stores)
    freed = 0
    for s in stores:
        freed += s.retire(keep_count, keep_seconds)
    swept = {"bytes": 0}
    if storage.durable:
        def sweep_job() -> None:
            with engine.fork_lock:
                live: set[str] = set()
                for _cid, s in engine.open_stores():
                    live |= s.live_keys()
                swept["bytes"] = gc.sweep(storage, engine.refs, live)

        # on the worker: no flush or compaction is writing segment files meanwhile
        engine.worker.submit(sweep_job)
        engine.worker.wait_idle()
    after = _total_bytes(storage)
    return {
        "collections": len(stores),
        "compactions": compactions,
        "versions_removed": versions_before - sum(len(s._manifests) for s in stores),
        "bytes_before": before,
        "bytes_after": after,
        "bytes_reclaimed": freed + swept["bytes"],
        "seconds": round(time.perf_counter() - t0, 3),
    }
