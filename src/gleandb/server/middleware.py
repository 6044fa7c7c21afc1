"""One ASGI middleware for what every request goes through: the ``chroma-trace-id``
header, ``/api/v1`` (410), authentication and tenant authorisation (401/403), the
request-body size limit (413), Prometheus metrics and the JSON access log. Plain ASGI (no BaseHTTPMiddleware) so bodies stream through."""

from __future__ import annotations

import base64
import contextvars
import hmac
import json
import logging
import re
import time
import uuid
from typing import Any

from gleandb.budgets import result_budget
from gleandb.deadlines import deadline
from gleandb.server.config import ServerSettings, TokenGrant, check_basic_credential, token_grants

log = logging.getLogger("gleandb.server")
access_log = logging.getLogger("gleandb.access")
# the grant of the token that authenticated the current request (None: unrestricted);
# routes read it (it follows the request into the thread pool)
current_grant: contextvars.ContextVar[TokenGrant | None] = contextvars.ContextVar("glean_grant", default=None)
FORBIDDEN = "Forbidden: this token is not allowed to access the requested tenant or database"
_TENANT_PATH = re.compile(r"^/api/v2/tenants/(?P<tenant>[^/]+)(?:/databases/(?P<database>[^/]+))?(?:/.*)?$")
TRACE_HEADER = b"chroma-trace-id"
TIMEOUT_SETTING = "request_timeout_s / GLEAN_REQUEST_TIMEOUT_S"
RESPONSE_SETTING = "max_response_bytes / GLEAN_MAX_RESPONSE_BYTES"
# reachable without credentials when auth is on (Chroma's legacy server exempts the same)
AUTH_EXEMPT = {"/api/v2", "/api/v2/", "/api/v2/heartbeat", "/api/v2/healthcheck", "/api/v2/version",
               # the labeling page's static HTML (no data; its /ui/label/api calls are authenticated)
               "/ui/label", "/ui/label/"}


def _json_bytes(obj: dict) -> bytes:
    import json

    return json.dumps(obj).encode()


class Metrics:
    """Request counts and latencies per route, and the number of collections."""

    def __init__(self, state: Any):
        from prometheus_client import CollectorRegistry, Counter, Histogram
        from prometheus_client.core import GaugeMetricFamily

        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "glean_http_requests", "HTTP requests served", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "glean_http_request_duration_seconds", "Time to answer an HTTP request", ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )

        class _Collections:
            def describe(self):
                return []

            def collect(self):
                g = GaugeMetricFamily("glean_collections", "Collections in the tenants this server has seen")
                try:
                    g.add_metric([], state.collection_count())
                except Exception:  # pragma: no cover - scrape must not fail
                    pass
                yield g

        class _Engine:
            """Per-collection size and flush/compaction activity, read at scrape time."""

            def describe(self):
                return []

            def collect(self):
                from prometheus_client.core import CounterMetricFamily

                labels = ["collection", "tenant", "database"]
                rec = GaugeMetricFamily("glean_collection_records", "Live records per open collection", labels=labels)
                segs = GaugeMetricFamily("glean_collection_segments", "Segments (memtable included) per open collection", labels=labels)
                counters = {
                    key: CounterMetricFamily(f"glean_{key}", help_, labels=labels)
                    for key, help_ in (
                        ("flushes", "Memtable flushes to segments"),
                        ("rows_flushed", "Rows written to segments by flushes"),
                        ("compactions", "Compactions (segment merges / deleted-row reclaim)"),
                        ("rows_compacted", "Rows rewritten by compactions"),
                        ("wal_records", "WAL records appended (one per write call)"),
                        ("wal_syncs", "WAL writes with one fsync each (one per group commit)"),
                    )
                }
                try:
                    engine = state.admin.engine
                    catalog = engine.catalog
                    for cid, store in engine.open_stores():
                        if not catalog.has_collection_id(cid):
                            continue
                        c = catalog.get_collection_by_id(cid)
                        lab = [c.name, c.tenant, c.database]
                        rec.add_metric(lab, store.count())
                        segs.add_metric(lab, len(store.snapshot()))
                        for key, fam in counters.items():
                            fam.add_metric(lab, store.stats[key])
                except Exception:  # pragma: no cover - a scrape must not fail
                    pass
                yield rec
                yield segs
                yield from counters.values()

        class _WriteQueue:
            """Record writes waiting for admission (server/admission.py), read at scrape time."""

            def describe(self):
                return []

            def collect(self):
                from prometheus_client.core import CounterMetricFamily

                q = getattr(state, "write_queue", None)
                if q is None:
                    return
                yield GaugeMetricFamily("glean_writes_waiting", "Record writes waiting for a place to run "
                                        "(concurrent_writes)", value=q.waiting)
                yield CounterMetricFamily("glean_writes_admitted", "Record writes let in by the write queue",
                                          value=q.admitted)
                yield CounterMetricFamily("glean_write_queue_wait_seconds", "Seconds record writes waited "
                                          "for a place to run, summed", value=q.wait_seconds)

        self.registry.register(_Collections())
        self.registry.register(_Engine())
        self.registry.register(_WriteQueue())

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class GleanMiddleware:
    def __init__(self, app: Any, settings: ServerSettings, metrics: Metrics | None):
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.grants = token_grants(settings)
        self.tokens = [g.token.encode() for g in self.grants]
        # settings built in code skip load_settings: check here too (a credential without a colon
        # would make the whole secret the user name in the access log)
        self.basic = [check_basic_credential(i, b).encode() for i, b in enumerate(settings.auth_basic)]

    async def _reply(self, send: Any, status: int, body: dict, trace: bytes, extra: list | None = None) -> None:
        data = _json_bytes(body)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                   (TRACE_HEADER, trace)] + (extra or [])
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    def _authenticate(self, headers: dict[bytes, bytes]) -> tuple[str, TokenGrant | None] | None:
        """(user id, grant) for valid credentials, else None; grant None = unrestricted."""
        auth = headers.get(b"authorization", b"")
        token = headers.get(b"x-chroma-token")
        if auth[:7].lower() == b"bearer ":
            token = auth[7:].strip()
        if token is not None:
            found = None
            for i, t in enumerate(self.tokens):  # compare with every token: no timing hint
                if hmac.compare_digest(token, t) and found is None:
                    found = i
            if found is not None:
                g = self.grants[found]
                return f"token-{found}", (g if g.bound else None)
        if auth[:6].lower() == b"basic " and self.basic:
            try:
                creds = base64.b64decode(auth[6:].strip(), validate=True)
            except Exception:
                return None
            for b in self.basic:
                if hmac.compare_digest(creds, b):
                    return b.split(b":", 1)[0].decode(errors="replace"), None
        return None

    @staticmethod
    def _authorised(grant: TokenGrant, method: str, path: str) -> bool:
        """Whether a tenant-bound token may call this route (path-level check; routes check
        collection ids and database names in bodies)."""
        if path in ("/api/v2/reset", "/metrics") or path.startswith("/metrics/"):
            return False  # store-wide: all tenants
        if path.rstrip("/") == "/api/v2/tenants":
            return False  # creating tenants
        m = _TENANT_PATH.match(path)
        if m is None:
            return True  # system routes (identity, heartbeat, pre-flight-checks, docs)
        if m["tenant"] != grant.tenant:
            return False
        db = m["database"]
        return db is None or grant.databases is None or db in grant.databases

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        trace = uuid.uuid4().hex.encode()
        user_box: list[str | None] = [None]
        current_grant.set(None)
        path: str = scope.get("path", "")
        status_box = [500]
        started = [False]
        too_big = [False]

        async def send_wrapper(message: dict) -> None:
            if too_big[0]:
                return  # the app's answer to an aborted body read is replaced by our 413
            if message["type"] == "http.response.start":
                started[0] = True
                status_box[0] = message["status"]
                headers = list(message.get("headers") or [])
                if not any(k.lower() == TRACE_HEADER for k, _ in headers):
                    headers.append((TRACE_HEADER, trace))
                message = {**message, "headers": headers}
            await send(message)

        try:
            if path.startswith("/api/v1"):
                await self._reply(send_wrapper, 410, {"error": "Unimplemented",
                                                      "message": "The v1 API is deprecated. Please use /v2 apis"}, trace)
                return
            headers = {k.lower(): v for k, v in scope.get("headers") or []}
            if b"content-type" not in headers and scope.get("method") in ("POST", "PUT", "PATCH"):
                # as Chroma: a body without a content type is JSON
                scope = {**scope, "headers": list(scope.get("headers") or []) + [(b"content-type", b"application/json")]}
            if self.settings.auth_enabled and path not in AUTH_EXEMPT and scope.get("method") != "OPTIONS":
                auth = self._authenticate(headers)
                if auth is None:
                    await self._reply(send_wrapper, 401, {
                        "error": "AuthError",
                        "message": "Unauthorized: send a valid token (Authorization: Bearer <token> or "
                                   "X-Chroma-Token) or basic credentials",
                    }, trace, [(b"www-authenticate", b'Bearer realm="gleandb"')])
                    return
                user, grant = auth
                user_box[0] = user
                scope.setdefault("state", {})["user_id"] = user
                if grant is not None:
                    if not self._authorised(grant, scope.get("method", ""), path):
                        await self._reply(send_wrapper, 403, {"error": "AuthError", "message": FORBIDDEN}, trace)
                        return
                    scope["state"]["grant"] = grant
                    current_grant.set(grant)
            limit = self.settings.max_body_bytes
            length = headers.get(b"content-length")
            if length is not None:
                try:
                    n = int(length)
                except ValueError:
                    n = 0
                if n > limit:
                    await self._reply(send_wrapper, 413, {"error": "ChromaError", "message": _too_large(n, limit)}, trace)
                    return
            try:
                # reads check it cooperatively (gleandb.deadlines); it follows the request into
                # the thread pool, so a stopped request frees its worker thread
                with deadline(self.settings.request_timeout_s, TIMEOUT_SETTING), \
                        result_budget(self.settings.max_response_bytes, RESPONSE_SETTING):
                    await self.app(scope, _limited(receive, limit, too_big), send_wrapper)
            except Exception as exc:
                if not too_big[0]:
                    log.exception("error in %s %s", scope.get("method"), path, exc_info=exc)
                    if not started[0]:
                        await self._reply(send_wrapper, 500, {"error": "InternalError",
                                                              "message": f"{type(exc).__name__}: {exc}"}, trace)
            if too_big[0]:
                too_big[0] = False
                await self._reply(send_wrapper, 413, {"error": "ChromaError", "message": _too_large(None, limit)}, trace)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            label = getattr(route, "path", None) or ("/api/v1/*" if path.startswith("/api/v1") else "unmatched")
            if self.metrics is not None:
                self.metrics.observe(scope.get("method", ""), label, status_box[0], elapsed)
            if self.settings.access_log and access_log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                # never headers (Authorization) or bodies; the route template, not the raw path
                access_log.info(json.dumps({
                    "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
                    "method": scope.get("method", ""),
                    "route": label,
                    "status": status_box[0],
                    "duration_ms": round(elapsed * 1000, 3),
                    "trace_id": trace.decode(),
                    "client": f"{client[0]}:{client[1]}" if client else None,
                    "user": user_box[0],
                }, separators=(",", ":")))


def _too_large(n: int | None, limit: int) -> str:
    size = f"{n} bytes" if n is not None else "more than that"
    return (f"Request body too large: {size}; this server accepts at most {limit} bytes "
            f"(max_body_bytes / GLEAN_MAX_BODY_BYTES). Split the batch into smaller requests.")


class BodyTooLarge(Exception):
    pass


def _limited(receive: Any, limit: int, flag: list) -> Any:
    seen = [0]

    async def wrapped() -> dict:
        message = await receive()
        if message["type"] == "http.request":
            seen[0] += len(message.get("body", b""))
            if seen[0] > limit:
                flag[0] = True
                raise BodyTooLarge(_too_large(None, limit))
        return message

    return wrapped


def install_middleware(app: Any, settings: ServerSettings, state: Any) -> Metrics | None:
    try:
        metrics: Metrics | None = Metrics(state)
    except ImportError:  # prometheus-client not installed: no /metrics
        metrics = None
    if settings.cors_allow_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_allow_origins, allow_methods=["*"],
                           allow_headers=["*"], expose_headers=["chroma-trace-id"])
    # added last = outermost: trace ids, v1, auth and limits before anything else
    app.add_middleware(GleanMiddleware, settings=settings, metrics=metrics)
    return metrics
