"""``Collection.retrieve`` on the API side: every argument checked, query texts embedded.

Both collections (the embedded one and the HTTP one) check ``retrieve``'s arguments
and embed its query texts before anything runs, with the same errors, so these live
in the API layer; ranking, fusion and hydration over a snapshot are
``gleandb.retrieval.hybrid.run``, below it. ``embed_texts`` is also the public way
for a tool (the MCP server) to embed a question as ``retrieve`` would.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gleandb.api import validation as v
from gleandb.index.filters import compile_filter
from gleandb.retrieval import hybrid
from gleandb.retrieval.hybrid import DEFAULT_INCLUDE, FUSIONS, INCLUDE, MODES, RANKERS, UNSET, RetrieveResult


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"retrieve: {name} must be a positive integer, got {value!r}")
    return int(value)


def validate_args(
    query_texts: Any,
    query_embeddings: Any,
    n_results: Any,
    mode: Any,
    fusion_: Any,
    weights: Any,
    candidates: Any,
    rrf_k: Any,
    include: Any,
) -> dict[str, Any]:
    """Every argument of ``retrieve`` checked before anything runs; errors name the argument."""
    if mode not in MODES:
        raise ValueError(f"retrieve: mode must be one of {', '.join(MODES)}, got {mode!r}")
    if fusion_ not in FUSIONS:
        raise ValueError(f"retrieve: fusion must be one of {', '.join(FUSIONS)}, got {fusion_!r}")
    n_results = _positive_int("n_results", n_results)
    candidates = max(4 * n_results, 50) if candidates is None else _positive_int("candidates", candidates)
    if isinstance(rrf_k, bool) or not isinstance(rrf_k, (int, float)) or not math.isfinite(rrf_k) or rrf_k <= 0:
        raise ValueError(f"retrieve: rrf_k must be a positive number, got {rrf_k!r}")
    active = list(RANKERS) if mode == "hybrid" else [mode]
    if weights is None:
        weights = {r: 1.0 for r in RANKERS}
    else:
        if not isinstance(weights, dict):
            raise ValueError(f"retrieve: weights must be a dict like {{'dense': 1.0, 'bm25': 1.0}}, got {weights!r}")
        bad = [k for k in weights if k not in RANKERS]
        if bad:
            raise ValueError(f"retrieve: weights keys must be 'dense' and/or 'bm25', got {bad[0]!r}")
        for k, w in weights.items():
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                raise ValueError(f"retrieve: weights[{k!r}] must be a finite number >= 0, got {w!r}")
        weights = {r: float(weights.get(r, 1.0)) for r in RANKERS}
        if not any(weights[r] > 0 for r in active):
            raise ValueError(f"retrieve: weights {weights!r} give every active ranker ({', '.join(active)}) weight 0")
    if not isinstance(include, (list, tuple)) or any(i not in INCLUDE for i in include):
        raise ValueError(f"retrieve: include must be a list of {', '.join(INCLUDE)}, got {include!r}")
    texts = None
    if query_texts is not None:
        texts = [query_texts] if isinstance(query_texts, str) else query_texts
        if not isinstance(texts, (list, tuple)) or not texts:
            raise ValueError(f"retrieve: query_texts must be a non-empty list of strings, got {query_texts!r}")
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise ValueError(f"retrieve: query_texts[{i}] must be a string, got {t!r}")
        texts = list(texts)
    if mode in ("hybrid", "bm25") and texts is None:
        raise ValueError(f"retrieve: mode={mode!r} needs query_texts (BM25 ranks text); got query_texts=None")
    emb = None
    if query_embeddings is not None:
        with v.validation_context("retrieve"):
            emb = v.normalize_query_embeddings(query_embeddings)
        if texts is not None and len(texts) != emb.shape[0]:
            raise ValueError(f"retrieve: query_texts has {len(texts)} queries but query_embeddings has "
                             f"{emb.shape[0]}; give one embedding per text")
    if mode == "dense" and texts is None and emb is None:
        raise ValueError("retrieve: mode='dense' needs query_embeddings or query_texts; got neither")
    return dict(texts=texts, embeddings=emb, n_results=n_results, mode=mode, fusion=fusion_, weights=weights,
                candidates=candidates, rrf_k=rrf_k, include=list(include), active=active)


def embed_texts(ef: Any, texts: list[str]) -> np.ndarray:
    """Query vectors of ``texts`` with a collection's embedding function ``ef`` (its
    ``embed_query`` when it has one); ``ef`` None is an error that says what to pass instead."""
    if ef is None:
        raise ValueError("retrieve: dense ranking of query_texts needs an embedding function, and this collection "
                         "has none; pass query_embeddings")
    fn = getattr(ef, "embed_query", None) or ef
    with v.validation_context("retrieve"):
        return v.normalize_query_embeddings(fn(texts))


def retrieve(collection: Any, query_texts=None, query_embeddings=None, n_results=10, where=None,
             where_document=None, mode=UNSET, fusion=UNSET, weights=UNSET, candidates=UNSET, rrf_k=UNSET,
             include=DEFAULT_INCLUDE) -> RetrieveResult:
    """Check every argument, compile the filter and embed the query texts here, then rank,
    fuse and hydrate below the API (``gleandb.retrieval.hybrid.run``)."""
    e = hybrid.effective(collection._record.configuration, mode, fusion, weights, candidates, rrf_k)
    a = validate_args(query_texts, query_embeddings, n_results, e["mode"], e["fusion"], e["weights"],
                      e["candidates"], e["rrf_k"], include)
    with v.validation_context("retrieve"):
        filt = compile_filter(where, where_document)
    emb = a["embeddings"]
    if "dense" in a["active"] and emb is None:
        emb = embed_texts(collection._embedding_function, a["texts"])
    store = collection._store
    return hybrid.run(store, a, filt, emb)
