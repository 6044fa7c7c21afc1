"""``HttpClient`` and ``AsyncHttpClient``: the chromadb client API over Chroma's v2 HTTP API.

Same methods, results and errors as the embedded client (``gleandb.api.client``),
talking to ``glean run`` or to a Chroma server with httpx, like chromadb's
``chromadb.api.fastapi.FastAPI`` / ``async_fastapi.AsyncFastAPI``.

What is shared with the embedded client
---------------------------------------
* **Validation**: every check the embedded client makes before touching its
  engine runs here before any request, with the same functions
  (``gleandb.api.validation`` and ``gleandb.index.filters.compile_filter``), so bad
  input raises the same class and message. Checks that need server state (the
  collection's dimension, whether a collection exists) are made by the server;
  its error body ``{"error": name, "message": ...}`` is raised as the class
  ``gleandb.errors.error_types[name]`` (``Exception(text)`` for anything else),
  with ``trace_id`` from the ``chroma-trace-id`` header, as chromadb does.
* **Embedding**: ``HttpCollection`` subclasses the embedded ``Collection`` and
  reuses its embedding step (``Collection._embed``: the collection's embedding
  function, ``embed_query`` for queries, the data loader for uris), its
  properties, ``repr``/equality and data loading for ``include=["data"]``.
* **Configuration**: collection configuration is checked and embedding
  functions are resolved by the embedded client's own helpers
  (``ClientAPI._make_configuration``, ``_updated_configuration``, ``_wrap``).
* **Results**: ``GetResult`` / ``QueryResult`` built by ``gleandb.api.results``
  (embeddings as float64 numpy arrays of the stored float32 values; distances
  rounded through float32 like the embedded engine's).

Sync and async share one implementation: each operation is written once as a
generator ("plan") that yields the HTTP requests it needs and receives their
decoded JSON; ``_run`` drives a plan with ``httpx.Client``, ``_arun`` with
``httpx.AsyncClient`` (errors are thrown back into the plan, so it can catch
them). Public methods are thin wrappers generated from the plans.

Wire format (chromadb's): writes send embeddings as base64 little-endian
float32 when ``GET /pre-flight-checks`` says ``supports_base64_encoding`` (JSON
float arrays otherwise) and refuse batches over its ``max_batch_size``; None
fields are sent as ``null``; ``include`` is sent without ``"data"``.
"""

from __future__ import annotations

import base64
import functools
import inspect
import json
import string
import urllib.parse
import uuid
from types import SimpleNamespace
from typing import Any, Callable, Generator, Sequence

import httpx
import numpy as np

from gleandb.api import validation as v
from gleandb.api.client import VERSION, ClientAPI
from gleandb.api.collection import DEFAULT_GET_INCLUDE, DEFAULT_QUERY_INCLUDE, Collection
from gleandb.api.errors import ChromaError, InsufficientStorageError, error_types
from gleandb.api.schema import Schema, schema_to_json
from gleandb.api.results import GetResult, QueryResult, get_result, query_result
from gleandb.api.settings import Settings
from gleandb.catalog.catalog import DEFAULT_DATABASE, DEFAULT_TENANT, CollectionRecord
from gleandb.embeddings.functions import DefaultEmbeddingFunction, describe_ef
from gleandb.index.filters import compile_filter
from gleandb.retrieval.config import UNSET

__all__ = [
    "AsyncHttpAdminClient",
    "AsyncHttpClient",
    "AsyncHttpClientAPI",
    "AsyncHttpCollection",
    "HttpAdminClient",
    "HttpClient",
    "HttpClientAPI",
    "HttpCollection",
]

_NO_LIMIT = 1 << 62
_CONNECT_ERROR = "Could not connect to a Chroma server. Are you sure it is running?"
_TOKEN_PROVIDERS = {"chromadb.auth.token_authn.TokenAuthClientProvider", "token"}
_BASIC_PROVIDERS = {"chromadb.auth.basic_authn.BasicAuthClientProvider", "basic"}
_TOKEN_HEADERS = ["Authorization", "X-Chroma-Token"]
_VALID_TOKEN_CHARS = set(string.digits + string.ascii_letters + string.punctuation)

# A request a plan yields: (method, path under /api/v2, JSON body or None, query params or None).
Request = tuple[str, str, Any, "dict | None"]
Plan = Generator[Request, Any, Any]


def _get(path: str, params: dict | None = None) -> Request:
    return ("GET", path, None, params)


def _post(path: str, body: Any = None) -> Request:
    return ("POST", path, body, None)


def _seg(value: Any) -> str:
    """One path segment (a name or an id), escaped as chromadb escapes paths."""
    return urllib.parse.quote(str(value), safe="")


# --------------------------------------------------------------------------- settings


def resolve_url(host: str, ssl: bool = False, default_api_path: str = "/api/v2", port: int | None = 8000) -> str:
    """chromadb's ``BaseHTTPClient.resolve_url``: a host starting with ``http`` is a
    full URL (no port appended); otherwise ``scheme://host:port/api/v2``."""
    parsed = urllib.parse.urlparse(host)
    if "/" in host and parsed.scheme not in {"http", "https"}:
        raise ValueError("Invalid URL. " f"Unrecognized protocol - {parsed.scheme}.")
    skip_port = host.startswith("http")
    scheme = "https" if ssl else parsed.scheme or "http"
    net_loc = parsed.netloc or parsed.hostname or host
    port_part = ":" + str(parsed.port or port) if not skip_port else ""
    path = parsed.path or default_api_path
    if not path or path == net_loc:
        path = default_api_path or ""
    if not path.endswith(default_api_path or ""):
        path = path + default_api_path if default_api_path else ""
    return urllib.parse.urlunparse((scheme, f"{net_loc}{port_part}", urllib.parse.quote(path.replace("//", "/")), "", "", ""))


def _http_settings(host: Any, port: Any, ssl: Any, headers: Any, settings: Settings | None) -> Settings:
    """chromadb's ``HttpClient`` argument handling (same checks and messages)."""
    settings = settings if settings is not None else Settings()
    host, port, ssl = str(host), int(port), bool(ssl)
    if settings.chroma_server_host and settings.chroma_server_host != host:
        raise ValueError(
            f"Chroma server host provided in settings[{settings.chroma_server_host}] is different to the one provided in HttpClient: [{host}]"
        )
    if settings.chroma_server_http_port and settings.chroma_server_http_port != port:
        raise ValueError(
            f"Chroma server http port provided in settings[{settings.chroma_server_http_port}] is different to the one provided in HttpClient: [{port}]"
        )
    return settings.copy(
        chroma_api_impl="gleandb.api.http_client",
        chroma_server_host=host,
        chroma_server_http_port=port,
        chroma_server_ssl_enabled=ssl,
        chroma_server_headers=headers,
    )


def auth_headers(settings: Settings) -> dict[str, str]:
    """Headers of chromadb's client auth providers (token: Bearer or X-Chroma-Token; basic)."""
    provider = getattr(settings, "chroma_client_auth_provider", None)
    if not provider:
        return {}
    creds = getattr(settings, "chroma_client_auth_credentials", None)
    if creds is None:
        raise ValueError("Missing required config value 'chroma_client_auth_credentials'")
    if provider in _TOKEN_PROVIDERS:
        token = str(creds)
        if not all(c in _VALID_TOKEN_CHARS for c in token):
            raise ValueError("Invalid token. Must contain only ASCII letters, digits, and punctuation.")
        header = getattr(settings, "chroma_auth_token_transport_header", None) or "Authorization"
        if header not in _TOKEN_HEADERS:
            raise ValueError(f"Invalid token transport header: {header}. Must be one of {_TOKEN_HEADERS}")
        return {header: f"Bearer {token}" if header == "Authorization" else token}
    if provider in _BASIC_PROVIDERS:
        encoded = base64.b64encode(str(creds).encode("utf-8")).decode("utf-8")
        return {"Authorization": f"Basic {encoded}"}
    raise ValueError(
        f"Unknown chroma_client_auth_provider {provider!r}: expected one of "
        f"{sorted(_TOKEN_PROVIDERS | _BASIC_PROVIDERS)}"
    )


# --------------------------------------------------------------------------- transport


def _json_default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def _raise_for_response(resp: httpx.Response) -> None:
    """chromadb's ``_raise_chroma_error``: the class named by the body's ``error``."""
    if resp.is_success:
        return
    trace_id = resp.headers.get("chroma-trace-id")
    try:
        body = json.loads(resp.text)
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("error") in error_types:
        cls = error_types[body["error"]]
        if resp.status_code == 507:  # named ChromaError for chromadb's client; gleandb's says what it is
            cls = InsufficientStorageError
        err = cls(body.get("message"))
        if trace_id:
            err.trace_id = trace_id
        raise err
    raise Exception(f"{resp.text} (trace ID: {trace_id})" if trace_id else resp.text)


class _Transport:
    """URL, headers and request encoding shared by the sync and async clients."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._api_url = resolve_url(
            str(settings.chroma_server_host),
            bool(settings.chroma_server_ssl_enabled),
            settings.chroma_server_api_default_path or "/api/v2",
            settings.chroma_server_http_port,
        )
        headers = dict(settings.chroma_server_headers or {})
        headers["Content-Type"] = "application/json"
        headers["User-Agent"] = f"gleandb Python Client v{VERSION} (chromadb-compatible)"
        headers.update(auth_headers(settings))
        self._headers = headers
        self._pre_flight: dict | None = None

    def _client_kwargs(self) -> dict:
        kw: dict[str, Any] = {"timeout": None, "headers": self._headers}
        verify = getattr(self._settings, "chroma_server_ssl_verify", None)
        if verify is not None:
            kw["verify"] = verify
        return kw

    def _encode(self, req: Request) -> tuple[str, str, dict]:
        method, path, body, params = req
        kw: dict[str, Any] = {}
        if body is not None or method in ("POST", "PUT"):
            kw["content"] = json.dumps(body if body is not None else {}, default=_json_default)
        if params:
            kw["params"] = {k: val for k, val in params.items() if val is not None}
        return method, self._api_url + urllib.parse.quote(path, safe="/%"), kw

    @staticmethod
    def _decode(resp: httpx.Response) -> Any:
        _raise_for_response(resp)
        return json.loads(resp.text) if resp.content else None

    def get_api_url(self) -> str:
        return self._api_url

    def get_request_headers(self) -> dict[str, str]:
        return dict(self._headers)


class _SyncDriver:
    _http: httpx.Client

    def _run(self, plan: Plan) -> Any:
        try:
            req = next(plan)
            while True:
                try:
                    method, url, kw = self._transport._encode(req)
                    result = self._transport._decode(self._http.request(method, url, **kw))
                except Exception as e:
                    req = plan.throw(e)
                else:
                    req = plan.send(result)
        except StopIteration as stop:
            return stop.value


class _AsyncDriver:
    _http: httpx.AsyncClient

    async def _arun(self, plan: Plan) -> Any:
        try:
            req = next(plan)
            while True:
                try:
                    method, url, kw = self._transport._encode(req)
                    result = self._transport._decode(await self._http.request(method, url, **kw))
                except Exception as e:
                    req = plan.throw(e)
                else:
                    req = plan.send(result)
        except StopIteration as stop:
            return stop.value


def _expose(names: Sequence[str], asynchronous: bool) -> Callable[[type], type]:
    """Class decorator: a public method ``name`` for each plan ``_p_<name>``."""

    def deco(cls: type) -> type:
        for name in names:
            plan = getattr(cls, "_p_" + name)
            if asynchronous:

                async def method(self: Any, *args: Any, __plan: Any = plan, **kwargs: Any) -> Any:
                    return await self._arun(__plan(self, *args, **kwargs))

            else:

                def method(self: Any, *args: Any, __plan: Any = plan, **kwargs: Any) -> Any:
                    return self._run(__plan(self, *args, **kwargs))

            functools.update_wrapper(method, plan)
            sig = inspect.signature(plan)
            method.__signature__ = sig.replace(return_annotation=inspect.Signature.empty)  # type: ignore[attr-defined]
            method.__name__ = name
            method.__qualname__ = f"{cls.__qualname__}.{name}"
            setattr(cls, name, method)
        return cls

    return deco


# --------------------------------------------------------------------------- results


def _f32_matrix(rows: Any) -> np.ndarray:
    if not rows:
        return np.zeros((0, 0), np.float32)
    return np.asarray(rows, dtype=np.float32)


def _wire_include(include: list[str]) -> list[str]:
    """The include list sent to the server: "data" is loaded here, from the uris (and over
    HTTP does not return the metadatas, as with chromadb's HTTP client)."""
    return [i for i in include if i != "data"]


def _hydrated(ids: list, embeddings: Any, documents: Any, uris: Any, metadatas: Any) -> SimpleNamespace:
    """The JSON columns of one result as the embedded engine's ``Hydrated`` rows."""
    return SimpleNamespace(
        ids=ids,
        embeddings=_f32_matrix(embeddings) if embeddings is not None else None,
        documents=documents,
        uris=uris,
        metadatas=metadatas,
    )


def _nth(resp: dict, key: str, i: int) -> Any:
    col = resp.get(key)
    return col[i] if col is not None else None


def _record_from_json(model: dict) -> CollectionRecord:
    return CollectionRecord(
        id=str(model["id"]),
        name=model["name"],
        tenant=model.get("tenant", DEFAULT_TENANT),
        database=model.get("database", DEFAULT_DATABASE),
        metadata=model.get("metadata"),
        configuration=model.get("configuration_json") or {},
    )


# --------------------------------------------------------------------------- collection


class _HttpCollectionBase(Collection):
    """The embedded ``Collection`` with its storage calls replaced by HTTP plans."""

    def __init__(self, client: Any, record: CollectionRecord, embedding_function: Any, data_loader: Any = None, model: dict | None = None):
        super().__init__(client, record, embedding_function, data_loader)
        self._model = dict(model or {})

    @property
    def _store(self) -> Any:  # the embedded engine is not here
        raise NotImplementedError("this collection lives on a server; it has no local store")

    @property
    def _path(self) -> str:
        return f"/tenants/{_seg(self.tenant)}/databases/{_seg(self.database)}/collections/{_seg(self._record.id)}"

    @property
    def dimension(self) -> int | None:
        """The dimension the server reported when this object was fetched (may be stale)."""
        return self._model.get("dimension")

    def get_model(self) -> dict:
        return {**self._record.to_dict(), **{k: val for k, val in self._model.items() if k not in ("configuration_json", "schema")}}

    @property
    def schema(self) -> Schema:
        """The schema the server reported (its index switches are enforced there)."""
        if self._model.get("schema"):
            return Schema.deserialize_from_json(self._model["schema"])
        return super().schema

    def flush(self) -> None:
        raise NotImplementedError("flush is not available over HTTP (the server flushes on its own)")

    def compact(self) -> None:
        raise NotImplementedError("compact is not available over HTTP (the server compacts on its own)")

    # ---------------------------------------------------------------- writes

    def _p_write(self, method: str, ids, embeddings, metadatas, documents, images, uris) -> Plan:
        rs = v.prepare_record_set(method, ids, embeddings, metadatas, documents, images, uris)
        rs = self._embed(method, rs)
        # the stateless engine checks (binding types, NaN/Inf, metadata keys, ragged
        # rows, empty ids) as the embedded client makes them; the dimension is the server's
        matrix = v.validate_write_for_engine(method, rs, None, max_batch_size=_NO_LIMIT)
        pre = yield from self._client._p_pre_flight_checks()
        max_batch = pre.get("max_batch_size", -1)
        if len(rs.ids) > max_batch:
            raise ValueError(f"Batch size {len(rs.ids)} exceeds maximum batch size {max_batch}")
        if matrix is None:
            wire = None
        elif pre.get("supports_base64_encoding", False):
            le = matrix.astype("<f4", copy=False)
            wire = [base64.b64encode(row.tobytes()).decode("ascii") for row in le]
        else:
            wire = matrix.tolist()
        body = {"ids": rs.ids, "embeddings": wire, "metadatas": rs.metadatas, "documents": rs.documents, "uris": rs.uris}
        yield _post(f"{self._path}/{method}", body)
        return None

    def _p_add(self, ids, embeddings=None, metadatas=None, documents=None, images=None, uris=None) -> Plan:
        """Insert records; ids that exist already are left untouched (chromadb semantics)."""
        return (yield from self._p_write("add", ids, embeddings, metadatas, documents, images, uris))

    def _p_update(self, ids, embeddings=None, metadatas=None, documents=None, images=None, uris=None) -> Plan:
        """Change existing records (metadata merges; None deletes a key); missing ids are ignored."""
        return (yield from self._p_write("update", ids, embeddings, metadatas, documents, images, uris))

    def _p_upsert(self, ids, embeddings=None, metadatas=None, documents=None, images=None, uris=None) -> Plan:
        """Insert missing ids, update existing ones (merging metadata)."""
        return (yield from self._p_write("upsert", ids, embeddings, metadatas, documents, images, uris))

    def _p_delete(self, ids=None, where=None, where_document=None, limit=None) -> Plan:
        """Delete by ids and/or filters; returns ``{"deleted": n}``."""
        id_list, limit = v.validate_delete_args(ids, where, where_document, limit)
        with v.validation_context("delete"):
            compile_filter(where, where_document)
        limit = v.validate_u32_argument("limit", limit)
        body: dict[str, Any] = {"ids": id_list, "where": where, "where_document": where_document}
        if limit is not None:
            body["limit"] = limit
        resp = yield _post(f"{self._path}/delete", body)
        return {"deleted": resp.get("deleted", 0) if resp else 0}

    # ----------------------------------------------------------------- reads

    def _p_get(self, ids=None, where=None, limit=None, offset=None, where_document=None, include=DEFAULT_GET_INCLUDE, order_by=None) -> Plan:
        """Records by ids and/or filters, in insertion order. ``order_by`` (a gleandb
        extension) is sent to the server, which must support it (Chroma ignores it)."""
        include = v.validate_include(include, "get", has_data_loader=self._data_loader is not None)
        id_list = v.validate_ids_for_read(ids, "get")
        with v.validation_context("get"):
            compile_filter(where, where_document)
        limit, offset = v.validate_limit_offset(limit, offset)
        body: dict[str, Any] = {
            "ids": id_list,
            "where": where,
            "limit": limit,
            "offset": offset,
            "where_document": where_document,
            "include": _wire_include(include),
        }
        if order_by is not None:
            body["order_by"] = order_by
        resp = yield _post(f"{self._path}/get", body)
        h = _hydrated(resp["ids"], resp.get("embeddings"), resp.get("documents"), resp.get("uris"), resp.get("metadatas"))
        return get_result(h, include, self._load_data(h, include), data_returns_metadatas=False)  # type: ignore[return-value]

    def _p_peek(self, limit: int = 10) -> Plan:
        return (yield from self._p_get(limit=limit, include=["embeddings", "documents", "metadatas"]))

    def _p_count(self, where=None, where_document=None, read_level: Any = "index_and_wal", **_ignored: Any) -> Plan:
        """Number of records; with filters, the number that match (a gleandb extension,
        computed over HTTP as a ``get`` of the matching ids)."""
        with v.validation_context("count"):
            filt = compile_filter(where, where_document)
        if filt is None:
            level = getattr(read_level, "value", read_level)
            return int((yield _get(f"{self._path}/count", {"read_level": level})))
        body = {"ids": None, "where": where, "where_document": where_document, "include": []}
        resp = yield _post(f"{self._path}/get", body)
        return len(resp["ids"])

    def _p_query(
        self,
        query_embeddings=None,
        query_texts=None,
        query_images=None,
        query_uris=None,
        ids=None,
        n_results: int = 10,
        where=None,
        where_document=None,
        include=DEFAULT_QUERY_INCLUDE,
    ) -> Plan:
        """k nearest neighbours of each query, among the records that pass the filters."""
        qi, include, n_results, _filt, id_list = self._prepare_query(
            query_embeddings, query_texts, query_images, query_uris, ids, n_results, where, where_document, include
        )
        queries = v.query_embedding_matrix(qi.embeddings, None)
        body = {
            "ids": id_list,
            "query_embeddings": queries.tolist(),
            "n_results": n_results,
            "where": where,
            "where_document": where_document,
            "include": _wire_include(include),
        }
        resp = yield _post(f"{self._path}/query", body)
        nq = queries.shape[0]
        rows = resp.get("ids") or []
        hyd, dists = [], []
        for i in range(nq):
            ids_i = rows[i] if i < len(rows) else []
            hyd.append(_hydrated(ids_i, _nth(resp, "embeddings", i), _nth(resp, "documents", i), _nth(resp, "uris", i), _nth(resp, "metadatas", i)))
            d = _nth(resp, "distances", i)
            # the engine computes in float32: round the wire's decimals the same way
            dists.append([float(x) for x in np.asarray(d if d is not None else [], dtype=np.float32)])
        data = [self._load_data(h, include) for h in hyd] if self._data_loader is not None else None
        return query_result(hyd, dists, data, include, data_returns_metadatas=False)  # type: ignore[return-value]

    def _p_search(self, searches: Any, read_level: Any = "index_and_wal") -> Plan:
        """The Search API (see ``Collection.search``); text ``Knn`` queries are embedded here."""
        from gleandb.api.search import SearchResult
        from gleandb.retrieval.search import embed_string_queries, parse

        items = searches if isinstance(searches, (list, tuple)) else [searches]
        parsed = [parse(x) for x in items]
        for p in parsed:
            embed_string_queries(p, self._embedding_function)
        level = getattr(read_level, "value", read_level)
        resp = yield _post(f"{self._path}/search", {"searches": [p.to_dict() for p in parsed], "read_level": level})
        return SearchResult(resp)

    def _p_retrieve(self, query_texts=None, query_embeddings=None, n_results=10, where=None, where_document=None,
                    mode=UNSET, fusion=UNSET, weights=UNSET, candidates=UNSET, rrf_k=UNSET,
                    include=["documents", "metadatas"]) -> Plan:  # noqa: B006 - never mutated
        """Hybrid retrieval (see ``Collection.retrieve``); text queries are embedded here for the dense ranker.
        Only the tunable arguments the caller gave are sent: the server fills the others from the
        collection's stored configuration (checked here against the last known one)."""
        from gleandb.api.retrieve import embed_texts, validate_args
        from gleandb.retrieval import hybrid

        given = dict(mode=mode, fusion=fusion, weights=weights, candidates=candidates, rrf_k=rrf_k)
        e = hybrid.effective(self._record.configuration, **given)
        a = validate_args(query_texts, query_embeddings, n_results, e["mode"], e["fusion"], e["weights"],
                          e["candidates"], e["rrf_k"], include)
        with v.validation_context("retrieve"):
            compile_filter(where, where_document)
        emb = a["embeddings"]
        if "dense" in a["active"] and emb is None:
            emb = embed_texts(self._embedding_function, a["texts"])
        body = {"query_texts": a["texts"], "query_embeddings": None if emb is None else emb.tolist(),
                "n_results": a["n_results"], "where": where, "where_document": where_document,
                "include": a["include"]}
        normalised = {"weights": a["weights"], "candidates": a["candidates"]}  # plain floats / ints for JSON
        body.update({k: normalised.get(k, val) for k, val in given.items() if val is not UNSET})
        resp = yield _post(f"{self._path}/retrieve", body)
        return hybrid.result_from_json(resp)

    # ---------------------------------------------------------------- modify

    def _p_modify(self, name: str | None = None, metadata: dict | None = None, configuration: dict | None = None) -> Plan:
        """Rename, replace the metadata, or change updatable configuration (ef_search...)."""
        if metadata is not None:
            metadata = v.validate_collection_metadata(metadata, creating=False)
        if name is not None:
            v.validate_collection_name(name, field="new_name")
        new_config = None
        if configuration is not None:
            ClientAPI._updated_configuration(self._client, self._record, configuration)  # same checks as embedded
            new_config = {k: configuration.get(k) for k in ("hnsw", "spann")}
            if configuration.get("retrieval") is not None:
                new_config["retrieval"] = configuration["retrieval"]
            if configuration.get("embedding_function") is not None:
                new_config["embedding_function"] = describe_ef(configuration["embedding_function"])
        yield ("PUT", self._path, {"new_name": name, "new_metadata": metadata, "new_configuration": new_config}, None)
        model = yield _get(f"/tenants/{_seg(self.tenant)}/databases/{_seg(self.database)}/collections/by-id/{_seg(self._record.id)}")
        self._record = _record_from_json(model)
        self._model = dict(model)
        return None


    # ----------------------------------------------------------------- forks

    def _p_fork(self, new_name: str, version: int | None = None) -> Plan:
        """Fork on the server (Chroma's fork route; ``version`` is gleandb's extension)."""
        v.validate_collection_name(new_name, field="new_name")
        body: dict = {"new_name": new_name}
        if version is not None:
            body["version"] = version
        model = yield _post(f"{self._path}/fork", body)
        return type(self)(self._client, _record_from_json(model), self._embedding_function, self._data_loader, model)

    def _p_fork_count(self) -> Plan:
        return int((yield _get(f"{self._path}/fork_count"))["count"])

    def _p_versions(self) -> Plan:
        return (yield _get(f"{self._path}/versions"))


_COLLECTION_METHODS = (
    "add", "update", "upsert", "delete", "get", "peek", "count", "query", "modify", "search", "retrieve",
    "fork", "fork_count", "versions",
)


@_expose(_COLLECTION_METHODS, asynchronous=False)
class HttpCollection(_HttpCollectionBase):
    """A collection of an ``HttpClient`` (the embedded ``Collection``'s methods, over HTTP)."""

    def _run(self, plan: Plan) -> Any:
        return self._client._run(plan)


@_expose(_COLLECTION_METHODS, asynchronous=True)
class AsyncHttpCollection(_HttpCollectionBase):
    """A collection of an ``AsyncHttpClient``: every data method is a coroutine."""

    async def _arun(self, plan: Plan) -> Any:
        return await self._client._arun(plan)

    def context(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("context() runs in the caller's process and is not available on AsyncHttpClient "
                                  "collections: use HttpClient, or POST .../collections/{id}/context")


# --------------------------------------------------------------------------- clients


class _ClientPlans:
    """The client methods as plans; ``self`` has ``tenant``, ``database``, ``_transport``."""

    _collection_cls: type
    _transport: _Transport
    tenant: str
    database: str

    @property
    def _db_path(self) -> str:
        return f"/tenants/{_seg(self.tenant)}/databases/{_seg(self.database)}"

    def get_settings(self) -> Settings:
        return self._settings

    def get_api_url(self) -> str:
        return self._transport.get_api_url()

    def get_request_headers(self) -> dict[str, str]:
        return self._transport.get_request_headers()

    # ------------------------------------------------------------- bootstrap

    def _p_bootstrap(self) -> Plan:
        """chromadb's client start: identity, then the tenant and database checks."""
        yield from self._p_get_user_identity()
        yield from self._p_check_tenant_database(self.tenant, self.database)

    def _p_check_tenant_database(self, tenant: str, database: str) -> Plan:
        # chromadb's _validate_tenant_database: server errors (NotFoundError...) propagate
        try:
            yield _get(f"/tenants/{_seg(tenant)}")
        except httpx.ConnectError:
            raise ValueError(_CONNECT_ERROR) from None
        except ChromaError:
            raise
        except Exception:
            raise ValueError(f"Could not connect to tenant {tenant}. Are you sure it exists?") from None
        try:
            yield _get(f"/tenants/{_seg(tenant)}/databases/{_seg(database)}")
        except httpx.ConnectError:
            raise ValueError(_CONNECT_ERROR) from None

    def _p_get_user_identity(self) -> Plan:
        try:
            return (yield _get("/auth/identity"))
        except httpx.ConnectError:
            raise ValueError(_CONNECT_ERROR) from None
        except ChromaError:
            raise
        except Exception as e:
            raise ValueError(str(e)) from None

    def _p_set_tenant(self, tenant: str, database: str = DEFAULT_DATABASE) -> Plan:
        tenant, database = str(tenant), str(database)
        yield from self._p_check_tenant_database(tenant, database)
        self.tenant, self.database = tenant, database

    def _p_set_database(self, database: str) -> Plan:
        database = str(database)
        yield from self._p_check_tenant_database(self.tenant, database)
        self.database = database

    # ---------------------------------------------------------------- system

    def _p_heartbeat(self) -> Plan:
        return int((yield _get("/heartbeat"))["nanosecond heartbeat"])

    def _p_get_version(self) -> Plan:
        return str((yield _get("/version")))

    def _p_pre_flight_checks(self) -> Plan:
        if self._transport._pre_flight is None:
            self._transport._pre_flight = dict((yield _get("/pre-flight-checks")) or {})
        return self._transport._pre_flight

    def _p_get_max_batch_size(self) -> Plan:
        return int((yield from self._p_pre_flight_checks()).get("max_batch_size", -1))

    def _p_reset(self) -> Plan:
        result = yield _post("/reset")
        self._transport._pre_flight = None
        return bool(result)

    # ----------------------------------------------------------- collections

    def _make(self, model: dict, embedding_function: Any, data_loader: Any) -> Collection:
        rec = _record_from_json(model)
        # the embedded client's resolution of the persisted/passed embedding function
        resolved = ClientAPI._wrap(self, rec, embedding_function, data_loader)  # type: ignore[arg-type]
        return self._collection_cls(self, rec, resolved.embedding_function, data_loader, model)

    @staticmethod
    def _configuration_json(metadata: dict | None, configuration: dict | None, embedding_function: Any, full: dict) -> dict:
        """The ``configuration`` body field (chromadb's shape: partial hnsw/spann + the
        described embedding function), carrying the space the embedded client would pick."""
        cfg = dict(configuration or {})
        hnsw, spann = cfg.get("hnsw"), cfg.get("spann")
        chosen = cfg.get("embedding_function") if cfg.get("embedding_function") is not None else embedding_function
        space = full["hnsw"]["space"]
        server_space = (hnsw or {}).get("space") or (spann or {}).get("space") or (metadata or {}).get("hnsw:space") or "l2"
        if space != server_space:
            if spann is not None:
                spann = {**spann, "space": space}
            else:
                hnsw = {**(hnsw or {}), "space": space}
        out = {"hnsw": hnsw, "spann": spann, "embedding_function": describe_ef(chosen) or {"type": "legacy"}}
        if cfg.get("fulltext") is not None:  # gleandb's text analysis settings (the server validates them too)
            out["fulltext"] = cfg["fulltext"]
        if cfg.get("retrieval") is not None:  # retrieve()'s stored defaults (checked here and on the server)
            out["retrieval"] = cfg["retrieval"]
        return out

    def _p_create_collection(
        self,
        name: str,
        schema: Any = None,
        configuration: dict | None = None,
        metadata: dict | None = None,
        embedding_function: Any = DefaultEmbeddingFunction(),
        data_loader: Any = None,
        get_or_create: bool = False,
    ) -> Plan:
        v.validate_collection_name(name)
        metadata = v.validate_collection_metadata(metadata, creating=True)
        schema_ef = getattr(schema, "embedding_function", None)  # gleandb's Schema, as embedded
        if schema_ef is not None and (embedding_function is None or isinstance(embedding_function, DefaultEmbeddingFunction)):
            embedding_function = schema_ef
        full = ClientAPI._make_configuration(self, metadata, configuration, embedding_function)  # type: ignore[arg-type]
        body = {
            "name": name,
            "metadata": metadata,
            "configuration": self._configuration_json(metadata, configuration, embedding_function, full),
            "schema": schema_to_json(schema),
            "get_or_create": bool(get_or_create),
        }
        model = yield _post(f"{self._db_path}/collections", body)
        return self._make(model, embedding_function, data_loader)

    def _p_get_or_create_collection(
        self,
        name: str,
        schema: Any = None,
        configuration: dict | None = None,
        metadata: dict | None = None,
        embedding_function: Any = DefaultEmbeddingFunction(),
        data_loader: Any = None,
    ) -> Plan:
        return (yield from self._p_create_collection(name, schema, configuration, metadata, embedding_function, data_loader, True))

    def _p_get_collection(self, name: str, embedding_function: Any = DefaultEmbeddingFunction(), data_loader: Any = None) -> Plan:
        model = yield _get(f"{self._db_path}/collections/{_seg(name)}")
        return self._make(model, embedding_function, data_loader)

    def _p_get_collection_by_id(self, id: uuid.UUID | str, embedding_function: Any = DefaultEmbeddingFunction(), data_loader: Any = None) -> Plan:
        model = yield _get(f"{self._db_path}/collections/by-id/{_seg(id)}")
        return self._make(model, embedding_function, data_loader)

    def _p_list_collections(self, limit: int | None = None, offset: int | None = None) -> Plan:
        limit, offset = v.validate_limit_offset(limit, offset)  # same errors as embedded
        models = yield _get(f"{self._db_path}/collections", {"limit": limit, "offset": offset})
        return [self._make(m, DefaultEmbeddingFunction(), None) for m in models]

    def _p_count_collections(self) -> Plan:
        return int((yield _get(f"{self._db_path}/collections_count")))

    def _p_delete_collection(self, name: str) -> Plan:
        yield ("DELETE", f"{self._db_path}/collections/{_seg(name)}", None, None)


_CLIENT_METHODS = (
    "heartbeat",
    "get_version",
    "get_user_identity",
    "get_max_batch_size",
    "get_pre_flight_checks",
    "set_tenant",
    "set_database",
    "reset",
    "create_collection",
    "get_or_create_collection",
    "get_collection",
    "get_collection_by_id",
    "list_collections",
    "count_collections",
    "delete_collection",
)
_ClientPlans._p_get_pre_flight_checks = _ClientPlans._p_pre_flight_checks  # type: ignore[attr-defined]


@_expose(_CLIENT_METHODS, asynchronous=False)
class HttpClientAPI(_ClientPlans, _SyncDriver):
    """A client of a gleandb (``glean run``) or Chroma server, bound to one tenant and database."""

    _collection_cls = HttpCollection

    def __init__(self, settings: Settings, tenant: str = DEFAULT_TENANT, database: str = DEFAULT_DATABASE):
        self._settings = settings
        self.tenant, self.database = str(tenant), str(database)
        self._transport = _Transport(settings)
        self._http = httpx.Client(**self._transport._client_kwargs())
        try:
            self._run(self._p_bootstrap())
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "HttpClientAPI":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @staticmethod
    def clear_system_cache() -> None:  # HTTP clients share nothing
        return None


@_expose(_CLIENT_METHODS, asynchronous=True)
class AsyncHttpClientAPI(_ClientPlans, _AsyncDriver):
    """``await gleandb.AsyncHttpClient(...)``: the same client, every server call a coroutine."""

    _collection_cls = AsyncHttpCollection

    def __init__(self, settings: Settings, tenant: str = DEFAULT_TENANT, database: str = DEFAULT_DATABASE):
        self._settings = settings
        self.tenant, self.database = str(tenant), str(database)
        self._transport = _Transport(settings)
        self._http = httpx.AsyncClient(**self._transport._client_kwargs())

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncHttpClientAPI":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    @staticmethod
    def clear_system_cache() -> None:
        return None


# --------------------------------------------------------------------------- admin


class _AdminPlans:
    """chromadb's ``AdminClient`` methods as plans (same client-side checks as the embedded one)."""

    def _p_create_tenant(self, name: str) -> Plan:
        yield _post("/tenants", {"name": v.validate_tenant_name(name)})

    def _p_get_tenant(self, name: str) -> Plan:
        return {"name": (yield _get(f"/tenants/{_seg(name)}"))["name"]}

    def _p_create_database(self, name: str, tenant: str = DEFAULT_TENANT) -> Plan:
        v.validate_database_name(name, creating=True)
        yield _post(f"/tenants/{_seg(tenant)}/databases", {"name": name})

    def _p_get_database(self, name: str, tenant: str = DEFAULT_TENANT) -> Plan:
        v.validate_database_name(name)
        db = yield _get(f"/tenants/{_seg(tenant)}/databases/{_seg(name)}")
        return {"id": db["id"], "name": db["name"], "tenant": db["tenant"]}

    def _p_delete_database(self, name: str, tenant: str = DEFAULT_TENANT) -> Plan:
        yield ("DELETE", f"/tenants/{_seg(tenant)}/databases/{_seg(name)}", None, None)

    def _p_list_databases(self, limit: int | None = None, offset: int | None = None, tenant: str = DEFAULT_TENANT) -> Plan:
        limit, offset = v.validate_limit_offset(limit, offset)  # same errors as embedded
        dbs = yield _get(f"/tenants/{_seg(tenant)}/databases", {"limit": limit, "offset": offset})
        return [{"id": d["id"], "name": d["name"], "tenant": d["tenant"]} for d in dbs]


_ADMIN_METHODS = ("create_tenant", "get_tenant", "create_database", "get_database", "delete_database", "list_databases")


@_expose(_ADMIN_METHODS, asynchronous=False)
class HttpAdminClient(_AdminPlans, _SyncDriver):
    """Tenant and database management on a server (chromadb's ``AdminClient`` over HTTP)."""

    def __init__(self, host: str = "localhost", port: int = 8000, ssl: bool = False, headers: dict | None = None, settings: Settings | None = None):
        self._settings = _http_settings(host, port, ssl, headers, settings)
        self._transport = _Transport(self._settings)
        self._http = httpx.Client(**self._transport._client_kwargs())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "HttpAdminClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@_expose(_ADMIN_METHODS, asynchronous=True)
class AsyncHttpAdminClient(_AdminPlans, _AsyncDriver):
    """``HttpAdminClient`` with coroutine methods."""

    def __init__(self, host: str = "localhost", port: int = 8000, ssl: bool = False, headers: dict | None = None, settings: Settings | None = None):
        self._settings = _http_settings(host, port, ssl, headers, settings)
        self._transport = _Transport(self._settings)
        self._http = httpx.AsyncClient(**self._transport._client_kwargs())

    async def close(self) -> None:
        await self._http.aclose()


# --------------------------------------------------------------------------- factories


def HttpClient(
    host: str = "localhost",
    port: int = 8000,
    ssl: bool = False,
    headers: dict[str, str] | None = None,
    settings: Settings | None = None,
    tenant: str = DEFAULT_TENANT,
    database: str = DEFAULT_DATABASE,
) -> HttpClientAPI:
    """A client of a server (``glean run`` or Chroma) at ``host:port`` (chromadb's ``HttpClient``).

    A ``host`` starting with ``http`` is a full URL and ``port`` is not appended.
    Construction checks the server (``/auth/identity``), the tenant and the
    database: ``ValueError("Could not connect to a Chroma server...")`` when
    nothing answers, the server's ``NotFoundError`` for an unknown tenant/database.
    """
    return HttpClientAPI(_http_settings(host, port, ssl, headers, settings), tenant, database)


async def AsyncHttpClient(
    host: str = "localhost",
    port: int = 8000,
    ssl: bool = False,
    headers: dict[str, str] | None = None,
    settings: Settings | None = None,
    tenant: str = DEFAULT_TENANT,
    database: str = DEFAULT_DATABASE,
) -> AsyncHttpClientAPI:
    """``await AsyncHttpClient(...)``: like ``HttpClient``, every server call a coroutine."""
    client = AsyncHttpClientAPI(_http_settings(host, port, ssl, headers, settings), tenant, database)
    try:
        await client._arun(client._p_bootstrap())
    except BaseException:
        await client.close()
        raise
    return client
