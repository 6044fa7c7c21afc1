"""Follower mode: a read-only engine that keeps up with another process's writes.

A query node opens the writer's store without its lock and never writes a byte (its
storage is wrapped in ``ReadOnlyStorage``). It serves the latest published manifest of
each collection plus the WAL records after it, and a poll loop (``Follower``) picks up
what the writer adds:

- the catalog, when its files change (``FollowerCatalog.refresh``);
- per open collection, the list of manifests: a new one (a flush, a compaction) means the
  collection is opened again, its segments coming from the segment cache of this process
  or the storage cache, and swapped in whole;
- otherwise only the WAL bytes appended since the last poll are read (ranged reads from
  the last whole record) and applied batch by batch, under the store's lock, as the
  writer applied them.

Readers always see whole versions: a batch is applied whole or not at all, and a store is
opened against one manifest listing that is checked again after its files (segments,
masks, WAL) were read; if the writer published or collected files meanwhile, the open
starts over. A poll that fails (the storage unreachable) keeps the state it has and is
reported by ``Follower.status`` (the server's ``/healthcheck``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
import zlib
from dataclasses import dataclass, field

from gleandb.errors import CorruptStoreError
from gleandb.engine.store import CollectionStore, StoreParams
from gleandb.engine.wal import _MAX_RECORD, decode_batch, first_seq_of
from gleandb.storage.base import KeyNotFound, StorageError
from gleandb.storage.framing import HEADER

log = logging.getLogger("gleandb.follower")

_OPEN_ATTEMPTS = 8


@dataclass
class _FollowState:
    manifests: tuple[str, ...]  # manifest keys listed when the store was opened
    base: dict | None  # the catalog's first manifest (forks) at that time
    wal_offsets: dict[str, int] = field(default_factory=dict)  # WAL key -> bytes applied (whole records)
    wal_sizes: dict[str, int] = field(default_factory=dict)  # WAL key -> size when last read
    # WAL files read after a newer one was listed: closed for good, never looked at again (on
    # object storage every group of writes is its own object: no HEAD of each at every poll)
    wal_final: set[str] = field(default_factory=set)


_states: "weakref.WeakKeyDictionary[CollectionStore, _FollowState]" = weakref.WeakKeyDictionary()


def _manifest_keys(engine, cid: str) -> tuple[str, ...]:
    prefix = engine.collection_prefix(cid)
    return tuple(k for k in engine.storage.list(f"{prefix}manifests/") if k.endswith(".json"))


def open_read_only(engine, cid: str, params: StoreParams) -> CollectionStore:
    """Open collection ``cid`` read-only against one consistent version of its files."""
    last: Exception | None = None
    for _ in range(_OPEN_ATTEMPTS):
        before = _manifest_keys(engine, cid)
        base = engine.catalog.base_manifest(cid)
        try:
            store = CollectionStore(
                engine.storage, engine.collection_prefix(cid), params, engine.worker, None, engine.segment_cache,
                base=base, base_tail=engine.catalog.base_tail(cid), on_own_manifest=None, read_only=True,
            )
        except (KeyNotFound, CorruptStoreError) as e:  # files collected by the writer meanwhile
            last = e
            continue
        if _manifest_keys(engine, cid) == before:
            _states[store] = _FollowState(before, base)
            return store
        store.close()
    raise StorageError(f"collection {cid}: the writer kept publishing while it was being opened "
                       f"({_OPEN_ATTEMPTS} attempts){': ' + str(last) if last else ''}")


def _whole_records(data: bytes) -> tuple[list[bytes], int]:
    """Bodies of the whole records at the start of ``data`` and the bytes they span."""
    view = memoryview(data)
    pos, out = 0, []
    while pos + HEADER.size <= len(view):
        length, crc = HEADER.unpack_from(view, pos)
        end = pos + HEADER.size + length
        if length > _MAX_RECORD or end > len(view):
            break  # being appended right now: read it at the next poll
        body = bytes(view[pos + HEADER.size:end])
        if zlib.crc32(body) != crc:
            break
        out.append(body)
        pos = end
    return out, pos


def follow_wal(engine, store: CollectionStore, state: _FollowState) -> bool:
    """Apply the WAL records appended since the last call. False when the store must be opened
    again instead (a gap in the sequence: files it needs were already collected)."""
    storage = engine.storage
    files = [k for k in storage.list(f"{store.prefix}wal/") if k.endswith(".log")]
    firsts = {k: first_seq_of(k) for k in files}
    newest = max(firsts.values(), default=0)
    batches = []
    for key in files:
        if key in state.wal_final:
            continue
        try:
            size = storage.size_of(key)
        except KeyNotFound:
            continue  # covered by a manifest and deleted: the next listing shows that manifest
        # a newer file was listed before this size was read: this one is closed, its size final
        closed = firsts[key] < newest
        done = state.wal_offsets.get(key, 0)
        if size <= done or state.wal_sizes.get(key) == size:
            if closed:
                state.wal_final.add(key)
            continue  # nothing new (a torn tail left by a crash is not read again and again)
        try:
            data = storage.get_range(key, done, size - done)
        except KeyNotFound:
            continue
        bodies, used = _whole_records(data)
        state.wal_offsets[key] = done + used
        state.wal_sizes[key] = size
        if closed:
            state.wal_final.add(key)
        batches.extend(decode_batch(b) for b in bodies)
    for key in list(state.wal_offsets):
        if key not in files:
            del state.wal_offsets[key]
            state.wal_sizes.pop(key, None)
            state.wal_final.discard(key)
    batches.sort(key=lambda b: b.seq)
    with store._lock:
        for b in batches:
            if b.seq <= store.seq:
                continue  # already in the state (replayed at open, or read twice)
            if b.seq != store.seq + 1:
                return False
            store._apply(b)
    return True


class Follower:
    """Polls the storage every ``interval_s`` seconds and brings ``engine`` up to date."""

    def __init__(self, engine, interval_s: float = 1.0):
        self.engine = engine
        self.interval_s = float(interval_s)
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.last_ok_at: float | None = None
        self.polls = 0
        self.failed_polls = 0
        self.reopens = 0

    def start(self) -> "Follower":
        self._thread = threading.Thread(target=self._run, name="gleandb-follower", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.refresh()

    def refresh(self) -> bool:
        """One poll; True when it succeeded. Errors are kept for ``status``, never raised."""
        with self._refresh_lock:
            if self.engine.closed:
                return False
            self.polls += 1
            try:
                self._refresh()
            except Exception as e:  # unreachable storage, a corrupt file: keep serving what we have
                self.failed_polls += 1
                error = f"{type(e).__name__}: {e}"
                if error != self.last_error:  # once per new error, not once per poll
                    log.warning("follower poll failed (serving the last state read): %s", error)
                self.last_error = error
                self.last_error_at = time.time()
                return False
            if self.last_error is not None:
                log.warning("follower poll succeeded again after %d failed polls", self.failed_polls)
            self.last_error = None
            self.last_ok_at = time.time()
            return True

    def _refresh(self) -> None:
        engine = self.engine
        engine.catalog.refresh()
        for cid, store in engine.open_stores():
            if not engine.catalog.has_collection_id(cid):
                self._swap(cid, store, None)  # deleted on the writer
                continue
            state = _states.get(store)
            if (state is not None and state.base == engine.catalog.base_manifest(cid)
                    and state.manifests == _manifest_keys(engine, cid)
                    and follow_wal(engine, store, state)):
                continue
            self._swap(cid, store, open_read_only(engine, cid, store.params))
            self.reopens += 1

    def _swap(self, cid: str, old: CollectionStore, new: CollectionStore | None) -> None:
        engine = self.engine
        with engine._mutex:
            if engine._stores.get(cid) is old:
                if new is None:
                    del engine._stores[cid]
                else:
                    engine._stores[cid] = new
        old.close()  # readers holding its snapshot finish with it; new reads get ``new``

    def status(self) -> dict:
        now = time.time()
        return {
            "poll_interval_s": self.interval_s,
            "degraded": self.last_error is not None,
            "error": self.last_error,
            "last_error_at": self.last_error_at,
            "last_ok_at": self.last_ok_at,
            "seconds_since_ok": None if self.last_ok_at is None else round(now - self.last_ok_at, 3),
            "polls": self.polls,
            "failed_polls": self.failed_polls,
            "reopens": self.reopens,
        }


def store_key(path: str) -> str:
    """The name ``open_engine`` registers the store at ``path`` under (a real path, or an
    object-store URL), so clients opened on ``path`` find the follower."""
    try:
        from gleandb.storage.urls import normalize  # with object storage support
    except ImportError:  # pragma: no cover - depends on the build
        return os.path.realpath(path)
    return normalize(path)


def open_follower(path: str, storage, params: StoreParams, interval_s: float = 1.0):
    """The shared read-only engine of ``path`` (registered like ``open_engine``'s, so clients
    opened on ``path`` in this process use it), reading through ``storage`` and polled every
    ``interval_s`` seconds. Release it with ``release_engine``."""
    from gleandb.errors import InvalidArgumentError
    from gleandb.engine import database as db
    from gleandb.storage.readonly import ReadOnlyStorage

    key = store_key(path)
    with db._engines_lock:
        entry = db._engines.get(key)
        if entry is not None and not entry[0].closed:
            if not entry[0].read_only:
                raise InvalidArgumentError(f"the store at {key} is already open for writing in this process")
            db._engines[key] = (entry[0], entry[1] + 1)
            return entry[0]
        engine = db.Engine(ReadOnlyStorage(storage), params, None, key, read_only=True)
        engine.follower = Follower(engine, interval_s).start()
        db._engines[key] = (engine, 1)
        return engine
