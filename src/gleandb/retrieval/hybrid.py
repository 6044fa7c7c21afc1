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

The arguments are checked and the query texts embedded on the API side
(``gleandb.api.retrieve``); :func:`run` here ranks, fuses and hydrates over one
snapshot of the store.

The contract (argument names, defaults, result keys) is relied on by the
re-ranking pipeline, so change it only together with its callers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gleandb.engine.store import CollectionStore
from gleandb.retrieval import config as rconfig
from gleandb.retrieval import fusion
from gleandb.retrieval.rankers import bm25_ranked, dense_top_k

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


def effective(configuration: dict | None, mode=UNSET, fusion=UNSET, weights=UNSET, candidates=UNSET,
              rrf_k=UNSET) -> dict[str, Any]:
    """The tunable arguments in force: the caller's, else the stored block's, else the built-in ones."""
    given = dict(mode=mode, fusion=fusion, weights=weights, candidates=candidates, rrf_k=rrf_k)
    return rconfig.resolve(rconfig.stored(configuration), given)


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
