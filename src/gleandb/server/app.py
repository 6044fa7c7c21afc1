"""Chroma's v2 HTTP API (chromadb 1.5.9 server) over the embedded engine.

The routes use gleandb's public API only: one ``PersistentClient(path)`` per
(tenant, database) -- clients on one path share one engine in a process -- and one
``AdminClient`` for tenants and databases. The server never embeds: collections are
opened with ``embedding_function=None`` and writes must carry embeddings.

Endpoints are plain ``def`` functions; FastAPI runs them in its thread pool and the
engine is thread-safe (per-collection write lock, lock-free reads).

Errors are ``{"error": <name>, "message": <text>}`` as in Chroma's Rust frontend: the
status comes from the gleandb error class (``code()``), the name from the status
(400 InvalidArgumentError, 404 NotFoundError, 500 InternalError, else ChromaError).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
import uuid
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal, Optional, Union

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

import gleandb
from gleandb import errors as gerr
from gleandb.budgets import too_large
from gleandb.index.depth import check_depth
from gleandb.server.responses import SETTING as RESPONSE_SETTING, json_response, predicted_query_bytes
from gleandb.server.config import ServerSettings

log = logging.getLogger("gleandb.server")

API = "/api/v2"
TRACE_HEADER = "chroma-trace-id"
U32_MAX = 2**32 - 1
# Chroma's Rust server hard-codes this for GET /api/v2/version
CHROMA_SERVER_VERSION = "1.0.0"

try:  # faster serialisation of large results when available
    import orjson

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)

except ImportError:  # pragma: no cover

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()


class FastJSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return _dumps(content)


def _written(content: dict, status: int = 200) -> FastJSON:
    """A write's answer, already a Response: a plain dict would make FastAPI validate it
    against the ``-> dict`` annotation in a second trip through the thread pool (a fifth of
    a write's time under a mixed load; docs/ARCHITECTURE.md)."""
    return FastJSON(content, status_code=status)


# --------------------------------------------------------------------------- errors


class HTTPError(Exception):
    """An error answered as ``{"error": name, "message": message}`` with ``status``."""

    def __init__(self, status: int, name: str, message: str):
        super().__init__(message)
        self.status, self.name, self.message = status, name, message


_NAME_BY_STATUS = {400: "InvalidArgumentError", 404: "NotFoundError", 500: "InternalError"}


def _error_response(status: int, name: str, message: str, trace_id: str | None = None,
                    headers: dict | None = None) -> FastJSON:
    headers = dict(headers or {})
    if trace_id:
        headers[TRACE_HEADER] = trace_id
    return FastJSON({"error": name, "message": message}, status_code=status, headers=headers or None)


def _framework_message(request: Request, exc: StarletteHTTPException) -> tuple[int, str, str]:
    """Chroma's ``{"error", "message"}`` for errors Starlette/FastAPI raise themselves."""
    status = exc.status_code
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        return 400, "InvalidArgumentError", (f"Failed to parse the request body as JSON: invalid UTF-8 "
                                             f"at byte {cause.start}")
    if isinstance(cause, RecursionError):
        return 400, "InvalidArgumentError", ("Failed to parse the request body as JSON: it is nested too "
                                             "deeply for this server")
    if status == 400 and exc.detail == "There was an error parsing the body":
        reason = f": {type(cause).__name__}" if cause is not None else ""
        return 400, "InvalidArgumentError", f"Failed to parse the request body as JSON{reason}"
    if status == 404:
        return 404, "NotFoundError", f"Not found: no route {request.method} {request.url.path}"
    if status == 405:
        return 405, "ChromaError", f"Method not allowed: {request.method} {request.url.path}"
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail, default=str)
    return status, _NAME_BY_STATUS.get(status, "ChromaError"), detail


def _from_exception(exc: BaseException) -> tuple[int, str, str]:
    if isinstance(exc, HTTPError):
        return exc.status, exc.name, exc.message
    if isinstance(exc, gerr.ChromaError):
        status = int(exc.code())
        if isinstance(exc, gerr.VersionMismatchError):
            name = "VersionMismatchError"
        elif isinstance(exc, gerr.ChromaAuthError):
            name = "AuthError"
        elif isinstance(exc, gerr.DeadlineExceededError):
            name = exc.name()
        else:
            name = _NAME_BY_STATUS.get(status, "ChromaError")
        msg = str(exc) if exc.args else exc.message()
        return status, name, msg
    if isinstance(exc, (ValueError, TypeError, OverflowError)):
        return 400, "InvalidArgumentError", str(exc)
    return 500, "InternalError", f"{type(exc).__name__}: {exc}"


def _validation_message(exc: RequestValidationError) -> tuple[int, str, str]:
    errs = exc.errors()
    for e in errs:
        if e.get("type") == "json_invalid":
            detail = (e.get("ctx") or {}).get("error") or e.get("msg")
            return 400, "InvalidArgumentError", f"Failed to parse the request body as JSON: {detail}"
    parts = []
    for e in errs[:5]:
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path")]
        where = ""
        for p in loc:
            where += f"[{p}]" if p.isdigit() else (f".{p}" if where else p)
        kind = e.get("type")
        msg = "missing field" if kind == "missing" else e.get("msg", "invalid value")
        parts.append(f"{where}: {msg}" if where else msg)
    where = "query string" if errs and errs[0].get("loc", ("",))[0] == "query" else "JSON body"
    if where == "query string":
        return 400, "InvalidArgumentError", "Failed to deserialize query string: " + "; ".join(parts)
    return 422, "ChromaError", f"Failed to deserialize the {where} into the target type: " + "; ".join(parts)


# -------------------------------------------------------------------------- bodies


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


Scalar = Union[StrictBool, StrictInt, StrictFloat, StrictStr]
MetaValue = Union[Scalar, list[StrictBool], list[StrictInt], list[StrictFloat], list[StrictStr]]
Metadata = dict[str, MetaValue]
UpdateMetadata = dict[str, Optional[MetaValue]]
Embedding = Union[StrictStr, list[StrictFloat]]
U32 = Annotated[StrictInt, Field(ge=0, le=U32_MAX)]


def query_u32(name: str, raw: str | None) -> int | None:
    """A u32 query parameter (limit, offset), refused as Chroma's server refuses it: Rust's
    ``u32::from_str`` messages ("-1" is an invalid digit, not a Python slice)."""
    if raw is None:
        return None
    digits = raw[1:] if raw.startswith("+") else raw
    if not digits:
        problem = "cannot parse integer from empty string"
    elif not (digits.isascii() and digits.isdigit()):
        problem = "invalid digit found in string"
    elif int(digits) > U32_MAX:
        problem = "number too large to fit in target type"
    else:
        return int(digits)
    raise HTTPError(400, "InvalidArgumentError", f"Failed to deserialize query string: {name}: {problem}")

Include = Literal["distances", "documents", "embeddings", "metadatas", "uris"]


class CreateTenant(_Body):
    name: StrictStr


class CreateDatabase(_Body):
    name: StrictStr


class CreateCollection(_Body):
    name: StrictStr
    metadata: Optional[dict[str, Any]] = None
    configuration: Optional[dict[str, Any]] = None
    schema_: Optional[dict[str, Any]] = Field(None, alias="schema")
    get_or_create: StrictBool = False


class UpdateCollection(_Body):
    new_name: Optional[StrictStr] = None
    new_metadata: Optional[dict[str, Any]] = None
    new_configuration: Optional[dict[str, Any]] = None


class AddRecords(_Body):
    ids: list[StrictStr]
    embeddings: list[Embedding]
    documents: Optional[list[Optional[StrictStr]]] = None
    metadatas: Optional[list[Optional[Metadata]]] = None
    uris: Optional[list[Optional[StrictStr]]] = None


class UpsertRecords(_Body):
    ids: list[StrictStr]
    embeddings: list[Embedding]
    documents: Optional[list[Optional[StrictStr]]] = None
    metadatas: Optional[list[Optional[UpdateMetadata]]] = None
    uris: Optional[list[Optional[StrictStr]]] = None


class UpdateRecords(_Body):
    ids: list[StrictStr]
    embeddings: Optional[list[Optional[Embedding]]] = None
    documents: Optional[list[Optional[StrictStr]]] = None
    metadatas: Optional[list[Optional[UpdateMetadata]]] = None
    uris: Optional[list[Optional[StrictStr]]] = None


class DeleteRecords(_Body):
    ids: Optional[list[StrictStr]] = None
    where: Any = None
    where_document: Any = None
    limit: Optional[U32] = None


class GetRecords(_Body):
    ids: Optional[list[StrictStr]] = None
    where: Any = None
    where_document: Any = None
    limit: Optional[U32] = None
    offset: Optional[U32] = None
    include: list[Include] = ["documents", "metadatas"]
    # gleandb extension: order by metadata key(s), "-key" for descending
    order_by: Optional[Union[StrictStr, list[StrictStr]]] = None


class QueryRecords(_Body):
    query_embeddings: list[list[StrictFloat]]
    n_results: U32 = 10
    ids: Optional[list[StrictStr]] = None
    where: Any = None
    where_document: Any = None
    include: list[Include] = ["documents", "metadatas", "distances"]


class CountRecords(_Body):
    where: Any = None
    where_document: Any = None


class ForkCollection(_Body):
    new_name: StrictStr
    version: Optional[StrictInt] = None  # gleandb extension: fork a retained past version


# ------------------------------------------------------------------------- helpers


def _decode_embeddings(items: list[Any] | None) -> Any:
    """JSON float arrays and/or base64 little-endian float32 strings -> what the API takes."""
    if items is None:
        return None
    rows: list[Any] = []
    for i, item in enumerate(items):
        if item is None:
            rows.append(None)
        elif isinstance(item, str):
            try:
                raw = base64.b64decode(item, validate=True)
            except (binascii.Error, ValueError):
                raise HTTPError(400, "InvalidArgumentError", f"embeddings[{i}]: not a valid base64 string") from None
            if len(raw) % 4:
                raise HTTPError(
                    400, "InvalidArgumentError",
                    f"embeddings[{i}]: base64 data of {len(raw)} bytes is not a whole number of float32 values",
                )
            rows.append(np.frombuffer(raw, dtype="<f4").astype(np.float32))
        else:
            rows.append(np.asarray(item, dtype=np.float32))
    if rows and all(r is not None for r in rows) and len({len(r) for r in rows}) == 1:
        return np.vstack(rows)
    return rows


def _parse_uuid(cid: str, message: str = "Collection ID is not a valid UUIDv4") -> str:
    try:
        return str(uuid.UUID(cid))
    except (ValueError, AttributeError, TypeError):
        raise HTTPError(400, "InvalidArgumentError", message) from None


def _tolist(x: Any) -> Any:
    if x is None:
        return None
    if isinstance(x, np.ndarray):
        return x.tolist()
    return [(_tolist(e) if isinstance(e, np.ndarray) else e) for e in x]


def _get_response(res: dict, include: list[str]) -> dict:
    emb = res.get("embeddings")
    if emb is not None:
        emb = np.asarray(emb, dtype=np.float64).reshape(len(res["ids"]), -1).tolist() if len(res["ids"]) else []
    return {
        "ids": list(res["ids"]),
        "embeddings": emb,
        "documents": res.get("documents"),
        "uris": res.get("uris"),
        "metadatas": res.get("metadatas"),
        "include": list(include),
    }


def _query_response(res: dict, include: list[str]) -> dict:
    emb = res.get("embeddings")
    return {
        "ids": res["ids"],
        "embeddings": None if emb is None else [np.asarray(e, dtype=np.float64).reshape(len(ids), -1).tolist() if len(ids) else [] for e, ids in zip(emb, res["ids"])],
        "documents": res.get("documents"),
        "uris": res.get("uris"),
        "metadatas": res.get("metadatas"),
        "distances": res.get("distances"),
        "include": list(include),
    }


class _EFDescription:
    """Carries a persisted embedding-function description (the JSON a client sent)
    through the API, which stores ``{"type": "known", "name": name(), "config": get_config()}``."""

    def __init__(self, desc: dict):
        self._desc = desc

    def name(self) -> str | None:
        return self._desc.get("name") if self._desc.get("type") == "known" else None

    def get_config(self) -> dict:
        return self._desc.get("config") or {}

    def __call__(self, _input: Any) -> Any:  # never used: the server does not embed
        raise gerr.InvalidArgumentError("The server does not compute embeddings; send embeddings")


def _configuration_in(cfg: dict | None) -> dict | None:
    if cfg is None:
        return None
    cfg = dict(cfg)
    ef = cfg.get("embedding_function")
    if isinstance(ef, dict):
        cfg["embedding_function"] = _EFDescription(ef)
    elif ef is not None:
        raise HTTPError(400, "InvalidArgumentError", "configuration.embedding_function must be an object")
    for key in ("hnsw", "spann"):
        if cfg.get(key) is not None and not isinstance(cfg[key], dict):
            raise HTTPError(400, "InvalidArgumentError", f"configuration.{key} must be an object")
    return cfg


def collection_json(col: Any) -> dict:
    model = col.get_model()
    cfg = dict(col.configuration_json or {})
    for key in ("hnsw", "spann", "embedding_function"):
        cfg.setdefault(key, None)
    return {
        "id": str(col.id),
        "name": col.name,
        "configuration_json": cfg,
        "schema": col.schema.serialize_to_json(),
        "metadata": col.metadata,
        "dimension": model.get("dimension"),
        "tenant": col.tenant,
        "database": col.database,
        "log_position": 0,
        "version": int(model.get("version") or 0),
    }


# --------------------------------------------------------------------------- state


class _MissingDatabase(Exception):
    pass


def _grant() -> Any:
    from gleandb.server.middleware import current_grant

    return current_grant.get()


def _forbidden() -> HTTPError:
    from gleandb.server.middleware import FORBIDDEN

    return HTTPError(403, "AuthError", FORBIDDEN)


def _regex_patterns(clause: Any) -> Any:
    """The ``$regex`` / ``$not_regex`` operands anywhere in a filter (explicit stack: no
    recursion, whatever the nesting)."""
    stack = [clause]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("$regex", "$not_regex") and isinstance(v, str):
                    yield v
                elif isinstance(v, (dict, list)):
                    stack.append(v)
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, (dict, list)))


def _contains_operands(clause: Any, document: bool) -> Any:
    """The document substring operands in a filter: ``$contains`` / ``$not_contains`` in a
    ``where_document`` (``document``), else under a ``#document`` key (where, Search filter)."""
    stack: list[tuple[Any, bool]] = [(clause, document)]
    while stack:
        node, doc = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                if doc and k in ("$contains", "$not_contains") and isinstance(v, str):
                    yield v
                elif isinstance(v, (dict, list)):
                    stack.append((v, doc or k == "#document"))
        elif isinstance(node, list):
            stack.extend((v, doc) for v in node if isinstance(v, (dict, list)))


def check_limits(settings: ServerSettings, *, where: Any = None, where_document: Any = None,
                 n_results: int | None = None, n_queries: int | None = None, nesting: bool = True) -> None:
    """The server's per-request limits: 400 InvalidArgumentError naming the limit and the value.
    ``nesting``: check the filters' depth (the search route checks each search's parts itself)."""
    if nesting:
        check_depth(where, "where")
        check_depth(where_document, "where_document")
    if n_results is not None and n_results > settings.max_query_results:
        raise HTTPError(400, "InvalidArgumentError",
                        f"n_results is {n_results}, more than this server's limit of {settings.max_query_results} "
                        f"(max_query_results / GLEAN_MAX_QUERY_RESULTS)")
    if n_queries is not None and n_queries > settings.max_query_embeddings:
        raise HTTPError(400, "InvalidArgumentError",
                        f"query_embeddings has {n_queries} embeddings, more than this server's limit of "
                        f"{settings.max_query_embeddings} per request (max_query_embeddings / "
                        f"GLEAN_MAX_QUERY_EMBEDDINGS); split the query into smaller requests")
    for name, clause in (("where_document", where_document), ("where", where)):
        for needle in _contains_operands(clause, name == "where_document"):
            if len(needle) > settings.max_contains_length:
                raise HTTPError(400, "InvalidArgumentError",
                                f"$contains operand in {name} is {len(needle)} characters long, more than this "
                                f"server's limit of {settings.max_contains_length} (max_contains_length / "
                                f"GLEAN_MAX_CONTAINS_LENGTH)")
        for pattern in _regex_patterns(clause):
            if len(pattern) > settings.max_regex_length:
                raise HTTPError(400, "InvalidArgumentError",
                                f"regex pattern in {name} is {len(pattern)} characters long, more than this "
                                f"server's limit of {settings.max_regex_length} (max_regex_length / "
                                f"GLEAN_MAX_REGEX_LENGTH)")


def check_rank_limits(settings: ServerSettings, clause: Any) -> None:
    """Each ``$knn`` / ``$bm25`` limit of a search within ``max_query_results`` (explicit stack)."""
    stack = [clause]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("$knn", "$bm25") and isinstance(v, dict):
                    limit = v.get("limit")
                    if isinstance(limit, int) and limit > settings.max_query_results:
                        raise HTTPError(400, "InvalidArgumentError",
                                        f"{k} limit is {limit}, more than this server's limit of "
                                        f"{settings.max_query_results} (max_query_results / GLEAN_MAX_QUERY_RESULTS)")
                if isinstance(v, (dict, list)):
                    stack.append(v)
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, (dict, list)))


class ServerState:
    """The clients the routes use; all share the engine of ``path``."""

    def __init__(self, path: str, settings: ServerSettings, storage: Any = None):
        self.path = path
        self.settings = settings
        self.client_settings = gleandb.Settings(allow_reset=settings.allow_reset, anonymized_telemetry=False)
        self._lock = threading.Lock()
        # --role query: a read-only follower engine, registered for ``path`` before any client opens it
        self.engine = self.cache = None
        if settings.role == "query":
            from gleandb.api.follower import open_query_engine

            self.engine, self.cache = open_query_engine(path, settings, storage)
        # the AdminClient keeps the engine (and the store's writer lock) open for the server's life
        try:
            self.admin = gleandb.AdminClient(self.client_settings.copy(is_persistent=True, persist_directory=path))
        except BaseException:
            self._release_engine()
            raise
        self._clients: dict[tuple[str, str], Any] = {}
        self.write_queue: Any = None  # server/admission.py's WriteQueue, when writes are limited
        self.known_tenants: set[str] = {gleandb.DEFAULT_TENANT}
        self.closed = False

    def client(self, tenant: str, database: str) -> Any:
        key = (tenant, database)
        with self._lock:
            c = self._clients.get(key)
            if c is not None:
                return c
        try:
            c = gleandb.PersistentClient(self.path, settings=self.client_settings, tenant=tenant, database=database)
        except ValueError as exc:  # "Could not connect to tenant/database ..."
            raise _MissingDatabase(str(exc)) from None
        with self._lock:
            old = self._clients.get(key)
            if old is not None:
                c.close()
                return old
            self._clients[key] = c
            self.known_tenants.add(tenant)
        return c

    def forget(self, tenant: str | None = None, database: str | None = None) -> None:
        """Drop cached clients (after a database is deleted or the store reset)."""
        with self._lock:
            keys = [k for k in self._clients if (tenant is None or k[0] == tenant) and (database is None or k[1] == database)]
            victims = [self._clients.pop(k) for k in keys]
        for c in victims:
            c.close()

    def collection(self, tenant: str, database: str, cid: str, message: str | None = None) -> Any:
        cid = _parse_uuid(cid) if message is None else cid
        message = message or f"Collection [{cid}] does not exist."
        try:
            client = self.client(tenant, database)
        except _MissingDatabase:
            raise gerr.NotFoundError(message) from None
        try:
            return client.get_collection_by_id(cid, embedding_function=None)
        except gerr.NotFoundError:
            # also for an id that exists in a tenant/database the token may not reach: a 403
            # would confirm that the id exists somewhere, a 404 reveals nothing
            raise gerr.NotFoundError(message) from None

    def collection_count(self) -> int:
        n = 0
        for tenant in sorted(self.known_tenants):
            try:
                dbs = self.admin.list_databases(tenant=tenant)
            except Exception:
                continue
            for db in dbs:
                try:
                    n += self.client(tenant, db["name"]).count_collections()
                except Exception:
                    pass
        return n

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.forget()
        self.admin.close()
        self._release_engine()

    def _release_engine(self) -> None:
        if self.engine is not None:
            from gleandb.api.follower import release_engine

            release_engine(self.engine)
            self.engine = None


# ------------------------------------------------------------------------ the app


def create_app(path: str, settings: ServerSettings | None = None, storage: Any = None) -> FastAPI:
    """``storage``: for ``--role query``, the store to follow (default: the directory ``path``)."""
    settings = settings or ServerSettings(path=str(path))
    state = ServerState(str(path), settings, storage)

    mcp_lifespan: list = []  # filled below once the app exists: /mcp's session manager

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        try:
            if mcp_lifespan:
                async with mcp_lifespan[0]():
                    yield
            else:
                yield
        finally:
            state.close()

    app = FastAPI(
        title="gleandb",
        description="Chroma's v2 HTTP API served by gleandb's embedded engine",
        version=gleandb.__version__,
        lifespan=lifespan,
        default_response_class=FastJSON,
    )
    app.state.glean = state

    if settings.role == "query":  # inside the auth and body-limit middleware: they apply first
        from gleandb.server.forward import WriteForwarding

        follower = state.engine.follower
        app.add_middleware(WriteForwarding, writer_url=settings.writer_url, after_write=follower.refresh,
                           timeout_s=settings.request_timeout_s)

    if settings.concurrent_writes and settings.role != "query":  # a query node forwards its writes
        from gleandb.server.admission import WriteAdmission, WriteQueue

        # inside the middleware installed below: auth and limits first, then the queue
        state.write_queue = WriteQueue(settings.concurrent_writes)
        app.add_middleware(WriteAdmission, queue=state.write_queue)
    from gleandb.server.middleware import install_middleware

    metrics = install_middleware(app, settings, state)
    import importlib.util

    if importlib.util.find_spec("mcp") is not None:  # without the mcp package: no /mcp
        from gleandb.server.mcp import mount_http

        # MCP (streamable HTTP) at /mcp, behind the same middleware (auth); docs/mcp.md
        mcp_lifespan.append(mount_http(app, state, settings))

    @app.exception_handler(RequestValidationError)
    async def _on_validation(request: Request, exc: RequestValidationError):
        return _error_response(*_validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _on_framework_error(request: Request, exc: StarletteHTTPException):
        # unknown route, method not allowed, a body FastAPI could not parse: Chroma's shape too
        return _error_response(*_framework_message(request, exc), headers=exc.headers)

    async def _on_error(request: Request, exc: Exception):
        status, name, message = _from_exception(exc)
        if isinstance(exc, (gerr.InsufficientStorageError, gerr.ObjectStoreUnavailableError)):
            log.warning("%s %s: %s", request.method, request.url.path, message)  # no traceback: expected
        elif status >= 500:
            log.exception("error in %s %s", request.method, request.url.path, exc_info=exc)
        return _error_response(status, name, message)

    # gleandb errors and validation errors are Exceptions: route them through one handler
    for cls in (HTTPError, gerr.ChromaError, ValueError, TypeError, OverflowError):
        app.add_exception_handler(cls, _on_error)

    # ------------------------------------------------------------------ system

    @app.get(API, tags=["system"])
    @app.get(API + "/heartbeat", tags=["system"])
    def heartbeat() -> dict:
        return {"nanosecond heartbeat": time.time_ns()}

    @app.get(API + "/healthcheck", tags=["system"])
    def healthcheck():
        if state.closed:
            return _error_response(503, "ChromaError", "The server is shutting down")
        out = {"is_executor_ready": True, "is_log_client_ready": True}
        if settings.role != "all":
            # still 200 when degraded: the node serves what it has; "gleandb" says how fresh it is
            from gleandb.server.node import node_status

            out["gleandb"] = node_status(settings, state.engine, state.cache)
        return out

    @app.get(API + "/gleandb/node", tags=["system"])
    def node() -> dict:
        """gleandb extension: this node's role, freshness (a query node's polls) and cache figures."""
        from gleandb.server.node import node_status

        return node_status(settings, state.engine, state.cache)

    @app.get(API + "/version", tags=["system"])
    def version() -> str:
        return CHROMA_SERVER_VERSION  # what Chroma's server reports; clients compare it

    @app.get(API + "/gleandb/version", tags=["system"])
    def gleandb_version() -> dict:
        """gleandb extension: this server's own version beside the Chroma versions it reports."""
        from gleandb.api.client import CHROMA_COMPAT_VERSION

        return {"gleandb": gleandb.__version__, "chroma_server": CHROMA_SERVER_VERSION,
                "chromadb_api": CHROMA_COMPAT_VERSION}

    @app.get(API + "/pre-flight-checks", tags=["system"])
    def pre_flight_checks() -> dict:
        return {"max_batch_size": settings.max_batch_size, "supports_base64_encoding": True}

    @app.get(API + "/auth/identity", tags=["system"])
    def identity(request: Request) -> dict:
        user = getattr(request.state, "user_id", "") or ""
        grant = getattr(request.state, "grant", None)
        if grant is not None:
            # as Chroma Cloud: clients with chroma_overwrite_singleton_tenant_database_access_from_auth
            # use this tenant, and the database when there is exactly one
            return {"user_id": user, "tenant": grant.tenant,
                    "databases": list(grant.databases) if grant.databases is not None else ["*"]}
        return {"user_id": user, "tenant": gleandb.DEFAULT_TENANT, "databases": [gleandb.DEFAULT_DATABASE]}

    @app.post(API + "/reset", tags=["system"])
    def reset() -> bool:
        if not settings.allow_reset:
            # Chroma's status and message; named AuthorizationError (Chroma's server says ChromaError)
            # so chromadb's HTTP client raises the class its embedded client raises
            raise HTTPError(403, "AuthorizationError", "Reset is disabled by config")
        client = state.client(gleandb.DEFAULT_TENANT, gleandb.DEFAULT_DATABASE)
        client.reset()
        state.forget()
        state.known_tenants = {gleandb.DEFAULT_TENANT}
        return True

    # ------------------------------------------------------- tenants/databases

    @app.post(API + "/tenants", tags=["tenants"])
    def create_tenant(body: CreateTenant) -> dict:
        if len(body.name) < 3:
            raise HTTPError(400, "InvalidArgumentError", "Validation error: name: Validation error: length [{\"min\": Number(3)}]")
        state.admin.create_tenant(body.name)
        state.known_tenants.add(body.name)
        return {}

    @app.get(API + "/tenants/{tenant}", tags=["tenants"])
    def get_tenant(tenant: str) -> dict:
        state.admin.get_tenant(tenant)
        state.known_tenants.add(tenant)
        return {"name": tenant, "resource_name": None}

    @app.patch(API + "/tenants/{tenant}", tags=["tenants"])
    def update_tenant(tenant: str) -> dict:
        raise HTTPError(501, "ChromaError", "Updating a tenant is not supported by this server")

    @app.get(API + "/tenants/{tenant}/databases", tags=["databases"])
    def list_databases(tenant: str, limit: Optional[str] = Query(None), offset: Optional[str] = Query(None)) -> list:
        limit, offset = query_u32("limit", limit), query_u32("offset", offset)
        # Chroma lists databases sorted by name, then pages
        dbs = sorted(state.admin.list_databases(tenant=tenant), key=lambda d: d["name"])
        grant = _grant()
        if grant is not None and grant.databases is not None:
            dbs = [d for d in dbs if d["name"] in grant.databases]
        dbs = dbs[offset or 0:]
        if limit is not None:
            dbs = dbs[:limit]
        return [{"id": str(d["id"]), "name": d["name"], "tenant": d.get("tenant", tenant)} for d in dbs]

    @app.post(API + "/tenants/{tenant}/databases", tags=["databases"])
    def create_database(tenant: str, body: CreateDatabase) -> dict:
        grant = _grant()
        if grant is not None and grant.databases is not None and body.name not in grant.databases:
            raise _forbidden()
        state.admin.create_database(body.name, tenant=tenant)
        state.known_tenants.add(tenant)
        return {}

    @app.get(API + "/tenants/{tenant}/databases/{database}", tags=["databases"])
    def get_database(tenant: str, database: str) -> dict:
        d = state.admin.get_database(database, tenant=tenant)
        return {"id": str(d["id"]), "name": d["name"], "tenant": d.get("tenant", tenant)}

    @app.delete(API + "/tenants/{tenant}/databases/{database}", tags=["databases"])
    def delete_database(tenant: str, database: str) -> dict:
        state.forget(tenant, database)
        state.admin.delete_database(database, tenant=tenant)
        return {}

    # ------------------------------------------------------------- collections

    DB = API + "/tenants/{tenant}/databases/{database}"

    @app.get(DB + "/collections", tags=["collections"])
    def list_collections(tenant: str, database: str, limit: Optional[str] = Query(None), offset: Optional[str] = Query(None)) -> list:
        limit, offset = query_u32("limit", limit), query_u32("offset", offset)
        try:
            client = state.client(tenant, database)
        except _MissingDatabase:
            return []
        return [collection_json(c) for c in client.list_collections(limit=limit, offset=offset)]

    @app.get(DB + "/collections_count", tags=["collections"])
    def count_collections(tenant: str, database: str) -> int:
        try:
            return state.client(tenant, database).count_collections()
        except _MissingDatabase:
            return 0

    @app.post(DB + "/collections", tags=["collections"])
    def create_collection(tenant: str, database: str, body: CreateCollection) -> dict:
        try:
            client = state.client(tenant, database)
        except _MissingDatabase:
            raise HTTPError(400, "InvalidArgumentError", f"Database [{database}] does not exist") from None
        try:
            col = client.create_collection(
                body.name,
                schema=body.schema_,
                configuration=_configuration_in(body.configuration),
                metadata=body.metadata,
                embedding_function=None,
                get_or_create=body.get_or_create,
            )
        except gerr.InternalError as exc:
            if "already exists" in str(exc):
                raise HTTPError(409, "ChromaError", str(exc)) from None
            raise
        except gerr.NotFoundError as exc:
            if str(exc).startswith("Database ["):
                raise HTTPError(400, "InvalidArgumentError", str(exc)) from None
            raise
        return collection_json(col)

    @app.get(DB + "/collections/by-id/{collection_id}", tags=["collections"])
    def get_collection_by_id(tenant: str, database: str, collection_id: str) -> dict:
        cid = _parse_uuid(collection_id, "Validation error: collection_id: Invalid collection ID format, expected UUID")
        return collection_json(state.collection(tenant, database, cid, f"Collection [{cid}] does not exist"))

    @app.get(DB + "/collections/{name}", tags=["collections"])
    def get_collection(tenant: str, database: str, name: str) -> dict:
        try:
            col = state.client(tenant, database).get_collection(name, embedding_function=None)
        except _MissingDatabase:
            raise gerr.NotFoundError(f"Collection [{name}] does not exist") from None
        return collection_json(col)

    @app.put(DB + "/collections/{collection_id}", tags=["collections"])
    def update_collection(tenant: str, database: str, collection_id: str, body: UpdateCollection) -> dict:
        col = state.collection(tenant, database, collection_id)
        cfg = _configuration_in(body.new_configuration)
        try:
            col.modify(name=body.new_name, metadata=body.new_metadata, configuration=cfg)
        except gerr.InternalError as exc:
            if "already exists" in str(exc):
                raise HTTPError(409, "ChromaError", str(exc)) from None
            raise
        return {}

    @app.delete(DB + "/collections/{name}", tags=["collections"])
    def delete_collection(tenant: str, database: str, name: str) -> dict:
        try:
            client = state.client(tenant, database)
        except _MissingDatabase:
            raise gerr.NotFoundError(f"Collection [{name}] does not exist") from None
        client.delete_collection(name)
        return {}

    # ----------------------------------------------------------------- records

    COL = DB + "/collections/{collection_id}"

    @app.post(COL + "/add", status_code=201, tags=["records"])
    def add(tenant: str, database: str, collection_id: str, body: AddRecords) -> Response:
        col = state.collection(tenant, database, collection_id)
        col.add(ids=body.ids, embeddings=_decode_embeddings(body.embeddings), metadatas=body.metadatas,
                documents=body.documents, uris=body.uris)
        return _written({}, 201)

    @app.post(COL + "/upsert", tags=["records"])
    def upsert(tenant: str, database: str, collection_id: str, body: UpsertRecords) -> Response:
        col = state.collection(tenant, database, collection_id)
        col.upsert(ids=body.ids, embeddings=_decode_embeddings(body.embeddings), metadatas=body.metadatas,
                   documents=body.documents, uris=body.uris)
        return _written({})

    @app.post(COL + "/update", tags=["records"])
    def update(tenant: str, database: str, collection_id: str, body: UpdateRecords) -> Response:
        col = state.collection(tenant, database, collection_id)
        ids, embeddings = body.ids, _decode_embeddings(body.embeddings)
        documents, metadatas, uris = body.documents, body.metadatas, body.uris
        if embeddings is None and (documents is not None or uris is not None):
            # Chroma's server updates documents without re-embedding; the embedded API would
            # embed them, so send the current vectors along (ids that do not exist are skipped,
            # as update skips them anyway).
            cur = col.get(ids=ids, include=["embeddings"])
            vec = {i: e for i, e in zip(cur["ids"], cur["embeddings"])}
            keep = [k for k, i in enumerate(ids) if i in vec]
            if len(keep) != len(ids):
                pick = lambda xs: None if xs is None else [xs[k] for k in keep if k < len(xs)]  # noqa: E731
                ids, documents, metadatas, uris = pick(ids), pick(documents), pick(metadatas), pick(uris)
            if not ids:
                return _written({})
            embeddings = np.asarray([vec[i] for i in ids], dtype=np.float32)
        col.update(ids=ids, embeddings=embeddings, metadatas=metadatas, documents=documents, uris=uris)
        return _written({})

    @app.post(COL + "/delete", tags=["records"])
    def delete(tenant: str, database: str, collection_id: str, body: DeleteRecords) -> Response:
        check_limits(settings, where=body.where, where_document=body.where_document)
        col = state.collection(tenant, database, collection_id)
        if body.limit is not None and body.where is None and body.where_document is None:
            raise HTTPError(400, "InvalidArgumentError",
                            "Validation error: limit, where: limit can only be specified when a where clause is provided")
        res = col.delete(ids=body.ids, where=body.where, where_document=body.where_document, limit=body.limit)
        return _written({"deleted": int((res or {}).get("deleted", 0))})

    @app.get(COL + "/count", tags=["records"])
    def count(tenant: str, database: str, collection_id: str, read_level: Optional[str] = None) -> int:
        return state.collection(tenant, database, collection_id).count()

    @app.post(COL + "/count", tags=["records"])
    def count_where(tenant: str, database: str, collection_id: str, body: CountRecords) -> int:
        """gleandb extension: count the records matching filters."""
        check_limits(settings, where=body.where, where_document=body.where_document)
        return state.collection(tenant, database, collection_id).count(where=body.where, where_document=body.where_document)

    @app.post(COL + "/get", tags=["records"])
    def get(tenant: str, database: str, collection_id: str, body: GetRecords) -> dict:
        check_limits(settings, where=body.where, where_document=body.where_document)
        col = state.collection(tenant, database, collection_id)
        res = col.get(ids=body.ids, where=body.where, limit=body.limit, offset=body.offset,
                      where_document=body.where_document, include=list(body.include), order_by=body.order_by)
        return json_response(_get_response(res, body.include), settings.max_response_bytes, depth=1)

    @app.post(COL + "/query", tags=["records"])
    def query(tenant: str, database: str, collection_id: str, body: QueryRecords) -> dict:
        check_limits(settings, where=body.where, where_document=body.where_document,
                     n_results=body.n_results, n_queries=len(body.query_embeddings))
        col = state.collection(tenant, database, collection_id)
        include = list(body.include)
        if not body.query_embeddings:
            return {"ids": [], "embeddings": None if "embeddings" not in include else [],
                    **{k: ([] if k in include else None) for k in ("documents", "uris", "metadatas", "distances")},
                    "include": include}
        # unfiltered, each query answers min(n_results, count) rows: refuse before the work
        # when even their smallest JSON is over the limit (filters: the budget and sizing catch it)
        unfiltered = body.ids is None and body.where is None and body.where_document is None
        rows = min(body.n_results, col.count()) if unfiltered else 0
        least = predicted_query_bytes(len(body.query_embeddings), rows, include, len(body.query_embeddings[0]))
        if least > settings.max_response_bytes:
            raise too_large(f"at least {least} bytes for {len(body.query_embeddings)} queries x {rows} results",
                            settings.max_response_bytes, RESPONSE_SETTING)
        q = _decode_embeddings(body.query_embeddings)
        res = col.query(query_embeddings=q, n_results=body.n_results, ids=body.ids, where=body.where,
                        where_document=body.where_document, include=include)
        return json_response(_query_response(res, include), settings.max_response_bytes, depth=2)

    # ------------------------------------------------- not served locally (Cloud)

    @app.post(COL + "/search", tags=["records"])
    def search(tenant: str, database: str, collection_id: str, body: dict[str, Any]) -> dict:
        """Chroma's Search API (Cloud-only in Chroma), served locally; see docs/search.md."""
        searches = body.get("searches")
        if not isinstance(searches, list):
            raise HTTPError(400, "InvalidArgumentError", f"searches must be a list of searches, got {searches!r:.80}")
        if len(searches) > settings.max_query_embeddings:
            raise HTTPError(400, "InvalidArgumentError",
                            f"searches has {len(searches)} searches, more than this server's limit of "
                            f"{settings.max_query_embeddings} per request (max_query_embeddings / "
                            f"GLEAN_MAX_QUERY_EMBEDDINGS); split the batch")
        for i, one in enumerate(searches):
            if isinstance(one, dict):
                for key in ("filter", "where", "rank"):
                    check_depth(one.get(key), f"searches[{i}].{key}")
            else:
                check_depth(one, f"searches[{i}]")
        check_limits(settings, where=searches, nesting=False)
        check_rank_limits(settings, searches)
        return dict(state.collection(tenant, database, collection_id).search(searches))

    @app.post(COL + "/retrieve", tags=["records"])
    def retrieve(tenant: str, database: str, collection_id: str, body: dict[str, Any]) -> dict:
        """gleandb extension: ``Collection.retrieve`` (hybrid dense + BM25); see docs/server.md."""
        from gleandb.retrieval.config import stored
        from gleandb.retrieval.hybrid import RETRIEVE_ARGS, result_to_json

        unknown = sorted(set(body) - set(RETRIEVE_ARGS))
        if unknown:
            raise HTTPError(400, "InvalidArgumentError",
                            f"retrieve: unknown field {unknown[0]!r}; expected some of {', '.join(RETRIEVE_ARGS)}")
        n_queries = len(body.get("query_texts") or body.get("query_embeddings") or [])
        check_limits(settings, where=body.get("where"), where_document=body.get("where_document"),
                     n_results=body.get("n_results") if isinstance(body.get("n_results"), int) else None,
                     n_queries=n_queries)
        col = state.collection(tenant, database, collection_id)
        # omitted candidates come from the collection's stored retrieval configuration
        cand = body["candidates"] if "candidates" in body else stored(col.configuration_json).get("candidates")
        if isinstance(cand, int) and cand > settings.max_query_results:
            raise HTTPError(400, "InvalidArgumentError",
                            f"candidates is {cand}, more than this server's limit of {settings.max_query_results} "
                            f"(max_query_results / GLEAN_MAX_QUERY_RESULTS)")
        return result_to_json(col.retrieve(**body))

    @app.post(COL + "/context", tags=["records"])
    def context(tenant: str, database: str, collection_id: str, body: dict[str, Any]) -> dict:
        """gleandb extension: ``Collection.context`` (retrieve, re-rank, pack); see docs/server.md."""
        from gleandb.retrieval.llm import ChatError
        from gleandb.retrieval.rerank import RerankError
        from gleandb.server.context import run_context

        check_limits(settings, where=body.get("where"), where_document=body.get("where_document"))
        col = state.collection(tenant, database, collection_id)
        try:
            return run_context(col, body, settings)
        except (RerankError, ChatError) as exc:  # the model endpoint failed, not this server
            raise HTTPError(502, "RerankError", str(exc)) from None

    @app.post(COL + "/fork", tags=["collections"])
    def fork(tenant: str, database: str, collection_id: str, body: ForkCollection) -> dict:
        col = state.collection(tenant, database, collection_id)
        try:
            return collection_json(col.fork(body.new_name, version=body.version))
        except gerr.InternalError as exc:
            if "already exists" in str(exc):
                raise HTTPError(409, "ChromaError", str(exc)) from None
            raise

    @app.get(COL + "/fork_count", tags=["collections"])
    def fork_count(tenant: str, database: str, collection_id: str) -> dict:
        return {"count": state.collection(tenant, database, collection_id).fork_count()}

    @app.get(COL + "/versions", tags=["collections"])
    def versions(tenant: str, database: str, collection_id: str) -> list:
        """gleandb extension: the collection's retained versions."""
        return state.collection(tenant, database, collection_id).versions()

    @app.get(COL + "/indexing_status", tags=["collections"])
    def indexing_status(tenant: str, database: str, collection_id: str) -> dict:
        raise HTTPError(501, "ChromaError", "Indexing status is unsupported for local chroma")

    from gleandb.server.label_ui import make_router as label_router

    app.include_router(label_router(state.client))  # /ui/label: the labeling page (docs/evals-label.md)

    if metrics is not None:
        @app.get("/metrics", include_in_schema=False)
        def metrics_endpoint() -> Response:
            body, content_type = metrics.render()
            return Response(body, media_type=content_type)

    return app
