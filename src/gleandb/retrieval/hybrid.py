"""``Collection.retrieve``: one-call hybrid first-stage retrieval (dense + BM25, fused).

For each query, each active ranker returns its ``candidates`` best rows among those
that pass ``where`` / ``where_document`` (dense: nearest by the collection's
distance; BM25: highest score over the document text); the lists are fused by RRF
weighted min-max, z-score or adaptive fusion (``gleandb.retrieval.fusion``) and the ``n_results``
best fused rows are returned with each ranker's rank and raw score, so a caller
can see why a row is there. Fused scores are **higher = better** (unlike the
Search API's values), sorted descending; ties go to the row inserted first.

``mode``, ``fusion``, ``weights``, ``candidates`` and ``rrf_k`` the caller omits come
from the collection's stored ``configuration["retrieval"]``, else from the built-in
default chosen by measurement (``gleandb.retrieval.config``).

The contract (argument names, defaults, result keys) is relied on by the
re-ranking pipeline, so change it only together with its callers.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from gleandb.api import validation as v
from gleandb.engine.store import CollectionStore
from gleandb.index.filters import compile_filter
from gleandb.retrieval import config as rconfig
from gleandb.retrieval import fusion
from gleandb.retrieval.rankers import bm25_ranked, dense_top_k

if TYPE_CHECKING:
    from gleandb.api.collection import Collection

MODES = rconfig.MODES
FUSIONS = rconfig.FUSIONS
RANKERS = rconfig.RANKERS
UNSET = rconfig.UNSET
TUNABLE = rconfig.KEYS  # retrieve() arguments a collection's stored configuration may supply
INCLUDE = ("documents", "metadatas", "embeddings", "uris")
DEFAULT_INCLUDE = ["documents", "metadatas"]
RETRIEVE_ARGS = ("query_texts", "query_embeddings", "n_results", "where", "where_document", "mode", "fusion",
                 "weights", "candidates", "rrf_k", "include")


class RetrieveResult(dict):
    """Per query (outer lists): ``ids``, ``documents`` / ``metadatas`` / ``embeddings`` /
    ``uris`` (None unless included), ``scores`` (fused, higher is better), ``ranks``
    (``{"dense": 0-based rank or None, "bm25": ...}``), ``ranker_scores``
    (``{"dense": distance or None, "bm25": BM25 score or None}``), ``included``."""


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


def embed_texts(collection: "Collection", texts: list[str]) -> np.ndarray:
    """Query vectors of ``texts`` with the collection's embedding function (``embed_query``)."""
    ef = collection._embedding_function
    if ef is None:
        raise ValueError("retrieve: dense ranking of query_texts needs an embedding function, and this collection "
                         "has none; pass query_embeddings")
    fn = getattr(ef, "embed_query", None) or ef
    with v.validation_context("retrieve"):
        return v.normalize_query_embeddings(fn(texts))


def effective(configuration: dict | None, mode=UNSET, fusion=UNSET, weights=UNSET, candidates=UNSET,
              rrf_k=UNSET) -> dict[str, Any]:
    """The tunable arguments in force: the caller's, else the stored block's, else the built-in ones."""
    given = dict(mode=mode, fusion=fusion, weights=weights, candidates=candidates, rrf_k=rrf_k)
    return rconfig.resolve(rconfig.stored(configuration), given)


def retrieve(collection: "Collection", query_texts=None, query_embeddings=None, n_results=10, where=None,
             where_document=None, mode=UNSET, fusion=UNSET, weights=UNSET, candidates=UNSET, rrf_k=UNSET,
             include=DEFAULT_INCLUDE) -> RetrieveResult:
    e = effective(collection._record.configuration, mode, fusion, weights, candidates, rrf_k)
    a = validate_args(query_texts, query_embeddings, n_results, e["mode"], e["fusion"], e["weights"],
                      e["candidates"], e["rrf_k"], include)
    with v.validation_context("retrieve"):
        filt = compile_filter(where, where_document)
    emb = a["embeddings"]
    if "dense" in a["active"] and emb is None:
        emb = embed_texts(collection, a["texts"])
    store = collection._store
    return run(store, a, filt, emb)


def run(store: CollectionStore, a: dict[str, Any], filt: Any, emb: np.ndarray | None) -> RetrieveResult:
    """Rank, fuse and hydrate (arguments already validated and embedded)."""
    snap = store.snapshot()
    masks = CollectionStore.allowed_masks(snap, filt)
    nq = len(a["texts"]) if a["texts"] is not None else emb.shape[0]
    cand = a["candidates"]
    dense = dense_top_k(store, snap, emb, cand, masks) if "dense" in a["active"] else None
    include = a["include"]
    inc = set(include)
    out = RetrieveResult(ids=[], documents=[] if "documents" in inc else None,
                         metadatas=[] if "metadatas" in inc else None,
                         embeddings=[] if "embeddings" in inc else None, uris=[] if "uris" in inc else None,
                         scores=[], ranks=[], ranker_scores=[], included=include)
    for qi in range(nq):
        lists: dict[str, list[tuple[int, int, float]]] = {}
        if dense is not None:
            lists["dense"] = dense[qi]
        if "bm25" in a["active"]:
            lists["bm25"] = bm25_ranked(store, snap, a["texts"][qi], cand, masks)
        w = {r: a["weights"][r] for r in lists}
        if a["fusion"] == "rrf":
            fused = fusion.rrf({r: [(vi, row) for vi, row, _s in l] for r, l in lists.items()}, a["rrf_k"], w)
        else:
            by_score = {"weighted": fusion.weighted, "zscore": fusion.zscore, "adaptive": fusion.adaptive}
            fused = by_score[a["fusion"]]({r: [((vi, row), s) for vi, row, s in l] for r, l in lists.items()},
                                          {"dense": False, "bm25": True}, w)
        rank_of = {r: {(vi, row): (i, s) for i, (vi, row, s) in enumerate(l)} for r, l in lists.items()}
        order = sorted(fused.items(), key=lambda kv: (-kv[1], int(snap[kv[0][0]].seg.rids[kv[0][1]])))
        order = order[: a["n_results"]]
        picks = [k for k, _s in order]
        h = CollectionStore.hydrate(snap, picks, inc, store.dimension)
        out["ids"].append(list(h.ids))
        out["scores"].append([float(sc) for _k, sc in order])
        ranks, raw = [], []
        for k in picks:
            rk, rs = {}, {}
            for r in RANKERS:
                hit = rank_of.get(r, {}).get(k)
                rk[r] = None if hit is None else hit[0]
                rs[r] = None if hit is None else float(hit[1])
            ranks.append(rk)
            raw.append(rs)
        out["ranks"].append(ranks)
        out["ranker_scores"].append(raw)
        for name in ("documents", "metadatas", "uris"):
            if name in inc:
                out[name].append(getattr(h, name))
        if "embeddings" in inc:
            e = h.embeddings if h.embeddings is not None else np.zeros((0, 0), np.float32)
            out["embeddings"].append(e.astype(np.float64))
    return out


def result_to_json(res: RetrieveResult) -> dict[str, Any]:
    """The JSON body of the HTTP ``/retrieve`` route (embeddings as float lists)."""
    body = dict(res)
    if body.get("embeddings") is not None:
        body["embeddings"] = [np.asarray(e).tolist() for e in body["embeddings"]]
    return body


def result_from_json(body: dict[str, Any]) -> RetrieveResult:
    """A ``RetrieveResult`` from the route's JSON (embeddings back as float64 arrays)."""
    res = RetrieveResult(body)
    if res.get("embeddings") is not None:
        res["embeddings"] = [np.asarray(e, dtype=np.float64) for e in res["embeddings"]]
    return res
