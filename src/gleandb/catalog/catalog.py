"""Tenants, databases and collections: a log of catalog edits with periodic checkpoints.

The catalog is kept like LevelDB's MANIFEST, so that creating, forking or deleting
a collection costs the same at 10 or 100,000 collections:

- ``catalog/log-<n>`` (the format: ``gleandb.catalog.log``): an append-only log of edits. Each record is
  ``length (u32) | crc32 (u32) | JSON`` holding a list of operations
  (``["set", path, value]`` / ``["del", path]`` on the catalog document) applied
  together. An edit is durable, and only then applied in memory, once its one
  ``sync`` returns: a failed append is cut off and changes nothing.
- ``catalog/checkpoint-<n>.json``: the whole document after every record of the
  logs numbered below ``n``, written with an atomic ``put``.

Opening reads the newest checkpoint and replays the logs numbered ``>= n`` in
order; a record that is short or fails its checksum ends its log (it was being
appended when the process died, so it was never acknowledged and nothing after
it was written). A rotation (on open, and when the log outgrows the last
checkpoint) first creates the empty ``log-<m>``, then writes
``checkpoint-<m>``, then deletes the older files: a crash at any step leaves a
newest checkpoint plus the logs after it, which replay to the same document.

A store written by the old single-file catalog (``catalog.json``) is migrated
on open: its document becomes the first checkpoint, and only after that is
``catalog.json`` replaced by a guard without collections (a checkpoint, when
present, always wins over it), so that an older gleandb fails to open the store
instead of taking it for empty.

A fork's first manifest lives in the catalog (``manifests/<cid>``), and its
source's unflushed tail when small (``tails/<cid>``), written by the same log
record that creates the fork, so that a fork is one fsync; the collection's own
files take over at its first flush. Collection data lives under
``collections/<id>/`` and is owned by the engine's ``CollectionStore``.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import dataclass, field

from gleandb.errors import InternalError, NotFoundError, UniqueConstraintError
from gleandb.catalog import log as catalog_log
from gleandb.catalog.log import (  # noqa: F401 - the format's names, re-exported
    CATALOG_DIR,
    GUARD,
    LEGACY_KEY,
    _encode,
    apply_ops,
    checkpoint_key,
    encode_record,
    is_store,
    iter_records,
    log_key,
)
from gleandb.storage.base import KeyNotFound, LogWriter, Storage
from gleandb.storage.framing import append_record

log = logging.getLogger("gleandb.catalog")

DEFAULT_TENANT = "default_tenant"
DEFAULT_DATABASE = "default_database"
DEFAULT_DATABASE_ID = "00000000-0000-0000-0000-000000000000"
# rotate when the log passes this many bytes, or the size of the last checkpoint if larger
# (so a checkpoint's cost, which grows with the catalog, is spread over as many bytes of edits)
MIN_ROTATE_BYTES = 64 << 10


@dataclass
class CollectionRecord:
    id: str
    name: str
    tenant: str
    database: str
    metadata: dict | None = None
    configuration: dict = field(default_factory=dict)
    forked_from: str | None = None  # id of the collection this one was forked from

    def to_dict(self) -> dict:
        d = {
            "id": self.id,
            "name": self.name,
            "tenant": self.tenant,
            "database": self.database,
            "metadata": self.metadata,
            "configuration": self.configuration,
        }
        if self.forked_from is not None:
            d["forked_from"] = self.forked_from
        return d


def initial_document() -> dict:
    return {
        "format": 1,
        "tenants": {DEFAULT_TENANT: {"databases": {DEFAULT_DATABASE: {"id": DEFAULT_DATABASE_ID}}}},
        "collections": {},
        "manifests": {},
        "tails": {},
    }


def read_document(storage: Storage) -> tuple[dict, int, list[str]]:
    """The catalog as its files say, writing nothing (see ``log.read_document``)."""
    doc, top, keys = catalog_log.read_document(storage, initial_document())
    doc.setdefault("tails", {})  # catalogs from before inline tails
    return doc, top, keys


class Catalog:
    def __init__(self, storage: Storage):
        self.storage = storage
        self._lock = threading.RLock()
        self._log: LogWriter | None = None
        self._log_number = 0
        self._rotate_at = MIN_ROTATE_BYTES
        doc, top, keys = read_document(storage)
        self._data = doc
        self._staged: dict[str, dict] = {}
        # forks whose own files took over: their first manifest and tail go with the next record
        self._forgotten: set[str] = set()
        self._reindex()
        self._rotate(top + 1, old_keys=keys)
        # last: a migrated catalog.json is replaced only once a checkpoint holds its document
        try:
            legacy = json.loads(storage.get(LEGACY_KEY))
        except (KeyNotFound, ValueError):
            legacy = None
        if legacy != GUARD:
            storage.put(LEGACY_KEY, _encode(GUARD))

    # --------------------------------------------------------------- the log

    def _reindex(self) -> None:
        self._by_name = {(c["tenant"], c["database"], c["name"]): cid for cid, c in self._data["collections"].items()}
        self._name_of = {cid: key for key, cid in self._by_name.items()}

    def _rotate(self, n: int, old_keys: list[str]) -> None:
        """Start log ``n`` and checkpoint the document into ``checkpoint-n``, then drop older files."""
        new_log = self.storage.open_log(log_key(n))
        try:
            raw = _encode(self._data)
            self.storage.put(checkpoint_key(n), raw)
        except BaseException:
            new_log.close()
            self.storage.delete(log_key(n))
            raise
        old_log, self._log, self._log_number = self._log, new_log, n
        self._rotate_at = max(MIN_ROTATE_BYTES, len(raw))
        if old_log is not None:
            old_log.close()
        for key in old_keys:  # superseded by the checkpoint just written
            if key not in (log_key(n), checkpoint_key(n)):
                self.storage.delete(key)

    def _edit(self, ops: list) -> None:
        """Make ``ops`` durable (one append + one sync), then apply them in memory."""
        if self._forgotten:  # deferred by drop_base_manifest: they ride along, for no extra sync
            ops = [["del", [part, cid]] for cid in sorted(self._forgotten)
                   for part in ("manifests", "tails") if cid in self._data[part]] + ops
        if not ops:
            return
        append_record(self._log, encode_record(ops))
        self._forgotten.clear()
        apply_ops(self._data, ops)
        if any(op[1][0] == "collections" for op in ops):
            self._update_index(ops)
        if self._log.size >= self._rotate_at:
            old = [log_key(self._log_number), checkpoint_key(self._log_number)]
            try:
                self._rotate(self._log_number + 1, old)
            except Exception as e:  # the edit is durable already; retry at the next one
                log.warning("catalog checkpoint failed (will retry): %s", e)

    def _update_index(self, ops: list) -> None:
        """Keep the (tenant, database, name) -> id index in step with the document."""
        if any(op[1][0] == "collections" and len(op[1]) != 2 for op in ops):
            self._reindex()  # the whole map was replaced (reset)
            return
        for cid in {op[1][1] for op in ops if op[1][0] == "collections"}:
            old = self._name_of.pop(cid, None)
            if old is not None and self._by_name.get(old) == cid:
                del self._by_name[old]
            c = self._data["collections"].get(cid)
            if c is not None:
                key = (c["tenant"], c["database"], c["name"])
                self._by_name[key] = cid
                self._name_of[cid] = key

    def close(self) -> None:
        with self._lock:
            if self._forgotten:
                try:
                    self._edit([])
                except Exception as e:  # harmless: the next open drops them again
                    log.warning("could not drop forks' first manifests from the catalog: %s", e)
            if self._log is not None:
                self._log.close()

    # ---------------------------------------------------------------- tenants

    def create_tenant(self, name: str) -> None:
        with self._lock:
            if name in self._data["tenants"]:
                raise UniqueConstraintError(f"Tenant [{name}] already exists")
            self._edit([["set", ["tenants", name], {"databases": {}}]])

    def has_tenant(self, name: str) -> bool:
        return name in self._data["tenants"]

    def get_tenant(self, name: str) -> str:
        if name not in self._data["tenants"]:
            raise NotFoundError(f"Tenant [{name}] not found")
        return name

    # -------------------------------------------------------------- databases

    def create_database(self, name: str, tenant: str) -> str:
        db_id = str(uuid.uuid4())
        with self._lock:
            t = self._data["tenants"].get(tenant)
            if t is not None and name in t["databases"]:
                raise UniqueConstraintError(f"Database [{name}] already exists")
            ops = []
            if t is None:  # chromadb creates a database under a missing tenant without complaint
                ops.append(["set", ["tenants", tenant], {"databases": {}}])
            ops.append(["set", ["tenants", tenant, "databases", name], {"id": db_id}])
            self._edit(ops)
        return db_id

    def get_database(self, name: str, tenant: str) -> dict:
        t = self._data["tenants"].get(tenant)
        db = None if t is None else t["databases"].get(name)
        if db is None:
            raise NotFoundError(f"Database [{name}] not found. Are you sure it exists?")
        return {"id": db["id"], "name": name, "tenant": tenant}

    def has_database(self, name: str, tenant: str) -> bool:
        t = self._data["tenants"].get(tenant)
        return t is not None and name in t["databases"]

    def list_databases(self, tenant: str, limit: int | None = None, offset: int = 0) -> list[dict]:
        with self._lock:  # edits change the document in place: iterate under the lock
            t = self._data["tenants"].get(tenant, {"databases": {}})
            out = [{"id": v["id"], "name": k, "tenant": tenant} for k, v in t["databases"].items()]
        out = out[offset or 0 :]
        return out if limit is None else out[:limit]

    def delete_database(self, name: str, tenant: str) -> list[str]:
        """Removes the database; returns the ids of the collections it held."""
        with self._lock:
            if not self.has_database(name, tenant):
                raise NotFoundError(f"Database [{name}] not found. Are you sure it exists?")
            gone = [cid for cid, c in self._data["collections"].items()
                    if c["tenant"] == tenant and c["database"] == name]
            ops = [["del", ["tenants", tenant, "databases", name]]]
            for cid in gone:
                ops += self._drop_ops(cid)
            self._edit(ops)
            return gone

    # ------------------------------------------------------------ collections

    def _drop_ops(self, cid: str) -> list:
        ops = [["del", ["collections", cid]]]
        for part in ("manifests", "tails"):
            if cid in self._data[part]:
                ops.append(["del", [part, cid]])
        return ops

    def _find(self, name: str, tenant: str, database: str) -> dict | None:
        cid = self._by_name.get((tenant, database, name))
        return None if cid is None else self._data["collections"].get(cid)

    def create_collection(
        self,
        name: str,
        tenant: str,
        database: str,
        metadata: dict | None,
        configuration: dict,
        get_or_create: bool,
        cid: str | None = None,
        forked_from: str | None = None,
        base_manifest: dict | None = None,
    ) -> tuple[CollectionRecord, bool]:
        """Returns (record, created). ``base_manifest``: a fork's first manifest, committed
        by the same log record as the collection (see ``base_manifest``)."""
        cid = cid or str(uuid.uuid4())
        with self._lock:
            base_tail = None
            if base_manifest is None:
                base_manifest, base_tail = self._staged.pop(cid, (None, None))
            existing = self._find(name, tenant, database)
            if existing is not None and get_or_create:
                return CollectionRecord(**existing), False
            if not self.has_database(database, tenant):
                raise NotFoundError(f"Database [{database}] does not exist")
            if existing is not None:
                raise InternalError(f"Collection [{name}] already exists")
            rec = CollectionRecord(cid, name, tenant, database, metadata, configuration, forked_from)
            ops = [["set", ["collections", cid], rec.to_dict()]]
            if base_manifest is not None:
                ops.append(["set", ["manifests", cid], base_manifest])
            if base_tail is not None:
                ops.append(["set", ["tails", cid], base_tail])
            self._edit(ops)
            return rec, True

    def stage_manifest(self, cid: str, manifest: dict, tail: str | None = None) -> None:
        """Hold ``manifest`` (and a small WAL ``tail``, base64) as the first version of
        collection ``cid``, to be written by the log record that creates it (a fork: one
        fsync for all). Dropped if the collection is never created."""
        with self._lock:
            self._staged[cid] = (manifest, tail)

    def unstage_manifest(self, cid: str) -> None:
        with self._lock:
            self._staged.pop(cid, None)

    def drop_base_manifest(self, cid: str) -> None:
        """Forget collection ``cid``'s first manifest (and tail) once its own files take over.

        The edit costs no sync of its own: it rides with the next catalog record (in a
        fork chain, the next fork's) or the close. A crash before leaves the copies beside
        the collection's manifest files, which win; its next open drops them again."""
        with self._lock:
            if cid in self._data["manifests"] or cid in self._data["tails"]:
                self._forgotten.add(cid)

    def base_tail(self, cid: str) -> str | None:
        """The WAL tail of a fork's first version, when the catalog holds it (base64)."""
        return None if cid in self._forgotten else self._data["tails"].get(cid)

    def base_manifest(self, cid: str) -> dict | None:
        """The first manifest of collection ``cid`` when the catalog holds it (forks)."""
        return None if cid in self._forgotten else self._data["manifests"].get(cid)

    def check_name_free(self, name: str, tenant: str, database: str) -> None:
        """The error ``create_collection`` would raise for ``name``, raised early."""
        if not self.has_database(database, tenant):
            raise NotFoundError(f"Database [{database}] does not exist")
        if self._find(name, tenant, database) is not None:
            raise InternalError(f"Collection [{name}] already exists")

    def get_collection(self, name: str, tenant: str, database: str) -> CollectionRecord:
        c = self._find(name, tenant, database)
        if c is None:
            raise NotFoundError(f"Collection [{name}] does not exist")
        return CollectionRecord(**c)

    def get_collection_by_id(self, cid: str) -> CollectionRecord:
        c = self._data["collections"].get(cid)
        if c is None:
            raise NotFoundError(f"Collection [{cid}] does not exist")
        return CollectionRecord(**c)

    def has_collection_id(self, cid: str) -> bool:
        return cid in self._data["collections"]

    def collection_ids(self) -> list[str]:
        with self._lock:
            return list(self._data["collections"])

    def all_collections(self) -> list[CollectionRecord]:
        with self._lock:
            return [CollectionRecord(**c) for c in self._data["collections"].values()]

    def count_forks(self, cid: str) -> int:
        """Live collections forked directly from ``cid``."""
        with self._lock:
            return sum(1 for c in self._data["collections"].values() if c.get("forked_from") == cid)

    def list_collections(self, tenant: str, database: str) -> list[CollectionRecord]:
        with self._lock:
            return [
                CollectionRecord(**c)
                for c in self._data["collections"].values()
                if c["tenant"] == tenant and c["database"] == database
            ]

    def update_collection(
        self, cid: str, name: str | None = None, metadata: dict | None = None, configuration: dict | None = None
    ) -> CollectionRecord:
        with self._lock:
            c = self._data["collections"].get(cid)
            if c is None:
                raise NotFoundError(f"Collection [{cid}] does not exist")
            new = dict(c)
            if name is not None and name != c["name"]:
                if self._find(name, c["tenant"], c["database"]) is not None:
                    raise InternalError(f"Collection [{name}] already exists")
                new["name"] = name
            if metadata is not None:
                new["metadata"] = metadata or None  # {}: every key was dropped
            if configuration is not None:
                new["configuration"] = configuration
            self._edit([["set", ["collections", cid], new]])
            return CollectionRecord(**self._data["collections"][cid])

    def delete_collection(self, name: str, tenant: str, database: str) -> str:
        with self._lock:
            c = self._find(name, tenant, database)
            if c is None:
                raise NotFoundError(f"Collection [{name}] does not exist")
            cid = c["id"]
            self._edit(self._drop_ops(cid))
            return cid

    def reset(self) -> list[str]:
        with self._lock:
            gone = list(self._data["collections"])
            fresh = initial_document()
            self._edit([["set", ["collections"], {}], ["set", ["manifests"], {}], ["set", ["tails"], {}],
                        ["set", ["tenants"], fresh["tenants"]]])
            return gone
