"""Server options: defaults < YAML config file < ``GLEAN_*`` environment < command-line flags."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ServerSettings:
    path: str = "./data"
    host: str = "127.0.0.1"
    port: int = 8000
    allow_reset: bool = False
    # requests with a larger body are refused with 413
    max_body_bytes: int = 64 * 1024 * 1024
    # advertised by /pre-flight-checks; the engine itself has no batch limit
    max_batch_size: int = 100_000
    # static tokens accepted as "Authorization: Bearer <t>" or "X-Chroma-Token: <t>": plain
    # strings (unrestricted) or, from a YAML file, {token, tenant, databases} (bound to a tenant)
    auth_tokens: list[Any] = field(default_factory=list)
    # "user:password" pairs accepted as HTTP basic auth
    auth_basic: list[str] = field(default_factory=list)
    cors_allow_origins: list[str] = field(default_factory=list)
    log_level: str = "info"
    # one JSON line per request on the "gleandb.access" logger (stderr), at info level
    access_log: bool = True
    # per-request limits, answered with 400 InvalidArgumentError naming the limit
    max_query_results: int = 10_000
    # chromadb has no such limit (its own tests send 1,585): the body and response size
    # limits are what bound a request; this only stops absurd counts early
    max_query_embeddings: int = 1_000_000
    max_regex_length: int = 4_096
    # longest $contains / $not_contains operand on documents, in characters
    max_contains_length: int = 65_536
    # largest response (predicted before the work where possible, rows charged as they are
    # fetched): 400 naming the limit; get / query JSON is streamed, never built whole
    max_response_bytes: int = 256 * 1024 * 1024
    # seconds a request may run before its reads stop (cooperatively) and it is answered
    # 504 DeadlineExceededError; 0 = no deadline
    request_timeout_s: float = 30.0
    # threads each BLAS library (numpy's OpenBLAS, faiss's) may use inside one request; 0 =
    # the library's default (one per core). Requests already run in parallel: on busy cores a
    # multi-threaded BLAS spins and waits for its own threads (docs/ARCHITECTURE.md)
    blas_threads: int = 1
    # record writes (add / upsert / update / delete) the server runs at once; more wait on the
    # event loop, without a thread, so reads go first under a mixed load; 0 = no limit
    concurrent_writes: int = 4
    # POST .../context (docs/server.md): where re-rankers may send requests (empty: the official
    # OpenAI and Anthropic endpoints), whether a request may carry its own API key, and the
    # cross-encoder models the server may load
    rerank_base_urls: list[str] = field(default_factory=list)
    rerank_allow_request_keys: bool = False
    rerank_cross_encoders: list[str] = field(default_factory=list)
    # scale-out (docs/deploy.md): "all" serves reads and writes from one process; "writer" is the
    # one process that writes the store; "query" follows the writer's files read-only, serves
    # reads, and forwards writes to ``writer_url`` (or refuses them, naming the writer)
    role: str = "all"
    writer_url: str = ""
    # how often a query node looks for new catalog records, manifests and WAL records
    poll_interval_s: float = 1.0
    # a query node's cache of immutable objects (segments, masks, manifests): memory, and a
    # local directory when ``cache_dir`` is set
    cache_memory_bytes: int = 256 * 1024 * 1024
    cache_dir: str = ""
    cache_disk_bytes: int = 10 * 1024 * 1024 * 1024

    @property
    def auth_enabled(self) -> bool:
        return bool(self.auth_tokens or self.auth_basic)


@dataclass(frozen=True)
class TokenGrant:
    """A configured token; ``tenant`` None = unrestricted, ``databases`` None = all of the tenant's."""

    token: str
    tenant: str | None = None
    databases: tuple[str, ...] | None = None

    @property
    def bound(self) -> bool:
        return self.tenant is not None


_GRANT_KEYS = {"token", "tenant", "databases"}


def parse_token_entry(entry: Any) -> TokenGrant:
    """A plain string, or a mapping ``{token, tenant, databases}``; ValueError with the reason
    (never quoting the token itself)."""
    if isinstance(entry, str):
        if not entry:
            raise ValueError("auth_tokens: empty token")
        return TokenGrant(entry)
    if isinstance(entry, TokenGrant):
        return entry
    if not isinstance(entry, dict):
        raise ValueError(f"auth_tokens entries must be strings or mappings with token/tenant/databases, "
                         f"got {type(entry).__name__}")
    unknown = set(entry) - _GRANT_KEYS
    if unknown:
        raise ValueError(f"auth_tokens: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                         f"known: databases, tenant, token")
    token = entry.get("token")
    if not isinstance(token, str) or not token:
        raise ValueError("auth_tokens: each mapping needs a non-empty string 'token'")
    tenant = entry.get("tenant")
    if tenant is not None and (not isinstance(tenant, str) or not tenant):
        raise ValueError("auth_tokens: 'tenant' must be a non-empty string")
    dbs = entry.get("databases")
    if dbs is not None:
        if isinstance(dbs, str):
            dbs = [dbs]
        if not isinstance(dbs, (list, tuple)) or not dbs or not all(isinstance(d, str) and d for d in dbs):
            raise ValueError("auth_tokens: 'databases' must be a non-empty list of database names")
        if tenant is None:
            raise ValueError("auth_tokens: 'databases' needs a 'tenant'")
        dbs = tuple(dbs)
    return TokenGrant(token, tenant, dbs)


def check_basic_credential(index: int, entry: Any) -> str:
    """A ``user:password`` pair with a non-empty user; ValueError otherwise, never quoting the
    value (it is a secret: without a colon the whole password would become the user name)."""
    if not isinstance(entry, str) or ":" not in entry or entry.startswith(":"):
        raise ValueError(f"auth_basic entry {index + 1} is not of the form user:password (a non-empty user, "
                         f"a colon, then the password); the value is not shown because it is a secret")
    return entry


def token_grants(settings: "ServerSettings") -> list[TokenGrant]:
    return [parse_token_entry(e) for e in settings.auth_tokens]


_FIELDS = {f.name: f for f in dataclasses.fields(ServerSettings)}
_SECRET_FIELDS = {"auth_tokens", "auth_basic"}
_LIST_FIELDS = {"auth_tokens", "auth_basic", "cors_allow_origins", "rerank_base_urls", "rerank_cross_encoders"}


def _coerce(name: str, value: Any) -> Any:
    """Convert a value from a file, the environment or a flag to the field's type."""
    if name not in _FIELDS:
        raise ValueError(f"unknown server setting {name!r}; known: {', '.join(sorted(_FIELDS))}")
    if name in _LIST_FIELDS:
        if value is None:
            return []
        if isinstance(value, str):
            value = [p.strip() for p in value.split(",") if p.strip()]
        if isinstance(value, (list, tuple)):
            if name == "auth_tokens":
                out = []
                for p in value:
                    g = parse_token_entry(p)  # validates
                    out.append(p if isinstance(p, str) else
                               {"token": g.token, "tenant": g.tenant,
                                "databases": None if g.databases is None else list(g.databases)})
                return out
            if name == "auth_basic":
                return [check_basic_credential(i, p) for i, p in enumerate(value)]
            return [str(p) for p in value]
        shown = "a secret, not shown" if name in _SECRET_FIELDS else repr(value)
        raise ValueError(f"server setting {name!r} must be a list or a comma-separated string, got {shown}")
    default = _FIELDS[name].default
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        s = str(value).strip().lower()
        if s in ("1", "true", "yes", "on"):
            return True
        if s in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"server setting {name!r} must be a boolean, got {value!r}")
    if isinstance(default, float):
        if isinstance(value, bool):
            raise ValueError(f"server setting {name!r} must be a number of seconds, got {value!r}")
        try:
            x = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"server setting {name!r} must be a number of seconds, got {value!r}") from None
        if not (x >= 0) or x == float("inf"):
            raise ValueError(f"server setting {name!r} must be a finite number >= 0 (0: none), got {value!r}")
        return x
    if isinstance(default, int):
        if isinstance(value, bool):
            raise ValueError(f"server setting {name!r} must be an integer, got {value!r}")
        try:
            n = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"server setting {name!r} must be an integer, got {value!r}") from None
        if name.startswith("max_") and n < 1:
            raise ValueError(f"server setting {name!r} must be at least 1, got {n}")
        return n
    return str(value)


def env_name(name: str) -> str:
    return "GLEAN_" + name.upper()


def load_settings(
    cli: dict[str, Any] | None = None,
    config_file: str | None = None,
    environ: dict[str, str] | None = None,
) -> ServerSettings:
    """Merge the sources; ``cli`` values of None mean "not given"."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    config_file = config_file or environ.get("GLEAN_CONFIG")
    if config_file:
        import yaml

        with open(config_file, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{config_file}: expected a mapping of settings, got {type(data).__name__}")
        for key, value in data.items():
            values[key.replace("-", "_")] = _coerce(key.replace("-", "_"), value)
    for name in _FIELDS:
        if env_name(name) in environ:
            values[name] = _coerce(name, environ[env_name(name)])
    for name, value in (cli or {}).items():
        if value is not None:
            values[name] = _coerce(name, value)
    settings = ServerSettings(**values)
    check_role(settings)
    return settings


ROLES = ("all", "writer", "query")


def check_role(settings: ServerSettings) -> None:
    """ValueError naming the setting and value when the scale-out settings do not fit together."""
    if settings.role not in ROLES:
        raise ValueError(f"server setting 'role' must be one of {', '.join(ROLES)}, got {settings.role!r}")
    if settings.writer_url:
        if settings.role != "query":
            raise ValueError(f"server setting 'writer_url' ({settings.writer_url!r}) is for --role query; "
                             f"this node's role is {settings.role!r}")
        if not settings.writer_url.startswith(("http://", "https://")):
            raise ValueError(f"server setting 'writer_url' must be an http:// or https:// URL, "
                             f"got {settings.writer_url!r}")
    for name in ("cache_memory_bytes", "cache_disk_bytes"):
        if getattr(settings, name) < 0:
            raise ValueError(f"server setting {name!r} must be >= 0, got {getattr(settings, name)!r}")
    if settings.concurrent_writes < 0:
        raise ValueError(f"server setting 'concurrent_writes' must be >= 0 (0: no limit), "
                         f"got {settings.concurrent_writes!r}")
    if settings.blas_threads < 0:
        raise ValueError(f"server setting 'blas_threads' must be >= 0 (0: the library's default), "
                         f"got {settings.blas_threads!r}")
    if settings.poll_interval_s <= 0:
        raise ValueError(f"server setting 'poll_interval_s' must be > 0 seconds, got {settings.poll_interval_s!r}")
