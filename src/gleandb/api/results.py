"""Result shapes of ``get`` and ``query``, as chromadb returns them.

Plain dicts, as chromadb's (``GetResult``/``QueryResult`` are TypedDicts, for
annotations only), with chromadb's key order: ``get`` returns flat lists and the
embeddings as one (n, d) numpy array; ``query`` returns one inner list per query
embedding (embeddings as a list of arrays). Fields not in ``include`` are None;
``included`` echoes the include list; ``data`` is None without a data loader. As
chromadb 1.5.9's in-process client does, ``"data"`` in ``include`` also returns the
metadatas there (its HTTP client does not: ``data_returns_metadatas=False``).
"""

from __future__ import annotations

from typing import Any, List, Optional, TypedDict

import numpy as np


class GetResult(TypedDict):
    ids: List[str]
    embeddings: Optional[Any]
    documents: Optional[List[Optional[str]]]
    uris: Optional[List[Optional[str]]]
    included: List[str]
    data: Optional[List[Any]]
    metadatas: Optional[List[Optional[dict]]]


class QueryResult(TypedDict):
    ids: List[List[str]]
    embeddings: Optional[List[Any]]
    documents: Optional[List[List[Optional[str]]]]
    uris: Optional[List[List[Optional[str]]]]
    included: List[str]
    data: Optional[List[Any]]
    metadatas: Optional[List[List[Optional[dict]]]]
    distances: Optional[List[List[float]]]


def _embeddings(h: Any) -> np.ndarray:
    # chromadb hands embeddings back as float64 arrays, and 0 rows as a 1-D empty array
    if h.embeddings is None or len(h.embeddings) == 0:
        return np.array([], dtype=np.float64)
    return h.embeddings.astype(np.float64)


def _metadatas(h: Any) -> list:
    # chromadb keeps a record's uri in its metadata: a record with a uri and no metadata
    # reads back ``{}`` (not None)
    metas = h.metadatas if h.metadatas is not None else []
    uris = getattr(h, "uris", None)
    if uris is None or len(uris) != len(metas):
        return metas
    return [{} if m is None and u is not None else m for m, u in zip(metas, uris)]


def wants_metadatas(include: list[str], data_returns_metadatas: bool = True) -> bool:
    """chromadb 1.5.9 in-process returns metadatas for "metadatas" and also for "data"."""
    return "metadatas" in include or (data_returns_metadatas and "data" in include)


def get_result(h: Any, include: list[str], data: list | None, data_returns_metadatas: bool = True) -> dict:
    """The dict ``get`` returns, from one ``Hydrated``; ``data`` is the data loader's output."""
    inc = set(include)
    md = wants_metadatas(include, data_returns_metadatas)
    return dict(
        ids=list(h.ids),
        embeddings=_embeddings(h) if "embeddings" in inc else None,
        documents=(h.documents if h.documents is not None else []) if "documents" in inc else None,
        uris=(h.uris if h.uris is not None else []) if "uris" in inc else None,
        included=list(include),
        data=data if "data" in inc else None,
        metadatas=_metadatas(h) if md else None,
    )


def query_result(
    hyd: list[Any], distances: list[list[float]], data: list | None, include: list[str],
    data_returns_metadatas: bool = True,
) -> dict:
    """The dict ``query`` returns, from one ``Hydrated`` per query; ``data`` is one data
    loader output per query, or None without a data loader."""
    inc = set(include)
    md = wants_metadatas(include, data_returns_metadatas)

    def col(name: str, wanted: bool) -> list | None:
        if not wanted:
            return None
        return [getattr(h, name) if getattr(h, name) is not None else [] for h in hyd]

    return dict(
        ids=[list(h.ids) for h in hyd],
        embeddings=[_embeddings(h) for h in hyd] if "embeddings" in inc else None,
        documents=col("documents", "documents" in inc),
        uris=col("uris", "uris" in inc),
        included=list(include),
        data=data if "data" in inc else None,
        metadatas=[_metadatas(h) for h in hyd] if md else None,
        distances=distances if "distances" in inc else None,
    )
