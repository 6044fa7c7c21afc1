"""The catalog as a query node sees it: read from the writer's files, never written.

A follower re-reads the catalog when its files change (their names and sizes: an append
grows the log, a rotation renames it), so a query node learns of new collections within
its poll delay. A lookup that misses refreshes once first (at most every
``MIN_MISS_REFRESH_S``), so a collection the writer just created is found at once.
"""

from __future__ import annotations

import threading
import time

from gleandb.errors import NotFoundError, ReadOnlyStoreError
from gleandb.catalog.catalog import MIN_ROTATE_BYTES, Catalog, read_document
from gleandb.catalog.log import CATALOG_DIR, LEGACY_KEY
from gleandb.storage.base import KeyNotFound, Storage, StorageError

MIN_MISS_REFRESH_S = 0.01
_ATTEMPTS = 8  # a rotation can delete the files being read: read again


class FollowerCatalog(Catalog):
    def __init__(self, storage: Storage):
        # no call to Catalog.__init__: it rotates the log and writes a checkpoint
        self.storage = storage
        self._lock = threading.RLock()
        self._log = None
        self._log_number = 0
        self._rotate_at = MIN_ROTATE_BYTES
        self._staged: dict[str, tuple] = {}
        self._forgotten: set[str] = set()  # the writer's deferred drops; a follower never has any
        self._signature: tuple | None = None
        self._last_refresh = 0.0
        self._data: dict = {}
        self.refresh()

    def _files_signature(self) -> tuple:
        keys = self.storage.list(CATALOG_DIR)
        if not keys and self.storage.exists(LEGACY_KEY):
            keys = [LEGACY_KEY]
        return tuple((k, self.storage.size_of(k)) for k in keys)

    def refresh(self) -> bool:
        """Re-read the catalog if its files changed; True when the document changed."""
        with self._lock:
            self._last_refresh = time.monotonic()
            last: Exception | None = None
            for _ in range(_ATTEMPTS):
                try:
                    sig = self._files_signature()
                    if sig == self._signature:
                        return False
                    if not sig and self._signature:
                        raise StorageError("the store's catalog files are gone (storage unreachable or emptied?); "
                                           "serving the last catalog read")
                    doc, _top, _keys = read_document(self.storage)
                    if self._files_signature() != sig:
                        continue  # changed while being read
                except KeyNotFound as e:  # rotated under us
                    last = e
                    continue
                changed = doc != self._data
                self._data = doc
                self._reindex()
                self._signature = sig
                return changed
            raise StorageError(f"the catalog kept changing while being read ({_ATTEMPTS} attempts): {last}")

    def _refresh_on_miss(self) -> bool:
        if time.monotonic() - self._last_refresh < MIN_MISS_REFRESH_S:
            return False
        try:
            return self.refresh()
        except Exception:  # the poll reports storage errors; a lookup just misses
            return False

    def _edit(self, ops: list) -> None:
        raise ReadOnlyStoreError(
            "this node's catalog is read-only (a query node follows the writer): create, change and "
            "delete tenants, databases and collections on the writer")

    def close(self) -> None:
        pass

    # lookups that miss look at the files once more before answering "not found"

    def has_tenant(self, name: str) -> bool:
        return super().has_tenant(name) or (self._refresh_on_miss() and super().has_tenant(name))

    def get_tenant(self, name: str) -> str:
        self.has_tenant(name)
        return super().get_tenant(name)

    def has_database(self, name: str, tenant: str) -> bool:
        return super().has_database(name, tenant) or (
            self._refresh_on_miss() and super().has_database(name, tenant))

    def get_database(self, name: str, tenant: str) -> dict:
        self.has_database(name, tenant)
        return super().get_database(name, tenant)

    def has_collection_id(self, cid: str) -> bool:
        return super().has_collection_id(cid) or (self._refresh_on_miss() and super().has_collection_id(cid))

    def get_collection_by_id(self, cid: str):
        self.has_collection_id(cid)
        return super().get_collection_by_id(cid)

    def get_collection(self, name: str, tenant: str, database: str):
        try:
            return super().get_collection(name, tenant, database)
        except NotFoundError:
            if not self._refresh_on_miss():
                raise
        return super().get_collection(name, tenant, database)
