"""The engine of one store (a directory, or memory): catalog + collection stores.

One ``Engine`` exists per store in a process; clients opened on the same path
share it (``open_engine`` counts references), as chromadb's clients share their
system. A persistent engine holds the directory's writer lock until closed.
"""

from __future__ import annotations

import threading
import weakref

from gleandb.errors import InvalidArgumentError
from gleandb.catalog.catalog import Catalog
from gleandb.catalog.follower import FollowerCatalog
from gleandb.engine import forks, gc
from gleandb.engine import manifest as mf
from gleandb.engine.store import CollectionStore, StoreParams
from gleandb.engine.worker import BackgroundWorker
from gleandb.storage import urls
from gleandb.storage.base import Storage
from gleandb.storage.local import LocalStorage
from gleandb.storage.lock import ProcessLock
from gleandb.storage.memory import MemoryStorage


class Engine:
    def __init__(self, storage: Storage, base_params: StoreParams, lock=None, path: str | None = None,
                 read_only: bool = False):
        """``lock``: the writer lock to release on close (``ProcessLock``, or ``ObjectLease`` on
        object storage); ``read_only``: a query node's follower (no lock, never writes)."""
        self.storage = storage
        self.path = path
        self.base_params = base_params
        self._lock = lock
        # a follower (query node, ``gleandb.engine.follower``): reads the writer's files, writes nothing
        self.read_only = read_only
        self.follower = None  # its poll loop, when one runs
        self.catalog = FollowerCatalog(storage) if read_only else Catalog(storage)
        self.worker = BackgroundWorker(f"gleandb-worker[{path or 'memory'}]")
        self._stores: dict[str, CollectionStore] = {}
        self._mutex = threading.RLock()
        self.closed = False
        # who references which shared segment/mask files: rebuilt from the manifests here
        self.refs = gc.FileReferences()
        self.segment_cache: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        # held by fork (data written, catalog not yet) and by sweeps, which must not race it
        self.fork_lock = threading.RLock()
        if read_only:
            return  # collections are opened (manifests read) on first use; nothing is swept
        if storage.durable:
            for cid in self.catalog.collection_ids():
                prefix = self.collection_prefix(cid)
                ms = mf.load_all(storage, prefix, self.catalog.base_manifest(cid))
                self.refs.set(prefix, mf.referenced_keys(prefix, ms))
        self._remove_dropped_collections()
        if storage.durable:
            gc.sweep(storage, self.refs)  # files of crashed flushes, compactions, deletes

    def _remove_dropped_collections(self) -> None:
        """Delete data of collections the catalog no longer has (a crash mid-delete or mid-fork)."""
        seen = set()
        for key in self.storage.list("collections/"):
            cid = key.split("/", 2)[1]
            if cid not in seen:
                seen.add(cid)
                if not self.catalog.has_collection_id(cid):
                    self._delete_private(cid)

    def _delete_private(self, cid: str) -> None:
        """Delete a dropped collection's files except shared ones another collection still names."""
        prefix = self.collection_prefix(cid)
        keys = self.storage.list(prefix)
        if not any(self.refs.covers(k) for k in keys):
            self.storage.delete_prefix(prefix)
            return
        for k in keys:
            if not self.refs.covers(k):
                self.storage.delete(k)

    @staticmethod
    def collection_prefix(cid: str) -> str:
        return f"collections/{cid}/"

    def store(self, cid: str, params: StoreParams) -> CollectionStore:
        """The open store of collection ``cid`` (opened, and WAL replayed, on first use)."""
        s = self._stores.get(cid)
        if s is not None:
            return s
        with self._mutex:
            if self.closed:
                raise InvalidArgumentError("This client has been closed")
            s = self._stores.get(cid)
            if s is None and self.read_only:
                from gleandb.engine.follower import open_read_only

                s = self._stores[cid] = open_read_only(self, cid, params)
            elif s is None:
                s = CollectionStore(
                    self.storage, self.collection_prefix(cid), params, self.worker, self.refs, self.segment_cache,
                    base=self.catalog.base_manifest(cid),
                    base_tail=self.catalog.base_tail(cid),
                    on_own_manifest=lambda: self.catalog.drop_base_manifest(cid),
                )
                self._stores[cid] = s
            return s

    def drop_store(self, cid: str) -> None:
        """Close and delete a collection's data (after the catalog forgot it)."""
        with self._mutex:
            s = self._stores.pop(cid, None)
            if s is not None:
                s.close()  # its queued background jobs now do nothing
        self.worker.wait_idle()  # a job already running finishes before the files go
        # its manifests go first, then the shared files no other collection names
        with self.fork_lock:
            dead = self.refs.drop(self.collection_prefix(cid))
            self._delete_private(cid)
            gc.delete_keys(self.storage, dead)

    # ------------------------------------------------------------ forks, GC

    def fork(self, src_cid: str, src_params: StoreParams, make_record, params: StoreParams, version: int | None = None):
        """Fork collection ``src_cid``; ``make_record(cid)`` commits the catalog entry."""
        return forks.fork(self, src_cid, src_params, make_record, params, version)

    def vacuum(self, stores: list[CollectionStore], keep_count: int | None = None, keep_seconds: float | None = None) -> dict:
        return forks.vacuum(self, stores, keep_count, keep_seconds)

    def open_stores(self) -> list[tuple[str, CollectionStore]]:
        """(collection id, store) of every collection opened since the engine started."""
        with self._mutex:
            return list(self._stores.items())

    def flush(self, wait: bool = True) -> None:
        with self._mutex:
            stores = list(self._stores.values())
        for s in stores:
            s.flush()
        if wait:
            self.worker.wait_idle()

    def compact(self, wait: bool = True) -> None:
        with self._mutex:
            stores = list(self._stores.values())
        for s in stores:
            s.compact()
        if wait:
            self.worker.wait_idle()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.follower is not None:
            self.follower.stop()
        self.worker.stop()
        with self._mutex:
            for s in self._stores.values():
                s.close()
            self._stores.clear()
        self.catalog.close()
        if self._lock is not None:
            self._lock.release()


_engines: dict[str, tuple[Engine, int]] = {}
# re-entrant: a client collected (``__del__``) while this thread opens an engine releases its own
_engines_lock = threading.RLock()
EPHEMERAL = ":memory:"


def open_engine(path: str | None, params: StoreParams, storage_options: dict | None = None) -> Engine:
    """Shared engine for ``path`` (None = the process's ephemeral store; ``s3://bucket/prefix``
    = a store on object storage, ``storage_options`` for ``S3Storage`` and ``lease_ttl``)."""
    key = EPHEMERAL if path is None else urls.normalize(path)
    with _engines_lock:
        entry = _engines.get(key)
        if entry is not None and not entry[0].closed:
            _engines[key] = (entry[0], entry[1] + 1)
            return entry[0]
        if path is None:
            engine = Engine(MemoryStorage(), params)
        elif urls.is_object_store(key):
            engine = _open_object_store(key, params, dict(storage_options or {}))
        else:
            storage = LocalStorage(key)
            lock = ProcessLock(key)
            lock.acquire()
            try:
                storage.remove_temp_files()
                engine = Engine(storage, params, lock, key)
            except BaseException:
                lock.release()
                raise
        _engines[key] = (engine, 1)
        return engine


def _open_object_store(url: str, params: StoreParams, options: dict) -> Engine:
    """Take the store's writer lease, then open it; every write checks the lease first."""
    from gleandb.storage.lease import DEFAULT_TTL, ObjectLease

    ttl, wait = options.pop("lease_ttl", DEFAULT_TTL), options.pop("lease_wait", None)
    for name, value in (("lease_ttl", ttl), ("lease_wait", wait)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
                                  or (name == "lease_ttl" and value == 0)):
            raise InvalidArgumentError(f"storage option {name} must be a number of seconds > 0, got {value!r}")
    storage = urls.open_storage(url, **options)
    lease = ObjectLease(storage, ttl=ttl)
    lease.acquire(wait)
    storage.fence = lease.check
    try:
        return Engine(storage, params, lease, url)
    except BaseException:
        lease.release()
        raise


def release_engine(engine: Engine) -> None:
    with _engines_lock:
        for key, (e, refs) in list(_engines.items()):
            if e is engine:
                if refs <= 1:
                    del _engines[key]
                    e.close()
                else:
                    _engines[key] = (e, refs - 1)
                return


def clear_engines() -> None:
    """Close every shared engine (tests; chromadb's ``clear_system_cache``)."""
    with _engines_lock:
        for e, _refs in _engines.values():
            e.close()
        _engines.clear()
