"""Collection ``Schema`` (chromadb 1.5): per-key index switches and the vector index
configuration, as far as a local collection can honour them.

chromadb's ``create_collection(schema=...)`` takes a ``Schema`` built with
``create_index`` / ``delete_index``. What gleandb does with it, as chromadb's local
(single-node) engine does:

* an inverted index switched off for a key (or for a value type by default) makes a
  ``where`` on that key and value type raise chromadb's error, and the full-text index
  switched off on ``#document`` does the same for ``where_document`` (gleandb still scans:
  the switch is about behaving like chromadb, not about saving index space);
* the vector index configuration (space, hnsw parameters) becomes the collection's hnsw
  configuration; spann parameters are accepted and not used locally;
* a sparse vector index is refused, as chromadb refuses it locally;
* the schema is persisted with the collection, returned by ``collection.schema`` and sent
  over HTTP in the collection model.

``Schema`` here is gleandb's own class with chromadb's builder API and errors; a chromadb
``Schema`` object or its serialised JSON (a dict) is accepted as well.
"""

from __future__ import annotations

import copy
from typing import Any

from gleandb.api.errors import InvalidArgumentError

DOCUMENT_KEY = "#document"
EMBEDDING_KEY = "#embedding"

HNSW_SCHEMA_DEFAULTS = {"ef_construction": 100, "max_neighbors": 16, "ef_search": 100, "num_threads": 2,
                        "batch_size": 100, "sync_threshold": 1000, "resize_factor": 1.2}
_DEFAULT_EF = {"name": "default", "type": "known", "config": {}}

# value type -> inverted index name, and the type name chromadb's error prints
_INVERTED = {"string": ("string_inverted_index", "Str"), "int": ("int_inverted_index", "Int"),
             "float": ("float_inverted_index", "Float"), "bool": ("bool_inverted_index", "Bool")}


# ------------------------------------------------------------------ index configs


class _IndexConfig:
    """One index kind: ``value_type`` and ``index`` name its place in the schema JSON."""

    value_type = ""
    index = ""

    def __init__(self, **fields: Any):
        allowed = getattr(self, "_fields", ())
        for name in fields:
            if name not in allowed:
                raise ValueError(f"Extra field '{name}' is not allowed in {type(self).__name__}")
        self._values = {k: val for k, val in fields.items() if val is not None}
        self._given = set(fields)

    def to_json(self) -> dict:
        return dict(self._values)

    def __getattr__(self, name: str) -> Any:
        if name in getattr(type(self), "_fields", ()):
            return self.__dict__.get("_values", {}).get(name)
        raise AttributeError(name)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.to_json() == other.to_json()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self._values.items())})"


class FtsIndexConfig(_IndexConfig):
    value_type, index = "string", "fts_index"


class StringInvertedIndexConfig(_IndexConfig):
    value_type, index = "string", "string_inverted_index"


class IntInvertedIndexConfig(_IndexConfig):
    value_type, index = "int", "int_inverted_index"


class FloatInvertedIndexConfig(_IndexConfig):
    value_type, index = "float", "float_inverted_index"


class BoolInvertedIndexConfig(_IndexConfig):
    value_type, index = "bool", "bool_inverted_index"


class HnswIndexConfig(_IndexConfig):
    _fields = tuple(HNSW_SCHEMA_DEFAULTS)


class SpannIndexConfig(_IndexConfig):
    _fields = ("search_nprobe", "search_rng_factor", "search_rng_epsilon", "nreplica_count", "write_nprobe",
               "write_rng_factor", "write_rng_epsilon", "split_threshold", "num_samples_kmeans", "initial_lambda",
               "reassign_neighbor_count", "merge_threshold", "num_centers_to_merge_to", "ef_construction",
               "ef_search", "max_neighbors", "center_drift_threshold", "quantize")


class VectorIndexConfig(_IndexConfig):
    value_type, index = "float_list", "vector_index"
    _fields = ("space", "embedding_function", "source_key", "hnsw", "spann")

    def to_json(self) -> dict:
        out: dict[str, Any] = {}
        if self.space is not None:
            out["space"] = self.space
        ef = self._values.get("embedding_function")
        if ef is not None:
            out["embedding_function"] = _describe_ef(ef)
        else:  # chromadb: not given means its default function, None means "legacy"
            out["embedding_function"] = {"type": "legacy"} if "embedding_function" in self._given else dict(_DEFAULT_EF)
        if self.source_key is not None:
            out["source_key"] = self.source_key
        for name in ("hnsw", "spann"):
            sub = self._values.get(name)
            if sub is not None:
                out[name] = sub.to_json() if isinstance(sub, _IndexConfig) else dict(sub)
        return out


class SparseVectorIndexConfig(_IndexConfig):
    value_type, index = "sparse_vector", "sparse_vector_index"
    _fields = ("embedding_function", "source_key", "bm25")

    def to_json(self) -> dict:
        out: dict[str, Any] = {k: v for k, v in self._values.items() if k != "embedding_function"}
        ef = self._values.get("embedding_function")
        out["embedding_function"] = _describe_ef(ef) if ef is not None else {"type": "unknown"}
        return out


def _describe_ef(ef: Any) -> dict:
    from gleandb.embeddings.functions import describe_ef

    return describe_ef(ef) or {"type": "legacy"}


# ------------------------------------------------------------- typed read views

_VALUE_TYPE_ATTRS = {"string": "string", "float_list": "float_list", "sparse_vector": "sparse_vector",
                     "int_value": "int", "float_value": "float", "boolean": "bool"}
_CONFIG_CLASSES: dict[str, type] = {c.index: c for c in (
    FtsIndexConfig, StringInvertedIndexConfig, IntInvertedIndexConfig, FloatInvertedIndexConfig,
    BoolInvertedIndexConfig, VectorIndexConfig, SparseVectorIndexConfig)}


class IndexType:
    """``enabled`` and ``config`` of one index, as chromadb's ``*IndexType`` dataclasses."""

    def __init__(self, index: str, entry: dict):
        self.enabled = bool(entry.get("enabled"))
        self.config = _config_from_json(index, entry.get("config") or {})

    def __repr__(self) -> str:
        return f"IndexType(enabled={self.enabled}, config={self.config!r})"


class _IndexesView:
    """One value type's indexes (``.string_inverted_index``, ``.fts_index``...)."""

    def __init__(self, data: dict):
        self._data = data

    def __getattr__(self, name: str) -> IndexType | None:
        if name.startswith("_") or name not in _CONFIG_CLASSES:
            raise AttributeError(name)
        entry = self._data.get(name)
        return None if entry is None else IndexType(name, entry)


class ValueTypes:
    """Read view of one key's (or the defaults') entry with chromadb's attribute names:
    ``string``, ``float_list``, ``sparse_vector``, ``int_value``, ``float_value``, ``boolean``."""

    def __init__(self, data: dict):
        self._data = data

    def __getattr__(self, name: str) -> _IndexesView | None:
        if name not in _VALUE_TYPE_ATTRS:
            raise AttributeError(name)
        entry = self._data.get(_VALUE_TYPE_ATTRS[name])
        return None if entry is None else _IndexesView(entry)

    def __repr__(self) -> str:
        return f"ValueTypes({self._data!r})"


def _config_from_json(index: str, conf: dict) -> Any:
    cls = _CONFIG_CLASSES[index]
    if cls is VectorIndexConfig:
        from gleandb.embeddings.functions import build_ef

        ef_desc = conf.get("embedding_function")
        try:
            ef = build_ef(ef_desc) if isinstance(ef_desc, dict) and ef_desc.get("type") == "known" else None
        except Exception:  # an unregistered function: leave it out, as chromadb shows it
            ef = None
        return VectorIndexConfig(space=conf.get("space"), source_key=conf.get("source_key"), embedding_function=ef,
                                 hnsw=HnswIndexConfig(**{k: v for k, v in (conf.get("hnsw") or {}).items()
                                                         if k in HnswIndexConfig._fields}) if conf.get("hnsw") else None,
                                 spann=dict(conf["spann"]) if conf.get("spann") else None)
    if cls is SparseVectorIndexConfig:
        return SparseVectorIndexConfig(source_key=conf.get("source_key"), bm25=conf.get("bm25"))
    return cls()


# ------------------------------------------------------------------------ Schema


def _index_entry(enabled: bool, config: dict | None = None) -> dict:
    return {"enabled": enabled, "config": config or {}}


def default_schema_json(space: str = "l2", hnsw: dict | None = None, ef: dict | None = _DEFAULT_EF) -> dict:
    """chromadb's default schema, with this vector index configuration."""
    h = {**HNSW_SCHEMA_DEFAULTS, **{k: v for k, v in (hnsw or {}).items() if k in HNSW_SCHEMA_DEFAULTS}}
    vconf: dict[str, Any] = {"space": space}
    if ef is not None:
        vconf["embedding_function"] = ef
    on, off = _index_entry(True), _index_entry(False)
    return {
        "defaults": {
            "string": {"fts_index": off, "string_inverted_index": on},
            "float_list": {"vector_index": _index_entry(False, {**vconf, "hnsw": dict(h)})},
            "sparse_vector": {"sparse_vector_index": _index_entry(False, {"bm25": False,
                                                                            "embedding_function": {"type": "unknown"}})},
            "int": {"int_inverted_index": dict(on)},
            "float": {"float_inverted_index": dict(on)},
            "bool": {"bool_inverted_index": dict(on)},
        },
        "keys": {
            EMBEDDING_KEY: {"float_list": {"vector_index": _index_entry(True, {
                **vconf, "source_key": DOCUMENT_KEY, "hnsw": dict(h)})}},
            DOCUMENT_KEY: {"string": {"fts_index": dict(on), "string_inverted_index": dict(off)}},
        },
    }


class Schema:
    """chromadb's ``Schema`` builder (``create_index`` / ``delete_index``), over its JSON form."""

    def __init__(self) -> None:
        self._json = default_schema_json()

    # chromadb's checks and messages, in its order
    def create_index(self, config: _IndexConfig | None = None, key: Any = None) -> "Schema":
        key = getattr(key, "name", key)
        if config is None and key is None:
            raise ValueError("Cannot enable all index types globally. Must specify either config or key.")
        if key is not None and key == EMBEDDING_KEY:
            raise ValueError(
                f"Cannot create index on special key '{key}'. This key is managed automatically by the system. "
                "Invoke create_index(VectorIndexConfig(...)) without specifying a key to configure the vector "
                "index globally."
            )
        if key == DOCUMENT_KEY and not isinstance(config, FtsIndexConfig):
            raise ValueError(f"Cannot create index on special key '{key}' with this config. "
                             "Only FtsIndexConfig is allowed for #document.")
        if key is not None and key.startswith("#") and key != DOCUMENT_KEY:
            raise ValueError("key cannot begin with '#'. Keys starting with '#' are reserved for system use.")
        if isinstance(config, VectorIndexConfig):
            if key is not None:
                raise ValueError(
                    "Vector index cannot be enabled on specific keys. Use create_index(config=VectorIndexConfig(...)) "
                    "without specifying a key to configure the vector index globally."
                )
            self._set_vector_config(config)
            return self
        if isinstance(config, FtsIndexConfig) and key != DOCUMENT_KEY:
            raise ValueError("FTS index can only be enabled on #document key. "
                             "Use create_index(config=FtsIndexConfig(), key='#document')")
        if isinstance(config, SparseVectorIndexConfig) and key is None:
            raise ValueError(
                "Sparse vector index must be created on a specific key. Please specify a key using: "
                "create_index(config=SparseVectorIndexConfig(...), key='your_key')"
            )
        if config is None:
            raise ValueError(f"Cannot enable all index types for key '{key}'. "
                             "Please specify a specific index configuration.")
        if isinstance(config, SparseVectorIndexConfig):
            for other, types in self._json["keys"].items():
                if other != key and types.get("sparse_vector", {}).get("sparse_vector_index", {}).get("enabled"):
                    raise ValueError(
                        f"Cannot enable sparse vector index on key '{key}'. A sparse vector index is already "
                        f"enabled on key '{other}'. Only one sparse vector index is allowed per collection."
                    )
            if config.source_key is not None and config.embedding_function is None:
                raise ValueError("If source_key is provided then embedding_function must also be provided since "
                                 f"there is no default embedding function. Config: {config}")
        self._set(config, key, True)
        return self

    def delete_index(self, config: _IndexConfig | None = None, key: Any = None) -> "Schema":
        key = getattr(key, "name", key)
        if config is None and key is None:
            raise ValueError("Cannot disable all indexes. Must specify either config or key.")
        if key is not None and key == EMBEDDING_KEY:
            raise ValueError("Cannot modify #embedding. Currently not supported")
        if key == DOCUMENT_KEY and not isinstance(config, FtsIndexConfig):
            raise ValueError(f"Cannot delete index on special key '{key}' with this config. "
                             "Only FtsIndexConfig is allowed for #document.")
        if key is not None and key.startswith("#") and key != DOCUMENT_KEY:
            raise ValueError("key cannot begin with '#'. Keys starting with '#' are reserved for system use.")
        if isinstance(config, VectorIndexConfig):
            raise ValueError("Deleting vector index is not currently supported.")
        if isinstance(config, SparseVectorIndexConfig):
            raise ValueError("Deleting sparse vector index is not currently supported.")
        if isinstance(config, FtsIndexConfig) and key != DOCUMENT_KEY:
            raise ValueError("Deleting FTS index is only supported on #document key.")
        if config is None:
            raise ValueError(f"Cannot disable all index types for key '{key}'. "
                             "Please specify a specific index configuration.")
        self._set(config, key, False)
        return self

    def _set(self, config: _IndexConfig, key: str | None, enabled: bool) -> None:
        where = self._json["defaults"] if key is None else self._json["keys"].setdefault(key, {})
        where.setdefault(config.value_type, {})[config.index] = _index_entry(enabled, config.to_json())

    def _set_vector_config(self, config: VectorIndexConfig) -> None:
        conf = config.to_json()
        if "hnsw" in conf:
            conf["hnsw"] = {**HNSW_SCHEMA_DEFAULTS, **conf["hnsw"]}
        self._json["defaults"]["float_list"]["vector_index"]["config"] = dict(conf)
        entry = self._json["keys"][EMBEDDING_KEY]["float_list"]["vector_index"]
        entry["config"] = {**conf, "source_key": entry["config"].get("source_key", DOCUMENT_KEY)}
        self._vector_ef = config._values.get("embedding_function")

    def serialize_to_json(self) -> dict:
        return copy.deepcopy(self._json)

    @classmethod
    def deserialize_from_json(cls, json_data: dict) -> "Schema":
        out = cls.__new__(cls)
        out._json = copy.deepcopy(json_data or {})
        out._json.setdefault("defaults", {})
        out._json.setdefault("keys", {})
        return out

    @property
    def keys(self) -> dict[str, ValueTypes]:
        """Per-key entries, read as chromadb's typed objects (``keys["k"].string...``)."""
        return {k: ValueTypes(v or {}) for k, v in self._json.get("keys", {}).items()}

    @property
    def defaults(self) -> ValueTypes:
        return ValueTypes(self._json.get("defaults", {}))

    @property
    def embedding_function(self) -> Any:
        """The embedding function object given in a ``VectorIndexConfig`` (None if none)."""
        return getattr(self, "_vector_ef", None)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schema) and self._json == other._json

    def __repr__(self) -> str:
        return f"Schema(keys={sorted(self._json.get('keys', {}))})"


# ------------------------------------------------------------- local collections


def schema_to_json(schema: Any) -> dict | None:
    """A gleandb or chromadb ``Schema``, or its JSON (dict), as JSON; None stays None."""
    if schema is None:
        return None
    if isinstance(schema, dict):
        return copy.deepcopy(schema)
    serialize = getattr(schema, "serialize_to_json", None)
    if serialize is None:
        raise InvalidArgumentError(f"schema must be a Schema or its JSON (a dict), got {type(schema).__name__}")
    return serialize()


def _vector_config(schema_json: dict) -> dict:
    keyed = schema_json.get("keys", {}).get(EMBEDDING_KEY, {}).get("float_list", {}).get("vector_index")
    if keyed is None:
        keyed = schema_json.get("defaults", {}).get("float_list", {}).get("vector_index")
    return dict((keyed or {}).get("config") or {})


def _flags(schema_json: dict) -> dict:
    out = {}
    for scope, types in [(None, schema_json.get("defaults") or {}),
                         *((k, v or {}) for k, v in (schema_json.get("keys") or {}).items())]:
        for vt, indexes in types.items():
            for index, entry in (indexes or {}).items():
                out[(scope, vt, index)] = bool((entry or {}).get("enabled"))
    return out


def _vector_params(schema_json: dict) -> tuple:
    vconf = _vector_config(schema_json)
    return vconf.get("space") or "l2", {**HNSW_SCHEMA_DEFAULTS, **(vconf.get("hnsw") or {})}


def _is_default_schema(schema_json: dict) -> bool:
    """Whether the schema leaves every index switch and the vector index parameters as
    chromadb's default schema does (embedding functions are the configuration's business)."""
    default = default_schema_json()
    return _flags(schema_json) == _flags(default) and _vector_params(schema_json) == _vector_params(default)


def reconcile(schema_json: dict, configuration_is_default: bool) -> tuple[dict, dict]:
    """Check a schema for a local collection; returns (what to persist: its index switches,
    hnsw configuration from its vector index config). chromadb's errors."""
    for types in [schema_json.get("defaults", {}), *schema_json.get("keys", {}).values()]:
        if ((types or {}).get("sparse_vector") or {}).get("sparse_vector_index", {}).get("enabled"):
            raise InvalidArgumentError(
                "Failed to reconcile schema: Invalid schema input: Sparse vector indexing is not enabled in local"
            )
    if not configuration_is_default and not _is_default_schema(schema_json):
        raise InvalidArgumentError("Failed to reconcile schema: Cannot set both collection config and schema simultaneously")
    vconf = _vector_config(schema_json)
    hnsw: dict[str, Any] = {}
    if vconf.get("space") not in (None, "l2"):
        hnsw["space"] = vconf["space"]
    for k, val in (vconf.get("hnsw") or {}).items():
        if k in HNSW_SCHEMA_DEFAULTS and val != HNSW_SCHEMA_DEFAULTS[k]:
            hnsw[k] = val
    switches = {"defaults": {t: copy.deepcopy(v) for t, v in schema_json.get("defaults", {}).items()
                             if t in _INVERTED},
                "keys": {}}
    for key, types in schema_json.get("keys", {}).items():
        if key == EMBEDDING_KEY:
            continue
        kept = {t: copy.deepcopy(v) for t, v in (types or {}).items() if t in _INVERTED}
        if kept:
            switches["keys"][key] = kept
    return switches, hnsw


def effective_schema(configuration: dict, switches: dict | None, discovered: dict | None = None) -> dict:
    """The schema a collection reports: chromadb's default one for its configuration, with
    the persisted index switches over it, and (as chromadb discovers them) an entry for each
    metadata key and value type written (``discovered``: key -> value types), copied from
    the defaults."""
    hnsw = dict(configuration.get("hnsw") or {})
    ef = configuration.get("embedding_function")
    if ef is not None and not isinstance(ef, dict):
        ef = _describe_ef(ef)
    out = default_schema_json(hnsw.get("space", "l2"), hnsw, ef)
    for vt, entry in ((switches or {}).get("defaults") or {}).items():
        out["defaults"].setdefault(vt, {}).update(copy.deepcopy(entry))
    for key, types in ((switches or {}).get("keys") or {}).items():
        dest = out["keys"].setdefault(key, {})
        for vt, entry in types.items():
            dest.setdefault(vt, {}).update(copy.deepcopy(entry))
    for key, value_types in sorted((discovered or {}).items()):
        if key.startswith("#"):
            continue
        dest = out["keys"].setdefault(key, {})
        for vt in sorted(value_types):
            if vt not in dest and vt in out["defaults"]:
                dest[vt] = copy.deepcopy(out["defaults"][vt])
    return out


_TAG_VALUE_TYPE = {"s": "string", "ls": "string", "i": "int", "li": "int", "f": "float", "lf": "float",
                   "b": "bool", "lb": "bool"}


def value_type_of_tag(tag: str) -> str | None:
    """The schema value type of a metadata column tag (``"s"``, ``"li"``...)."""
    return _TAG_VALUE_TYPE.get(tag)


def _enabled(switches: dict, key: str, value_type: str, index: str) -> bool:
    entry = ((switches.get("keys") or {}).get(key) or {}).get(value_type, {}).get(index)
    if entry is None:
        entry = ((switches.get("defaults") or {}).get(value_type) or {}).get(index)
    return True if entry is None else bool(entry.get("enabled", True))


def _value_type(value: Any) -> str | None:
    if isinstance(value, list):
        return _value_type(value[0]) if value else None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return None


def _where_pairs(where: Any):
    """(key, value) of every comparison in a where clause."""
    if not isinstance(where, dict):
        return
    for key, val in where.items():
        if key in ("$and", "$or") and isinstance(val, list):
            for sub in val:
                yield from _where_pairs(sub)
        elif isinstance(val, dict):
            for operand in val.values():
                yield key, operand
        else:
            yield key, val


def check_filters(switches: dict | None, where: Any, where_document: Any) -> None:
    """chromadb's errors for a filter on an index the schema switched off."""
    if not switches:
        return
    for key, value in _where_pairs(where):
        vt = _value_type(value)
        if vt is None:
            continue
        index, type_name = _INVERTED[vt]
        if not _enabled(switches, key, vt, index):
            raise InvalidArgumentError(
                f"Cannot filter using metadata key '{key}' with type '{type_name}' because indexing is disabled"
            )
    if where_document and not _enabled(switches, DOCUMENT_KEY, "string", "fts_index"):
        raise InvalidArgumentError("Cannot filter using full-text search because FTS indexing is disabled")


__all__ = [
    "BoolInvertedIndexConfig", "FloatInvertedIndexConfig", "FtsIndexConfig", "HnswIndexConfig",
    "IndexType", "IntInvertedIndexConfig", "Schema", "ValueTypes", "SpannIndexConfig", "SparseVectorIndexConfig", "StringInvertedIndexConfig",
    "VectorIndexConfig", "check_filters", "default_schema_json", "effective_schema", "reconcile", "schema_to_json",
]
