"""``Settings``: chromadb's settings object, plus gleandb's engine knobs.

chromadb's ``Settings`` is a pydantic model read from the environment; code
passes it to clients (``Settings(allow_reset=True, anonymized_telemetry=False)``).
gleandb accepts the same fields (the ones that mean nothing here are kept and
ignored) and adds its own engine settings, each documented below.
"""

from __future__ import annotations

import os
from typing import Any

_CHROMA_FIELDS: dict[str, Any] = {
    "environment": "",
    "chroma_api_impl": "gleandb.embedded",
    "is_persistent": False,
    "persist_directory": "./chroma",
    "allow_reset": False,
    "anonymized_telemetry": False,
    "chroma_server_host": None,
    "chroma_server_http_port": None,
    "chroma_server_ssl_enabled": False,
    "chroma_server_headers": None,
    "chroma_server_api_default_path": "/api/v2",
    "chroma_client_auth_provider": None,
    "chroma_client_auth_credentials": None,
    "chroma_auth_token_transport_header": None,
    "migrations": "apply",
    "migrations_hash_algorithm": "md5",
}

_GLEANDB_FIELDS: dict[str, Any] = {
    # rows held in memory (and in the WAL) before they are written as a segment
    "memtable_max_rows": 50_000,
    # segments smaller than this are searched exactly instead of through an ANN index
    "index_min_rows": 2_000,
    # fsync the WAL before acknowledging each write (turn off only for throwaway data)
    "wal_sync": True,
    # compaction merges this many small segments at once
    "compaction_min_segments": 4,
    # versions kept for time travel (collection.versions(), fork(version=N)): the newest N ...
    # (1 by default: files replaced by compaction or deletes are reclaimed at once; raise
    # it, or the seconds below, to be able to fork past versions)
    "version_retention_count": 1,
    # ... plus every version younger than this many seconds; older files are reclaimed
    "version_retention_seconds": 0.0,
    # a store on object storage (persist_directory "s3://bucket/prefix"): the writer lease's
    # lifetime in seconds (docs/object-storage.md) ...
    "lease_ttl": 10.0,
    # ... and options of gleandb.storage.s3.S3Storage (endpoint, region, access_key_id,
    # secret_access_key, session_token, allow_http, timeout, retries); the AWS_* environment
    # variables are read when these are not given
    "storage_options": None,
}


class Settings:
    """Keyword settings; unknown names raise so a typo is not silently ignored."""

    def __init__(self, **kwargs: Any):
        values = dict(_CHROMA_FIELDS)
        values.update(_GLEANDB_FIELDS)
        for name in list(values):
            env = os.environ.get(name.upper())
            if env is not None and name in _GLEANDB_FIELDS and values[name] is not None:
                default = values[name]
                values[name] = (env.lower() in ("1", "true", "yes")) if isinstance(default, bool) else type(default)(env)
        for key, value in kwargs.items():
            if key not in values:
                raise ValueError(f"Unknown setting {key!r}; known settings: {', '.join(sorted(values))}")
            values[key] = value
        self.__dict__.update(values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Settings) and self.__dict__ == other.__dict__

    def __repr__(self) -> str:
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items()) + ")"

    def copy(self, **changes: Any) -> "Settings":
        s = Settings()
        s.__dict__.update(self.__dict__)
        s.__dict__.update(changes)
        return s
