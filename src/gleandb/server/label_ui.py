"""The labeling page: people grade pooled candidates 0-3 (docs/evals-label.md).

One FastAPI router, mounted at ``/ui/label`` by ``glean run`` (behind its auth; the
page itself is static and data-free, every ``/ui/label/api`` call is authenticated)
and served alone by ``glean label`` over an embedded store. Candidates of a query are
pooled from several configurations (dense, BM25, hybrid; top-k each), deduplicated and
shuffled per (query, labeler), so a labeler cannot tell which configuration found
what. Labels go to the collection's ``LabelStore`` and are acknowledged only once
synced. The labeler is the name the page sends, or with basic auth the user name.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from importlib import resources
from typing import Any, Callable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from gleandb.evals.labels import LabelError, dump_golden, label_store, shuffled

PREFIX = "/ui/label"
MODES = ("dense", "bm25", "hybrid")
DEFAULT_K = 10
MAX_K = 100


class _Fail(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _error(status: int, message: str) -> JSONResponse:
    name = {400: "InvalidArgumentError", 404: "NotFoundError", 403: "AuthError"}.get(status, "ChromaError")
    return JSONResponse({"error": name, "message": message}, status_code=status)


def page_html() -> str:
    return resources.files("gleandb.server").joinpath("static/label.html").read_text(encoding="utf-8")


class _Pools:
    """Pooled candidate ids per (collection, query text, k): computed once, kept for a while."""

    def __init__(self, size: int = 512):
        self._cache: OrderedDict[tuple, list[str]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, col: Any, text: str, k: int, extra: list[str]) -> list[str]:
        key = (str(col.id), text, k, tuple(extra))
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        ids: list[str] = []
        for mode in MODES:
            try:
                res = col.retrieve(query_texts=[text], n_results=k, mode=mode, include=[])
            except Exception:  # e.g. dense without an embedding function: pool from the others
                continue
            ids.extend(res["ids"][0])
        if extra:
            ids.extend(col.get(ids=list(extra), include=[])["ids"])
        pooled = list(dict.fromkeys(ids))
        with self._lock:
            self._cache[key] = pooled
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return pooled


def make_router(client_for: Callable[[str, str], Any]) -> APIRouter:
    """The page and its JSON API; ``client_for(tenant, database)`` gives a client of the store."""
    router = APIRouter(prefix=PREFIX)
    pools = _Pools()

    def _scope_state(request: Request) -> dict:
        return request.scope.get("state") or {}

    def _check_grant(request: Request, tenant: str, database: str) -> None:
        grant = _scope_state(request).get("grant")
        if grant is not None and (tenant != grant.tenant or (grant.databases is not None and database not in grant.databases)):
            raise _Fail(403, "Forbidden: this token is not allowed to access the requested tenant or database")

    def _collection(request: Request, name: str) -> Any:
        tenant = request.query_params.get("tenant") or "default_tenant"
        database = request.query_params.get("database") or "default_database"
        _check_grant(request, tenant, database)
        try:
            client = client_for(tenant, database)
            # None: the collection's persisted embedding function (the server never defaults one)
            return client.get_collection(name, embedding_function=None)
        except Exception as exc:
            raise _Fail(404, f"collection {name!r} not found in {tenant}/{database}: {exc}") from None

    def _labeler(request: Request, given: Any) -> str:
        user = _scope_state(request).get("user_id")
        if user and not (user.startswith("token-") and user[6:].isdigit()):
            return user  # basic auth: the authenticated user name
        if not isinstance(given, str) or not given.strip():
            raise _Fail(400, f"labeler must be a non-empty string (the name of who labels), got {given!r}")
        return given.strip()

    def _body(data: Any) -> dict:
        if not isinstance(data, dict):
            raise _Fail(400, f"expected a JSON object body, got {type(data).__name__}")
        return data

    async def _json(request: Request) -> dict:
        try:
            return _body(await request.json())
        except ValueError as exc:
            raise _Fail(400, f"the request body is not JSON: {exc}") from None

    def _guard(fn: Callable[..., Any]) -> Any:
        try:
            return fn()
        except _Fail as exc:
            return _error(exc.status, exc.message)
        except LabelError as exc:
            status = 404 if str(exc).startswith("unknown query_id") else 400
            return _error(status, str(exc))

    def _k(request: Request) -> int:
        raw = request.query_params.get("k", str(DEFAULT_K))
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_K:
            raise _Fail(400, f"k must be an integer from 1 to {MAX_K}, got {raw!r}")
        return int(raw)

    def _query_json(q: Any) -> dict:
        return {"query_id": q.query_id, "query": q.query, "status": q.status, "source": q.source,
                "split": q.split, "original_query": q.original_query}

    @router.get("", include_in_schema=False)
    @router.get("/", include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(page_html(), headers={"cache-control": "no-store"})

    @router.get("/api/whoami", include_in_schema=False)
    def whoami(request: Request) -> dict:
        user = _scope_state(request).get("user_id")
        fixed = bool(user and not (user.startswith("token-") and user[6:].isdigit()))
        return {"user": user if fixed else None}

    @router.get("/api/collections", include_in_schema=False)
    def collections(request: Request) -> Any:
        def run() -> Any:
            tenant = request.query_params.get("tenant") or "default_tenant"
            database = request.query_params.get("database") or "default_database"
            _check_grant(request, tenant, database)
            return {"collections": sorted(c.name for c in client_for(tenant, database).list_collections())}

        return _guard(run)

    @router.get("/api/{name}/queries", include_in_schema=False)
    def list_queries(name: str, request: Request) -> Any:
        def run() -> Any:
            store = label_store(_collection(request, name))
            me = request.query_params.get("labeler") or ""
            queries, labels = store.snapshot()
            mine: dict[str, int] = {}
            anyone: dict[str, int] = {}
            for (q, _d), g in labels.items():
                anyone[q] = anyone.get(q, 0) + 1
                if me in g:
                    mine[q] = mine.get(q, 0) + 1
            return {"queries": [{**_query_json(q), "labeled_by_me": mine.get(q.query_id, 0),
                                 "pairs_labeled": anyone.get(q.query_id, 0)} for q in queries.values()]}

        return _guard(run)

    @router.get("/api/{name}/queries/{query_id}", include_in_schema=False)
    def get_query(name: str, query_id: str, request: Request) -> Any:
        def run() -> Any:
            col = _collection(request, name)
            store = label_store(col)
            labeler = _labeler(request, request.query_params.get("labeler"))
            k = _k(request)
            q = store.queries.get(query_id)
            if q is None:
                raise _Fail(404, f"unknown query_id {query_id!r}")
            ids = pools.get(col, q.query, k, sorted(q.relevant))
            order = shuffled(ids, query_id, labeler)
            got = col.get(ids=order, include=["documents", "metadatas"]) if order else {"ids": []}
            by_id = {i: (d, m) for i, d, m in zip(got["ids"], got.get("documents") or [], got.get("metadatas") or [])}
            mine = store.grades_of(query_id, labeler)
            cands = [{"id": i, "document": by_id[i][0], "metadata": by_id[i][1], "grade": mine.get(i)}
                     for i in order if i in by_id]
            return {**_query_json(q), "labeler": labeler, "candidates": cands}

        return _guard(run)

    @router.post("/api/{name}/labels", include_in_schema=False)
    async def post_label(name: str, request: Request) -> Any:
        body = await _guard_async(_json, request)
        if isinstance(body, Response):
            return body

        def run() -> Any:
            col = _collection(request, name)
            labeler = _labeler(request, body.get("labeler"))
            doc_id = body.get("doc_id")
            store = label_store(col)
            store.label(body.get("query_id"), doc_id, body.get("grade"), labeler,
                        valid_doc=lambda d: bool(col.get(ids=[d], include=[])["ids"]))
            return {"ok": True, "query_id": body.get("query_id"), "doc_id": doc_id,
                    "labeler": labeler, "grade": body.get("grade")}

        return await _threaded(run)

    @router.post("/api/{name}/queries", include_in_schema=False)
    async def post_query(name: str, request: Request) -> Any:
        body = await _guard_async(_json, request)
        if isinstance(body, Response):
            return body

        def run() -> Any:
            store = label_store(_collection(request, name))
            labeler = _labeler(request, body.get("labeler"))
            action = body.get("action")
            if action == "add":
                q = store.add_query(body.get("text"), labeler, split=body.get("split", "test"))
            else:
                q = store.query_action(body.get("query_id"), action, labeler, body.get("text"))
            return _query_json(q)

        return await _threaded(run)

    @router.post("/api/{name}/import", include_in_schema=False)
    async def post_import(name: str, request: Request) -> Any:
        body = await _guard_async(_json, request)
        if isinstance(body, Response):
            return body

        def run() -> Any:
            lines = body.get("queries")
            if not isinstance(lines, list):
                raise _Fail(400, f"queries must be a list of golden-set objects, got {type(lines).__name__}")
            col = _collection(request, name)
            return label_store(col).import_golden(lines, labeler=_labeler(request, "import"), collection=col)

        return await _threaded(run)

    @router.get("/api/{name}/progress", include_in_schema=False)
    def progress(name: str, request: Request) -> Any:
        return _guard(lambda: label_store(_collection(request, name)).progress())

    @router.get("/api/{name}/export", include_in_schema=False)
    def export(name: str, request: Request) -> Any:
        def run() -> Any:
            text = dump_golden(label_store(_collection(request, name)).export())
            return Response(text, media_type="application/x-ndjson",
                            headers={"content-disposition": f'attachment; filename="{name}-golden.jsonl"'})

        return _guard(run)

    async def _guard_async(fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return await fn(*args)
        except _Fail as exc:
            return _error(exc.status, exc.message)

    async def _threaded(fn: Callable[[], Any]) -> Any:
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(_guard, fn)

    return router
