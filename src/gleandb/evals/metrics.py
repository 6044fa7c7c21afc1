"""Ranking metrics per query, their means with bootstrap intervals, and a paired test.

Per query, for a ranked list of ids and graded judgments ``{id: grade 0-3}`` (grade >= 1
counts as relevant):

- ``recall@k``    = |relevant in top k| / |relevant|
- ``precision@k`` = |relevant in top k| / k
- ``mrr@k``       = 1 / rank of the first relevant id in the top k (0 if none)
- ``ndcg@k``      = DCG@k / IDCG@k, with the exponential gain ``2**grade - 1`` and the
  discount ``1 / log2(rank + 1)`` (rank 1-based; Burges et al. 2005, the gain used by
  TREC's and BEIR's nDCG). IDCG orders every judged id by grade, so a ranking scores 1
  exactly when its top k is an ideal ordering.

Every metric lies in [0, 1]. The mean over queries comes with a 95 % percentile
bootstrap interval (queries resampled with replacement, seeded, vectorised with numpy).
Two configurations scored on the same queries are compared with a paired sign-flip
permutation test on the per-query differences (two-sided): the p-value is how often a
random relabelling of which configuration produced which score gives a mean difference
at least as large as the observed one, so identical configurations give p = 1.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

METRICS = ("ndcg", "recall", "precision", "mrr")
_CHUNK = 1000  # bootstrap / permutation rows per block: bounds memory at _CHUNK x n floats


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def recall_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    rel = {r for r, g in relevant.items() if g >= 1}
    if not rel:
        return 0.0
    return len(rel.intersection(ranked[: _check_k(k)])) / len(rel)


def precision_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    k = _check_k(k)
    return sum(1 for r in ranked[:k] if relevant.get(r, 0) >= 1) / k


def mrr_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    for i, r in enumerate(ranked[: _check_k(k)]):
        if relevant.get(r, 0) >= 1:
            return 1.0 / (i + 1)
    return 0.0


def _dcg(grades: Sequence[int]) -> float:
    return sum((2.0 ** g - 1.0) / math.log2(i + 2) for i, g in enumerate(grades))


def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    k = _check_k(k)
    ideal = _dcg(sorted(relevant.values(), reverse=True)[:k])
    if ideal <= 0:
        return 0.0
    return _dcg([relevant.get(r, 0) for r in ranked[:k]]) / ideal


def score_query(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> dict[str, float]:
    """All four metrics at ``k`` for one query."""
    return {"ndcg": ndcg_at_k(ranked, relevant, k), "recall": recall_at_k(ranked, relevant, k),
            "precision": precision_at_k(ranked, relevant, k), "mrr": mrr_at_k(ranked, relevant, k)}


def recall_curve(ranked: Sequence[str], relevant: Mapping[str, int], ks: Sequence[int]) -> list[float]:
    return [recall_at_k(ranked, relevant, k) for k in ks]


def bootstrap_ci(values: Sequence[float], n_boot: int = 2000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean and its percentile bootstrap interval."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"bootstrap_ci needs a non-empty 1-d list of values, got shape {x.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    mean = float(x.mean())
    if x.size == 1 or np.all(x == x[0]):
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for s in range(0, n_boot, _CHUNK):
        b = min(_CHUNK, n_boot - s)
        means[s : s + b] = x[rng.integers(0, x.size, size=(b, x.size))].mean(axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    # the percentile interval of a skewed mean can miss the mean by a rounding hair
    return mean, float(min(lo, mean)), float(max(hi, mean))


def paired_test(a: Sequence[float], b: Sequence[float], n_perm: int = 10000, seed: int = 0) -> float:
    """Two-sided p-value of "a and b score the same on average" (paired sign-flip permutation)."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired_test needs two equal-length 1-d lists (the same queries), got {x.shape} and {y.shape}")
    d = x - y
    if d.size == 0 or np.all(d == 0):
        return 1.0
    observed = abs(d.mean())
    rng = np.random.default_rng(seed)
    hits = 0
    for s in range(0, n_perm, _CHUNK):
        b_ = min(_CHUNK, n_perm - s)
        signs = rng.integers(0, 2, size=(b_, d.size)) * 2 - 1
        hits += int(np.count_nonzero(np.abs((signs * d).mean(axis=1)) >= observed - 1e-12))
    return (hits + 1) / (n_perm + 1)
