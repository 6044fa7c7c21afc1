"""``tune(col, golden)``: choose the collection's retrieval configuration by measurement.

The search runs on the golden set's ``tune`` split (assigned deterministically when the set
has no splits) and the choice is then scored on the held-out ``test`` split, beside the
single rankers, with intervals: a tuned score is only believable on queries it was not
chosen on.

It is cheap: each ranker (dense, BM25) runs once per tune query with the largest candidate
count of the grid, and every grid point (fusion ``rrf`` / ``weighted`` / ``zscore`` / ``adaptive``, the BM25 weight
against dense 1, the per-ranker candidate count, RRF's k) is fused offline from those lists
with the same functions ``retrieve`` uses (``gleandb.retrieval.fusion``). Ties in the
offline fusion go to the better dense rank, then the better BM25 rank (``retrieve`` breaks
them by insertion order), so an offline score can differ from a live one on exact ties
only. With a re-ranker, the best first stage's top ``max(rerank_depths)`` is re-ranked
once per query and each depth (how many first-stage candidates the re-ranker sees) is
scored on a prefix of those scores; re-ranking is kept only if it beats the first stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from gleandb.evals import metrics
from gleandb.evals.configs import Config, preset
from gleandb.evals.evaluate import as_golden, evaluate
from gleandb.evals.golden import GoldenSetError
from gleandb.evals.report import Report
from gleandb.retrieval import fusion as fusion_fns

BM25_WEIGHTS = (0.1, 0.25, 0.5, 0.7, 1.0, 2.0, 4.0, 10.0)   # against dense 1.0 (0.7: the built-in default)
FUSIONS = ("rrf", "weighted", "zscore", "adaptive")   # gleandb.retrieval.config.FUSIONS
CANDIDATES = (20, 50, 100, 200)
RRF_KS = (10, 60)
RERANK_DEPTHS = (10, 20, 30, 50)
ONE = {"dense": 1.0, "bm25": 1.0}


@dataclass
class TuneResult:
    """``config``: the stored retrieval configuration chosen (``col.modify(configuration=
    {"retrieval": best.config})``); ``report``: held-out scores of it and the single rankers."""

    config: dict
    tune_score: float
    metric: str
    k: int
    grid: list[dict]
    report: Report
    rerank: dict | None = None
    applied: bool = False
    splits_assigned: bool = False
    tune_queries: int = 0
    failed_reranks: int = 0
    notes: list[str] = field(default_factory=list)

    def table(self) -> str:
        lines = [f"tuned on {self.tune_queries} queries ({'splits assigned' if self.splits_assigned else 'tune split'}"
                 f", {len(self.grid)} configurations): best {self.metric}@{self.k} {self.tune_score:.3f} with "
                 f"{self.config}"]
        if self.rerank:
            r = self.rerank
            lines.append(f"re-ranking: depth {r['candidates']}, top_n {r['top_n']}: {self.metric}@{self.k} "
                         f"{r['score']:.3f} vs {r['first_stage_score']:.3f} first stage -> "
                         f"{'kept' if r['used'] else 'not kept'}"
                         + (f" ({self.failed_reranks} queries failed to re-rank)" if self.failed_reranks else ""))
        lines.append("held-out test split:")
        lines.append(self.report.table())
        if self.applied:
            lines.append("applied: col.modify(configuration={'retrieval': ...}) stored the tuned configuration")
        lines += self.notes
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def to_json(self) -> dict:
        return {"config": self.config, "tune_score": self.tune_score, "metric": self.metric, "k": self.k,
                "tune_queries": self.tune_queries, "splits_assigned": self.splits_assigned,
                "rerank": self.rerank, "failed_reranks": self.failed_reranks, "applied": self.applied,
                "grid": self.grid, "test": self.report.to_json()}


def _ranked(col: Any, texts: list[str], mode: str, depth: int, batch_size: int) -> list[list[tuple[str, float]]]:
    out = []
    for s in range(0, len(texts), batch_size):
        res = col.retrieve(query_texts=texts[s : s + batch_size], n_results=depth, mode=mode, candidates=depth,
                           weights=ONE, include=[])
        for ids, raw in zip(res["ids"], res["ranker_scores"]):
            out.append([(i, r[mode]) for i, r in zip(ids, raw)])
    return out


def _fuse(cfg: dict, dense: list[tuple[str, float]], bm25: list[tuple[str, float]], n: int) -> list[str]:
    if cfg["mode"] == "dense":
        return [i for i, _ in dense[:n]]
    if cfg["mode"] == "bm25":
        return [i for i, _ in bm25[:n]]
    c = cfg["candidates"]
    d, b = dense[:c], bm25[:c]
    if cfg["fusion"] == "rrf":
        fused = fusion_fns.rrf({"dense": [i for i, _ in d], "bm25": [i for i, _ in b]}, cfg["rrf_k"], cfg["weights"])
    else:
        by_score = {"weighted": fusion_fns.weighted, "zscore": fusion_fns.zscore, "adaptive": fusion_fns.adaptive}
        fused = by_score[cfg["fusion"]]({"dense": d, "bm25": b}, {"dense": False, "bm25": True}, cfg["weights"])
    drank = {i: r for r, (i, _) in enumerate(d)}
    brank = {i: r for r, (i, _) in enumerate(b)}
    big = 1 << 30
    order = sorted(fused, key=lambda i: (-fused[i], drank.get(i, big), brank.get(i, big)))
    return order[:n]


def grid(fusions: Sequence[str], bm25_weights: Sequence[float], candidates: Sequence[int],
         rrf_ks: Sequence[float]) -> list[dict]:
    """The configurations searched, single rankers first (they win ties: simpler is better)."""
    out: list[dict] = [{"mode": "dense"}, {"mode": "bm25"}]
    for c in candidates:
        for f in fusions:
            for w in bm25_weights:
                weights = {"dense": 1.0, "bm25": float(w)}
                if f == "rrf":
                    out += [{"mode": "hybrid", "fusion": "rrf", "weights": weights, "candidates": int(c),
                             "rrf_k": rk} for rk in rrf_ks]
                else:
                    out.append({"mode": "hybrid", "fusion": f, "weights": weights, "candidates": int(c)})
    return out


def tune(col: Any, golden: Any, *, k: int = 10, metric: str = "ndcg", reranker: Any = None,
         fusions: Sequence[str] = FUSIONS, bm25_weights: Sequence[float] = BM25_WEIGHTS,
         candidates: Sequence[int] = CANDIDATES, rrf_ks: Sequence[float] = RRF_KS,
         rerank_depths: Sequence[int] = RERANK_DEPTHS, fraction: float = 0.5, seed: int = 0,
         apply: bool = False, n_boot: int = 2000, batch_size: int = 64, progress: bool | None = None) -> TuneResult:
    """Search the grid on the tune split, score the choice on the test split, optionally store it."""
    k = metrics._check_k(k)
    if metric not in metrics.METRICS:
        raise ValueError(f"metric must be one of {', '.join(metrics.METRICS)}, got {metric!r}")
    bad = [f for f in fusions if f not in FUSIONS]
    if bad or not fusions:
        raise ValueError(f"fusions must be a non-empty list of {', '.join(map(repr, FUSIONS))}, got {list(fusions)!r}")
    for name, values in (("bm25_weights", bm25_weights), ("candidates", candidates), ("rrf_ks", rrf_ks),
                         ("rerank_depths", rerank_depths)):
        if not values or any(isinstance(x, bool) or not isinstance(x, (int, float)) or not x > 0 for x in values):
            raise ValueError(f"{name} must be a non-empty list of positive numbers, got {list(values)!r}")
    cands = sorted({int(c) for c in candidates if c >= k}) or [max(k, 50)]
    gs = as_golden(golden)
    gs.validate(col)
    assigned = not gs.has_splits
    if assigned:
        gs = gs.assign_splits(fraction, seed)
    tune_q = list(gs.tune.scorable())
    if not tune_q:
        raise GoldenSetError("the tune split has no scorable query: mark some queries \"split\": \"tune\" "
                             "(or give none a split, and tune assigns them)")
    if not gs.test.scorable():
        raise GoldenSetError("the test split has no scorable query: tuning needs held-out queries to report on")
    texts = [q.query for q in tune_q]
    depth = max(max(cands), max(rerank_depths) if reranker is not None else 0)
    dense = _ranked(col, texts, "dense", depth, batch_size)
    bm25 = _ranked(col, texts, "bm25", depth, batch_size)
    score = getattr(metrics, f"{metric}_at_k")
    points = grid(fusions, bm25_weights, cands, rrf_ks)
    scored = []
    for cfg in points:
        vals = [score(_fuse(cfg, d, b, k), q.relevant, k) for q, d, b in zip(tune_q, dense, bm25)]
        scored.append({"config": cfg, metric: float(np.mean(vals))})
    best_i = int(np.argmax([s[metric] for s in scored]))  # first maximum: the simpler config on ties
    best = dict(points[best_i])
    best_score = scored[best_i][metric]

    rerank_info = None
    failed = 0
    if reranker is not None:
        rerank_info, failed = _tune_rerank(col, reranker, best, tune_q, dense, bm25, k, score, rerank_depths,
                                           best_score)
    configs: list[Any] = [Config("tuned", **best), preset("dense"), preset("bm25"), preset("default")]
    if rerank_info and rerank_info["used"]:
        fs = {key: v for key, v in best.items() if key in ("mode",)}
        configs.insert(1, Config("tuned+rerank", reranker=reranker, candidates=rerank_info["candidates"],
                                 top_n=rerank_info["top_n"], **fs))
    report = evaluate(col, gs, configs, k=k, split="test", n_boot=n_boot, seed=seed, progress=progress)
    result = TuneResult(config=best, tune_score=best_score, metric=metric, k=k, grid=scored, report=report,
                        rerank=rerank_info, splits_assigned=assigned, tune_queries=len(tune_q), failed_reranks=failed)
    if apply:
        col.modify(configuration={"retrieval": best})
        result.applied = True
    return result


def _tune_rerank(col: Any, reranker: Any, best: dict, queries: list, dense: list, bm25: list, k: int, score: Any,
                 depths: Sequence[int], first_stage_score: float) -> tuple[dict, int]:
    """Re-rank the best first stage's top max(depths) once per query; score each depth."""
    from gleandb.retrieval.llm import Usage

    top = max(depths)
    stage = dict(best)
    if stage["mode"] == "hybrid":
        stage["candidates"] = max(stage["candidates"], top)
    per_depth = {d: [] for d in sorted(set(int(x) for x in depths))}
    usage = Usage()
    failed = 0
    for q, d, b in zip(queries, dense, bm25):
        first = _fuse(stage, d, b, top)
        docs = col.get(ids=first, include=["documents"])
        text = dict(zip(docs["ids"], docs["documents"]))
        pool = [i for i in first if text.get(i) is not None]
        try:
            scores = list(reranker.rerank(q.query, [text[i] for i in pool], usage))
            if len(scores) != len(pool):
                raise ValueError(f"{len(scores)} scores for {len(pool)} documents")
        except Exception:  # a garbage answer: counted; this query keeps first-stage order
            failed += 1
            scores = [0.0] * len(pool)
        for depth in per_depth:
            n = min(depth, len(pool))
            order = sorted(range(n), key=lambda j: -scores[j])  # stable: ties keep first-stage order
            per_depth[depth].append(score([pool[j] for j in order][:k], q.relevant, k))
    means = {d: float(np.mean(v)) for d, v in per_depth.items()}
    best_depth = max(means, key=lambda d: (means[d], -d))
    n = len(queries)
    return ({"candidates": best_depth, "top_n": k, "score": means[best_depth], "first_stage_score": first_stage_score,
             "by_depth": means, "used": means[best_depth] > first_stage_score,
             "llm": {**usage.to_dict(), "calls_per_query": usage.calls / n if n else 0.0}}, failed)
