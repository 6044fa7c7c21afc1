"""Large JSON responses (get, query) under a size limit, streamed instead of built whole.

A small request can ask for a huge answer (many query embeddings x many results x large
rows). Three guards, cheapest first:

1. :func:`predicted_query_bytes`: before any work, a lower bound of the JSON size from the
   request alone (queries x results x the least each included field costs per row).
2. ``gleandb.budgets.result_budget`` (charged by ``CollectionStore.hydrate``): while rows
   are fetched, their string and vector bytes count against the limit, so an over-limit
   answer stops before it is turned into Python objects.
3. :func:`json_response`: a small answer (its rows charged under ``SMALL_BYTES``) is
   serialised once, in C, and checked; a larger one is sized by serialising it piece by
   piece (rows are never joined into one buffer) and then streamed with its
   ``Content-Length``. Over the limit, nothing is sent but the error.

Every refusal is an ``InvalidArgumentError`` (400, Chroma's error shape) naming the size,
the limit and the setting. The streamed body is byte-identical to ``orjson.dumps`` of the
same object, so clients (chromadb's HttpClient included) parse it as before.
"""

from __future__ import annotations

from typing import Any, Iterator

from gleandb import budgets
from gleandb.budgets import too_large

SETTING = "max_response_bytes / GLEAN_MAX_RESPONSE_BYTES"
# bytes handed to the server per write while streaming
CHUNK_BYTES = 1 << 20
# answers whose rows were charged less than this are serialised once and sent whole (the
# common case: JSON of that many row bytes is a few MiB at most); larger ones are streamed
SMALL_BYTES = 1 << 20


# ------------------------------------------------------------------ 1. prediction


def predicted_query_bytes(n_queries: int, n_results: int, include: list[str], dim: int | None) -> int:
    """A lower bound of a query answer's JSON size: every row costs at least its
    separator and the smallest JSON of each included field (``"",`` ``0.0,`` ``{},`` ...),
    and an embedding at least two bytes a float."""
    per_row = 3  # "x", of ids: an id is never empty
    for field, least in (("distances", 4), ("documents", 3), ("metadatas", 3), ("uris", 3)):
        if field in include:
            per_row += least
    if "embeddings" in include and dim:
        per_row += 2 * dim + 1
    return n_queries * n_results * per_row


# ------------------------------------------------------------- 3. serialisation


try:
    import orjson

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)

except ImportError:  # pragma: no cover
    import json

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()


def fragments(obj: Any, depth: int) -> Iterator[bytes]:
    """``obj`` as JSON, in pieces: dicts, and lists down to ``depth`` levels, are opened
    here; everything below is one ``_dumps`` call (e.g. one row's vector)."""
    if isinstance(obj, dict):
        yield b"{"
        first = True
        for k, v in obj.items():
            if not first:
                yield b","
            first = False
            yield _dumps(k) + b":"
            yield from fragments(v, depth)
        yield b"}"
    elif depth > 0 and isinstance(obj, list):
        yield b"["
        first = True
        for v in obj:
            if not first:
                yield b","
            first = False
            yield from fragments(v, depth - 1)
        yield b"]"
    else:
        yield _dumps(obj)


def _chunks(obj: Any, depth: int) -> Iterator[bytes]:
    buf: list[bytes] = []
    size = 0
    for piece in fragments(obj, depth):
        buf.append(piece)
        size += len(piece)
        if size >= CHUNK_BYTES:
            yield b"".join(buf)
            buf, size = [], 0
    if buf:
        yield b"".join(buf)


def json_response(obj: Any, limit: int | None, depth: int) -> Any:
    """A StreamingResponse of ``obj`` as JSON (``depth``: how many list levels hold rows:
    1 for get, 2 for query), or InvalidArgumentError when it would exceed ``limit``."""
    from starlette.responses import Response, StreamingResponse

    charged = budgets.charged()
    if charged is not None and charged < SMALL_BYTES:
        body = _dumps(obj)
        if limit and len(body) > limit:
            raise too_large(f"{len(body)} bytes", limit, SETTING)
        return Response(body, media_type="application/json")
    total = 0
    for piece in fragments(obj, depth):  # sizing pass: nothing is kept
        total += len(piece)
        if limit and total > limit:
            raise too_large(f"more than {limit} bytes", limit, SETTING)
    return StreamingResponse(_chunks(obj, depth), media_type="application/json",
                             headers={"content-length": str(total)})
