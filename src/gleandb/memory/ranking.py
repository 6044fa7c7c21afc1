"""The recall score: hybrid relevance, recency and importance, with weights the user sets.

For the candidates ``Collection.retrieve`` returns for the query (dense + BM25, fused,
under the scope filter), each memory ``i`` gets

    relevance_i  = (fused_i - min fused) / (max fused - min fused)   (1 when all are equal)
    recency_i    = 0.5 ** (age_i / half_life),  age_i = now - updated_at_i (seconds, >= 0)
    importance_i = the importance given to remember() (0..1)
    score_i      = w_relevance * relevance_i + w_recency * recency_i + w_importance * importance_i

Relevance is min-max normalised over the candidate pool, so it is relative to the other
candidates: the fused scores' scale depends on the fusion, and this keeps the three terms
comparable whatever the fusion. Ties keep retrieval order.
"""

from __future__ import annotations

import math
from typing import Any

from gleandb.memory.errors import MemoryArgumentError

DEFAULT_WEIGHTS = {"relevance": 1.0, "recency": 0.3, "importance": 0.2}
DEFAULT_HALF_LIFE = 30 * 86400.0  # seconds: a memory's recency term halves every 30 days


def check_weights(weights: Any) -> dict[str, float]:
    if weights is None:
        return dict(DEFAULT_WEIGHTS)
    if not isinstance(weights, dict):
        raise MemoryArgumentError(f"weights must be a dict with keys relevance, recency, importance, got {weights!r}")
    out = dict(DEFAULT_WEIGHTS)
    for k, v in weights.items():
        if k not in DEFAULT_WEIGHTS:
            raise MemoryArgumentError(f"weights: unknown key {k!r} (use relevance, recency, importance)")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise MemoryArgumentError(f"weights[{k!r}] must be a finite number >= 0, got {v!r}")
        out[k] = float(v)
    if not any(out.values()):
        raise MemoryArgumentError(f"weights: at least one weight must be > 0, got {weights!r}")
    return out


def check_half_life(half_life: Any) -> float:
    if isinstance(half_life, bool) or not isinstance(half_life, (int, float)) or not math.isfinite(half_life) \
            or half_life <= 0:
        raise MemoryArgumentError(f"half_life must be a positive number of seconds, got {half_life!r}")
    return float(half_life)


def score(fused: list[float], updated: list[float], importance: list[float], now: float,
          weights: dict[str, float], half_life: float) -> list[dict]:
    """Per candidate: the three terms, the weighted sum, in the order given."""
    lo, hi = (min(fused), max(fused)) if fused else (0.0, 0.0)
    out = []
    for f, u, imp in zip(fused, updated, importance):
        rel = 1.0 if hi <= lo else (f - lo) / (hi - lo)
        rec = 0.5 ** (max(0.0, now - u) / half_life)
        total = weights["relevance"] * rel + weights["recency"] * rec + weights["importance"] * imp
        out.append({"relevance": rel, "recency": rec, "importance": imp, "score": total})
    return out
