"""gleandb as an MCP server: tools and resources over the public API, for models as users.

One :class:`mcp.server.mcpserver.MCPServer` (the official ``mcp`` SDK, 2.x) whose tools call
``gleandb`` clients and collections exactly as a Python user would: the server layer stays a
client of the api layer (DESIGN.md). Where the client comes from is the only difference
between the two transports, so it is a :class:`Backend`:

- ``glean mcp --path DIR`` (stdio): one ``PersistentClient`` for the process's life;
- ``glean run`` (streamable HTTP at ``/mcp``): the server's shared clients, per tenant and
  database. ``server/middleware.py`` has already authenticated the request (no credentials,
  401) before it reaches the MCP app; a tenant-bound token only reaches its tenant, checked
  here against the token's grant, which the middleware leaves in the ASGI scope.

Unlike Chroma's HTTP routes, MCP tools embed: a model sends text, not vectors, so ``add``,
``query``, ``retrieve`` and ``context`` use the collection's own embedding function.

Every expected failure (unknown collection, bad filter, bad regex, bad argument) is raised
as :class:`ToolError`, which the SDK turns into an ``isError`` result carrying the message;
the server never crashes on a tool call and never answers with a protocol error for one.
"""

from __future__ import annotations

import contextvars
import json
import logging
import math
from contextlib import asynccontextmanager
from typing import Annotated, Any, AsyncIterator, Callable, Literal

from pydantic import Field

import gleandb
from gleandb.errors import ChromaError

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

INSTRUCTIONS = (
    "gleandb is a retrieval database. Collections hold documents (text), metadata and embeddings. "
    "Find text with `retrieve` (hybrid: meaning and exact words; usually the best first choice), "
    "`query` (meaning only), `grep` (regular expression, returns matching lines) and `get` (by id or filter). "
    "`context` returns the best passages for a question packed into a token budget, with [n] citations. "
    "Filters: `where` on metadata, e.g. {\"year\": {\"$gte\": 2020}} or {\"$and\": [...]}; "
    "`where_document` on text, e.g. {\"$contains\": \"invoice\"} or {\"$regex\": \"v[0-9]+\"}. "
    "Git repositories indexed with `glean code index`: `code_repos` lists them; `code_search` (hybrid), "
    "`code_grep` (like git grep -n) and `code_diff` read any indexed commit or branch."
)
log = logging.getLogger("gleandb.server")
# largest n_results / limit a tool accepts: a model's context window is the real bound
MAX_RESULTS = 1000
GREP_MAX_LINES = 2000
PEEK = 3

Name = Annotated[str, Field(description="Collection name (3-512 characters of [a-zA-Z0-9._-]).")]
Where = Annotated[dict[str, Any] | None, Field(
    description='Metadata filter, Chroma syntax: {"key": value}, {"key": {"$gt": 3}} with $eq $ne $gt $gte $lt '
                '$lte $in $nin, combined with {"$and": [...]} / {"$or": [...]}. Omit for no filter.')]
WhereDocument = Annotated[dict[str, Any] | None, Field(
    description='Document text filter: {"$contains": "text"}, {"$not_contains": "text"}, {"$regex": "pattern"}, '
                '{"$not_regex": "pattern"}, combined with {"$and": [...]} / {"$or": [...]}. Omit for no filter.')]
Metadatas = Annotated[list[dict[str, Any]] | None, Field(
    description="One flat metadata object per document (values: string, number, boolean, or lists of them).")]
NResults = Annotated[int, Field(description="How many results to return.", ge=1, le=MAX_RESULTS)]
ReadInclude = list[Literal["documents", "metadatas", "uris"]]
MemScope = Annotated[dict[str, str], Field(
    description='Whose memory: e.g. {"user": "u42", "agent": "support"}. Memories of one scope are never '
                "recalled or forgotten through another.", min_length=1)]
MemCollection = Annotated[str, Field(description="Collection that stores the memories.")]


# ------------------------------------------------------------------ where clients come from


class Backend:
    """Gives a tool call the gleandb client it may use."""

    def client(self) -> Any:  # pragma: no cover - interface
        raise NotImplementedError


class LocalBackend(Backend):
    """``glean mcp --path DIR``: one persistent client, the whole store."""

    def __init__(self, path: str, tenant: str = gleandb.DEFAULT_TENANT, database: str = gleandb.DEFAULT_DATABASE):
        self._client = gleandb.PersistentClient(path, tenant=tenant, database=database)

    def client(self) -> Any:
        return self._client

    def close(self) -> None:
        self._client.close()


# the HTTP request of the MCP message being handled (set by _remember_request; None on stdio)
_http_request: contextvars.ContextVar[Any] = contextvars.ContextVar("glean_mcp_request", default=None)


async def _remember_request(ctx: Any, call_next: Callable) -> Any:
    """MCP middleware: make the message's HTTP request (headers, the auth middleware's grant)
    visible to the tool or resource that handles it."""
    token = _http_request.set(getattr(ctx, "request", None))
    try:
        return await call_next(ctx)
    finally:
        _http_request.reset(token)


TENANT_HEADER = "x-glean-tenant"
DATABASE_HEADER = "x-glean-database"


class HttpBackend(Backend):
    """``/mcp`` under ``glean run``: the tenant and database come from the ``X-Glean-Tenant`` /
    ``X-Glean-Database`` headers, else from the token's grant, else the defaults; a
    tenant-bound token may not name another tenant or a database outside its grant."""

    def __init__(self, state: Any):
        self.state = state

    def client(self) -> Any:
        from gleandb.server.app import _MissingDatabase
        from gleandb.server.middleware import FORBIDDEN

        request = _http_request.get()
        if request is None:  # fail closed: without the request there is no grant to check
            raise ToolError("this MCP message carries no HTTP request, so its credentials cannot be checked")
        grant = (request.scope.get("state") or {}).get("grant")
        headers = request.headers
        tenant = headers.get(TENANT_HEADER) or (grant.tenant if grant is not None else None) or gleandb.DEFAULT_TENANT
        dbs = grant.databases if grant is not None else None
        database = headers.get(DATABASE_HEADER) or (
            dbs[0] if dbs and gleandb.DEFAULT_DATABASE not in dbs else gleandb.DEFAULT_DATABASE)
        if grant is not None and (tenant != grant.tenant or (dbs is not None and database not in dbs)):
            raise ToolError(f"{FORBIDDEN} (tenant {tenant!r}, database {database!r})")
        try:
            return self.state.client(tenant, database)
        except _MissingDatabase as exc:
            raise ToolError(str(exc)) from None


# ------------------------------------------------------------------ helpers


def _plain(value: Any) -> Any:
    """JSON-ready: numpy arrays and scalars to lists and numbers, dataclasses to objects, dates to
    ISO strings, NaN/inf to None."""
    import dataclasses
    import datetime

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fail(exc: Exception) -> ToolError:
    name = exc.name() if isinstance(exc, ChromaError) and callable(getattr(exc, "name", None)) else type(exc).__name__
    message = str(exc).strip() or name
    return ToolError(f"{name}: {message}")


# ImportError: ModelNotAvailableError, the default model's package is not installed
EXPECTED = (ChromaError, ValueError, TypeError, LookupError, ImportError)


def _collection(client: Any, name: str) -> Any:
    try:
        return client.get_collection(name)
    except EXPECTED as exc:
        if "does not exist" in str(exc):
            raise ToolError(f"NotFoundError: collection {name!r} does not exist; list_collections shows "
                            f"the collections there are") from None
        raise _fail(exc) from None


def _collection_summary(col: Any) -> dict:
    cfg = col.configuration_json or {}
    ef = cfg.get("embedding_function") or {}
    return {"name": col.name, "id": str(col.id), "metadata": col.metadata, "count": col.count(),
            "embedding_function": ef.get("name") if isinstance(ef, dict) else None}


def _info(col: Any, peek: int) -> dict:
    out = _collection_summary(col)
    out["configuration"] = _plain({k: v for k, v in (col.configuration_json or {}).items()})
    if peek:
        p = col.get(limit=peek, include=["documents", "metadatas"])
        out["peek"] = [{"id": i, "document": d, "metadata": m}
                       for i, d, m in zip(p["ids"], p["documents"], p["metadatas"])]
    return out


SINGULAR = {"documents": "document", "metadatas": "metadata", "uris": "uri", "distances": "distance"}


def _rows(ids: list, columns: dict[str, list | None]) -> list[dict]:
    """Chroma's parallel column lists to one object per record, with singular keys (``document``,
    ``metadata``): what a model reads most easily."""
    rows = []
    for i, id_ in enumerate(ids):
        row = {"id": id_}
        for key, col in columns.items():
            if col is not None:
                row[SINGULAR.get(key, key)] = col[i]
        rows.append(row)
    return rows


def _embedding_function(spec: dict | None) -> Any:
    from gleandb.embeddings.functions import build_ef, known_embedding_functions, _PROVIDER_MODULES

    if spec is None:
        return None
    name = spec.get("name")
    config = spec.get("config") or {}
    if not isinstance(name, str) or not isinstance(config, dict):
        raise ToolError('embedding_function must be {"name": str, "config": object}, '
                        f"got {json.dumps(spec, default=str)[:200]}")
    ef = build_ef({"type": "known", "name": name, "config": config})
    if ef is None:
        names = sorted(set(known_embedding_functions) | set(_PROVIDER_MODULES))
        raise ToolError(f"embedding_function {name!r} with config {config!r} could not be built; "
                        f"known functions: {', '.join(names)}")
    return ef


# ------------------------------------------------------------------ the server


def build_server(backend: Backend, settings: Any = None) -> MCPServer:
    """The MCP server: every tool, and the collection resources, over ``backend``'s clients.
    ``settings`` (a ``ServerSettings``) is the re-ranker policy of ``context`` (server/context.py);
    None = the defaults (official endpoints, keys from the environment only, no cross-encoders)."""
    from gleandb.server.config import ServerSettings

    policy = settings or ServerSettings()
    server = MCPServer("gleandb", instructions=INSTRUCTIONS, version=gleandb.__version__,
                       middleware=[_remember_request], log_level="WARNING")
    read_only = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                                open_world_hint=False)
    writes = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
    destroys = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)

    def tool(annotations: ToolAnnotations) -> Callable:
        """Register ``fn`` (its docstring is the description the model reads); gleandb's
        expected errors become tool errors with their message."""
        def register(fn: Callable) -> Callable:
            import functools

            @functools.wraps(fn)
            def call(*args: Any, **kwargs: Any) -> Any:
                try:
                    return _plain(fn(*args, **kwargs))
                except ToolError:
                    raise
                except EXPECTED as exc:
                    err = _fail(exc)
                    filters = {k: kwargs[k] for k in ("where", "where_document") if kwargs.get(k) is not None}
                    if filters and ("where" in str(exc) or "regex" in str(exc).lower()):
                        # chromadb's filter messages name the clause, not the value: add it
                        given = ", ".join(f"{k}={json.dumps(v, default=str)[:300]}" for k, v in filters.items())
                        err = ToolError(f"{err} (given {given})")
                    raise err from None
                except Exception as exc:
                    if type(exc).__module__.startswith("gleandb."):  # gleandb's own (e.g. gleandb.memory's)
                        raise _fail(exc) from None
                    # a bug or an environment failure: logged, and still a tool error
                    log.exception("MCP tool %s failed", fn.__name__)
                    raise ToolError(f"InternalError: {type(exc).__name__}: {exc}") from None

            server.add_tool(call, name=fn.__name__, description=" ".join((fn.__doc__ or "").split()),
                            annotations=annotations)
            return fn
        return register

    def client() -> Any:
        return backend.client()

    # -------------------------------------------------------------- collections

    @tool(read_only)
    def list_collections(
        limit: Annotated[int | None, Field(description="At most this many collections.", ge=1)] = None,
        offset: Annotated[int | None, Field(description="Skip this many collections first.", ge=0)] = None,
    ) -> dict:
        """List the collections (name, id, metadata, record count, embedding function), ordered by creation."""
        cols = client().list_collections(limit=limit, offset=offset)
        return {"collections": [_collection_summary(c) for c in cols]}

    @tool(writes)
    def create_collection(
        name: Name,
        metadata: Annotated[dict[str, Any] | None, Field(description="Flat metadata of the collection.")] = None,
        configuration: Annotated[dict[str, Any] | None, Field(
            description='Collection configuration: {"hnsw": {"space": "cosine"|"l2"|"ip", "ef_search": int, ...}, '
                        '"fulltext": {...}, "retrieval": {"mode": "hybrid"|"dense"|"bm25", ...}, '
                        '"embedding_function": {"name": "default"|"openai"|"gleandb_hashing"|..., "config": {...}}}. '
                        "Omit for the defaults (the default all-MiniLM-L6-v2 embedding function, l2).")] = None,
        get_or_create: Annotated[bool, Field(description="Return the existing collection instead of failing "
                                                         "when one with this name exists.")] = False,
    ) -> dict:
        """Create a collection. Its embedding function (from configuration.embedding_function, else the
        default model) embeds the documents that `add` stores and the questions of query/retrieve/context."""
        cfg = dict(configuration or {})
        ef_spec = cfg.pop("embedding_function", None)
        kwargs: dict[str, Any] = {"metadata": metadata, "configuration": cfg or None}
        if ef_spec is not None:
            kwargs["embedding_function"] = _embedding_function(ef_spec)
        c = client()
        col = c.get_or_create_collection(name, **kwargs) if get_or_create else c.create_collection(name, **kwargs)
        return _info(col, 0)

    @tool(read_only)
    def collection_info(
        name: Name,
        peek: Annotated[int, Field(description="Also return this many records (0 = none).", ge=0, le=100)] = PEEK,
    ) -> dict:
        """One collection: record count, metadata, configuration (index, full text, retrieval defaults,
        embedding function) and the first `peek` records."""
        return _info(_collection(client(), name), peek)

    @tool(writes)
    def modify_collection(
        name: Name,
        new_name: Annotated[str | None, Field(description="Rename the collection to this.")] = None,
        new_metadata: Annotated[dict[str, Any] | None, Field(description="Replace the collection's metadata.")] = None,
        new_configuration: Annotated[dict[str, Any] | None, Field(
            description='Update the configuration, e.g. {"hnsw": {"ef_search": 200}} or {"retrieval": {...}}.')] = None,
    ) -> dict:
        """Rename a collection, replace its metadata or update its configuration."""
        if new_name is None and new_metadata is None and new_configuration is None:
            raise ToolError("modify_collection: give at least one of new_name, new_metadata, new_configuration")
        col = _collection(client(), name)
        col.modify(name=new_name, metadata=new_metadata, configuration=new_configuration)
        return _info(col, 0)

    @tool(destroys)
    def delete_collection(name: Name) -> dict:
        """Delete a collection and all its records. Cannot be undone (forks made earlier are kept)."""
        c = client()
        _collection(c, name)
        c.delete_collection(name)
        return {"deleted": name}

    @tool(writes)
    def fork(
        name: Name,
        new_name: Annotated[str, Field(description="Name of the new collection.")],
    ) -> dict:
        """Copy a collection under a new name in milliseconds whatever its size (copy-on-write): the copy
        has the same records, configuration and embedding function, and later writes to either one do not
        show in the other. Use it to experiment without touching the original."""
        return _info(_collection(client(), name).fork(new_name), 0)

    # -------------------------------------------------------------- records

    @tool(writes)
    def add(
        collection: Name,
        documents: Annotated[list[str], Field(description="Texts to store, embedded with the collection's "
                                                          "embedding function.", min_length=1)],
        ids: Annotated[list[str] | None, Field(description="One id per document; omit to generate ids.")] = None,
        metadatas: Metadatas = None,
        upsert: Annotated[bool, Field(description="Replace records whose id exists instead of failing.")] = False,
    ) -> dict:
        """Store documents in a collection (embedded with the collection's embedding function). Fails
        without writing anything if an id already exists, unless upsert is true."""
        import uuid

        col = _collection(client(), collection)
        if ids is None:
            ids = [str(uuid.uuid4()) for _ in documents]
        if len(ids) != len(documents):
            raise ToolError(f"add: {len(ids)} ids for {len(documents)} documents; give one id per document")
        if metadatas is not None and len(metadatas) != len(documents):
            raise ToolError(f"add: {len(metadatas)} metadatas for {len(documents)} documents; "
                            "give one per document")
        if not upsert:
            existing = col.get(ids=ids, include=[])["ids"]
            if existing:
                raise ToolError(f"add: ids already in {collection!r}: {existing[:10]}; nothing was written "
                                "(use upsert=true to replace them, or update)")
        (col.upsert if upsert else col.add)(ids=ids, documents=documents, metadatas=metadatas)
        return {"collection": collection, "ids": ids, "count": col.count()}

    @tool(writes)
    def update(
        collection: Name,
        ids: Annotated[list[str], Field(description="Ids of the records to change.", min_length=1)],
        documents: Annotated[list[str] | None, Field(description="New texts (re-embedded), one per id.")] = None,
        metadatas: Annotated[list[dict[str, Any]] | None, Field(
            description="Metadata to merge into each record, one per id (a key set to null is removed).")] = None,
        embeddings: Annotated[list[list[float]] | None, Field(
            description="Vectors to store instead of embedding the documents, one per id (rarely needed).")] = None,
    ) -> dict:
        """Change the text, metadata and/or embedding of existing records; every id must exist, else nothing
        is written."""
        if documents is None and metadatas is None and embeddings is None:
            raise ToolError("update: give documents, metadatas and/or embeddings")
        for field, given in (("documents", documents), ("metadatas", metadatas), ("embeddings", embeddings)):
            if given is not None and len(given) != len(ids):
                raise ToolError(f"update: {len(given)} {field} for {len(ids)} ids; give one per id")
        col = _collection(client(), collection)
        found = set(col.get(ids=ids, include=[])["ids"])
        missing = [i for i in ids if i not in found]
        if missing:
            raise ToolError(f"update: ids not in {collection!r}: {missing[:10]}; nothing was written")
        col.update(ids=ids, documents=documents, metadatas=metadatas, embeddings=embeddings)
        return {"collection": collection, "updated": len(ids)}

    @tool(destroys)
    def delete(
        collection: Name,
        ids: Annotated[list[str] | None, Field(description="Delete these ids.")] = None,
        where: Where = None,
        where_document: WhereDocument = None,
    ) -> dict:
        """Delete records by id and/or filter (at least one of them). Returns how many were deleted."""
        if ids is None and where is None and where_document is None:
            raise ToolError("delete: give ids, where or where_document (deleting everything is delete_collection)")
        col = _collection(client(), collection)
        before = col.count()
        col.delete(ids=ids, where=where, where_document=where_document)
        return {"collection": collection, "deleted": before - col.count()}

    @tool(read_only)
    def get(
        collection: Name,
        ids: Annotated[list[str] | None, Field(description="Only these ids.")] = None,
        where: Where = None,
        where_document: WhereDocument = None,
        limit: Annotated[int, Field(description="At most this many records.", ge=1, le=MAX_RESULTS)] = 20,
        offset: Annotated[int, Field(description="Skip this many records first.", ge=0)] = 0,
        include: Annotated[ReadInclude, Field(description="Fields to return.")] = [  # noqa: B006
            "documents", "metadatas"],
    ) -> dict:
        """Fetch records by id and/or filter, without ranking (in insertion order)."""
        col = _collection(client(), collection)
        r = col.get(ids=ids, where=where, where_document=where_document, limit=limit, offset=offset,
                    include=list(include))
        return {"records": _rows(r["ids"], {k: r.get(k) for k in include})}

    @tool(read_only)
    def query(
        collection: Name,
        query_texts: Annotated[list[str], Field(description="Questions or passages to find similar documents to.",
                                                min_length=1)],
        n_results: NResults = 5,
        where: Where = None,
        where_document: WhereDocument = None,
        include: Annotated[ReadInclude, Field(description="Fields to return (distances always are).")] = [  # noqa: B006
            "documents", "metadatas"],
    ) -> dict:
        """Nearest neighbours by embedding (meaning, not exact words), per query text; smaller distance =
        closer. Prefer `retrieve`, which also matches exact words (names, codes)."""
        col = _collection(client(), collection)
        r = col.query(query_texts=query_texts, n_results=n_results, where=where, where_document=where_document,
                      include=[*include, "distances"])
        return {"results": [
            {"query": q, "matches": _rows(r["ids"][i], {k: r[k][i] if r.get(k) is not None else None
                                                         for k in [*include, "distances"]})}
            for i, q in enumerate(query_texts)]}

    @tool(read_only)
    def retrieve(
        collection: Name,
        query_texts: Annotated[list[str], Field(description="Questions, keywords or passages.", min_length=1)],
        n_results: NResults = 5,
        where: Where = None,
        where_document: WhereDocument = None,
        mode: Annotated[Literal["hybrid", "dense", "bm25"] | None, Field(
            description="hybrid = embeddings + BM25 keywords fused; dense = embeddings only; bm25 = keywords only. "
                        "Default: the collection's configured mode (hybrid unless set).")] = None,
        fusion: Annotated[Literal["rrf", "weighted", "zscore", "adaptive"] | None, Field(
            description="How hybrid rankings are fused (default: the collection's, else rrf).")] = None,
    ) -> dict:
        """Hybrid search: ranks by meaning (embeddings) and by exact words (BM25) and fuses the two, per query
        text. Each match has a fused score (higher = better) and its rank in each ranking, so you can see why
        it matched. The best general-purpose search tool."""
        col = _collection(client(), collection)
        kw: dict[str, Any] = {}
        if mode is not None:
            kw["mode"] = mode
        if fusion is not None:
            kw["fusion"] = fusion
        r = col.retrieve(query_texts=query_texts, n_results=n_results, where=where, where_document=where_document,
                         **kw)
        out = []
        for i, q in enumerate(query_texts):
            ranks = [{k: (v + 1 if v is not None else None) for k, v in rk.items()} for rk in r["ranks"][i]]
            out.append({"query": q, "matches": _rows(r["ids"][i], {"document": r["documents"][i],
                                                                    "metadata": r["metadatas"][i],
                                                                    "score": r["scores"][i], "ranks": ranks})})
        return {"results": out}

    @tool(read_only)
    def grep(
        collection: Name,
        pattern: Annotated[str, Field(description="Regular expression (RE2 syntax: no look-around or "
                                                  "backreferences), matched within each line.", min_length=1)],
        ignore_case: Annotated[bool, Field(description="Match case-insensitively.")] = False,
        where: Where = None,
        limit: Annotated[int, Field(description="At most this many documents.", ge=1, le=MAX_RESULTS)] = 50,
        max_lines: Annotated[int, Field(description="At most this many matching lines in all.", ge=1,
                                        le=GREP_MAX_LINES)] = 200,
    ) -> dict:
        """Like grep: the documents whose text matches a regular expression and, for each, the matching lines
        with their 1-based line numbers (also as "id:line:text" in `text`). Exact and exhaustive, not
        ranked: use it for names, identifiers, error messages, numbers."""
        from gleandb.api.text import grep_lines

        full = f"(?i){pattern}" if ignore_case else pattern
        col = _collection(client(), collection)
        r = col.get(where=where, where_document={"$regex": full}, limit=limit, include=["documents", "metadatas"])
        lines, total = grep_lines(r["documents"], full, max_lines)
        matches = [{"id": i, "metadata": m, "lines": [{"line": n, "text": t} for n, t in found]}
                   for i, m, found in zip(r["ids"], r["metadatas"], lines)]
        text = "\n".join(f"{m['id']}:{ln['line']}:{ln['text']}" for m in matches for ln in m["lines"])
        shown = sum(len(m["lines"]) for m in matches)
        return {"documents": len(matches), "lines": total, "truncated": shown < total or len(matches) == limit,
                "matches": matches, "text": text}

    @tool(read_only)
    def context(
        collection: Name,
        question: Annotated[str, Field(description="What the context is for.", min_length=1)],
        max_tokens: Annotated[int, Field(description="Token budget of the packed text.", ge=1,
                                         le=200_000)] = 2000,
        top_n: Annotated[int, Field(description="At most this many passages.", ge=1, le=MAX_RESULTS)] = 10,
        candidates: Annotated[int, Field(description="First-stage candidates to choose from.", ge=1,
                                         le=MAX_RESULTS)] = 50,
        where: Where = None,
        where_document: WhereDocument = None,
        mode: Annotated[Literal["hybrid", "dense", "bm25"] | None, Field(
            description="First-stage retrieval mode (default: the collection's).")] = None,
        order: Annotated[Literal["relevance", "source", "ends"], Field(
            description="Order of the packed passages.")] = "relevance",
        reranker: Annotated[dict[str, Any] | None, Field(
            description='Optional re-ranker, e.g. {"type": "llm", "model": "gpt-4.1-mini"}; keys and endpoints follow '
                        "the server's policy (API keys from its environment). Omit for first-stage order.")] = None,
    ) -> dict:
        """The best passages for a question, packed into a token budget: retrieve candidates (hybrid), optionally
        re-rank, drop near-duplicates, keep the top ones that fit. `text` holds the passages with [n] markers;
        `citations` maps each n to a record id. Use it to gather what to read before answering."""
        from gleandb.server.context import run_context

        col = _collection(client(), collection)
        body: dict[str, Any] = {"question": question, "max_tokens": max_tokens, "top_n": top_n,
                                "candidates": candidates, "where": where, "where_document": where_document,
                                "mode": mode, "order": order, "reranker": reranker}
        from gleandb.retrieval.context import stored_mode

        if (mode or stored_mode(col)) in ("hybrid", "dense"):
            from gleandb.api.retrieve import embed_texts

            body["query_embedding"] = [float(x) for x in embed_texts(col.embedding_function, [question])[0]]
        out = run_context(col, {k: v for k, v in body.items() if v is not None}, policy)
        return {"text": out["text"], "citations": out["citations"],
                "chunks": [{"citation": c["citation"], "id": c["id"], "metadata": c["metadata"],
                            "rerank_score": c["rerank_score"]} for c in out["chunks"]],
                "usage": {k: out["usage"].get(k) for k in ("tokens", "max_tokens", "candidates", "dropped")
                          if k in out["usage"]}}

    _register_memory(server, tool, client, writes, read_only, destroys)
    from gleandb.server.mcp_code import register_code

    register_code(server, tool, client, read_only)
    _register_resources(server, backend)
    return server


def memory_available() -> bool:
    """Whether ``gleandb.memory`` exists (it comes from another part of issue 14)."""
    try:
        import gleandb.memory  # noqa: F401
    except ImportError:
        return False
    return True


def _register_memory(server: MCPServer, tool: Callable, client: Callable, writes: Any, read_only: Any,
                     destroys: Any) -> None:
    """remember / recall / forget over ``gleandb.Memory``, only when that module exists."""
    if not memory_available():
        return
    from gleandb.memory import Memory

    def memory(scope: dict, collection: str) -> Any:
        return Memory(client(), scope=scope, collection=collection)

    @tool(writes)
    def remember(
        scope: MemScope,
        text: Annotated[str, Field(description="The fact, preference or event to remember, in one sentence.",
                                   min_length=1)],
        metadata: Annotated[dict[str, Any] | None, Field(description='e.g. {"kind": "preference"}.')] = None,
        importance: Annotated[float, Field(description="0 (trivia) to 1 (critical); weighs recall.", ge=0,
                                           le=1)] = 0.5,
        ttl: Annotated[float | None, Field(description="Forget after this many seconds (omit: keep).", gt=0)] = None,
        collection: MemCollection = "memories",
    ) -> dict:
        """Store a memory for a scope (a user, an agent, a session). A restatement of an existing memory updates
        it rather than adding a duplicate. Returns the memory's id."""
        mid = memory(scope, collection).remember(text, metadata=metadata, importance=importance, ttl=ttl)
        return {"id": mid}

    @tool(read_only)
    def recall(
        scope: MemScope,
        query: Annotated[str, Field(description="What you want to know.", min_length=1)],
        k: Annotated[int, Field(description="At most this many memories.", ge=1, le=100)] = 5,
        where: Where = None,
        collection: MemCollection = "memories",
    ) -> dict:
        """The memories of a scope most relevant to a query (relevance, recency and importance), each with its
        score and why it matched."""
        hits = memory(scope, collection).recall(query, k=k, where=where)
        keys = ("id", "text", "score", "metadata", "scope", "created_at", "updated_at", "importance", "why")
        return {"memories": [{key: getattr(h, key, None) for key in keys} for h in hits]}

    @tool(destroys)
    def forget(
        scope: MemScope,
        id: Annotated[str | None, Field(description="The memory to forget.")] = None,
        where: Where = None,
        collection: MemCollection = "memories",
    ) -> dict:
        """Delete a memory by id, or every memory of the scope matching a metadata filter. Deletion is real."""
        if (id is None) == (where is None):
            raise ToolError("forget: give exactly one of id or where")
        mem = memory(scope, collection)
        n = mem.forget(id) if id is not None else mem.forget(where=where)
        return {"forgotten": n}


def _register_resources(server: MCPServer, backend: Backend) -> None:
    """``gleandb://collections`` (the list) and ``gleandb://collections/{name}`` (count, metadata,
    configuration, a peek)."""
    from mcp.server.mcpserver.exceptions import ResourceError

    @server.resource("gleandb://collections", name="collections", mime_type="application/json",
                     description="The collections: name, id, metadata, record count, embedding function.")
    def collections_resource() -> str:
        cols = backend.client().list_collections()
        return json.dumps(_plain([_collection_summary(c) for c in cols]))

    @server.resource("gleandb://collections/{name}", name="collection", mime_type="application/json",
                     description="One collection: count, metadata, configuration and its first records.")
    def collection_resource(name: str) -> str:
        try:
            return json.dumps(_plain(_info(_collection(backend.client(), name), PEEK)))
        except ToolError as exc:
            raise ResourceError(str(exc)) from None


# ------------------------------------------------------------------ transports


def run_stdio(path: str, settings: Any = None) -> None:
    """``glean mcp``: serve over stdin/stdout until the client closes them; ``settings`` (a
    ``ServerSettings``) carries the re-ranker policy of ``context``."""
    backend = LocalBackend(path)
    try:
        build_server(backend, settings).run("stdio")
    finally:
        backend.close()


class _Labelled:
    """An ASGI app that records its route in the scope, as FastAPI's own routes do."""

    def __init__(self, app: Any, path: str):
        self.app = app
        self.path = path

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        scope["route"] = self
        await self.app(scope, receive, send)


def mount_http(app: Any, state: Any, settings: Any) -> Callable[[], Any]:
    """Add ``/mcp`` (streamable HTTP) to the FastAPI ``app``, behind its middleware (auth, limits);
    returns the context manager the app's lifespan must enter (it runs the SDK's session manager)."""
    server = build_server(HttpBackend(state), settings)
    # DNS-rebinding protection (Host / Origin checks) when bound to loopback, as the SDK advises
    sub = server.streamable_http_app(streamable_http_path="/mcp", host=settings.host, json_response=True)
    from starlette.routing import Route

    for route in sub.routes:
        if isinstance(route, Route):  # labelled, so metrics and the access log say /mcp, not "unmatched"
            route = Route(route.path, endpoint=_Labelled(route.endpoint, route.path), methods=route.methods)
        app.router.routes.append(route)

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with server.session_manager.run():
            yield

    return lifespan
