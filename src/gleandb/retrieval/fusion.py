"""Fusion of ranked lists: reciprocal rank fusion and weighted min-max score fusion.

Both take, per ranker, that ranker's candidates best first, and return a fused
score per candidate where **higher is better**. Used by ``Collection.retrieve``
(``gleandb.retrieval.hybrid``) and by the Search API's ``$weighted`` extension
(``gleandb.retrieval.search``, which negates the result so lower is better).

RRF (Cormack et al. 2009, with chromadb's 0-based ranks)::

    rrf(d) = sum over rankers i that returned d of  w_i / (k + rank_i(d))

``rank_i`` is 0-based (the best candidate has rank 0), as in chromadb's
``Rrf(..., k=60)`` over ``Knn(return_rank=True)``; a ranker that did not return d
adds nothing.

Weighted (min-max normalised)::

    s_i(d) = (v_i(d) - lo_i) / (hi_i - lo_i)   if ranker i is "higher is better" (BM25 scores)
           = (hi_i - v_i(d)) / (hi_i - lo_i)   if ranker i is "lower is better" (distances)
    s_i(d) = 1                                 if hi_i == lo_i (every candidate equally good)
    s_i(d) = 0                                 if ranker i did not return d
    weighted(d) = sum_i w_i * s_i(d)

``lo_i`` / ``hi_i`` are the smallest and largest value among ranker i's candidates,
so s_i is 1 for its best candidate and 0 for its worst: distances and BM25 scores,
which live on unrelated scales and point in opposite directions, become comparable.
The result lies in [0, sum(w)].
"""

from __future__ import annotations

import math
from typing import Hashable, Mapping, Sequence

__all__ = ["minmax_normalize", "rrf", "weighted"]


def _check_weights(names: Sequence[str], weights: Mapping[str, float] | None) -> dict[str, float]:
    if weights is None:
        return {n: 1.0 for n in names}
    out = {}
    for n in names:
        w = weights.get(n, 1.0)
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ValueError(f"weight of ranker {n!r} must be a finite number >= 0, got {w!r}")
        out[n] = float(w)
    return out


def rrf(
    ranked: Mapping[str, Sequence[Hashable]], k: float = 60, weights: Mapping[str, float] | None = None
) -> dict[Hashable, float]:
    """Reciprocal rank fusion of ``ranked[ranker] = [key, ...]`` (best first)."""
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not k > 0 or not math.isfinite(k):
        raise ValueError(f"rrf_k must be a positive number, got {k!r}")
    w = _check_weights(list(ranked), weights)
    out: dict[Hashable, float] = {}
    for name, keys in ranked.items():
        for r, key in enumerate(keys):
            out[key] = out.get(key, 0.0) + w[name] / (k + r)
    return out


def minmax_normalize(values: Sequence[float], higher_is_better: bool) -> list[float]:
    """Each value mapped to [0, 1], 1 = best of the list (all 1 when they are equal)."""
    if not values:
        return []
    lo, hi = min(values), max(values)
    if not hi > lo:
        return [1.0] * len(values)
    span = hi - lo
    if higher_is_better:
        return [(v - lo) / span for v in values]
    return [(hi - v) / span for v in values]


def weighted(
    scored: Mapping[str, Sequence[tuple[Hashable, float]]],
    higher_is_better: Mapping[str, bool],
    weights: Mapping[str, float] | None = None,
) -> dict[Hashable, float]:
    """Weighted sum of min-max normalised scores; ``scored[ranker] = [(key, value), ...]``."""
    w = _check_weights(list(scored), weights)
    out: dict[Hashable, float] = {}
    for name, pairs in scored.items():
        norm = minmax_normalize([v for _k, v in pairs], higher_is_better[name])
        for (key, _v), s in zip(pairs, norm):
            out[key] = out.get(key, 0.0) + w[name] * s
    return out
