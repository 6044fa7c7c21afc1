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

Z-score (CombSUM of standardised scores)::

    z_i(d) = (u_i(d) - mean_i) / std_i      u = v for "higher is better", -v for distances
    z_i(d) = min over ranker i's candidates of z_i   if ranker i did not return d
    zscore(d) = sum_i w_i * z_i(d)

When a ranker's candidates all score the same (e.g. one BM25 hit), its z is 1 for
them and 0 for the rest, as in min-max fusion, so a lone match still counts.
Unlike min-max, one outlying best score does not squash the rest of the list.

Adaptive (score-distribution-aware weighted fusion): per query, each ranker's
weight is scaled by how much its best candidate stands out from its other
candidates, ``c_i = max(0, (u_i(best) - mean_i) / std_i)``, then the lists are
fused by ``weighted`` with weights ``w_i * c_i``. A ranker whose scores are flat
(it cannot tell its candidates apart, e.g. BM25 on a query whose words are all
common) counts for less on that query. When every ranker has c_i = 0, or some
ranker returned fewer than 3 candidates (no distribution to judge), the weights
stay ``w_i``.
"""

from __future__ import annotations

import math
from typing import Hashable, Mapping, Sequence

__all__ = ["adaptive", "confidence", "minmax_normalize", "rrf", "weighted", "zscore"]


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


def _oriented(values: Sequence[float], higher_is_better: bool) -> list[float]:
    return [float(v) if higher_is_better else -float(v) for v in values]


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / n)


def zscore(
    scored: Mapping[str, Sequence[tuple[Hashable, float]]],
    higher_is_better: Mapping[str, bool],
    weights: Mapping[str, float] | None = None,
) -> dict[Hashable, float]:
    """Weighted sum of z-scores; a candidate missing from a ranker gets that ranker's lowest z."""
    w = _check_weights(list(scored), weights)
    per: dict[str, dict[Hashable, float]] = {}
    for name, pairs in scored.items():
        if not pairs:
            continue
        u = _oriented([v for _k, v in pairs], higher_is_better[name])
        mean, std = _mean_std(u)
        if std > 0:
            per[name] = {k: (x - mean) / std for (k, _v), x in zip(pairs, u)}
        else:  # one candidate, or all equal: returned ones 1, the rest 0 (as min-max does)
            per[name] = {k: 1.0 for k, _v in pairs}
    keys = {k for z in per.values() for k in z}
    out: dict[Hashable, float] = {k: 0.0 for k in keys}
    for name, z in per.items():
        floor = min(z.values()) if len(set(z.values())) > 1 else 0.0
        for k in keys:
            out[k] += w[name] * z.get(k, floor)
    return out


def confidence(values: Sequence[float], higher_is_better: bool) -> float | None:
    """How far the best of ``values`` stands above the rest, in standard deviations (>= 0);
    None for fewer than 3 values. ``values`` are best first."""
    if len(values) < 3:
        return None
    u = _oriented(values, higher_is_better)
    mean, std = _mean_std(u)
    if not std > 0:
        return 0.0
    return max(0.0, (max(u) - mean) / std)


def adaptive(
    scored: Mapping[str, Sequence[tuple[Hashable, float]]],
    higher_is_better: Mapping[str, bool],
    weights: Mapping[str, float] | None = None,
) -> dict[Hashable, float]:
    """``weighted`` fusion with each ranker's weight scaled by its ``confidence`` on this query."""
    w = _check_weights(list(scored), weights)
    conf = {n: confidence([v for _k, v in pairs], higher_is_better[n]) for n, pairs in scored.items()}
    scaled = dict(w)
    if all(c is not None for c in conf.values()):
        trial = {n: w[n] * conf[n] for n in w}  # type: ignore[operator]
        if any(x > 0 for x in trial.values()):
            scaled = trial
    return weighted(scored, higher_is_better, scaled)
