"""Write forwarding on a query node (``glean run --role query``).

A query node serves reads from its read-only follower engine. A request that writes is
sent on, unchanged (method, path, query, body, credentials), to the writer named by
``--writer-url``, and the writer's answer is returned as is. Without a writer URL the
node answers 405 with an error naming its role and how to reach the writer.

After a forwarded write succeeds the node polls the store once before answering, so a
client that writes through a query node reads its own write on that node at once (other
nodes see it within their poll delay).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable

import anyio
import httpx

log = logging.getLogger("gleandb.server")

API = "/api/v2"
# POST routes that only read
READ_POSTS = ("/get", "/query", "/count", "/search", "/retrieve", "/context")
_HOP_BY_HOP = {b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailers",
               b"transfer-encoding", b"upgrade", b"host", b"content-length"}
_DROP_FROM_REPLY = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding",
                    "chroma-trace-id", "date", "server"}


def is_write(method: str, path: str) -> bool:
    """Whether a Chroma API request changes the store (and so belongs to the writer)."""
    if not path.startswith(API) or method in ("GET", "HEAD", "OPTIONS"):
        return False
    if method == "POST" and "/collections/" in path and path.endswith(READ_POSTS):
        return False
    return True


def no_writer_message(method: str, path: str) -> str:
    return (f"{method} {path} writes, and this gleandb node runs with --role query: it serves reads only and "
            "was started without --writer-url, so it cannot forward writes. Send writes to the writer node "
            "(glean run --role writer), or restart this node with --writer-url http://WRITER_HOST:PORT.")


class WriteForwarding:
    """ASGI middleware: writes go to ``writer_url``; ``after_write()`` runs (in a thread) after each
    successful one."""

    def __init__(self, app: Any, writer_url: str, after_write: Callable[[], Any] | None = None,
                 timeout_s: float = 60.0):
        self.app = app
        self.writer_url = writer_url.rstrip("/")
        self.after_write = after_write
        self.timeout_s = timeout_s or 60.0
        self._client: httpx.AsyncClient | None = None
        self.forwarded = 0
        self.failed = 0

    async def _reply(self, send: Any, status: int, name: str, message: str) -> None:
        body = json.dumps({"error": name, "message": message}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not is_write(scope["method"], scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        if not self.writer_url:
            await self._reply(send, 405, "ChromaError", no_writer_message(method, path))
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() not in _HOP_BY_HOP]
        url = self.writer_url + path
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s)
        try:
            resp = await self._client.request(method, url, content=b"".join(chunks), headers=headers)
        except httpx.HTTPError as e:
            self.failed += 1
            log.warning("could not forward %s %s to the writer at %s: %s", method, path, self.writer_url, e)
            if isinstance(e, (httpx.ConnectError, httpx.ConnectTimeout)):
                outcome = "The write was not applied (the writer never received it); retry, or send it to the writer directly."
            else:  # sent, but no answer: the writer may have applied it
                outcome = ("The writer received the request but did not answer: the write may or may not have been "
                           "applied; read it back before retrying.")
            await self._reply(send, 503, "ChromaError",
                              f"this query node could not reach the writer at {self.writer_url} to forward "
                              f"{method} {path}: {type(e).__name__}: {e}. {outcome}")
            return
        self.forwarded += 1
        if resp.status_code < 300 and self.after_write is not None:
            try:
                await anyio.to_thread.run_sync(self.after_write)
            except Exception as e:  # the write is done; only freshness is at stake
                log.warning("refresh after a forwarded write failed: %s", e)
        body = resp.content
        out_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in resp.headers.items()
                       if k.lower() not in _DROP_FROM_REPLY]
        out_headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": resp.status_code, "headers": out_headers})
        await send({"type": "http.response.body", "body": body})

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
