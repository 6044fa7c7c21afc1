"""Result shapes of ``get`` and ``query``, as chromadb returns them.

Plain dicts (chromadb's are TypedDicts): ``get`` returns flat lists and the
embeddings as one (n, d) numpy array; ``query`` returns one inner list per
query embedding (embeddings as a list of arrays). Fields not in ``include``
are None; ``included`` echoes the include list.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _embeddings(h: Any) -> np.ndarray:
    # chromadb hands embeddings back as float64 arrays, and 0 rows as a 1-D empty array
    if h.embeddings is None or len(h.embeddings) == 0:
        return np.array([], dtype=np.float64)
    return h.embeddings.astype(np.float64)


class GetResult(dict):
    @classmethod
    def build(cls, h: Any, include: list[str], data: list | None) -> "GetResult":
        inc = set(include)
        return cls(
            ids=list(h.ids),
            embeddings=_embeddings(h) if "embeddings" in inc else None,
            documents=(h.documents if h.documents is not None else []) if "documents" in inc else None,
            uris=(h.uris if h.uris is not None else []) if "uris" in inc else None,
            data=data if "data" in inc else None,
            metadatas=(h.metadatas if h.metadatas is not None else []) if "metadatas" in inc else None,
            included=list(include),
        )


class QueryResult(dict):
    @classmethod
    def build(cls, hyd: list[Any], distances: list[list[float]], data: list, include: list[str]) -> "QueryResult":
        inc = set(include)

        def col(name: str) -> list | None:
            if name not in inc:
                return None
            return [getattr(h, name) if getattr(h, name) is not None else [] for h in hyd]

        return cls(
            ids=[list(h.ids) for h in hyd],
            embeddings=[_embeddings(h) for h in hyd] if "embeddings" in inc else None,
            documents=col("documents"),
            uris=col("uris"),
            data=data if "data" in inc else None,
            metadatas=col("metadatas"),
            distances=distances if "distances" in inc else None,
            included=list(include),
        )
