"""Run one :class:`~gleandb.evals.configs.Config` over a list of query texts.

Each query yields its ranked ids (best first), its latency and the language-model calls,
tokens and cost it caused (from the re-ranker's usage object). ``retrieve`` and Search
configurations run in batches (one call for many queries: latency per query is the batch
time divided by its size); ``context`` runs per query. A query that fails (a re-ranker that
answers garbage, an endpoint that is down) is recorded with its error and an empty or
first-stage ranking, and the run goes on.

A config with its own ``embedding_function`` runs on a copy of the collection re-embedded
with it: a fork (copy-on-write, only the vectors are rewritten) when the dimension is the
same, else a temporary collection; the copy is deleted afterwards and the original is
never written.
"""

from __future__ import annotations

import time
import uuid
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from gleandb.api.collection import client_of
from gleandb.evals.configs import Config, search_for

COPY_BATCH = 256


@dataclass
class QueryRun:
    ids: list[str]                # what the config returns for n_results=k (scored)
    latency_ms: float
    llm: dict = field(default_factory=lambda: {"calls": 0, "input_tokens": 0, "output_tokens": 0,
                                               "cost": None, "failed_calls": 0})
    error: str | None = None      # the query failed (scored on what it returned, usually nothing)
    degraded: bool = False        # the re-ranker failed; first-stage order was used
    deep_ids: list[str] | None = None  # a deeper list for the recall curve (None: ``ids``)


def _embed(ef: Any, texts: list[str], query: bool) -> np.ndarray:
    fn = getattr(ef, "embed_query", None) if query else None
    out = (fn or ef)(texts)
    return np.asarray(out, dtype=np.float32).reshape(len(texts), -1)


@contextmanager
def reembedded_copy(col: Any, ef: Any) -> Iterator[Any]:
    """A copy of ``col`` whose vectors come from ``ef`` (deleted on exit).

    Records without a document cannot be re-embedded and are left out of the copy."""
    client = client_of(col)  # the copy lives next to the original, in the same store
    name = f"{col.name[:200]}-eval-{uuid.uuid4().hex[:10]}"
    first = col.get(limit=1, include=["documents"], where_document={"$regex": "."})
    if not first["ids"]:
        raise ValueError(f"embedding_function config: collection {col.name!r} has no documents to re-embed")
    dim = _embed(ef, [first["documents"][0]], query=False).shape[1]
    same_dim = col.dimension == dim
    try:
        if same_dim:
            col.fork(name)
        else:
            cfg = {k: v for k, v in col.configuration_json.items()
                   if k in ("hnsw", "fulltext") and v is not None}
            client.create_collection(name, embedding_function=None, metadata=col.metadata, configuration=cfg)
        copy = client.get_collection(name, embedding_function=ef)
        offset = 0
        while True:
            page = col.get(limit=COPY_BATCH, offset=offset, include=["documents", "metadatas"])
            if not page["ids"]:
                break
            offset += len(page["ids"])
            with_doc = [i for i, d in enumerate(page["documents"]) if d is not None]
            no_doc = [page["ids"][i] for i, d in enumerate(page["documents"]) if d is None]
            if same_dim and no_doc:
                copy.delete(ids=no_doc)
            if not with_doc:
                continue
            ids = [page["ids"][i] for i in with_doc]
            docs = [page["documents"][i] for i in with_doc]
            emb = _embed(ef, docs, query=False)
            if same_dim:
                copy.update(ids=ids, embeddings=emb)
            else:
                metas = [page["metadatas"][i] for i in with_doc]
                copy.add(ids=ids, embeddings=emb, documents=docs, metadatas=metas)
        yield copy
    finally:
        try:
            client.delete_collection(name)
        except Exception:  # never created (the first step failed)
            pass


def _usage_dict(u: Any) -> dict:
    return {"calls": u.model_calls, "input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
            "cost": u.cost, "failed_calls": u.failed_calls}


def _run_retrieve(col: Any, config: Config, texts: list[str], depth: int, ef: Any) -> tuple[list[list[str]], float]:
    kw: dict[str, Any] = dict(config.retrieve_args)
    if ef is not None and kw.get("mode") != "bm25":
        kw["query_embeddings"] = _embed(ef, texts, query=True)
    t = time.perf_counter()
    res = col.retrieve(query_texts=texts, n_results=depth, include=[], **kw)
    return res["ids"], (time.perf_counter() - t) * 1000


def _run_search(col: Any, config: Config, texts: list[str], depth: int, ef: Any) -> tuple[list[list[str]], float]:
    searches = [search_for(config, t) for t in texts]
    t = time.perf_counter()
    res = col.search(searches)
    return [list(ids)[:depth] for ids in res["ids"]], (time.perf_counter() - t) * 1000


def _run_context(col: Any, config: Config, text: str, depth: int, ef: Any) -> QueryRun:
    from gleandb.retrieval.context import RerankWarning

    a = config.retrieve_args
    top_n = config.top_n or depth
    kw: dict[str, Any] = {}
    if ef is not None and a.get("mode", "hybrid") != "bm25":
        kw["query_embedding"] = _embed(ef, [text], query=True)[0]
    t = time.perf_counter()
    try:
        with warnings.catch_warnings():  # a degraded re-rank is counted, not printed per query
            warnings.simplefilter("ignore", RerankWarning)
            ctx = col.context(text, candidates=a.get("candidates") or max(depth, 30), where=a.get("where"),
                              where_document=a.get("where_document"), mode=a.get("mode", "hybrid"),
                              reranker=config.reranker, top_n=top_n, max_tokens=10**9, dedupe=None,
                              on_rerank_error="warn", **kw)
    except Exception as exc:  # the run goes on; the query scores what it returned: nothing
        return QueryRun([], (time.perf_counter() - t) * 1000, error=f"{type(exc).__name__}: {exc}")
    ms = (time.perf_counter() - t) * 1000
    u = ctx.usage
    return QueryRun(ctx.ids[:depth], ms, _usage_dict(u), error=(u.warnings[0] if u.degraded and u.warnings else None),
                    degraded=u.degraded)


def run_config(col: Any, config: Config, texts: list[str], k: int, depth: int, batch_size: int = 32,
               progress: Callable[[int], None] | None = None) -> list[QueryRun]:
    """The ``k`` ranked ids of every query text under ``config``, and a ``depth``-deep list
    for recall curves.

    ``retrieve`` derives its per-ranker candidates from ``n_results`` when none are given,
    so the scored list is asked for with ``n_results=k``, exactly what a caller gets, and
    the deeper list comes from a second call (not timed)."""
    if config.embedding_function is not None:
        with reembedded_copy(col, config.embedding_function) as copy:
            return _run_on(copy, config, texts, k, depth, batch_size, progress, config.embedding_function)
    return _run_on(col, config, texts, k, depth, batch_size, progress, None)


def _run_on(col: Any, config: Config, texts: list[str], k: int, depth: int, batch_size: int,
            progress: Callable[[int], None] | None, ef: Any) -> list[QueryRun]:
    out: list[QueryRun] = []
    if config.kind == "context":
        for text in texts:
            run = _run_context(col, config, text, depth, ef)
            run.deep_ids, run.ids = run.ids, run.ids[:k]
            out.append(run)
            if progress:
                progress(1)
        return out
    for s in range(0, len(texts), batch_size):
        part = texts[s : s + batch_size]
        if config.kind == "search":
            deep, ms = _run_search(col, config, part, depth, ef)
            out += [QueryRun(list(i[:k]), ms / len(part), deep_ids=list(i)) for i in deep]
        else:
            ids, ms = _run_retrieve(col, config, part, k, ef)
            deep = _run_retrieve(col, config, part, depth, ef)[0] if depth > k else ids
            out += [QueryRun(list(i), ms / len(part), deep_ids=list(d)) for i, d in zip(ids, deep)]
        if progress:
            progress(len(part))
    return out
