"""Tenants, databases and collections: one small JSON document, replaced atomically.

The catalog changes rarely (create/rename/delete), so it is one object
(``catalog.json``) rewritten whole through ``Storage.put``; a crash leaves the
old or the new catalog, never a mix. Collection data lives under
``collections/<id>/`` and is owned by the engine's ``CollectionStore``.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from gleandb.api.errors import InternalError, NotFoundError, UniqueConstraintError
from gleandb.storage.base import KeyNotFound, Storage

CATALOG_KEY = "catalog.json"
DEFAULT_TENANT = "default_tenant"
DEFAULT_DATABASE = "default_database"
DEFAULT_DATABASE_ID = "00000000-0000-0000-0000-000000000000"


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


def _encode(data: dict) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


class Catalog:
    def __init__(self, storage: Storage):
        self.storage = storage
        self._lock = threading.RLock()
        try:
            self._raw = storage.get(CATALOG_KEY)
            self._data = json.loads(self._raw)
        except KeyNotFound:
            self._data = {
                "format": 1,
                "tenants": {DEFAULT_TENANT: {"databases": {DEFAULT_DATABASE: {"id": DEFAULT_DATABASE_ID}}}},
                "collections": {},
            }
            self._raw = _encode(self._data)
            self.storage.put(CATALOG_KEY, self._raw)

    def _commit(self, mutate) -> Any:
        """Apply ``mutate`` to a copy, persist it, then swap it in (no trace on failure).

        The copy is parsed from the last saved bytes and saved with the C JSON encoder:
        with thousands of collections (one per fork) ``copy.deepcopy`` and the indented
        (pure-Python) encoder cost ~10x more than the parse and the write."""
        with self._lock:
            data = json.loads(self._raw)
            result = mutate(data)
            raw = _encode(data)
            self.storage.put(CATALOG_KEY, raw)
            self._data, self._raw = data, raw
            return result

    # ---------------------------------------------------------------- tenants

    def create_tenant(self, name: str) -> None:
        def m(d):
            if name in d["tenants"]:
                raise UniqueConstraintError(f"Tenant [{name}] already exists")
            d["tenants"][name] = {"databases": {}}

        self._commit(m)

    def has_tenant(self, name: str) -> bool:
        return name in self._data["tenants"]

    def get_tenant(self, name: str) -> str:
        if name not in self._data["tenants"]:
            raise NotFoundError(f"Tenant [{name}] not found")
        return name

    # -------------------------------------------------------------- databases

    def create_database(self, name: str, tenant: str) -> str:
        db_id = str(uuid.uuid4())

        def m(d):
            # chromadb creates a database under a missing tenant without complaint
            t = d["tenants"].setdefault(tenant, {"databases": {}})
            if name in t["databases"]:
                raise UniqueConstraintError(f"Database [{name}] already exists")
            t["databases"][name] = {"id": db_id}

        self._commit(m)
        return db_id

    def get_database(self, name: str, tenant: str) -> dict:
        t = self._data["tenants"].get(tenant)
        if t is None or name not in t["databases"]:
            raise NotFoundError(f"Database [{name}] not found. Are you sure it exists?")
        return {"id": t["databases"][name]["id"], "name": name, "tenant": tenant}

    def has_database(self, name: str, tenant: str) -> bool:
        t = self._data["tenants"].get(tenant)
        return t is not None and name in t["databases"]

    def list_databases(self, tenant: str, limit: int | None = None, offset: int = 0) -> list[dict]:
        t = self._data["tenants"].get(tenant, {"databases": {}})
        out = [{"id": v["id"], "name": k, "tenant": tenant} for k, v in t["databases"].items()]
        out = out[offset or 0 :]
        return out if limit is None else out[:limit]

    def delete_database(self, name: str, tenant: str) -> list[str]:
        """Removes the database; returns the ids of the collections it held."""

        def m(d):
            t = d["tenants"].get(tenant)
            if t is None or name not in t["databases"]:
                raise NotFoundError(f"Database [{name}] not found. Are you sure it exists?")
            del t["databases"][name]
            gone = [cid for cid, c in d["collections"].items() if c["tenant"] == tenant and c["database"] == name]
            for cid in gone:
                del d["collections"][cid]
            return gone

        return self._commit(m)

    # ------------------------------------------------------------ collections

    def _find(self, d: dict, name: str, tenant: str, database: str) -> dict | None:
        for c in d["collections"].values():
            if c["name"] == name and c["tenant"] == tenant and c["database"] == database:
                return c
        return None

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
    ) -> tuple[CollectionRecord, bool]:
        """Returns (record, created)."""
        cid = cid or str(uuid.uuid4())

        def m(d):
            if not self.has_database(database, tenant):
                raise NotFoundError(f"Database [{database}] does not exist")
            existing = self._find(d, name, tenant, database)
            if existing is not None:
                if get_or_create:
                    return CollectionRecord(**existing), False
                raise InternalError(f"Collection [{name}] already exists")
            rec = CollectionRecord(cid, name, tenant, database, metadata, configuration, forked_from)
            d["collections"][cid] = rec.to_dict()
            return rec, True

        with self._lock:
            existing = self._find(self._data, name, tenant, database)
            if existing is not None and get_or_create:
                return CollectionRecord(**existing), False
            return self._commit(m)

    def check_name_free(self, name: str, tenant: str, database: str) -> None:
        """The error ``create_collection`` would raise for ``name``, raised early."""
        if not self.has_database(database, tenant):
            raise NotFoundError(f"Database [{database}] does not exist")
        if self._find(self._data, name, tenant, database) is not None:
            raise InternalError(f"Collection [{name}] already exists")

    def get_collection(self, name: str, tenant: str, database: str) -> CollectionRecord:
        c = self._find(self._data, name, tenant, database)
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
        return list(self._data["collections"])

    def all_collections(self) -> list[CollectionRecord]:
        return [CollectionRecord(**c) for c in self._data["collections"].values()]

    def count_forks(self, cid: str) -> int:
        """Live collections forked directly from ``cid``."""
        return sum(1 for c in self._data["collections"].values() if c.get("forked_from") == cid)

    def list_collections(self, tenant: str, database: str) -> list[CollectionRecord]:
        return [
            CollectionRecord(**c)
            for c in self._data["collections"].values()
            if c["tenant"] == tenant and c["database"] == database
        ]

    def update_collection(
        self, cid: str, name: str | None = None, metadata: dict | None = None, configuration: dict | None = None
    ) -> CollectionRecord:
        def m(d):
            c = d["collections"].get(cid)
            if c is None:
                raise NotFoundError(f"Collection [{cid}] does not exist")
            if name is not None and name != c["name"]:
                if self._find(d, name, c["tenant"], c["database"]) is not None:
                    raise InternalError(f"Collection [{name}] already exists")
                c["name"] = name
            if metadata is not None:
                c["metadata"] = metadata or None  # {}: every key was dropped
            if configuration is not None:
                c["configuration"] = configuration
            return CollectionRecord(**c)

        return self._commit(m)

    def delete_collection(self, name: str, tenant: str, database: str) -> str:
        def m(d):
            c = self._find(d, name, tenant, database)
            if c is None:
                raise NotFoundError(f"Collection [{name}] does not exist")
            del d["collections"][c["id"]]
            return c["id"]

        return self._commit(m)

    def reset(self) -> list[str]:
        def m(d):
            gone = list(d["collections"])
            d["collections"] = {}
            d["tenants"] = {DEFAULT_TENANT: {"databases": {DEFAULT_DATABASE: {"id": DEFAULT_DATABASE_ID}}}}
            return gone

        return self._commit(m)
