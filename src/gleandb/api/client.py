"""Clients: ``PersistentClient``, ``EphemeralClient``, ``Client`` and ``AdminClient``.

Same constructors and methods as chromadb's. Clients on the same path share
one engine in a process (as chromadb's share a "system"); a second *process*
opening the path for writing gets ``StoreLockedError`` naming the holder.
"""

from __future__ import annotations

import os

import time
import uuid
from typing import Any, Sequence

from gleandb.api import validation as v
from gleandb.api.collection import Collection
from gleandb.api.errors import AuthorizationError, InvalidArgumentError, NotFoundError
from gleandb.api.schema import reconcile, schema_to_json
from gleandb.api.settings import Settings
from gleandb.catalog.catalog import DEFAULT_DATABASE, DEFAULT_TENANT, CollectionRecord
from gleandb.embeddings.functions import DefaultEmbeddingFunction, build_ef, describe_ef, ef_name
from gleandb.engine.database import Engine, clear_engines, open_engine, release_engine
from gleandb.engine.store import CollectionStore, StoreParams
from gleandb.index.fulltext import FullTextConfig
from gleandb.index.vector import QUANTIZATIONS
from gleandb.retrieval import config as retrieval_config

VERSION = "0.1.0"  # gleandb's own version: gleandb.__version__
# what get_version() reports: chromadb 1.5.9's embedded client returns its package version, and
# code written for chromadb compares it (e.g. ">= 0.4"); gleandb implements that version's API
CHROMA_COMPAT_VERSION = "1.5.9"

HNSW_DEFAULTS = {
    "space": "l2",
    "ef_construction": 100,
    "ef_search": 100,
    "max_neighbors": 16,
    "resize_factor": 1.2,
    "sync_threshold": 1000,
}
_LEGACY_KEYS = {
    "hnsw:space": "space",
    "hnsw:construction_ef": "ef_construction",
    "hnsw:search_ef": "ef_search",
    "hnsw:M": "max_neighbors",
    "hnsw:resize_factor": "resize_factor",
    "hnsw:sync_threshold": "sync_threshold",
    "hnsw:num_threads": "num_threads",
    "hnsw:batch_size": "batch_size",
}
_HNSW_UPDATABLE = {"ef_search", "num_threads", "batch_size", "sync_threshold", "resize_factor", "max_neighbors"}
_HNSW_KNOWN = set(HNSW_DEFAULTS) | {"num_threads", "batch_size"}


def _hnsw_block_is_default(block: dict) -> bool:
    """Whether a configuration's hnsw block sets only chromadb's default values (its
    num_threads default is the number of usable cores)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        cores = os.cpu_count() or 1
    defaults = {**HNSW_DEFAULTS, "batch_size": 100, "num_threads": cores}
    return all(key in defaults and value == defaults[key] for key, value in block.items())


def _vector_index_config(block: Any) -> dict:
    """The ``vector_index`` configuration block (gleandb extension), validated:
    ``{"quantization": None | "sq8"}``; returns {} for the default (no quantization)."""
    if block is None:
        return {}
    if not isinstance(block, dict):
        raise InvalidArgumentError(f"Invalid vector_index configuration {block!r}: expected a dict")
    for key in block:
        if key != "quantization":
            raise InvalidArgumentError(f"Unknown vector_index configuration field {key!r}: expected 'quantization'")
    q = block.get("quantization")
    if q not in QUANTIZATIONS:
        raise InvalidArgumentError(f"Invalid vector_index quantization {q!r}: expected one of None, 'sq8'")
    return {"quantization": q} if q else {}


class _EngineUser:
    """Shared handling of the engine reference for clients."""

    _engine: Engine | None

    def __init__(self, settings: Settings):
        self._settings = settings
        path = settings.persist_directory if settings.is_persistent else None
        options = dict(getattr(settings, "storage_options", None) or {})
        options.setdefault("lease_ttl", float(getattr(settings, "lease_ttl", 10.0)))
        self._engine = open_engine(path, self._base_params(), options)

    def _base_params(self) -> StoreParams:
        s = self._settings
        return StoreParams(
            memtable_max_rows=int(s.memtable_max_rows),
            index_min_rows=int(s.index_min_rows),
            wal_sync=bool(s.wal_sync),
            compaction_min_segments=int(s.compaction_min_segments),
            version_retention_count=int(s.version_retention_count),
            version_retention_seconds=float(s.version_retention_seconds),
        )

    @property
    def engine(self) -> Engine:
        if self._engine is None or self._engine.closed:
            raise InvalidArgumentError("This client has been closed")
        return self._engine

    @property
    def _catalog(self):
        return self.engine.catalog

    def close(self) -> None:
        if self._engine is not None:
            release_engine(self._engine)
            self._engine = None

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass


class ClientAPI(_EngineUser):
    """An embedded client bound to one tenant and database."""

    def __init__(self, settings: Settings, tenant: str = DEFAULT_TENANT, database: str = DEFAULT_DATABASE):
        super().__init__(settings)
        tenant, database = str(tenant), str(database)
        try:
            self._check_tenant_database(tenant, database)
        except BaseException:
            self.close()
            raise
        self.tenant = tenant
        self.database = database

    def _check_tenant_database(self, tenant: str, database: str) -> None:
        if not self._catalog.has_tenant(tenant):
            raise ValueError(f"Could not connect to tenant {tenant}. Are you sure it exists?")
        if not self._catalog.has_database(database, tenant):
            raise ValueError(f"Could not connect to database {database} for tenant {tenant}. Are you sure it exists?")

    # ----------------------------------------------------------- system

    def heartbeat(self) -> int:
        return time.time_ns()

    def get_version(self) -> str:
        """The chromadb version whose API this implements (as chromadb's embedded client
        reports its own); gleandb's version is ``gleandb.__version__``."""
        return CHROMA_COMPAT_VERSION

    def get_settings(self) -> Settings:
        return self._settings

    def get_max_batch_size(self) -> int:
        # no batch-size cliff: one call may carry any number of rows
        return 1_000_000_000

    def get_user_identity(self) -> dict:
        return {"user_id": "", "tenant": self.tenant, "databases": [self.database]}

    def set_tenant(self, tenant: str, database: str = DEFAULT_DATABASE) -> None:
        self._check_tenant_database(tenant, database)
        self.tenant, self.database = tenant, database

    def set_database(self, database: str) -> None:
        self._check_tenant_database(self.tenant, database)
        self.database = database

    @staticmethod
    def clear_system_cache() -> None:
        clear_engines()

    def reset(self) -> bool:
        if not self._settings.allow_reset:
            # chromadb's class and message; the hint after it says how to enable reset
            raise AuthorizationError("Reset is disabled by config (to enable it, set `allow_reset` to `True` in "
                                     "your Settings() or include `ALLOW_RESET=TRUE` in your environment variables)")
        for cid in self._catalog.reset():
            self.engine.drop_store(cid)
        return True

    def flush(self) -> None:
        """Write every memtable to segments and wait for indexes (gleandb extension)."""
        self.engine.flush(wait=True)

    def compact(self) -> None:
        """Flush, merge segments and reclaim deleted rows now (gleandb extension)."""
        self.engine.flush(wait=True)
        self.engine.compact(wait=True)

    def vacuum(self, retention_count: int | None = None, retention_seconds: float | None = None) -> dict:
        """Flush and compact every collection of the store, drop versions beyond retention
        (the Settings', or these overrides) and delete files nothing references; returns a
        report with ``bytes_reclaimed`` (gleandb extension)."""
        stores = [self._store_for(rec) for rec in self._catalog.all_collections()]
        return self.engine.vacuum(stores, retention_count, retention_seconds)

    def _fork(self, rec: CollectionRecord, new_name: str, version: int | None) -> CollectionRecord:
        """Fork the collection of ``rec`` as ``new_name`` (see ``Collection.fork``)."""
        v.validate_collection_name(new_name, field="new_name")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
            raise InvalidArgumentError(f"Invalid version {version!r}: expected an integer")
        rec = self._catalog.get_collection_by_id(rec.id)
        self._catalog.check_name_free(new_name, rec.tenant, rec.database)

        def make_record(cid: str) -> CollectionRecord:
            return self._catalog.create_collection(
                new_name, rec.tenant, rec.database, rec.metadata, rec.configuration, False,
                cid=cid, forked_from=rec.id,
            )[0]

        params = self._params_for(rec)
        return self.engine.fork(rec.id, params, make_record, self._params_for(rec), version)

    # ------------------------------------------------------ collections

    def _store_for(self, rec: CollectionRecord) -> CollectionStore:
        engine = self.engine
        store = engine._stores.get(rec.id)
        if store is not None and not store._closed:
            return store
        if not self._catalog.has_collection_id(rec.id):
            raise NotFoundError(f"Collection [{rec.id}] does not exist.")
        return engine.store(rec.id, self._params_for(rec))

    def _params_for(self, rec: CollectionRecord) -> StoreParams:
        p = self._base_params()
        h = {**HNSW_DEFAULTS, **(rec.configuration.get("hnsw") or {})}
        p.space = h["space"]
        p.M = int(h["max_neighbors"])
        p.ef_construction = int(h["ef_construction"])
        p.ef_search = int(h["ef_search"])
        p.fulltext = FullTextConfig.from_dict(rec.configuration.get("fulltext"))
        p.quantization = (rec.configuration.get("vector_index") or {}).get("quantization")
        return p

    def _apply_params(self, rec: CollectionRecord) -> None:
        store = self._store_for(rec)
        fresh = self._params_for(rec)
        store.params.ef_search = fresh.ef_search

    def _make_configuration(self, metadata: dict | None, configuration: dict | None, ef: Any) -> dict:
        hnsw = dict(HNSW_DEFAULTS)
        if ef is not None and not isinstance(ef, DefaultEmbeddingFunction):
            space = getattr(ef, "default_space", None)
            if callable(space):
                try:
                    s = space()
                    if s in ("l2", "cosine", "ip"):
                        hnsw["space"] = s
                except Exception:
                    pass
        cfg = dict(configuration or {})
        user_hnsw = cfg.get("hnsw") or {}
        if cfg.get("hnsw") is not None and cfg.get("spann") is not None:
            raise ValueError("hnsw and spann cannot both be provided")
        for key, value in user_hnsw.items():
            if key not in _HNSW_KNOWN:
                raise InvalidArgumentError(f"Unknown HNSW configuration field {key!r}")
            hnsw[key] = value
        if cfg.get("spann") is None and _hnsw_block_is_default(user_hnsw):
            # chromadb 1.5.9 reads the legacy hnsw:* metadata keys (over the configuration's
            # values) only when the configuration leaves the index at its defaults: no spann
            # block and no non-default hnsw value; otherwise it ignores them
            for key, value in (metadata or {}).items():
                if key in _LEGACY_KEYS:
                    hnsw[_LEGACY_KEYS[key]] = value
        spann = cfg.get("spann") or {}
        if "space" in spann and "space" not in user_hnsw:
            hnsw["space"] = spann["space"]
        if "ef_search" in spann and "ef_search" not in user_hnsw:
            hnsw["ef_search"] = spann["ef_search"]
        if hnsw["space"] not in ("l2", "cosine", "ip"):
            raise InvalidArgumentError(f"Invalid space {hnsw['space']!r}: expected one of l2, cosine, ip")
        for key in ("ef_construction", "ef_search", "max_neighbors"):
            val = hnsw[key]
            if not isinstance(val, int) or isinstance(val, bool) or val < 1:
                raise InvalidArgumentError(f"Invalid HNSW {key} {val!r}: expected a positive integer")
        cfg_ef = cfg.get("embedding_function")
        if cfg_ef is not None and ef is not None and not isinstance(ef, DefaultEmbeddingFunction):
            if ef_name(cfg_ef) != ef_name(ef):
                raise ValueError(
                    "Multiple embedding functions provided. Please provide only one. "
                    f"Embedding function conflict: {ef_name(ef)} vs {ef_name(cfg_ef)}"
                )
        chosen = cfg_ef if cfg_ef is not None else ef
        fulltext = FullTextConfig.from_dict(cfg.get("fulltext")).to_dict()
        out = {
            "hnsw": {k: hnsw[k] for k in HNSW_DEFAULTS},
            "spann": None,
            "embedding_function": describe_ef(chosen),
            "fulltext": fulltext,
        }
        retrieval = retrieval_config.validate(cfg.get("retrieval"))
        if retrieval:  # retrieve()'s stored defaults (gleandb.retrieval.config)
            out["retrieval"] = retrieval
        vector_index = _vector_index_config(cfg.get("vector_index"))
        if vector_index:  # gleandb extension: quantized vectors (docs/memory-and-quantization.md)
            out["vector_index"] = vector_index
        return out

    @staticmethod
    def _apply_schema(schema: Any, metadata: dict | None, configuration: dict | None) -> tuple[dict | None, dict]:
        """A ``Schema`` on create (see ``gleandb.api.schema``): chromadb's checks; its vector
        index configuration becomes the hnsw configuration. Returns (configuration, the
        index switches to persist)."""
        sj = schema_to_json(schema)
        cfg = dict(configuration or {})
        legacy = {k: val for k, val in (metadata or {}).items() if k in _LEGACY_KEYS}
        config_default = (cfg.get("spann") is None and _hnsw_block_is_default(cfg.get("hnsw") or {})
                          and _hnsw_block_is_default({_LEGACY_KEYS[k]: val for k, val in legacy.items()}))
        switches, hnsw = reconcile(sj, config_default)
        if hnsw:
            cfg["hnsw"] = {**(cfg.get("hnsw") or {}), **hnsw}
        return cfg, switches

    def _updated_configuration(self, rec: CollectionRecord, configuration: dict) -> dict:
        if configuration.get("vector_index") is not None:
            raise InvalidArgumentError(
                "Updating vector_index configuration is not supported: it is fixed when the collection "
                "is created (its segments are built with it); create a new collection instead"
            )
        if configuration.get("fulltext") is not None:
            raise InvalidArgumentError(
                "Updating fulltext configuration is not supported: it is fixed when the collection "
                "is created (its indexes are built with it); create a new collection instead"
            )
        cfg = {k: (dict(val) if isinstance(val, dict) else val) for k, val in rec.configuration.items()}
        hnsw = dict(cfg.get("hnsw") or HNSW_DEFAULTS)
        for key, value in (configuration.get("hnsw") or {}).items():
            if key not in _HNSW_UPDATABLE:
                raise ValueError(f"Updating hnsw {key} is not supported: updatable fields are {', '.join(sorted(_HNSW_UPDATABLE))}")
            if key in hnsw or key in HNSW_DEFAULTS:
                hnsw[key] = value
        spann = configuration.get("spann") or {}
        if "ef_search" in spann:
            hnsw["ef_search"] = spann["ef_search"]
        cfg["hnsw"] = hnsw
        if configuration.get("embedding_function") is not None:
            cfg["embedding_function"] = describe_ef(configuration["embedding_function"])
        if configuration.get("retrieval") is not None:  # replaced as a whole; {} = the built-in default
            retrieval = retrieval_config.validate(configuration["retrieval"])
            cfg.pop("retrieval", None)
            if retrieval:
                cfg["retrieval"] = retrieval
        return cfg

    def _wrap(self, rec: CollectionRecord, embedding_function: Any, data_loader: Any) -> Collection:
        """A Collection object with chromadb's choice of embedding function: an explicit
        non-default function wins, else the one persisted in the configuration."""
        ef = embedding_function
        persisted = rec.configuration.get("embedding_function")
        persisted_name = (persisted or {}).get("name")
        if ef is None or (isinstance(ef, DefaultEmbeddingFunction) and persisted_name != "default"):
            ef = build_ef(persisted) or ef
        elif (
            persisted
            and persisted.get("type") == "known"
            and persisted.get("name") != "default"
            and ef_name(ef) not in (None, persisted.get("name"))
        ):
            raise ValueError(
                "An embedding function already exists in the collection configuration, and a new one is "
                f"provided. If this is intentional, please embed documents separately. Embedding function "
                f"conflict: new: {ef_name(ef)} vs persisted: {persisted.get('name')}"
            )
        return Collection(self, rec, ef, data_loader)

    def create_collection(
        self,
        name: str,
        schema: Any = None,
        configuration: dict | None = None,
        metadata: dict | None = None,
        embedding_function: Any = DefaultEmbeddingFunction(),
        data_loader: Any = None,
        get_or_create: bool = False,
    ) -> Collection:
        v.validate_collection_name(name)
        metadata = v.validate_collection_metadata(metadata, creating=True)
        switches = None
        if schema is not None:
            configuration, switches = self._apply_schema(schema, metadata, configuration)
            schema_ef = getattr(schema, "embedding_function", None)
            if schema_ef is not None and (embedding_function is None or isinstance(embedding_function, DefaultEmbeddingFunction)):
                embedding_function = schema_ef
        config = self._make_configuration(metadata, configuration, embedding_function)
        if switches is not None:
            config["schema"] = switches
        rec, _created = self._catalog.create_collection(
            name, self.tenant, self.database, v.stored_collection_metadata(metadata), config, get_or_create
        )
        return self._wrap(rec, embedding_function, data_loader)

    def get_or_create_collection(
        self,
        name: str,
        schema: Any = None,
        configuration: dict | None = None,
        metadata: dict | None = None,
        embedding_function: Any = DefaultEmbeddingFunction(),
        data_loader: Any = None,
    ) -> Collection:
        return self.create_collection(
            name, schema, configuration, metadata, embedding_function, data_loader, get_or_create=True
        )

    def get_collection(self, name: str, embedding_function: Any = DefaultEmbeddingFunction(), data_loader: Any = None) -> Collection:
        rec = self._catalog.get_collection(name, self.tenant, self.database)
        return self._wrap(rec, embedding_function, data_loader)

    def get_collection_by_id(self, id: uuid.UUID | str, embedding_function: Any = DefaultEmbeddingFunction(), data_loader: Any = None) -> Collection:
        rec = self._catalog.get_collection_by_id(str(id))
        if rec.tenant != self.tenant or rec.database != self.database:
            raise NotFoundError(f"Collection [{id}] does not exist")
        return self._wrap(rec, embedding_function, data_loader)

    def list_collections(self, limit: int | None = None, offset: int | None = None) -> list[Collection]:
        limit, offset = v.validate_limit_offset(limit, offset)  # chromadb: u32, not a slice
        recs = self._catalog.list_collections(self.tenant, self.database)
        recs = recs[offset or 0 :]
        if limit is not None:
            recs = recs[:limit]
        return [self._wrap(r, DefaultEmbeddingFunction(), None) for r in recs]

    def count_collections(self) -> int:
        return len(self._catalog.list_collections(self.tenant, self.database))

    def delete_collection(self, name: str) -> None:
        cid = self._catalog.delete_collection(name, self.tenant, self.database)
        self.engine.drop_store(cid)


class AdminClient(_EngineUser):
    """Tenant and database management (chromadb's ``AdminClient``)."""

    def __init__(self, settings: Settings | None = None):
        super().__init__(settings or Settings())

    def create_tenant(self, name: str) -> None:
        self._catalog.create_tenant(v.validate_tenant_name(name))

    def get_tenant(self, name: str) -> dict:
        return {"name": self._catalog.get_tenant(name)}

    def create_database(self, name: str, tenant: str = DEFAULT_TENANT) -> None:
        v.validate_database_name(name, creating=True)
        if not self._catalog.has_tenant(tenant):  # as chromadb, this creates the tenant: check its name
            v.validate_tenant_name(tenant)
        self._catalog.create_database(name, tenant)

    def get_database(self, name: str, tenant: str = DEFAULT_TENANT) -> dict:
        v.validate_database_name(name)
        return self._catalog.get_database(name, tenant)

    def delete_database(self, name: str, tenant: str = DEFAULT_TENANT) -> None:
        for cid in self._catalog.delete_database(name, tenant):
            self.engine.drop_store(cid)

    def list_databases(self, limit: int | None = None, offset: int | None = None, tenant: str = DEFAULT_TENANT) -> Sequence[dict]:
        limit, offset = v.validate_limit_offset(limit, offset)  # chromadb: u32, not a slice
        return self._catalog.list_databases(tenant, limit, offset)


def PersistentClient(path: Any = "./chroma", settings: Settings | None = None, tenant: str = DEFAULT_TENANT,
                     database: str = DEFAULT_DATABASE, storage_options: dict | None = None) -> ClientAPI:
    """A client on a directory: durable, crash-safe, one writer process at a time.

    ``path`` may be ``"s3://bucket/prefix"``: the store then lives on S3-compatible object
    storage (docs/object-storage.md), configured by the AWS_* environment variables or
    ``storage_options`` (endpoint, region, credentials, allow_http, lease_ttl...)."""
    changes: dict = {"is_persistent": True, "persist_directory": str(path)}
    if storage_options is not None:
        changes["storage_options"] = dict(storage_options)
    settings = (settings or Settings()).copy(**changes)
    return ClientAPI(settings, tenant, database)


def EphemeralClient(settings: Settings | None = None, tenant: str = DEFAULT_TENANT, database: str = DEFAULT_DATABASE) -> ClientAPI:
    """An in-memory client; its data is shared by the process's ephemeral clients and lost at exit."""
    settings = (settings or Settings()).copy(is_persistent=False)
    return ClientAPI(settings, tenant, database)


def Client(settings: Settings | None = None, tenant: str = DEFAULT_TENANT, database: str = DEFAULT_DATABASE) -> ClientAPI:
    """Ephemeral unless ``settings.is_persistent`` (chromadb's ``Client``)."""
    return ClientAPI(settings or Settings(), tenant, database)


def HttpClient(
    host: str = "localhost",
    port: int = 8000,
    ssl: bool = False,
    headers: dict[str, str] | None = None,
    settings: Settings | None = None,
    tenant: str = DEFAULT_TENANT,
    database: str = DEFAULT_DATABASE,
) -> Any:
    """A client of a server (``glean run`` or Chroma) at ``host:port``; see
    ``gleandb.api.http_client`` (imported on first use: it needs httpx)."""
    from gleandb.api.http_client import HttpClient as _http_client

    return _http_client(host, port, ssl, headers, settings, tenant, database)
